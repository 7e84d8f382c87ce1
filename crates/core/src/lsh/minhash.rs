//! `MinHasher`: text -> shingles -> 64-bit hashes -> the minimum of each of
//! `num_perm` hash permutations, as u32.
//!
//! Word shingles hash each word once (XXH3, seeded) and then each window of
//! `ngram` word hashes, so a word costs one string hash whatever `ngram`
//! is. Signatures depend only on the text and the parameters: identical
//! across runs, thread counts and machines (all byte orders are fixed).
//!
//! The permutations are Dietzfelbinger's multiply-add-shift hashes of a
//! 32-bit reduction `x` of the shingle hash, `(a_i x + b_i) mod 2^64 >> 32`
//! with 64-bit `a_i` (odd) and `b_i` drawn from the seed by SplitMix64: a
//! 2-independent family with 32-bit outputs. With AVX-512 the loop runs
//! in 64-bit SIMD lanes on whole products; elsewhere the product is split
//! into 32-bit halves so it runs in 32-bit lanes (an AVX2 copy of that
//! code is chosen at run time on x86-64). Every kernel gives the same
//! bits.

use super::kernels::{min_block, Perms, Simd, LANES};
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
    /// `a_i` and `b_i` whole (for the 64-bit kernel) and split into 32-bit
    /// halves (for the others), padded to whole blocks of `LANES`.
    a: Vec<u64>,
    b: Vec<u64>,
    a_lo: Vec<u32>,
    a_hi: Vec<u32>,
    b_lo: Vec<u32>,
    b_hi: Vec<u32>,
    simd: Simd,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

/// The low and high 32 bits of each value.
fn halves(v: &[u64]) -> (Vec<u32>, Vec<u32>) {
    (
        v.iter().map(|&x| x as u32).collect(),
        v.iter().map(|&x| (x >> 32) as u32).collect(),
    )
}

/// SplitMix64's finalizer: spreads every input bit over the whole word,
/// so that small or structured user hashes still reduce to good 32-bit
/// keys.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reusable per-thread buffers, so signing a document allocates nothing.
#[derive(Default)]
pub struct Scratch {
    hashes: Vec<u64>,
    words: Vec<u64>,
    keys: Vec<u32>,
    bytes: Vec<u8>,
    starts: Vec<usize>,
    lowered: String,
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
        let padded = num_perm.div_ceil(LANES) * LANES;
        let mut state = seed;
        let (mut a, mut b) = (Vec::with_capacity(padded), Vec::with_capacity(padded));
        for _ in 0..padded {
            a.push(splitmix(&mut state) | 1);
            b.push(splitmix(&mut state));
        }
        let (a_lo, a_hi) = halves(&a);
        let (b_lo, b_hi) = halves(&b);
        Ok(MinHasher {
            num_perm,
            ngram,
            unit,
            seed,
            lowercase,
            a,
            b,
            a_lo,
            a_hi,
            b_lo,
            b_hi,
            simd: Simd::fastest(),
        })
    }

    /// Which build of the inner loop this hasher runs ("Avx512", say),
    /// for diagnostics: every one gives the same signatures.
    pub fn kernel(&self) -> String {
        format!("{:?}", self.simd)
    }

    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    pub fn ngram(&self) -> usize {
        self.ngram
    }

    pub fn unit(&self) -> Unit {
        self.unit
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// The 64-bit hash of each shingle of `text`, appended to `out`. A text
    /// shorter than one shingle is one shingle; an empty text has none.
    pub fn shingle_hashes(&self, text: &str, out: &mut Vec<u64>) {
        self.shingle_into(text, &mut Scratch::default(), out);
    }

    fn shingle_into(&self, text: &str, s: &mut Scratch, out: &mut Vec<u64>) {
        match self.unit {
            Unit::Word => {
                s.words.clear();
                if text.is_ascii() {
                    self.ascii_word_hashes(text.as_bytes(), &mut s.bytes, &mut s.words);
                } else {
                    for w in text.split_whitespace() {
                        let h = self.word_hash(w, &mut s.lowered);
                        s.words.push(h);
                    }
                }
                self.shingle_words(&s.words, out);
            }
            Unit::Char => {
                let text = if self.lowercase && needs_lowering(text) {
                    s.lowered.clear();
                    s.lowered.extend(text.chars().flat_map(char::to_lowercase));
                    s.lowered.as_str()
                } else {
                    text
                };
                s.starts.clear();
                s.starts.extend(text.char_indices().map(|(i, _)| i));
                s.starts.push(text.len());
                let chars = s.starts.len() - 1;
                let n = self.ngram.min(chars);
                if n == 0 {
                    return;
                }
                for i in 0..=chars - n {
                    let g = &text.as_bytes()[s.starts[i]..s.starts[i + n]];
                    out.push(xxh3_64_with_seed(g, self.seed));
                }
            }
        }
    }

    fn word_hash(&self, word: &str, lowered: &mut String) -> u64 {
        if self.lowercase && needs_lowering(word) {
            lowered.clear();
            lowered.extend(word.chars().flat_map(char::to_lowercase));
            xxh3_64_with_seed(lowered.as_bytes(), self.seed)
        } else {
            xxh3_64_with_seed(word.as_bytes(), self.seed)
        }
    }

    /// [`MinHasher::word_hash`] of each word of an ASCII text, split as
    /// `split_ascii_whitespace` does. The text is lowered in one
    /// vectorized pass first: lowering word by word into a buffer that
    /// XXH3 then reads makes every word wait on store forwarding.
    fn ascii_word_hashes(&self, text: &[u8], lowered: &mut Vec<u8>, out: &mut Vec<u64>) {
        let text = if self.lowercase {
            lowered.clear();
            lowered.extend_from_slice(text);
            lowered.make_ascii_lowercase();
            &lowered[..]
        } else {
            text
        };
        let mut i = 0;
        while i < text.len() {
            while i < text.len() && text[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < text.len() && !text[i].is_ascii_whitespace() {
                i += 1;
            }
            if start == i {
                break;
            }
            out.push(xxh3_64_with_seed(&text[start..i], self.seed));
        }
    }

    /// The hash of each window of `ngram` consecutive word hashes (one
    /// window when there are fewer words): a rotate-xor-multiply chain
    /// over the window (finalized by the key reduction). The word hashes are already
    /// random, so this mixes enough at a few cycles per word, where
    /// hashing the window's bytes again would cost as much as the
    /// permutations.
    fn shingle_words(&self, words: &[u64], out: &mut Vec<u64>) {
        let n = self.ngram.min(words.len());
        if n == 0 {
            return;
        }
        // Not finalized here: every shingle hash goes through `mix64` on
        // its way to a permutation key anyway.
        out.extend(words.windows(n).map(|window| {
            window.iter().fold(n as u64, |h, &w| {
                (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            })
        }));
    }

    /// Shingle hashes of a pre-tokenized text: `ngram` consecutive tokens
    /// make a shingle, as words do.
    pub fn token_shingles<S: AsRef<str>>(&self, tokens: &[S], out: &mut Vec<u64>) {
        let mut lowered = String::new();
        let words: Vec<u64> = tokens
            .iter()
            .map(|t| self.word_hash(t.as_ref(), &mut lowered))
            .collect();
        self.shingle_words(&words, out);
    }

    /// The signature of a set of shingle hashes into `out` (`num_perm`
    /// long): u32::MAX everywhere for an empty set.
    pub fn sign_hashes(&self, hashes: &[u64], out: &mut [u32]) {
        let mut keys = Vec::new();
        self.sign_hashes_with(hashes, &mut keys, out);
    }

    fn sign_hashes_with(&self, hashes: &[u64], keys: &mut Vec<u32>, out: &mut [u32]) {
        keys.clear();
        keys.extend(hashes.iter().map(|&h| (mix64(h) >> 32) as u32));
        let mut block = [0u32; LANES];
        for (i, chunk) in out.chunks_mut(LANES).enumerate() {
            let r = i * LANES..(i + 1) * LANES;
            let p = Perms {
                a: &self.a[r.clone()],
                b: &self.b[r.clone()],
                a_lo: &self.a_lo[r.clone()],
                a_hi: &self.a_hi[r.clone()],
                b_lo: &self.b_lo[r.clone()],
                b_hi: &self.b_hi[r],
            };
            min_block(self.simd, &p, keys, &mut block);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    pub fn sign_text(&self, text: &str) -> Vec<u32> {
        let mut out = vec![0u32; self.num_perm];
        self.sign_text_with(text, &mut Scratch::default(), &mut out);
        out
    }

    /// [`MinHasher::sign_text`] into `out`, reusing `scratch`'s buffers.
    pub fn sign_text_with(&self, text: &str, scratch: &mut Scratch, out: &mut [u32]) {
        let mut hashes = std::mem::take(&mut scratch.hashes);
        hashes.clear();
        self.shingle_into(text, scratch, &mut hashes);
        self.sign_hashes_with(&hashes, &mut scratch.keys, out);
        scratch.hashes = hashes;
    }

    /// Signatures of `texts`, row by row into `out` (`texts.len() *
    /// num_perm` long), on all cores.
    pub fn sign_many<S: AsRef<str> + Sync>(&self, texts: &[S], out: &mut [u32]) -> Result<()> {
        crate::intmap::map::same_len(texts.len() * self.num_perm, out.len())?;
        out.par_chunks_mut(self.num_perm)
            .zip(texts.par_iter())
            .with_min_len(16)
            .for_each_init(Scratch::default, |scratch, (o, t)| {
                self.sign_text_with(t.as_ref(), scratch, o)
            });
        Ok(())
    }

    /// Signatures of sets of shingle hashes given in CSR form: set `i` is
    /// `hashes[offsets[i]..offsets[i + 1]]`.
    pub fn sign_hash_sets(&self, offsets: &[u64], hashes: &[u64], out: &mut [u32]) -> Result<()> {
        self.check_sets(offsets, hashes.len(), out.len())?;
        out.par_chunks_mut(self.num_perm)
            .enumerate()
            .with_min_len(16)
            .for_each_init(Vec::new, |keys, (i, o)| {
                let set = &hashes[offsets[i] as usize..offsets[i + 1] as usize];
                self.sign_hashes_with(set, keys, o)
            });
        Ok(())
    }

    /// Signatures of pre-tokenized texts given in CSR form: text `i` is
    /// `tokens[offsets[i]..offsets[i + 1]]`, shingled `ngram` tokens at a
    /// time.
    pub fn sign_token_sets<S: AsRef<str> + Sync>(
        &self,
        offsets: &[u64],
        tokens: &[S],
        out: &mut [u32],
    ) -> Result<()> {
        self.check_sets(offsets, tokens.len(), out.len())?;
        out.par_chunks_mut(self.num_perm)
            .enumerate()
            .with_min_len(16)
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(hashes, keys), (i, o)| {
                    hashes.clear();
                    let text = &tokens[offsets[i] as usize..offsets[i + 1] as usize];
                    self.token_shingles(text, hashes);
                    self.sign_hashes_with(hashes, keys, o)
                },
            );
        Ok(())
    }

    /// That CSR `offsets` cut `items` items into as many sets as `out` has
    /// signature rows.
    fn check_sets(&self, offsets: &[u64], items: usize, out: usize) -> Result<()> {
        let sets = offsets.len().saturating_sub(1);
        crate::intmap::map::same_len(sets * self.num_perm, out)?;
        if offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&e| e > items as u64)
        {
            return Err(Error::Invalid(
                "offsets must be non-decreasing and end within the items".into(),
            ));
        }
        Ok(())
    }
}

fn needs_lowering(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80)
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
                799625980, 48106857, 264503084, 568590392, 3683954573, 576268145, 1499288686,
                1614411063
            ]
        );
        let chars = MinHasher::new(4, 3, Unit::Char, 1, true).expect("valid parameters");
        assert_eq!(
            chars.sign_text("abcdé"),
            [372283416, 1475310842, 721156680, 285173063]
        );
        let other = MinHasher::new(8, 2, Unit::Word, 2, true).expect("valid parameters");
        assert_ne!(other.sign_text("a b c d"), sig);
    }

    #[test]
    fn every_kernel_computes_the_64_bit_formula() {
        let h = MinHasher::new(70, 1, Unit::Word, 9, false).expect("valid parameters");
        let hashes: Vec<u64> = (0..500u64)
            .map(|i| i.wrapping_mul(0x1234_5678_9abc))
            .collect();
        let mut want = vec![u32::MAX; 70];
        for &x in &hashes {
            let x = u64::from((mix64(x) >> 32) as u32);
            for (j, w) in want.iter_mut().enumerate() {
                let a = u64::from(h.a_lo[j]) | u64::from(h.a_hi[j]) << 32;
                let b = u64::from(h.b_lo[j]) | u64::from(h.b_hi[j]) << 32;
                *w = (*w).min((a.wrapping_mul(x).wrapping_add(b) >> 32) as u32);
            }
        }
        let mut got = vec![0u32; 70];
        h.sign_hashes(&hashes, &mut got);
        assert_eq!(got, want);
        let kernels = Simd::available();
        assert!(kernels.contains(&Simd::fastest()));
        for simd in kernels {
            let h = MinHasher { simd, ..h.clone() };
            got.fill(0);
            h.sign_hashes(&hashes, &mut got);
            assert_eq!(got, want, "{simd:?}");
        }
    }

    #[test]
    fn ascii_fast_path_splits_and_lowers_like_the_general_one() {
        let h = MinHasher::new(4, 2, Unit::Word, 5, true).expect("valid parameters");
        for text in [
            "  Hello\tWORLD\n\x0cfoo\r\nbar  ",
            "one",
            "   ",
            "MiXeD cAsE wOrDs ThAt ArE lOnGeR tHaN sIxTy FoUr ByTeS_________________________________ x",
        ] {
            let mut fast = Vec::new();
            h.shingle_hashes(text, &mut fast);
            let tokens: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
            let mut general = Vec::new();
            h.token_shingles(&tokens, &mut general);
            assert_eq!(fast, general, "{text:?}");
        }
        // Non-ASCII text takes the general path and lowers Unicode too.
        assert_eq!(h.sign_text("ÉTÉ Über"), h.sign_text("été über"));
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
    fn token_and_hash_sets_sign_like_texts_and_check_their_offsets() {
        let h = MinHasher::new(8, 2, Unit::Word, 3, true).expect("valid parameters");
        let tokens = ["a", "b", "c", "x", "y"];
        let mut out = vec![0u32; 16];
        h.sign_token_sets(&[0, 3, 5], &tokens, &mut out)
            .expect("valid offsets");
        assert_eq!(&out[..8], &h.sign_text("a b c")[..]);
        assert_eq!(&out[8..], &h.sign_text("x y")[..]);
        assert!(h.sign_token_sets(&[0, 6], &tokens, &mut out[..8]).is_err());
        assert!(h
            .sign_token_sets(&[0, 3, 5], &tokens, &mut out[..8])
            .is_err());
        assert!(h.sign_hash_sets(&[2, 1], &[1, 2], &mut out[..8]).is_err());
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
