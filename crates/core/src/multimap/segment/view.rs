//! Reading an encoded segment: finding a key's bucket and group, and
//! decoding values, checked against the stored checks when the bytes come
//! from a file.

use super::super::bits::{self, ones, select};
use super::super::csr::Csr;
use super::{Bucket, Layout, HEADER};
use crate::error::{Error, Result};
use crate::intmap::Value;
use std::path::Path;

/// Read access to an encoded segment (in memory or in a mapped file).
#[derive(Clone, Copy)]
pub struct SegView<'a> {
    buf: &'a [u8],
    lay: Layout,
    file: &'a Path,
    /// Offset of the segment in `file`, for error messages.
    base: u64,
    /// Whether lookups check what they read against the stored checks:
    /// for bytes from a file; a segment encoded in this process's memory
    /// is trusted (full decodes and `verify` check it anyway).
    checked: bool,
}

impl<'a> SegView<'a> {
    /// `buf` must be exactly the bytes `lay` describes.
    pub fn new(buf: &'a [u8], lay: Layout, file: &'a Path, base: u64, checked: bool) -> Self {
        debug_assert_eq!(buf.len() as u64, lay.len());
        SegView {
            checked,
            buf,
            lay,
            file,
            base,
        }
    }

    fn corrupt(&self, at: u64, what: &str) -> Error {
        Error::corrupt(self.file, self.base + at, what)
    }

    fn bucket(&self, b: u64) -> Result<Bucket> {
        let lay = &self.lay;
        let (ks, vs) = lay.entry_at(self.buf, b);
        let (ke, ve) = lay.entry_at(self.buf, b + 1);
        let ok = ks <= ke
            && ke <= lay.keys
            && vs <= ve
            && ve <= lay.values
            && ke - ks <= ve - vs
            && (ks == ke) == (vs == ve);
        let k = Bucket { ks, ke, vs, ve };
        if !ok
            || (self.checked && lay.bucket_check(self.buf, b, k) != lay.stored_check(self.buf, b))
        {
            return Err(self.corrupt(HEADER + b * lay.entry(), "bucket check mismatch"));
        }
        Ok(k)
    }

    fn low(&self, i: u64) -> u64 {
        let w = self.lay.width();
        bits::read(
            &self.buf[self.lay.lows_off() as usize..],
            i * u64::from(w),
            w,
        )
    }

    fn mids(&self) -> &'a [u8] {
        &self.buf[self.lay.mids_off() as usize..self.lay.lows_off() as usize]
    }

    fn counts(&self) -> &'a [u8] {
        &self.buf[self.lay.counts_off() as usize..self.lay.checks_off() as usize]
    }

    /// The value range of the key with low bits `low`, if present.
    pub fn find(&self, low: u64) -> Result<Option<(u64, u64)>> {
        let b = self.lay.bucket_of(low);
        let k = self.bucket(b)?;
        let want = self.lay.stored_of(low);
        let mid = self.lay.mid_of(low);
        let ms = self.lay.mids_start(b, k.ks);
        let me = ms + (k.ke - k.ks) + (1 << self.lay.mid);
        // Keys of this mid are the 1s right after the (mid - 1)-th 0.
        let (mut j, mut at) = if mid == 0 {
            (0, ms)
        } else {
            let Some(zero) = select(self.mids(), ms, me, mid - 1, false) else {
                return Err(self.corrupt(self.lay.mids_off() + ms / 8, "bucket keys damaged"));
            };
            (zero + 1 - ms - mid, zero + 1)
        };
        let found = loop {
            if k.ks + j >= k.ke || at >= me || bits::read(self.mids(), at, 1) == 0 {
                return Ok(None);
            }
            let l = self.low(k.ks + j);
            if l == want {
                break k.ks + j;
            }
            if l > want {
                return Ok(None);
            }
            j += 1;
            at += 1;
        };
        let j = found - k.ks;
        if k.one_value_each() {
            return Ok(Some((k.vs + j, k.vs + j + 1)));
        }
        select(self.counts(), k.vs, k.ve, j, true)
            .map(|s| (s, ones(self.counts(), s + 1, k.ve).next().unwrap_or(k.ve)))
            .map(Some)
            .ok_or_else(|| self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged"))
    }

    fn check_blocks(&self, s: u64, e: u64) -> Result<()> {
        if s >= e || !self.checked {
            return Ok(());
        }
        let block = self.lay.block();
        for blk in s / block..=(e - 1) / block {
            let at = (self.lay.checks_off() + 2 * blk) as usize;
            if self.lay.block_check(self.buf, blk)
                != u16::from_le_bytes([self.buf[at], self.buf[at + 1]])
            {
                return Err(self.corrupt(
                    self.lay.values_off() + self.lay.value_byte(blk * block),
                    "value block check mismatch",
                ));
            }
        }
        Ok(())
    }

    /// Append values `[s, e)` to `out`, unchecked.
    fn push_values<V: Value>(&self, s: u64, e: u64, out: &mut Vec<V>) {
        let vals = &self.buf[self.lay.values_off() as usize..];
        if self.lay.vbits > 0 {
            let w = self.lay.vbits;
            out.extend((s..e).map(|i| V::from_bits(bits::read(vals, i * u64::from(w), w))));
        } else {
            let vw = self.lay.vw as usize;
            out.extend(
                vals[s as usize * vw..e as usize * vw]
                    .chunks_exact(V::WIDTH)
                    .map(V::read_le),
            );
        }
    }

    /// Append values `[s, e)` (a range [`find`](Self::find) gave) to `out`.
    pub fn values_into<V: Value>(&self, s: u64, e: u64, out: &mut Vec<V>) -> Result<()> {
        self.check_blocks(s, e)?;
        self.push_values(s, e, out);
        Ok(())
    }

    /// Hint the memory a lookup of `low` reads first.
    pub fn prefetch_dir(&self, low: u64) {
        let at = HEADER + self.lay.bucket_of(low) * self.lay.entry();
        if let Some(b) = self.buf.get(at as usize..) {
            crate::prefetch::read(b.as_ptr());
        }
    }

    /// Hint the memory a lookup of `low` reads once the directory is in.
    pub fn prefetch_bucket(&self, low: u64) {
        let b = self.lay.bucket_of(low);
        if b >= self.lay.buckets() {
            return;
        }
        let (ks, vs) = self.lay.entry_at(self.buf, b);
        let (ke, ve) = self.lay.entry_at(self.buf, b + 1);
        let fetch = |at: u64| {
            if let Some(x) = self.buf.get(at as usize..) {
                crate::prefetch::read(x.as_ptr());
            }
        };
        // Keys spread evenly over their bucket, so the mid bits say about
        // where in the bucket this key and its group lie.
        let (mid, s) = (self.lay.mid_of(low), self.lay.mid);
        let key_guess = ks + ((ke.saturating_sub(ks) * mid) >> s);
        let value_guess = vs + ((ve.saturating_sub(vs) * mid) >> s);
        let w = u64::from(self.lay.width());
        fetch(self.lay.mids_off() + self.lay.mids_start(b, ks) / 8);
        fetch(self.lay.lows_off() + key_guess * w / 8);
        if !(Bucket { ks, ke, vs, ve }).one_value_each() {
            fetch(self.lay.counts_off() + vs / 8);
        }
        if self.checked {
            fetch(self.lay.checks_off() + 2 * (value_guess / self.lay.block()));
        }
        fetch(self.lay.values_off() + self.lay.value_byte(value_guess));
    }

    /// Append every group whose key (`prefix` | low bits) is not in the
    /// sorted `hidden`, checking everything read.
    pub fn decode_into<V: Value>(
        &self,
        prefix: u64,
        hidden: &[u64],
        out: &mut Csr<V>,
    ) -> Result<()> {
        let this = SegView {
            checked: true,
            ..*self
        };
        this.decode_checked(prefix, hidden, out)
    }

    fn decode_checked<V: Value>(
        &self,
        prefix: u64,
        hidden: &[u64],
        out: &mut Csr<V>,
    ) -> Result<()> {
        self.check_blocks(0, self.lay.values)?;
        let mut hidden = hidden.iter().peekable();
        let mut next = 0u64;
        for b in 0..self.lay.buckets() {
            let k = self.bucket(b)?;
            if k.ks != next {
                return Err(self.corrupt(HEADER + b * self.lay.entry(), "buckets out of order"));
            }
            next = k.ke;
            let ms = self.lay.mids_start(b, k.ks);
            let me = ms + (k.ke - k.ks) + (1 << self.lay.mid);
            let mut mids = ones(self.mids(), ms, me);
            let mut ones = ones(self.counts(), k.vs, k.ve).peekable();
            let mut last = None;
            for i in k.ks..k.ke {
                let Some(p) = mids.next() else {
                    return Err(self.corrupt(self.lay.mids_off() + ms / 8, "bucket keys damaged"));
                };
                let low =
                    (((p - ms - (i - k.ks)) << self.lay.width()) | self.low(i)) << self.lay.drop;
                let key = prefix | (b << self.lay.shift()) | low;
                let (Some(s), e) = (ones.next(), ones.peek().copied().unwrap_or(k.ve)) else {
                    return Err(
                        self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged")
                    );
                };
                if last.is_some_and(|l| l >= low) || (i == k.ks && s != k.vs) {
                    return Err(self.corrupt(self.lay.lows_off(), "keys out of order"));
                }
                last = Some(low);
                while hidden.next_if(|&&h| h < key).is_some() {}
                if hidden.next_if_eq(&&key).is_some() {
                    continue;
                }
                self.push_values(s, e, &mut out.values);
                out.keys.push(key);
                out.ends.push(out.values.len() as u64);
            }
            if ones.next().is_some() || mids.next().is_some() {
                return Err(self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged"));
            }
        }
        if next != self.lay.keys {
            return Err(self.corrupt(0, "key count does not match the buckets"));
        }
        Ok(())
    }
}
