//! Writing a store's contents to a frozen file, without leaving the engine.

use super::Store;
use crate::error::Result;
use crate::frozen::{encode_pair, format::Header, BuildOptions, Builder};
use std::path::Path;

impl Store {
    /// Write every visible pair (pending writes included) to a frozen file
    /// at `path`, built with `opts` (its codecs should be this store's).
    pub fn freeze(&mut self, path: &Path, opts: BuildOptions) -> Result<Header> {
        self.flush_pending()?;
        let mut builder = Builder::new(path, opts)?;
        let mut cursor = (0, 0);
        loop {
            let locs = self.scan(&mut cursor, 1 << 16)?;
            let mut buf = Vec::new();
            let mut count = 0;
            for &loc in &locs {
                let r = self.record_at(loc)?;
                encode_pair(&mut buf, r.key, r.value.unwrap_or_default());
                count += 1;
            }
            builder.add_encoded(buf, count)?;
            if locs.len() < 1 << 16 {
                break;
            }
        }
        builder.finish()
    }
}
