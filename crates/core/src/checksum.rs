//! CRC-32C of short byte strings, as a record check needs on every hit.
//!
//! The `crc32c` crate is built for long inputs: each call dispatches on
//! the CPU, aligns its input byte by byte and sets up a three-way parallel
//! loop. On a record of a 43-byte key and a 29-byte value that overhead
//! was a sixth of a whole batch lookup (perf, frozen `get_many`). Short
//! inputs here go eight bytes per instruction through the SSE 4.2 `crc32`
//! instruction; long ones, and other CPUs, go to the crate. Both compute
//! the same function, which the tests check.

/// Inputs up to this many bytes take the short path.
const SHORT: usize = 256;

/// `crc32c::crc32c_append(crc, data)`, faster on short inputs.
///
/// ```
/// use vastdict_core::checksum::crc32c_append;
/// assert_eq!(crc32c_append(0, b"123456789"), 0xe306_9283);
/// ```
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() <= SHORT && std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU supports SSE 4.2 (checked just above).
        return unsafe { short_sse42(crc, data) };
    }
    crc32c::crc32c_append(crc, data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn short_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut c = u64::from(!crc);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        c = _mm_crc32_u64(c, u64::from_le_bytes(x));
    }
    let mut c = c as u32;
    for &b in words.remainder() {
        c = _mm_crc32_u8(c, b);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_crate_at_every_length_and_start() {
        let data: Vec<u8> = (0..700u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in 0..data.len() - start {
                let d = &data[start..start + len];
                for crc in [0, 0xdead_beef] {
                    assert_eq!(
                        crc32c_append(crc, d),
                        crc32c::crc32c_append(crc, d),
                        "start {start} len {len}"
                    );
                }
            }
        }
    }
}
