//! The event-log sink against real databases: SQLite always, PostgreSQL on 127.0.0.1:5432
//! (skipped with a note when unreachable, unless IXN_REQUIRE_SERVICES=1). Each receives a run of
//! events, checked row by row; a redelivered batch adds nothing; retention deletes the rows of
//! stopped interactions.

mod common;

use common::{PG_URL, T0, logger, postgres_available, run_of_events};
use ixn_config::{EventLogOptions, SinkConfig};
use ixn_events::Sink;
use ixn_events::sinks::eventlog::EventLogSink;
use ixn_model::Timestamp;

/// Options without retention (it runs against the wall clock after deliveries, and the test
/// events are older than that); `with_retention` sets it for the purge checks.
fn options(url: String, schema: Option<String>) -> EventLogOptions {
    EventLogOptions {
        url,
        schema_name: schema,
        interaction_retention_min: 0,
        custom_retention_min: 0,
    }
}

/// (table, seq, event_id, interaction_id, segment-or-campaign) of every row, ordered by seq.
type Row = (String, i64, i64, Option<String>, Option<String>);

fn expected_rows(events: &[ixn_protocol::ReportingEvent]) -> Vec<Row> {
    events
        .iter()
        .map(|e| {
            let table = match e.event_id {
                170..=179 => "rpt_agent",
                180 | 181 => "rpt_esp",
                190 if e.custom_event_id == Some(7) => "rpt_interaction",
                190 => "rpt_custom",
                _ => "rpt_interaction",
            };
            let custom = match (table, e.event_id) {
                ("rpt_interaction", 150) => e
                    .user_data
                    .as_ref()
                    .and_then(|u| u.get_str("Segment"))
                    .map(|s| s.chars().take(8).collect()),
                ("rpt_custom", _) => Some("spring".to_owned()),
                _ => None,
            };
            (
                table.to_owned(),
                e.seq as i64,
                i64::from(e.event_id),
                e.interaction_id.clone(),
                custom,
            )
        })
        .collect()
}

/// Compares row by row, reporting the first difference.
fn assert_rows(got: &[Row], expected: &[Row]) {
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "row {i}");
    }
    assert_eq!(got.len(), expected.len(), "row count");
}

const TABLE_QUERY: &str = "SELECT 'rpt_interaction', seq, event_id, interaction_id, segment FROM rpt_interaction \
     UNION ALL SELECT 'rpt_agent', seq, event_id, interaction_id, NULL FROM rpt_agent \
     UNION ALL SELECT 'rpt_esp', seq, event_id, interaction_id, NULL FROM rpt_esp \
     UNION ALL SELECT 'rpt_custom', seq, event_id, interaction_id, campaign FROM rpt_custom ORDER BY 2";

fn sqlite_rows(path: &std::path::Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn.prepare(TABLE_QUERY).expect("prepare");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

#[tokio::test]
async fn sqlite_receives_every_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let opts = options(format!("sqlite://{}", path.display()), None);
    let cfg = logger(SinkConfig::EventLog(opts.clone()));
    let mut sink = EventLogSink::new(&opts, &cfg);
    let events = run_of_events(50, 1);
    for batch in events.chunks(37) {
        sink.deliver(batch).await.expect("deliver");
    }
    // At least once: a batch delivered again (after a crash) adds nothing.
    sink.deliver(&events[10..80]).await.expect("redeliver");
    assert_rows(&sqlite_rows(&path), &expected_rows(&events));

    let score: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("SELECT score FROM rpt_interaction WHERE seq = 5", [], |r| {
            r.get(0)
        })
        .expect("score");
    assert_eq!(score, 1, "integer custom column");

    // A new sink on the same file migrates nothing twice and keeps writing.
    let mut again = EventLogSink::new(&opts, &cfg);
    let more = run_of_events(2, events.len() as u64 + 1);
    again.deliver(&more).await.expect("deliver after reopen");
    let all: Vec<_> = events.iter().chain(&more).cloned().collect();
    assert_rows(&sqlite_rows(&path), &expected_rows(&all));

    // Retention: stopped more than 10 minutes before `now` → every row of those interactions goes.
    let retained = EventLogOptions {
        interaction_retention_min: 10,
        ..opts.clone()
    };
    let mut purger = EventLogSink::new(&retained, &cfg);
    let now = Timestamp(T0 + 11 * 60_000);
    let deleted = purger.purge(now).await.expect("purge");
    assert!(deleted > 0);
    let left = sqlite_rows(&path);
    assert!(left.iter().all(|r| r.0 != "rpt_interaction"), "{left:?}");
    assert_eq!(
        left.len(),
        6,
        "agent, esp and custom rows (of both runs) are kept: {left:?}"
    );
}

#[tokio::test]
async fn postgres_receives_every_event_once() {
    if !postgres_available().await {
        return;
    }
    let schema = format!("ixn_evtest_{}_{}", std::process::id(), T0 % 10_000);
    let opts = options(PG_URL.to_owned(), Some(schema.clone()));
    let cfg = logger(SinkConfig::EventLog(opts.clone()));
    let mut sink = EventLogSink::new(&opts, &cfg);
    let events = run_of_events(50, 1);
    for batch in events.chunks(37) {
        sink.deliver(batch).await.expect("deliver");
    }
    sink.deliver(&events[10..80]).await.expect("redeliver");

    let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search path");
    let rows: Vec<Row> = client
        .query(TABLE_QUERY, &[])
        .await
        .expect("query")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let result = std::panic::AssertUnwindSafe(async {
        assert_rows(&rows, &expected_rows(&events));
        let width: i32 = client
            .query_one(
                "SELECT character_maximum_length FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = 'rpt_interaction' AND column_name = 'segment'",
                &[&schema],
            )
            .await
            .expect("column")
            .get(0);
        assert_eq!(width, 8, "string custom column of the configured length");
        let retained = EventLogOptions {
            interaction_retention_min: 10,
            ..opts.clone()
        };
        let mut purger = EventLogSink::new(&retained, &cfg);
        let deleted = purger.purge(Timestamp(T0 + 11 * 60_000)).await.expect("purge");
        assert_eq!(deleted, 50 * 4 + 1, "every row of the 50 stopped interactions");
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop schema");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
