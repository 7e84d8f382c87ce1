//! Saved indexes: a directory holding, per generation `g`, one truncated
//! multimap file per band (`g{g}-band{j}.vdmm`), the slot -> id column
//! (`g{g}-ids.bin`, absent while ids equal slots), the signatures
//! (`g{g}-sigs.bin`) and the removed-slot bitmap (`g{g}-dead.bin`), and
//! `index.json`, which names the current generation with the parameters,
//! counts and CRC-32C of each column. A save writes a new generation, then
//! replaces `index.json` atomically, then deletes the old generation's
//! files: readers that mapped them keep them until they close.

use super::column::Column;
use super::index::{LshConfig, LshIndex};
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
const VERSION: u64 = 1;

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
    if json["version"] != VERSION {
        return Err(Error::format(
            dir,
            format!(
                "LSH index format version {}; this vastdict reads {VERSION}, upgrade vastdict",
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
        let tables: Vec<(usize, &mut IntMultiMap<u32>)> =
            self.tables.iter_mut().enumerate().collect();
        tables
            .into_par_iter()
            .try_for_each(|(j, t)| t.save(&name(dir, g, &format!("band{j}.vdmm"))).map(|_| ()))?;
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
        let tables = (0..cfg.bands)
            .into_par_iter()
            .map(|j| {
                let p = name(dir, g, &format!("band{j}.vdmm"));
                // The manifest names this file, so any mismatch is damage.
                let t = IntMultiMap::<u32>::open(&p).map_err(|e| match e {
                    Error::Format { path, reason } => Error::corrupt(&path, 0, reason),
                    e => e,
                })?;
                if t.dropped_bits() != 64 - cfg.band_bits || t.unique() {
                    return Err(Error::corrupt(&p, 0, "band table does not match the index"));
                }
                Ok(t.on_calling_thread())
            })
            .collect::<Result<Vec<_>>>()?;
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
