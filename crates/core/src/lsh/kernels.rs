//! The MinHash inner loop: the running minima of one block of `LANES`
//! permutations over a document's shingle hashes, in one Rust kernel
//! compiled for each instruction set the CPU may have (chosen at run time,
//! same bits from each; see `minhash.rs` for the permutations).

/// Permutations are applied this many at a time, so that the running
/// minima stay in registers while every shingle of a document streams by.
pub(super) const LANES: usize = 32;

/// One block of `LANES` permutations, whole and as 32-bit halves.
pub(super) struct Perms<'a> {
    pub a: &'a [u64],
    pub b: &'a [u64],
    pub a_lo: &'a [u32],
    pub a_hi: &'a [u32],
    pub b_lo: &'a [u32],
    pub b_hi: &'a [u32],
}

/// A build of the kernel for an instruction set; all compute the same
/// bits, so which one runs changes only the speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The 32-bit-halves formula in 512-bit registers.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// Whole 64-bit products (`vpmullq`): fewer instructions, but the
    /// multiply is three micro-ops on Intel cores, where this ran at half
    /// the rate of the others; on AMD's it is one.
    #[cfg(target_arch = "x86_64")]
    Avx512Wide,
}

impl Simd {
    /// The kernels this CPU can run.
    pub fn available() -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut v = vec![Simd::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Simd::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                v.push(Simd::Avx512);
                v.push(Simd::Avx512Wide);
            }
        }
        v
    }

    /// The fastest kernel on this CPU, timed once per process (under a
    /// millisecond): which one wins depends on the core, not only on the
    /// instruction sets it reports.
    pub fn fastest() -> Simd {
        static FASTEST: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *FASTEST.get_or_init(|| {
            let kernels = Simd::available();
            if kernels.len() == 1 {
                return kernels[0];
            }
            let perm: Vec<u64> = (1..=LANES as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
                .collect();
            let (lo, hi): (Vec<u32>, Vec<u32>) =
                perm.iter().map(|&x| (x as u32, (x >> 32) as u32)).unzip();
            let p = Perms {
                a: &perm,
                b: &perm,
                a_lo: &lo,
                a_hi: &hi,
                b_lo: &lo,
                b_hi: &hi,
            };
            let keys: Vec<u32> = (0..2048u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
            let mut best = vec![std::time::Duration::MAX; kernels.len()];
            let mut out = [0u32; LANES];
            // Rounds alternate the kernels, and each keeps its fastest
            // round, so a moment of noise does not decide.
            for _ in 0..7 {
                for (k, b) in kernels.iter().zip(&mut best) {
                    let t = std::time::Instant::now();
                    for _ in 0..4 {
                        min_block(*k, &p, std::hint::black_box(&keys), &mut out);
                    }
                    *b = (*b).min(t.elapsed());
                }
            }
            let i = (0..kernels.len()).min_by_key(|&i| best[i]).unwrap_or(0);
            kernels[i]
        })
    }
}

pub(super) fn min_block(simd: Simd, p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    match simd {
        Simd::Portable => min_block_portable(p, keys, out),
        // SAFETY: these variants are run only when the CPU reported the
        // features (`Simd::available`).
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { min_block_avx2(p, keys, out) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { min_block_avx512(p, keys, out) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512Wide => unsafe { min_block_avx512_wide(p, keys, out) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_block_avx2(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    min_block_portable(p, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl")]
unsafe fn min_block_avx512(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    min_block_portable(p, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn min_block_avx512_wide(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    min_block_wide(p, keys, out)
}

/// [`min_block_portable`] in 64-bit lanes, for CPUs with a 64-bit vector
/// minimum (AVX-512): the minimum of the whole `(a_j x + b_j) mod 2^64`
/// has the smallest high word, so the running minima keep whole products
/// and the high words are taken once at the end. That spares narrowing
/// the carries to 32-bit lanes for every shingle: 17 instructions per
/// shingle and block instead of 32 (signing 20-40% faster on an AMD EPYC,
/// half as fast on an Intel Xeon; see `Simd::fastest`).
#[inline(always)]
fn min_block_wide(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    let (a, b): (&[u64; LANES], &[u64; LANES]) = match (p.a.try_into(), p.b.try_into()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => unreachable!("permutation blocks are LANES long"),
    };
    let mut acc = [u64::MAX; LANES];
    for &x in keys {
        let x = u64::from(x);
        for j in 0..LANES {
            acc[j] = acc[j].min(a[j].wrapping_mul(x).wrapping_add(b[j]));
        }
    }
    for (o, m) in out.iter_mut().zip(acc) {
        *o = (m >> 32) as u32;
    }
}

/// `out[j] = min over keys x of (a_j x + b_j) mod 2^64 >> 32`, with the
/// product taken in 32-bit halves: the high word is `a_hi x + b_hi` plus
/// the carry out of `a_lo x + b_lo`, which cannot overflow 64 bits.
#[inline(always)]
fn min_block_portable(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    let (a_lo, a_hi, b_lo, b_hi): (&[u32; LANES], &[u32; LANES], &[u32; LANES], &[u32; LANES]) =
        match (
            p.a_lo.try_into(),
            p.a_hi.try_into(),
            p.b_lo.try_into(),
            p.b_hi.try_into(),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
            _ => unreachable!("permutation blocks are LANES long"),
        };
    let mut acc = [u32::MAX; LANES];
    for &x in keys {
        for j in 0..LANES {
            let low = u64::from(a_lo[j]) * u64::from(x) + u64::from(b_lo[j]);
            let v = a_hi[j]
                .wrapping_mul(x)
                .wrapping_add(b_hi[j])
                .wrapping_add((low >> 32) as u32);
            acc[j] = acc[j].min(v);
        }
    }
    *out = acc;
}
