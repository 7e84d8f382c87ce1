//! Integer multimaps against a BTreeMap of Vecs, saving and opening, and
//! damaged files.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vastdict_core::intmap::{mix, unmix};
use vastdict_core::multimap::{file_info, IntMultiMap};
use vastdict_core::Error;

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<(u64, u32)>),
    Remove(Vec<u64>),
    Compact,
    Reopen,
}

fn key() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), 0u64..40, any::<u64>()]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::collection::vec((key(), 0u32..6), 0..200).prop_map(Op::Add),
            2 => prop::collection::vec(key(), 0..30).prop_map(Op::Remove),
            1 => Just(Op::Compact),
            1 => Just(Op::Reopen),
        ],
        1..16,
    )
}

type Model = BTreeMap<u64, Vec<u32>>;

/// The key a map that keeps `64 - drop` mixed bits files `k` under.
fn canon(k: u64, drop: u32) -> u64 {
    unmix(mix(k) & !((1u64 << drop) - 1))
}

fn check(m: &IntMultiMap<u32>, model: &Model, probe: &[u64]) {
    let drop = m.dropped_bits();
    assert_eq!(m.len().expect("len"), model.len() as u64);
    let pairs: usize = model.values().map(Vec::len).sum();
    assert_eq!(m.num_values(), pairs as u64);
    let (offsets, values) = m.get_many(probe).expect("get_many");
    let mut counts = vec![0u64; probe.len()];
    m.count_many(probe, &mut counts).expect("count_many");
    for (i, k) in probe.iter().enumerate() {
        let want = model.get(&canon(*k, drop)).cloned().unwrap_or_default();
        let got = &values[offsets[i] as usize..offsets[i + 1] as usize];
        assert_eq!(got, &want[..], "key {k}");
        assert_eq!(counts[i], want.len() as u64);
        assert_eq!(m.get(*k).expect("get"), want);
    }
    let (keys, offs, vals) = m.export().expect("export");
    let all: Model = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, vals[offs[i] as usize..offs[i + 1] as usize].to_vec()))
        .collect();
    assert_eq!(&all, model);
}

fn run(ops: Vec<Op>, unique: bool, drop: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.vdmm");
    let mut m: IntMultiMap<u32> = IntMultiMap::truncated(unique, drop);
    let mut model = Model::new();
    let mut probe = vec![0, u64::MAX, 1, 2, 3];
    for op in ops {
        match op {
            Op::Add(pairs) => {
                let (k, v): (Vec<u64>, Vec<u32>) = pairs.iter().copied().unzip();
                let added = m.add_many(&k, &v).expect("add_many");
                let mut want = 0;
                for (k, v) in pairs {
                    let g = model.entry(canon(k, drop)).or_default();
                    if !unique || !g.contains(&v) {
                        g.push(v);
                        want += 1;
                    }
                    probe.push(k);
                }
                assert_eq!(added, want);
            }
            Op::Remove(keys) => {
                let gone = m.remove_many(&keys).expect("remove_many");
                let mut want = 0;
                let mut seen = std::collections::HashSet::new();
                for k in keys {
                    let k = canon(k, drop);
                    if seen.insert(k) && model.remove(&k).is_some() {
                        want += 1;
                    }
                }
                assert_eq!(gone, want);
            }
            Op::Compact => m.compact().expect("compact"),
            Op::Reopen => {
                m.save(&path).expect("save");
                m = IntMultiMap::open(&path).expect("open");
                assert_eq!(m.unique(), unique);
                assert_eq!(m.dropped_bits(), drop);
                let info = file_info(&path).expect("info");
                assert_eq!(info.keys, model.len() as u64);
            }
        }
        check(&m, &model, &probe);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matches_a_map_of_lists(ops in ops()) {
        run(ops, false, 0);
    }

    #[test]
    fn truncated_keys_match_a_map_of_their_kept_bits(ops in ops(), drop in 1u32..=40) {
        run(ops, false, drop);
    }

    #[test]
    fn set_semantics_match_a_map_of_sets(ops in ops()) {
        run(ops, true, 0);
    }
}

#[test]
fn truncated_maps_merge_keys_equal_in_their_kept_bits() {
    let mut m: IntMultiMap<u32> = IntMultiMap::truncated(false, 20);
    let a = 0x1234_5678_9abc_def0u64;
    let b = unmix(mix(a) ^ 0x8_0000); // differs in dropped bit 19
    let c = unmix(mix(a) ^ 0x10_0000); // differs in kept bit 20
    m.add_many(&[a, b, c], &[1, 2, 3]).expect("add");
    assert_eq!(m.get(a).expect("get"), [1, 2]);
    assert_eq!(m.get(b).expect("get"), [1, 2]);
    assert_eq!(m.get(c).expect("get"), [3]);
    m.compact().expect("compact");
    assert_eq!(m.get(b).expect("get"), [1, 2]);
    assert_eq!(m.len().expect("len"), 2);
}

#[test]
fn keys_crowded_into_one_bucket_are_all_found() {
    // Mixed keys that differ only in their lowest bits share a partition,
    // a bucket and the unary-coded bits above those: one run of 1s far
    // longer than a lookup reads at once, with groups of one and of
    // several values side by side.
    let base = 7u64 << 56;
    let keys: Vec<u64> = (0..300u64).map(|i| base | (i * 3)).collect();
    let mut vals: Vec<u32> = (0..300u32).collect();
    let mut all = keys.clone();
    all.extend(keys.iter().step_by(7));
    vals.extend(keys.iter().step_by(7).map(|&k| (k & 0xffff) as u32 + 1000));
    let mut m: IntMultiMap<u32> = IntMultiMap::new(false);
    m.add_many_mixed(&all, &vals).expect("add");
    m.compact().expect("compact");
    for i in 0..900u64 {
        let mut out = Vec::new();
        let found = m.probe_mixed(base | i).get_into(&mut out).expect("get");
        let mut want: Vec<u32> = all
            .iter()
            .zip(&vals)
            .filter(|(&k, _)| k == base | i)
            .map(|(_, &v)| v)
            .collect();
        assert_eq!(found, !want.is_empty(), "key {i}");
        out.sort_unstable();
        want.sort_unstable();
        assert_eq!(out, want, "key {i}");
    }
    assert_eq!(m.verify().expect("verify"), all.len() as u64);
}

#[test]
fn growth_folds_changes_and_keeps_every_value() {
    let mut m: IntMultiMap<u64> = IntMultiMap::new(false);
    let mut model = BTreeMap::<u64, Vec<u64>>::new();
    for round in 0..20u64 {
        let keys: Vec<u64> = (0..50_000u64)
            .map(|i| (i * 7919 + round) % 120_000)
            .collect();
        let vals: Vec<u64> = keys.iter().map(|k| k ^ (round << 40)).collect();
        m.add_many(&keys, &vals).expect("add");
        for (k, v) in keys.iter().zip(&vals) {
            model.entry(*k).or_default().push(*v);
        }
        if round % 5 == 4 {
            let gone: Vec<u64> = (0..1000u64).map(|i| i * 97 + round).collect();
            m.remove_many(&gone).expect("remove");
            for k in gone {
                model.remove(&k);
            }
        }
    }
    assert!(
        m.resident_bytes() < m.num_values() as usize * 12,
        "values stay encoded"
    );
    let probe: Vec<u64> = (0..130_000).collect();
    let (offsets, values) = m.get_many(&probe).expect("get_many");
    for (i, k) in probe.iter().enumerate() {
        let got = &values[offsets[i] as usize..offsets[i + 1] as usize];
        assert_eq!(got, model.get(k).map_or(&[][..], |v| &v[..]), "key {k}");
    }
    assert_eq!(m.len().expect("len"), model.len() as u64);
    assert_eq!(m.verify().expect("verify"), m.num_values());
}

#[test]
fn appends_layer_over_a_saved_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.vdmm");
    let mut m: IntMultiMap<u32> = IntMultiMap::new(false);
    let keys: Vec<u64> = (0..10_000).collect();
    let vals: Vec<u32> = (0..10_000).collect();
    m.add_many(&keys, &vals).expect("add");
    m.save(&path).expect("save");
    let mut a: IntMultiMap<u32> = IntMultiMap::open(&path).expect("open");
    a.add_many(&[5, 10_001], &[7, 8]).expect("add");
    a.remove_many(&[6]).expect("remove");
    // The file itself is unchanged until saved again.
    let r: IntMultiMap<u32> = IntMultiMap::open(&path).expect("open");
    assert_eq!(r.get(5).expect("get"), vec![5]);
    a.save(&path).expect("save over the mapped file");
    let r: IntMultiMap<u32> = IntMultiMap::open(&path).expect("open");
    assert_eq!(r.get(5).expect("get"), vec![5, 7]);
    assert_eq!(r.get(6).expect("get"), Vec::<u32>::new());
    assert_eq!(r.get(10_001).expect("get"), vec![8]);
    assert_eq!(r.len().expect("len"), 10_000);
    assert!(matches!(
        IntMultiMap::<u64>::open(&path),
        Err(Error::Format { .. })
    ));
}

/// Every byte of a small file flipped in turn: opening or reading fails
/// with a corruption (or format) error, or returns exactly the right
/// groups; it never panics.
#[test]
fn damaged_files_never_give_wrong_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.vdmm");
    let mut m: IntMultiMap<u32> = IntMultiMap::new(false);
    let keys: Vec<u64> = (0..300u64).map(|i| i % 100).collect();
    let vals: Vec<u32> = (0..300).collect();
    m.add_many(&keys, &vals).expect("add");
    m.save(&path).expect("save");
    let good = std::fs::read(&path).expect("read");
    let probe: Vec<u64> = (0..110).collect();
    let want = m.get_many(&probe).expect("get_many");
    let bad = dir.path().join("bad.vdmm");
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x41;
        std::fs::write(&bad, &b).expect("write");
        let Ok(d) = IntMultiMap::<u32>::open(&bad) else {
            continue;
        };
        match d.get_many(&probe) {
            Ok(got) => assert_eq!(got, want, "byte {i} flipped gave wrong groups"),
            Err(Error::Corruption { .. }) => {}
            Err(e) => panic!("byte {i}: unexpected {e}"),
        }
        match d.verify() {
            Ok(_) | Err(Error::Corruption { .. }) => {}
            Err(e) => panic!("byte {i}: unexpected {e}"),
        }
    }
    for cut in [0, 7, 100, 4224, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).expect("write");
        assert!(IntMultiMap::<u32>::open(&bad).is_err(), "cut at {cut}");
    }
}
