//! Group commits go to a commit log first ([`crate::filelog`]: append-only segment files in
//! `<file>-commits/`), one record per batch in a compact binary form ([`crate::commitlog`]). A
//! commit is one write and one fsync there, whatever the batch touches; updating the
//! `interactions` table and its indexes in place wrote about forty pages per batch and took
//! four times as long. A background thread applies the log to the tables in
//! larger transactions (every [`APPLY_INTERVAL`], or sooner when much is waiting), where an
//! interaction changed by many batches is written once, and records how far it got
//! (`commit_log_applied` in `meta`, in the same transaction). Every other operation of the
//! store applies what is waiting first, so reads always see every acknowledged commit. At open,
//! entries past `commit_log_applied` are applied before anything else: after `kill -9`
//! nothing acknowledged is missing from the tables.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};
use std::time::Duration;

use ixn_model::InteractionId;
use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{Inner, LAST_SEQ_UPSERT, META_UPSERT, OUTBOX_INSERT, Writer, lock, upsert};
use crate::commitlog;
use crate::filelog::FileLog;
use crate::rows;
use crate::{StoreError, WriteBatch};

/// How often the commit log is applied to the tables when little is waiting.
const APPLY_INTERVAL: Duration = Duration::from_millis(50);
/// Rows and events waiting in the commit log that wake the applier at once.
const APPLY_SOON: usize = 4096;
/// Rows and events waiting beyond which a commit applies the log itself before returning (so
/// a slow disk slows commits down instead of growing memory without bound).
const APPLY_NOW: usize = 65_536;
/// How far the tables have caught up with the commit log.
const APPLIED_KEY: &str = "commit_log_applied";

#[derive(Default)]
pub(super) struct Pending {
    batches: Vec<(u64, WriteBatch)>,
    /// Interactions and events in `batches`.
    size: usize,
    /// The last entry appended (it may be taken out of `batches` and still being applied).
    last: u64,
}

/// Writes commit-log entries to the tables in one transaction, skipping those already there:
/// the latest row of each interaction, every event, every meta value in order, and how far the
/// log is applied.
fn write_batches(w: &mut Writer, batches: &[(u64, WriteBatch)]) -> Result<(), StoreError> {
    let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: u64 = tx
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([APPLIED_KEY], |r| r.get::<_, String>(0))
        .optional()?
        .map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("{APPLIED_KEY} is {v:?}")))
        })?;
    let todo: Vec<&WriteBatch> = batches
        .iter()
        .filter(|(n, _)| *n > applied)
        .map(|(_, b)| b)
        .collect();
    let Some(last) = batches.last().map(|(n, _)| *n).filter(|n| *n > applied) else {
        return Ok(());
    };
    {
        // Newest first: an interaction changed by several batches is written once, as it is now.
        let mut seen = HashSet::new();
        let mut stmt = tx.prepare_cached(&w.upsert_sql)?;
        for it in todo.iter().rev().flat_map(|b| b.interactions.iter().rev()) {
            if seen.insert(it.id.as_str()) {
                upsert(&mut stmt, it, &w.custom)?;
            }
        }
        let mut stmt = tx.prepare_cached(OUTBOX_INSERT)?;
        for e in todo.iter().flat_map(|b| b.events.iter()) {
            stmt.execute(rusqlite::params![
                rows::sql_u64(e.seq),
                e.time.millis(),
                e.name,
                e.interaction_id.as_ref().map(InteractionId::as_str),
                e.payload
            ])?;
        }
        if let Some(max) = todo.iter().flat_map(|b| b.events.iter()).map(|e| e.seq).max() {
            tx.prepare_cached(LAST_SEQ_UPSERT)?.execute([max.to_string()])?;
        }
        let mut stmt = tx.prepare_cached(META_UPSERT)?;
        for (k, v) in todo.iter().flat_map(|b| b.meta.iter()) {
            stmt.execute([k, v])?;
        }
        stmt.execute([APPLIED_KEY, &last.to_string()])?;
    }
    tx.commit()?;
    Ok(())
}

/// How far the tables hold the commit log.
fn applied_in_tables(w: &Writer) -> Result<u64, StoreError> {
    let value: Option<String> = w
        .conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [APPLIED_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    value.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| StoreError::Corrupt(format!("{APPLIED_KEY} is {v:?}")))
    })
}

/// The commit log's directory: `<database file>-commits`.
pub(super) fn log_dir(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-commits");
    PathBuf::from(name)
}

/// Opens the commit log, applies every record the tables do not have yet, and starts it
/// afresh.
pub(super) fn recover(path: &Path, w: &mut Writer) -> Result<(FileLog, u64), StoreError> {
    let (mut log, records) = FileLog::open(&log_dir(path))?;
    let entries = records
        .into_iter()
        .map(|(n, body)| Ok((n, commitlog::decode(&body)?)))
        .collect::<Result<Vec<(u64, WriteBatch)>, StoreError>>()?;
    let applied = applied_in_tables(w)?;
    if let Some((first, _)) = entries.first()
        && *first > applied + 1
    {
        // Entries after the tables' state were deleted: this log belongs to a later copy of
        // the database (e.g. a backup restored beside a newer log).
        return Err(StoreError::Corrupt(format!(
            "commit log {} starts at entry {first} but the database holds entries up to {applied} only",
            log_dir(path).display()
        )));
    }
    if !entries.is_empty() {
        tracing::info!(entries = entries.len(), "applying the commit log");
    }
    write_batches(w, &entries)?;
    let applied = applied_in_tables(w)?;
    let last = entries.last().map_or(0, |(n, _)| *n).max(applied);
    log.start_fresh(last + 1)?;
    Ok((log, last))
}

impl Inner {
    /// Appends one batch to the commit log; durable when this returns.
    pub(super) fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut body = Vec::with_capacity(512 * (batch.interactions.len() + batch.events.len()) + 64);
        commitlog::encode(&batch, &mut body);
        let size = batch.interactions.len() + batch.events.len();
        let waiting = {
            let mut log = lock(&self.log);
            log.forget_upto(self.applied.load(Ordering::Acquire))?;
            let n = log.append(&body)?;
            // Still under the log's lock, so `pending` stays in log order.
            let mut p = lock(&self.pending);
            p.batches.push((n, batch));
            p.size += size;
            p.last = n;
            p.size
        };
        if waiting >= APPLY_NOW {
            self.apply_pending()?;
        } else if waiting >= APPLY_SOON {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes every batch waiting in the commit log to the tables.
    fn apply_pending(&self) -> Result<(), StoreError> {
        let mut w = lock(&self.writer);
        let (batches, size) = {
            let mut p = lock(&self.pending);
            (std::mem::take(&mut p.batches), std::mem::take(&mut p.size))
        };
        let Some(last) = batches.last().map(|(n, _)| *n) else {
            return Ok(());
        };
        match write_batches(&mut w, &batches) {
            Ok(()) => {
                self.applied.fetch_max(last, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                // Back in front, for the next attempt; the log still holds them.
                let mut p = lock(&self.pending);
                let newer = std::mem::replace(&mut p.batches, batches);
                p.batches.extend(newer);
                p.size += size;
                Err(e)
            }
        }
    }

    /// Makes every appended entry visible in the tables (before every read and write): applies
    /// what waits, or waits for the applier that is writing it.
    pub(super) fn catch_up(&self) -> Result<(), StoreError> {
        let last = lock(&self.pending).last;
        if self.applied.load(Ordering::Acquire) >= last {
            return Ok(());
        }
        self.apply_pending()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.apply_pending() {
            tracing::warn!(error = %e, "applying the commit log at close failed; it is applied at the next open");
        }
    }
}

/// The applier thread: applies the commit log every [`APPLY_INTERVAL`], or when woken.
pub(super) fn applier(store: Weak<Inner>) {
    let mut failing = false;
    loop {
        let Some(inner) = store.upgrade() else { return };
        {
            let p = lock(&inner.pending);
            if p.size < APPLY_SOON {
                let wait = if failing {
                    APPLY_INTERVAL * 20
                } else {
                    APPLY_INTERVAL
                };
                drop(
                    inner
                        .wake
                        .wait_timeout(p, wait)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
        }
        match inner.apply_pending() {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "applying the commit log failed; retrying (commits are safe in the log)");
                }
                failing = true;
            }
        }
    }
}
