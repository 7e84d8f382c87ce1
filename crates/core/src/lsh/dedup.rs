//! Near-duplicate clusters: union-find over matched pairs, and exact
//! Jaccard checks of candidate pairs streamed in document order.

use super::minhash::MinHasher;
use hashbrown::HashMap;
use rayon::prelude::*;

/// The cluster of each of `n` documents given matched pairs: the smallest
/// document number in its connected component, so the document to keep
/// is the one whose cluster is itself.
///
/// ```
/// use vastdict_core::lsh::clusters;
/// assert_eq!(clusters(5, &[(3, 1), (4, 3)]), [0, 1, 2, 1, 1]);
/// ```
pub fn clusters(n: usize, pairs: &[(u64, u64)]) -> Vec<u64> {
    let mut parent: Vec<u64> = (0..n as u64).collect();
    fn root(p: &mut [u64], mut x: u64) -> u64 {
        while p[x as usize] != x {
            let up = p[p[x as usize] as usize];
            p[x as usize] = up; // path halving
            x = up;
        }
        x
    }
    for &(a, b) in pairs {
        if a as usize >= n || b as usize >= n {
            continue;
        }
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        // The smaller root wins, so a root is its component's minimum.
        if ra < rb {
            parent[rb as usize] = ra;
        } else if rb < ra {
            parent[ra as usize] = rb;
        }
    }
    (0..n as u64).map(|x| root(&mut parent, x)).collect()
}

/// The Jaccard similarity of two sorted, distinct sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

/// Checks candidate pairs by the exact Jaccard similarity of their
/// shingle sets while documents stream by in order, holding the sets of
/// only those documents whose later partners have not come yet.
pub struct ExactChecker {
    hasher: MinHasher,
    threshold: f64,
    /// For each later document, its earlier partners.
    partners: HashMap<u64, Vec<u64>>,
    /// For each earlier document, how many later partners are pending.
    waiting: HashMap<u64, u32>,
    sets: HashMap<u64, Vec<u64>>,
    next: u64,
    accepted: Vec<(u64, u64)>,
    checked: u64,
}

impl ExactChecker {
    /// `pairs` are (earlier, later) or (later, earlier) document numbers.
    pub fn new(hasher: MinHasher, threshold: f64, pairs: &[(u64, u64)]) -> Self {
        let mut partners: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut waiting: HashMap<u64, u32> = HashMap::new();
        for &(a, b) in pairs {
            let (early, late) = (a.min(b), a.max(b));
            if early == late {
                continue;
            }
            partners.entry(late).or_default().push(early);
            *waiting.entry(early).or_default() += 1;
        }
        ExactChecker {
            hasher,
            threshold,
            partners,
            waiting,
            sets: HashMap::new(),
            next: 0,
            accepted: Vec::new(),
            checked: 0,
        }
    }

    /// Feed the next documents in order (the first is number `next()`).
    pub fn feed<S: AsRef<str> + Sync>(&mut self, texts: &[S]) {
        let first = self.next;
        let wanted = |d: u64| self.partners.contains_key(&d) || self.waiting.contains_key(&d);
        let sets: Vec<Option<Vec<u64>>> = texts
            .par_iter()
            .enumerate()
            .map(|(i, t)| {
                wanted(first + i as u64).then(|| {
                    let mut s = Vec::new();
                    self.hasher.shingle_hashes(t.as_ref(), &mut s);
                    s.sort_unstable();
                    s.dedup();
                    s
                })
            })
            .collect();
        for (i, set) in sets.into_iter().enumerate() {
            let d = first + i as u64;
            let Some(set) = set else { continue };
            for early in self.partners.remove(&d).unwrap_or_default() {
                if let Some(e) = self.sets.get(&early) {
                    self.checked += 1;
                    if jaccard(e, &set) >= self.threshold {
                        self.accepted.push((early, d));
                    }
                }
                if let Some(w) = self.waiting.get_mut(&early) {
                    *w -= 1;
                    if *w == 0 {
                        self.waiting.remove(&early);
                        self.sets.remove(&early);
                    }
                }
            }
            if self.waiting.contains_key(&d) {
                self.sets.insert(d, set);
            }
        }
        self.next += texts.len() as u64;
    }

    /// The number of the next document to feed.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Pairs checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The pairs whose exact similarity reached the threshold.
    pub fn accepted(&self) -> &[(u64, u64)] {
        &self.accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsh::Unit;

    #[test]
    fn components_take_their_smallest_member() {
        assert_eq!(clusters(6, &[(5, 4), (4, 2), (1, 0)]), [0, 0, 2, 3, 2, 2]);
        assert_eq!(clusters(3, &[(9, 1)]), [0, 1, 2]);
    }

    #[test]
    fn exact_checks_follow_the_true_similarity() {
        let h = MinHasher::new(8, 1, Unit::Word, 1, true).expect("valid");
        let texts = ["a b c d e", "x y z", "a b c d f", "a b c d e", "q r s"];
        // 0-2: 4 of 6 words; 0-3 identical; 1-4 disjoint.
        let mut c = ExactChecker::new(h, 0.6, &[(2, 0), (0, 3), (1, 4)]);
        c.feed(&texts[..2]);
        c.feed(&texts[2..]);
        assert_eq!(c.accepted(), [(0, 2), (0, 3)]);
        assert_eq!(c.checked(), 3);
        assert!(c.sets.is_empty() && c.waiting.is_empty());
    }
}
