//! Lookups as an LSH query makes them (one key in each of 16 band
//! tables, reads issued ahead), in `BandTable`s (the index's band tables)
//! and in truncated `IntMultiMap`s (what the index used before them), over
//! the same random pairs; the two are timed alternately, query by query,
//! so both see the same machine.
//!
//! ```text
//! cargo run --release -p vastdict-core --example band_speed -- PAIRS ROUNDS
//! ```
//!
//! Each round is 10,000 queries of random documents; with `SAME=1` every
//! query is of one document, so its reads hit the cache and the figures
//! are the lookups' compute alone.

use std::time::Instant;
use vastdict_core::lsh::BandTable;
use vastdict_core::multimap::IntMultiMap;

const BANDS: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or("100000".into()).parse()?;
    let rounds: usize = args.next().unwrap_or("20".into()).parse()?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // keys[b][i]: document i's 32-bit key in band b.
    let keys: Vec<Vec<u64>> = (0..BANDS)
        .map(|_| (0..n).map(|_| next() >> 32).collect())
        .collect();
    let mut bands = Vec::with_capacity(BANDS);
    let mut maps = Vec::with_capacity(BANDS);
    for ks in &keys {
        let pairs: Vec<(u64, u32)> = ks.iter().zip(0u32..).map(|(&k, s)| (k, s)).collect();
        bands.push(BandTable::build(&pairs, 32)?);
        let mut m: IntMultiMap<u32> = IntMultiMap::truncated(false, 32).on_calling_thread();
        let mixed: Vec<u64> = ks.iter().map(|k| k << 32).collect();
        let slots: Vec<u32> = (0..n as u32).collect();
        m.add_many_mixed(&mixed, &slots)?;
        m.compact()?;
        maps.push(m);
    }
    let band_bytes: usize = bands.iter().map(BandTable::bytes).sum();
    let map_bytes: usize = maps.iter().map(IntMultiMap::resident_bytes).sum();
    let mut out = Vec::new();
    let query_bands = |doc: usize, out: &mut Vec<u32>| {
        out.clear();
        for (t, ks) in bands.iter().zip(&keys) {
            t.prefetch_dir(ks[doc]);
        }
        for (t, ks) in bands.iter().zip(&keys) {
            t.prefetch_pairs(ks[doc]);
        }
        for (t, ks) in bands.iter().zip(&keys) {
            t.get_into(ks[doc], out);
        }
        out.sort_unstable();
        out.dedup();
    };
    let query_maps = |doc: usize, out: &mut Vec<u32>| -> vastdict_core::Result<()> {
        out.clear();
        let probes: Vec<_> = maps
            .iter()
            .zip(&keys)
            .map(|(m, ks)| m.probe_mixed(ks[doc] << 32))
            .collect();
        probes.iter().for_each(|p| p.prefetch_part());
        probes.iter().for_each(|p| p.prefetch_dir());
        probes.iter().for_each(|p| p.prefetch_bucket());
        for p in &probes {
            p.get_into(out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    };
    let (mut tb, mut tm) = (Vec::new(), Vec::new());
    let mut check = Vec::new();
    for _ in 0..rounds {
        for _ in 0..10_000 {
            let doc = if std::env::var_os("SAME").is_some() {
                5
            } else {
                (next() % n as u64) as usize
            };
            let t = Instant::now();
            query_bands(doc, &mut out);
            tb.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            query_maps(doc, &mut check)?;
            tm.push(t.elapsed().as_secs_f64() * 1e6);
            if out != check || out.binary_search(&(doc as u32)).is_err() {
                return Err(format!("document {doc}: {out:?} against {check:?}").into());
            }
        }
    }
    let mut floor: Vec<f64> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    eprintln!("timer floor p50 {:.3} us", {
        floor.sort_by(f64::total_cmp);
        floor[5000]
    });
    let pct = |v: &mut Vec<f64>, p: usize| {
        v.sort_by(f64::total_cmp);
        v[v.len() * p / 100]
    };
    println!(
        "{{\"pairs\": {n}, \"band_table\": {{\"p50_us\": {:.3}, \"p99_us\": {:.3}, \"bytes_per_pair\": {:.2}}}, \"multimap\": {{\"p50_us\": {:.3}, \"p99_us\": {:.3}, \"bytes_per_pair\": {:.2}}}}}",
        pct(&mut tb, 50),
        pct(&mut tb, 99),
        band_bytes as f64 / (n * BANDS) as f64,
        pct(&mut tm, 50),
        pct(&mut tm, 99),
        map_bytes as f64 / (n * BANDS) as f64,
    );
    Ok(())
}
