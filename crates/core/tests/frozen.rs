//! Frozen files: round trips against a map, duplicates, spilled builds,
//! large items, and damage anywhere in a file.

use proptest::prelude::*;
use std::collections::HashMap;
use vastdict_core::frozen::{build_pairs, BuildOptions, Frozen, OnDuplicate};
use vastdict_core::Error;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn expected(pairs: &Pairs, policy: OnDuplicate) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut m = HashMap::new();
    for (k, v) in pairs {
        if policy == OnDuplicate::First {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn check(f: &Frozen, want: &HashMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(f.len(), want.len() as u64);
    for (k, v) in want {
        assert_eq!(f.get(k).expect("ok"), Some(&v[..]), "key {k:?}");
    }
    let keys: Vec<&[u8]> = want.keys().map(|k| &k[..]).collect();
    let got = f.get_many(&keys).expect("ok");
    for (k, g) in keys.iter().zip(got) {
        assert_eq!(g, Some(&want[*k][..]));
    }
    let (all, end) = f.scan((0, 0), usize::MAX).expect("ok");
    assert!(end.is_none());
    let scanned: HashMap<Vec<u8>, Vec<u8>> = all
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(&scanned, want);
    assert_eq!(f.verify().expect("ok"), want.len() as u64);
}

fn build(pairs: &Pairs, opts: &BuildOptions) -> (tempfile::TempDir, Frozen) {
    let dir = tempfile::tempdir().expect("ok");
    let path = dir.path().join("f.vdf");
    build_pairs(&path, pairs.iter().map(|(k, v)| (k, v)), opts).expect("ok");
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ok").collect();
    assert_eq!(names.len(), 1, "work files left behind");
    let f = Frozen::open(&path).expect("ok");
    (dir, f)
}

fn small_keys() -> impl Strategy<Value = Pairs> {
    prop::collection::vec(
        (
            prop::collection::vec(0u8..4, 0..4),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_in_memory(pairs in small_keys(), first in any::<bool>()) {
        let policy = if first { OnDuplicate::First } else { OnDuplicate::Last };
        let opts = BuildOptions { on_duplicate: policy, ..BuildOptions::default() };
        let (_d, f) = build(&pairs, &opts);
        check(&f, &expected(&pairs, policy));
        prop_assert_eq!(f.get(b"not there").expect("ok"), None);
    }

    #[test]
    fn round_trip_spilled(pairs in small_keys(), first in any::<bool>()) {
        let policy = if first { OnDuplicate::First } else { OnDuplicate::Last };
        // A budget this small spills after a few pairs.
        let opts = BuildOptions { on_duplicate: policy, memory_budget: 512, ..BuildOptions::default() };
        let (_d, f) = build(&pairs, &opts);
        check(&f, &expected(&pairs, policy));
    }
}

#[test]
fn many_pairs_spilled_and_not_agree() {
    let pairs: Pairs = (0..50_000u32)
        .map(|i| (format!("key{i}").into_bytes(), i.to_le_bytes().to_vec()))
        .collect();
    let want = expected(&pairs, OnDuplicate::Last);
    let (_d, a) = build(&pairs, &BuildOptions::default());
    check(&a, &want);
    let small = BuildOptions {
        memory_budget: 200_000,
        ..BuildOptions::default()
    };
    let (_e, b) = build(&pairs, &small);
    check(&b, &want);
    assert_eq!(a.file_len(), b.file_len());
}

#[test]
fn duplicates_can_be_an_error() {
    let dir = tempfile::tempdir().expect("ok");
    let path = dir.path().join("f.vdf");
    let opts = BuildOptions {
        on_duplicate: OnDuplicate::Error,
        ..BuildOptions::default()
    };
    let err = build_pairs(&path, [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")], &opts)
        .expect_err("should fail");
    assert!(err.to_string().contains("duplicate key \"a\""), "{err}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).expect("ok").count(), 0);
}

#[test]
fn large_items_and_empty_ones() {
    let big = vec![7u8; 3 << 20];
    let mut pairs: Pairs = vec![
        (vec![], vec![]),
        (b"big".to_vec(), big.clone()),
        (big.clone(), b"big key".to_vec()),
        (b"also big".to_vec(), big[..(1 << 20) + 3].to_vec()),
    ];
    for i in 0..100u32 {
        pairs.push((i.to_le_bytes().to_vec(), vec![i as u8; i as usize]));
    }
    let (_d, f) = build(&pairs, &BuildOptions::default());
    check(&f, &expected(&pairs, OnDuplicate::Last));
}

#[test]
fn empty_build() {
    let (_d, f) = build(&Vec::new(), &BuildOptions::default());
    check(&f, &HashMap::new());
    assert_eq!(f.get(b"").expect("ok"), None);
}

/// Hits skip the check of their bucket's index block (their record is
/// checked and holds the key asked for), so the check has to happen on
/// misses: damage anywhere in the index makes some miss fail loudly
/// instead of reporting a key absent on the word of a damaged block.
#[test]
fn misses_check_the_index_block() {
    let pairs: Pairs = (0..60u32)
        .map(|i| (format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    let dir = tempfile::tempdir().expect("ok");
    let path = dir.path().join("f.vdf");
    let h = build_pairs(
        &path,
        pairs.iter().map(|(k, v)| (k, v)),
        &BuildOptions::default(),
    )
    .expect("ok");
    let good = std::fs::read(&path).expect("ok");
    let absent: Vec<Vec<u8>> = (0..400u32).map(|i| format!("x{i}").into_bytes()).collect();
    let bad_path = dir.path().join("bad.vdf");
    for at in h.index_off()..h.table_off() {
        let mut b = good.clone();
        b[at as usize] ^= 0x01;
        std::fs::write(&bad_path, &b).expect("ok");
        let f = Frozen::open(&bad_path).expect("the header is intact");
        let caught = absent
            .iter()
            .any(|k| matches!(f.get(k), Err(Error::Corruption { .. })));
        assert!(caught, "index byte {at}: no miss noticed the damage");
    }
}

/// Flip every byte of a small file in turn: each lookup then returns the
/// right value, reports a miss only for keys it never had, or fails with
/// `Corruption`, and never panics.
#[test]
fn damage_anywhere_is_caught() {
    let pairs: Pairs = (0..60u32)
        .map(|i| {
            (
                format!("k{i}").into_bytes(),
                format!("value {i}").into_bytes(),
            )
        })
        .collect();
    let want = expected(&pairs, OnDuplicate::Last);
    let dir = tempfile::tempdir().expect("ok");
    let path = dir.path().join("f.vdf");
    build_pairs(
        &path,
        pairs.iter().map(|(k, v)| (k, v)),
        &BuildOptions::default(),
    )
    .expect("ok");
    let good = std::fs::read(&path).expect("ok");
    let bad_path = dir.path().join("bad.vdf");
    let mut caught = 0;
    for at in 0..good.len() {
        let mut b = good.clone();
        b[at] ^= 0x5a;
        std::fs::write(&bad_path, &b).expect("ok");
        let f = match Frozen::open(&bad_path) {
            Ok(f) => f,
            Err(Error::Corruption { .. } | Error::Format { .. }) => {
                caught += 1;
                continue;
            }
            Err(e) => panic!("byte {at}: unexpected error {e}"),
        };
        let mut damaged = false;
        for (k, v) in &want {
            match f.get(k) {
                Ok(Some(got)) => assert_eq!(got, &v[..], "byte {at}: wrong value"),
                Ok(None) => panic!("byte {at}: key {k:?} silently missing"),
                Err(Error::Corruption { .. }) => damaged = true,
                Err(e) => panic!("byte {at}: unexpected error {e}"),
            }
        }
        let keys: Vec<&[u8]> = want.keys().map(|k| &k[..]).collect();
        match f.get_many(&keys) {
            Ok(got) => {
                for (k, g) in keys.iter().zip(got) {
                    assert_eq!(g, Some(&want[*k][..]), "byte {at}: get_many of {k:?}");
                }
            }
            Err(Error::Corruption { .. }) => damaged = true,
            Err(e) => panic!("byte {at}: unexpected error {e}"),
        }
        if damaged || f.verify().is_err() {
            caught += 1;
        }
    }
    // The header page past its first 160 bytes is padding, and each table
    // entry has a reserved byte (the sentinel entry three more): those
    // may change harmlessly. Everything else is caught.
    let meaningful = good.len() - (4096 - 160);
    assert!(caught + 12 >= meaningful, "{caught} of {meaningful}");
    for cut in [0, 10, 4095, 4096, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad_path, &good[..cut]).expect("ok");
        assert!(matches!(
            Frozen::open(&bad_path),
            Err(Error::Corruption { .. } | Error::Format { .. })
        ));
    }
}
