//! `MinHasher`: text -> shingles -> 64-bit hashes -> the minimum of each of
//! `num_perm` hash permutations, as u32.
//!
//! Shingles are hashed with XXH3 (seeded), so signatures depend only on
//! the text and the parameters: identical across runs, thread counts and
//! machines. The permutations are multiply-add-shift hashes of the shingle
//! hash, `(a_i h + b_i) >> 32` with odd `a_i` and `b_i` drawn from the seed
//! by SplitMix64: one multiply per shingle and permutation, a loop the
//! compiler vectorizes.

use crate::error::{Error, Result};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What a shingle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `ngram` consecutive whitespace-separated words.
    Word,
    /// `ngram` consecutive characters.
    Char,
}

/// Computes MinHash signatures.
///
/// ```
/// use vastdict_core::lsh::{MinHasher, Unit};
/// let h = MinHasher::new(128, 3, Unit::Word, 1, true).unwrap();
/// let a = h.sign_text("the quick brown fox jumps over the lazy dog");
/// let b = h.sign_text("The quick brown fox jumps over the lazy dog");
/// assert_eq!(a, b); // lowercased
/// assert_eq!(a.len(), 128);
/// ```
#[derive(Debug, Clone)]
pub struct MinHasher {
    num_perm: usize,
    ngram: usize,
    unit: Unit,
    seed: u64,
    lowercase: bool,
    a: Vec<u64>,
    b: Vec<u64>,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MinHasher {
    pub fn new(
        num_perm: usize,
        ngram: usize,
        unit: Unit,
        seed: u64,
        lowercase: bool,
    ) -> Result<Self> {
        if num_perm == 0 || num_perm > 1 << 16 {
            return Err(Error::Invalid(format!(
                "num_perm must be between 1 and 65536, not {num_perm}"
            )));
        }
        if ngram == 0 {
            return Err(Error::Invalid("ngram must be at least 1".into()));
        }
        let mut state = seed;
        let (a, b) = (0..num_perm)
            .map(|_| (splitmix(&mut state) | 1, splitmix(&mut state)))
            .unzip();
        Ok(MinHasher {
            num_perm,
            ngram,
            unit,
            seed,
            lowercase,
            a,
            b,
        })
    }

    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    /// The 64-bit hash of each shingle of `text`, appended to `out`. A text
    /// shorter than one shingle is one shingle; an empty text has none.
    pub fn shingle_hashes(&self, text: &str, out: &mut Vec<u64>) {
        let lowered;
        let text = if self.lowercase && text.chars().any(char::is_uppercase) {
            lowered = text.to_lowercase();
            &lowered
        } else {
            text
        };
        match self.unit {
            Unit::Word => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let mut buf = Vec::new();
                let n = self.ngram.min(words.len());
                if n == 0 {
                    return;
                }
                for w in words.windows(n) {
                    buf.clear();
                    for (i, t) in w.iter().enumerate() {
                        if i > 0 {
                            buf.push(b' ');
                        }
                        buf.extend_from_slice(t.as_bytes());
                    }
                    out.push(xxh3_64_with_seed(&buf, self.seed));
                }
            }
            Unit::Char => {
                let starts: Vec<usize> = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(text.len()))
                    .collect();
                let chars = starts.len() - 1;
                let n = self.ngram.min(chars);
                if n == 0 {
                    return;
                }
                for i in 0..=chars - n {
                    let s = &text.as_bytes()[starts[i]..starts[i + n]];
                    out.push(xxh3_64_with_seed(s, self.seed));
                }
            }
        }
    }

    /// The signature of a set of shingle hashes into `out` (`num_perm`
    /// long): u32::MAX everywhere for an empty set.
    pub fn sign_hashes(&self, hashes: &[u64], out: &mut [u32]) {
        out.fill(u32::MAX);
        for &h in hashes {
            for ((o, &a), &b) in out.iter_mut().zip(&self.a).zip(&self.b) {
                let v = (a.wrapping_mul(h).wrapping_add(b) >> 32) as u32;
                *o = (*o).min(v);
            }
        }
    }

    pub fn sign_text(&self, text: &str) -> Vec<u32> {
        let mut hashes = Vec::new();
        self.shingle_hashes(text, &mut hashes);
        let mut out = vec![0u32; self.num_perm];
        self.sign_hashes(&hashes, &mut out);
        out
    }

    /// Signatures of `texts`, row by row into `out` (`texts.len() *
    /// num_perm` long), on all cores.
    pub fn sign_many<S: AsRef<str> + Sync>(&self, texts: &[S], out: &mut [u32]) -> Result<()> {
        crate::intmap::map::same_len(texts.len() * self.num_perm, out.len())?;
        out.par_chunks_mut(self.num_perm)
            .zip(texts.par_iter())
            .for_each_init(Vec::new, |hashes, (o, t)| {
                hashes.clear();
                self.shingle_hashes(t.as_ref(), hashes);
                self.sign_hashes(hashes, o);
            });
        Ok(())
    }
}

/// The share of equal positions of two signatures: an estimate of the
/// Jaccard similarity of their shingle sets.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_fixed_by_text_and_parameters() {
        let h = MinHasher::new(8, 2, Unit::Word, 1, true).expect("valid parameters");
        let sig = h.sign_text("a b c d");
        // Golden values: any change to hashing or permutations breaks
        // every saved index, so it must show up here.
        let again = MinHasher::new(8, 2, Unit::Word, 1, true)
            .expect("valid parameters")
            .sign_text("a b c d");
        assert_eq!(sig, again);
        assert_eq!(
            sig,
            [
                1255987549, 728337493, 1745417967, 313394674, 323915943, 3081582530, 1680008614,
                799150604
            ]
        );
        let other = MinHasher::new(8, 2, Unit::Word, 2, true).expect("valid parameters");
        assert_ne!(other.sign_text("a b c d"), sig);
    }

    #[test]
    fn estimates_follow_the_jaccard_similarity() {
        let h = MinHasher::new(512, 1, Unit::Word, 7, false).expect("valid parameters");
        let a: String = (0..200).map(|i| format!("w{i} ")).collect();
        let b: String = (50..250).map(|i| format!("w{i} ")).collect();
        // 150 shared of 250 distinct words.
        let est = estimate_jaccard(&h.sign_text(&a), &h.sign_text(&b));
        assert!((est - 0.6).abs() < 0.07, "estimate {est}");
        assert_eq!(estimate_jaccard(&h.sign_text(&a), &h.sign_text(&a)), 1.0);
    }

    #[test]
    fn shingles_of_short_and_empty_texts() {
        let h = MinHasher::new(4, 3, Unit::Char, 1, true).expect("valid parameters");
        let mut v = Vec::new();
        h.shingle_hashes("", &mut v);
        assert!(v.is_empty());
        h.shingle_hashes("ab", &mut v);
        assert_eq!(v.len(), 1);
        v.clear();
        h.shingle_hashes("héllo", &mut v);
        assert_eq!(v.len(), 3);
        assert_eq!(h.sign_text(""), vec![u32::MAX; 4]);
        assert!(MinHasher::new(0, 3, Unit::Char, 1, true).is_err());
    }

    #[test]
    fn many_equals_one_by_one() {
        let h = MinHasher::new(16, 2, Unit::Word, 3, true).expect("valid parameters");
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("doc {i} has words {}", i % 7))
            .collect();
        let mut out = vec![0u32; texts.len() * 16];
        h.sign_many(&texts, &mut out).expect("valid parameters");
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(&out[i * 16..(i + 1) * 16], &h.sign_text(t)[..]);
        }
    }
}
