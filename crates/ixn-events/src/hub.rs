//! The reporting delivery as a whole: starts one task per logger, hands each the events of every
//! committed batch, trims the outbox up to the lowest cursor confirmed by every logger, samples
//! status and metrics, and stops the loggers at shutdown.
//!
//! With no logger configured nothing reads the outbox, so by default it keeps nothing: the
//! server does not store events at all (they still reach subscribed clients) and an outbox left
//! from an earlier run is emptied at start. With `keep-events-without-loggers` it is kept whole
//! instead: a logger added later starts at the oldest event still kept and so delivers the whole
//! history.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ixn_config::LoggerConfig;
use ixn_store::{OutboxEvent, Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::runner::{Runner, cursor_key, now};
use crate::sink::Sink;
use crate::status::{LoggerState, ReportingStatus};
use crate::window::Window;

/// How often the coordinator trims the outbox and samples rates and ages.
const TICK: Duration = Duration::from_secs(1);

/// Handle on the running loggers; cheap to clone.
#[derive(Clone, Debug)]
pub struct Reporting {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    loggers: Vec<LoggerHandle>,
    /// Highest committed sequence seen (fed or loaded at start).
    last_seq: AtomicU64,
    /// Everything up to here was deleted from the outbox.
    trimmed: AtomicU64,
    /// Whether committed events are stored in the outbox (see [`Reporting::keeps_events`]).
    keeps: bool,
    confirmed: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct LoggerHandle {
    window: Arc<Window>,
    state: Arc<LoggerState>,
}

impl Reporting {
    /// Starts every configured logger with the sink its configuration names. With none,
    /// `keep_without_loggers` decides whether the outbox keeps events (see the module docs).
    pub async fn start(
        loggers: &[LoggerConfig],
        keep_without_loggers: bool,
        store: Arc<dyn Store>,
    ) -> Result<Reporting, StoreError> {
        let with_sinks = loggers
            .iter()
            .map(|cfg| (cfg.clone(), crate::sinks::build(&cfg.sink, cfg)))
            .collect();
        Self::start_with_sinks(with_sinks, keep_without_loggers, store).await
    }

    /// Starts loggers with the given sinks (tests and embedders bring their own).
    pub async fn start_with_sinks(
        loggers: Vec<(LoggerConfig, Box<dyn Sink>)>,
        keep_without_loggers: bool,
        store: Arc<dyn Store>,
    ) -> Result<Reporting, StoreError> {
        let keeps = keep_without_loggers || !loggers.is_empty();
        let last_seq = store.last_event_seq().await?;
        // A logger that never ran starts at the oldest event still kept.
        let mut oldest_kept = store
            .outbox_read(0, 1)
            .await?
            .first()
            .map_or(last_seq, |e| e.seq - 1);
        if !keeps && oldest_kept < last_seq {
            let deleted = store.outbox_delete_upto(last_seq).await?;
            tracing::info!(
                deleted,
                "no event logger is configured: the reporting events kept in the outbox are deleted \
                 (set keep-events-without-loggers in [server] to keep them for a logger added later)"
            );
            oldest_kept = last_seq;
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let confirmed = Arc::new(Notify::new());
        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        for (cfg, sink) in loggers {
            let cursor = match store.meta_get(&cursor_key(&cfg.name)).await? {
                Some(v) => v.parse().unwrap_or(oldest_kept),
                None => oldest_kept,
            };
            let window = Arc::new(Window::new(cfg.max_queue_size as usize, last_seq));
            let state = Arc::new(LoggerState::new(&cfg.name, cfg.sink.protocol(), cursor));
            tracing::info!(logger = %cfg.name, protocol = cfg.sink.protocol(), cursor, "event logger starting");
            let runner = Runner {
                cfg,
                store: store.clone(),
                sink,
                window: window.clone(),
                state: state.clone(),
                confirmed: confirmed.clone(),
                shutdown: shutdown_rx.clone(),
            };
            tasks.push(tokio::spawn(runner.run()));
            handles.push(LoggerHandle { window, state });
        }
        let reporting = Reporting {
            inner: Arc::new(Inner {
                store,
                loggers: handles,
                last_seq: AtomicU64::new(last_seq),
                trimmed: AtomicU64::new(oldest_kept),
                keeps,
                confirmed,
                shutdown,
                tasks: std::sync::Mutex::new(Vec::new()),
            }),
        };
        let coordinator = tokio::spawn(coordinate(reporting.inner.clone(), shutdown_rx));
        tasks.push(coordinator);
        if let Ok(mut t) = reporting.inner.tasks.lock() {
            *t = tasks;
        }
        Ok(reporting)
    }

    /// Whether committed reporting events must be written to the outbox: some logger will read
    /// them, or `keep-events-without-loggers` asks to keep them. When not, the server commits
    /// only how far the sequence went, and reports [`Reporting::skipped`] instead of feeding.
    pub fn keeps_events(&self) -> bool {
        self.inner.keeps
    }

    /// Records that events up to `seq` were committed without being stored (see
    /// [`Reporting::keeps_events`]), so the status shows an empty outbox at the right sequence.
    pub fn skipped(&self, seq: u64) {
        self.inner.last_seq.fetch_max(seq, Ordering::Relaxed);
        self.inner.trimmed.fetch_max(seq, Ordering::Relaxed);
    }

    /// Hands over the events of one committed batch (in sequence order).
    pub fn feed(&self, events: Vec<OutboxEvent>) {
        let Some(last) = events.last() else { return };
        self.inner.last_seq.fetch_max(last.seq, Ordering::Relaxed);
        let chunk: Arc<[OutboxEvent]> = events.into();
        for l in &self.inner.loggers {
            l.window.push(&chunk);
        }
    }

    /// Current status of every logger.
    pub fn status(&self) -> ReportingStatus {
        let last_seq = self.inner.last_seq.load(Ordering::Relaxed);
        ReportingStatus {
            last_seq,
            outbox_depth: last_seq.saturating_sub(self.inner.trimmed.load(Ordering::Relaxed)),
            loggers: self
                .inner
                .loggers
                .iter()
                .map(|l| l.state.snapshot(last_seq))
                .collect(),
        }
    }

    /// Stops every logger after its current batch and trims the outbox one last time.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            let _ = t.await;
        }
        trim(&self.inner).await;
    }
}

/// Trims the outbox when loggers confirm, and samples status every tick.
async fn coordinate(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut last_sample = Instant::now();
    let mut delivered: Vec<u64> = inner.loggers.iter().map(|_| 0).collect();
    let mut last_alarm_log = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = inner.confirmed.notified() => {
                // Coalesce confirmations: trim at most a few times per second.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = shutdown.changed() => return,
        }
        trim(&inner).await;
        if last_sample.elapsed() >= TICK {
            let secs = last_sample.elapsed().as_secs_f64();
            last_sample = Instant::now();
            sample(&inner, &mut delivered, secs).await;
            if inner
                .loggers
                .iter()
                .any(|l| l.state.failing.load(Ordering::Relaxed))
                && last_alarm_log.elapsed() >= Duration::from_secs(60)
            {
                last_alarm_log = Instant::now();
                let status = Reporting { inner: inner.clone() }.status();
                tracing::error!(
                    outbox_depth = status.outbox_depth,
                    "ALARM: the outbox grows while an event logger fails"
                );
            }
        }
    }
}

/// Deletes the outbox up to the lowest confirmed cursor.
async fn trim(inner: &Inner) {
    let last_seq = inner.last_seq.load(Ordering::Relaxed);
    let Some(upto) = inner
        .loggers
        .iter()
        .map(|l| l.state.confirmed.load(Ordering::Relaxed))
        .min()
    else {
        return; // no logger: the outbox is kept
    };
    if upto <= inner.trimmed.load(Ordering::Relaxed) {
        return;
    }
    match inner.store.outbox_delete_upto(upto).await {
        Ok(_) => inner.trimmed.store(upto, Ordering::Relaxed),
        Err(e) => tracing::warn!(error = %e, "trimming the outbox failed; will retry"),
    }
    metrics::gauge!("ixn_outbox_depth").set(last_seq.saturating_sub(upto) as f64);
}

/// Updates rates, depths and oldest ages (status and metrics).
async fn sample(inner: &Inner, delivered: &mut [u64], secs: f64) {
    let last_seq = inner.last_seq.load(Ordering::Relaxed);
    let now = now();
    for (l, prev) in inner.loggers.iter().zip(delivered.iter_mut()) {
        let s = &l.state;
        let total = s.delivered.load(Ordering::Relaxed);
        let rate = (total - *prev) as f64 / secs.max(0.001);
        *prev = total;
        s.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
        let cursor = s.confirmed.load(Ordering::Relaxed);
        let depth = last_seq.saturating_sub(cursor);
        let age = if depth == 0 {
            None
        } else {
            match inner.store.outbox_read(cursor, 1).await {
                Ok(first) => first
                    .first()
                    .map(|e| now.0.saturating_sub(e.time.0).max(0) as u64),
                Err(_) => None,
            }
        };
        s.oldest_age_ms.store(age.unwrap_or(u64::MAX), Ordering::Relaxed);
        let name = s.name.clone();
        metrics::gauge!("ixn_logger_outbox_depth", "logger" => name.clone()).set(depth as f64);
        metrics::gauge!("ixn_logger_oldest_event_age_seconds", "logger" => name.clone())
            .set(age.map_or(0.0, |ms| ms as f64 / 1000.0));
        metrics::gauge!("ixn_logger_events_per_second", "logger" => name).set(rate);
    }
}
