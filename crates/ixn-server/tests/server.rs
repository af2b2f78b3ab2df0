//! End-to-end tests of the ixn server: each test starts the real server (port 0, fresh SQLite
//! file) with [`support::spawn_app`] and talks the real protocol — WebSocket through
//! `ixn_client::Client` or raw frames, REST through `RestClient` or plain HTTP.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use ixn_client::{Client, ClientError, Registration, TlsOptions};
use ixn_config::ClientKind;
use ixn_protocol::{
    ApplyConfig, ChangeProperties, FindInteractions, GetInteraction, GetSnapshotInteractions,
    GetWorkbinContent, Hold, InteractionView, LockInteraction, MoveInteractions, Ping, PlaceInWorkbin, Pull,
    Reason, ReleaseSnapshot, ReportingEventKind, Request, Resume, ServerMessage, StopProcessing, Submit,
    Subscribe, TakeSnapshot, UnlockInteraction, WorkbinTarget,
};
use serde_json::{Value as Json, json};
use support::*;

// ---------------------------------------------------------------------------------------------
// Small request helpers

fn get_req(id: &str) -> Request {
    Request::GetInteraction(GetInteraction {
        interaction_id: id.to_owned(),
    })
}

fn stop_req(id: &str) -> Request {
    Request::StopProcessing(StopProcessing {
        interaction_id: id.to_owned(),
        reason: None,
    })
}

fn pull_view(view: &str, count: u32) -> Request {
    Request::Pull(Pull {
        view: Some(view.to_owned()),
        count,
        interaction_ids: Vec::new(),
        strategy: None,
        max_wait_ms: None,
    })
}

fn pull_ids(ids: &[&str]) -> Request {
    Request::Pull(Pull {
        view: None,
        count: 1,
        interaction_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        strategy: None,
        max_wait_ms: None,
    })
}

fn find_req(condition: &str, include_stopped: bool) -> Request {
    Request::FindInteractions(FindInteractions {
        condition: condition.to_owned(),
        order: None,
        limit: None,
        offset: 0,
        include_stopped,
    })
}

fn snapshot_req(queue: Option<&str>, condition: Option<&str>) -> Request {
    Request::TakeSnapshot(TakeSnapshot {
        condition: condition.map(str::to_owned),
        order: None,
        queue: queue.map(str::to_owned),
        max: None,
    })
}

fn page_req(snapshot_id: u64, offset: u32, count: u32) -> Request {
    Request::GetSnapshotInteractions(GetSnapshotInteractions {
        snapshot_id,
        offset,
        count,
    })
}

fn user_data(v: Json) -> ixn_model::UserData {
    serde_json::from_value(v).expect("user data")
}

fn change_req(id: &str, added: Json) -> Request {
    Request::ChangeProperties(ChangeProperties {
        interaction_id: id.to_owned(),
        changed_properties: Default::default(),
        added_properties: user_data(added),
        deleted_properties: Vec::new(),
    })
}

async fn get(client: &Client, id: &str) -> InteractionView {
    match client.call(get_req(id)).await.expect("get interaction") {
        ServerMessage::EventInteractionProperties { interaction, .. } => *interaction,
        other => panic!("get answered {other:?}"),
    }
}

async fn pulled(client: &Client, request: Request) -> Vec<String> {
    match client.call(request).await.expect("pull") {
        ServerMessage::EventPulledInteractions { interactions, .. } => {
            interactions.into_iter().map(|ix| ix.id).collect()
        }
        other => panic!("pull answered {other:?}"),
    }
}

async fn found(client: &Client, request: Request) -> Vec<InteractionView> {
    match client.call(request).await.expect("find") {
        ServerMessage::EventFoundInteractions { interactions, .. } => interactions,
        other => panic!("find answered {other:?}"),
    }
}

async fn take_snapshot(client: &Client, request: Request) -> (u64, u64) {
    match client.call(request).await.expect("take snapshot") {
        ServerMessage::EventSnapshotTaken {
            snapshot_id, count, ..
        } => (snapshot_id, count),
        other => panic!("snapshot answered {other:?}"),
    }
}

async fn page(client: &Client, snapshot_id: u64, offset: u32, count: u32) -> Vec<String> {
    match client
        .call(page_req(snapshot_id, offset, count))
        .await
        .expect("snapshot page")
    {
        ServerMessage::EventSnapshotInteractions {
            interactions,
            offset: o,
            snapshot_id: s,
            ..
        } => {
            assert_eq!((s, o), (snapshot_id, offset));
            interactions.into_iter().map(|ix| ix.id).collect()
        }
        other => panic!("snapshot page answered {other:?}"),
    }
}

fn acked_interaction(answer: ServerMessage) -> InteractionView {
    match answer {
        ServerMessage::EventAck {
            interaction: Some(ix),
            ..
        } => *ix,
        other => panic!("expected an EventAck with the interaction, got {other:?}"),
    }
}

fn assert_ack(answer: Result<ServerMessage, ClientError>) {
    match answer {
        Ok(ServerMessage::EventAck { .. }) => {}
        other => panic!("expected EventAck, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Registration

#[tokio::test]
async fn every_configured_application_registers_in_its_tenant() {
    let app = spawn_app().await;
    for tenant in TENANTS {
        for (suffix, kind) in KINDS {
            let name = format!("{tenant}-{suffix}");
            let mut ws = app.raw().await;
            let answer = ws.register(&name, kind, &api_key(&name)).await;
            assert_eq!(answer["event"], "EventRegistered", "{name}: {answer}");
            assert_eq!(answer["tenant"], tenant, "{name}: {answer}");
            assert_eq!(answer["protocol_version"], ixn_protocol::PROTOCOL_VERSION);
        }
    }
}

#[tokio::test]
async fn registration_refuses_bad_credentials_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let mut ws = app.raw().await;

    let answer = ws.call(json!({"request": "RequestGetQueues"})).await;
    assert_error_json(&answer, 1004, "not_registered");

    let key = api_key("acme-media");
    let attempts = [
        (
            "acme-media",
            ClientKind::MediaServer,
            "this-is-not-the-key-of-anyone".to_owned(),
        ),
        ("acme-media", ClientKind::MediaServer, api_key("acme-agent")),
        ("acme-media", ClientKind::AgentDesktop, key.clone()),
        ("acme-agent", ClientKind::AgentDesktop, key.clone()),
    ];
    for (application, kind, key) in &attempts {
        let answer = ws.register(application, *kind, key).await;
        assert_error_json(&answer, 1006, "authentication_failed");
    }
    let answer = ws.call(json!({"request": "RequestPing"})).await;
    assert_error_json(&answer, 1004, "not_registered");

    let answer = ws.register("acme-media", ClientKind::MediaServer, &key).await;
    assert_eq!(answer["event"], "EventRegistered", "{answer}");
    assert_eq!(answer["tenant"], "acme");

    let answer = ws.register("acme-media", ClientKind::MediaServer, &key).await;
    assert_error_json(&answer, 1005, "already_registered");
    let answer = ws
        .register("globex-media", ClientKind::MediaServer, &api_key("globex-media"))
        .await;
    assert_error_json(&answer, 1005, "already_registered");

    // Still registered as acme-media, in acme.
    assert_eq!(ws.depth("escalations").await, 0);
    let answer = ws
        .call(json!({"request": "RequestSubmit", "queue": "inbound", "media_type": "chat"}))
        .await;
    assert_eq!(answer["event"], "EventAck", "{answer}");
    assert_eq!(answer["interaction"]["tenant"], "acme");
    assert_eq!(answer["interaction"]["submitted_by"], "acme-media");
}

#[tokio::test]
async fn a_peer_guessing_keys_is_disconnected() {
    let app = spawn_app().await;
    let mut ws = app.raw().await;
    for i in 0..5 {
        let answer = ws
            .register(
                "acme-media",
                ClientKind::MediaServer,
                &format!("guess-number-{i}-of-many"),
            )
            .await;
        assert_error_json(&answer, 1006, "authentication_failed");
    }
    ws.expect_closed().await;
}

// ---------------------------------------------------------------------------------------------
// Answers and pipelining

#[tokio::test]
async fn pipelined_requests_each_get_exactly_one_answer() {
    let app = spawn_app().await;
    let mut ws = app.raw_registered("acme-media").await;
    let mut expected = BTreeMap::new();
    for i in 0..200u64 {
        let rid = 5_000 + i * 7;
        let (body, answer) = match i % 4 {
            0 => (
                json!({"request": "RequestSubmit", "queue": "inbound", "media_type": "chat",
                       "user_data": {"n": i}}),
                "EventAck",
            ),
            1 => (json!({"request": "RequestPing"}), "EventPing"),
            2 => (json!({"request": "RequestGetQueues"}), "EventQueues"),
            _ => (
                json!({"request": "RequestGetInteraction", "interaction_id": format!("no-such-{i}")}),
                "EventError",
            ),
        };
        let mut body = body;
        body["reference_id"] = json!(rid);
        ws.feed_text(body.to_string()).await;
        expected.insert(rid, answer);
    }
    ws.flush().await;

    let mut answered = BTreeMap::new();
    for _ in 0..200 {
        let answer = ws.recv().await;
        let rid = answer["reference_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("answer without reference_id: {answer}"));
        let event = answer["event"].as_str().unwrap().to_owned();
        if event == "EventError" {
            assert_error_json(&answer, 1010, "unknown_interaction");
        }
        assert!(answered.insert(rid, event).is_none(), "two answers to {rid}");
    }
    let answered: BTreeMap<u64, &str> = answered.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(answered, expected);

    // Nothing else is on its way: the next message answers the next request.
    ws.send_text(json!({"request": "RequestPing", "reference_id": 99_999}).to_string())
        .await;
    let answer = ws.recv().await;
    assert_eq!(answer["reference_id"], 99_999, "{answer}");
    assert_eq!(ws.depth("inbound").await, 50);
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[tokio::test]
async fn bad_input_is_answered_and_changes_nothing() {
    let app = spawn_app_with(AppOptions {
        server: "max-frame-size = 4096".into(),
        ..AppOptions::default()
    })
    .await;
    let mut ws = app.raw_registered("acme-media").await;
    let answer = ws
        .call(json!({"request": "RequestSubmit", "queue": "inbound", "media_type": "chat"}))
        .await;
    let id = answer["interaction_id"].as_str().unwrap().to_owned();
    assert_eq!(ws.depth("inbound").await, 1);

    let oversized = json!({"request": "RequestPing", "reference_id": 20, "pad": "x".repeat(5_000)});
    // (frame, reference id of the answer, code, name, text the message must contain)
    let cases: Vec<(String, Option<u64>, u32, &str, &str)> = vec![
        (
            "not json at all".into(),
            None,
            1000,
            "malformed_message",
            "invalid JSON",
        ),
        ("[1, 2, 3]".into(), None, 1000, "malformed_message", ""),
        (
            r#"{"request":"RequestNope","reference_id":11}"#.into(),
            Some(11),
            1001,
            "unknown_request",
            "RequestNope",
        ),
        (
            r#"{"request":"RequestGetQueues","reference_id":12,"bogus":1}"#.into(),
            Some(12),
            1002,
            "invalid_field",
            "bogus",
        ),
        (
            r#"{"request":"RequestGetInteraction","reference_id":13}"#.into(),
            Some(13),
            1002,
            "invalid_field",
            "interaction_id",
        ),
        (
            r#"{"request":"RequestPing"}"#.into(),
            None,
            1002,
            "invalid_field",
            "reference_id",
        ),
        (
            r#"{"request":"RequestGetInteraction","reference_id":14,"interaction_id":"no-such-id"}"#.into(),
            Some(14),
            1010,
            "unknown_interaction",
            "no-such-id",
        ),
        (
            r#"{"request":"RequestStopProcessing","reference_id":15,"interaction_id":"no-such-id"}"#.into(),
            Some(15),
            1010,
            "unknown_interaction",
            "no-such-id",
        ),
        (
            r#"{"request":"RequestFindInteractions","reference_id":16,"condition":"priority >>= 3"}"#.into(),
            Some(16),
            1017,
            "invalid_condition",
            "at position",
        ),
        (
            r#"{"request":"RequestPull","reference_id":17,"view":"urgent"}"#.into(),
            Some(17),
            1007,
            "request_not_allowed",
            "RequestPull",
        ),
        (
            r#"{"request":"RequestSubmit","reference_id":18,"queue":"nowhere","media_type":"chat"}"#.into(),
            Some(18),
            1011,
            "unknown_queue",
            "nowhere",
        ),
        (oversized.to_string(), None, 1003, "frame_too_large", "4096"),
    ];
    for (frame, rid, code, name, needle) in &cases {
        ws.send_text(frame.clone()).await;
        let answer = ws.recv().await;
        let message = assert_error_json(&answer, *code, name);
        assert_eq!(
            answer.get("reference_id").and_then(Json::as_u64),
            *rid,
            "{frame}: {answer}"
        );
        assert!(
            message.contains(needle),
            "{frame}: message {message:?} lacks {needle:?}"
        );
        // The connection is still up and nothing changed.
        assert_eq!(ws.depth("inbound").await, 1, "after {frame}");
    }

    ws.send_binary(br#"{"request":"RequestPing","reference_id":30}"#.to_vec())
        .await;
    let answer = ws.recv().await;
    assert_error_json(&answer, 1000, "malformed_message");
    assert_eq!(ws.depth("inbound").await, 1);

    // Wrong client kind, and invalid conditions in snapshots.
    let mut reporting = app.raw_registered("acme-reporting").await;
    let answer = reporting
        .call(json!({"request": "RequestSubmit", "queue": "inbound", "media_type": "chat"}))
        .await;
    let message = assert_error_json(&answer, 1007, "request_not_allowed");
    assert!(message.contains("RequestSubmit"), "{message}");
    let answer = reporting
        .call(json!({"request": "RequestTakeSnapshot", "condition": "priority = "}))
        .await;
    let message = assert_error_json(&answer, 1017, "invalid_condition");
    assert!(message.contains("at position"), "{message}");
    let answer = reporting
        .call(json!({"request": "RequestTakeSnapshot", "order": "priority sideways"}))
        .await;
    assert_error_json(&answer, 1017, "invalid_condition");
    assert_eq!(reporting.depth("inbound").await, 1);

    let mut agent = app.raw_registered("acme-agent").await;
    let answer = agent
        .call(json!({"request": "RequestPull", "view": "no-such-view"}))
        .await;
    assert_error_json(&answer, 42, "unknown_view");
    let answer = agent
        .call(json!({"request": "RequestPull", "view": "urgent", "count": 0}))
        .await;
    assert_error_json(&answer, 1020, "invalid_value");
    let answer = agent.call(json!({"request": "RequestSubscribe"})).await;
    assert_error_json(&answer, 1007, "request_not_allowed");
    let answer = agent
        .call(json!({"request": "RequestGetInteraction", "interaction_id": id}))
        .await;
    assert_eq!(answer["interaction"]["state"], "queued", "{answer}");
    assert_eq!(answer["interaction"]["is_locked"], false);
    assert_eq!(agent.depth("inbound").await, 1);
}

/// The protocol promises that a field of the wrong type is an error naming the field, like
/// unknown and missing fields.
#[tokio::test]
async fn a_field_of_the_wrong_type_is_named_in_the_error() {
    let app = spawn_app().await;
    let mut ws = app.raw_registered("acme-agent").await;
    let cases = [
        (
            json!({"request": "RequestPull", "view": "urgent", "count": "many"}),
            "count",
        ),
        (
            json!({"request": "RequestSubmit", "queue": "inbound", "media_type": 5}),
            "media_type",
        ),
        (
            json!({"request": "RequestGetInteraction", "interaction_id": ["a"]}),
            "interaction_id",
        ),
    ];
    for (body, field) in cases {
        let answer = ws.call(body.clone()).await;
        let message = assert_error_json(&answer, 1002, "invalid_field");
        assert!(
            message.contains(field),
            "{body}: message {message:?} does not name `{field}`"
        );
    }
    assert_eq!(ws.depth("inbound").await, 0);
}

/// A peer sending messages far past max-frame-size is abusive: its connection is closed, and the
/// server goes on serving others.
#[tokio::test]
async fn a_frame_far_past_the_limit_closes_the_connection() {
    let app = spawn_app_with(AppOptions {
        server: "max-frame-size = 4096".into(),
        ..AppOptions::default()
    })
    .await;
    let mut ws = app.raw_registered("acme-media").await;
    ws.send_text(
        json!({"request": "RequestPing", "reference_id": 1, "pad": "x".repeat(200_000)}).to_string(),
    )
    .await;
    ws.expect_closed().await;
    let mut other = app.raw_registered("acme-media").await;
    assert_eq!(other.depth("inbound").await, 0);
}

/// The REST facade applies max-frame-size to bodies and answers with the error catalogue's body.
#[tokio::test]
async fn rest_refuses_an_oversized_body_with_the_error_body() {
    let app = spawn_app_with(AppOptions {
        server: "max-frame-size = 4096".into(),
        ..AppOptions::default()
    })
    .await;
    let response = app
        .http()
        .post(app.url("/v1/interactions"))
        .bearer_auth(api_key("acme-media"))
        .json(&json!({"queue": "inbound", "media_type": "chat", "user_data": {"pad": "x".repeat(5_000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = response.text().await.unwrap();
    let error: Json =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("413 body is not the error JSON: {body:?}"));
    assert_eq!(
        (error["code"].as_u64(), error["name"].as_str()),
        (Some(1003), Some("frame_too_large")),
        "{error}"
    );
    assert_eq!(app.rest("acme-media").queues().await.unwrap()[0].depth, 0);
}

// ---------------------------------------------------------------------------------------------
// Interaction lifecycle over WebSocket

#[tokio::test]
async fn lifecycle_submit_pull_workbin_pull_stop() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let agent = app.client("acme-agent").await;

    let low = submit(&media, "inbound", 1, json!({"Subject": "low"})).await;
    let mid = submit(&media, "inbound", 7, json!({"Subject": "mid"})).await;
    let top = submit(&media, "inbound", 9, json!({"Subject": "top"})).await;
    assert_eq!(depth(&media, "inbound").await, 3);

    // The view selects priority >= 5, highest first.
    assert_eq!(pulled(&agent, pull_view("urgent", 1)).await, vec![top.clone()]);
    let ix = get(&agent, &top).await;
    assert_eq!(ix.state.as_str(), "handling");
    assert_eq!(ix.assigned_to.as_deref(), Some("acme-agent"));
    assert_eq!(depth(&media, "inbound").await, 2);

    // Into the agent's workbin and back.
    let placed = acked_interaction(
        agent
            .call(Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id: top.clone(),
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await
            .unwrap(),
    );
    assert_eq!(placed.state.as_str(), "queued");
    assert_eq!(placed.workbin.as_deref(), Some("drafts"));
    assert_eq!(placed.workbin_owner.as_deref(), Some("acme-agent"));
    assert_eq!(placed.assigned_to, None);
    let content = |agent: Client| async move {
        match agent
            .call(Request::GetWorkbinContent(GetWorkbinContent {
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await
            .unwrap()
        {
            ServerMessage::EventWorkbinContent {
                workbin,
                owner,
                interactions,
                ..
            } => {
                assert_eq!((workbin.as_str(), owner.as_str()), ("drafts", "acme-agent"));
                interactions.into_iter().map(|ix| ix.id).collect::<Vec<_>>()
            }
            other => panic!("workbin content answered {other:?}"),
        }
    };
    assert_eq!(content(agent.clone()).await, vec![top.clone()]);
    // A workbin is not a queue: neither the depth nor the view sees it.
    assert_eq!(depth(&media, "inbound").await, 2);

    assert_eq!(pulled(&agent, pull_ids(&[&top])).await, vec![top.clone()]);
    assert_eq!(content(agent.clone()).await, Vec::<String>::new());
    let ix = get(&agent, &top).await;
    assert_eq!(ix.state.as_str(), "handling");
    assert_eq!(ix.workbin, None);

    // Stop with a reason: the submitter hears of it.
    let stopped = acked_interaction(
        agent
            .call(Request::StopProcessing(StopProcessing {
                interaction_id: top.clone(),
                reason: Some(Reason {
                    code: Some(3),
                    description: Some("answered".into()),
                }),
            }))
            .await
            .unwrap(),
    );
    assert_eq!(stopped.state.as_str(), "stopped");
    match next_event(&media).await {
        ServerMessage::EventProcessingStopped {
            interaction_id,
            reason,
            stopped_by,
        } => {
            assert_eq!(interaction_id, top);
            assert_eq!(stopped_by, "acme-agent");
            assert_eq!(reason.and_then(|r| r.description).as_deref(), Some("answered"));
        }
        other => panic!("expected EventProcessingStopped, got {other:?}"),
    }
    // Stopping twice is refused; the stopped interaction is still readable.
    let second = agent.call(stop_req(&top)).await;
    assert!(second.is_err(), "{second:?}");
    assert_eq!(get(&media, &top).await.state.as_str(), "stopped");

    // The rest is untouched: mid is next for the view, low never matches it.
    assert_eq!(pulled(&agent, pull_view("urgent", 5)).await, vec![mid.clone()]);
    assert_eq!(pulled(&agent, pull_view("urgent", 5)).await, Vec::<String>::new());
    assert_eq!(get(&media, &low).await.state.as_str(), "queued");
    assert_eq!(depth(&media, "inbound").await, 1);
}

#[tokio::test]
async fn brief_acks_carry_the_id_without_the_interaction() {
    let app = spawn_app().await;
    let mut reg = TestApp::registration("acme-media");
    reg.brief_acks = true;
    let brief = app.client_with(reg).await;
    let full = app.client("acme-media").await;
    let to_inbound = || {
        Request::Submit(Submit {
            queue: Some("inbound".into()),
            ..submit_chat()
        })
    };
    let (id, interaction) = match brief.call(to_inbound()).await.expect("submit") {
        ServerMessage::EventAck {
            interaction_id: Some(id),
            interaction,
            ..
        } => (id, interaction),
        other => panic!("submit answered {other:?}"),
    };
    assert!(interaction.is_none(), "a brief ack carries no interaction");
    // The interaction is there all the same, and other connections still get whole acks.
    assert_eq!(get(&brief, &id).await.state.as_str(), "queued");
    match full.call(to_inbound()).await.expect("submit") {
        ServerMessage::EventAck {
            interaction: Some(ix),
            ..
        } => assert_eq!(ix.state.as_str(), "queued"),
        other => panic!("submit answered {other:?}"),
    }
}

#[tokio::test]
async fn property_changes_reach_the_handling_agent_and_a_watching_submitter() {
    let app = spawn_app().await;
    let mut reg = TestApp::registration("acme-media");
    reg.notify_properties_changed = true;
    let watching = app.client_with(reg).await;
    let media = app.client("acme-media").await;
    let agent = app.client("acme-agent").await;

    let id = submit(&watching, "inbound", 1, json!({"Subject": "hello"})).await;
    assert_eq!(pulled(&agent, pull_ids(&[&id])).await, vec![id.clone()]);

    // The media server changes properties: the handling agent is told.
    assert_ack(media.call(change_req(&id, json!({"Note": "from media"}))).await);
    match next_event(&agent).await {
        ServerMessage::EventPropertiesChanged {
            interaction_id,
            added_properties,
            interaction,
            ..
        } => {
            assert_eq!(interaction_id, id);
            assert_eq!(added_properties.get_str("Note"), Some("from media"));
            assert_eq!(interaction.user_data.get_str("Note"), Some("from media"));
            assert_eq!(interaction.user_data.get_str("Subject"), Some("hello"));
        }
        other => panic!("expected EventPropertiesChanged, got {other:?}"),
    }

    // The agent changes properties: the submitter that asked for it is told, the other
    // connection of the same application is not, and the agent gets no echo.
    assert_ack(agent.call(change_req(&id, json!({"Disposition": "sale"}))).await);
    match next_event(&watching).await {
        ServerMessage::EventPropertiesChanged {
            interaction_id,
            added_properties,
            ..
        } => {
            assert_eq!(interaction_id, id);
            assert_eq!(added_properties.get_str("Disposition"), Some("sale"));
        }
        other => panic!("expected EventPropertiesChanged, got {other:?}"),
    }
    assert_no_event(&media).await;
    assert_no_event(&agent).await;
    let ix = get(&media, &id).await;
    assert_eq!(ix.user_data.get_str("Disposition"), Some("sale"));
    assert_eq!(ix.user_data.get_str("Note"), Some("from media"));
}

#[tokio::test]
async fn agents_act_only_on_what_they_hold() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let as_agent = |agent: &str| {
        let mut reg = TestApp::registration("acme-agent");
        reg.agent_id = Some(agent.to_owned());
        reg
    };
    let alice = app.client_with(as_agent("alice")).await;
    let bob = app.client_with(as_agent("bob")).await;
    let id = submit(&media, "inbound", 1, json!({})).await;
    assert_eq!(pulled(&alice, pull_ids(&[&id])).await, vec![id.clone()]);
    assert_eq!(get(&bob, &id).await.assigned_to.as_deref(), Some("alice"));

    assert_server_error(bob.call(pull_ids(&[&id])).await, 1015, "invalid_state");
    assert_server_error(bob.call(stop_req(&id)).await, 1022, "not_assigned");
    assert_server_error(
        bob.call(change_req(&id, json!({"k": "v"}))).await,
        1022,
        "not_assigned",
    );
    assert_server_error(
        bob.call(Request::PlaceInWorkbin(PlaceInWorkbin {
            interaction_id: id.clone(),
            workbin: WorkbinTarget {
                name: "drafts".into(),
                owner: None,
            },
        }))
        .await,
        1022,
        "not_assigned",
    );
    let ix = get(&alice, &id).await;
    assert_eq!(
        (ix.state.as_str(), ix.assigned_to.as_deref()),
        ("handling", Some("alice"))
    );
    assert!(ix.user_data.is_empty());

    // Alice's workbin is hers: placed there, bob's default workbin does not show it.
    let placed = acked_interaction(
        alice
            .call(Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id: id.clone(),
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await
            .unwrap(),
    );
    assert_eq!(placed.workbin_owner.as_deref(), Some("alice"));
    let content = |client: Client| async move {
        match client
            .call(Request::GetWorkbinContent(GetWorkbinContent {
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await
            .unwrap()
        {
            ServerMessage::EventWorkbinContent { interactions, .. } => interactions.len(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(content(alice.clone()).await, 1);
    assert_eq!(content(bob.clone()).await, 0);
    assert_ack(alice.call(stop_req(&id)).await);
}

#[tokio::test]
async fn hold_resume_lock_and_unlock() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let agent = app.client("acme-agent").await;

    let handled = submit(&media, "inbound", 1, json!({})).await;
    assert_eq!(pulled(&agent, pull_ids(&[&handled])).await, vec![handled.clone()]);
    let hold = || {
        Request::Hold(Hold {
            interaction_id: handled.clone(),
            reason: None,
        })
    };
    let resume = || {
        Request::Resume(Resume {
            interaction_id: handled.clone(),
            reason: None,
        })
    };
    assert_ack(agent.call(hold()).await);
    let ix = get(&agent, &handled).await;
    assert!(ix.is_held);
    assert!(ix.held_at.is_some());
    assert_server_error(agent.call(hold()).await, 1015, "invalid_state");
    assert_ack(agent.call(resume()).await);
    assert!(!get(&agent, &handled).await.is_held);
    assert_server_error(agent.call(resume()).await, 1015, "invalid_state");

    // A locked interaction is hidden from pulls until it is unlocked.
    let urgent = submit(&media, "inbound", 8, json!({})).await;
    let lock = Request::LockInteraction(LockInteraction {
        interaction_id: urgent.clone(),
        reason: None,
    });
    assert_ack(agent.call(lock.clone()).await);
    assert!(get(&media, &urgent).await.is_locked);
    assert_server_error(agent.call(lock).await, 1018, "interaction_locked");
    assert_eq!(pulled(&agent, pull_view("urgent", 5)).await, Vec::<String>::new());
    assert_server_error(agent.call(pull_ids(&[&urgent])).await, 1018, "interaction_locked");
    assert_eq!(get(&media, &urgent).await.state.as_str(), "queued");

    let unlock = Request::UnlockInteraction(UnlockInteraction {
        interaction_id: urgent.clone(),
    });
    assert_ack(agent.call(unlock.clone()).await);
    assert_server_error(agent.call(unlock).await, 1015, "invalid_state");
    assert_eq!(pulled(&agent, pull_view("urgent", 5)).await, vec![urgent.clone()]);
}

// ---------------------------------------------------------------------------------------------
// Reporting

fn reporting_record(msg: ServerMessage) -> ixn_protocol::ReportingEvent {
    match msg {
        ServerMessage::EventReporting { record } => *record,
        other => panic!("expected EventReporting, got {other:?}"),
    }
}

#[tokio::test]
async fn reporting_subscribers_receive_their_tenants_events_in_order() {
    let app = spawn_app().await;
    let acme_reports = app.client("acme-reporting").await;
    let globex_reports = app.client("globex-reporting").await;
    let unsubscribed = app.client("acme-reporting").await;
    assert_ack(acme_reports.call(Request::Subscribe(Subscribe {})).await);
    assert_ack(globex_reports.call(Request::Subscribe(Subscribe {})).await);

    let globex = app.client("globex-media").await;
    let acme = app.client("acme-media").await;
    let g = submit(&globex, "inbound", 0, json!({})).await;
    let a = submit(&acme, "inbound", 0, json!({"Subject": "a"})).await;
    let b = submit(&acme, "inbound", 0, json!({})).await;
    assert_ack(acme.call(stop_req(&b)).await);

    let expected_acme = vec![
        ("EventInteractionSubmitted", a.clone()),
        ("EventPlacedInQueue", a.clone()),
        ("EventInteractionSubmitted", b.clone()),
        ("EventPlacedInQueue", b.clone()),
        ("EventTakenFromQueue", b.clone()),
        ("EventProcessingStopped", b.clone()),
    ];
    let mut seen = Vec::new();
    let mut last_seq = 0;
    while seen.len() < expected_acme.len() {
        let record = reporting_record(next_event(&acme_reports).await);
        assert_eq!(record.tenant, "acme", "{record:?}");
        assert!(record.seq > last_seq, "seq {} after {last_seq}", record.seq);
        last_seq = record.seq;
        assert_eq!(record.event_id, record.event.id());
        seen.push((
            record.event.name(),
            record.interaction_id.clone().unwrap_or_default(),
        ));
        if record.event == ReportingEventKind::InteractionSubmitted
            && record.interaction_id.as_deref() == Some(a.as_str())
        {
            assert_eq!(
                record.user_data.as_ref().and_then(|u| u.get_str("Subject")),
                Some("a")
            );
        }
    }
    assert_eq!(seen, expected_acme);

    let mut seen = Vec::new();
    let mut last_seq = 0;
    while seen.len() < 2 {
        let record = reporting_record(next_event(&globex_reports).await);
        assert_eq!(record.tenant, "globex", "{record:?}");
        assert!(record.seq > last_seq);
        last_seq = record.seq;
        seen.push((record.event.name(), record.interaction_id.unwrap_or_default()));
    }
    assert_eq!(
        seen,
        vec![
            ("EventInteractionSubmitted", g.clone()),
            ("EventPlacedInQueue", g.clone())
        ]
    );
    // Nothing of acme reached globex, and nothing reached the client that did not subscribe.
    assert_no_event(&globex_reports).await;
    assert_no_event(&unsubscribed).await;
}

// ---------------------------------------------------------------------------------------------
// Snapshots, moves, find

#[tokio::test]
async fn snapshots_are_paged_owned_and_released() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let agent = app.client("acme-agent").await;
    let other = app.client("acme-reporting").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(submit(&media, "inbound", i, json!({"n": i})).await);
    }
    submit(&media, "escalations", 0, json!({})).await;

    let (snap, count) = take_snapshot(&agent, snapshot_req(Some("inbound"), None)).await;
    assert_eq!(count, 5);
    assert_eq!(page(&agent, snap, 0, 2).await, ids[0..2].to_vec());
    assert_eq!(page(&agent, snap, 2, 2).await, ids[2..4].to_vec());
    assert_eq!(page(&agent, snap, 4, 2).await, ids[4..5].to_vec());
    assert_eq!(page(&agent, snap, 5, 2).await, Vec::<String>::new());

    // Another connection cannot read it.
    assert_server_error(other.call(page_req(snap, 0, 2)).await, 1013, "unknown_snapshot");

    // Interactions stopped since are left out of later pages.
    assert_ack(media.call(stop_req(&ids[1])).await);
    assert_eq!(page(&agent, snap, 0, 2).await, vec![ids[0].clone()]);

    // Condition and max.
    let (s2, count) = take_snapshot(&agent, snapshot_req(None, Some("priority >= 3"))).await;
    assert_eq!(count, 2);
    assert_eq!(page(&agent, s2, 0, 10).await, ids[3..5].to_vec());
    let (s3, count) = take_snapshot(
        &other,
        Request::TakeSnapshot(TakeSnapshot {
            condition: None,
            order: Some("priority desc".into()),
            queue: None,
            max: Some(2),
        }),
    )
    .await;
    assert_eq!(count, 2);
    assert_eq!(
        page(&other, s3, 0, 10).await,
        vec![ids[4].clone(), ids[3].clone()]
    );

    let release = Request::ReleaseSnapshot(ReleaseSnapshot { snapshot_id: snap });
    assert_ack(agent.call(release.clone()).await);
    assert_server_error(agent.call(page_req(snap, 0, 2)).await, 1013, "unknown_snapshot");
    assert_server_error(agent.call(release).await, 1013, "unknown_snapshot");
    // Releasing one snapshot leaves the others.
    assert_eq!(page(&agent, s2, 0, 10).await, ids[3..5].to_vec());
}

#[tokio::test]
async fn move_interactions_from_a_snapshot_to_another_queue() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let agent = app.client("acme-agent").await;
    let p1 = submit(&media, "inbound", 1, json!({})).await;
    let p6 = submit(&media, "inbound", 6, json!({})).await;
    let p7 = submit(&media, "inbound", 7, json!({})).await;
    let p8 = submit(&media, "inbound", 8, json!({})).await;
    assert_ack(
        agent
            .call(Request::LockInteraction(LockInteraction {
                interaction_id: p8.clone(),
                reason: None,
            }))
            .await,
    );

    let (snap, count) = take_snapshot(&agent, snapshot_req(Some("inbound"), Some("priority >= 5"))).await;
    assert_eq!(count, 3);
    let answer = agent
        .call(Request::MoveInteractions(MoveInteractions {
            snapshot_id: snap,
            queue: "escalations".into(),
        }))
        .await
        .unwrap();
    let ServerMessage::EventInteractionMoved { moved, failed, .. } = answer else {
        panic!("move answered {answer:?}");
    };
    assert_eq!(moved, vec![p6.clone(), p7.clone()]);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0].interaction_id.as_str(), failed[0].code),
        (p8.as_str(), 1018)
    );

    assert_eq!(depth(&media, "inbound").await, 2);
    assert_eq!(depth(&media, "escalations").await, 2);
    assert_eq!(get(&media, &p6).await.queue.as_deref(), Some("escalations"));
    assert_eq!(get(&media, &p1).await.queue.as_deref(), Some("inbound"));
    assert_eq!(get(&media, &p8).await.queue.as_deref(), Some("inbound"));

    assert_server_error(
        agent
            .call(Request::MoveInteractions(MoveInteractions {
                snapshot_id: snap,
                queue: "nowhere".into(),
            }))
            .await,
        1011,
        "unknown_queue",
    );
    assert_server_error(
        agent
            .call(Request::MoveInteractions(MoveInteractions {
                snapshot_id: snap + 100,
                queue: "escalations".into(),
            }))
            .await,
        1013,
        "unknown_snapshot",
    );
}

#[tokio::test]
async fn find_with_include_stopped_reads_the_history() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let with_external = |external: &str| Submit {
        queue: Some("inbound".into()),
        external_id: Some(external.into()),
        user_data: Some(user_data(json!({"Subject": external}))),
        ..submit_chat()
    };
    let stopped = acked_interaction(
        media
            .call(Request::Submit(with_external("ext-42")))
            .await
            .unwrap(),
    );
    let live = acked_interaction(
        media
            .call(Request::Submit(with_external("ext-43")))
            .await
            .unwrap(),
    );
    assert_ack(media.call(stop_req(&stopped.id)).await);

    assert!(
        found(&media, find_req("external_id = 'ext-42'", false))
            .await
            .is_empty()
    );
    let hits = found(&media, find_req("external_id = 'ext-42'", true)).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].id, stopped.id);
    assert_eq!(hits[0].state.as_str(), "stopped");
    assert_eq!(hits[0].user_data.get_str("Subject"), Some("ext-42"));

    let hits = found(&media, find_req("external_id = 'ext-43'", true)).await;
    assert_eq!(
        hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        vec![live.id.as_str()]
    );
    assert_eq!(hits[0].state.as_str(), "queued");
    let hits = found(&media, find_req("external_id = 'ext-43'", false)).await;
    assert_eq!(
        hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        vec![live.id.as_str()]
    );

    let ix = get(&media, &stopped.id).await;
    assert_eq!(ix.state.as_str(), "stopped");
    assert!(ix.completed_at.is_some());
    assert_eq!(ix.external_id.as_deref(), Some("ext-42"));

    // Invalid conditions are refused in the history search too.
    let message = assert_server_error(
        media.call(find_req("external_id = ", true)).await,
        1017,
        "invalid_condition",
    );
    assert!(message.contains("position"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_others_interactions() {
    let app = spawn_app().await;
    let acme = app.client("acme-media").await;
    let acme_agent = app.client("acme-agent").await;
    let id = submit(&acme, "inbound", 9, json!({"Secret": "acme"})).await;
    let stopped = submit(&acme, "inbound", 0, json!({})).await;
    assert_ack(acme.call(stop_req(&stopped)).await);
    let drafted = submit(&acme, "escalations", 0, json!({})).await;
    assert_eq!(
        pulled(&acme_agent, pull_ids(&[&drafted])).await,
        vec![drafted.clone()]
    );
    assert_ack(
        acme_agent
            .call(Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id: drafted.clone(),
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await,
    );

    let globex = app.client("globex-media").await;
    let globex_agent = app.client("globex-agent").await;
    let globex_proxy = app.client("globex-proxy").await;
    for target in [&id, &stopped] {
        assert_server_error(globex.call(get_req(target)).await, 1010, "unknown_interaction");
        assert_server_error(globex.call(stop_req(target)).await, 1010, "unknown_interaction");
        assert_server_error(
            globex.call(change_req(target, json!({"x": "y"}))).await,
            1010,
            "unknown_interaction",
        );
        assert_server_error(
            globex_agent.call(pull_ids(&[target])).await,
            1010,
            "unknown_interaction",
        );
        assert_server_error(
            globex_proxy.call(stop_req(target)).await,
            1010,
            "unknown_interaction",
        );
        let cond = format!("id = '{target}'");
        assert!(found(&globex, find_req(&cond, false)).await.is_empty());
        assert!(found(&globex, find_req(&cond, true)).await.is_empty());
    }
    assert_eq!(
        pulled(&globex_agent, pull_view("all", 10)).await,
        Vec::<String>::new()
    );
    assert_server_error(
        globex_agent.call(pull_view("urgent", 10)).await,
        42,
        "unknown_view",
    );
    let (_, count) = take_snapshot(&globex_agent, snapshot_req(None, None)).await;
    assert_eq!(count, 0);
    assert_eq!(depth(&globex, "inbound").await, 0);

    // Over REST too.
    let rest = app.rest("globex-media");
    for target in [&id, &stopped] {
        let e = rest.get(target).await.unwrap_err();
        assert_eq!(e.code(), Some(1010), "{e}");
        let e = rest.stop(target, None).await.unwrap_err();
        assert_eq!(e.code(), Some(1010), "{e}");
        let e = rest.request(get_req(target)).await.unwrap_err();
        assert_eq!(e.code(), Some(1010), "{e}");
    }
    let response = app
        .http()
        .get(app.url(&format!("/v1/interactions/{id}")))
        .bearer_auth(api_key("globex-media"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Untouched in acme.
    let ix = get(&acme, &id).await;
    assert_eq!(ix.state.as_str(), "queued");
    assert_eq!(ix.user_data.get_str("Secret"), Some("acme"));
    assert_eq!(ix.user_data.len(), 1);
    assert_eq!(depth(&acme, "inbound").await, 1);
    assert_eq!(
        pulled(&acme_agent, pull_view("urgent", 10)).await,
        vec![id.clone()]
    );
}

// ---------------------------------------------------------------------------------------------
// REST

async fn json_of(response: reqwest::Response) -> (u16, Json) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("response body");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: {e}: {body:?}"));
    (status, json)
}

#[tokio::test]
async fn rest_stable_paths() {
    let app = spawn_app().await;
    let http = app.http();
    let key = api_key("acme-media");

    let (status, created) = json_of(
        http.post(app.url("/v1/interactions"))
            .bearer_auth(&key)
            .json(&json!({"queue": "inbound", "media_type": "email", "user_data": {"Subject": "hi", "n": 3}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["state"], "queued");
    assert_eq!(created["queue"], "inbound");
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["media_type"], "email");
    assert_eq!(created["user_data"], json!({"Subject": "hi", "n": 3}));

    let (status, read) = json_of(
        http.get(app.url(&format!("/v1/interactions/{id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    let (status, queues) = json_of(
        http.get(app.url("/v1/queues"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["inbound", "escalations"]);
    assert_eq!(depth_in(&queues, "inbound"), 1);
    assert_eq!(depth_in(&queues, "escalations"), 0);

    let (status, stopped) = json_of(
        http.post(app.url(&format!("/v1/interactions/{id}/stop")))
            .bearer_auth(&key)
            .json(&json!({"reason": {"code": 1, "description": "done"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["state"], "stopped");
    // Stop without a body, of something already stopped: a conflict.
    let (status, body) = json_of(
        http.post(app.url(&format!("/v1/interactions/{id}/stop")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status == 404 || status == 409, "{status}: {body}");
    let (status, read) = json_of(
        http.get(app.url(&format!("/v1/interactions/{id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read["state"], "stopped");
    assert_eq!(read["user_data"], json!({"Subject": "hi", "n": 3}));

    let (status, body) = json_of(
        http.get(app.url("/v1/interactions/no-such-id"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(1010)), "{body}");

    // The typed client agrees.
    let rest = app.rest("acme-media");
    let ix = rest
        .submit(&Submit {
            queue: Some("escalations".into()),
            ..submit_chat()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.get(&ix.id).await.unwrap().queue.as_deref(),
        Some("escalations")
    );
    let queues = rest.queues().await.unwrap();
    assert_eq!(
        queues
            .iter()
            .map(|q| (q.name.as_str(), q.depth))
            .collect::<Vec<_>>(),
        vec![("inbound", 0), ("escalations", 1)]
    );
    assert_eq!(rest.stop(&ix.id, None).await.unwrap().state.as_str(), "stopped");
    assert!(rest.ready().await);
}

#[tokio::test]
async fn rest_refuses_missing_or_bad_keys_and_unknown_fields() {
    let app = spawn_app().await;
    let http = app.http();

    let (status, body) = json_of(http.get(app.url("/v1/queues")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        (body["code"].as_u64(), body["name"].as_str()),
        (Some(1006), Some("authentication_failed"))
    );
    assert!(body["message"].as_str().unwrap().contains("Bearer"), "{body}");

    for bad in ["not-a-key-of-anybody-at-all", ""] {
        let (status, body) = json_of(
            http.post(app.url("/v1/interactions"))
                .bearer_auth(bad)
                .json(&json!({"queue": "inbound", "media_type": "chat"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], 1006);
        assert_eq!(body["name"], "authentication_failed");
    }
    let (status, _) = json_of(
        http.get(app.url("/v1/queues"))
            .header("Authorization", format!("Basic {}", api_key("acme-media")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    let key = api_key("acme-media");
    let (status, body) = json_of(
        http.post(app.url("/v1/interactions"))
            .bearer_auth(&key)
            .json(&json!({"queue": "inbound", "media_type": "chat", "bogus": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        (body["code"].as_u64(), body["name"].as_str()),
        (Some(1002), Some("invalid_field"))
    );
    assert!(body["message"].as_str().unwrap().contains("bogus"), "{body}");

    let (status, body) = json_of(
        http.post(app.url("/v1/interactions/whatever/stop"))
            .bearer_auth(&key)
            .json(&json!({"why": "no"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (400, Some("invalid_field")),
        "{body}"
    );

    // A reporting key may not submit.
    let (status, body) = json_of(
        http.post(app.url("/v1/interactions"))
            .bearer_auth(api_key("acme-reporting"))
            .json(&json!({"queue": "inbound", "media_type": "chat"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(1007)), "{body}");

    // Nothing was created by any of it.
    let queues = app.rest("acme-media").queues().await.unwrap();
    assert!(queues.iter().all(|q| q.depth == 0), "{queues:?}");
}

#[tokio::test]
async fn rest_requests_endpoint_takes_any_protocol_request() {
    let app = spawn_app().await;
    let http = app.http();
    let key = api_key("acme-media");
    let post = |body: Json| {
        http.post(app.url("/v1/requests"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };

    let (status, answer) = json_of(
        post(
            json!({"request": "RequestSubmit", "reference_id": 77, "queue": "inbound",
                    "media_type": "chat", "user_data": {"k": "v"}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["event"], "EventAck");
    assert_eq!(answer["reference_id"], 77);
    let id = answer["interaction_id"].as_str().unwrap().to_owned();

    let (status, answer) = json_of(post(json!({"request": "RequestGetQueues"})).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["event"], "EventQueues");
    assert_eq!(depth_in(&answer["queues"], "inbound"), 1);

    let (status, answer) = json_of(
        post(json!({"request": "RequestFindInteractions", "condition": "queue = 'inbound'"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["event"], "EventFoundInteractions");
    assert_eq!(answer["interactions"][0]["id"], id.as_str());

    let (status, answer) = json_of(post(json!({"request": "RequestPing"})).await.unwrap()).await;
    assert_eq!((status, answer["event"].as_str()), (200, Some("EventPing")));

    let (status, answer) = json_of(
        post(json!({"request": "RequestGetInteraction", "interaction_id": "no-such-id"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        (answer["event"].as_str(), answer["code"].as_u64()),
        (Some("EventError"), Some(1010))
    );

    let (status, answer) = json_of(post(json!({"request": "RequestPing", "bogus": 1})).await.unwrap()).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(1002)), "{answer}");
    let (status, answer) = json_of(post(json!({"request": "RequestNope"})).await.unwrap()).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(1001)), "{answer}");
    let (status, answer) = json_of(
        post(json!({"request": "RequestPull", "view": "urgent"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer["code"].as_u64()), (403, Some(1007)), "{answer}");

    // Snapshots taken over REST are read page by page over REST.
    let reporting = api_key("acme-reporting");
    let post_as = |key: String, body: Json| {
        http.post(app.url("/v1/requests"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let (status, taken) = json_of(
        post_as(
            reporting.clone(),
            json!({"request": "RequestTakeSnapshot", "queue": "inbound"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, taken["event"].as_str(), taken["count"].as_u64()),
        (200, Some("EventSnapshotTaken"), Some(1)),
        "{taken}"
    );
    let (status, page) = json_of(
        post_as(
            reporting.clone(),
            json!({"request": "RequestGetSnapshotInteractions", "snapshot_id": taken["snapshot_id"], "count": 10}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["interactions"][0]["id"], id.as_str(), "{page}");
    // Live events need a WebSocket.
    let (status, answer) = json_of(
        post_as(reporting, json!({"request": "RequestSubscribe"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer["code"].as_u64()), (409, Some(1015)), "{answer}");

    // Through the typed client.
    let rest = app.rest("acme-agent");
    let answer = rest.request(pull_view("urgent", 1)).await.unwrap();
    assert!(
        matches!(&answer, ServerMessage::EventPulledInteractions { interactions, .. } if interactions.is_empty()),
        "{answer:?}"
    );
    let answer = rest.request(pull_ids(&[&id])).await.unwrap();
    assert!(
        matches!(&answer, ServerMessage::EventPulledInteractions { interactions, .. }
            if interactions.len() == 1 && interactions[0].assigned_to.as_deref() == Some("acme-agent")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn health_and_openapi() {
    let app = spawn_app().await;
    let http = app.http();

    let (status, ready) = json_of(http.get(app.url("/health/ready")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"]["writable"], true);

    let (status, doc) = json_of(http.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for (method, path) in [
        ("post", "/v1/interactions"),
        ("get", "/v1/interactions/{id}"),
        ("post", "/v1/interactions/{id}/stop"),
        ("get", "/v1/queues"),
        ("post", "/v1/requests"),
        ("get", "/health/ready"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from openapi.json"
        );
    }
}

/// Metrics count from the start of the server, not from the first scrape: the recorder is
/// process-wide, so the request made before the first scrape must show in it.
#[tokio::test]
async fn metrics_count_requests_made_before_the_first_scrape() {
    let app = spawn_app().await;
    let http = app.http();
    let rest = app.rest("acme-media");
    rest.queues().await.unwrap();
    let scrape = || async {
        let response = http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let first = scrape().await;
    rest.queues().await.unwrap();
    let second = scrape().await;
    assert!(
        second.contains(r#"ixn_requests_total{request="RequestGetQueues"}"#),
        "metrics:\n{second}"
    );
    assert!(
        first.contains(r#"ixn_requests_total{request="RequestGetQueues"}"#),
        "the first scrape misses the request made before it:\n{first}"
    );
}

// ---------------------------------------------------------------------------------------------
// KPI counters

#[tokio::test]
async fn ping_returns_kpi_counters_when_collected() {
    let app = spawn_app_with(AppOptions {
        settings: "collect-request-counters = true\ncollect-error-counters = true".into(),
        ..AppOptions::default()
    })
    .await;
    let mut ws = app.raw_registered("acme-media").await;
    let answer = ws
        .call(json!({"request": "RequestGetInteraction", "interaction_id": "no-such-id"}))
        .await;
    assert_error_json(&answer, 1010, "unknown_interaction");
    ws.send_text("not json").await;
    assert_error_json(&ws.recv().await, 1000, "malformed_message");
    let answer = ws.call(json!({"request": "RequestPull", "view": "urgent"})).await;
    assert_error_json(&answer, 1007, "request_not_allowed");

    let answer = ws.call(json!({"request": "RequestPing"})).await;
    assert_eq!(answer["event"], "EventPing", "{answer}");
    assert_eq!(
        answer["counters"]["requests"],
        json!({"RequestRegisterClient": 1, "RequestGetInteraction": 1, "RequestPull": 1, "RequestPing": 1}),
        "{answer}"
    );
    assert_eq!(
        answer["counters"]["errors"],
        json!({"unknown_interaction": 1, "malformed_message": 1, "request_not_allowed": 1}),
        "{answer}"
    );
    assert!(answer["counters"].get("esp_errors").is_none(), "{answer}");
}

/// `errors` counts error answers sent, per error name: also those a session sends before a
/// request reaches dispatch (not registered, frame too large, binary frame).
#[tokio::test]
async fn kpi_error_counters_count_every_error_answer() {
    let app = spawn_app_with(AppOptions {
        server: "max-frame-size = 4096".into(),
        settings: "collect-error-counters = true".into(),
    })
    .await;
    let mut ws = app.raw().await;
    let answer = ws.call(json!({"request": "RequestGetQueues"})).await;
    assert_error_json(&answer, 1004, "not_registered");
    let answer = ws
        .register("acme-media", ClientKind::MediaServer, "wrong-key-wrong-key-wrong")
        .await;
    assert_error_json(&answer, 1006, "authentication_failed");
    let answer = ws
        .register("acme-media", ClientKind::MediaServer, &api_key("acme-media"))
        .await;
    assert_eq!(answer["event"], "EventRegistered");
    ws.send_text(json!({"request": "RequestPing", "reference_id": 1, "pad": "x".repeat(5_000)}).to_string())
        .await;
    assert_error_json(&ws.recv().await, 1003, "frame_too_large");
    ws.send_binary(b"{}".to_vec()).await;
    assert_error_json(&ws.recv().await, 1000, "malformed_message");

    let answer = ws.call(json!({"request": "RequestPing"})).await;
    assert_eq!(
        answer["counters"]["errors"],
        json!({"not_registered": 1, "authentication_failed": 1, "frame_too_large": 1, "malformed_message": 1}),
        "{answer}"
    );
}

#[tokio::test]
async fn kpi_counters_are_absent_by_default() {
    let app = spawn_app().await;
    let mut ws = app.raw_registered("acme-media").await;
    let answer = ws
        .call(json!({"request": "RequestGetInteraction", "interaction_id": "no-such-id"}))
        .await;
    assert_error_json(&answer, 1010, "unknown_interaction");
    let answer = ws.call(json!({"request": "RequestPing"})).await;
    assert_eq!(answer["event"], "EventPing", "{answer}");
    assert!(answer["time"].is_string(), "{answer}");
    let counters = &answer["counters"];
    assert!(counters.get("requests").is_none(), "{answer}");
    assert!(counters.get("errors").is_none(), "{answer}");
    assert!(counters.get("esp_errors").is_none(), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// Configuration at run time

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

#[tokio::test]
async fn apply_config_at_run_time() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let admin = app.client("acme-admin").await;
    let existing = submit(&media, "inbound", 3, json!({"Subject": "stays"})).await;
    let apply = |text: &str, dry_run: bool| {
        Request::ApplyConfig(ApplyConfig {
            config: text.to_owned(),
            dry_run,
        })
    };
    let queue_names = |media: Client| async move {
        match media
            .call(Request::GetQueues(ixn_protocol::GetQueues {}))
            .await
            .unwrap()
        {
            ServerMessage::EventQueues { queues, .. } => {
                queues.into_iter().map(|q| (q.name, q.depth)).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        }
    };

    // A valid configuration adding a queue.
    let added = format!(
        "{}\n[[queues]]\nname = \"callbacks\"\ntenant = \"acme\"\n",
        app.config_text
    );
    assert_ack(admin.call(apply(&added, false)).await);
    assert_eq!(
        queue_names(media.clone()).await,
        vec![
            ("inbound".to_owned(), 1),
            ("escalations".to_owned(), 0),
            ("callbacks".to_owned(), 0)
        ]
    );
    let ix = get(&media, &existing).await;
    assert_eq!(
        (ix.state.as_str(), ix.queue.as_deref()),
        ("queued", Some("inbound"))
    );
    assert_eq!(ix.user_data.get_str("Subject"), Some("stays"));
    submit(&media, "callbacks", 0, json!({})).await;
    assert_eq!(std::fs::read_to_string(&app.config_path).unwrap(), added);

    // A dry run validates and changes nothing.
    let dry = format!("{added}\n[[queues]]\nname = \"dry\"\ntenant = \"acme\"\n");
    assert_ack(admin.call(apply(&dry, true)).await);
    let names = queue_names(media.clone()).await;
    assert!(!names.iter().any(|(n, _)| n == "dry"), "{names:?}");

    // An invalid one: every problem at file:line:column, and nothing changes.
    let invalid = format!(
        "{added}\n[[queues]]\nname = \"broken\"\ntenant = \"nowhere\"\n\n[[views]]\nname = \"bad\"\ntenant = \"acme\"\nqueue = \"inbound\"\ncondition = \"priority >>= 1\"\n"
    );
    let message = assert_server_error(
        admin.call(apply(&invalid, false)).await,
        1021,
        "invalid_configuration",
    );
    let file = app.config_path.display().to_string();
    let mut lines_reported = BTreeSet::new();
    for line in message.lines() {
        let rest = line
            .strip_prefix(&format!("{file}:"))
            .unwrap_or_else(|| panic!("{line:?} does not start with {file}:"));
        let mut parts = rest.splitn(3, ':');
        let l: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("line in {line:?}"));
        let c: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("column in {line:?}"));
        assert!(l >= 1 && c >= 1, "{line}");
        assert!(
            parts.next().is_some_and(|m| m.starts_with(' ') && m.len() > 1),
            "{line}"
        );
        lines_reported.insert(l);
    }
    let tenant_line = line_of(&invalid, "tenant = \"nowhere\"");
    let condition_line = line_of(&invalid, "condition = \"priority >>= 1\"");
    assert_eq!(
        lines_reported,
        BTreeSet::from([tenant_line, condition_line]),
        "{message}"
    );
    let names = queue_names(media.clone()).await;
    assert!(!names.iter().any(|(n, _)| n == "broken"), "{names:?}");
    assert_eq!(names.len(), 3);
    assert_eq!(std::fs::read_to_string(&app.config_path).unwrap(), added);
    assert_eq!(get(&media, &existing).await.state.as_str(), "queued");

    // Only admins may apply.
    for application in ["acme-media", "acme-router", "acme-proxy"] {
        let client = app.client(application).await;
        assert_server_error(
            client.call(apply(&added, false)).await,
            1007,
            "request_not_allowed",
        );
    }
    let e = app
        .rest("acme-agent")
        .request(apply(&added, true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(1007), "{e}");
}

#[tokio::test]
async fn applied_settings_switch_kpi_counters_on() {
    let app = spawn_app().await;
    let admin = app.client("acme-admin").await;
    let text = app
        .config_text
        .replacen("[settings]\n", "[settings]\ncollect-request-counters = true\n", 1);
    assert_ack(
        admin
            .call(Request::ApplyConfig(ApplyConfig {
                config: text,
                dry_run: false,
            }))
            .await,
    );
    let answer = admin.call(Request::Ping(Ping {})).await.unwrap();
    let ServerMessage::EventPing { counters, .. } = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(counters.requests.unwrap().get("RequestPing"), Some(&1));
    assert_eq!(counters.errors, None);
}

// ---------------------------------------------------------------------------------------------
// Durability

#[tokio::test]
async fn interactions_survive_a_restart() {
    let mut app = spawn_app().await;
    let media = app.client("acme-media").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            submit(
                &media,
                "inbound",
                i % 3,
                json!({"n": i, "Subject": format!("hello {i}")}),
            )
            .await,
        );
    }
    let stopped = submit(&media, "escalations", 0, json!({"Subject": "gone"})).await;
    assert_ack(media.call(stop_req(&stopped)).await);
    // Changes after the submission are durable too: user data, a workbin, a lock, an agent.
    let agent = app.client("acme-agent").await;
    assert_ack(media.call(change_req(&ids[1], json!({"Note": "changed"}))).await);
    assert_eq!(pulled(&agent, pull_ids(&[&ids[2]])).await, vec![ids[2].clone()]);
    assert_ack(
        agent
            .call(Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id: ids[2].clone(),
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }))
            .await,
    );
    assert_eq!(pulled(&agent, pull_ids(&[&ids[3]])).await, vec![ids[3].clone()]);
    assert_ack(
        agent
            .call(Request::LockInteraction(LockInteraction {
                interaction_id: ids[4].clone(),
                reason: None,
            }))
            .await,
    );
    let before: Vec<InteractionView> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(get(&media, id).await);
        }
        v
    };

    // Restarting with a client still connected closes its connection.
    let mut raw = app.raw_registered("acme-reporting").await;
    app.restart().await;
    raw.expect_closed().await;
    assert_eq!(app.server().loaded_interactions(), 20);
    let rest = app.rest("acme-media");
    for (i, (id, was)) in ids.iter().zip(&before).enumerate() {
        let ix = rest.get(id).await.unwrap();
        assert_eq!(&ix, was, "interaction {i} changed across the restart");
        assert_eq!(ix.user_data.get_int("n"), Some(i as i64));
    }
    let gone = rest.get(&stopped).await.unwrap();
    assert_eq!(gone.state.as_str(), "stopped");
    assert_eq!(gone.user_data.get_str("Subject"), Some("gone"));

    assert_eq!(before[1].user_data.get_str("Note"), Some("changed"));
    assert_eq!(before[2].workbin.as_deref(), Some("drafts"));
    assert_eq!(before[3].assigned_to.as_deref(), Some("acme-agent"));
    assert!(before[4].is_locked);

    let media = app.client("acme-media").await;
    // 20 live: one in a workbin and one handled are not waiting in the queue.
    assert_eq!(depth(&media, "inbound").await, 18);
    assert_eq!(depth(&media, "escalations").await, 0);
    let agent = app.client("acme-agent").await;
    let content = agent
        .call(Request::GetWorkbinContent(GetWorkbinContent {
            workbin: WorkbinTarget {
                name: "drafts".into(),
                owner: None,
            },
        }))
        .await
        .unwrap();
    assert!(
        matches!(&content, ServerMessage::EventWorkbinContent { interactions, .. }
            if interactions.iter().map(|ix| ix.id.as_str()).eq([ids[2].as_str()])),
        "{content:?}"
    );
    // The lock still hides ids[4] from pulls.
    assert_server_error(agent.call(pull_ids(&[&ids[4]])).await, 1018, "interaction_locked");
    // New interactions continue the sequences.
    let new = acked_interaction(
        media
            .call(Request::Submit(Submit {
                queue: Some("inbound".into()),
                ..submit_chat()
            }))
            .await
            .unwrap(),
    );
    assert!(!ids.contains(&new.id) && new.id != stopped);
    let max_seq = before.iter().map(|ix| ix.submit_seq).max().unwrap();
    assert!(new.submit_seq > max_seq, "{} <= {max_seq}", new.submit_seq);
}

/// Shutting down closes every connection; a client whose connection closed is told so at once
/// (a connection error) rather than after its timeout.
#[tokio::test]
async fn shutdown_closes_connections_and_clients_notice() {
    let mut app = spawn_app().await;
    let media = app.client("acme-media").await;
    let mut raw = app.raw_registered("acme-media").await;
    app.stop().await;
    raw.expect_closed().await;
    let late = media.call(Request::Ping(Ping {})).await;
    assert!(matches!(late, Err(ClientError::Connection(_))), "{late:?}");
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn tls_serves_wss_and_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let opts = AppOptions {
        server: format!(
            "tls-cert = \"{}\"\ntls-key = \"{}\"",
            cert_path.display(),
            key_path.display()
        ),
        ..AppOptions::default()
    };
    let tls = TlsOptions {
        extra_ca_pem: Some(cert_pem.into_bytes()),
    };
    let app = spawn_app_in(dir, &opts, tls).await;
    assert!(app.base_url.starts_with("https://"), "{}", app.base_url);

    // wss:// with the certificate trusted.
    let media = app.client("acme-media").await;
    let id = submit(&media, "inbound", 0, json!({"Subject": "secure"})).await;
    assert_eq!(depth(&media, "inbound").await, 1);

    // https:// with the certificate trusted.
    let rest = app.rest("acme-media");
    assert!(rest.ready().await);
    assert_eq!(
        rest.get(&id).await.unwrap().user_data.get_str("Subject"),
        Some("secure")
    );

    // Not trusted without the CA.
    let untrusted =
        ixn_client::RestClient::new(&app.base_url, &api_key("acme-media"), &TlsOptions::default()).unwrap();
    assert!(untrusted.get(&id).await.is_err());

    // Plain HTTP and ws:// to the TLS port fail.
    let addr = app.server().local_addr();
    let plain = app.http().get(format!("http://{addr}/health/ready")).send().await;
    match plain {
        Err(_) => {}
        Ok(r) => panic!("plain HTTP to the TLS listener answered {}", r.status()),
    }
    let ws = Client::connect(
        &format!("http://{addr}"),
        Registration::new("acme-media", ClientKind::MediaServer, api_key("acme-media")),
        &TlsOptions::default(),
    )
    .await;
    assert!(ws.is_err(), "ws:// to the TLS listener connected");
}
