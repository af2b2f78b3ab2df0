//! The SQLite store's commit log on disk: append-only segment files in a directory beside the
//! database, one record per group commit, each made durable with one `write` and one
//! `fdatasync`.
//!
//! ```text
//! <database>-commits/00000000000000000001.log     segment named after its first record
//! record := len:u32 crc:u32 n:u64 body:len bytes  (little-endian; crc32c over n and body)
//! ```
//!
//! Segments are zero-filled to their full size before use (a spare is prepared by a background
//! thread once the current segment is half full, and renamed into place when it is needed), so an
//! append overwrites allocated blocks and leaves the file's size alone: its `fdatasync` writes
//! the data only, not the inode as well (one disk write instead of two). Zeros after the last
//! record are the unused rest of a segment. When no spare is ready a segment starts empty and
//! grows, which is only slower.
//!
//! A crash can leave the last record of the last segment half written; opening cuts it off
//! (it was never acknowledged: the commit returns only after the fsync). A damaged record
//! anywhere else is reported, never skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::StoreError;

/// A segment is closed and a new one started beyond this size; closed segments are deleted
/// once every record in them is applied.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Bytes of a record before its body.
const HEADER: usize = 16;
/// Largest body accepted when reading (a length beyond it is damage, not data).
const MAX_BODY: usize = 1 << 30;
/// A zero-filled segment, complete and durable, waiting to be renamed into place.
const SPARE: &str = "spare";
/// A spare being written (removed at open: an interrupted preparation).
const SPARE_TMP: &str = "spare.tmp";
/// Zeros written (and synced) at a time while preparing a spare, so the preparation never
/// queues a large flush in front of a commit's `fdatasync`.
const FILL_CHUNK: usize = 1 << 20;

/// The next segment's preparation.
enum Spare {
    None,
    Preparing(JoinHandle<bool>),
    Ready,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Other(format!("commit log: {what} {}: {e}", path.display()))
}

fn corrupt(path: &Path, what: String) -> StoreError {
    StoreError::Corrupt(format!("commit log {}: {what}", path.display()))
}

/// Records read back: number and body, in order.
pub(crate) type Records = Vec<(u64, Vec<u8>)>;

/// The open log: appends go to the last segment.
pub(crate) struct FileLog {
    dir: PathBuf,
    file: File,
    size: u64,
    /// Every segment, oldest first, with the number of its first record; the last is `file`.
    segments: Vec<(u64, PathBuf)>,
    next: u64,
    buf: Vec<u8>,
    /// Set by a failed append (see [`FileLog::append`]).
    broken: bool,
    spare: Spare,
}

impl FileLog {
    /// Opens the log in `dir` (creating it), returning every record found, in order.
    pub fn open(dir: &Path) -> Result<(FileLog, Records), StoreError> {
        fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io("cannot list", dir, e))? {
            let path = entry.map_err(|e| io("cannot list", dir, e))?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(first) = first {
                segments.push((first, path));
            }
        }
        segments.sort();
        let mut records = Vec::new();
        let last = segments.len().checked_sub(1);
        let mut end = 0;
        for (i, (first, path)) in segments.iter().enumerate() {
            end = read_segment(path, *first, Some(i) == last, &mut records)?;
        }
        let _ = fs::remove_file(dir.join(SPARE_TMP));
        let spare = match fs::metadata(dir.join(SPARE)) {
            Ok(m) if m.len() == SEGMENT_BYTES => Spare::Ready,
            Ok(_) => {
                let _ = fs::remove_file(dir.join(SPARE));
                Spare::None
            }
            Err(_) => Spare::None,
        };
        let next = records
            .last()
            .map_or_else(|| segments.last().map_or(1, |(first, _)| *first), |(n, _)| n + 1);
        let (file, size) = match segments.last() {
            Some((_, path)) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("cannot open", path, e))?;
                (file, end)
            }
            None => {
                let (file, path) = create_segment(dir, next, false)?;
                segments.push((next, path));
                (file, 0)
            }
        };
        let log = FileLog {
            dir: dir.to_owned(),
            file,
            size,
            segments,
            next,
            buf: Vec::new(),
            broken: false,
            spare,
        };
        Ok((log, records))
    }

    /// The number the next record gets.
    #[cfg(test)]
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Continues in a new, empty segment whose first record is numbered at least `next`
    /// (numbers never go back, even past an emptied log) and deletes every other segment:
    /// for a log whose records are all applied.
    pub fn start_fresh(&mut self, next: u64) -> Result<(), StoreError> {
        self.next = self.next.max(next);
        let reuse = self.size == 0 && self.segments.last().is_some_and(|(first, _)| *first == self.next);
        if !reuse {
            self.rotate()?;
        }
        let keep = self.segments.len() - 1;
        for (_, path) in self.segments.drain(..keep) {
            fs::remove_file(&path).map_err(|e| io("cannot delete", &path, e))?;
        }
        Ok(())
    }

    /// Appends one record and waits until it is on disk; returns its number. After a failed
    /// write or sync every later append is refused: the segment may hold a torn record that
    /// would hide the records after it, and after a failed fsync the kernel may have dropped
    /// the data it could not write. Reopening (a restart) cuts the torn tail off.
    pub fn append(&mut self, body: &[u8]) -> Result<u64, StoreError> {
        if self.broken {
            return Err(StoreError::Other(format!(
                "commit log {}: an earlier write or fsync failed; restart the server \
                 (acknowledged work is safe)",
                self.dir.display()
            )));
        }
        if self.size >= SEGMENT_BYTES {
            self.rotate()?;
        }
        let n = self.next;
        let len = u32::try_from(body.len()).map_err(|_| {
            StoreError::Other(format!(
                "commit log: a batch of {} bytes is too large",
                body.len()
            ))
        })?;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&n.to_le_bytes()), body);
        self.buf.clear();
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf.extend_from_slice(&n.to_le_bytes());
        self.buf.extend_from_slice(body);
        if let Err(e) = self
            .file
            .write_all_at(&self.buf, self.size)
            .and_then(|()| self.file.sync_data())
        {
            self.broken = true;
            let path = self
                .segments
                .last()
                .map_or(self.dir.as_path(), |(_, p)| p.as_path());
            return Err(io("cannot append to", path, e));
        }
        self.size += self.buf.len() as u64;
        self.next = n + 1;
        if self.size >= SEGMENT_BYTES / 2 && matches!(self.spare, Spare::None) {
            let dir = self.dir.clone();
            self.spare = std::thread::Builder::new()
                .name("ixn-commit-log-spare".into())
                .spawn(move || prepare_spare(&dir))
                .map_or(Spare::None, Spare::Preparing);
        }
        Ok(n)
    }

    /// Whether a zero-filled spare has been prepared (it is used by the next segment).
    fn spare_ready(&mut self) -> bool {
        match std::mem::replace(&mut self.spare, Spare::None) {
            Spare::Ready => true,
            Spare::Preparing(h) if h.is_finished() => h.join().unwrap_or(false),
            Spare::Preparing(h) => {
                self.spare = Spare::Preparing(h);
                false
            }
            Spare::None => false,
        }
    }

    /// Deletes the segments whose records are all at or below `applied`.
    pub fn forget_upto(&mut self, applied: u64) -> Result<(), StoreError> {
        while self.segments.len() > 1 && self.segments[1].0 <= applied + 1 {
            let (_, path) = self.segments.remove(0);
            fs::remove_file(&path).map_err(|e| io("cannot delete", &path, e))?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), StoreError> {
        let use_spare = self.spare_ready();
        let (file, path) = create_segment(&self.dir, self.next, use_spare)?;
        self.file = file;
        self.size = 0;
        self.segments.push((self.next, path));
        Ok(())
    }
}

/// Creates a segment file — the prepared spare renamed, if `use_spare` and that works, or else an
/// empty file — and makes its directory entry durable.
fn create_segment(dir: &Path, first: u64, use_spare: bool) -> Result<(File, PathBuf), StoreError> {
    let path = dir.join(format!("{first:020}.log"));
    if use_spare && let Err(e) = fs::rename(dir.join(SPARE), &path) {
        tracing::warn!(error = %e, dir = %dir.display(), "commit log: the prepared segment could not be used");
    }
    // Never truncated: it may be the zero-filled spare.
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("cannot create", &path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))?;
    Ok((file, path))
}

/// Writes a zero-filled segment as [`SPARE`], durable (file and directory entry) before it is
/// named so; returns whether it is ready. A failure leaves segments to grow as they are written.
fn prepare_spare(dir: &Path) -> bool {
    let tmp = dir.join(SPARE_TMP);
    let written = (|| -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        let zeros = vec![0u8; FILL_CHUNK];
        let mut at = 0;
        while at < SEGMENT_BYTES {
            (&file).write_all(&zeros)?;
            file.sync_data()?;
            at += FILL_CHUNK as u64;
        }
        fs::rename(&tmp, dir.join(SPARE))?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = &written {
        tracing::debug!(error = %e, dir = %dir.display(), "commit log: no spare segment prepared");
        let _ = fs::remove_file(&tmp);
    }
    written.is_ok()
}

/// Reads every record of one segment and returns where its records end: at the end of the
/// file, or where only zeros follow (the unused rest of a zero-filled segment). A torn record at
/// the end of the last segment is cut off; any other damage is an error.
fn read_segment(
    path: &Path,
    first: u64,
    last: bool,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Result<u64, StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io("cannot read", path, e))?;
    let mut at = 0;
    let mut expect = out.last().map_or(first, |(n, _)| n + 1);
    while at < bytes.len() {
        match record_at(&bytes, at) {
            Some((n, body, end)) if n == expect => {
                out.push((n, body.to_vec()));
                expect = n + 1;
                at = end;
            }
            Some((n, _, _)) => {
                return Err(corrupt(path, format!("record {n} where {expect} was expected")));
            }
            None if bytes[at..].iter().all(|b| *b == 0) => return Ok(at as u64),
            None if last => {
                tracing::warn!(
                    path = %path.display(),
                    offset = at,
                    "cutting off an unfinished commit-log record (never acknowledged)"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("cannot open", path, e))?;
                f.set_len(at as u64).map_err(|e| io("cannot truncate", path, e))?;
                f.sync_all().map_err(|e| io("cannot sync", path, e))?;
                return Ok(at as u64);
            }
            None => return Err(corrupt(path, format!("damaged record at offset {at}"))),
        }
    }
    Ok(at as u64)
}

/// The record starting at `at`: its number, body and end, if it is whole and intact.
fn record_at(bytes: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let n = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > MAX_BODY {
        return None;
    }
    let end = at + HEADER + len;
    let body = bytes.get(at + HEADER..end)?;
    let sum = crc32c::crc32c_append(crc32c::crc32c(&n.to_le_bytes()), body);
    (sum == crc).then_some((n, body, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(records: &[(u64, Vec<u8>)]) -> Vec<(u64, String)> {
        records
            .iter()
            .map(|(n, b)| (*n, String::from_utf8_lossy(b).into_owned()))
            .collect()
    }

    #[test]
    fn records_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert!(found.is_empty());
        assert_eq!(log.append(b"one").unwrap(), 1);
        assert_eq!(log.append(b"two").unwrap(), 2);
        drop(log);
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(1, "one".into()), (2, "two".into())]);
        assert_eq!(log.append(b"three").unwrap(), 3);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"kept").unwrap();
        log.append(b"torn").unwrap();
        drop(log);
        let path = dir.path().join(format!("{:020}.log", 1));
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(1, "kept".into())]);
        assert_eq!(log.append(b"next").unwrap(), 2);
        drop(log);
        let (_, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(1, "kept".into()), (2, "next".into())]);
    }

    #[test]
    fn damage_before_the_end_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"first").unwrap();
        log.rotate().unwrap();
        log.append(b"second").unwrap();
        drop(log);
        let path = dir.path().join(format!("{:020}.log", 1));
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let err = FileLog::open(dir.path())
            .err()
            .expect("damage detected")
            .to_string();
        assert!(err.contains("damaged record"), "{err}");
    }

    #[test]
    fn zeros_after_the_records_end_a_segment_and_appends_continue_there() {
        let dir = tempfile::tempdir().unwrap();
        let zero_fill = |first: u64| {
            let path = dir.path().join(format!("{first:020}.log"));
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(f.metadata().unwrap().len() + 4096).unwrap();
        };
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"a").unwrap();
        log.append(b"b").unwrap();
        zero_fill(1);
        log.rotate().unwrap();
        log.append(b"c").unwrap();
        zero_fill(3);
        drop(log);
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(
            bodies(&found),
            [(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        // Written after "c", not after the zeros.
        assert_eq!(log.append(b"d").unwrap(), 4);
        drop(log);
        let (_, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(found.len(), 4);
        assert_eq!(bodies(&found[3..]), [(4, "d".into())]);
    }

    #[test]
    fn a_half_full_segment_prepares_a_zero_filled_successor() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        let big = vec![7u8; 1 << 20];
        for _ in 0..4 {
            log.append(&big).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !matches!(&log.spare, Spare::Preparing(h) if h.is_finished()) {
            assert!(std::time::Instant::now() < deadline, "no spare prepared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        log.rotate().unwrap();
        let path = dir.path().join(format!("{:020}.log", 5));
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            SEGMENT_BYTES,
            "the spare became segment 5"
        );
        assert!(!dir.path().join(SPARE).exists());
        log.append(b"small").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            SEGMENT_BYTES,
            "written in place"
        );
        drop(log);
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(found.len(), 5);
        assert_eq!(bodies(&found[4..]), [(5, "small".into())]);
        assert_eq!(log.append(b"more").unwrap(), 6);
    }

    #[test]
    fn applied_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"a").unwrap();
        log.rotate().unwrap();
        log.append(b"b").unwrap();
        log.forget_upto(0).unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "1 is not applied yet"
        );
        log.forget_upto(1).unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "2 is in the open segment"
        );
        log.start_fresh(3).unwrap();
        log.append(b"c").unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{:020}.log", 3)]);
        drop(log);
        let (log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(3, "c".into())]);
        assert_eq!(log.next(), 4);
    }

    #[test]
    fn a_fresh_start_past_the_records_keeps_numbering_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.start_fresh(41).unwrap();
        assert_eq!(log.append(b"x").unwrap(), 41);
        log.start_fresh(41).unwrap();
        assert_eq!(log.append(b"y").unwrap(), 42);
        drop(log);
        let (log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(42, "y".into())]);
        assert_eq!(log.next(), 43);
    }
}
