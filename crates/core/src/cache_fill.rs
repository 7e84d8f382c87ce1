//! Loading a file written around the page cache back into it, while the
//! file is still being written.
//!
//! A file written with `O_DIRECT` is not in the page cache afterwards, so
//! its first reader would read it from the disk. Reading it back is not
//! enough where memory has been handed back to a hypervisor (free page
//! reporting): pages the disk filled are slow on their first touch by a
//! CPU as well (a 10M-pair frozen file read back through a mapping served
//! its first reader 0.31-0.39M gets/s, against 1.0-1.2M/s when written
//! through the cache). So [`CacheFill`] reads each written range back
//! through a mapping advised for huge pages (the cache then holds it in
//! 2 MiB folios, which a reader maps through one TLB entry each) and
//! touches every 4 KiB page of it. A thread does this behind the writes,
//! using time the encoding threads leave idle and overlapping the reads
//! with them; what is left when the writes end is shared by all cores.
//! A buffered write instead makes one thread copy every page, which cannot
//! be split, since a file system takes one write to a file at a time.
//!
//! Everything here is best effort: a range that cannot be loaded is only
//! left to the file's first reader.

use rayon::prelude::*;
use std::collections::VecDeque;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The unit of loading: a huge page.
const PIECE: u64 = 2 << 20;
/// Bytes of a page, the unit a CPU's first touch is paid for.
const PAGE: usize = 4096;

/// A background loader of a file's written ranges into the page cache.
///
/// ```
/// use std::io::Write;
/// use vastdict_core::cache_fill::CacheFill;
/// let mut file = tempfile::tempfile().unwrap();
/// file.write_all(&[1u8; 10_000]).unwrap();
/// let fill = CacheFill::start(&file).unwrap();
/// fill.push(0, 8192);
/// fill.finish(&[(8192, 10_000)]);
/// ```
pub struct CacheFill {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    file: File,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Ranges written and not yet claimed by a loader.
    queue: VecDeque<(u64, u64)>,
    /// Ranges being loaded by the background thread.
    busy: usize,
    closed: bool,
}

impl CacheFill {
    /// Start a loader for `file` (through its own handle).
    pub fn start(file: &File) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            file: file.try_clone()?,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vastdict-cache-fill".into())
            .spawn(move || s.run())?;
        Ok(CacheFill {
            shared,
            thread: Some(thread),
        })
    }

    /// Queue bytes `start..end` of the file, which are written and will not
    /// be written again, for loading.
    pub fn push(&self, start: u64, end: u64) {
        if start < end {
            self.shared.lock().queue.push_back((start, end));
            self.shared.changed.notify_all();
        }
    }

    /// Load every range queued so far on all cores, and wait until the
    /// background thread is idle: after this, a direct write to a range
    /// loaded earlier cannot race with its loading.
    pub fn drain(&self) {
        let ranges: Vec<(u64, u64)> = self.shared.lock().queue.drain(..).collect();
        load_all(&self.shared.file, &ranges);
        let mut st = self.shared.lock();
        while st.busy > 0 {
            st = self.shared.wait(st);
        }
    }

    /// Load what is queued and `last` on all cores, then stop the thread.
    pub fn finish(self, last: &[(u64, u64)]) {
        let mut ranges: Vec<(u64, u64)> = self.shared.lock().queue.drain(..).collect();
        ranges.extend(last.iter().filter(|(s, e)| s < e));
        load_all(&self.shared.file, &ranges);
        // Drop stops and joins the thread.
    }
}

impl Drop for CacheFill {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.queue.clear();
            st.closed = true;
        }
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    /// The state; a thread that panicked while holding it leaves nothing
    /// half-changed that matters here, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(st).unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        loop {
            let range = {
                let mut st = self.lock();
                loop {
                    if let Some(r) = st.queue.pop_front() {
                        st.busy += 1;
                        break r;
                    }
                    if st.closed {
                        return;
                    }
                    st = self.wait(st);
                }
            };
            load(&self.file, range.0, range.1);
            self.lock().busy -= 1;
            self.changed.notify_all();
        }
    }
}

/// Load `ranges` in huge-page pieces, on all cores.
fn load_all(file: &File, ranges: &[(u64, u64)]) {
    let pieces: Vec<(u64, u64)> = ranges
        .iter()
        .flat_map(|&(start, end)| {
            let mut at = start;
            std::iter::from_fn(move || {
                (at < end).then(|| {
                    let to = ((at / PIECE + 1) * PIECE).min(end);
                    let piece = (at, to);
                    at = to;
                    piece
                })
            })
        })
        .collect();
    pieces.par_iter().for_each(|&(s, e)| load(file, s, e));
}

/// Read bytes `start..end` of `file` into the page cache in huge folios
/// and touch each page once.
fn load(file: &File, start: u64, end: u64) {
    let start = start / PAGE as u64 * PAGE as u64;
    let Ok(len) = usize::try_from(end - start) else {
        return;
    };
    // SAFETY: a read-only mapping of a file this process is writing under
    // a temporary name; the range is written and not written again, and
    // the mapping is dropped before returning.
    let Ok(map) = (unsafe { memmap2::MmapOptions::new().offset(start).len(len).map(file) }) else {
        return;
    };
    #[cfg(target_os = "linux")]
    {
        let _ = map.advise(memmap2::Advice::HugePage);
        // Readahead may run past the range's end, but not past the file's
        // end, and the file only grows by writes that have completed: what
        // it reads there is written (the header block, written last, waits
        // for loading to stop: see `drain`).
        if map.advise(memmap2::Advice::PopulateRead).is_err() {
            return;
        }
    }
    let mut sum = 0u8;
    for at in (0..len).step_by(PAGE) {
        // SAFETY: `at` is inside the mapping, whose pages are populated.
        sum ^= unsafe { std::ptr::read_volatile(map.as_ptr().add(at)) };
    }
    std::hint::black_box(sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cached_pages(file: &File, len: usize) -> usize {
        // SAFETY: a read-only mapping of a test file, dropped at return.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }.expect("map");
        let pages = len.div_ceil(PAGE);
        let mut vec = vec![0u8; pages];
        // SAFETY: `vec` has one byte per page of the mapping.
        let r = unsafe { libc::mincore(map.as_ptr() as *mut _, len, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    #[test]
    fn ranges_pushed_and_finished_end_up_cached() {
        let mut file = tempfile::tempfile().expect("file");
        let len = 5 * PIECE as usize + 12_345;
        file.write_all(&vec![7u8; len]).expect("write");
        file.sync_all().expect("sync");
        // SAFETY: plain syscall on our descriptor; drops the cached pages.
        unsafe {
            libc::posix_fadvise(
                std::os::unix::io::AsRawFd::as_raw_fd(&file),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        assert!(cached_pages(&file, len) < len.div_ceil(PAGE) / 2);
        let fill = CacheFill::start(&file).expect("start");
        fill.push(PAGE as u64, 3 * PIECE);
        fill.drain();
        fill.finish(&[(0, PAGE as u64), (3 * PIECE, len as u64)]);
        assert_eq!(cached_pages(&file, len), len.div_ceil(PAGE));
    }

    #[test]
    fn dropping_a_loader_with_work_queued_returns() {
        let mut file = tempfile::tempfile().expect("file");
        file.write_all(&vec![1u8; 3 * PIECE as usize])
            .expect("write");
        let fill = CacheFill::start(&file).expect("start");
        for i in 0..3 {
            fill.push(i * PIECE, (i + 1) * PIECE);
        }
        drop(fill);
    }
}
