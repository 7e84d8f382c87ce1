//! A frozen store of generated pairs at scale, built through the engine's
//! `Builder` (as `vastdict.build()` does for a file, minus the parsing):
//! `cargo run --release --example frozen_scale -- N OUT BUDGET_MIB`
//! Keys are 16 bytes (hex of a scrambled counter), values 8 bytes. Prints
//! the build time, peak RSS, file size and random-get rates as JSON.
use std::time::Instant;
use vastdict_core::frozen::{encode_pair, BuildOptions, Builder, Frozen};

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (j, b) in k.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[((x >> (60 - 4 * j)) & 15) as usize];
    }
    k
}

fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().ok_or("N")?.parse()?;
    let out = std::path::PathBuf::from(args.next().ok_or("OUT")?);
    let budget: u64 = args.next().map_or(Ok(4096), |b| b.parse())?;
    let t = Instant::now();
    let mut b = Builder::new(
        &out,
        BuildOptions {
            memory_budget: budget << 20,
            ..BuildOptions::default()
        },
    )?;
    const CHUNK: u64 = 1 << 20;
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let mut buf = Vec::with_capacity(((end - i) * 26) as usize);
        for j in i..end {
            encode_pair(&mut buf, &key(j), &j.to_le_bytes());
        }
        b.add_encoded(buf, end - i)?;
        i = end;
    }
    let header = b.finish()?;
    let build_s = t.elapsed().as_secs_f64();
    let peak = peak_rss();
    let f = Frozen::open(&out)?;
    let mut x = 7u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let q: Vec<u64> = (0..200_000).map(|_| next()).collect();
    let t = Instant::now();
    for &j in &q[..20_000] {
        let v = f.get(&key(j))?.ok_or("missing key")?;
        if v != j.to_le_bytes() {
            return Err("wrong value".into());
        }
    }
    let single = 20_000.0 / t.elapsed().as_secs_f64();
    let keys: Vec<[u8; 16]> = q.iter().map(|&j| key(j)).collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let t = Instant::now();
    let got = f.get_many(&refs)?;
    let batch = refs.len() as f64 / t.elapsed().as_secs_f64();
    if got.iter().any(|g| g.is_none()) {
        return Err("missing key in batch".into());
    }
    println!(
        "{{\"n\": {n}, \"budget_mib\": {budget}, \"build_s\": {build_s:.1}, \"peak_rss\": {peak}, \
         \"file_bytes\": {}, \"get_per_s_single_thread\": {single:.0}, \
         \"get_many_per_s_single_thread\": {batch:.0}}}",
        header.file_len()
    );
    std::fs::remove_file(&out)?;
    Ok(())
}
