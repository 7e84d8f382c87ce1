//! Engine behaviour through the public API: a model test against a map,
//! snapshots, rollback, growth, compaction and recovery from a crash image.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use vastdict_core::{Error, Mode, Options, Store};

fn opts(mode: Mode) -> Options {
    Options {
        mode,
        segment_bits: 16,
        memory_budget: 1 << 18,
        ..Options::default()
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("https://example.com/{i:08}/page").into_bytes()
}

fn contents(s: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut cursor = (0, 0);
    loop {
        let locs = s.scan(&mut cursor, 1000).expect("scan");
        if locs.is_empty() {
            break;
        }
        for loc in locs {
            let r = s.record_at(loc).expect("record");
            out.insert(r.key.to_vec(), r.value.expect("value").to_vec());
        }
    }
    out
}

/// Copy a store's files as they are now, as a kill -9 would leave them.
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            crash_image(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

#[test]
fn many_keys_grow_split_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    let n = 300_000;
    for i in 0..n {
        s.put(&key(i), &i.to_le_bytes()).expect("put");
    }
    s.commit().expect("commit");
    assert!(
        s.stats().expect("stats").partitions > 1,
        "the index should have split"
    );
    s.close(true).expect("close");
    let mut r = Store::open(dir.path(), &opts(Mode::Read)).expect("reopen");
    assert_eq!(r.len().expect("len"), n);
    for i in (0..n).step_by(7) {
        assert_eq!(r.get(&key(i)).expect("get"), Some(&i.to_le_bytes()[..]));
    }
    assert_eq!(r.get(b"missing").expect("get"), None);
    r.verify().expect("verify");
    let st = r.stats().expect("stats");
    // Partitions only: the 512 KiB directory is fixed, whatever the size.
    let dir_file = 64 + 65536 * 8;
    let per_key = (st.index_bytes - dir_file) as f64 / n as f64;
    assert!(
        per_key < 12.5,
        "index partitions cost {per_key} bytes per key"
    );
}

#[test]
fn reader_keeps_its_snapshot_until_refresh() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    w.put(b"a", b"1").expect("put");
    w.put(b"b", b"1").expect("put");
    w.commit().expect("commit");
    let mut r = Store::open(dir.path(), &opts(Mode::Read)).expect("reader");
    w.put(b"a", b"2").expect("put");
    w.delete(b"b").expect("delete");
    w.put(b"c", b"3").expect("put");
    for i in 0..20_000u64 {
        w.put(&key(i), b"x").expect("put"); // forces spills and partition growth
    }
    w.commit().expect("commit");
    w.put(b"a", b"uncommitted").expect("put");
    w.flush_pending().expect("flush");
    assert_eq!(r.get(b"a").expect("get"), Some(&b"1"[..]));
    assert_eq!(r.get(b"b").expect("get"), Some(&b"1"[..]));
    assert_eq!(r.get(b"c").expect("get"), None);
    assert_eq!(contents(&r).len(), 2);
    r.refresh().expect("refresh");
    assert_eq!(r.get(b"a").expect("get"), Some(&b"2"[..]));
    assert_eq!(r.get(b"b").expect("get"), None);
    assert_eq!(r.len().expect("len"), 20_002);
}

#[test]
fn second_writer_is_locked_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let _w = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    assert!(matches!(
        Store::open(dir.path(), &opts(Mode::Write)),
        Err(Error::Locked(_))
    ));
}

#[test]
fn rollback_drops_spilled_and_buffered_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    w.put(b"keep", b"1").expect("put");
    w.commit().expect("commit");
    for i in 0..50_000u64 {
        w.put(&key(i), b"temporary").expect("put");
    }
    w.put(b"keep", b"changed").expect("put");
    w.delete(b"keep").expect("delete");
    w.rollback().expect("rollback");
    assert_eq!(w.len().expect("len"), 1);
    assert_eq!(contents(&w).len(), 1);
    assert_eq!(w.get(b"keep").expect("get"), Some(&b"1"[..]));
    w.put(b"after", b"2").expect("put");
    w.close(true).expect("close");
    // The rolled-back blocks must not come back through recovery either.
    let r = Store::open(dir.path(), &opts(Mode::Read)).expect("reopen");
    assert_eq!(contents(&r).len(), 2);
    r.verify().expect("verify");
}

/// Blocks of several MiB are written in pieces while they are encoded
/// (`store/stream.rs`): their records, checksums and in-block `prev` links
/// must come out the same as a block written whole.
#[test]
fn large_blocks_written_in_pieces_read_back_and_recover() {
    let dir = tempfile::tempdir().expect("tmp");
    let img = tempfile::tempdir().expect("tmp");
    let o = Options {
        memory_budget: 64 << 20,
        segment_bits: 25,
        ..opts(Mode::Create)
    };
    let value = |i: u64, round: u64| format!("{round}:{i}:{}", "v".repeat(90)).into_bytes();
    let keys: Vec<Vec<u8>> = (0..100_000).map(key).collect();
    let mut w = Store::open(dir.path(), &o).expect("open");
    // 150k writes of 100k keys: later ones overwrite keys written earlier
    // in the same 8 MiB block, whose `prev` points inside that block.
    let vals: Vec<Vec<u8>> = (0..150_000)
        .map(|i| value(i % 100_000, i / 100_000))
        .collect();
    w.bulk(|w| w.put_many(vals.len(), |i| (&keys[i % 100_000], &vals[i])))
        .expect("bulk");
    w.commit().expect("commit");
    let expect = |i: u64| value(i, u64::from(i < 50_000));
    for i in (0..100_000).step_by(3) {
        assert_eq!(w.get(&key(i)).expect("get"), Some(&expect(i)[..]));
    }
    w.verify().expect("verify");
    // Uncommitted large blocks in the log when the process dies.
    let later: Vec<Vec<u8>> = (0..100_000).map(|i| value(i, 9)).collect();
    w.bulk(|w| w.put_many(later.len(), |i| (&keys[i], &later[i])))
        .expect("bulk");
    w.flush_pending().expect("flush");
    crash_image(dir.path(), img.path());
    w.close(true).expect("close");
    let r = Store::open(dir.path(), &opts(Mode::Read)).expect("reopen");
    assert_eq!(r.get(&key(7)).expect("get"), Some(&value(7, 9)[..]));
    r.verify().expect("verify");
    let mut c = Store::open(img.path(), &opts(Mode::Read)).expect("recover");
    assert_eq!(c.len().expect("len"), 100_000);
    let got = contents(&c);
    for i in 0..100_000 {
        assert_eq!(got.get(&key(i)), Some(&expect(i)), "key {i}");
    }
    c.verify().expect("verify");
}

struct Pairs(Vec<(Vec<u8>, Vec<u8>)>);

impl vastdict_core::PairBatch for Pairs {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn pair(&self, i: usize) -> (&[u8], &[u8]) {
        (&self.0[i].0, &self.0[i].1)
    }
}

/// `put_batches` stages on a second thread while the first writes blocks:
/// the result must be what `put` gives in the same order, including puts
/// staged before the call and keys repeated within and across buffers.
#[test]
fn put_batches_equals_puts_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = Options {
        memory_budget: 8 << 20, // 2 MiB buffers: many of them
        segment_bits: 25,
        ..opts(Mode::Create)
    };
    let mut w = Store::open(dir.path(), &o).expect("open");
    let mut model = BTreeMap::new();
    w.put(b"before", b"staged").expect("put");
    model.insert(b"before".to_vec(), b"staged".to_vec());
    let batches: Vec<Pairs> = (0..40u64)
        .map(|b| {
            Pairs(
                (0..5_000u64)
                    .map(|j| {
                        let k = key((b * 5_000 + j) % 70_000);
                        (k, format!("{b}-{j}-{}", "x".repeat(40)).into_bytes())
                    })
                    .collect(),
            )
        })
        .collect();
    for b in &batches {
        for (k, v) in &b.0 {
            model.insert(k.clone(), v.clone());
        }
    }
    w.put_batches(batches).expect("put_batches");
    w.put(b"after", b"1").expect("put");
    model.insert(b"after".to_vec(), b"1".to_vec());
    assert_eq!(w.len().expect("len"), model.len() as u64);
    assert_eq!(contents(&w), model);
    w.commit().expect("commit");
    w.close(true).expect("close");
    let r = Store::open(dir.path(), &opts(Mode::Read)).expect("reopen");
    assert_eq!(contents(&r), model);
    r.verify().expect("verify");
}

#[test]
fn put_batches_stops_at_a_bad_pair_keeping_those_before() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    let huge = vec![0u8; 1 << 17]; // larger than a 64 KiB segment
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..20_000).map(|i| (key(i), b"v".to_vec())).collect();
    pairs.push((b"huge".to_vec(), huge));
    pairs.push((b"never".to_vec(), b"1".to_vec()));
    let err = w.put_batches([Pairs(pairs)]).expect_err("too large");
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(w.len().expect("len"), 20_000);
    assert_eq!(w.get(b"never").expect("get"), None);
    assert_eq!(w.get(&key(19_999)).expect("get"), Some(&b"v"[..]));
}

#[test]
fn crash_image_recovers_exactly_the_committed_prefix() {
    let dir = tempfile::tempdir().expect("tmp");
    let img = tempfile::tempdir().expect("tmp");
    let mut w = Store::open(dir.path(), &opts(Mode::Create)).expect("open");
    for i in 0..30_000u64 {
        w.put(&key(i), b"committed").expect("put");
    }
    w.commit().expect("commit");
    for i in 0..30_000u64 {
        w.put(&key(i + 1_000_000), b"uncommitted").expect("put");
    }
    w.put(&key(5), b"uncommitted").expect("put");
    w.flush_pending().expect("flush");
    crash_image(dir.path(), img.path());
    // Recovery runs on open because the image is marked as being written.
    let mut r = Store::open(img.path(), &opts(Mode::Read)).expect("recover");
    assert_eq!(r.len().expect("len"), 30_000);
    assert_eq!(r.get(&key(5)).expect("get"), Some(&b"committed"[..]));
    assert_eq!(r.get(&key(1_000_001)).expect("get"), None);
    r.verify().expect("verify");
    drop(r);
    let mut w2 = Store::open(img.path(), &opts(Mode::Write)).expect("writer after recovery");
    w2.put(b"new", b"1").expect("put");
    w2.close(true).expect("close");
}

#[test]
fn compaction_reclaims_garbage_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = Store::open(
        dir.path(),
        &Options {
            compact_threshold: 0.0,
            ..opts(Mode::Create)
        },
    )
    .expect("open");
    for round in 0..5u64 {
        for i in 0..10_000u64 {
            w.put(&key(i), &round.to_le_bytes()).expect("put");
        }
        w.commit().expect("commit");
    }
    for i in 0..5_000u64 {
        w.delete(&key(i)).expect("delete");
    }
    w.commit().expect("commit");
    let before = w.stats().expect("stats");
    assert!(before.garbage_bytes > before.log_bytes / 2);
    w.compact().expect("compact");
    let after = w.stats().expect("stats");
    assert_eq!(after.garbage_bytes, 0);
    assert!(after.log_bytes < before.log_bytes / 5);
    assert_eq!(w.len().expect("len"), 5_000);
    assert_eq!(
        w.get(&key(7_000)).expect("get"),
        Some(&4u64.to_le_bytes()[..])
    );
    assert_eq!(w.get(&key(7)).expect("get"), None);
    w.close(true).expect("close");
    let r = Store::open(dir.path(), &opts(Mode::Read)).expect("reopen");
    assert_eq!(contents(&r).len(), 5_000);
    r.verify().expect("verify");
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Commit,
    Rollback,
    Reopen,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Put(k % 64, v)),
        2 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Options { memory_budget: 1, ..opts(Mode::Create) };
        let mut s = Store::open(dir.path(), &o).expect("open");
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut model = committed.clone();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let val = vec![v; usize::from(v % 7)];
                    s.put(&[k], &val).expect("put");
                    model.insert(vec![k], val);
                }
                Op::Delete(k) => {
                    let had = s.delete(&[k]).expect("delete");
                    prop_assert_eq!(had, model.remove(&vec![k]).is_some());
                }
                Op::Commit => { s.commit().expect("commit"); committed = model.clone(); }
                Op::Rollback => { s.rollback().expect("rollback"); model = committed.clone(); }
                Op::Reopen => {
                    s.close(true).expect("close");
                    committed = model.clone();
                    s = Store::open(dir.path(), &o).expect("reopen");
                }
                Op::Compact => { s.compact().expect("compact"); committed = model.clone(); }
            }
            prop_assert_eq!(s.len().expect("len") as usize, model.len());
        }
        for k in 0..64u8 {
            prop_assert_eq!(s.get(&[k]).expect("get").map(<[u8]>::to_vec), model.get(&vec![k]).cloned());
        }
        s.flush_pending().expect("flush");
        prop_assert_eq!(contents(&s), model.clone());
        s.close(true).expect("close");
        let r = Store::open(dir.path(), &opts(Mode::Read)).expect("reader");
        prop_assert_eq!(contents(&r), model);
        r.verify().expect("verify");
    }
}
