//! Strategies on a paused clock against an in-memory server: steps widening after their wait,
//! overflow, priority raised with age, rejected agents never offered again, scripts and their
//! sandbox, and the wait after pull errors. Time only moves when everything waits on a timer, so
//! "after 20 s" is exact and nothing sleeps for real.

mod support;

use ixn_config::{RouterConfig, Strategy};
use ixn_protocol::Request;
use ixn_router::{Router, ServerSpec};
use support::fake::{FakeServer, interaction, priorities, pulls, route_targets};

const QUEUES: &str = r#"
[[queues]]
name = "inbound"

[[queues]]
name = "escalations"

[[workbins]]
name = "parked"
type = "agent-group"
"#;

fn strategies(toml: &str) -> Vec<Strategy> {
    let text = format!("{QUEUES}\n{toml}");
    match ixn_config::parse(&text, "test.toml") {
        Ok(c) => c.process.strategies,
        Err(e) => panic!("{e}"),
    }
}

fn config(pull_after_error_s: u32) -> RouterConfig {
    RouterConfig {
        node: "node-1".into(),
        servers: Vec::new(),
        pull_batch: 10,
        pull_after_error_s,
        strategies: None,
    }
}

fn start(server: &FakeServer, toml: &str) -> Router {
    let spec = ServerSpec {
        connector: std::sync::Arc::new(server.clone()),
        tenant: "default".into(),
    };
    Router::start_with(vec![spec], &config(120), &strategies(toml)).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(start_paused = true)]
async fn steps_widen_after_their_wait() {
    let server = FakeServer::default();
    server.add_agent("b", &["sales"], 1, false);
    let router = start(
        &server,
        r#"
[[strategies]]
name = "s"
virtual-queue = "VQ_Sales"
[[strategies.steps]]
agents = ["a1"]
wait = 20
[[strategies.steps]]
groups = ["sales"]
policy = "most-free-capacity"
"#,
    );
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("routed to b", |s| s.outcome("ix-1").as_deref() == Some("agent:b"))
        .await;
    let targets = route_targets(&server.log(), "ix-1");
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert_eq!(targets[0].1.agents, vec!["a1".to_owned()]);
    assert_eq!(targets[1].1.groups, vec!["sales".to_owned()]);
    assert_eq!(
        targets[1].1.policy,
        ixn_protocol::SelectionPolicy::MostFreeCapacity
    );
    assert!(targets[1].0 - targets[0].0 >= std::time::Duration::from_secs(20));
    let log = server.log();
    let route = log
        .iter()
        .find(|(_, r)| matches!(r, Request::RouteInteraction(_)))
        .map(|(_, r)| r.clone());
    let route = route.unwrap_or_else(|| panic!("no route"));
    assert_eq!(support::fake::added(&route, "RVQID").as_deref(), Some("VQ_Sales"));
    assert_eq!(
        support::fake::added(&route, "RStrategyName").as_deref(),
        Some("s")
    );
    assert_eq!(
        support::fake::added(&route, "RTargetAgentSelected").as_deref(),
        Some("a1")
    );
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn agent_available_retries_at_once() {
    let server = FakeServer::default();
    server.add_agent("a", &[], 0, false);
    let router = start(&server, "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n");
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("a first attempt", |s| route_targets(&s.log(), "ix-1").len() == 1)
        .await;
    server.free_agent("a");
    server
        .wait_for("routed to a", |s| s.outcome("ix-1").as_deref() == Some("agent:a"))
        .await;
    assert_eq!(route_targets(&server.log(), "ix-1").len(), 2);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn overflow_and_priority_raise() {
    let server = FakeServer::default();
    let router = start(
        &server,
        r#"
[[strategies]]
name = "s"
priority-increment = 5
priority-interval = 10
priority-max = 12
overflow-queue = "escalations"
overflow-after = 35
[[strategies.steps]]
groups = ["nobody"]
"#,
    );
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("overflow", |s| {
            s.outcome("ix-1").as_deref() == Some("queue:escalations")
        })
        .await;
    assert_eq!(priorities(&server.log(), "ix-1"), vec![5, 10, 12]);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn exhausted_steps_take_the_final_action() {
    let server = FakeServer::default();
    let router = start(
        &server,
        r#"
[[strategies]]
name = "s"
on-exhausted = { action = "workbin", workbin = "parked", owner = "team" }
[[strategies.steps]]
groups = ["nobody"]
wait = 30
"#,
    );
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("parked", |s| {
            s.outcome("ix-1").as_deref() == Some("workbin:parked")
        })
        .await;
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_rejecting_agent_is_never_offered_again() {
    let server = FakeServer::default();
    server.add_agent("r", &[], 5, true);
    server.add_agent("g", &[], 1, false);
    let router = start(&server, "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n");
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("accepted by g", |s| {
            s.outcome("ix-1").as_deref() == Some("agent:g")
        })
        .await;
    let targets = route_targets(&server.log(), "ix-1");
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(targets[0].1.exclude.is_empty());
    assert_eq!(targets[1].1.exclude, vec!["r".to_owned()]);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pull_errors_wait_before_pulling_again() {
    let server = FakeServer::default();
    server.add_agent("a", &[], 1, false);
    server.fail_pulls("s", 107);
    let router = start(&server, "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n");
    server
        .wait_for("two pulls", |s| pulls(&s.log(), "s").len() >= 2)
        .await;
    let times = pulls(&server.log(), "s");
    assert!(
        times[1] - times[0] >= std::time::Duration::from_secs(120),
        "pulled again too early"
    );
    server.clear_errors();
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("routed after the wait", |s| {
            s.outcome("ix-1").as_deref() == Some("agent:a")
        })
        .await;
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn held_pulls_do_not_poll() {
    let server = FakeServer::default();
    let router = start(&server, "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n");
    server
        .wait_for("one pull", |s| pulls(&s.log(), "s").len() == 1)
        .await;
    // A minute of nothing: one held pull every 10 s (the fake's max-pull-wait), no more.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    let n = pulls(&server.log(), "s").len();
    assert!((6..=8).contains(&n), "{n} pulls in a minute");
    router.shutdown().await;
}

const SCRIPT: &str = r#"
[[strategies]]
name = "s"
max-operations = 10000
time-limit = 1000
script = '''
let check = esp("ChatServer", "Chat", "Check", #{ id: ix.id });
if check.alive != true {
    stop("chat session is gone");
} else if ix.user_data.vip == "yes" {
    set("Segment", "gold");
    set("Priority", 9);
    route(#{ agents: ["a1"], wait: 5 });
    route(#{ groups: ["sales"] });
} else {
    queue("escalations");
}
'''
"#;

#[tokio::test(start_paused = true)]
async fn scripts_decide_with_esp() {
    let server = FakeServer::default();
    server.add_agent("s1", &["sales"], 5, false);
    server.set_esp_result(serde_json::json!({ "alive": true }));
    let router = start(&server, SCRIPT);
    let mut vip = interaction("vip", "chat", 0);
    vip.user_data.set("vip", support::fake::value_str("yes"));
    server.submit("s", vip);
    server.submit("s", interaction("plain", "chat", 0));
    server
        .wait_for("both decided", |s| {
            s.outcome("vip").is_some() && s.outcome("plain").is_some()
        })
        .await;
    assert_eq!(server.outcome("vip").as_deref(), Some("agent:s1"));
    assert_eq!(server.outcome("plain").as_deref(), Some("queue:escalations"));
    let targets = route_targets(&server.log(), "vip");
    assert_eq!(targets.len(), 2, "a1 first, then sales after 5 s: {targets:?}");
    let change = server.log().into_iter().find_map(|(_, r)| match r {
        Request::ChangeProperties(c) if c.interaction_id == "vip" => Some(c),
        _ => None,
    });
    let change = change.unwrap_or_else(|| panic!("no change"));
    assert_eq!(change.added_properties.get_str("Segment"), Some("gold"));
    assert_eq!(change.added_properties.get_int("Priority"), Some(9));
    let esp_calls = server
        .log()
        .iter()
        .filter(|(_, r)| matches!(r, Request::ThirdServer(t) if t.app_type.as_deref() == Some("ChatServer")))
        .count();
    assert_eq!(esp_calls, 2);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn scripts_stop_dead_chats() {
    let server = FakeServer::default();
    server.add_agent("s1", &["sales"], 5, false);
    server.set_esp_result(serde_json::json!({ "alive": false }));
    let router = start(&server, SCRIPT);
    server.submit("s", interaction("gone", "chat", 0));
    server
        .wait_for("stopped", |s| s.outcome("gone").as_deref() == Some("stopped"))
        .await;
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_runaway_script_is_stopped_and_the_steps_apply() {
    let server = FakeServer::default();
    server.add_agent("any", &[], 5, false);
    let router = start(
        &server,
        r#"
[[strategies]]
name = "s"
max-operations = 5000
script = "loop { }"
[[strategies.steps]]
"#,
    );
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("routed by the steps", |s| {
            s.outcome("ix-1").as_deref() == Some("agent:any")
        })
        .await;
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn created_interactions_are_cleaned_up() {
    let server = FakeServer::default();
    server.add_agent("any", &[], 5, false);
    let router = start(
        &server,
        r#"
[[strategies]]
name = "s"
script = '''
let id = create("email", #{ Subject: "auto-reply" });
route(#{});
'''
"#,
    );
    server.submit("s", interaction("ix-1", "chat", 0));
    server
        .wait_for("created one stopped", |s| {
            s.outcome("created-1").as_deref() == Some("stopped")
        })
        .await;
    let submit = server.log().into_iter().find_map(|(_, r)| match r {
        Request::Submit(s) => Some(s),
        _ => None,
    });
    let submit = submit.unwrap_or_else(|| panic!("no submit"));
    assert_eq!(submit.queue, None, "lands in orchestration_system");
    let data = submit.user_data.unwrap_or_default();
    assert_eq!(data.get_str(ixn_router::NODE_KEY), Some("node-1"));
    assert_eq!(data.get_str("Subject"), Some("auto-reply"));
    server
        .wait_for("routed", |s| s.outcome("ix-1").as_deref() == Some("agent:any"))
        .await;
    router.shutdown().await;
}
