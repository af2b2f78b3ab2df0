//! What each logger reports about itself: its cursor, delivery counters, errors and alarm,
//! shared between the logger's task (writer) and status readers (HTTP, metrics).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ixn_model::Timestamp;
use serde::{Deserialize, Serialize};

/// Live counters of one logger; the logger task writes, everyone else reads.
#[derive(Debug)]
pub(crate) struct LoggerState {
    pub name: String,
    pub protocol: &'static str,
    /// Highest sequence this logger confirmed (delivered or filtered out).
    pub confirmed: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    /// True while deliveries fail (the alarm).
    pub failing: AtomicBool,
    pub last_error: Mutex<Option<(String, Timestamp)>>,
    /// Events per second over the last sampling interval, as `f64` bits.
    pub rate_bits: AtomicU64,
    /// Age of the oldest event not yet confirmed, in milliseconds (`u64::MAX` when none).
    pub oldest_age_ms: AtomicU64,
}

impl LoggerState {
    pub(crate) fn new(name: &str, protocol: &'static str, confirmed: u64) -> LoggerState {
        LoggerState {
            name: name.to_owned(),
            protocol,
            confirmed: AtomicU64::new(confirmed),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            rate_bits: AtomicU64::new(0f64.to_bits()),
            oldest_age_ms: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn record_error(&self, message: String, now: Timestamp) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some((message, now));
        }
    }

    pub(crate) fn snapshot(&self, last_seq: u64) -> LoggerStatus {
        let cursor = self.confirmed.load(Ordering::Relaxed);
        let (last_error, last_error_at) = match self.last_error.lock() {
            Ok(g) => g.clone().map_or((None, None), |(m, t)| (Some(m), Some(t))),
            Err(_) => (None, None),
        };
        let oldest = self.oldest_age_ms.load(Ordering::Relaxed);
        let depth = last_seq.saturating_sub(cursor);
        LoggerStatus {
            name: self.name.clone(),
            protocol: self.protocol.to_owned(),
            cursor,
            depth,
            oldest_age_ms: (depth > 0 && oldest != u64::MAX).then_some(oldest),
            delivered_total: self.delivered.load(Ordering::Relaxed),
            events_per_second: f64::from_bits(self.rate_bits.load(Ordering::Relaxed)),
            errors_total: self.errors.load(Ordering::Relaxed),
            alarm: self.failing.load(Ordering::Relaxed),
            last_error,
            last_error_at,
        }
    }
}

/// One logger in `GET /api/v1/reporting/status`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct LoggerStatus {
    pub name: String,
    /// Its `delivery-protocol`.
    pub protocol: String,
    /// Highest sequence confirmed by this logger.
    pub cursor: u64,
    /// Events committed but not yet confirmed by this logger (its share of the outbox).
    pub depth: u64,
    /// Age of the oldest of those events.
    pub oldest_age_ms: Option<u64>,
    pub delivered_total: u64,
    pub events_per_second: f64,
    pub errors_total: u64,
    /// True while the destination fails: the outbox grows until it recovers.
    pub alarm: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// The whole reporting delivery.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ReportingStatus {
    /// Highest committed event sequence.
    pub last_seq: u64,
    /// Events still in the outbox (not yet confirmed by every logger), an upper bound.
    pub outbox_depth: u64,
    pub loggers: Vec<LoggerStatus>,
}
