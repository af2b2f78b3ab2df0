//! `file`: one JSON envelope per line, appended and synced per batch, rotated by size
//! (`PATH` → `PATH.1` → … → `PATH.N`, the oldest dropped).
//!
//! A batch interrupted by a crash may be written again after restart; consumers drop duplicate
//! lines by `seq`.

use std::io::Write;
use std::path::{Path, PathBuf};

use ixn_config::FileOptions;
use ixn_protocol::ReportingEvent;

use crate::sink::{Sink, SinkError};

#[derive(Debug)]
pub struct FileSink {
    opts: FileOptions,
}

impl FileSink {
    pub fn new(opts: &FileOptions) -> FileSink {
        FileSink { opts: opts.clone() }
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shifts `PATH.i` to `PATH.i+1` (dropping the last) and `PATH` to `PATH.1`.
fn rotate(path: &Path, max_files: u32) -> std::io::Result<()> {
    if max_files == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(rotated(path, max_files));
    for i in (1..max_files).rev() {
        let from = rotated(path, i);
        if from.exists() {
            std::fs::rename(&from, rotated(path, i + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

fn write_batch(opts: &FileOptions, lines: &[u8]) -> std::io::Result<()> {
    let size = std::fs::metadata(&opts.path).map_or(0, |m| m.len());
    if size > 0 && size + lines.len() as u64 > opts.max_file_size {
        rotate(&opts.path, opts.max_files)?;
    }
    if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.path)?;
    f.write_all(lines)?;
    f.sync_data()
}

#[async_trait::async_trait]
impl Sink for FileSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        let mut lines = Vec::with_capacity(events.len() * 256);
        for e in events {
            serde_json::to_writer(&mut lines, e).map_err(|e| SinkError::new(format!("encoding: {e}")))?;
            lines.push(b'\n');
        }
        let opts = self.opts.clone();
        tokio::task::spawn_blocking(move || write_batch(&opts, &lines))
            .await
            .map_err(|e| SinkError::new(format!("file task failed: {e}")))?
            .map_err(|e| SinkError::new(format!("writing {}: {e}", self.opts.path.display())))
    }
}
