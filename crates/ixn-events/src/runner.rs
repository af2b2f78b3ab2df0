//! One logger's task: take events in sequence order (from its window when it keeps up, from the
//! outbox on disk when it is behind), filter them, write them in batches of `batch-size` or
//! after `storing-timeout`, and confirm a batch only once the sink did. A failed batch is
//! retried, after `reconnect-timeout` doubled up to a cap, until it succeeds or the server stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ixn_config::LoggerConfig;
use ixn_model::Timestamp;
use ixn_protocol::ReportingEvent;
use ixn_store::{OutboxEvent, Store};
use tokio::sync::{Notify, watch};

use crate::sink::Sink;
use crate::status::LoggerState;
use crate::window::Window;

/// How often the confirmed cursor is written to the store (a crash redelivers at most this much;
/// sinks drop or tolerate duplicates by `seq`).
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait between two attempts of a failing batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// Longest time the final batch may take at shutdown.
const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Store key of a logger's confirmed cursor.
pub(crate) fn cursor_key(logger: &str) -> String {
    format!("logger_cursor.{logger}")
}

/// Everything one logger task owns.
#[derive(Debug)]
pub(crate) struct Runner {
    pub cfg: LoggerConfig,
    pub store: Arc<dyn Store>,
    pub sink: Box<dyn Sink>,
    pub window: Arc<Window>,
    pub state: Arc<LoggerState>,
    /// Wakes the coordinator after a confirmation, so the outbox shrinks promptly.
    pub confirmed: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
}

/// The batch being assembled.
#[derive(Debug, Default)]
struct Pending {
    events: Vec<ReportingEvent>,
    /// Highest sequence read into this batch (filtered-out events included).
    upto: u64,
    /// When the first event of the batch was read.
    since: Option<Instant>,
}

impl Runner {
    pub(crate) async fn run(mut self) {
        let mut cursor = self.state.confirmed.load(Ordering::Relaxed);
        let mut saved = cursor;
        let mut saved_at = Instant::now();
        let mut pending = Pending {
            upto: cursor,
            ..Pending::default()
        };
        let batch_size = self.cfg.batch_size.max(1) as usize;
        let storing_timeout = Duration::from_millis(u64::from(self.cfg.storing_timeout_ms));
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            // Register interest before looking, so an arrival in between is not missed.
            let window = self.window.clone();
            let arrived = window.arrived.notified();
            let read = self.fill(&mut pending, batch_size).await;
            let due = pending.since.is_some_and(|s| s.elapsed() >= storing_timeout);
            if pending.events.len() >= batch_size || (due && !pending.events.is_empty()) {
                if !self.flush(&mut pending).await {
                    break; // stopping while the sink fails: the batch stays in the outbox
                }
            } else if pending.events.is_empty() && pending.upto > cursor {
                // Everything read so far was filtered out: confirmed without a write.
                self.confirm(pending.upto);
                pending.since = None;
            }
            cursor = self.state.confirmed.load(Ordering::Relaxed);
            if cursor > saved && saved_at.elapsed() >= CURSOR_SAVE_INTERVAL {
                self.save_cursor(cursor).await;
                (saved, saved_at) = (cursor, Instant::now());
            }
            if read == 0 {
                let wait = pending
                    .since
                    .map_or(storing_timeout, |s| storing_timeout.saturating_sub(s.elapsed()));
                tokio::select! {
                    _ = arrived => {}
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                    _ = self.shutdown.changed() => {}
                }
            }
        }
        // Finish the current batch, topped up with what is already committed (one bounded
        // attempt), then remember where we are.
        if pending.events.len() < batch_size {
            self.fill(&mut pending, batch_size).await;
        }
        if !pending.events.is_empty() {
            let events = std::mem::take(&mut pending.events);
            match tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, self.sink.deliver(&events)).await {
                Ok(Ok(())) => self.delivered(events.len(), pending.upto),
                Ok(Err(e)) => {
                    tracing::warn!(logger = %self.cfg.name, error = %e, "last batch not delivered at shutdown; it stays in the outbox")
                }
                Err(_) => {
                    tracing::warn!(logger = %self.cfg.name, "last batch timed out at shutdown; it stays in the outbox")
                }
            }
        } else if pending.upto > cursor {
            self.confirm(pending.upto);
        }
        let cursor = self.state.confirmed.load(Ordering::Relaxed);
        if cursor > saved {
            self.save_cursor(cursor).await;
        }
    }

    /// Reads the next events into the batch; returns how many were read.
    async fn fill(&mut self, pending: &mut Pending, batch_size: usize) -> usize {
        let want = batch_size.saturating_sub(pending.events.len()).max(1);
        let mut raw = self.window.take_from(pending.upto + 1, want);
        if raw.is_empty() && pending.upto < self.window.last_seq() {
            match self.store.outbox_read(pending.upto, want as u64).await {
                Ok(events) => raw = events,
                Err(e) => {
                    self.failed(format!("reading the outbox: {e}"));
                    self.pause(Duration::from_millis(u64::from(self.cfg.reconnect_timeout_ms)))
                        .await;
                    return 0;
                }
            }
        }
        let n = raw.len();
        for e in raw {
            if e.seq <= pending.upto {
                continue;
            }
            pending.upto = e.seq;
            if let Some(event) = self
                .decode(&e)
                .and_then(|ev| crate::filter::apply(&self.cfg.filter, ev))
            {
                pending.events.push(event);
                pending.since.get_or_insert_with(Instant::now);
            }
        }
        n
    }

    fn decode(&self, e: &OutboxEvent) -> Option<ReportingEvent> {
        match serde_json::from_str(&e.payload) {
            Ok(event) => Some(event),
            Err(err) => {
                // Not deliverable in any form; skipping it beats blocking every later event.
                tracing::error!(logger = %self.cfg.name, seq = e.seq, error = %err, "undecodable outbox event skipped");
                metrics::counter!("ixn_logger_undecodable_events_total", "logger" => self.cfg.name.clone())
                    .increment(1);
                None
            }
        }
    }

    /// Delivers the batch, retrying until it succeeds; false when the server stops first.
    async fn flush(&mut self, pending: &mut Pending) -> bool {
        let mut delay = Duration::from_millis(u64::from(self.cfg.reconnect_timeout_ms.max(1)));
        let cap = MAX_RETRY_DELAY.max(delay);
        loop {
            match self.sink.deliver(&pending.events).await {
                Ok(()) => {
                    self.delivered(pending.events.len(), pending.upto);
                    pending.events.clear();
                    pending.since = None;
                    return true;
                }
                Err(e) => {
                    self.failed(e.message);
                    self.sink.reset().await;
                    if !self.pause(delay).await {
                        return false;
                    }
                    delay = (delay * 2).min(cap);
                }
            }
        }
    }

    fn delivered(&self, n: usize, upto: u64) {
        self.state.delivered.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("ixn_logger_delivered_events_total", "logger" => self.cfg.name.clone())
            .increment(n as u64);
        if self.state.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(logger = %self.cfg.name, "event logger delivers again; alarm cleared");
            metrics::gauge!("ixn_logger_alarm", "logger" => self.cfg.name.clone()).set(0.0);
        }
        self.confirm(upto);
    }

    fn confirm(&self, upto: u64) {
        self.state.confirmed.fetch_max(upto, Ordering::Relaxed);
        self.confirmed.notify_one();
    }

    fn failed(&self, message: String) {
        metrics::counter!("ixn_logger_errors_total", "logger" => self.cfg.name.clone()).increment(1);
        if !self.state.failing.swap(true, Ordering::Relaxed) {
            tracing::error!(
                logger = %self.cfg.name,
                protocol = self.cfg.sink.protocol(),
                error = %message,
                "ALARM: event logger cannot deliver; events stay in the outbox until it recovers"
            );
            metrics::gauge!("ixn_logger_alarm", "logger" => self.cfg.name.clone()).set(1.0);
        } else {
            tracing::debug!(logger = %self.cfg.name, error = %message, "delivery failed again");
        }
        self.state.record_error(message, now());
    }

    /// Sleeps unless the server stops first; false when it does.
    async fn pause(&mut self, delay: Duration) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.shutdown.changed() => false,
        }
    }

    async fn save_cursor(&mut self, cursor: u64) {
        if let Err(e) = self
            .store
            .meta_set(&cursor_key(&self.cfg.name), &cursor.to_string())
            .await
        {
            // Not fatal: the outbox still holds what a restart would redeliver.
            tracing::warn!(logger = %self.cfg.name, error = %e, "saving the logger cursor failed");
        }
    }
}

/// The wall clock, as the envelope's timestamp type.
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}
