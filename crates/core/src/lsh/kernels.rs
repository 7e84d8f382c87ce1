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

/// The widest vector instructions this CPU has; the kernels are the same
/// Rust code compiled for each, so results do not depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            Simd::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2") {
            Simd::Avx2
        } else {
            Simd::Portable
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn detect() -> Self {
        Simd::Portable
    }
}

pub(super) fn min_block(simd: Simd, p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    match simd {
        Simd::Portable => min_block_portable(p, keys, out),
        // SAFETY: these variants are chosen only when the CPU reported the
        // feature.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { min_block_avx2(p, keys, out) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { min_block_avx512(p, keys, out) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_block_avx2(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    min_block_portable(p, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn min_block_avx512(p: &Perms, keys: &[u32], out: &mut [u32; LANES]) {
    min_block_wide(p, keys, out)
}

/// [`min_block_portable`] in 64-bit lanes, for CPUs with a 64-bit vector
/// minimum (AVX-512): the minimum of the whole `(a_j x + b_j) mod 2^64`
/// has the smallest high word, so the running minima keep whole products
/// and the high words are taken once at the end. That spares narrowing
/// the carries to 32-bit lanes for every shingle: 17 instructions per
/// shingle and block instead of 32 (signing 20-40% faster here).
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
