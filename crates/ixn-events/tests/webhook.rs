//! The webhook sink against a local HTTP server that checks the HMAC signature of every POST and
//! fails the first requests: the batch is retried and arrives once it succeeds.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ixn_config::WebhookOptions;
use ixn_events::Sink;
use ixn_events::sinks::webhook::{WebhookSink, signature};
use ixn_protocol::ReportingEvent;

const SECRET: &str = "webhook-test-secret";

#[derive(Default)]
struct Receiver {
    /// Requests still to fail with 500.
    fail_next: usize,
    attempts: usize,
    bad_signatures: usize,
    received: Vec<ReportingEvent>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut r = r.lock().expect("lock");
    r.attempts += 1;
    let sig = headers.get("x-ixn-signature").and_then(|v| v.to_str().ok());
    if sig != Some(signature(SECRET, &body).as_str()) {
        r.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if r.fail_next > 0 {
        r.fail_next -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let batch: Vec<ReportingEvent> = serde_json::from_slice(&body).expect("a JSON array of events");
    r.received.extend(batch);
    StatusCode::NO_CONTENT
}

async fn start(fail_next: usize) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Receiver {
        fail_next,
        ..Receiver::default()
    }));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), shared)
}

fn options(url: String, secret: &str, max_retries: u32) -> WebhookOptions {
    WebhookOptions {
        url,
        secret: Some(secret.to_owned()),
        timeout_ms: 5000,
        max_retries,
        retry_backoff_ms: 10,
    }
}

#[tokio::test]
async fn signed_batches_arrive_after_retries() {
    let (url, shared) = start(3).await;
    let mut sink = WebhookSink::new(&options(url, SECRET, 5));
    let events = common::run_of_events(25, 1);
    for batch in events.chunks(10) {
        sink.deliver(batch).await.expect("delivered within the retries");
    }
    let r = shared.lock().expect("lock");
    assert_eq!(r.bad_signatures, 0);
    assert_eq!(
        r.attempts,
        3 + events.chunks(10).count(),
        "three failures, then one POST per batch"
    );
    assert_eq!(r.received, events, "every event once, in order");
}

#[tokio::test]
async fn a_batch_fails_once_retries_are_exhausted_and_succeeds_later() {
    let (url, shared) = start(4).await;
    let mut sink = WebhookSink::new(&options(url, SECRET, 1));
    let events = common::run_of_events(3, 1);
    let err = sink.deliver(&events).await.expect_err("two attempts, both fail");
    assert!(err.message.contains("500"), "{err}");
    sink.deliver(&events).await.expect_err("two more failures");
    sink.deliver(&events).await.expect("the receiver recovered");
    assert_eq!(shared.lock().expect("lock").received, events);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let (url, shared) = start(0).await;
    let mut sink = WebhookSink::new(&options(url, "another-secret", 0));
    let events = common::run_of_events(1, 1);
    assert!(sink.deliver(&events).await.is_err());
    assert_eq!(shared.lock().expect("lock").bad_signatures, 1);
}
