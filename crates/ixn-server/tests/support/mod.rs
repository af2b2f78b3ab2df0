//! Test support: [`spawn_app`] starts the real server on port 0 with a fresh SQLite file in a
//! temporary directory and a two-tenant configuration (`acme`, `globex`), and hands out clients
//! that speak the real protocol: [`ixn_client::Client`] and [`RestClient`] as applications use
//! them, and [`RawWs`] for frames the Rust client would never send.
//!
//! Nothing here sleeps: every wait has [`DEADLINE`] as its upper bound and returns as soon as the
//! awaited thing happens.

#![allow(dead_code)] // each test uses only some of the helpers

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ixn_client::{Client, ClientError, Registration, RestClient, TlsOptions};
use ixn_config::ClientKind;
use ixn_model::{CustomProperty, Interaction, InteractionId, Timestamp};
use ixn_protocol::{AgentLogin, GetQueues, Ping, Request, ServerMessage, Submit};
use ixn_server::{RunningServer, ServerOptions};
use ixn_store::{OutboxEvent, Store, StoreError, StoreQuery, StoreStats, WriteBatch};
use serde_json::{Value as Json, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;

/// Upper bound on every wait; reached only when something is broken.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Application name suffixes and their kinds; every tenant gets one application of each kind,
/// named `<tenant>-<suffix>` (e.g. `acme-media`).
pub const KINDS: [(&str, ClientKind); 7] = [
    ("media", ClientKind::MediaServer),
    ("agent", ClientKind::AgentDesktop),
    ("router", ClientKind::Router),
    ("reporting", ClientKind::Reporting),
    ("esp", ClientKind::EspServer),
    ("proxy", ClientKind::Proxy),
    ("admin", ClientKind::Admin),
];

pub const TENANTS: [&str; 2] = ["acme", "globex"];

/// The configured API key of an application (well over the 16-character minimum).
pub fn api_key(application: &str) -> String {
    format!("{application}-api-key-0123456789")
}

/// The kind of a configured application, from its name.
pub fn kind_of(application: &str) -> ClientKind {
    KINDS
        .iter()
        .find(|(suffix, _)| application.ends_with(&format!("-{suffix}")))
        .map(|(_, kind)| *kind)
        .unwrap_or_else(|| panic!("{application} is not a configured application"))
}

/// Extra text for the `[server]` and `[settings]` tables of one test's configuration.
#[derive(Debug, Default, Clone)]
pub struct AppOptions {
    pub server: String,
    pub settings: String,
}

/// The business process every test starts with. Line numbers of what follows it are computed by
/// the tests that need them, so it may grow.
pub fn process_toml() -> String {
    let mut text = String::from(
        r#"[[tenants]]
name = "acme"

[[tenants]]
name = "globex"

[[media-types]]
name = "chat"

[[media-types]]
name = "email"

[[queues]]
name = "inbound"
tenant = "acme"

[[queues]]
name = "escalations"
tenant = "acme"

[[queues]]
name = "inbound"
tenant = "globex"

[[views]]
name = "urgent"
tenant = "acme"
queue = "inbound"
condition = "priority >= 5"
order = "priority desc, submitted_at asc"

[[views]]
name = "all"
tenant = "globex"
queue = "inbound"

[[workbins]]
name = "drafts"
tenant = "acme"
type = "agent"

[[workbins]]
name = "drafts"
tenant = "globex"
type = "agent"

[[submitters]]
name = "urgent-main"
tenant = "acme"
view = "urgent"
strategy = "main"
"#,
    );
    for tenant in TENANTS {
        for (suffix, kind) in KINDS {
            let name = format!("{tenant}-{suffix}");
            text.push_str(&format!(
                "\n[[applications]]\nname = \"{name}\"\nkind = \"{}\"\ntenant = \"{tenant}\"\napi-key = \"{}\"\n",
                kind.as_str(),
                api_key(&name)
            ));
        }
    }
    text
}

/// The whole configuration file of a test.
pub fn config_text(opts: &AppOptions) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}\n\n[settings]\n{}\n\n{}",
        opts.server,
        opts.settings,
        process_toml()
    )
}

/// A running server with its own temporary directory (SQLite file and configuration file).
#[derive(Debug)]
pub struct TestApp {
    server: Option<RunningServer>,
    pub base_url: String,
    pub db_path: PathBuf,
    pub config_path: PathBuf,
    pub config_text: String,
    /// Trusted CA for `https`/`wss` when the server runs TLS.
    pub tls: TlsOptions,
    /// Kept last so the directory outlives the server.
    pub dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    spawn_app_in(
        tempfile::tempdir().expect("temp dir"),
        &opts,
        TlsOptions::default(),
    )
    .await
}

/// Starts a server in `dir` (which may already hold TLS files named by `opts.server`).
pub async fn spawn_app_in(dir: TempDir, opts: &AppOptions, tls: TlsOptions) -> TestApp {
    // reqwest is built without a default crypto provider; the tests' plain clients need one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config_text = config_text(opts);
    let config_path = dir.path().join("ixn.toml");
    std::fs::write(&config_path, &config_text).expect("writing the configuration file");
    let db_path = dir.path().join("ixn.db");
    let server = start_server(&db_path, &config_path, &config_text, None).await;
    TestApp {
        base_url: server.base_url(),
        server: Some(server),
        db_path,
        config_path,
        config_text,
        tls,
        dir,
    }
}

/// A server started by [`spawn_app_gated`] whose commits wait while the gate is closed.
pub async fn spawn_app_gated() -> (TestApp, CommitGate) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let config_text = config_text(&AppOptions::default());
    let config_path = dir.path().join("ixn.toml");
    std::fs::write(&config_path, &config_text).expect("writing the configuration file");
    let db_path = dir.path().join("ixn.db");
    let gate = CommitGate(Arc::new(tokio::sync::watch::Sender::new(true)));
    let server = start_server(&db_path, &config_path, &config_text, Some(&gate)).await;
    let app = TestApp {
        base_url: server.base_url(),
        server: Some(server),
        db_path,
        config_path,
        config_text,
        tls: TlsOptions::default(),
        dir,
    };
    (app, gate)
}

/// Holds the server's commits while closed (opened at start), so that what the core applied
/// but has not made durable can be observed. A restarted server has no gate.
#[derive(Debug, Clone)]
pub struct CommitGate(Arc<tokio::sync::watch::Sender<bool>>);

impl CommitGate {
    pub fn close(&self) {
        self.0.send_replace(false);
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

/// The SQLite store behind a [`CommitGate`].
#[derive(Debug)]
struct GatedStore {
    inner: ixn_store::sqlite::SqliteStore,
    gate: CommitGate,
}

#[async_trait::async_trait]
impl Store for GatedStore {
    fn engine(&self) -> &'static str {
        self.inner.engine()
    }
    async fn ensure_custom_properties(&self, props: &[CustomProperty]) -> Result<(), StoreError> {
        self.inner.ensure_custom_properties(props).await
    }
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut open = self.gate.0.subscribe();
        let _ = open.wait_for(|open| *open).await;
        self.inner.commit(batch).await
    }
    async fn checkpoint(&self) -> Result<(), StoreError> {
        self.inner.checkpoint().await
    }
    async fn load_live(&self, sink: &mut (dyn FnMut(Interaction) + Send)) -> Result<u64, StoreError> {
        self.inner.load_live(sink).await
    }
    async fn get(&self, tenant: &str, id: &InteractionId) -> Result<Option<Interaction>, StoreError> {
        self.inner.get(tenant, id).await
    }
    async fn id_exists(&self, id: &InteractionId) -> Result<bool, StoreError> {
        self.inner.id_exists(id).await
    }
    async fn find(&self, query: &StoreQuery) -> Result<Vec<Interaction>, StoreError> {
        self.inner.find(query).await
    }
    async fn purge_stopped(&self, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        self.inner.purge_stopped(before, limit).await
    }
    async fn outbox_read(&self, after: u64, limit: u64) -> Result<Vec<OutboxEvent>, StoreError> {
        self.inner.outbox_read(after, limit).await
    }
    async fn outbox_delete_upto(&self, upto: u64) -> Result<u64, StoreError> {
        self.inner.outbox_delete_upto(upto).await
    }
    async fn last_event_seq(&self) -> Result<u64, StoreError> {
        self.inner.last_event_seq().await
    }
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.meta_get(key).await
    }
    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.meta_set(key, value).await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }
}

async fn start_server(
    db_path: &std::path::Path,
    config_path: &std::path::Path,
    text: &str,
    gate: Option<&CommitGate>,
) -> RunningServer {
    let config = ixn_config::parse(text, "test.toml").unwrap_or_else(|e| panic!("test configuration:\n{e}"));
    let store = ixn_store::sqlite::SqliteStore::open(db_path)
        .await
        .expect("opening the SQLite store");
    let store: Arc<dyn Store> = match gate {
        Some(gate) => Arc::new(GatedStore {
            inner: store,
            gate: gate.clone(),
        }),
        None => Arc::new(store),
    };
    ixn_server::start(ServerOptions {
        config,
        store,
        config_path: Some(config_path.to_path_buf()),
        extra_applications: Vec::new(),
    })
    .await
    .expect("starting the server")
}

impl TestApp {
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    /// Shuts the server down cleanly and starts a new one on the same store and configuration.
    pub async fn restart(&mut self) {
        self.stop().await;
        let text = std::fs::read_to_string(&self.config_path).expect("reading the configuration file");
        let server = start_server(&self.db_path, &self.config_path, &text, None).await;
        self.base_url = server.base_url();
        self.server = Some(server);
    }

    /// Shuts the server down cleanly (it stays down until [`TestApp::restart`]).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub fn registration(application: &str) -> Registration {
        Registration::new(application, kind_of(application), api_key(application))
    }

    /// A registered WebSocket client of a configured application.
    pub async fn client(&self, application: &str) -> Client {
        self.client_with(Self::registration(application)).await
    }

    pub async fn client_with(&self, reg: Registration) -> Client {
        let name = reg.application.clone();
        let mut client = Client::connect(&self.base_url, reg, &self.tls)
            .await
            .unwrap_or_else(|e| panic!("connecting {name}: {e}"));
        client.set_timeout(DEADLINE);
        client
    }

    /// A REST client holding a configured application's key.
    pub fn rest(&self, application: &str) -> RestClient {
        RestClient::new(&self.base_url, &api_key(application), &self.tls).expect("REST client")
    }

    /// A plain HTTP client for requests the REST client does not make (headers, raw bodies).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().build().expect("HTTP client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// An unregistered raw WebSocket connection.
    pub async fn raw(&self) -> RawWs {
        RawWs::connect(&self.base_url).await
    }

    /// A raw WebSocket connection registered as a configured application.
    pub async fn raw_registered(&self, application: &str) -> RawWs {
        let mut ws = self.raw().await;
        let answer = ws
            .register(application, kind_of(application), &api_key(application))
            .await;
        assert_eq!(answer["event"], "EventRegistered", "{answer}");
        ws
    }
}

/// A WebSocket connection driven frame by frame, for input the Rust client never produces.
#[derive(Debug)]
pub struct RawWs {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_ref: u64,
}

impl RawWs {
    pub async fn connect(base_url: &str) -> RawWs {
        let url = format!("{}/v1/ws", base_url.replacen("http", "ws", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connecting {url}: {e}"));
        RawWs {
            ws,
            next_ref: 1_000_000,
        }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("sending a text frame");
    }

    /// Queues a frame without flushing (for pipelining); [`RawWs::flush`] sends them.
    pub async fn feed_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .expect("queueing a text frame");
    }

    pub async fn flush(&mut self) {
        self.ws.flush().await.expect("flushing frames");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("sending a binary frame");
    }

    /// The next message from the server, as JSON. Panics when the connection closes or nothing
    /// arrives before the deadline.
    pub async fn recv(&mut self) -> Json {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no message from the server before the deadline");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).expect("server sent invalid JSON");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                other => panic!("connection ended instead of a message: {other:?}"),
            }
        }
    }

    /// Waits for the server to close the connection; panics if a message arrives instead.
    pub async fn expect_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the connection is still open at the deadline");
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => panic!("expected the connection to close, got {t}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// A fresh reference id (far from the small ids tests write by hand).
    pub fn next_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    /// Sends a request (the `request` name and fields in `body`) with a fresh reference id and
    /// returns the answer carrying that id. Asserts that nothing else arrived first.
    pub async fn call(&mut self, mut body: Json) -> Json {
        let rid = self.next_ref();
        body["reference_id"] = json!(rid);
        self.send_text(body.to_string()).await;
        let answer = self.recv().await;
        assert_eq!(answer["reference_id"], json!(rid), "answer to {body}: {answer}");
        answer
    }

    pub async fn register(&mut self, application: &str, kind: ClientKind, key: &str) -> Json {
        self.call(json!({
            "request": "RequestRegisterClient",
            "application": application,
            "kind": kind.as_str(),
            "api_key": key,
        }))
        .await
    }

    /// Depth of a queue of the connection's tenant, read with RequestGetQueues.
    pub async fn depth(&mut self, queue: &str) -> u64 {
        let answer = self.call(json!({"request": "RequestGetQueues"})).await;
        depth_in(&answer["queues"], queue)
    }
}

/// Depth of `queue` in a JSON list of queues (`[{"name", "depth", …}]`).
pub fn depth_in(queues: &Json, queue: &str) -> u64 {
    queues
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == queue))
        .and_then(|q| q["depth"].as_u64())
        .unwrap_or_else(|| panic!("queue {queue} missing from {queues}"))
}

/// Asserts an error answer (as JSON) has `code` and `name`; returns its message.
pub fn assert_error_json(answer: &Json, code: u32, name: &str) -> String {
    assert_eq!(answer["event"], "EventError", "expected {name}, got {answer}");
    assert_eq!(answer["code"], json!(code), "{answer}");
    assert_eq!(answer["name"], name, "{answer}");
    answer["message"].as_str().expect("error message").to_owned()
}

/// Asserts a client call failed with `code`/`name`; returns the message.
pub fn assert_server_error(result: Result<ServerMessage, ClientError>, code: u32, name: &str) -> String {
    match result {
        Err(ClientError::Server(e)) => {
            assert_eq!((e.code, e.name.as_str()), (code, name), "{}", e.message);
            e.message
        }
        other => panic!("expected error {name} ({code}), got {other:?}"),
    }
}

/// Submits an interaction to `queue` and returns its id.
pub async fn submit(client: &Client, queue: &str, priority: i64, user_data: Json) -> String {
    let request = Request::Submit(Submit {
        queue: Some(queue.to_owned()),
        priority: Some(priority),
        user_data: Some(serde_json::from_value(user_data).expect("user data")),
        ..submit_chat()
    });
    match client.call(request).await.expect("submit") {
        ServerMessage::EventAck {
            interaction_id: Some(id),
            ..
        } => id,
        other => panic!("submit answered {other:?}"),
    }
}

/// A chat submission with every optional field unset.
pub fn submit_chat() -> Submit {
    Submit::new("chat")
}

/// Depth of a queue of the client's tenant.
pub async fn depth(client: &Client, queue: &str) -> u64 {
    match client
        .call(Request::GetQueues(GetQueues {}))
        .await
        .expect("get queues")
    {
        ServerMessage::EventQueues { queues, .. } => queues
            .iter()
            .find(|q| q.name == queue)
            .map(|q| q.depth)
            .unwrap_or_else(|| panic!("queue {queue} missing from {queues:?}")),
        other => panic!("get queues answered {other:?}"),
    }
}

/// The next pushed event, or a panic at the deadline.
pub async fn next_event(client: &Client) -> ServerMessage {
    client
        .next_event(DEADLINE)
        .await
        .expect("no event before the deadline")
}

/// Asserts nothing was pushed to `client`: a ping round trip first makes sure everything the
/// server sent before the ping's answer has been read, then the event queue must be empty.
pub async fn assert_no_event(client: &Client) {
    client.call(Request::Ping(Ping {})).await.expect("ping");
    if let Some(e) = client.next_event(Duration::ZERO).await {
        panic!("unexpected event {e:?}");
    }
}

/// Agent `agent` on the `acme-agent` desktop application.
pub fn desktop(agent: &str) -> Registration {
    let mut reg = Registration::new("acme-agent", ClientKind::AgentDesktop, api_key("acme-agent"));
    reg.agent_id = Some(agent.to_owned());
    reg
}

/// Logs the desktop's agent in, ready for chat.
pub fn login() -> Request {
    Request::AgentLogin(AgentLogin::ready_for(["chat"]))
}
