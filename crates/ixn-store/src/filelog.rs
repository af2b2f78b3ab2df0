//! The SQLite store's commit log on disk: append-only segment files in a directory beside the
//! database, one record per group commit, each made durable with one `write` and one
//! `fdatasync`.
//!
//! ```text
//! <database>-commits/00000000000000000001.log     segment named after its first record
//! <database>-commits/spare                        an applied segment kept for reuse
//! segment := record* end-marker? (anything after the end marker is unused)
//! record := len:u32 crc:u32 n:u64 body:len bytes  (little-endian; crc32c over n and body)
//! end-marker := 16 zero bytes
//! ```
//!
//! Segments are recycled: once every record of a segment is applied, the segment is renamed
//! `spare` (one is kept; others are deleted) and becomes the next segment. Its appends then
//! overwrite allocated blocks and leave the file's size alone, so their `fdatasync` writes the
//! data only, not the inode as well (one disk write instead of two), and nothing is freed and
//! allocated again. Every append writes an end marker (a header of zeros) after its record, so
//! what follows the last record — older records of a recycled file, or nothing — is never read
//! as records. A segment that is not recycled starts empty and grows, which is only slower.
//!
//! A crash can leave the last record of the last segment half written; opening cuts it off
//! (it was never acknowledged: the commit returns only after the fsync). A damaged record
//! anywhere else is reported, never skipped.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// A segment is closed and a new one started beyond this size; closed segments are recycled
/// or deleted once every record in them is applied.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Bytes of a record before its body.
const HEADER: usize = 16;
/// Largest body accepted when reading (a length beyond it is damage, not data).
const MAX_BODY: usize = 1 << 30;
/// An applied segment kept for reuse as the next one.
const SPARE: &str = "spare";
/// Written after every record: an all-zero header, which no record has (numbers start at 1).
const END_MARKER: [u8; HEADER] = [0; HEADER];

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
    /// Whether [`SPARE`] exists.
    spare: bool,
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
        let spare = dir.join(SPARE).exists();
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
        let retired: Vec<_> = self.segments.drain(..keep).collect();
        for (_, path) in retired {
            self.retire(&path)?;
        }
        Ok(())
    }

    /// A segment whose records are all applied becomes the spare when there is none (no
    /// directory sync is needed: under either name its records are applied), else it is deleted.
    fn retire(&mut self, path: &Path) -> Result<(), StoreError> {
        if !self.spare {
            match fs::rename(path, self.dir.join(SPARE)) {
                Ok(()) => {
                    self.spare = true;
                    return Ok(());
                }
                Err(e) => tracing::debug!(error = %e, "commit log: a segment could not be kept for reuse"),
            }
        }
        fs::remove_file(path).map_err(|e| io("cannot delete", path, e))
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
        let record = self.buf.len() as u64;
        self.buf.extend_from_slice(&END_MARKER);
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
        self.size += record;
        self.next = n + 1;
        Ok(n)
    }

    /// Deletes the segments whose records are all at or below `applied`.
    pub fn forget_upto(&mut self, applied: u64) -> Result<(), StoreError> {
        while self.segments.len() > 1 && self.segments[1].0 <= applied + 1 {
            let (_, path) = self.segments.remove(0);
            self.retire(&path)?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), StoreError> {
        let use_spare = std::mem::take(&mut self.spare);
        let (file, path) = create_segment(&self.dir, self.next, use_spare)?;
        self.file = file;
        self.size = 0;
        self.segments.push((self.next, path));
        Ok(())
    }
}

/// Creates a segment file — the spare renamed, if `use_spare` and that works, or else an empty
/// file — and makes its directory entry durable.
fn create_segment(dir: &Path, first: u64, use_spare: bool) -> Result<(File, PathBuf), StoreError> {
    let path = dir.join(format!("{first:020}.log"));
    if use_spare && let Err(e) = reuse_spare(dir, &path) {
        tracing::warn!(error = %e, dir = %dir.display(), "commit log: the spare segment could not be reused");
        let _ = fs::remove_file(dir.join(SPARE));
    }
    // Never truncated: it may be the spare, whose blocks are the point.
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

/// Turns the spare into the segment at `path`: its old records are hidden behind an end marker
/// at its start, durable before the file takes the segment's name (so a segment never starts
/// with records of an earlier life).
fn reuse_spare(dir: &Path, path: &Path) -> std::io::Result<()> {
    let spare = dir.join(SPARE);
    let file = OpenOptions::new().write(true).open(&spare)?;
    file.write_all_at(&END_MARKER, 0)?;
    file.sync_data()?;
    fs::rename(&spare, path)
}

/// Reads every record of one segment and returns where its records end: at the end of the
/// file, or at an end marker (what follows it is unused). A torn record at the end of the last
/// segment is cut off; any other damage is an error.
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
        let rest = &bytes[at..];
        if rest[..rest.len().min(HEADER)].iter().all(|b| *b == 0) {
            return Ok(at as u64);
        }
        match record_at(&bytes, at) {
            Some((n, body, end)) if n == expect => {
                out.push((n, body.to_vec()));
                expect = n + 1;
                at = end;
            }
            Some((n, _, _)) => {
                return Err(corrupt(path, format!("record {n} where {expect} was expected")));
            }
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
            .set_len(len - END_MARKER.len() as u64 - 2)
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn applied_segments_are_recycled_once_and_otherwise_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"a").unwrap();
        log.rotate().unwrap();
        log.append(b"b").unwrap();
        log.forget_upto(0).unwrap();
        assert_eq!(
            names(dir.path()),
            [format!("{:020}.log", 1), format!("{:020}.log", 2)],
            "1 is not applied yet"
        );
        log.forget_upto(1).unwrap();
        assert_eq!(
            names(dir.path()),
            [format!("{:020}.log", 2), SPARE.to_owned()],
            "1 is kept for reuse"
        );
        log.start_fresh(3).unwrap();
        log.append(b"c").unwrap();
        // 3 is the old 1; 2 is the new spare.
        assert_eq!(names(dir.path()), [format!("{:020}.log", 3), SPARE.to_owned()]);
        log.append(b"d").unwrap();
        log.rotate().unwrap();
        log.forget_upto(4).unwrap();
        // 5 is the old 2; 3 (records 3 and 4, applied) is the spare now.
        assert_eq!(names(dir.path()), [format!("{:020}.log", 5), SPARE.to_owned()]);
        // Two applied at once: the first is kept, the second deleted.
        log.append(b"e").unwrap();
        log.rotate().unwrap();
        log.append(b"f").unwrap();
        log.rotate().unwrap();
        log.forget_upto(6).unwrap();
        assert_eq!(names(dir.path()), [format!("{:020}.log", 7), SPARE.to_owned()]);
        drop(log);
        let (log, found) = FileLog::open(dir.path()).unwrap();
        assert!(found.is_empty());
        assert_eq!(log.next(), 7);
    }

    #[test]
    fn a_recycled_segment_holds_only_its_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        let old = vec![b'o'; 4096];
        for _ in 0..3 {
            log.append(&old).unwrap();
        }
        log.rotate().unwrap();
        log.forget_upto(3).unwrap();
        let spare_len = fs::metadata(dir.path().join(SPARE)).unwrap().len();
        log.rotate().unwrap();
        // Segment 4 is the old segment 1: its appends overwrite in place.
        let path = dir.path().join(format!("{:020}.log", 4));
        assert_eq!(fs::metadata(&path).unwrap().len(), spare_len);
        log.append(b"new").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), spare_len, "written in place");
        drop(log);
        // The old records after "new" are not read back (nor taken for damage).
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(4, "new".into())]);
        assert_eq!(log.append(b"next").unwrap(), 5);
        drop(log);
        let (_, found) = FileLog::open(dir.path()).unwrap();
        assert_eq!(bodies(&found), [(4, "new".into()), (5, "next".into())]);
    }

    #[test]
    fn a_recycled_segment_is_empty_until_its_first_append() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"old one").unwrap();
        log.append(b"old two").unwrap();
        log.rotate().unwrap();
        log.forget_upto(2).unwrap();
        log.rotate().unwrap();
        // Segment 3 is the old segment 1, nothing written to it yet.
        drop(log);
        let (mut log, found) = FileLog::open(dir.path()).unwrap();
        assert!(found.is_empty(), "{:?}", bodies(&found));
        assert_eq!(log.append(b"third").unwrap(), 3);
    }

    #[test]
    fn records_missing_before_the_next_segments_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path()).unwrap();
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        log.rotate().unwrap();
        log.append(b"three").unwrap();
        drop(log);
        // Record 2 is zeroed out, as if its write had never reached the disk.
        let path = dir.path().join(format!("{:020}.log", 1));
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER + 3..].fill(0);
        fs::write(&path, bytes).unwrap();
        let err = FileLog::open(dir.path())
            .err()
            .expect("damage detected")
            .to_string();
        assert!(err.contains("record 3 where 2 was expected"), "{err}");
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
