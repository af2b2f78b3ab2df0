//! The delivery guarantees with a real SQLite store and a scripted sink: every event once and in
//! order, filtered events confirmed without delivery, a failing sink makes the outbox grow (and
//! raises the alarm) without losing anything, the window overflows to the outbox, the outbox is
//! trimmed to the slowest logger, and a restart resumes from the saved cursor.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ixn_config::{EventFilter, FileOptions, LoggerConfig, SinkConfig};
use ixn_events::{Reporting, Sink, SinkError};
use ixn_protocol::ReportingEvent;
use ixn_store::{OutboxEvent, Store, WriteBatch};

const DEADLINE: Duration = Duration::from_secs(20);

/// Records what it receives; fails while `down` is set.
#[derive(Debug, Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<ReportingEvent>>>,
    down: Arc<Mutex<bool>>,
}

#[async_trait::async_trait]
impl Sink for Recorder {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        if *self.down.lock().expect("lock") {
            return Err(SinkError::new("destination down"));
        }
        self.received.lock().expect("lock").extend_from_slice(events);
        Ok(())
    }
}

impl Recorder {
    fn seqs(&self) -> Vec<u64> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.seq)
            .collect()
    }
}

fn logger(name: &str) -> LoggerConfig {
    let mut cfg = LoggerConfig::new(
        name,
        SinkConfig::File(FileOptions {
            path: "unused".into(),
            max_file_size: 1 << 20,
            max_files: 1,
        }),
    );
    cfg.batch_size = 50;
    cfg.storing_timeout_ms = 500;
    cfg.max_queue_size = 100;
    cfg.reconnect_timeout_ms = 20;
    cfg
}

fn outbox(events: &[ReportingEvent]) -> Vec<OutboxEvent> {
    events
        .iter()
        .map(|e| OutboxEvent {
            seq: e.seq,
            time: e.time,
            name: e.event.name().to_owned(),
            interaction_id: None,
            payload: serde_json::to_string(e).expect("json"),
        })
        .collect()
}

/// Commits events in batches of `per_batch` and feeds each committed batch, as the server does.
async fn commit_and_feed(
    store: &dyn Store,
    reporting: &Reporting,
    events: &[ReportingEvent],
    per_batch: usize,
) {
    for chunk in events.chunks(per_batch) {
        let batch = WriteBatch {
            events: outbox(chunk),
            ..WriteBatch::default()
        };
        store.commit(&batch).await.expect("commit");
        reporting.feed(batch.events);
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn open_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    ixn_store::open(&format!("sqlite://{}", dir.path().join("store.db").display()))
        .await
        .expect("store")
}

#[tokio::test]
async fn every_event_once_in_order_through_outage_overflow_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let fast = Recorder::default();
    let slow = Recorder::default();
    let queue_only = Recorder::default();
    let mut filtered = logger("queue-only");
    filtered.filter = EventFilter {
        by_id: vec![151, 152],
        ..EventFilter::default()
    };
    *slow.down.lock().expect("lock") = true;
    let reporting = Reporting::start_with_sinks(
        vec![
            (logger("fast"), Box::new(fast.clone())),
            (logger("slow"), Box::new(slow.clone())),
            (filtered, Box::new(queue_only.clone())),
        ],
        false,
        store.clone(),
    )
    .await
    .expect("start");

    // 1000 events while "slow" is down: far more than its 100-event window.
    let events = common::run_of_events(249, 1);
    commit_and_feed(store.as_ref(), &reporting, &events, 7).await;
    let all: Vec<u64> = events.iter().map(|e| e.seq).collect();
    wait_until("fast has everything", || fast.seqs() == all).await;
    wait_until("the slow logger is in alarm", || {
        reporting.status().loggers[1].alarm && reporting.status().loggers[1].errors_total >= 2
    })
    .await;
    let status = reporting.status();
    assert_eq!(status.loggers[1].depth, all.len() as u64, "{status:?}");
    assert!(status.loggers[1].last_error.as_deref() == Some("destination down"));
    // Nothing left the outbox: the slow logger confirmed nothing yet.
    assert_eq!(store.outbox_read(0, 10_000).await.expect("read").len(), all.len());

    // It recovers: it reads what overflowed its window back from the outbox, in order.
    *slow.down.lock().expect("lock") = false;
    wait_until("slow has everything", || slow.seqs() == all).await;
    wait_until("the alarm is cleared", || !reporting.status().loggers[1].alarm).await;
    let queue_seqs: Vec<u64> = events
        .iter()
        .filter(|e| e.event_id == 151 || e.event_id == 152)
        .map(|e| e.seq)
        .collect();
    wait_until("queue-only has its events", || queue_only.seqs() == queue_seqs).await;
    wait_until("the outbox is trimmed", || reporting.status().outbox_depth == 0).await;
    reporting.shutdown().await;
    assert!(store.outbox_read(0, 10).await.expect("read").is_empty());

    // Restart: loggers resume after their saved cursors; only new events are delivered.
    let again = Recorder::default();
    let reporting = Reporting::start_with_sinks(
        vec![(logger("fast"), Box::new(again.clone()))],
        false,
        store.clone(),
    )
    .await
    .expect("restart");
    let more = common::run_of_events(5, all.len() as u64 + 1);
    commit_and_feed(store.as_ref(), &reporting, &more, 3).await;
    let more_seqs: Vec<u64> = more.iter().map(|e| e.seq).collect();
    wait_until("the new events arrive", || again.seqs() == more_seqs).await;
    reporting.shutdown().await;
}

/// Commits the events of `interactions` interactions with no logger and
/// `keep-events-without-loggers` on; they are all in the outbox afterwards.
async fn keep_without_logger(store: Arc<dyn Store>, interactions: usize) -> Vec<ReportingEvent> {
    let keeping = Reporting::start_with_sinks(vec![], true, store.clone())
        .await
        .expect("start");
    assert!(keeping.keeps_events());
    let events = common::run_of_events(interactions, 1);
    commit_and_feed(store.as_ref(), &keeping, &events, 4).await;
    keeping.shutdown().await;
    assert_eq!(
        store.outbox_read(0, 1000).await.expect("read").len(),
        events.len()
    );
    events
}

#[tokio::test]
async fn a_new_logger_starts_at_the_oldest_event_kept_and_shutdown_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    // Events committed while no logger runs stay in the outbox when asked to.
    let events = keep_without_logger(store.clone(), 10).await;

    let rec = Recorder::default();
    let mut cfg = logger("late");
    cfg.batch_size = 5000;
    cfg.storing_timeout_ms = 60_000;
    let reporting = Reporting::start_with_sinks(vec![(cfg, Box::new(rec.clone()))], false, store.clone())
        .await
        .expect("start");
    // The batch is neither full nor due: shutdown writes it.
    reporting.shutdown().await;
    let all: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(rec.seqs(), all);
    assert_eq!(
        store
            .meta_get("logger_cursor.late")
            .await
            .expect("meta")
            .as_deref(),
        Some(all.len().to_string().as_str())
    );
}

#[tokio::test]
async fn without_a_logger_the_outbox_keeps_nothing_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let last = keep_without_logger(store.clone(), 6).await.len() as u64;

    // Not asked: what an earlier run kept is deleted at start, and the status says so; the
    // sequence survives the deletion.
    let plain = Reporting::start_with_sinks(vec![], false, store.clone())
        .await
        .expect("start");
    assert!(!plain.keeps_events());
    assert!(store.outbox_read(0, 100).await.expect("read").is_empty());
    assert_eq!(store.last_event_seq().await.expect("seq"), last);
    assert_eq!(plain.status().outbox_depth, 0);
    plain.skipped(last + 3);
    let status = plain.status();
    assert_eq!((status.last_seq, status.outbox_depth), (last + 3, 0));
    plain.shutdown().await;

    // A configured logger always keeps events until it confirmed them.
    let with_logger = Reporting::start_with_sinks(
        vec![(logger("any"), Box::new(Recorder::default()))],
        false,
        store.clone(),
    )
    .await
    .expect("start");
    assert!(with_logger.keeps_events());
    with_logger.shutdown().await;
}
