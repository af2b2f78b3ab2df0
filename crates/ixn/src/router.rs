//! `ixn router --config FILE`, and the router `ixn serve` runs in process with the built-in
//! `default` strategy (any ready agent with free capacity, longest idle first).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ixn_config::{Application, RouterConfig, Strategy};
use ixn_model::ClientKind;
use ixn_protocol::{RegisterClient, Request, ServerMessage};
use ixn_router::{BoxFuture, Compiled, Connected, Connector, Link, LinkClosed, Router, ServerSpec};
use ixn_server::{LocalConnection, LocalConnector};
use tokio::sync::oneshot;

#[derive(Debug, Args)]
pub struct RouterArgs {
    /// Configuration file with a [router] table and the strategies (see docs/routing.md).
    #[arg(long, short)]
    pub config: PathBuf,
}

/// Application name of the router `ixn serve` runs in process.
const SERVE_ROUTER_APP: &str = "ixn-serve-router";

pub async fn router(args: RouterArgs) -> anyhow::Result<ExitCode> {
    let config = ixn_config::load_file(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(router_config) = &config.router else {
        anyhow::bail!(
            "{}: no [router] table (it names the servers to pull from; see docs/routing.md)",
            args.config.display()
        );
    };
    let router = Router::start(router_config, &config.process.strategies).context("starting the router")?;
    println!(
        "ixn router {} pulling from {} server(s)",
        router_config.node,
        router_config.servers.len()
    );
    ixn_server::wait_for_signal().await;
    tracing::info!("shutting down");
    router.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The application and key of a router running in the server's process for `tenant` (a fresh
/// key each start).
pub fn in_process_router_application(name: &str, tenant: &str) -> (Application, String) {
    let bytes: [u8; 32] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let app = Application::new(name, ClientKind::Router, tenant, &key);
    (app, key)
}

/// The application and key of the in-process router of `ixn serve`.
pub fn serve_router_application() -> (Application, String) {
    in_process_router_application(SERVE_ROUTER_APP, "default")
}

/// The strategies a router inside the server's process runs, compiled (its default pull
/// settings select every enabled one).
pub fn compile_in_process(strategies: &[Strategy]) -> Result<Compiled, ixn_router::RouterError> {
    Compiled::new(&RouterConfig::with_defaults(Vec::new()), strategies)
}

/// Starts a router inside the server's process, one connection per application (of
/// [`in_process_router_application`]) given, with strategies from [`compile_in_process`]. It
/// registers like any router (application and key), but talks to the server in process: the
/// same requests and answers, without JSON and loopback TCP in between. It shares the server's
/// fate, so it is told of new work before the work is durable (`LocalConnector::connect_inside`)
/// and routes it while it is being committed.
pub fn start_in_process_router(
    strategies: Compiled,
    server: LocalConnector,
    apps: &[(Application, String)],
) -> Router {
    // Default pull settings and node name; the connections are the specs below.
    let router_config = RouterConfig::with_defaults(Vec::new());
    let specs = apps
        .iter()
        .map(|(app, key)| ServerSpec {
            connector: Arc::new(InProcess {
                server: server.clone(),
                application: app.name.clone(),
                api_key: key.clone(),
            }),
            tenant: app.tenant.clone(),
        })
        .collect();
    Router::start_compiled(specs, &router_config, strategies)
}

/// The in-process router's connection to the server it runs in.
#[derive(Debug)]
struct InProcess {
    server: LocalConnector,
    application: String,
    api_key: String,
}

impl Connector for InProcess {
    fn describe(&self) -> String {
        "this server (in process)".to_owned()
    }

    fn connect(&self) -> BoxFuture<Result<Connected, String>> {
        let server = self.server.clone();
        let reg = RegisterClient {
            application: self.application.clone(),
            kind: ClientKind::Router,
            api_key: self.api_key.clone(),
            agent_id: None,
            notify_properties_changed: false,
            brief_acks: false,
            app_type: None,
            services: Vec::new(),
        };
        Box::pin(async move {
            let (conn, events) = server.connect_inside(&reg).await.map_err(|e| e.to_string())?;
            Ok(Connected {
                link: Arc::new(InProcessLink(conn)),
                events,
            })
        })
    }
}

#[derive(Debug)]
struct InProcessLink(LocalConnection);

impl Link for InProcessLink {
    fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, LinkClosed> {
        self.0.send(request).map_err(|_| LinkClosed)
    }
}
