//! Integer maps against a HashMap, saving and opening, and damaged files.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use vastdict_core::intmap::{write_frozen, FrozenIntMap, IntMap, OverlayMap};
use vastdict_core::Error;

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<(u64, u32)>),
    Remove(Vec<u64>),
}

fn key() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), 0u64..64, any::<u64>()]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec((key(), any::<u32>()), 0..200).prop_map(Op::Put),
            prop::collection::vec(key(), 0..50).prop_map(Op::Remove),
        ],
        1..20,
    )
}

fn check(m: &IntMap<u32>, model: &HashMap<u64, u32>, probe: &[u64]) {
    assert_eq!(m.len(), model.len());
    let mut out = vec![0u32; probe.len()];
    let mut found = vec![false; probe.len()];
    m.get_many(probe, &mut out, &mut found).expect("get_many");
    for (i, k) in probe.iter().enumerate() {
        assert_eq!(found[i], model.contains_key(k), "key {k}");
        if found[i] {
            assert_eq!(out[i], model[k]);
        }
        assert_eq!(m.get(*k), model.get(k).copied());
    }
    let all: HashMap<u64, u32> = m.iter().collect();
    assert_eq!(&all, model);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matches_a_hashmap(ops in ops()) {
        let mut m: IntMap<u32> = IntMap::new();
        let mut model = HashMap::new();
        let mut probe = vec![0, u64::MAX, 1, 2];
        for op in ops {
            match op {
                Op::Put(pairs) => {
                    let (k, v): (Vec<u64>, Vec<u32>) = pairs.iter().copied().unzip();
                    let new = m.put_many(&k, &v).expect("put_many");
                    let before = model.len();
                    for (k, v) in pairs {
                        model.insert(k, v);
                    }
                    prop_assert_eq!(new, model.len() - before);
                    probe.extend(k);
                }
                Op::Remove(keys) => {
                    let gone = m.remove_many(&keys);
                    let mut n = 0;
                    for k in &keys {
                        n += usize::from(model.remove(k).is_some());
                    }
                    prop_assert_eq!(gone, n);
                    probe.extend(keys);
                }
            }
        }
        check(&m, &model, &probe);
    }
}

#[test]
fn large_batches_run_in_parallel_and_agree() {
    let n = 300_000u64;
    let keys: Vec<u64> = (0..n).map(|i| i * 3).collect();
    let vals: Vec<u32> = (0..n).map(|i| i as u32).collect();
    let mut m: IntMap<u32> = IntMap::new();
    assert_eq!(m.put_many(&keys, &vals).expect("put"), n as usize);
    // Duplicates in one batch: the last wins.
    let dup_keys = vec![3u64, 3, 3, 6];
    assert_eq!(m.put_many(&dup_keys, &[7, 8, 9, 1]).expect("put"), 0);
    let probe: Vec<u64> = (0..2 * n).collect();
    let mut out = vec![0u32; probe.len()];
    let mut found = vec![false; probe.len()];
    m.get_many(&probe, &mut out, &mut found).expect("get");
    for (i, &k) in probe.iter().enumerate() {
        let want = match k {
            3 => Some(9),
            6 => Some(1),
            k if k % 3 == 0 && k < 3 * n => Some((k / 3) as u32),
            _ => None,
        };
        assert_eq!(found[i].then_some(out[i]), want, "key {k}");
    }
    // A big batch (merged, not inserted) with each key three times.
    let triple: Vec<u64> = keys.iter().flat_map(|&k| [k, k, k]).collect();
    let tvals: Vec<u32> = (0..triple.len() as u32).collect();
    assert_eq!(m.put_many(&triple, &tvals).expect("put"), 0);
    for (i, &k) in keys.iter().enumerate().step_by(997) {
        assert_eq!(m.get(k), Some((3 * i + 2) as u32), "last of three wins");
    }
    m.put_many(&keys, &vals).expect("put back");
    let per_entry = m.resident_bytes() as f64 / m.len() as f64;
    assert!(per_entry < 17.0, "{per_entry} bytes per entry");
    let removed: Vec<u64> = (0..n).map(|i| i * 6).collect();
    assert_eq!(m.remove_many(&removed), (n / 2) as usize);
    assert_eq!(m.len(), (n - n / 2) as usize);
    assert!(m
        .put_many(&[1, 2], &[1])
        .expect_err("lengths differ")
        .to_string()
        .contains("differ in length"));
}

fn saved(m: &IntMap<u32>, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("m.vim");
    let mut pairs: Vec<(u64, u32)> = m.iter_mixed().collect();
    pairs.sort_unstable_by_key(|p| p.0);
    write_frozen(&path, pairs.len() as u64, || pairs.iter().copied()).expect("save");
    path
}

#[test]
fn save_and_open_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut m: IntMap<u32> = IntMap::new();
    let keys: Vec<u64> = (0..50_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .chain([0, u64::MAX])
        .collect();
    let vals: Vec<u32> = (0..keys.len() as u32).collect();
    m.put_many(&keys, &vals).expect("put");
    let path = saved(&m, &dir);
    let f: FrozenIntMap<u32> = FrozenIntMap::open(&path).expect("open");
    assert_eq!(f.len(), m.len() as u64);
    assert_eq!(f.verify().expect("verify"), m.len() as u64);
    let probe: Vec<u64> = keys.iter().copied().chain(1..1000).collect();
    let mut out = vec![0u32; probe.len()];
    let mut found = vec![false; probe.len()];
    f.get_many(&probe, &mut out, &mut found).expect("get");
    for (i, &k) in probe.iter().enumerate() {
        assert_eq!(found[i].then_some(out[i]), m.get(k), "key {k}");
        assert_eq!(f.get(k).expect("get"), m.get(k));
    }
    let all: HashMap<u64, u32> = f.iter().collect();
    assert_eq!(all, m.iter().collect());
    let wrong = FrozenIntMap::<u64>::open(&path)
        .err()
        .expect("dtype checked");
    assert!(matches!(wrong, Error::Format { .. }));
    // Empty maps save and open too.
    let dir2 = tempfile::tempdir().expect("tmp");
    let empty = saved(&IntMap::new(), &dir2);
    let e: FrozenIntMap<u32> = FrozenIntMap::open(&empty).expect("open empty");
    assert_eq!((e.len(), e.get(0).expect("get")), (0, None));
}

#[test]
fn damage_is_caught() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut m: IntMap<u32> = IntMap::new();
    let keys: Vec<u64> = (0..300u64).collect();
    let vals: Vec<u32> = (0..300u32).map(|v| v * 11).collect();
    m.put_many(&keys, &vals).expect("put");
    let path = saved(&m, &dir);
    let good = std::fs::read(&path).expect("read");
    let bad = dir.path().join("bad.vim");
    for at in 0..good.len() {
        let mut b = good.clone();
        b[at] ^= 0x24;
        std::fs::write(&bad, &b).expect("write");
        let f = match FrozenIntMap::<u32>::open(&bad) {
            Ok(f) => f,
            Err(Error::Corruption { .. } | Error::Format { .. }) => continue,
            Err(e) => panic!("byte {at}: {e}"),
        };
        for &k in &keys {
            match f.get(k) {
                Ok(Some(v)) => assert_eq!(v, m.get(k).expect("present"), "byte {at}"),
                Ok(None) => panic!("byte {at}: key {k} silently missing"),
                Err(Error::Corruption { .. }) => {}
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Changes layered over a saved map, saved again: always the model.
    #[test]
    fn overlay_on_a_saved_map(first in ops(), second in ops()) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.vim");
        let mut model = HashMap::new();
        let mut o: OverlayMap<u32> = OverlayMap::new(None);
        let mut probe = vec![0, u64::MAX];
        for (round, ops) in [first, second].into_iter().enumerate() {
            for op in ops {
                match op {
                    Op::Put(pairs) => {
                        let (k, v): (Vec<u64>, Vec<u32>) = pairs.iter().copied().unzip();
                        let before = model.len();
                        for (k, v) in pairs {
                            model.insert(k, v);
                        }
                        prop_assert_eq!(o.put_many(&k, &v).expect("put"), model.len() - before);
                        probe.extend(k);
                    }
                    Op::Remove(keys) => {
                        let n = keys.iter().filter(|k| model.remove(k).is_some()).count();
                        prop_assert_eq!(o.remove_many(&keys).expect("remove"), n);
                        probe.extend(keys);
                    }
                }
                prop_assert_eq!(o.len(), model.len());
            }
            let mut out = vec![0u32; probe.len()];
            let mut found = vec![false; probe.len()];
            o.get_many(&probe, &mut out, &mut found).expect("get");
            for (i, k) in probe.iter().enumerate() {
                prop_assert_eq!(found[i].then_some(out[i]), model.get(k).copied());
            }
            let all: HashMap<u64, u32> = o.iter().collect();
            prop_assert_eq!(&all, &model);
            o.save(&path).expect("save");
            let base = Arc::new(FrozenIntMap::open(&path).expect("open"));
            prop_assert_eq!(base.len() as usize, model.len());
            if round == 0 {
                o = OverlayMap::new(Some(base));
            }
        }
    }
}

/// Keys chosen so their mixed forms crowd the end of one partition (mix is
/// public and invertible): the table must grow its slack, not fail.
#[test]
fn keys_crowding_a_partition_end() {
    use vastdict_core::intmap::unmix;
    let keys: Vec<u64> = (0..20_000u64)
        .map(|i| unmix(0x00FF_FFFF_FFFF_FFFF - i))
        .collect();
    let vals: Vec<u32> = (0..keys.len() as u32).collect();
    let mut one: IntMap<u32> = IntMap::new();
    for (&k, &v) in keys.iter().zip(&vals) {
        one.put(k, v);
    }
    let mut batch: IntMap<u32> = IntMap::new();
    batch.put_many(&keys, &vals).expect("put");
    for m in [&one, &batch] {
        assert_eq!(m.len(), keys.len());
        for (&k, &v) in keys.iter().zip(&vals).step_by(101) {
            assert_eq!(m.get(k), Some(v));
        }
    }
}
