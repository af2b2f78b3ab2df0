//! End-to-end tests of the ESP relay: ESP servers are raw WebSocket connections registered with
//! an application type and services; requesters are `ixn_client::Client`s sending
//! Request3rdServer. Every wait is bounded by the support's deadline.

mod support;

use std::collections::BTreeMap;

use ixn_client::Client;
use ixn_protocol::{Ping, Request, ServerMessage, Subscribe, ThirdServer};
use serde_json::{Map, Value as Json, json};
use support::*;
use tokio::sync::oneshot;

/// A raw connection registered as the ESP server `application` with a type and services.
async fn esp_server(app: &TestApp, application: &str, app_type: &str, services: &[&str]) -> RawWs {
    let mut ws = app.raw().await;
    let answer = ws
        .call(json!({
            "request": "RequestRegisterClient",
            "application": application,
            "kind": kind_of(application).as_str(),
            "api_key": api_key(application),
            "app_type": app_type,
            "services": services,
        }))
        .await;
    assert_eq!(answer["event"], "EventRegistered", "{answer}");
    ws
}

fn call_req(app_name: Option<&str>, app_type: Option<&str>, service: &str, method: &str) -> ThirdServer {
    ThirdServer {
        app_name: app_name.map(str::to_owned),
        app_type: app_type.map(str::to_owned),
        service: service.to_owned(),
        method: method.to_owned(),
        parameters: Map::new(),
        timeout_s: None,
        interaction_id: None,
    }
}

fn by_type(app_type: &str, service: &str) -> ThirdServer {
    call_req(None, Some(app_type), service, "Identify")
}

/// Sends a call without waiting for its answer.
fn send(client: &Client, call: ThirdServer) -> oneshot::Receiver<ServerMessage> {
    client
        .send(Request::ThirdServer(call))
        .expect("sending Request3rdServer")
}

/// The answer to a call sent with [`send`], within the deadline.
async fn answer_of(rx: oneshot::Receiver<ServerMessage>) -> ServerMessage {
    tokio::time::timeout(DEADLINE, rx)
        .await
        .expect("no answer before the deadline")
        .expect("connection closed")
}

/// The next relayed request an ESP server gets; returns its request id.
async fn relayed(esp: &mut RawWs) -> (u64, Json) {
    let msg = esp.recv().await;
    assert_eq!(msg["event"], "EventExternalServiceRequest", "{msg}");
    let id = msg["request_id"].as_u64().expect("request_id");
    (id, msg)
}

/// The ESP server answers with a result; the answer to that is an EventAck.
async fn answer_result(esp: &mut RawWs, request_id: u64, result: Json) {
    let ack = esp
        .call(
            json!({"request": "RequestExternalServiceResponse", "request_id": request_id, "result": result}),
        )
        .await;
    assert_eq!(ack["event"], "EventAck", "{ack}");
}

fn expect_result(msg: ServerMessage) -> (String, Map<String, Json>) {
    match msg {
        ServerMessage::Event3rdServerResult { app_name, result, .. } => (app_name, result),
        other => panic!("expected Event3rdServerResult, got {other:?}"),
    }
}

/// Asserts an error answer; returns its message.
fn expect_error(msg: ServerMessage, code: u32, name: &str) -> String {
    match msg {
        ServerMessage::EventError { error, .. } => {
            assert_eq!(
                (error.code, error.name.as_str()),
                (code, name),
                "{}",
                error.message
            );
            error.message
        }
        other => panic!("expected error {name} ({code}), got {other:?}"),
    }
}

#[tokio::test]
async fn calls_are_relayed_by_name_and_by_type_with_their_result() {
    let app = spawn_app().await;
    let mut esp = esp_server(&app, "acme-esp", "UCS", &["Contact"]).await;
    let router = app.client("acme-router").await;

    let mut call = call_req(Some("acme-esp"), None, "Contact", "Identify");
    call.parameters.insert("Email".into(), json!("ann@example.com"));
    let rx = send(&router, call);
    let (id, msg) = relayed(&mut esp).await;
    assert_eq!(msg["service"], "Contact", "{msg}");
    assert_eq!(msg["method"], "Identify", "{msg}");
    assert_eq!(msg["parameters"], json!({"Email": "ann@example.com"}), "{msg}");
    assert_eq!(
        msg["origin"],
        json!({"kind": "router", "name": "acme-router"}),
        "{msg}"
    );
    answer_result(&mut esp, id, json!({"ContactId": "c-1"})).await;
    let (app_name, result) = expect_result(answer_of(rx).await);
    assert_eq!(app_name, "acme-esp");
    assert_eq!(Json::Object(result), json!({"ContactId": "c-1"}));

    let media = app.client("acme-media").await;
    let ix = submit(&media, "inbound", 0, json!({})).await;
    let mut call = by_type("UCS", "Contact");
    call.interaction_id = Some(ix.clone());
    let rx = send(&media, call);
    let (id2, msg) = relayed(&mut esp).await;
    assert_ne!(id2, id, "every relayed call has its own id");
    assert_eq!(msg["interaction_id"], json!(ix), "{msg}");
    assert_eq!(msg["origin"]["kind"], "media-server", "{msg}");
    answer_result(&mut esp, id2, json!({})).await;
    let (app_name, result) = expect_result(answer_of(rx).await);
    assert_eq!((app_name.as_str(), result.len()), ("acme-esp", 0));
}

#[tokio::test]
async fn a_fault_reaches_the_requester() {
    let app = spawn_app().await;
    let mut esp = esp_server(&app, "acme-esp", "ChatServer", &[]).await;
    let agent = app.client("acme-agent").await;
    let rx = send(&agent, call_req(None, Some("ChatServer"), "Chat", "Message"));
    let (id, _) = relayed(&mut esp).await;
    let ack = esp
        .call(json!({
            "request": "RequestExternalServiceResponse",
            "request_id": id,
            "fault_code": 100,
            "fault_string": "interaction with specified id was not found",
        }))
        .await;
    assert_eq!(ack["event"], "EventAck", "{ack}");
    match answer_of(rx).await {
        ServerMessage::Event3rdServerFault {
            app_name,
            fault_code,
            fault_string,
            ..
        } => {
            assert_eq!(app_name, "acme-esp");
            assert_eq!(fault_code, 100);
            assert_eq!(fault_string, "interaction with specified id was not found");
        }
        other => panic!("expected Event3rdServerFault, got {other:?}"),
    }
}

#[tokio::test]
async fn no_matching_server_is_not_found_by_type() {
    let app = spawn_app().await;
    let _acme_ucs = esp_server(&app, "acme-esp", "UCS", &["Contact"]).await;
    let _globex_chat = esp_server(&app, "globex-esp", "ChatServer", &[]).await;
    let router = app.client("acme-router").await;
    // No server of that type; only another tenant's; the type without the service; an unknown
    // name.
    for call in [
        by_type("ClassificationServer", "Classify"),
        by_type("ChatServer", "Chat"),
        by_type("UCS", "Interaction"),
        call_req(Some("acme-ucs"), None, "Contact", "Identify"),
        call_req(Some("globex-esp"), None, "Chat", "Message"),
    ] {
        let message = expect_error(answer_of(send(&router, call)).await, 1050, "esp_server_not_found");
        assert!(message.contains("Not found by type"), "{message}");
    }
}

#[tokio::test]
async fn malformed_calls_and_answers_are_refused() {
    let app = spawn_app().await;
    let mut esp = esp_server(&app, "acme-esp", "UCS", &[]).await;
    let router = app.client("acme-router").await;
    let nowhere = call_req(None, None, "Contact", "Identify");
    expect_error(answer_of(send(&router, nowhere)).await, 1002, "invalid_field");
    for timeout_s in [0, 601] {
        let mut call = by_type("UCS", "Contact");
        call.timeout_s = Some(timeout_s);
        expect_error(answer_of(send(&router, call)).await, 1020, "invalid_value");
    }
    // Only ESP servers answer, and only with ids they were given.
    let stray = json!({"request": "RequestExternalServiceResponse", "request_id": 1, "result": {}});
    let mut media = app.raw_registered("acme-media").await;
    assert_error_json(&media.call(stray.clone()).await, 1007, "request_not_allowed");
    assert_error_json(&esp.call(stray).await, 1020, "invalid_value");
    // A result and a fault at once is refused; the call stays pending and can be answered.
    let rx = send(&router, by_type("UCS", "Contact"));
    let (id, _) = relayed(&mut esp).await;
    let both =
        json!({"request": "RequestExternalServiceResponse", "request_id": id, "result": {}, "fault_code": 1});
    assert_error_json(&esp.call(both).await, 1020, "invalid_value");
    answer_result(&mut esp, id, json!({"ok": true})).await;
    expect_result(answer_of(rx).await);
}

#[tokio::test]
async fn a_silent_server_times_out_and_its_late_answer_is_refused() {
    let app = spawn_app().await;
    let mut esp = esp_server(&app, "acme-esp", "UCS", &["Contact"]).await;
    let router = app.client("acme-router").await;
    let mut call = by_type("UCS", "Contact");
    call.timeout_s = Some(1);
    let rx = send(&router, call);
    let (id, _) = relayed(&mut esp).await;
    let message = expect_error(answer_of(rx).await, 1051, "esp_timeout");
    assert!(message.contains("acme-esp"), "{message}");
    let late = esp
        .call(json!({"request": "RequestExternalServiceResponse", "request_id": id, "result": {}}))
        .await;
    let message = assert_error_json(&late, 1020, "invalid_value");
    assert!(message.contains("unknown or expired request_id"), "{message}");
    assert_no_event(&router).await;
}

#[tokio::test]
async fn calls_by_type_are_balanced_across_servers() {
    let app = spawn_app().await;
    let mut first = esp_server(&app, "acme-esp", "UCS", &["Contact"]).await;
    let mut second = esp_server(&app, "acme-esp", "UCS", &[]).await;
    let router = app.client("acme-router").await;
    let calls: Vec<_> = (0..4).map(|_| send(&router, by_type("UCS", "Contact"))).collect();
    // Round robin: each server gets every other call.
    for esp in [&mut first, &mut second] {
        let ids = [relayed(esp).await.0, relayed(esp).await.0];
        for id in ids {
            answer_result(esp, id, json!({"by": id})).await;
        }
    }
    for rx in calls {
        expect_result(answer_of(rx).await);
    }
    // By name, the application's connections take turns too.
    let named: Vec<_> = (0..2)
        .map(|_| send(&router, call_req(Some("acme-esp"), None, "Other", "Do")))
        .collect();
    for esp in [&mut first, &mut second] {
        let (id, msg) = relayed(esp).await;
        assert_eq!(msg["service"], "Other");
        answer_result(esp, id, json!({})).await;
    }
    for rx in named {
        expect_result(answer_of(rx).await);
    }
}

#[tokio::test]
async fn a_server_leaving_fails_its_pending_calls() {
    let app = spawn_app().await;
    let mut esp = esp_server(&app, "acme-esp", "UCS", &[]).await;
    let router = app.client("acme-router").await;
    let rx = send(&router, by_type("UCS", "Contact"));
    relayed(&mut esp).await;
    drop(esp);
    let message = expect_error(answer_of(rx).await, 1052, "esp_server_gone");
    assert!(message.contains("disconnected"), "{message}");
    // It has left the registry.
    let again = answer_of(send(&router, by_type("UCS", "Contact"))).await;
    expect_error(again, 1050, "esp_server_not_found");
}

fn reporting_record(msg: ServerMessage) -> ixn_protocol::ReportingEvent {
    match msg {
        ServerMessage::EventReporting { record } => *record,
        other => panic!("expected EventReporting, got {other:?}"),
    }
}

#[tokio::test]
async fn each_step_is_a_durable_reporting_event() {
    // No logger is configured: the outbox keeps the events only when asked to.
    let mut app = spawn_app_with(AppOptions {
        server: "keep-events-without-loggers = true".into(),
        ..AppOptions::default()
    })
    .await;
    let reports = app.client("acme-reporting").await;
    assert!(matches!(
        reports.call(Request::Subscribe(Subscribe {})).await,
        Ok(ServerMessage::EventAck { .. })
    ));
    let mut esp = esp_server(&app, "acme-esp", "UCS", &[]).await;
    let router = app.client("acme-router").await;
    let rx = send(&router, by_type("UCS", "Contact"));
    let (ok_id, _) = relayed(&mut esp).await;
    answer_result(&mut esp, ok_id, json!({})).await;
    expect_result(answer_of(rx).await);
    let mut call = by_type("UCS", "Contact");
    call.timeout_s = Some(1);
    let rx = send(&router, call);
    let (late_id, _) = relayed(&mut esp).await;
    expect_error(answer_of(rx).await, 1051, "esp_timeout");

    let mut live = Vec::new();
    while live.len() < 4 {
        live.push(reporting_record(next_event(&reports).await));
    }
    let steps: Vec<_> = live
        .iter()
        .map(|r| {
            let esp = r.esp.as_ref().expect("esp details");
            (r.event_id, esp.request_id, esp.outcome.clone())
        })
        .collect();
    let outcome = |s: &str| Some(s.to_owned());
    assert_eq!(
        steps,
        vec![
            (180, ok_id, None),
            (181, ok_id, outcome("result")),
            (180, late_id, None),
            (181, late_id, outcome("timeout")),
        ]
    );
    let responded = &live[1];
    assert_eq!(responded.tenant, "acme");
    assert_eq!(
        responded.actor.as_ref().map(|p| p.name.as_str()),
        Some("acme-router")
    );
    assert_eq!(
        responded.party.as_ref().map(|p| p.name.as_str()),
        Some("acme-esp")
    );
    let info = responded.esp.as_ref().expect("esp details");
    assert_eq!(
        (info.service.as_str(), info.method.as_str()),
        ("Contact", "Identify")
    );
    assert_eq!(info.app_type.as_deref(), Some("UCS"));
    assert!(info.duration_ms.is_some());
    assert!(live.windows(2).all(|w| w[0].seq < w[1].seq), "{live:?}");

    // The same events, with the same sequence numbers, are in the store's outbox.
    drop((esp, router, reports));
    app.stop().await;
    let store = ixn_store::sqlite::SqliteStore::open(&app.db_path)
        .await
        .expect("opening the store");
    let outbox = ixn_store::Store::outbox_read(&store, 0, 10_000)
        .await
        .expect("reading the outbox");
    let stored: BTreeMap<u64, String> = outbox
        .iter()
        .filter(|e| e.name.starts_with("EventExternalService"))
        .map(|e| (e.seq, e.name.clone()))
        .collect();
    let expected: BTreeMap<u64, String> = live.iter().map(|r| (r.seq, r.event.name().to_owned())).collect();
    assert_eq!(stored, expected);
}

/// The ESP error counters of EventPing (collection must be on).
async fn esp_errors(client: &Client) -> BTreeMap<String, u64> {
    match client.call(Request::Ping(Ping {})).await.expect("ping") {
        ServerMessage::EventPing { counters, .. } => counters.esp_errors.expect("ESP counters are on"),
        other => panic!("ping answered {other:?}"),
    }
}

#[tokio::test]
async fn esp_errors_are_counted_per_request_type_when_enabled() {
    let app = spawn_app_with(AppOptions {
        settings: "collect-esp-error-counters = true".into(),
        ..AppOptions::default()
    })
    .await;
    let mut esp = esp_server(&app, "acme-esp", "UCS", &[]).await;
    let router = app.client("acme-router").await;
    assert!(esp_errors(&router).await.is_empty());

    // Not found, a fault, a timeout: three ESP errors; a result is none.
    expect_error(
        answer_of(send(&router, by_type("Nobody", "Contact"))).await,
        1050,
        "esp_server_not_found",
    );
    let rx = send(&router, by_type("UCS", "Contact"));
    let (id, _) = relayed(&mut esp).await;
    let fault = json!({"request": "RequestExternalServiceResponse", "request_id": id, "fault_code": 7});
    assert_eq!(esp.call(fault).await["event"], "EventAck");
    assert!(matches!(
        answer_of(rx).await,
        ServerMessage::Event3rdServerFault { .. }
    ));
    let mut call = by_type("UCS", "Contact");
    call.timeout_s = Some(1);
    let rx = send(&router, call);
    relayed(&mut esp).await;
    expect_error(answer_of(rx).await, 1051, "esp_timeout");
    let rx = send(&router, by_type("UCS", "Contact"));
    let (id, _) = relayed(&mut esp).await;
    answer_result(&mut esp, id, json!({})).await;
    expect_result(answer_of(rx).await);

    assert_eq!(esp_errors(&router).await.get("Request3rdServer"), Some(&3));
}
