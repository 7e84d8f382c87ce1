use vastdict_core::index::partition::{Partition, Probe};
fn main() {
    let dir = std::env::temp_dir().join(format!("probe_len_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nb = 20000u64;
    let p = Partition::create(&dir.join("p"), 1, nb, 0).unwrap();
    let cap = nb * 8;
    let mut x = 0x9E3779B97F4A7C15u64;
    for load in [0.5, 0.7, 0.8, 0.85, 0.9, 0.94] {
        while (p.used() as f64) < load * cap as f64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let tag = (x >> 42) as u32;
            if let Probe::Vacant(i) = p.probe(tag, |_| Ok(false)).unwrap() {
                p.place(vastdict_core::index::partition::make_slot(tag, 100), 0);
                let _ = i;
                p.set_used(p.used() + 1);
            }
        }
        // average slots scanned for an unsuccessful probe
        let mut total = 0u64;
        let trials = 100000;
        let mut y = 12345u64;
        for _ in 0..trials {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let tag = (y >> 42) as u32;
            let mut n = 0u64;
            let _ = p.probe(tag, |_| Ok(false));
            // count slots until empty from home
            let mut i = 0usize;
            while p.slot(i) != 0 {
                n += 1;
                i = (i + 1) % cap as usize;
            }
            total += n + 1;
        }
        println!(
            "load {load}: avg slots scanned for a miss {:.1}",
            total as f64 / trials as f64
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
