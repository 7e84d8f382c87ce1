//! Shared by the timing examples: the queries they look up.

/// `n` keys drawn with a fixed xorshift from the first column of a TSV
/// file, so runs are comparable; owned and allocated one after another,
/// as the binding's batches are.
pub fn random_keys(tsv: &std::path::Path, n: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let text = std::fs::read(tsv)?;
    let keys: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b'\t').next())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(std::io::Error::other("no keys in the file"));
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    Ok((0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            keys[(x % keys.len() as u64) as usize].to_vec()
        })
        .collect())
}
