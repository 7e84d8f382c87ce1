//! Build an integer multimap of generated (u64, u32) pairs in batches,
//! save it, reopen it and time random batch lookups; prints one JSON line
//! (peak RSS is the caller's to measure, e.g. with `/usr/bin/time -v`).
//!
//! ```text
//! cargo run --release -p vastdict-core --example multimap_scale -- PAIRS VALUES_PER_KEY OUT
//! ```

use std::time::Instant;
use vastdict_core::multimap::IntMultiMap;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, pairs, per_key, out] = &args[..] else {
        return Err("usage: multimap_scale PAIRS VALUES_PER_KEY OUT".into());
    };
    let (pairs, per_key): (u64, u64) = (pairs.parse()?, per_key.parse()?);
    let path = std::path::Path::new(out);
    let nkeys = (pairs / per_key).max(1);
    // Keys are random u64s (band hashes); each key's values arrive spread
    // over the whole build, as an LSH index receives them.
    let key_of = |i: u64| vastdict_core::intmap::mix((i % nkeys) ^ 0x5555);
    let t = Instant::now();
    let mut m: IntMultiMap<u32> = IntMultiMap::new(false);
    const BATCH: u64 = 10_000_000;
    let mut done = 0;
    while done < pairs {
        let n = BATCH.min(pairs - done);
        let keys: Vec<u64> = (done..done + n).map(key_of).collect();
        let vals: Vec<u32> = (done..done + n).map(|i| i as u32).collect();
        m.add_many(&keys, &vals)?;
        done += n;
    }
    let build = t.elapsed().as_secs_f64();
    let resident = m.resident_bytes();
    let t = Instant::now();
    let size = m.save(path)?;
    let save = t.elapsed().as_secs_f64();
    drop(m);
    let t = Instant::now();
    let r: IntMultiMap<u32> = IntMultiMap::open(path)?;
    let open = t.elapsed().as_secs_f64();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let probe: Vec<u64> = (0..1_000_000)
        .map(|_| key_of(xorshift(&mut x) % nkeys))
        .collect();
    let mut times = Vec::new();
    let mut got = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (_, vals) = r.get_many(&probe)?;
        times.push(t.elapsed().as_secs_f64());
        got = vals.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"pairs\": {pairs}, \"keys\": {}, \"build_s\": {build:.2}, \"resident_bytes_per_pair\": {:.2}, \"save_s\": {save:.2}, \"file_bytes\": {size}, \"file_bytes_per_pair\": {:.3}, \"open_s\": {open:.6}, \"get_many_1m_s\": {:.4}, \"values_returned\": {got}}}",
        r.len()?,
        resident as f64 / pairs as f64,
        size as f64 / pairs as f64,
        times[2]
    );
    Ok(())
}
