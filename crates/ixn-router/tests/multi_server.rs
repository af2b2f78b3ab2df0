//! One router, two real interaction servers (in process, port 0, their own SQLite stores), an
//! agent desktop logged in on each that accepts every invite and finishes the interaction.
//! Interactions submitted to both are routed and handled by the agent of the server they were
//! submitted to — a request sent to the wrong server would fail, since neither server knows the
//! other's interactions. Then one server stops, and the other keeps routing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ixn_client::{Client, Registration, TlsOptions};
use ixn_config::{RouterConfig, RouterServer};
use ixn_model::{ClientKind, InteractionState};
use ixn_protocol::{Accept, AgentLogin, GetInteraction, Request, ServerMessage, StopProcessing, Submit};
use ixn_router::Router;
use ixn_server::{RunningServer, ServerOptions};
use tokio::sync::mpsc;

/// Upper bound of every wait; reached only when something is broken.
const DEADLINE: Duration = Duration::from_secs(20);

fn key(app: &str) -> String {
    format!("{app}-api-key-0123456789")
}

fn config_text(node_id: u16) -> String {
    let mut text = format!(
        r#"[server]
listen = "127.0.0.1:0"
node-id = {node_id}

[settings]
max-pull-wait = 2

[[media-types]]
name = "chat"

[[queues]]
name = "inbound"

[[queues]]
name = "orchestration_system"

[[views]]
name = "inbound-all"
queue = "inbound"

[[submitters]]
name = "inbound-default"
view = "inbound-all"
strategy = "default"
"#
    );
    for (app, kind) in [
        ("media", ClientKind::MediaServer),
        ("desk", ClientKind::AgentDesktop),
        ("router", ClientKind::Router),
    ] {
        text.push_str(&format!(
            "\n[[applications]]\nname = \"{app}\"\nkind = \"{}\"\napi-key = \"{}\"\n",
            kind.as_str(),
            key(app)
        ));
    }
    text
}

struct TestServer {
    server: Option<RunningServer>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn spawn_server(node_id: u16) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ixn_config::parse(&config_text(node_id), "test.toml").unwrap_or_else(|e| panic!("{e}"));
    let store = ixn_store::sqlite::SqliteStore::open(&dir.path().join("ixn.db"))
        .await
        .expect("opening the SQLite store");
    let server = ixn_server::start(ServerOptions {
        config,
        store: Arc::new(store),
        config_path: None,
        extra_applications: Vec::new(),
    })
    .await
    .expect("starting the server");
    TestServer {
        url: server.base_url(),
        server: Some(server),
        _dir: dir,
    }
}

async fn client(url: &str, app: &str, kind: ClientKind, agent: Option<&str>) -> Client {
    let mut reg = Registration::new(app, kind, key(app));
    reg.agent_id = agent.map(str::to_owned);
    let mut c = Client::connect(url, reg, &TlsOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting {app} to {url}: {e}"));
    c.set_timeout(DEADLINE);
    c
}

/// Logs an agent in for chat; every invite is accepted, then finished (stopped). Reports
/// `(agent, interaction id)` for each one handled.
async fn run_agent(url: &str, agent: &'static str, done: mpsc::UnboundedSender<(&'static str, String)>) {
    let desk = client(url, "desk", ClientKind::AgentDesktop, Some(agent)).await;
    let login = Request::AgentLogin(AgentLogin::ready_for(["chat"]));
    desk.call(login)
        .await
        .unwrap_or_else(|e| panic!("login {agent}: {e}"));
    tokio::spawn(async move {
        while let Some(event) = desk.next_event(Duration::from_secs(600)).await {
            let ServerMessage::EventInvite { interaction, .. } = event else {
                continue;
            };
            let id = interaction.id.clone();
            let accept = Request::Accept(Accept {
                interaction_id: id.clone(),
            });
            if desk.call(accept).await.is_err() {
                continue;
            }
            let stop = Request::StopProcessing(StopProcessing {
                interaction_id: id.clone(),
                reason: None,
            });
            if desk.call(stop).await.is_ok() && done.send((agent, id)).is_err() {
                return;
            }
        }
    });
}

async fn submit(media: &Client, n: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for _ in 0..n {
        match media
            .call(Request::Submit(Submit::to_queue("inbound", "chat")))
            .await
        {
            Ok(ServerMessage::EventAck {
                interaction_id: Some(id),
                ..
            }) => {
                ids.insert(id);
            }
            other => panic!("submit: {other:?}"),
        }
    }
    ids
}

/// Waits until `want` interactions were handled; returns them by agent.
async fn handled(
    done: &mut mpsc::UnboundedReceiver<(&'static str, String)>,
    want: usize,
) -> Vec<(&'static str, String)> {
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout(DEADLINE, done.recv()).await {
            Ok(Some(item)) => got.push(item),
            _ => panic!("only {} of {want} interactions handled: {got:?}", got.len()),
        }
    }
    got
}

fn of_agent(items: &[(&'static str, String)], agent: &str) -> BTreeSet<String> {
    items
        .iter()
        .filter(|(a, _)| *a == agent)
        .map(|(_, id)| id.clone())
        .collect()
}

fn router_server(url: &str) -> RouterServer {
    RouterServer {
        url: url.to_owned(),
        application: "router".into(),
        api_key: key("router"),
        tls_ca_file: None,
        tenant: "default".into(),
    }
}

/// The state of an interaction as the server has it now.
async fn state_of(client: &Client, id: &str) -> InteractionState {
    let get = Request::GetInteraction(GetInteraction {
        interaction_id: id.to_owned(),
    });
    match client.call(get).await {
        Ok(ServerMessage::EventInteractionProperties { interaction, .. }) => interaction.state,
        other => panic!("get {id}: {other:?}"),
    }
}

/// Polls (every 20 ms, up to `within`) until `id` is in `want`; false if it never got there.
async fn reaches(client: &Client, id: &str, want: InteractionState, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if state_of(client, id).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A router that stops has closed its connections when `shutdown` returns, so the server takes
/// back at once what it held (here a chat with no agent to go to, waiting in `routing`) instead
/// of after its routing timeout (12 hours by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_router_gives_back_at_once_what_it_held() {
    let mut a = spawn_server(1).await;
    let strategies = ixn_config::parse(&config_text(1), "test.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .process
        .strategies;
    let router = Router::start(&RouterConfig::single(router_server(&a.url)), &strategies)
        .unwrap_or_else(|e| panic!("{e}"));
    let media = client(&a.url, "media", ClientKind::MediaServer, None).await;
    let id = submit(&media, 1).await.pop_first().expect("one submitted");
    assert!(
        reaches(&media, &id, InteractionState::Routing, DEADLINE).await,
        "the router never took {id}"
    );

    router.shutdown().await;
    assert!(
        reaches(&media, &id, InteractionState::Queued, Duration::from_secs(5)).await,
        "{id} stayed with the stopped router"
    );
    if let Some(s) = a.server.take() {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_router_two_servers() {
    let mut a = spawn_server(1).await;
    let mut b = spawn_server(2).await;
    let mut router_config = RouterConfig::single(router_server(&a.url));
    router_config.servers.push(router_server(&b.url));
    let strategies = ixn_config::parse(&config_text(1), "test.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .process
        .strategies;
    let router = Router::start(&router_config, &strategies).unwrap_or_else(|e| panic!("{e}"));

    let (done_tx, mut done) = mpsc::unbounded_channel();
    run_agent(&a.url, "agent-a", done_tx.clone()).await;
    run_agent(&b.url, "agent-b", done_tx).await;
    let media_a = client(&a.url, "media", ClientKind::MediaServer, None).await;
    let media_b = client(&b.url, "media", ClientKind::MediaServer, None).await;

    let on_a = submit(&media_a, 4).await;
    let on_b = submit(&media_b, 4).await;
    let first = handled(&mut done, 8).await;
    assert_eq!(
        of_agent(&first, "agent-a"),
        on_a,
        "server A's interactions go to A's agent"
    );
    assert_eq!(
        of_agent(&first, "agent-b"),
        on_b,
        "server B's interactions go to B's agent"
    );

    // Server B goes away mid-run; A keeps routing.
    if let Some(s) = b.server.take() {
        s.shutdown().await;
    }
    let more_on_a = submit(&media_a, 4).await;
    let second = handled(&mut done, 4).await;
    assert_eq!(of_agent(&second, "agent-a"), more_on_a);

    router.shutdown().await;
    if let Some(s) = a.server.take() {
        s.shutdown().await;
    }
}
