//! Frozen files: round trips against a map, duplicates, spilled builds,
//! large items, and damage anywhere in a file.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use vastdict_core::direct::Cache;
use vastdict_core::frozen::{
    add_file, build_pairs, BuildOptions, Builder, Column, FileFormat, FileSource, FileStats,
    Frozen, OnDuplicate,
};
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

/// Build from a TSV file; returns the file and what reading it did.
fn build_tsv(
    text: &[u8],
    src: impl Fn(&std::path::Path) -> FileSource,
    opts: &BuildOptions,
) -> (tempfile::TempDir, Frozen, FileStats) {
    let dir = tempfile::tempdir().expect("ok");
    let input = dir.path().join("in.tsv");
    std::fs::write(&input, text).expect("ok");
    let path = dir.path().join("f.vdf");
    let mut b = Builder::new(&path, opts.clone()).expect("ok");
    let stats = add_file(&mut b, &src(&input), &AtomicU64::new(0)).expect("ok");
    b.finish().expect("ok");
    let f = Frozen::open(&path).expect("ok");
    (dir, f, stats)
}

/// Keys and values that need no quoting in a TSV line.
fn tsv_pairs() -> impl Strategy<Value = Pairs> {
    let field = prop::collection::vec(
        any::<u8>().prop_filter("no separators", |b| !b"\t\r\n".contains(b)),
        0..12,
    );
    let key = prop::collection::vec(b'a'..b'e', 0..4);
    prop::collection::vec((key, field), 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A TSV file built in place (mapped) and read into a spilling arena
    /// give the same store, with the value column first, a header, an
    /// extra column and CRLF line ends.
    #[test]
    fn tsv_in_place_and_copied_agree(pairs in tsv_pairs(), first in any::<bool>()) {
        let policy = if first { OnDuplicate::First } else { OnDuplicate::Last };
        let mut text = b"val\textra\tkey\r\n".to_vec();
        for (k, v) in &pairs {
            for part in [&v[..], b"\tx\t", &k[..], b"\r\n"] {
                text.extend_from_slice(part);
            }
        }
        let src = |p: &std::path::Path| FileSource {
            header: true,
            key: Column::Name("key".into()),
            value: Column::Index(0),
            ..FileSource::new(p, FileFormat::Tsv)
        };
        let want = expected(&pairs, policy);
        let opts = BuildOptions { on_duplicate: policy, ..BuildOptions::default() };
        // Written through the page cache and around it alike.
        let cache = Some(if first { Cache::Bypass } else { Cache::Through });
        let opts = BuildOptions { cache, ..opts };
        let (_d, mapped, stats) = build_tsv(&text, src, &opts);
        prop_assert!(stats.read_in_place);
        prop_assert_eq!(stats.pairs, pairs.len() as u64);
        check(&mapped, &want);
        let small = BuildOptions { memory_budget: 512, ..opts };
        let (_e, copied, stats) = build_tsv(&text, src, &small);
        // (Only a file of a line or two fits a 512-byte budget mapped.)
        prop_assert!(!stats.read_in_place || text.len() < 64);
        check(&copied, &want);
    }

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
    let direct = BuildOptions {
        cache: Some(Cache::Bypass),
        ..BuildOptions::default()
    };
    let (_d, a) = build(&pairs, &direct);
    check(&a, &want);
    let small = BuildOptions {
        memory_budget: 200_000,
        cache: Some(Cache::Through),
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

#[test]
fn short_lines_past_the_budget_are_read_again_into_the_arena() {
    // The file fits the pairs' share of a 64 MiB budget (16 MiB), but its
    // 1.6M lines at 16 bytes each do not; the build starts over and
    // copies pairs instead, spilling them to disk.
    let n = 1_600_000u32;
    let mut text = Vec::new();
    let mut pairs = Pairs::new();
    for i in 0..n {
        let k = format!("{:x}", i % 1_500_000).into_bytes();
        text.extend_from_slice(&k);
        text.extend_from_slice(b"\t");
        text.push(b'a' + (i % 26) as u8);
        text.push(b'\n');
        pairs.push((k, vec![b'a' + (i % 26) as u8]));
    }
    assert!(text.len() < 16 << 20);
    let opts = BuildOptions {
        memory_budget: 64 << 20,
        ..BuildOptions::default()
    };
    let src = |p: &std::path::Path| FileSource::new(p, FileFormat::Tsv);
    let (_d, f, stats) = build_tsv(&text, src, &opts);
    assert!(!stats.read_in_place);
    assert_eq!(stats.pairs, u64::from(n));
    check(&f, &expected(&pairs, OnDuplicate::Last));
}

#[test]
fn a_bad_line_deep_in_a_mapped_file_is_named_by_its_number() {
    // Lines of 24 bytes: line 600,001 sits in the second 8 MiB chunk.
    let mut text = Vec::new();
    for i in 0..700_000u32 {
        if i == 600_000 {
            text.extend_from_slice(b"only-one-column\n");
        } else {
            text.extend_from_slice(format!("key{i:012}\tvalue\n").as_bytes());
        }
    }
    let dir = tempfile::tempdir().expect("ok");
    let input = dir.path().join("in.tsv");
    std::fs::write(&input, &text).expect("ok");
    let mut b = Builder::new(&dir.path().join("f.vdf"), BuildOptions::default()).expect("ok");
    let src = FileSource::new(&input, FileFormat::Tsv);
    match add_file(&mut b, &src, &AtomicU64::new(0)) {
        Err(Error::Input { line, reason, .. }) => {
            assert_eq!(line, 600_001);
            assert!(reason.contains("column"), "{reason}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    let skip = FileSource {
        skip_errors: true,
        ..src
    };
    let mut b = Builder::new(&dir.path().join("f.vdf"), BuildOptions::default()).expect("ok");
    let stats = add_file(&mut b, &skip, &AtomicU64::new(0)).expect("ok");
    assert!(stats.read_in_place);
    assert_eq!((stats.pairs, stats.skipped), (699_999, 1));
}

/// Pages of the file at `path` in the page cache, and all its pages.
fn cached_pages(path: &std::path::Path) -> (usize, usize) {
    let file = std::fs::File::open(path).expect("open");
    // SAFETY: a read-only mapping of a test file, dropped at return.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let pages = map.len().div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: `vec` has one byte per page of the mapping.
    let r = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), vec.as_mut_ptr()) };
    assert_eq!(r, 0);
    (vec.iter().filter(|&&b| b & 1 == 1).count(), pages)
}

#[test]
fn a_file_that_fits_is_cached_when_its_build_returns() {
    let pairs: Pairs = (0..200_000u32)
        .map(|i| {
            (
                i.to_le_bytes().to_vec(),
                format!("value {i:>40}").into_bytes(),
            )
        })
        .collect();
    for cache in [None, Some(Cache::Through), Some(Cache::Bypass)] {
        let opts = BuildOptions {
            cache,
            ..BuildOptions::default()
        };
        let (dir, f) = build(&pairs, &opts);
        let (cached, pages) = cached_pages(&dir.path().join("f.vdf"));
        assert!(pages > 2000, "{pages} pages");
        if cache != Some(Cache::Bypass) {
            // Written around the cache and loaded back (or written through it).
            assert_eq!(cached, pages, "{cache:?}");
        }
        check(&f, &expected(&pairs, OnDuplicate::Last));
    }
}
