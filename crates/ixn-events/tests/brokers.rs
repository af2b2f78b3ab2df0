//! The broker sinks against real brokers on loopback: NATS JetStream, RabbitMQ (AMQP), ActiveMQ
//! (STOMP) and a Kafka-protocol broker (tansu).
//!
//! For each broker: a run of events of several interactions goes through the sink and is read
//! back with a real consumer, event by event; and an outage test stops the broker in the middle
//! of the stream and starts it again while a delivery loop retries as the runner does (reset,
//! then deliver the same batch again), after which every event is there exactly once after
//! de-duplication by `seq`, in order per interaction.
//!
//! A broker that is not reachable makes its tests print a note and pass, unless
//! `IXN_REQUIRE_SERVICES=1` (CI), where they fail.

#[path = "brokers/amqp.rs"]
mod amqp;
#[path = "brokers/kafka.rs"]
mod kafka;
#[path = "brokers/nats.rs"]
mod nats;
#[path = "brokers/process.rs"]
mod process;
#[path = "brokers/stomp.rs"]
mod stomp;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ixn_events::{Sink, SinkError};
use ixn_model::Timestamp;
use ixn_protocol::{ReportingEvent, ReportingEventKind};

/// Events per batch handed to a sink, as a runner's batch-size would.
const BATCH: usize = 25;
/// Upper bound of one whole outage scenario.
const OUTAGE_DEADLINE: Duration = Duration::from_secs(240);
/// Delivery attempts of one batch before an outage test gives up.
const MAX_ATTEMPTS: usize = 400;

/// Whether a service must be there (CI) or may be skipped (a developer's machine).
fn services_required() -> bool {
    std::env::var("IXN_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (prints a note, returns false) or fails when `what` is missing; `true` when present.
fn available(what: &str, present: bool, hint: &str) -> bool {
    if present {
        return true;
    }
    if services_required() {
        panic!("{what} is required (IXN_REQUIRE_SERVICES=1) but not available: {hint}");
    }
    eprintln!("note: skipping, {what} not available ({hint})");
    false
}

/// Whether something accepts TCP connections at `address` (bounded).
async fn reachable(address: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), connect).await,
        Ok(Ok(_))
    )
}

/// A name no other run uses (brokers keep state between runs).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// `count` events with sequence numbers from `first_seq`, spread over `interactions`
/// interactions (round robin with a stride, so batches mix them), plus a few agent events
/// without an interaction.
fn sample_events(run: &str, first_seq: u64, count: usize, interactions: usize) -> Vec<ReportingEvent> {
    const KINDS: [ReportingEventKind; 4] = [
        ReportingEventKind::InteractionSubmitted,
        ReportingEventKind::PlacedInQueue,
        ReportingEventKind::TakenFromQueue,
        ReportingEventKind::PropertiesChanged,
    ];
    (0..count)
        .map(|i| {
            let seq = first_seq + i as u64;
            let time = Timestamp::from_millis(1_795_000_000_000 + i as i64 * 7);
            if i % 17 == 16 {
                let mut event = ReportingEvent::new(seq, ReportingEventKind::AgentLogin, time, "t1");
                event.actor = Some(ixn_protocol::Party {
                    kind: "agent".into(),
                    name: format!("agent-{}", i % 3),
                });
                return event;
            }
            let mut event = ReportingEvent::new(seq, KINDS[(i / interactions) % KINDS.len()], time, "t1");
            event.interaction_id = Some(format!("{run}-ixn-{:02}", (i * 7) % interactions));
            event.queue = Some(format!("queue-{}", i % 5));
            event.media_type = Some("email".into());
            event
        })
        .collect()
}

/// Delivers every event in batches; each batch must succeed at once.
async fn deliver_all(sink: &mut dyn Sink, events: &[ReportingEvent]) {
    for batch in events.chunks(BATCH) {
        if let Err(e) = sink.deliver(batch).await {
            panic!("delivering seq {}..: {e}", batch[0].seq);
        }
    }
}

/// Checks what a consumer read against what was sent: after de-duplication by `seq` (refused
/// when `exact`), every event exactly once with the same content, and each interaction's events
/// in `seq` order.
fn check_received(sent: &[ReportingEvent], received: &[ReportingEvent], exact: bool) {
    let expected: BTreeMap<u64, &ReportingEvent> = sent.iter().map(|e| (e.seq, e)).collect();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut last_per_interaction: HashMap<&str, u64> = HashMap::new();
    let mut duplicates = 0;
    for event in received {
        let Some(original) = expected.get(&event.seq) else {
            panic!("received seq {} that was never sent", event.seq);
        };
        assert_eq!(event, *original, "content of seq {}", event.seq);
        let count = seen.entry(event.seq).or_default();
        *count += 1;
        if *count > 1 {
            duplicates += 1;
            continue;
        }
        if let Some(id) = event.interaction_id.as_deref()
            && let Some(last) = last_per_interaction.insert(id, event.seq)
        {
            assert!(
                last < event.seq,
                "interaction {id}: seq {} after {last}",
                event.seq
            );
        }
    }
    let missing: Vec<u64> = expected
        .keys()
        .filter(|s| !seen.contains_key(s))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} events missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    if exact {
        assert_eq!(duplicates, 0, "duplicates received");
    }
    eprintln!("checked {} events ({duplicates} duplicates dropped)", sent.len());
}

/// A broker an outage test can stop and start again.
#[async_trait::async_trait]
trait Outage: Send {
    async fn stop(&mut self);
    async fn start(&mut self);
}

/// The runner's delivery loop under an outage: delivers `events` batch by batch, retrying a
/// failed batch after `reset`; once `stop_after` events were delivered the broker is stopped
/// (while deliveries go on), and started again after the loop saw a few failures. Bounded in
/// attempts and time. Returns how many deliveries failed, and the broker (still running, for the
/// consumer).
async fn deliver_through_outage(
    sink: &mut dyn Sink,
    broker: Box<dyn Outage>,
    events: &[ReportingEvent],
    stop_after: usize,
) -> (usize, Box<dyn Outage>) {
    let started = Instant::now();
    let delivered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    let controller = tokio::spawn(control_outage(
        broker,
        Arc::clone(&delivered),
        Arc::clone(&failures),
        Arc::clone(&stopped),
        Arc::clone(&restarted),
        stop_after,
    ));
    for batch in events.chunks(BATCH) {
        // A broker that takes its time to stop (a graceful shutdown) must not miss the stream:
        // a few batches after the stop point, deliveries wait until it is down.
        if delivered.load(Ordering::SeqCst) >= stop_after + 2 * BATCH {
            let down = wait_for(Duration::from_secs(120), || async {
                stopped.load(Ordering::SeqCst).then_some(())
            });
            assert!(down.await.is_some(), "the broker did not stop");
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = tokio::time::timeout(Duration::from_secs(60), sink.deliver(batch)).await;
            let error = match result {
                Ok(Ok(())) => break,
                Ok(Err(e)) => e,
                Err(_) => SinkError::new("deliver did not return within 60 s"),
            };
            failures.fetch_add(1, Ordering::SeqCst);
            assert!(
                attempts < MAX_ATTEMPTS && started.elapsed() < OUTAGE_DEADLINE,
                "batch from seq {} still failing after {attempts} attempts: {error}",
                batch[0].seq
            );
            sink.reset().await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        delivered.fetch_add(batch.len(), Ordering::SeqCst);
    }
    let broker = controller.await.expect("outage controller");
    assert!(restarted.load(Ordering::SeqCst), "the broker was never restarted");
    let failed = failures.load(Ordering::SeqCst);
    eprintln!("outage: {failed} failed deliveries before the broker came back");
    assert!(failed > 0, "the outage was not noticed by the sink");
    (failed, broker)
}

/// Stops the broker once `stop_after` events went through, starts it again after two failed
/// deliveries (or a bounded wait); returns the broker so the caller controls its lifetime.
async fn control_outage(
    mut broker: Box<dyn Outage>,
    delivered: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
    restarted: Arc<AtomicBool>,
    stop_after: usize,
) -> Box<dyn Outage> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(Ordering::SeqCst) < stop_after && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.stop().await;
    stopped.store(true, Ordering::SeqCst);
    let seen = failures.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while failures.load(Ordering::SeqCst) < seen + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.start().await;
    restarted.store(true, Ordering::SeqCst);
    broker
}

/// Polls `probe` until it returns `Some`, at most `within`.
async fn wait_for<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn sample_events_cover_interactions_and_agents() {
    let events = sample_events("r", 10, 100, 8);
    assert_eq!(events.first().map(|e| e.seq), Some(10));
    let interactions: std::collections::HashSet<_> =
        events.iter().filter_map(|e| e.interaction_id.clone()).collect();
    assert_eq!(interactions.len(), 8);
    assert!(events.iter().any(|e| e.interaction_id.is_none()));
    check_received(&events, &events, true);
}
