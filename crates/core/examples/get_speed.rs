//! Engine-only timing of batch lookups on an existing store, one thread,
//! in chunks the size the Python binding uses:
//! `cargo run --release --example get_speed -- STORE KEYS.tsv [ROUNDS]`
//! (keys are the first tab-separated column of each line).
mod common;

use std::time::Instant;
use vastdict_core::{Mode, Options, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(store), Some(keys)) = (args.next(), args.next()) else {
        return Err("usage: get_speed STORE KEYS.tsv [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let owned = common::random_keys(keys.as_ref(), 1_000_000)?;
    let queries: Vec<&[u8]> = owned.iter().map(|k| &k[..]).collect();
    let s = Store::open(
        store.as_ref(),
        &Options {
            mode: Mode::Read,
            ..Options::default()
        },
    )?;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut found = 0;
        for chunk in queries.chunks(8192) {
            found += s.get_many_sequential(chunk)?.iter().flatten().count();
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "get_many_sequential {:.2}M/s ({found} found)",
            queries.len() as f64 / dt / 1e6
        );
    }
    Ok(())
}
