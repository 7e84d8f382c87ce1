//! Time MinHash signatures of generated 100-400-word documents; prints
//! one JSON line.
//!
//! ```text
//! cargo run --release -p vastdict-core --example minhash_speed -- DOCS
//! ```

use std::time::Instant;
use vastdict_core::lsh::{MinHasher, Unit};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let docs: usize = std::env::args().nth(1).unwrap_or("100000".into()).parse()?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let texts: Vec<String> = (0..docs)
        .map(|_| {
            let words = 100 + next() % 301;
            (0..words)
                .map(|_| {
                    // Roughly Zipf: small ranks are common.
                    let r = next() % 50_000;
                    format!("w{}", r * r / 50_000)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let h = MinHasher::new(128, 5, Unit::Word, 1, true)?;
    let mut out = vec![0u32; docs * 128];
    // The median of five runs: this machine's timings are noisy.
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            h.sign_many(&texts, &mut out)
                .map(|()| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    let secs = times[2];
    println!(
        "{{\"docs\": {docs}, \"seconds\": {secs:.3}, \"docs_per_s\": {:.0}, \"kernel\": \"{}\"}}",
        docs as f64 / secs,
        h.kernel()
    );
    Ok(())
}
