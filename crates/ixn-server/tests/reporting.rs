//! Reporting delivery end to end: a real server with two event loggers — an `event-log` into a
//! SQLite file and a webhook that is down at first — receives interactions and custom reporting
//! events. While the webhook fails, its logger is in alarm and the outbox grows; once it
//! recovers, both destinations hold every event exactly once (after dropping duplicates by
//! `seq`), and each interaction's events in order. The status endpoint is admin-only.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use ixn_protocol::{CustomReporting, ReportingEvent, Request, ServerMessage, StopProcessing};
use serde_json::{Value as Json, json};
use support::{AppOptions, DEADLINE, api_key, next_event, spawn_app, spawn_app_with, submit};

/// A webhook receiver that answers 500 while `down`.
#[derive(Default)]
struct Hook {
    down: bool,
    failed: usize,
    received: Vec<ReportingEvent>,
}

type SharedHook = Arc<Mutex<Hook>>;

async fn receive(State(hook): State<SharedHook>, body: Bytes) -> StatusCode {
    let mut h = hook.lock().expect("lock");
    if h.down {
        h.failed += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let batch: Vec<ReportingEvent> = serde_json::from_slice(&body).expect("JSON array");
    h.received.extend(batch);
    StatusCode::OK
}

async fn start_hook() -> (String, SharedHook) {
    let hook: SharedHook = Arc::new(Mutex::new(Hook {
        down: true,
        ..Hook::default()
    }));
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/events"), hook)
}

async fn status(app: &support::TestApp, application: &str) -> (StatusCode, Json) {
    let resp = app
        .http()
        .get(app.url("/v1/reporting/status"))
        .bearer_auth(api_key(application))
        .send()
        .await
        .expect("status request");
    let code = resp.status();
    (code, resp.json().await.expect("JSON body"))
}

/// Polls `check` until it returns Some, within the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE * 3, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sql_events(path: &std::path::Path) -> Vec<(u64, String, Option<String>)> {
    let Ok(conn) = rusqlite::Connection::open(path) else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare(
        "SELECT seq, event_name, interaction_id FROM rpt_interaction UNION ALL \
         SELECT seq, event_name, interaction_id FROM rpt_agent UNION ALL \
         SELECT seq, event_name, interaction_id FROM rpt_esp UNION ALL \
         SELECT seq, event_name, interaction_id FROM rpt_custom ORDER BY 1",
    ) else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_event_reaches_every_logger_once_and_in_order_despite_an_outage() {
    let (hook_url, hook) = start_hook().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reporting.db");
    // Loggers are top-level tables; the support module's file puts them after [settings].
    let loggers = format!(
        r#"
[[loggers]]
name = "sql"
delivery-protocol = "event-log"
url = "sqlite://{}"
batch-size = 20
storing-timeout = 500

[loggers.custom-customdata]
Campaign = "campaign"

[[loggers]]
name = "hook"
delivery-protocol = "webhook"
url = "{hook_url}"
batch-size = 15
storing-timeout = 500
reconnect-timeout = 1
max-retries = 0
"#,
        db.display()
    );
    let mut app = spawn_app_with(AppOptions {
        settings: loggers,
        ..AppOptions::default()
    })
    .await;
    let media = app.client("acme-media").await;

    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(submit(&media, "inbound", i, json!({ "Segment": format!("s{i}") })).await);
    }
    for id in &ids[..20] {
        let stop = Request::StopProcessing(StopProcessing {
            interaction_id: id.clone(),
            reason: None,
        });
        assert!(matches!(
            media.call(stop).await.expect("stop"),
            ServerMessage::EventAck { .. }
        ));
    }
    let custom = Request::CustomReporting(CustomReporting {
        custom_event_id: 5001,
        interaction_id: Some(ids[25].clone()),
        user_data: serde_json::from_value(json!({ "Campaign": "winter" })).expect("user data"),
    });
    assert!(matches!(
        media.call(custom).await.expect("custom"),
        ServerMessage::EventAck { .. }
    ));

    // The webhook is down: its logger raises the alarm and the outbox keeps its events.
    let (code, _) = status(&app, "acme-media").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "status is for admin applications");
    let down = eventually("the webhook logger is in alarm", || async {
        let (_, s) = status(&app, "acme-admin").await;
        (s["loggers"][1]["alarm"] == json!(true)).then_some(s)
    })
    .await;
    let last_seq = down["last_seq"].as_u64().expect("last_seq");
    assert!(
        last_seq > 30 * 2 + 20,
        "every submit, stop and custom report made events: {down}"
    );
    assert_eq!(down["loggers"][1]["depth"].as_u64(), Some(last_seq), "{down}");
    assert!(down["outbox_depth"].as_u64().unwrap_or(0) > 0, "{down}");
    assert!(
        down["loggers"][1]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{down}"
    );
    // The SQL logger is not held back by the failing one.
    eventually("the SQL logger has everything", || async {
        (sql_events(&db).len() as u64 == last_seq).then_some(())
    })
    .await;

    // Recovery: the webhook receives everything, the alarm clears, the outbox drains.
    hook.lock().expect("lock").down = false;
    let drained = eventually("the outbox is drained", || async {
        let (_, s) = status(&app, "acme-admin").await;
        let ok = s["outbox_depth"] == json!(0) && s["loggers"][1]["alarm"] == json!(false);
        ok.then_some(s)
    })
    .await;
    assert!(drained["loggers"][1]["errors_total"].as_u64().unwrap_or(0) >= 1);
    assert!(hook.lock().expect("lock").failed >= 1);

    // Exactly once after dropping duplicates, gap-free, in order per interaction.
    let received = hook.lock().expect("lock").received.clone();
    let mut seen = BTreeSet::new();
    let unique: Vec<&ReportingEvent> = received.iter().filter(|e| seen.insert(e.seq)).collect();
    let seqs: Vec<u64> = unique.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=last_seq).collect::<Vec<_>>());
    let sql = sql_events(&db);
    assert_eq!(
        sql.iter().map(|r| r.0).collect::<Vec<_>>(),
        seqs,
        "the same events in SQL"
    );
    for ((seq, name, ixn), e) in sql.iter().zip(&unique) {
        assert_eq!(
            (seq, name.as_str(), ixn.as_deref()),
            (&e.seq, e.event.name(), e.interaction_id.as_deref())
        );
    }
    let mut per_interaction: BTreeMap<&str, Vec<&ReportingEvent>> = BTreeMap::new();
    for e in &received {
        if let Some(id) = e.interaction_id.as_deref() {
            per_interaction.entry(id).or_default().push(e);
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let events = &per_interaction[id.as_str()];
        assert!(
            events.windows(2).all(|w| w[0].seq < w[1].seq),
            "{id} out of order"
        );
        assert_eq!(events[0].event.name(), "EventInteractionSubmitted", "{id}");
        let last = events[events.len() - 1].event.name();
        assert_eq!(last == "EventProcessingStopped", i < 20, "{id} ends with {last}");
    }
    let conn = rusqlite::Connection::open(&db).expect("open");
    let campaign: String = conn
        .query_row(
            "SELECT campaign FROM rpt_custom WHERE custom_event_id = 5001",
            [],
            |r| r.get(0),
        )
        .expect("the custom reporting event");
    assert_eq!(campaign, "winter");

    // A restart delivers nothing twice to SQL and resumes where the loggers stopped.
    app.restart().await;
    let media = app.client("acme-media").await;
    submit(&media, "inbound", 0, json!({})).await;
    eventually("the new events arrive", || async {
        let n = sql_events(&db).len() as u64;
        (n > last_seq).then_some(())
    })
    .await;
    let after = sql_events(&db);
    let unique_after: BTreeSet<u64> = after.iter().map(|r| r.0).collect();
    assert_eq!(unique_after.len(), after.len());
    app.stop().await;
}

/// The sequence numbers of the next `n` reporting events pushed to a subscribed client.
async fn live_seqs(client: &ixn_client::Client, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        if let ServerMessage::EventReporting { record } = next_event(client).await {
            seqs.push(record.seq);
        }
    }
    seqs
}

/// Submits one interaction and returns the sequence numbers of its two events (submitted,
/// placed in the queue) as a subscribed reporting client receives them.
async fn submit_watched(app: &support::TestApp) -> Vec<u64> {
    let reports = app.client("acme-reporting").await;
    reports
        .call(Request::Subscribe(ixn_protocol::Subscribe {}))
        .await
        .expect("subscribe");
    let media = app.client("acme-media").await;
    submit(&media, "inbound", 0, json!({})).await;
    live_seqs(&reports, 2).await
}

/// Events in the store's outbox and its last sequence (opening the store applies its commit log).
async fn stored_events(path: &std::path::Path) -> (usize, u64) {
    use ixn_store::Store;
    let store = ixn_store::sqlite::SqliteStore::open(path)
        .await
        .expect("open the store");
    let outbox = store.outbox_read(0, 10_000).await.expect("read the outbox");
    (outbox.len(), store.last_event_seq().await.expect("last sequence"))
}

#[tokio::test]
async fn without_a_logger_events_reach_subscribers_only_and_sequences_never_repeat() {
    let mut app = spawn_app().await;
    let first = submit_watched(&app).await;
    assert!(first[0] < first[1], "{first:?}");
    let (_, status) = status(&app, "acme-admin").await;
    assert_eq!(status["outbox_depth"], json!(0), "{status}");
    assert_eq!(status["last_seq"], json!(first[1]), "{status}");

    // Nothing was stored but how far the sequence went; after a restart it goes on from there.
    app.stop().await;
    assert_eq!(stored_events(&app.db_path).await, (0, first[1]));
    app.restart().await;
    let second = submit_watched(&app).await;
    assert_eq!(second, vec![first[1] + 1, first[1] + 2]);
    app.stop().await;
    assert_eq!(stored_events(&app.db_path).await, (0, second[1]));

    // Asked to keep them, the outbox holds every event of the next run.
    let text = std::fs::read_to_string(&app.config_path).expect("read the configuration");
    let text = text.replacen("[server]\n", "[server]\nkeep-events-without-loggers = true\n", 1);
    std::fs::write(&app.config_path, text).expect("write the configuration");
    app.restart().await;
    let media = app.client("acme-media").await;
    submit(&media, "inbound", 0, json!({})).await;
    drop(media);
    app.stop().await;
    assert_eq!(stored_events(&app.db_path).await, (2, second[1] + 2));
}
