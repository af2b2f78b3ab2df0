//! Agents, held strategy pulls and delivery over the real WebSocket protocol.

mod support;

use std::time::Duration;

use ixn_protocol::{
    Accept, GetAgents, InviteOutcome, Pull, Request, RouteInteraction, RouteTarget, ServerMessage,
};
use serde_json::json;
use support::*;

/// The next pushed event matching `want`, skipping others (bounded by DEADLINE).
async fn next_matching(client: &ixn_client::Client, want: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
    let until = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < until {
        if let Some(m) = client.next_event(Duration::from_millis(200)).await
            && want(&m)
        {
            return m;
        }
    }
    panic!("no matching event within {DEADLINE:?}");
}

#[tokio::test]
async fn held_pull_route_invite_accept() {
    let app = spawn_app().await;
    let media = app.client("acme-media").await;
    let router = app.client("acme-router").await;
    let ann = app.client_with(desktop("ann")).await;
    assert!(matches!(
        ann.call(login()).await.expect("login"),
        ServerMessage::EventAgentStatus { .. }
    ));

    // Nothing to route yet: the pull is held until work appears.
    let held = router
        .send(Request::Pull(Pull::for_strategy("main", 5, Some(8000))))
        .expect("send pull");
    let id = submit(&media, "inbound", 9, json!({"Subject": "help"})).await;
    let answer = tokio::time::timeout(DEADLINE, held)
        .await
        .expect("answered")
        .expect("reply");
    let ServerMessage::EventPulledInteractions { interactions, .. } = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(
        interactions.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&id)
    );

    // Route to the best agent: ann gets the invite, accepts, the router hears the outcome.
    let routed = router
        .call(Request::RouteInteraction(RouteInteraction {
            interaction_id: id.clone(),
            target: RouteTarget::default(),
            added_properties: serde_json::from_value(json!({"RVQID": "VQ1"})).expect("ud"),
        }))
        .await
        .expect("route");
    let ServerMessage::EventAck {
        interaction: Some(ix),
        ..
    } = routed
    else {
        panic!("{routed:?}")
    };
    assert_eq!(ix.assigned_to.as_deref(), Some("ann"));
    let invite = next_matching(&ann, |m| matches!(m, ServerMessage::EventInvite { .. })).await;
    let ServerMessage::EventInvite { interaction, .. } = invite else {
        unreachable!()
    };
    assert_eq!(interaction.id, id);
    ann.call(Request::Accept(Accept {
        interaction_id: id.clone(),
    }))
    .await
    .expect("accept");
    let outcome = next_matching(&router, |m| matches!(m, ServerMessage::EventInviteOutcome { .. })).await;
    assert!(matches!(
        outcome,
        ServerMessage::EventInviteOutcome {
            outcome: InviteOutcome::Accepted,
            ..
        }
    ));
    let agents = router
        .call(Request::GetAgents(GetAgents { agent_id: None }))
        .await
        .expect("agents");
    let ServerMessage::EventAgents { agents, .. } = agents else {
        panic!("{agents:?}")
    };
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].interactions, std::slice::from_ref(&id));
    assert_eq!(agents[0].media[0].load, 1);

    // A held pull with nothing to take is answered empty when its wait ends.
    let empty = router
        .call(Request::Pull(Pull::for_strategy("main", 1, Some(100))))
        .await
        .expect("pull");
    assert!(
        matches!(empty, ServerMessage::EventPulledInteractions { interactions, .. } if interactions.is_empty())
    );
    // Errors 107 for a strategy nobody serves.
    assert_server_error(
        router
            .call(Request::Pull(Pull::for_strategy("nope", 1, None)))
            .await,
        107,
        "strategy_does_not_exist",
    );
}

#[tokio::test]
async fn a_dropped_desktop_keeps_its_login_for_the_grace_period() {
    let app = spawn_app_with(AppOptions {
        settings: "agent-grace-period = 600".into(),
        ..Default::default()
    })
    .await;
    let router = app.client("acme-router").await;
    {
        let ann = app.client_with(desktop("ann")).await;
        ann.call(login()).await.expect("login");
    }
    // The connection is gone, the login stays (not connected).
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let m = router
            .call(Request::GetAgents(GetAgents { agent_id: None }))
            .await
            .expect("agents");
        let ServerMessage::EventAgents { agents, .. } = m else {
            panic!("{m:?}")
        };
        assert_eq!(agents.len(), 1, "still logged in");
        if !agents[0].connected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the disconnect was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new connection resumes it.
    let ann = app.client_with(desktop("ann")).await;
    let m = ann.call(login()).await.expect("login again");
    let ServerMessage::EventAgentStatus { agent, .. } = m else {
        panic!("{m:?}")
    };
    assert!(agent.connected);
}
