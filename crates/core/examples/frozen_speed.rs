//! Engine-only timing of a frozen build from a TSV file and of lookups:
//! `cargo run --release --example frozen_speed -- INPUT.tsv OUT [BUDGET_MIB]`
//! (with `VASTDICT_REUSE=1` an existing OUT is read without rebuilding it,
//! to time or profile the lookups alone)
mod common;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use vastdict_core::frozen::{add_file, BuildOptions, Builder, FileFormat, FileSource, Frozen};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: frozen_speed INPUT.tsv OUT [BUDGET_MIB]".into());
    };
    let budget: u64 = args.next().map_or(Ok(2048), |b| b.parse())?;
    let (input, out) = (Path::new(&input), Path::new(&out));
    if std::env::var_os("VASTDICT_REUSE").is_none() || !out.exists() {
        build(input, out, budget)?;
    }
    let f = Frozen::open(out)?;
    let owned = common::random_keys(input, 1_000_000)?;
    let queries: Vec<&[u8]> = owned.iter().map(|k| &k[..]).collect();
    for _ in 0..4 {
        let t = Instant::now();
        let mut found = 0;
        for c in queries.chunks(8192) {
            found += f.get_many(c)?.iter().flatten().count();
        }
        let dt = t.elapsed().as_secs_f64();
        println!("get_many {:.2}M/s ({found} found)", 1e6 / dt / 1e6);
    }
    Ok(())
}

fn build(input: &Path, out: &Path, budget_mib: u64) -> Result<(), Box<dyn std::error::Error>> {
    let opts = BuildOptions {
        memory_budget: budget_mib << 20,
        ..BuildOptions::default()
    };
    let t = Instant::now();
    let mut b = Builder::new(out, opts)?;
    let src = FileSource::new(input, FileFormat::Tsv);
    let stats = add_file(&mut b, &src, &AtomicU64::new(0))?;
    let parsed = t.elapsed().as_secs_f64();
    let h = b.finish()?;
    let dt = t.elapsed().as_secs_f64();
    println!(
        "build {} pairs in {dt:.2}s ({:.2}M/s; parse {parsed:.2}s), {:.1} B/pair on disk (raw {:.1})",
        stats.pairs,
        stats.pairs as f64 / dt / 1e6,
        h.file_len() as f64 / h.len as f64,
        h.raw_bytes as f64 / h.len as f64,
    );
    Ok(())
}
