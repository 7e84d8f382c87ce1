//! Saved indexes: a directory holding, per generation `g`, every band's
//! table (`g{g}-bands.bin`), the slot -> id column (`g{g}-ids.bin`, absent
//! while ids equal slots), the signatures (`g{g}-sigs.bin`) and the
//! removed-slot bitmap (`g{g}-dead.bin`), and `index.json`, which names
//! the current generation with the parameters, where each band table
//! lies and its shape, and the CRC-32C of each table and column. A save
//! writes a new generation, then replaces `index.json` atomically, then
//! deletes the old generation's files: readers that mapped them keep them
//! until they close. Version 1 indexes (a multimap file per band) still
//! open: their bands are rebuilt in memory.

use super::band::{BandTable, Shape};
use super::column::Column;
use super::index::{LshConfig, LshIndex};
use super::runs::Band;
use crate::error::{Error, IoContext, Result};
use crate::multimap::IntMultiMap;
use memmap2::Mmap;
use rayon::prelude::*;
use serde_json::{json, Value as Json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MANIFEST: &str = "index.json";
const FORMAT: &str = "vastdict-lsh";
const VERSION: u64 = 2;
/// Band tables start at multiples of this in the bands file.
const ALIGN: u64 = 64;

fn name(dir: &Path, g: u64, what: &str) -> PathBuf {
    dir.join(format!("g{g}-{what}"))
}

/// CRC-32C of a column's bytes (mapped part, then in-memory part).
fn crc_of(pieces: [&[u8]; 2]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(pieces[0]), pieces[1])
}

fn write_pieces(path: &Path, pieces: [&[u8]; 2]) -> Result<()> {
    crate::files::write_atomically(path, |file, tmp| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for p in pieces {
            w.write_all(p).at(tmp)?;
        }
        w.flush().at(tmp)
    })
}

fn read_manifest(dir: &Path) -> Result<(Json, PathBuf)> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(dir.to_path_buf()))
        }
        Err(source) => return Err(Error::Io { path, source }),
    };
    let bad = |why: &str| Error::corrupt(&path, 0, why);
    let (body, crc) = text
        .trim_end()
        .rsplit_once('\n')
        .ok_or_else(|| bad("no checksum line"))?;
    if u32::from_str_radix(crc, 16).ok() != Some(crc32c::crc32c(body.as_bytes())) {
        return Err(bad("checksum mismatch"));
    }
    let json: Json = serde_json::from_str(body).map_err(|e| bad(&e.to_string()))?;
    if json["format"] != FORMAT {
        return Err(Error::format(dir, "not a vastdict LSH index"));
    }
    if json["version"] != VERSION && json["version"] != 1 {
        return Err(Error::format(
            dir,
            format!(
                "LSH index format version {}; this vastdict reads 1 and {VERSION}, upgrade vastdict",
                json["version"]
            ),
        ));
    }
    Ok((json, path))
}

impl LshIndex {
    /// Save into directory `dir` (created if missing) as a new generation.
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        let g = match read_manifest(dir) {
            Ok((m, _)) => m["generation"].as_u64().unwrap_or(0) + 1,
            Err(_) => 1,
        };
        let tables = self.save_bands(&name(dir, g, "bands.bin"))?;
        let ids_crc = match &self.ids {
            Some(c) => {
                write_pieces(&name(dir, g, "ids.bin"), c.pieces())?;
                Some(crc_of(c.pieces()))
            }
            None => None,
        };
        write_pieces(&name(dir, g, "sigs.bin"), self.sigs.pieces())?;
        let dead: Vec<u8> = self.dead.iter().flat_map(|w| w.to_le_bytes()).collect();
        write_pieces(&name(dir, g, "dead.bin"), [&dead, &[]])?;
        let c = self.config();
        let body = json!({
            "format": FORMAT,
            "version": VERSION,
            "generation": g,
            "num_perm": c.num_perm,
            "bands": c.bands,
            "rows": c.rows,
            "threshold": c.threshold,
            "keep_signatures": c.keep_signatures,
            "band_bits": c.band_bits,
            "slots": self.slots,
            "band_tables": tables,
            "ids_crc": ids_crc,
            "sigs_crc": crc_of(self.sigs.pieces()),
            "dead_crc": crc32c::crc32c(&dead),
        })
        .to_string();
        let text = format!("{body}\n{:08x}\n", crc32c::crc32c(body.as_bytes()));
        crate::files::write_atomically(&dir.join(MANIFEST), |file, tmp| {
            let mut f = file;
            f.write_all(text.as_bytes()).at(tmp)
        })?;
        // Older generations are no longer named by the manifest.
        if let Ok(entries) = std::fs::read_dir(dir) {
            let own = format!("g{g}-");
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('g') && n.contains('-') && !n.starts_with(&own) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Open a saved index: band tables and columns are mapped, so every
    /// process opening it shares one copy; inserts go to memory on top.
    /// Every column is checked against its CRC-32C.
    pub fn open(dir: &Path) -> Result<Self> {
        let (m, mpath) = read_manifest(dir)?;
        let bad = |why: String| Error::corrupt(&mpath, 0, why);
        let num = |k: &str| m[k].as_u64().ok_or_else(|| bad(format!("{k} missing")));
        let g = num("generation")?;
        let cfg = LshConfig {
            num_perm: num("num_perm")? as usize,
            bands: num("bands")? as usize,
            rows: num("rows")? as usize,
            threshold: m["threshold"]
                .as_f64()
                .ok_or_else(|| bad("threshold missing".into()))?,
            keep_signatures: m["keep_signatures"]
                .as_bool()
                .ok_or_else(|| bad("keep_signatures missing".into()))?,
            band_bits: num("band_bits")? as u32,
        };
        cfg.check().map_err(|e| bad(e.to_string()))?;
        let slots = num("slots")?;
        let tables = if m["version"] == 1 {
            open_v1_bands(dir, g, &cfg)?
        } else {
            open_bands(&name(dir, g, "bands.bin"), &m["band_tables"], &cfg, &mpath)?
        };
        let column = |what: &str, width: u64, crc: &Json| -> Result<Option<Arc<Mmap>>> {
            let Some(crc) = crc.as_u64() else {
                return Ok(None);
            };
            let p = name(dir, g, what);
            let file = crate::files::open_existing(&p)?;
            let len = file.metadata().at(&p)?.len();
            if len != width {
                return Err(Error::corrupt(
                    &p,
                    len.min(width),
                    format!("{len} bytes, expected {width}"),
                ));
            }
            if len == 0 {
                return Ok(None);
            }
            // SAFETY: saves write new files and never modify one in place.
            let map = unsafe { Mmap::map(&file) }.at(&p)?;
            let actual = map
                .par_chunks(1 << 22)
                .map(|c| (c.len(), crc32c::crc32c(c)))
                .collect::<Vec<_>>()
                .into_iter()
                .fold(0u32, |acc, (n, c)| crc32c::crc32c_combine(acc, c, n));
            if u64::from(actual) != crc {
                return Err(Error::corrupt(&p, 0, "checksum mismatch"));
            }
            Ok(Some(Arc::new(map)))
        };
        let ids = column("ids.bin", slots * 8, &m["ids_crc"])?.map(|map| Column::mapped(8, map));
        if ids.is_none() && !m["ids_crc"].is_null() {
            return Err(bad("ids missing".into()));
        }
        let sig_width = if cfg.keep_signatures {
            4 * cfg.num_perm
        } else {
            0
        };
        let sigs = match column("sigs.bin", slots * sig_width as u64, &m["sigs_crc"])? {
            Some(map) => Column::mapped(sig_width, map),
            None => Column::new(sig_width),
        };
        let dead_len = slots.div_ceil(64) * 8;
        let dead_path = name(dir, g, "dead.bin");
        let dead_bytes = std::fs::read(&dead_path).at(&dead_path)?;
        if dead_bytes.len() as u64 > dead_len
            || u64::from(crc32c::crc32c(&dead_bytes)) != num("dead_crc")?
        {
            return Err(Error::corrupt(&dead_path, 0, "checksum mismatch"));
        }
        let dead = dead_bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        Ok(LshIndex::from_parts(cfg, tables, ids, sigs, dead, slots))
    }
}

impl LshIndex {
    /// Write every band as one table into `path`; the manifest's entry
    /// for each (where it lies, its shape, its CRC-32C).
    fn save_bands(&mut self, path: &Path) -> Result<Vec<Json>> {
        let mut entries = Vec::with_capacity(self.tables.len());
        let bands = &mut self.tables;
        crate::files::write_atomically(path, |file, tmp| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut at = 0u64;
            for band in bands.iter_mut() {
                let t = band.whole()?;
                let pad = at.next_multiple_of(ALIGN) - at;
                w.write_all(&[0u8; ALIGN as usize][..pad as usize])
                    .at(tmp)?;
                at += pad;
                let bytes = t.as_bytes();
                w.write_all(bytes).at(tmp)?;
                let shape = t.shape();
                entries.push(json!({
                    "offset": at,
                    "dir_bits": shape.dir_bits,
                    "slot_bits": shape.slot_bits,
                    "pairs": shape.len,
                    "crc": crc32c::crc32c(bytes),
                }));
                at += bytes.len() as u64;
            }
            w.flush().at(tmp)
        })?;
        Ok(entries)
    }
}

/// The band tables of a version 2 index, mapped from `path` and checked
/// against the manifest's `entries` (shape, place, CRC-32C).
fn open_bands(path: &Path, entries: &Json, cfg: &LshConfig, mpath: &Path) -> Result<Vec<Band>> {
    let list = entries
        .as_array()
        .filter(|l| l.len() == cfg.bands)
        .ok_or_else(|| Error::corrupt(mpath, 0, "band_tables missing or of the wrong length"))?;
    let file = crate::files::open_existing(path)?;
    // SAFETY: saves write new files and never modify one in place.
    let map = Arc::new(unsafe { Mmap::map(&file) }.at(path)?);
    list.par_iter()
        .map(|e| {
            let num = |k: &str| {
                e[k].as_u64()
                    .ok_or_else(|| Error::corrupt(mpath, 0, format!("band table {k} missing")))
            };
            let off = num("offset")?;
            let shape = Shape {
                key_bits: cfg.band_bits,
                dir_bits: u32::try_from(num("dir_bits")?).unwrap_or(u32::MAX),
                slot_bits: u32::try_from(num("slot_bits")?).unwrap_or(u32::MAX),
                len: num("pairs")?,
            };
            let at = usize::try_from(off).unwrap_or(usize::MAX);
            let t = BandTable::from_mapped(Arc::clone(&map), at, shape)
                .map_err(|why| Error::corrupt(path, off, why))?;
            if u64::from(crc32c::crc32c(t.as_bytes())) != num("crc")? {
                return Err(Error::corrupt(path, off, "band table checksum mismatch"));
            }
            Ok(Band::of(t))
        })
        .collect()
}

/// The bands of a version 1 index (a truncated multimap file per band),
/// rebuilt as tables in memory; the next save writes them as version 2.
fn open_v1_bands(dir: &Path, g: u64, cfg: &LshConfig) -> Result<Vec<Band>> {
    let drop = 64 - cfg.band_bits;
    (0..cfg.bands)
        .into_par_iter()
        .map(|j| {
            let p = name(dir, g, &format!("band{j}.vdmm"));
            // The manifest names this file, so any mismatch is damage.
            let t = IntMultiMap::<u32>::open(&p).map_err(|e| match e {
                Error::Format { path, reason } => Error::corrupt(&path, 0, reason),
                e => e,
            })?;
            if t.dropped_bits() != drop || t.unique() {
                return Err(Error::corrupt(&p, 0, "band table does not match the index"));
            }
            let (keys, offs, vals) = t.export()?;
            let mut pairs = Vec::with_capacity(vals.len());
            for (i, &k) in keys.iter().enumerate() {
                let key = crate::intmap::mix(k) >> drop;
                let (s, e) = (offs[i] as usize, offs[i + 1] as usize);
                pairs.extend(vals.get(s..e).unwrap_or(&[]).iter().map(|&v| (key, v)));
            }
            let mut band = Band::new(cfg.band_bits);
            band.add(&pairs)?;
            Ok(band)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsh::{MinHasher, Unit, Verify};

    /// Rewrite a saved index in place as version 1 saved it: a truncated
    /// multimap file per band instead of the bands file.
    fn as_version_1(index: &LshIndex, dir: &Path) {
        let (mut m, _) = read_manifest(dir).expect("manifest");
        let g = m["generation"].as_u64().expect("generation");
        let drop = 64 - index.cfg.band_bits;
        for (j, band) in index.tables.iter().enumerate() {
            let (mut keys, mut slots) = (Vec::new(), Vec::new());
            for (k, s) in band.runs().iter().flat_map(|r| r.pairs()) {
                keys.push(k << drop);
                slots.push(s);
            }
            let mut t = IntMultiMap::<u32>::truncated(false, drop);
            t.add_many_mixed(&keys, &slots).expect("add");
            t.save(&name(dir, g, &format!("band{j}.vdmm")))
                .expect("save band");
        }
        std::fs::remove_file(name(dir, g, "bands.bin")).expect("remove");
        m["version"] = json!(1);
        m.as_object_mut().expect("object").remove("band_tables");
        let body = m.to_string();
        let text = format!("{body}\n{:08x}\n", crc32c::crc32c(body.as_bytes()));
        std::fs::write(dir.join(MANIFEST), text).expect("write manifest");
    }

    #[test]
    fn version_1_indexes_open_answer_alike_and_save_as_version_2() {
        let h = MinHasher::new(64, 2, Unit::Word, 1, true).expect("hasher");
        // Each text three times, so most documents have candidates.
        let texts: Vec<String> = (0..300)
            .map(|i| i % 100)
            .map(|i| format!("w{} w{} w{} w{} w{}", i % 17, i % 13, i % 7, i % 5, i % 3))
            .collect();
        let mut sigs = vec![0u32; 300 * 64];
        h.sign_many(&texts, &mut sigs).expect("sign");
        let cfg = LshConfig {
            num_perm: 64,
            bands: 8,
            rows: 8,
            threshold: 0.5,
            keep_signatures: true,
            band_bits: 24,
        };
        let mut index = LshIndex::new(cfg).expect("config");
        let ids: Vec<u64> = (0..300).map(|i| i * 2).collect();
        index.insert_many(&ids, &sigs).expect("insert");
        index.remove_many(&[4]);
        let dir = tempfile::tempdir().expect("tempdir");
        index.save(dir.path()).expect("save");
        let want = index.query_many(&sigs, Verify::Raw).expect("query");
        assert!(want.1.len() > 800, "{} candidates", want.1.len());
        as_version_1(&index, dir.path());
        let mut old = LshIndex::open(dir.path()).expect("open version 1");
        assert_eq!(old.query_many(&sigs, Verify::Raw).expect("query"), want);
        old.save(dir.path()).expect("save");
        assert_eq!(read_manifest(dir.path()).expect("manifest").0["version"], 2);
        let again = LshIndex::open(dir.path()).expect("reopen");
        assert_eq!(again.query_many(&sigs, Verify::Raw).expect("query"), want);
    }
}
