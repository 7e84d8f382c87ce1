//! `IntMultiMap`: u64 keys to groups of fixed-width values, in 256
//! partitions that batch calls work on in parallel.

use super::csr::Csr;
use super::file::MappedFile;
use super::part::{Part, Seg};
use crate::error::Result;
use crate::intmap::map::{part_of, partition, same_len, scatter, PARTS};
use crate::intmap::{mix, unmix, Value};
use rayon::prelude::*;
use std::sync::Arc;

/// Keys looked up per parallel task.
const CHUNK: usize = 4096;
/// Segments held in memory are packed into one block from this size on:
/// a smaller block holds at most one whole huge page, and the allocator
/// keeps the memory the scattered buffers leave behind for reuse, so the
/// copy would cost memory and buy nothing. Measured on an LSH index at a
/// million documents (16 tables of 5 MiB): single queries about a fifth
/// faster from Rust, memory the same.
const PACK_FROM: usize = 4 << 20;

/// A map from u64 keys to groups of values (uint32, uint64, int64 or
/// float64), kept encoded at close to the raw size of the values: about
/// 4.5 bytes per pair with 16 values per key, 9.7 with one.
///
/// ```
/// use vastdict_core::multimap::IntMultiMap;
/// let mut m: IntMultiMap<u32> = IntMultiMap::new(false);
/// m.add_many(&[7, 9, 7], &[1, 2, 3]).unwrap();
/// let (offsets, values) = m.get_many(&[7, 8, 9]).unwrap();
/// assert_eq!(offsets, [0, 2, 2, 3]);
/// assert_eq!(values, [1, 3, 2]);
/// ```
pub struct IntMultiMap<V> {
    parts: Vec<Part<V>>,
    unique: bool,
    /// Low bits of each mixed key that are not kept (see `truncated`).
    drop: u32,
    /// Whether changes are made on the calling thread (see
    /// [`IntMultiMap::on_calling_thread`]).
    on_caller: bool,
    /// The file the map was opened from, if any.
    file: Option<Arc<MappedFile>>,
}

/// A key located in its partition (see [`IntMultiMap::probe`]).
#[derive(Clone, Copy)]
pub struct Probe<'a, V> {
    part: &'a Part<V>,
    m: u64,
}

impl<V: Value> Probe<'_, V> {
    /// Hint the partition's own record (where its segment lies, and its
    /// layout), which [`Probe::prefetch_dir`] reads to find the directory.
    /// A map's 256 partition records sit apart in memory; where several
    /// maps are probed in turn (the bands of an LSH index) they fall out of
    /// cache, and the directory hint would itself wait on this miss.
    pub fn prefetch_part(&self) {
        crate::prefetch::lines(
            (self.part as *const Part<V>).cast(),
            std::mem::size_of::<Part<V>>(),
        );
    }

    /// Hint the memory the lookup reads first (its bucket's directory
    /// entry), so lookups of several keys overlap their cache misses.
    pub fn prefetch_dir(&self) {
        self.part.prefetch_dir(self.m);
    }

    /// Hint the rest of what the lookup reads; best issued once the
    /// directory entry has had time to arrive.
    pub fn prefetch_bucket(&self) {
        self.part.prefetch_bucket(self.m);
    }

    /// Append the key's values to `out`; whether it is present.
    pub fn get_into(&self, out: &mut Vec<V>) -> Result<bool> {
        self.part.get_into(self.m, out)
    }
}

fn prefix(p: usize) -> u64 {
    (p as u64) << 56
}

/// The sorted, distinct mixed keys of `keys`, grouped by partition.
fn sorted_groups(keys: &[u64], here: bool) -> (Vec<u64>, Vec<usize>) {
    let (mut ms, _, starts) = scatter::<u8>(keys, &[], here);
    let mut bounds = vec![0usize; PARTS + 1];
    let mut parts: Vec<&mut [u64]> = Vec::with_capacity(PARTS);
    let mut rest = &mut ms[..];
    for p in 0..PARTS {
        let (a, b) = rest.split_at_mut(starts[p + 1] - starts[p]);
        parts.push(a);
        rest = b;
    }
    let distinct = |g: &mut [u64]| {
        g.sort_unstable();
        let mut n = 0;
        for i in 0..g.len() {
            if i == 0 || g[i] != g[n - 1] {
                g[n] = g[i];
                n += 1;
            }
        }
        n
    };
    let lens: Vec<usize> = if here {
        parts.into_iter().map(distinct).collect()
    } else {
        parts.into_par_iter().map(distinct).collect()
    };
    let mut out = Vec::with_capacity(ms.len());
    for p in 0..PARTS {
        out.extend_from_slice(&ms[starts[p]..starts[p] + lens[p]]);
        bounds[p + 1] = out.len();
    }
    (out, bounds)
}

impl<V: Value> IntMultiMap<V> {
    /// An empty map; with `unique`, a key never holds the same value twice.
    pub fn new(unique: bool) -> Self {
        Self::truncated(unique, 0)
    }

    /// An empty map that keeps only `64 - drop` bits of each key (the top
    /// bits of its bijective mix): keys equal there are one key, and each
    /// costs `drop` bits less. For keys that are hashes already, where a
    /// rare merge is harmless (LSH band tables). `drop` is at most 40.
    ///
    /// ```
    /// use vastdict_core::multimap::IntMultiMap;
    /// let mut m: IntMultiMap<u32> = IntMultiMap::truncated(false, 24);
    /// m.add_many(&[5, 6], &[1, 2]).unwrap();
    /// assert_eq!(m.get(5).unwrap(), [1]);
    /// ```
    pub fn truncated(unique: bool, drop: u32) -> Self {
        let drop = drop.min(super::segment::MAX_DROP);
        let empty = Csr::<V>::new();
        IntMultiMap {
            parts: (0..PARTS)
                .map(|p| Part::new(Seg::owned(&empty, drop), prefix(p)))
                .collect(),
            unique,
            drop,
            on_caller: false,
            file: None,
        }
    }

    /// Make every change (adds, removals, folds) on the calling thread
    /// instead of the thread pool, and always [`compact`](Self::compact)
    /// into memory of the map's own. Each pool thread allocates from a heap
    /// of its own, whose free top glibc keeps rather than return to the
    /// OS, so a map built on the pool leaves several MiB of the scratch
    /// memory behind on each thread; on the calling thread it all goes
    /// back at the end of the call. For many small maps that make up one
    /// index (LSH band tables), where that scratch rivals the maps' size.
    ///
    /// ```
    /// use vastdict_core::multimap::IntMultiMap;
    /// let mut m: IntMultiMap<u32> = IntMultiMap::new(false).on_calling_thread();
    /// m.add_many(&[1, 1], &[10, 11]).unwrap();
    /// m.compact().unwrap();
    /// assert_eq!(m.get(1).unwrap(), [10, 11]);
    /// ```
    pub fn on_calling_thread(mut self) -> Self {
        self.on_caller = true;
        self
    }

    pub(crate) fn from_segments(
        segs: Vec<Seg>,
        unique: bool,
        drop: u32,
        file: Arc<MappedFile>,
    ) -> Self {
        IntMultiMap {
            parts: segs
                .into_iter()
                .enumerate()
                .map(|(p, s)| Part::new(s, prefix(p)))
                .collect(),
            unique,
            drop,
            on_caller: false,
            file: Some(file),
        }
    }

    pub fn unique(&self) -> bool {
        self.unique
    }

    /// Low mixed-key bits this map does not keep (0 unless `truncated`).
    pub fn dropped_bits(&self) -> u32 {
        self.drop
    }

    /// The mixed form of `key` as this map keeps it.
    fn mixed(&self, key: u64) -> u64 {
        self.keep(mix(key))
    }

    /// A mixed key with the low bits this map does not keep cleared.
    fn keep(&self, m: u64) -> u64 {
        m & !((1u64 << self.drop) - 1)
    }

    /// `keys` with the bits this map does not keep cleared, so batch paths
    /// (which mix keys themselves) see one key per kept pattern.
    fn kept<'k>(&self, keys: &'k [u64]) -> std::borrow::Cow<'k, [u64]> {
        if self.drop == 0 {
            return keys.into();
        }
        let kept = |&k: &u64| unmix(self.mixed(k));
        let out: Vec<u64> = if self.on_caller {
            keys.iter().map(kept).collect()
        } else {
            keys.par_iter().map(kept).collect()
        };
        out.into()
    }

    /// The file this map was opened from.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.file.as_deref().map(|f| f.path.as_path())
    }

    /// Bytes of the file this map was opened from.
    pub fn file_len(&self) -> Option<u64> {
        self.file.as_deref().map(|f| f.map.len() as u64)
    }

    /// Number of keys (a lookup per key added since the last fold).
    pub fn len(&self) -> Result<u64> {
        self.parts.par_iter().map(|p| p.keys()).sum()
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Number of (key, value) pairs.
    pub fn num_values(&self) -> u64 {
        self.parts.iter().map(|p| p.values()).sum()
    }

    /// Bytes of memory the map holds (a mapped file's pages not counted).
    pub fn resident_bytes(&self) -> usize {
        self.parts.iter().map(|p| p.heap_bytes()).sum::<usize>()
            + self.parts.len() * std::mem::size_of::<Part<V>>()
    }

    pub(crate) fn segments(&self) -> impl Iterator<Item = &Seg> {
        self.parts.iter().map(|p| &p.seg)
    }

    /// Append `values[i]` to the group of `keys[i]`; returns how many
    /// values were added (fewer than given with set semantics).
    pub fn add_many(&mut self, keys: &[u64], values: &[V]) -> Result<u64> {
        same_len(keys.len(), values.len())?;
        let (ms, vs, starts) = scatter(&self.kept(keys), values, self.on_caller);
        self.add_partitioned(&ms, &vs, &starts)
    }

    /// Like [`add_many`](Self::add_many), for keys given already mixed
    /// (`mix(key)`), as [`probe_mixed`](Self::probe_mixed) takes them.
    pub fn add_many_mixed(&mut self, mixed: &[u64], values: &[V]) -> Result<u64> {
        same_len(mixed.len(), values.len())?;
        let kept: Vec<u64> = mixed.iter().map(|&m| self.keep(m)).collect();
        let (ms, vs, starts) = partition(&kept, values);
        self.add_partitioned(&ms, &vs, &starts)
    }

    /// Add pairs grouped by partition (`starts` bounds each group).
    fn add_partitioned(&mut self, ms: &[u64], vs: &[V], starts: &[usize]) -> Result<u64> {
        let unique = self.unique;
        let add = |(p, part): (usize, &mut Part<V>)| {
            if starts[p + 1] == starts[p] {
                return Ok(0);
            }
            let mut batch: Vec<(u64, V)> = ms[starts[p]..starts[p + 1]]
                .iter()
                .copied()
                .zip(vs[starts[p]..starts[p + 1]].iter().copied())
                .collect();
            // Stable, so a key's values keep their order.
            batch.sort_by_key(|e| e.0);
            part.add(&batch, unique)
        };
        if self.on_caller {
            self.parts.iter_mut().enumerate().map(add).sum()
        } else {
            self.parts.par_iter_mut().enumerate().map(add).sum()
        }
    }

    /// Remove `keys` with all their values; returns how many were present.
    pub fn remove_many(&mut self, keys: &[u64]) -> Result<u64> {
        let (ms, bounds) = sorted_groups(&self.kept(keys), self.on_caller);
        let remove = |(p, part): (usize, &mut Part<V>)| {
            if bounds[p + 1] == bounds[p] {
                return Ok(0);
            }
            part.remove(&ms[bounds[p]..bounds[p + 1]])
        };
        if self.on_caller {
            self.parts.iter_mut().enumerate().map(remove).sum()
        } else {
            self.parts.par_iter_mut().enumerate().map(remove).sum()
        }
    }

    /// The values of one key, in insertion order (empty if missing).
    pub fn get(&self, key: u64) -> Result<Vec<V>> {
        let mut out = Vec::new();
        self.get_into(key, &mut out)?;
        Ok(out)
    }

    /// `key` located in its partition, for lookups that prefetch ahead:
    /// the key is mixed once for the prefetches and the lookup.
    pub fn probe(&self, key: u64) -> Probe<'_, V> {
        self.probe_mixed(mix(key))
    }

    /// Like [`probe`](Self::probe), for a key given already mixed
    /// (`mix(key)`): callers whose keys are hashes (the LSH band tables)
    /// skip undoing and redoing the mix.
    pub fn probe_mixed(&self, mixed: u64) -> Probe<'_, V> {
        let m = self.keep(mixed);
        Probe {
            part: &self.parts[part_of(m)],
            m,
        }
    }

    /// Append the values of one key to `out`; returns whether it exists.
    pub fn get_into(&self, key: u64, out: &mut Vec<V>) -> Result<bool> {
        let m = self.mixed(key);
        self.parts[part_of(m)].get_into(m, out)
    }

    /// The groups of `keys` in CSR form: key `i`'s values are
    /// `values[offsets[i]..offsets[i + 1]]`.
    pub fn get_many(&self, keys: &[u64]) -> Result<(Vec<u64>, Vec<V>)> {
        let chunks = self.get_many_chunks(keys)?;
        let total = chunks.iter().map(|c| c.1.len()).sum();
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        let mut values = Vec::with_capacity(total);
        offsets.push(0);
        let mut at = 0;
        for (counts, vals) in chunks {
            for c in counts {
                at += c;
                offsets.push(at);
            }
            values.extend_from_slice(&vals);
        }
        Ok((offsets, values))
    }

    /// The groups of `keys` as consecutive pieces of (group sizes, values),
    /// each looked up on its own core: for callers that copy the result
    /// into their own buffers anyway, one copy fewer than `get_many`.
    pub fn get_many_chunks(&self, keys: &[u64]) -> Result<Vec<(Vec<u64>, Vec<V>)>> {
        keys.par_chunks(CHUNK)
            .map(|ks| {
                let mut counts = Vec::with_capacity(ks.len());
                let mut vals = Vec::new();
                self.each(ks, |part, m| {
                    let before = vals.len();
                    part.get_into(m, &mut vals)?;
                    counts.push((vals.len() - before) as u64);
                    Ok(())
                })?;
                Ok((counts, vals))
            })
            .collect()
    }

    /// How many values each key has (0 if missing).
    pub fn count_many(&self, keys: &[u64], out: &mut [u64]) -> Result<()> {
        same_len(keys.len(), out.len())?;
        keys.par_chunks(CHUNK)
            .zip(out.par_chunks_mut(CHUNK))
            .try_for_each(|(ks, os)| {
                let mut o = os.iter_mut();
                self.each(ks, |part, m| {
                    if let Some(slot) = o.next() {
                        *slot = part.count(m)?;
                    }
                    Ok(())
                })
            })
    }

    /// Call `f(partition, mixed key)` for each key, prefetching the
    /// directory entries and then the buckets of keys further ahead, so
    /// the memory latencies of many lookups overlap.
    fn each(&self, keys: &[u64], mut f: impl FnMut(&Part<V>, u64) -> Result<()>) -> Result<()> {
        const DIR_AHEAD: usize = 24;
        const BUCKET_AHEAD: usize = 12;
        let mixed: Vec<u64> = keys.iter().map(|&k| self.mixed(k)).collect();
        for &m in mixed.iter().take(DIR_AHEAD) {
            self.parts[part_of(m)].prefetch_dir(m);
        }
        for &m in mixed.iter().take(BUCKET_AHEAD) {
            self.parts[part_of(m)].prefetch_bucket(m);
        }
        for (i, &m) in mixed.iter().enumerate() {
            if let Some(&a) = mixed.get(i + DIR_AHEAD) {
                self.parts[part_of(a)].prefetch_dir(a);
            }
            if let Some(&a) = mixed.get(i + BUCKET_AHEAD) {
                self.parts[part_of(a)].prefetch_bucket(a);
            }
            f(&self.parts[part_of(m)], m)?;
        }
        Ok(())
    }

    /// Fold every change into the encoded segments, then put the segments
    /// held in memory into one block, where lookups touch fewer pages
    /// (huge pages where the OS has them).
    pub fn compact(&mut self) -> Result<()> {
        self.fold()?;
        self.pack()
    }

    /// Fold every change into the encoded segments.
    pub(crate) fn fold(&mut self) -> Result<()> {
        if self.on_caller {
            self.parts.iter_mut().try_for_each(Part::fold)
        } else {
            self.parts.par_iter_mut().try_for_each(Part::fold)
        }
    }

    /// Copy every segment not mapped from a file into one new block of
    /// anonymous memory (each at a multiple of 8), if any has a buffer of
    /// its own and together they fill [`PACK_FROM`] (whatever their size
    /// in a map that works on the calling thread, which leaves nothing on
    /// the heap). Each old buffer is dropped as soon as its segment is
    /// copied, so the map holds little more than one copy at any time.
    fn pack(&mut self) -> Result<()> {
        if !self.parts.iter().any(|p| p.seg.is_owned()) {
            return Ok(());
        }
        let size = |seg: &Seg| {
            if seg.is_mapped() {
                0
            } else {
                seg.bytes().len().next_multiple_of(8)
            }
        };
        let mut offsets = Vec::with_capacity(self.parts.len());
        let mut total = 0;
        for seg in self.segments() {
            offsets.push(total);
            total += size(seg);
        }
        if total == 0 || (total < PACK_FROM && !self.on_caller) {
            return Ok(());
        }
        let block =
            memmap2::MmapMut::map_anon(total).map_err(|source| crate::error::Error::Io {
                path: "(memory for an integer multimap)".into(),
                source,
            })?;
        // A hint only: without huge pages the block works the same.
        #[cfg(target_os = "linux")]
        let _ = block.advise(memmap2::Advice::HugePage);
        let block = Arc::new(memmap2::MmapRaw::from(block));
        let copy = |(p, off): (&mut Part<V>, usize)| {
            if !p.seg.is_mapped() {
                // SAFETY: the offsets are prefix sums of the sizes, so
                // each segment gets a range of its own inside the block.
                unsafe { p.seg.pack_into(&block, off) }
            }
        };
        if self.on_caller {
            self.parts.iter_mut().zip(offsets).for_each(copy);
        } else {
            self.parts.par_iter_mut().zip(offsets).for_each(copy);
        }
        Ok(())
    }

    /// Every key with its group: `(keys, offsets, values)`, keys in the
    /// map's internal (mixed) order.
    pub fn export(&self) -> Result<(Vec<u64>, Vec<u64>, Vec<V>)> {
        let parts: Vec<Csr<V>> = if self.on_caller {
            self.parts.iter().map(Part::groups).collect::<Result<_>>()?
        } else {
            self.parts
                .par_iter()
                .map(Part::groups)
                .collect::<Result<_>>()?
        };
        let n = parts.iter().map(|c| c.len()).sum::<usize>();
        let m = parts.iter().map(|c| c.values.len()).sum::<usize>();
        let (mut keys, mut offsets, mut values) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n + 1),
            Vec::with_capacity(m),
        );
        offsets.push(0);
        for c in parts {
            let base = values.len() as u64;
            keys.extend(c.keys.iter().map(|&k| unmix(k)));
            offsets.extend(c.ends.iter().map(|&e| base + e));
            values.extend_from_slice(&c.values);
        }
        Ok((keys, offsets, values))
    }

    /// Check every bucket and value of every partition; returns the
    /// number of pairs.
    pub fn verify(&self) -> Result<u64> {
        self.parts
            .par_iter()
            .map(|p| Ok(p.groups()?.values.len() as u64))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(m: &IntMultiMap<u64>) -> usize {
        m.segments().filter(|s| s.is_owned()).count()
    }

    #[test]
    fn compaction_packs_large_maps_into_one_block_and_keeps_every_value() {
        let mut m: IntMultiMap<u64> = IntMultiMap::new(false);
        let keys: Vec<u64> = (0..1_000_000).collect();
        let vals: Vec<u64> = keys.iter().map(|k| k * 3).collect();
        m.add_many(&keys, &vals).expect("add");
        m.compact().expect("compact");
        assert_eq!(owned(&m), 0, "every segment in the block");
        let (offsets, got) = m.get_many(&keys).expect("get_many");
        assert_eq!(offsets.len(), keys.len() + 1);
        assert_eq!(got, vals);

        // Changes after packing fold into buffers of their own, and the
        // next compaction packs everything again.
        m.add_many(&[1, 2_000_000], &[9, 10]).expect("add");
        m.remove_many(&[2]).expect("remove");
        m.compact().expect("compact");
        assert_eq!(owned(&m), 0);
        assert_eq!(m.get(1).expect("get"), vec![3, 9]);
        assert_eq!(m.get(2).expect("get"), Vec::<u64>::new());
        assert_eq!(m.get(2_000_000).expect("get"), vec![10]);
        assert_eq!(m.verify().expect("verify"), 1_000_001);

        // A small map is left in its buffers.
        let mut small: IntMultiMap<u64> = IntMultiMap::new(false);
        small.add_many(&[1, 2], &[3, 4]).expect("add");
        small.compact().expect("compact");
        assert!(owned(&small) > 0);
        assert_eq!(small.get(2).expect("get"), vec![4]);
    }

    #[test]
    fn a_map_on_the_calling_thread_holds_what_a_pool_map_holds_and_packs_when_small() {
        let keys: Vec<u64> = (0..50_000u64).map(|k| k % 7_000).collect();
        let vals: Vec<u64> = (0..50_000).collect();
        let gone: Vec<u64> = (0..7_000).step_by(3).collect();
        let mut pool: IntMultiMap<u64> = IntMultiMap::truncated(false, 8);
        let mut here: IntMultiMap<u64> = IntMultiMap::truncated(false, 8).on_calling_thread();
        for m in [&mut pool, &mut here] {
            m.add_many(&keys[..20_000], &vals[..20_000]).expect("add");
            m.remove_many(&gone).expect("remove");
            m.add_many(&keys[20_000..], &vals[20_000..]).expect("add");
        }
        // Keys given mixed land where the same keys given plain do.
        let mixed: Vec<u64> = (7_000..7_100u64).map(mix).collect();
        pool.add_many(&(7_000..7_100).collect::<Vec<_>>(), &vals[..100])
            .expect("add");
        here.add_many_mixed(&mixed, &vals[..100]).expect("add");
        assert_eq!(
            here.export().expect("export"),
            pool.export().expect("export")
        );
        here.compact().expect("compact");
        assert_eq!(
            owned(&here),
            0,
            "a small map on the calling thread is packed"
        );
        let probe: Vec<u64> = (0..7_200).collect();
        assert_eq!(
            here.get_many(&probe).expect("get_many"),
            pool.get_many(&probe).expect("get_many")
        );
        assert_eq!(
            here.verify().expect("verify"),
            pool.verify().expect("verify")
        );
    }
}
