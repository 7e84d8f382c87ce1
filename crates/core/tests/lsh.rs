//! The LSH index against brute force, streaming dedup against one-by-one
//! insertion, removal, merging, saving and opening, and damaged files.

use std::collections::BTreeSet;
use vastdict_core::lsh::{LshConfig, LshIndex, MinHasher, Unit, Verify};
use vastdict_core::Error;

const NP: usize = 32;

fn cfg(keep: bool) -> LshConfig {
    LshConfig {
        num_perm: NP,
        bands: 8,
        rows: 4,
        threshold: 0.5,
        keep_signatures: keep,
        band_bits: 32,
    }
}

/// Documents in families: each family shares most words, so members are
/// near-duplicates of each other and strangers to other families.
fn corpus(n: usize) -> (Vec<String>, Vec<u32>) {
    let texts: Vec<String> = (0..n)
        .map(|i| {
            let family = i / 4;
            let mut words: Vec<String> = (0..30).map(|w| format!("f{family}w{w}")).collect();
            words[i % 30] = format!("edit{i}");
            words.join(" ")
        })
        .collect();
    let h = MinHasher::new(NP, 2, Unit::Word, 1, true).expect("valid parameters");
    let mut sigs = vec![0u32; n * NP];
    h.sign_many(&texts, &mut sigs).expect("sign");
    (texts, sigs)
}

fn row(sigs: &[u32], i: usize) -> &[u32] {
    &sigs[i * NP..(i + 1) * NP]
}

/// What an index of `docs` should answer for signature `q`.
fn brute(c: &LshConfig, sigs: &[u32], docs: &[usize], q: &[u32], verify: Verify) -> BTreeSet<u64> {
    docs.iter()
        .filter(|&&d| {
            let s = row(sigs, d);
            let shares = (0..c.bands)
                .any(|j| s[j * c.rows..(j + 1) * c.rows] == q[j * c.rows..(j + 1) * c.rows]);
            let agree = s.iter().zip(q).filter(|(a, b)| a == b).count();
            shares
                && match verify {
                    Verify::Raw => true,
                    Verify::Estimate(t) => agree as f64 >= t * NP as f64 - 1e-9,
                }
        })
        .map(|&d| d as u64 * 3 + 7)
        .collect()
}

fn answers(index: &LshIndex, sigs: &[u32], verify: Verify) -> Vec<BTreeSet<u64>> {
    let (off, ids) = index.query_many(sigs, verify).expect("query");
    (0..off.len() - 1)
        .map(|i| {
            ids[off[i] as usize..off[i + 1] as usize]
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

fn ids_of(docs: impl Iterator<Item = usize>) -> Vec<u64> {
    docs.map(|d| d as u64 * 3 + 7).collect()
}

#[test]
fn queries_match_brute_force() {
    let (_, sigs) = corpus(400);
    for keep in [true, false] {
        let mut index = LshIndex::new(cfg(keep)).expect("config");
        index.insert_many(&ids_of(0..400), &sigs).expect("insert");
        assert_eq!(index.len(), 400);
        let docs: Vec<usize> = (0..400).collect();
        let modes: &[Verify] = if keep {
            &[Verify::Raw, Verify::Estimate(0.7)]
        } else {
            &[Verify::Raw]
        };
        for &v in modes {
            let got = answers(&index, &sigs, v);
            for (i, g) in got.iter().enumerate() {
                assert_eq!(
                    g,
                    &brute(index.config(), &sigs, &docs, row(&sigs, i), v),
                    "doc {i}"
                );
                assert!(g.contains(&(i as u64 * 3 + 7)));
            }
            // Families are found (nearly always: LSH is probabilistic),
            // strangers never.
            if v == Verify::Raw {
                let sizes: Vec<usize> = got.iter().map(|g| g.len()).collect();
                assert!(sizes.iter().all(|&l| l <= 4), "{sizes:?}");
                assert!(
                    sizes.iter().filter(|&&l| l >= 2).count() >= 390,
                    "{sizes:?}"
                );
            }
        }
        if !keep {
            assert!(index.query_many(&sigs, Verify::Estimate(0.5)).is_err());
        }
    }
}

#[test]
fn many_small_inserts_answer_as_one_large_one() {
    let (_, sigs) = corpus(400);
    let mut whole = LshIndex::new(cfg(true)).expect("config");
    whole.insert_many(&ids_of(0..400), &sigs).expect("insert");
    let want = answers(&whole, &sigs, Verify::Raw);
    // Chunks of 1 to 13 rows leave each band several tables of falling
    // size; every one must be searched, and compacting merges them.
    let mut parts = LshIndex::new(cfg(true)).expect("config");
    let mut at = 0;
    for k in (1..=13).cycle() {
        let end = (at + k).min(400);
        parts
            .insert_many(&ids_of(at..end), &sigs[at * NP..end * NP])
            .expect("insert");
        at = end;
        if at == 400 {
            break;
        }
    }
    assert_eq!(answers(&parts, &sigs, Verify::Raw), want);
    let before = parts.table_bytes();
    parts.compact().expect("compact");
    assert_eq!(answers(&parts, &sigs, Verify::Raw), want);
    assert!(parts.table_bytes() <= before);
    assert_eq!(parts.table_bytes(), whole.table_bytes());
}

#[test]
fn streaming_dedup_sees_every_earlier_document() {
    let (_, sigs) = corpus(300);
    let mut batch = LshIndex::new(cfg(true)).expect("config");
    let mut got = Vec::new();
    // Uneven batches, so matches cross batch boundaries and stay within one.
    for (a, b) in [(0, 7), (7, 150), (150, 151), (151, 300)] {
        let (off, ids) = batch
            .insert_and_query_many(&ids_of(a..b), &sigs[a * NP..b * NP], Verify::Estimate(0.6))
            .expect("insert and query");
        for i in 0..b - a {
            got.push(
                ids[off[i] as usize..off[i + 1] as usize]
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>(),
            );
        }
    }
    for (i, g) in got.iter().enumerate() {
        let earlier: Vec<usize> = (0..i).collect();
        assert_eq!(
            g,
            &brute(
                batch.config(),
                &sigs,
                &earlier,
                row(&sigs, i),
                Verify::Estimate(0.6)
            ),
            "doc {i}"
        );
    }
    assert!(got.iter().filter(|g| !g.is_empty()).count() > 200);
}

#[test]
fn removal_hides_documents_until_and_after_compaction() {
    let (_, sigs) = corpus(200);
    let mut index = LshIndex::new(cfg(true)).expect("config");
    index.insert_many(&ids_of(0..200), &sigs).expect("insert");
    let gone = ids_of((0..200).step_by(3));
    assert_eq!(index.remove_many(&gone), gone.len() as u64);
    assert_eq!(index.remove_many(&gone), 0);
    assert_eq!(index.len(), 200 - gone.len() as u64);
    let live: Vec<usize> = (0..200).filter(|d| d % 3 != 0).collect();
    let want: Vec<_> = (0..200)
        .map(|i| brute(index.config(), &sigs, &live, row(&sigs, i), Verify::Raw))
        .collect();
    assert_eq!(answers(&index, &sigs, Verify::Raw), want);
    index.compact().expect("compact");
    assert_eq!(answers(&index, &sigs, Verify::Raw), want);
    let present = index.contains_many(&[7, 10, 1_000_000]);
    assert_eq!(present, [false, true, false]);
}

#[test]
fn save_open_append_and_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    let (_, sigs) = corpus(300);
    let mut whole = LshIndex::new(cfg(true)).expect("config");
    whole.insert_many(&ids_of(0..300), &sigs).expect("insert");
    whole.remove_many(&[7]);
    let want = answers(&whole, &sigs, Verify::Estimate(0.6));

    let mut first = LshIndex::new(cfg(true)).expect("config");
    first
        .insert_many(&ids_of(0..100), &sigs[..100 * NP])
        .expect("insert");
    first.save(&path).expect("save");
    let mut reopened = LshIndex::open(&path).expect("open");
    reopened
        .insert_many(&ids_of(100..200), &sigs[100 * NP..200 * NP])
        .expect("append");
    reopened.save(&path).expect("save again");
    let mut again = LshIndex::open(&path).expect("open again");
    let mut rest = LshIndex::new(cfg(true)).expect("config");
    rest.insert_many(&ids_of(200..300), &sigs[200 * NP..])
        .expect("insert");
    again.merge(&rest).expect("merge");
    again.remove_many(&[7]);
    assert_eq!(answers(&again, &sigs, Verify::Estimate(0.6)), want);
    assert_eq!(again.len(), 299);
    // Only the current generation's files remain.
    let files = std::fs::read_dir(&path).expect("list").count();
    // The manifest, the band tables, ids, signatures and the removed bitmap.
    assert_eq!(files, 5);
    let mut other = LshIndex::new(LshConfig {
        bands: 4,
        ..cfg(true)
    })
    .expect("config");
    assert!(other.merge(&again).is_err());
}

#[test]
fn ids_equal_to_slots_need_no_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, sigs) = corpus(50);
    let mut index = LshIndex::new(cfg(false)).expect("config");
    let ids: Vec<u64> = (0..50).collect();
    index.insert_many(&ids, &sigs).expect("insert");
    index.save(dir.path()).expect("save");
    assert!(!dir.path().join("g1-ids.bin").exists());
    let back = LshIndex::open(dir.path()).expect("open");
    let (off, got) = back.query_many(row(&sigs, 5), Verify::Raw).expect("query");
    assert_eq!(off, [0, got.len() as u64]);
    assert!(got.contains(&5) && got.iter().all(|&d| d / 4 == 1));
}

#[test]
fn damaged_files_raise_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    let (_, sigs) = corpus(120);
    let mut index = LshIndex::new(cfg(true)).expect("config");
    index.insert_many(&ids_of(0..120), &sigs).expect("insert");
    index.remove_many(&[10]);
    index.save(&path).expect("save");
    let want = answers(&index, &sigs, Verify::Estimate(0.6));
    let names: Vec<_> = std::fs::read_dir(&path)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    for file in names {
        let good = std::fs::read(&file).expect("read");
        for at in (0..good.len()).step_by((good.len() / 40).max(1)) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&file, &bad).expect("write");
            match LshIndex::open(&path) {
                Err(Error::Corruption { .. }) | Err(Error::Format { .. }) => {}
                Err(e) => panic!("{}: byte {at}: {e}", file.display()),
                Ok(opened) => match opened.query_many(&sigs, Verify::Estimate(0.6)) {
                    Err(Error::Corruption { .. }) => {}
                    Err(e) => panic!("{}: byte {at}: {e}", file.display()),
                    Ok(_) => assert_eq!(
                        answers(&opened, &sigs, Verify::Estimate(0.6)),
                        want,
                        "{}: byte {at}",
                        file.display()
                    ),
                },
            }
        }
        std::fs::write(&file, &good[..good.len() / 2]).expect("truncate");
        assert!(
            LshIndex::open(&path).is_err(),
            "{} truncated",
            file.display()
        );
        std::fs::write(&file, &good).expect("restore");
    }
}
