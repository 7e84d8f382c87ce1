//! The value types of integer maps and the key mixer.

/// A fixed-width value an integer map can hold.
pub trait Value: Copy + Default + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// Bytes per value, as stored.
    const WIDTH: usize;
    /// Name of the NumPy dtype (also stored in frozen files).
    const DTYPE: &'static str;
    /// Whether values may be stored bit-packed at the width of the
    /// largest (integers; not floats, whose bit patterns are all wide).
    const PACKABLE: bool;
    fn write_le(self, out: &mut [u8]);
    fn read_le(b: &[u8]) -> Self;
    /// The value's bits as a u64 (two's complement for signed values).
    fn to_bits(self) -> u64;
    fn from_bits(b: u64) -> Self;
}

macro_rules! value {
    ($t:ty, $name:literal, $packable:literal, $to:expr, $from:expr) => {
        impl Value for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            const DTYPE: &'static str = $name;
            const PACKABLE: bool = $packable;
            #[inline]
            fn to_bits(self) -> u64 {
                $to(self)
            }
            #[inline]
            fn from_bits(b: u64) -> Self {
                $from(b)
            }
            #[inline]
            fn write_le(self, out: &mut [u8]) {
                out[..Self::WIDTH].copy_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn read_le(b: &[u8]) -> Self {
                let mut x = [0u8; std::mem::size_of::<$t>()];
                x.copy_from_slice(&b[..Self::WIDTH]);
                <$t>::from_le_bytes(x)
            }
        }
    };
}

value!(u32, "uint32", true, u64::from, |b| b as u32);
value!(u64, "uint64", true, |v| v, |b| b);
value!(i64, "int64", true, |v: i64| v as u64, |b| b as i64);
value!(f64, "float64", false, f64::to_bits, f64::from_bits);

/// A bijective mix of a key (murmur3's finalizer): spreads any key set,
/// sequential ids included, evenly over partitions and buckets, and can be
/// undone, so maps store mixed keys only.
#[inline]
pub fn mix(k: u64) -> u64 {
    let mut x = k;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The inverse of [`mix`].
#[inline]
pub fn unmix(m: u64) -> u64 {
    let mut x = m;
    x ^= x >> 33;
    x = x.wrapping_mul(0x9cb4_b2f8_1293_37db);
    x ^= x >> 33;
    x = x.wrapping_mul(0x4f74_430c_22a5_4005);
    x ^= x >> 33;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_undone() {
        for k in [
            0,
            1,
            2,
            42,
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            0x1234_5678_9abc_def0,
        ] {
            assert_eq!(unmix(mix(k)), k);
        }
        assert_eq!(mix(0), 0);
    }

    #[test]
    fn values_round_trip() {
        let mut b = [0u8; 8];
        1.5f64.write_le(&mut b);
        assert_eq!(f64::read_le(&b), 1.5);
        (-7i64).write_le(&mut b);
        assert_eq!(i64::read_le(&b), -7);
        7u32.write_le(&mut b);
        assert_eq!(u32::read_le(&b), 7);
    }
}
