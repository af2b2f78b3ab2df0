//! P6: sustained events per second into the `event-log` SQL sink (SQLite, and PostgreSQL on
//! 127.0.0.1:5432 when reachable).
//!
//! - `deliver/*`: the sink alone, batches of 5,000 fresh events (new sequence numbers every
//!   iteration, so every row is really inserted).
//! - `pipeline/*`: the whole logger: 20,000 events committed to a SQLite outbox, then the time
//!   for a logger (batch-size 5,000) to read them back from disk, decode, filter and insert them.
//!
//! Run: `cargo bench -p ixn-events --bench sql_sink`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ixn_config::{EventLogOptions, LoggerConfig, SinkConfig};
use ixn_events::sinks::eventlog::EventLogSink;
use ixn_events::{Reporting, Sink};
use ixn_model::{Timestamp, UserData, Value};
use ixn_protocol::{Party, ReportingEvent, ReportingEventKind as K};
use ixn_store::{OutboxEvent, WriteBatch};

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const BATCH: u64 = 5000;

/// A typical interaction event: ids, queue, actor and a little user data.
fn event(seq: u64) -> ReportingEvent {
    let kinds = [
        K::InteractionSubmitted,
        K::PlacedInQueue,
        K::TakenFromQueue,
        K::ProcessingStopped,
    ];
    let mut e = ReportingEvent::new(
        seq,
        kinds[(seq % 4) as usize],
        Timestamp(1_796_000_000_000 + seq as i64),
        "acme",
    );
    e.interaction_id = Some(format!("0001KXJ8Q2H{:06}", seq / 4));
    e.media_type = Some("email".into());
    e.queue = Some("inbound".into());
    e.actor = Some(Party {
        kind: "router".into(),
        name: "router-1".into(),
    });
    let mut ud = UserData::new();
    ud.push("Segment", Value::Str("gold".into()));
    ud.push("Priority", Value::Int(5));
    e.user_data = Some(ud);
    e
}

fn events(from: u64, n: u64) -> Vec<ReportingEvent> {
    (from..from + n).map(event).collect()
}

fn logger(url: String, schema: Option<String>) -> LoggerConfig {
    let opts = EventLogOptions {
        url,
        schema_name: schema,
        interaction_retention_min: 0,
        custom_retention_min: 0,
    };
    let mut cfg = LoggerConfig::new("bench", SinkConfig::EventLog(opts));
    cfg.batch_size = BATCH as u32;
    cfg.storing_timeout_ms = 500;
    cfg
}

fn sink_of(cfg: &LoggerConfig) -> EventLogSink {
    match &cfg.sink {
        SinkConfig::EventLog(opts) => EventLogSink::new(opts, cfg),
        _ => unreachable!("event-log configured above"),
    }
}

fn bench_deliver(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, cfg: &LoggerConfig) {
    let mut sink = sink_of(cfg);
    let next = AtomicU64::new(1);
    let mut group = c.benchmark_group("deliver");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20).measurement_time(Duration::from_secs(20));
    group.bench_function(name, |b| {
        b.iter_batched(
            || events(next.fetch_add(BATCH, Ordering::Relaxed), BATCH),
            |batch| rt.block_on(sink.deliver(&batch)).expect("deliver"),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_pipeline(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt
        .block_on(ixn_store::open(&format!(
            "sqlite://{}",
            dir.path().join("store.db").display()
        )))
        .expect("store");
    let mut cfg = logger(format!("sqlite://{}", dir.path().join("log.db").display()), None);
    // Smaller than one round (20,000): the window refuses it, the logger reads the outbox.
    cfg.max_queue_size = 10_000;
    let reporting = rt
        .block_on(Reporting::start(std::slice::from_ref(&cfg), false, store.clone()))
        .expect("start");
    let next = AtomicU64::new(1);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("sqlite_outbox_to_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let from = next.fetch_add(N, Ordering::Relaxed);
                let outbox: Vec<OutboxEvent> = events(from, N)
                    .iter()
                    .map(|e| OutboxEvent {
                        seq: e.seq,
                        time: e.time,
                        name: e.event.name().to_owned(),
                        interaction_id: None,
                        payload: serde_json::to_string(e).expect("json"),
                    })
                    .collect();
                let batch = WriteBatch {
                    events: outbox,
                    ..WriteBatch::default()
                };
                rt.block_on(store.commit(&batch)).expect("commit");
                let started = Instant::now();
                let last = from + N - 1;
                // Too large for the window: only its sequence is noted, events come from disk.
                reporting.feed(batch.events);
                // Bounded: a logger that stops confirming fails the benchmark instead of hanging it.
                while reporting.status().loggers[0].cursor < last {
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "the logger stopped draining"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    rt.block_on(reporting.shutdown());
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = logger(
        format!("sqlite://{}", dir.path().join("bench.db").display()),
        None,
    );
    bench_deliver(c, &rt, "sqlite", &sqlite);
    let schema = format!("ixn_bench_{}", std::process::id());
    let pg_up = rt
        .block_on(tokio_postgres::connect(PG_URL, tokio_postgres::NoTls))
        .is_ok();
    if pg_up {
        bench_deliver(
            c,
            &rt,
            "postgres",
            &logger(PG_URL.to_owned(), Some(schema.clone())),
        );
        rt.block_on(async {
            if let Ok((client, conn)) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await;
            }
        });
    } else {
        eprintln!("note: PostgreSQL at {PG_URL} unreachable; postgres benchmark skipped");
    }
    bench_pipeline(c, &rt);
}

criterion_group!(sql_sink, benches);
criterion_main!(sql_sink);
