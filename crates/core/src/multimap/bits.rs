//! Fixed-width bit fields packed in a byte buffer, and checksums over bit
//! ranges. Widths are at most 56 bits, so a field plus its shift always
//! fits one unaligned little-endian u64 load; buffers carry 8 bytes of
//! padding so that load never runs past the end.

/// Bytes a packed array of `bits` bits takes, padding included.
pub fn packed_len(bits: u64) -> u64 {
    bits.div_ceil(8) + 8
}

/// The 8 bytes at `byte` as a little-endian u64 (zeros past the end).
#[inline]
pub fn load(buf: &[u8], byte: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(b) = buf.get(byte..byte + 8) {
        x.copy_from_slice(b);
    } else if let Some(b) = buf.get(byte..) {
        // Only a damaged layout gets here; the bits read are then checked.
        x[..b.len()].copy_from_slice(b);
    }
    u64::from_le_bytes(x)
}

#[inline]
fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// The `width`-bit field (width <= 56) starting at bit `pos`.
#[inline]
pub fn read(buf: &[u8], pos: u64, width: u32) -> u64 {
    debug_assert!(width <= 56);
    (load(buf, (pos / 8) as usize) >> (pos % 8)) & mask(width)
}

/// Or `value` (which must fit `width` <= 56 bits) into a zeroed field.
#[inline]
pub fn write(buf: &mut [u8], pos: u64, width: u32, value: u64) {
    debug_assert!(width <= 56 && value <= mask(width));
    let at = (pos / 8) as usize;
    let x = load(buf, at) | (value << (pos % 8));
    buf[at..at + 8].copy_from_slice(&x.to_le_bytes());
}

/// Continue a check (an XXH3 hash, chained through its seed) over bits
/// `[start, end)` of `buf` only, so a check of one range is unaffected by
/// neighbours sharing a byte; one hash call per range, over the bytes in
/// place.
pub fn hash_range(seed: u64, buf: &[u8], start: u64, end: u64) -> u64 {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    if start >= end {
        return seed;
    }
    let (first, last) = ((start / 8) as usize, ((end - 1) / 8) as usize);
    let lead = (start % 8) as u32;
    let byte = |i: usize| buf.get(i).copied().unwrap_or(0);
    if first == last {
        let b = (byte(first) >> lead) & mask((end - start) as u32) as u8;
        return xxh3_64_with_seed(&[b], seed);
    }
    let head = byte(first) >> lead;
    let tail = byte(last) & mask((end - 8 * last as u64) as u32) as u8;
    let middle = buf.get(first + 1..last).unwrap_or(&[]);
    xxh3_64_with_seed(middle, xxh3_64_with_seed(&[head, tail], seed))
}

/// Positions of the 1 bits in bits `[start, end)` of `buf`.
pub fn ones(buf: &[u8], start: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
    let (mut pos, mut base, mut word) = (start, start, 0u64);
    std::iter::from_fn(move || loop {
        if word != 0 {
            let t = word.trailing_zeros();
            word &= word - 1;
            return Some(base + u64::from(t));
        }
        if pos >= end {
            return None;
        }
        let k = (end - pos).min(56) as u32;
        word = read(buf, pos, k);
        base = pos;
        pos += u64::from(k);
    })
}

/// The position of the `k`-th 1 bit of `word` (which has more than `k`):
/// whole bytes are skipped by their counts, then bits cleared one by one.
#[inline]
fn select_in_word(mut word: u64, mut k: u32) -> u32 {
    let mut base = 0;
    loop {
        let c = (word & 0xff).count_ones();
        if c > k {
            break;
        }
        k -= c;
        word >>= 8;
        base += 8;
    }
    for _ in 0..k {
        word &= word - 1;
    }
    base + word.trailing_zeros()
}

/// The position of the `j`-th 1 bit (or 0 bit, with `one` false) in
/// bits `[start, end)` of `buf`.
pub fn select(buf: &[u8], start: u64, end: u64, j: u64, one: bool) -> Option<u64> {
    let mut pos = start;
    let mut left = j;
    while pos < end {
        let k = (end - pos).min(56) as u32;
        let mut word = read(buf, pos, k);
        if !one {
            word = !word & mask(k);
        }
        let c = u64::from(word.count_ones());
        if c > left {
            return Some(pos + u64::from(select_in_word(word, left as u32)));
        }
        left -= c;
        pos += u64::from(k);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_at_every_offset() {
        for width in [1u32, 7, 8, 13, 41, 56] {
            let n = 100u64;
            let mut buf = vec![0u8; packed_len(n * u64::from(width)) as usize];
            let val = |i: u64| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & mask(width);
            for i in 0..n {
                write(&mut buf, i * u64::from(width), width, val(i));
            }
            for i in 0..n {
                assert_eq!(
                    read(&buf, i * u64::from(width), width),
                    val(i),
                    "w={width} i={i}"
                );
            }
        }
    }

    #[test]
    fn range_checks_ignore_neighbouring_bits() {
        let mut a = vec![0b1010_1100u8, 0xff, 0x0f, 0x33];
        let before = hash_range(0, &a, 3, 27);
        a[0] ^= 0b0000_0111; // bits 0-2, outside
        a[3] ^= 0b1111_0000; // bits 28-31, outside
        assert_eq!(hash_range(0, &a, 3, 27), before);
        a[1] ^= 1; // inside
        assert_ne!(hash_range(0, &a, 3, 27), before);
        assert_eq!(hash_range(7, &a, 5, 5), 7);
        let one = hash_range(0, &a, 9, 12);
        a[1] ^= 0b10;
        assert_ne!(hash_range(0, &a, 9, 12), one);
    }

    #[test]
    fn select_in_word_finds_each_set_bit() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut words = vec![1u64, 0x8000_0000_0000_0000, u64::MAX, 0xf0f0_1234_0000_ff01];
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Sparse, dense and even words.
            words.extend([x, x & (x >> 3), x | (x << 5)]);
        }
        for word in words {
            let ones: Vec<u32> = (0..64).filter(|b| word >> b & 1 == 1).collect();
            for (k, &at) in ones.iter().enumerate() {
                assert_eq!(select_in_word(word, k as u32), at, "{word:x} {k}");
            }
        }
    }
}
