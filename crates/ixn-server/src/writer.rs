//! The store writer: commits one batch at a time, retrying until the store takes it (writes are
//! idempotent), and only then releases the answers, notifications and live reporting events that
//! depended on it. Nothing is acknowledged before it is durable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ixn_model::Name;
use ixn_protocol::{ReportingEvent, ServerMessage};
use ixn_store::{OutboxEvent, WriteBatch};
use tokio::sync::{mpsc, oneshot};

use crate::startup::Shared;

/// What a WebSocket session sends: a message to serialize, or text already serialized once for
/// many receivers (reporting events).
#[derive(Debug, Clone)]
pub(crate) enum WsOut {
    Message(ServerMessage),
    Text(Arc<str>),
}

impl WsOut {
    pub fn into_text(self) -> String {
        match self {
            WsOut::Message(m) => m.to_json_string(),
            WsOut::Text(t) => t.to_string(),
        }
    }
}

/// Where a released message goes.
#[derive(Debug)]
pub(crate) enum Dest {
    Ws(mpsc::UnboundedSender<WsOut>),
    /// A component inside the server's process that shares its fate (the in-process router of
    /// `ixn serve`, see `LocalConnector::connect_inside`): told at once what the core applied,
    /// before it is durable. A crash loses what it was told together with the batches not yet
    /// durable, and whatever it does in answer is applied to the batch being collected or a
    /// later one, whose effects outside the server wait for durability as always.
    Inside(mpsc::UnboundedSender<WsOut>),
    Rest(oneshot::Sender<ServerMessage>),
}

impl Dest {
    pub fn is_inside(&self) -> bool {
        matches!(self, Dest::Inside(_))
    }
}

/// One group commit and what waits for it.
#[derive(Debug)]
pub(crate) struct Job {
    /// The engine's number for the batch; reported back once it is durable.
    pub number: u64,
    /// Rows and meta; `events` is filled by the writer.
    pub batch: WriteBatch,
    /// The batch's reporting events; the writer encodes them (off the core task) into
    /// `batch.events`.
    pub events: Vec<ReportingEvent>,
    /// Connections subscribed to reporting events, with their tenant (empty when no event).
    pub subscribers: Vec<(Name, mpsc::UnboundedSender<WsOut>)>,
    /// Answers and notifications, sent once the batch is durable.
    pub releases: Vec<(Dest, WsOut)>,
}

/// The meta key holding the highest reporting sequence committed (see `Store::last_event_seq`).
const LAST_EVENT_SEQ: &str = "last_event_seq";

/// A reporting event as the outbox stores it.
fn outbox_event(e: &ReportingEvent) -> OutboxEvent {
    OutboxEvent {
        seq: e.seq,
        time: e.time,
        name: e.event.name().to_owned(),
        interaction_id: e
            .interaction_id
            .as_deref()
            .and_then(|i| ixn_model::InteractionId::parse(i).ok()),
        payload: serde_json::to_string(e).unwrap_or_default(),
    }
}

/// Hands a released message to its connection or REST caller.
pub(crate) fn deliver(dest: Dest, out: WsOut) {
    match dest {
        Dest::Ws(tx) | Dest::Inside(tx) => {
            let _ = tx.send(out);
        }
        Dest::Rest(tx) => {
            if let WsOut::Message(m) = out {
                let _ = tx.send(m);
            }
        }
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut jobs: mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<u64>,
) {
    while let Some(mut job) = jobs.recv().await {
        // Events are stored when someone will read them (a logger, or the operator's choice to
        // keep them); otherwise only how far the sequence went, so it never repeats.
        let keep = shared.reporting.keeps_events();
        let mut encoded: Vec<OutboxEvent> = if keep || !job.subscribers.is_empty() {
            job.events.iter().map(outbox_event).collect()
        } else {
            Vec::new()
        };
        let last_seq = job.events.last().map(|e| e.seq);
        if keep {
            job.batch.events = std::mem::take(&mut encoded);
        } else if let Some(seq) = last_seq {
            job.batch.meta.push((LAST_EVENT_SEQ.to_owned(), seq.to_string()));
        }
        if !job.batch.is_empty() {
            commit_until_durable(&shared, &job.batch).await;
        }
        // The batch's own messages first: the core releases later ones at once after `done`.
        for (dest, out) in job.releases {
            deliver(dest, out);
        }
        // Then its events, to the connections subscribed to their tenant.
        let stored = if keep { &job.batch.events } else { &encoded };
        if !job.subscribers.is_empty() {
            for (e, stored) in job.events.iter().zip(stored) {
                let text: Arc<str> = Arc::from(format!(
                    r#"{{"event":"EventReporting","record":{}}}"#,
                    stored.payload
                ));
                for (_, tx) in job.subscribers.iter().filter(|(t, _)| **t == *e.tenant) {
                    let _ = tx.send(WsOut::Text(text.clone()));
                }
            }
        }
        // Durable now: the event loggers may deliver these events.
        if keep {
            shared.reporting.feed(job.batch.events);
        } else if let Some(seq) = last_seq {
            shared.reporting.skipped(seq);
        }
        let _ = done.send(job.number);
    }
}

/// Commits, retrying until the store takes the batch (writes are idempotent).
async fn commit_until_durable(shared: &Shared, batch: &WriteBatch) {
    let mut delay = Duration::from_millis(10);
    loop {
        let started = std::time::Instant::now();
        match shared.store.commit(batch).await {
            Ok(()) => {
                metrics::histogram!("ixn_commit_seconds").record(started.elapsed().as_secs_f64());
                metrics::counter!("ixn_committed_interactions_total")
                    .increment(batch.interactions.len() as u64);
                metrics::counter!("ixn_reporting_events_total").increment(batch.events.len() as u64);
                if !shared.store_ok.swap(true, Ordering::Relaxed) {
                    tracing::info!("store is writable again");
                }
                return;
            }
            Err(e) => {
                if shared.store_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "commit failed; holding acknowledgements and retrying");
                }
                metrics::counter!("ixn_commit_failures_total").increment(1);
                if let Ok(mut last) = shared.last_store_error.lock() {
                    *last = Some(e.to_string());
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
