//! Engine-only timing, without Python: bulk put, commit, batch and single
//! gets of generated URL-like keys.
//! `cargo run --release --example put_speed -- 4000000` (add any second
//! argument to time the puts only).
use std::time::Instant;
use vastdict_core::{Mode, Options, Store};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "https://www.site{:07}.com/item/{:010}",
                (i * 7919) % 10_000_000,
                i
            )
            .into_bytes()
        })
        .collect();
    let value = [b'7'; 29];
    let dir = std::env::temp_dir().join(format!("put_speed_{}", std::process::id()));
    let mut s = Store::open(
        &dir,
        &Options {
            mode: Mode::New,
            ..Options::default()
        },
    )
    .expect("open");
    let t = Instant::now();
    s.put_many(n, |i| (&keys[i][..], &value[..])).expect("put");
    let put = t.elapsed();
    s.commit().expect("commit");
    let all = t.elapsed();
    println!(
        "put {:.2}M/s, with commit {:.2}M/s",
        n as f64 / put.as_secs_f64() / 1e6,
        n as f64 / all.as_secs_f64() / 1e6
    );
    if std::env::args().nth(2).is_some() {
        return;
    }
    let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let t = Instant::now();
    let got = s.get_many(&refs).expect("get");
    println!(
        "get_many {:.2}M/s",
        n as f64 / t.elapsed().as_secs_f64() / 1e6
    );
    assert!(got.iter().all(|v| v.is_some()));
    let t = Instant::now();
    for k in &refs {
        s.get(k).expect("get");
    }
    println!(
        "get loop {:.2}M/s",
        n as f64 / t.elapsed().as_secs_f64() / 1e6
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
