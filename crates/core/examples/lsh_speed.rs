//! Time LSH inserts and queries over signatures of generated documents;
//! prints one JSON line.
//!
//! ```text
//! cargo run --release -p vastdict-core --example lsh_speed -- DOCS BANDS ROWS
//! ```

use std::time::Instant;
use vastdict_core::lsh::{LshConfig, LshIndex, MinHasher, Unit, Verify};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let docs: usize = args.next().unwrap_or("100000".into()).parse()?;
    let bands: usize = args.next().unwrap_or("16".into()).parse()?;
    let rows: usize = args.next().unwrap_or("8".into()).parse()?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let texts: Vec<String> = (0..docs)
        .map(|_| {
            (0..100 + next() % 301)
                .map(|_| format!("w{}", next() % 50_000))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let h = MinHasher::new(128, 5, Unit::Word, 1, true)?;
    let mut sigs = vec![0u32; docs * 128];
    h.sign_many(&texts, &mut sigs)?;
    let cfg = LshConfig {
        num_perm: 128,
        bands,
        rows,
        threshold: 0.8,
        keep_signatures: false,
        band_bits: 32,
    };
    let mut index = LshIndex::new(cfg)?;
    let ids: Vec<u64> = (0..docs as u64).collect();
    let t = Instant::now();
    index.insert_many(&ids, &sigs)?;
    index.compact()?;
    let insert = t.elapsed().as_secs_f64();
    let batches: u32 = std::env::var("BATCHES").map_or(Ok(1), |v| v.parse())?;
    let t = Instant::now();
    for _ in 0..batches {
        index.query_many(&sigs, Verify::Raw)?;
    }
    let batch = t.elapsed().as_secs_f64() / f64::from(batches);
    let mut lat: Vec<f64> = Vec::new();
    // More rounds of the same single queries, for profiling them.
    let rounds: u32 = std::env::var("QUERY_ROUNDS").map_or(Ok(1), |v| v.parse())?;
    for _ in 0..rounds {
        for i in (0..docs).step_by((docs / 10_000).max(1)) {
            let t = Instant::now();
            index.query(&sigs[i * 128..(i + 1) * 128], Verify::Raw)?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat.sort_by(f64::total_cmp);
    // The same query again and again: compute alone, memory all cached.
    let t = Instant::now();
    let reps: u32 = std::env::var("REPS").map_or(Ok(10_000), |v| v.parse())?;
    for _ in 0..reps {
        index.query(&sigs[..128], Verify::Raw)?;
    }
    eprintln!(
        "cached query: {:.2} us",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(reps)
    );
    println!(
        "{{\"docs\": {docs}, \"insert_per_s\": {:.0}, \"query_many_per_s\": {:.0}, \"p50_us\": {:.2}, \"p99_us\": {:.2}, \"table_bytes_per_doc\": {:.1}}}",
        docs as f64 / insert,
        docs as f64 / batch,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        index.table_bytes() as f64 / docs as f64
    );
    Ok(())
}
