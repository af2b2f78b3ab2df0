//! In-process connections (the router of `ixn serve`): registered and authorized like a
//! WebSocket client, answered after the same commits (or, inside the server's fate, at once
//! while everything else still waits for them), notified the same way, and forgotten by the
//! server when dropped.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ixn_model::ClientKind;
use ixn_protocol::{
    Accept, InteractionView, InviteOutcome, Pull, RegisterClient, Request, RouteInteraction, RouteTarget,
    ServerMessage, StopProcessing,
};
use serde_json::json;
use support::*;
use tokio::sync::{mpsc, oneshot};

fn registration(application: &str, key: String) -> RegisterClient {
    RegisterClient {
        application: application.to_owned(),
        kind: kind_of(application),
        api_key: key,
        agent_id: None,
        notify_properties_changed: false,
        brief_acks: false,
        app_type: None,
        services: Vec::new(),
    }
}

/// `acme-router` connected in process.
async fn local_router(
    app: &TestApp,
) -> (
    ixn_server::LocalConnection,
    mpsc::UnboundedReceiver<ServerMessage>,
) {
    app.server()
        .local_connector()
        .connect(&registration("acme-router", api_key("acme-router")))
        .await
        .expect("router registers")
}

/// `acme-router` connected inside the server's fate (`connect_inside`).
async fn inside_router(
    app: &TestApp,
) -> (
    ixn_server::LocalConnection,
    mpsc::UnboundedReceiver<ServerMessage>,
) {
    app.server()
        .local_connector()
        .connect_inside(&registration("acme-router", api_key("acme-router")))
        .await
        .expect("router registers")
}

async fn answer(conn: &ixn_server::LocalConnection, request: Request) -> ServerMessage {
    let rx = conn.send(request).expect("connection open");
    tokio::time::timeout(DEADLINE, rx)
        .await
        .expect("answered in time")
        .expect("answered")
}

async fn next_local_event(
    events: &mut mpsc::UnboundedReceiver<ServerMessage>,
    want: fn(&ServerMessage) -> bool,
) -> ServerMessage {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(m)) if want(&m) => return m,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no matching event within {DEADLINE:?}"),
        }
    }
}

/// A held pull of strategy `main`.
fn pull_main() -> Request {
    Request::Pull(Pull::for_strategy("main", 5, Some(8000)))
}

/// The interactions a pull answered with, after waiting for its answer.
async fn pulled(answer: oneshot::Receiver<ServerMessage>, why: &str) -> Vec<InteractionView> {
    let m = tokio::time::timeout(DEADLINE, answer)
        .await
        .expect(why)
        .expect("answered");
    match m {
        ServerMessage::EventPulledInteractions { interactions, .. } => interactions,
        other => panic!("expected pulled interactions, got {other:?}"),
    }
}

/// Routes `id` to any agent of its strategy and checks the router's acknowledgement.
async fn route_to_any(router: &ixn_server::LocalConnection, id: &str) {
    let routed = answer(
        router,
        Request::RouteInteraction(RouteInteraction {
            interaction_id: id.to_owned(),
            target: RouteTarget::default(),
            added_properties: Default::default(),
        }),
    )
    .await;
    assert!(matches!(routed, ServerMessage::EventAck { .. }), "{routed:?}");
}

/// The agent's next event is the invite to `id`.
async fn expect_invite(agent: &ixn_client::Client, id: &str) {
    match next_event(agent).await {
        ServerMessage::EventInvite { interaction, .. } => assert_eq!(interaction.id, id),
        other => panic!("expected the invite, got {other:?}"),
    }
}

#[tokio::test]
async fn registration_is_checked_like_a_websocket_client() {
    let app = spawn_app().await;
    let local = app.server().local_connector();
    let wrong_key = local
        .connect(&registration("acme-router", "not-the-key".into()))
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(wrong_key.code.name(), "authentication_failed");
    let mut wrong_kind = registration("acme-router", api_key("acme-router"));
    wrong_kind.kind = ClientKind::MediaServer;
    assert!(
        local.connect(&wrong_kind).await.is_err(),
        "the kind must match the application"
    );

    // Authorized by kind like any client: a router may not accept an invite.
    let (router, _events) = local
        .connect(&registration("acme-router", api_key("acme-router")))
        .await
        .expect("router registers");
    let refused = answer(
        &router,
        Request::Accept(Accept {
            interaction_id: "0VIdotoG00000000".into(),
        }),
    )
    .await;
    let ServerMessage::EventError { error, .. } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(error.name, "request_not_allowed");
}

#[tokio::test]
async fn an_in_process_router_routes_and_hears_outcomes() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let ann = app.client_with(desktop("ann")).await;
    ann.call(login()).await.expect("login");

    let (router, mut events) = local_router(&app).await;
    assert!(router.client_id() > 0);
    // The held pull is answered when the submit (over WebSocket) is durable.
    let held = router.send(pull_main()).expect("pull sent");
    let id = submit(&media, "inbound", 9, json!({"Subject": "local"})).await;
    let interactions = pulled(held, "answered in time").await;
    assert_eq!(interactions.len(), 1);
    assert_eq!(interactions[0].id, id);
    assert_eq!(interactions[0].assigned_to.as_deref(), Some("acme-router"));

    route_to_any(&router, &id).await;
    expect_invite(&ann, &id).await;
    ann.call(Request::Accept(Accept {
        interaction_id: id.clone(),
    }))
    .await
    .expect("accept");
    let outcome = next_local_event(&mut events, |m| {
        matches!(m, ServerMessage::EventInviteOutcome { .. })
    })
    .await;
    assert!(
        matches!(
            outcome,
            ServerMessage::EventInviteOutcome {
                outcome: InviteOutcome::Accepted,
                ..
            }
        ),
        "{outcome:?}"
    );
    // The agent's stop frees capacity: routers hear it.
    ann.call(Request::StopProcessing(StopProcessing {
        interaction_id: id,
        reason: None,
    }))
    .await
    .expect("stop");
    next_local_event(&mut events, |m| {
        matches!(m, ServerMessage::EventAgentAvailable { .. })
    })
    .await;
}

#[tokio::test]
async fn dropping_an_in_process_router_returns_its_interactions() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let id = submit(&media, "inbound", 1, json!({})).await;
    let (router, _events) = local_router(&app).await;
    let pulled = answer(
        &router,
        Request::Pull(Pull {
            view: None,
            count: 1,
            interaction_ids: vec![id.clone()],
            strategy: None,
            max_wait_ms: None,
        }),
    )
    .await;
    assert!(
        matches!(pulled, ServerMessage::EventPulledInteractions { .. }),
        "{pulled:?}"
    );
    assert_eq!(depth(&media, "inbound").await, 0);
    // While the router is connected, its application is not gone.
    let gone = app.server().application_gone("acme", "acme-router");
    tokio::pin!(gone);
    assert!(
        tokio::time::timeout(ABSENT, &mut gone).await.is_err(),
        "told the router was gone while it was connected"
    );
    // Like a closed WebSocket: the server forgets the router and the interaction goes back,
    // by the time it says the application is gone.
    drop(router);
    tokio::time::timeout(DEADLINE, gone)
        .await
        .expect("told once the router is gone");
    assert_eq!(
        depth(&media, "inbound").await,
        1,
        "the interaction is back in its queue"
    );
}

/// Submits on another task (its answer waits for the commit).
fn submit_in_background(media: &Arc<ixn_client::Client>) -> tokio::task::JoinHandle<String> {
    let media = media.clone();
    tokio::spawn(async move { submit(&media, "inbound", 9, json!({"Subject": "early"})).await })
}

/// How long a message that must not come is waited for where no round trip can prove it absent
/// (an in-process connection has no ping).
const ABSENT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_router_inside_the_server_routes_before_the_commit_and_the_rest_waits_for_it() {
    let (app, gate) = spawn_app_gated().await;
    let media = Arc::new(app.client("acme-media").await);
    let ann = app.client_with(desktop("ann")).await;
    ann.call(login()).await.expect("login");
    let (inside, _inside_events) = inside_router(&app).await;

    // Commits are held: the router inside hears of the submit and routes it all the same.
    gate.close();
    let held = inside.send(pull_main()).expect("pull sent");
    let submitted = submit_in_background(&media);
    let interactions = pulled(held, "told while the commit is held").await;
    assert_eq!(interactions.len(), 1);
    let id = interactions[0].id.clone();
    route_to_any(&inside, &id).await;
    // Nothing outside the server has heard of it: not the submitter, not the agent (an invite
    // sent with the route's answer would be in the agent's stream before its ping's answer).
    assert_no_event(&ann).await;
    assert!(
        !submitted.is_finished(),
        "the submit was acknowledged before it was durable"
    );

    gate.open();
    assert_eq!(submitted.await.expect("submit task"), id);
    expect_invite(&ann, &id).await;

    // An ordinary in-process connection hears of work only once it is durable.
    let (plain, _plain_events) = local_router(&app).await;
    let mut held = plain.send(pull_main()).expect("pull sent");
    gate.close();
    let submitted = submit_in_background(&media);
    assert!(
        tokio::time::timeout(ABSENT, &mut held).await.is_err(),
        "an ordinary connection was told before the commit"
    );
    gate.open();
    let second = submitted.await.expect("submit task");
    let interactions = pulled(held, "told once durable").await;
    assert_eq!(interactions.len(), 1);
    assert_eq!(interactions[0].id, second);
}

#[tokio::test]
async fn what_a_router_inside_does_on_news_not_yet_durable_waits_for_that_news() {
    let (app, gate) = spawn_app_gated().await;
    let media = app.client("acme-media").await;
    let (inside, mut events) = inside_router(&app).await;
    let id = submit(&media, "inbound", 9, json!({"Subject": "waiting"})).await;
    let held = inside.send(pull_main()).expect("pull sent");
    assert_eq!(pulled(held, "answered in time").await.len(), 1);

    // Ann logs in while commits are held: the router hears she is available at once and
    // offers her the chat, but she must not be invited before her login is durable.
    gate.close();
    let ann = Arc::new(app.client_with(desktop("ann")).await);
    let logging_in = {
        let ann = ann.clone();
        tokio::spawn(async move { ann.call(login()).await })
    };
    next_local_event(&mut events, |m| {
        matches!(m, ServerMessage::EventAgentAvailable { .. })
    })
    .await;
    route_to_any(&inside, &id).await;
    assert_no_event(&ann).await;
    assert!(
        !logging_in.is_finished(),
        "the login was answered before it was durable"
    );

    gate.open();
    logging_in.await.expect("login task").expect("login");
    expect_invite(&ann, &id).await;
}
