//! The ixn router: runs routing strategies against one or more interaction servers.
//!
//! A router is a client like any other. For each server it keeps one connection (the product
//! family's `switch-multi-links-enabled`), a pull loop per strategy — held pulls, no polling —
//! and a worker that runs each pulled interaction through its strategy and sends every request
//! about it to the server it came from. It never picks agents itself: it names a target and a
//! policy, and the server chooses atomically among the agents that can take the interaction.
//!
//! Architecture invariant: the router holds no durable state. What it holds is a working set of
//! interactions in `routing` on their servers; if it dies, the servers return them to their
//! queues (routing timeout) and any router pulls them again.

mod link;
mod memory;
mod plan;
mod pull;
mod script;
mod server;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use ixn_client::TlsOptions;
use ixn_config::{RouterConfig, ScriptCode, Strategy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use link::{BoxFuture, Connected, Connector, Link, LinkClosed, WsConnector};
pub use plan::{Plan, PlanStep};
pub use pull::is_strategy_error;
pub use script::{CompiledScript, Decision, NODE_KEY, ORCHESTRATION_QUEUE, ScriptEnv, ScriptOutcome};

/// Why a router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("strategy {strategy:?}: {message}")]
    Script { strategy: String, message: String },
    #[error("server {url}: cannot read tls-ca-file {path}: {error}")]
    TlsCa {
        url: String,
        path: String,
        error: std::io::Error,
    },
}

/// One server to route for: how to connect, and the tenant whose strategies it serves.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub connector: Arc<dyn Connector>,
    pub tenant: String,
}

/// A running router. Dropping it leaves its tasks running; call [`Router::shutdown`].
#[derive(Debug)]
pub struct Router {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Router {
    /// Starts a router for `config`'s servers (over WebSocket) with the strategies it runs.
    pub fn start(config: &RouterConfig, strategies: &[Strategy]) -> Result<Router, RouterError> {
        let mut servers = Vec::new();
        for s in &config.servers {
            let tls = match &s.tls_ca_file {
                None => TlsOptions::default(),
                Some(path) => TlsOptions {
                    extra_ca_pem: Some(std::fs::read(path).map_err(|error| RouterError::TlsCa {
                        url: s.url.clone(),
                        path: path.display().to_string(),
                        error,
                    })?),
                },
            };
            servers.push(ServerSpec {
                connector: Arc::new(WsConnector::new(&s.url, &s.application, &s.api_key, tls)),
                tenant: s.tenant.clone(),
            });
        }
        Router::start_with(servers, config, strategies)
    }

    /// Starts a router over the given connections (tests use in-memory ones).
    pub fn start_with(
        servers: Vec<ServerSpec>,
        config: &RouterConfig,
        strategies: &[Strategy],
    ) -> Result<Router, RouterError> {
        Ok(Router::start_compiled(
            servers,
            config,
            Compiled::new(config, strategies)?,
        ))
    }

    /// Starts a router over the given connections with strategies compiled beforehand (so
    /// starting cannot fail).
    pub fn start_compiled(servers: Vec<ServerSpec>, config: &RouterConfig, compiled: Compiled) -> Router {
        let plans = compiled.0;
        let settings = pull::PullSettings {
            batch: config.pull_batch.max(1),
            after_error: Duration::from_secs(u64::from(config.pull_after_error_s)),
        };
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for spec in servers {
            let plans: Vec<Arc<Plan>> = plans
                .iter()
                .filter(|p| p.strategy.tenant == spec.tenant)
                .cloned()
                .collect();
            tracing::info!(
                server = %spec.connector.describe(),
                strategies = ?plans.iter().map(|p| p.name().to_owned()).collect::<Vec<_>>(),
                "routing"
            );
            let task = server::ServerTask {
                connector: spec.connector,
                plans,
                settings: settings.clone(),
                node: config.node.clone(),
            };
            tasks.push(tokio::spawn(task.run(rx.clone())));
        }
        Router { shutdown, tasks }
    }

    /// Stops every server task and waits for them: when this returns, every connection of
    /// the router is closed, so each server takes back at once the interactions it held.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The strategies a router runs (those `config` selects), ready to run: their scripts read
/// and compiled.
#[derive(Debug)]
pub struct Compiled(Vec<Arc<Plan>>);

impl Compiled {
    pub fn new(config: &RouterConfig, strategies: &[Strategy]) -> Result<Compiled, RouterError> {
        strategies
            .iter()
            .filter(|s| config.runs(s))
            .map(|s| compile(s).map(Arc::new))
            .collect::<Result<_, _>>()
            .map(Compiled)
    }
}

/// Makes a strategy ready to run, compiling its script (reading its file).
pub fn compile(strategy: &Strategy) -> Result<Plan, RouterError> {
    let script = match &strategy.script {
        None => None,
        Some(s) => {
            let err = |message: String| RouterError::Script {
                strategy: strategy.name.clone(),
                message,
            };
            let source = match &s.code {
                ScriptCode::Inline(text) => text.clone(),
                ScriptCode::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?,
            };
            let limit = Duration::from_millis(u64::from(s.time_limit_ms));
            let compiled =
                CompiledScript::compile(&source, s.max_operations, limit).map_err(|e| err(e.to_string()))?;
            Some(Arc::new(compiled))
        }
    };
    Ok(Plan::new(strategy.clone(), script))
}
