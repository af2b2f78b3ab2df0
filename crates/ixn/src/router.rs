//! `ixn router --config FILE`, and the router `ixn serve` runs in process with the built-in
//! `default` strategy (any ready agent with free capacity, longest idle first).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ixn_config::{Application, Config, RouterConfig, RouterServer};
use ixn_model::ClientKind;
use ixn_router::Router;

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
    wait_for_signal().await;
    tracing::info!("shutting down");
    router.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The application and key of the in-process router of `ixn serve` (a fresh key each start).
pub fn serve_router_application() -> (Application, String) {
    let bytes: [u8; 32] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let app = Application::new(SERVE_ROUTER_APP, ClientKind::Router, "default", &key);
    (app, key)
}

/// Starts the in-process router of `ixn serve` against the local server.
pub fn start_serve_router(config: &Config, addr: SocketAddr, key: &str) -> anyhow::Result<Router> {
    // A server listening on every address is reached over loopback.
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let router_config = RouterConfig::single(RouterServer {
        url: format!("http://{host}"),
        application: SERVE_ROUTER_APP.to_owned(),
        api_key: key.to_owned(),
        tls_ca_file: None,
        tenant: "default".to_owned(),
    });
    Router::start(&router_config, &config.process.strategies).context("starting the in-process router")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
