//! Startup as a readable sequence of steps: store ready → engine loaded → writer and core
//! running → listener open → ready. [`RunningServer`] stops it all in reverse order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ixn_config::{Application, Config};
use ixn_engine::Engine;
use ixn_store::Store;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::core::{Core, CoreMsg, now};
use crate::kpi::Kpi;

/// Everything `start` needs.
#[derive(Debug)]
pub struct ServerOptions {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// File the configuration came from; RequestApplyConfig rewrites it so a restart keeps the
    /// applied business process.
    pub config_path: Option<PathBuf>,
    /// Applications that exist besides the configured ones (the generated admin key of
    /// `ixn serve`); they survive every configuration change.
    pub extra_applications: Vec<Application>,
}

/// State shared by sessions, the core and the writer. Read-mostly; nothing here is held across
/// an await.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The running configuration; its receivers hear of every applied change.
    pub config: watch::Sender<Arc<Config>>,
    pub extra_applications: Vec<Application>,
    pub config_path: Option<PathBuf>,
    pub kpi: Kpi,
    pub store: Arc<dyn Store>,
    pub core: mpsc::Sender<CoreMsg>,
    /// The ESP relay's inbox.
    pub esp: crate::esp::EspHandle,
    pub next_client_id: AtomicU64,
    pub ready: AtomicBool,
    pub store_ok: AtomicBool,
    pub last_store_error: Mutex<Option<String>>,
    /// A check of the composition root on every configuration applied (see
    /// [`RunningServer::check_applied_configs`]).
    pub config_check: CheckSlot,
    pub max_frame_size: usize,
    pub live_at_start: AtomicU64,
    /// Turns true when the server stops; sessions close on it.
    pub shutdown: watch::Receiver<bool>,
    /// The event loggers draining the outbox.
    pub reporting: ixn_events::Reporting,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    pub fn set_config(&self, config: Config) {
        self.config.send_replace(Arc::new(config));
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A check a configuration must pass to be applied at run time, besides its own validation:
/// an error message, or nothing.
pub type ConfigCheck = Arc<dyn Fn(&Config) -> Result<(), String> + Send + Sync>;

/// Where [`Shared`] keeps the [`ConfigCheck`].
#[derive(Default)]
pub(crate) struct CheckSlot(Mutex<Option<ConfigCheck>>);

impl CheckSlot {
    pub fn get(&self) -> Option<ConfigCheck> {
        self.0
            .lock()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |c| c.clone())
    }

    fn set(&self, check: ConfigCheck) {
        match self.0.lock() {
            Ok(mut c) => *c = Some(check),
            Err(poisoned) => *poisoned.into_inner() = Some(check),
        }
    }
}

impl std::fmt::Debug for CheckSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.get().is_some() {
            "CheckSlot(set)"
        } else {
            "CheckSlot(none)"
        })
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<bool>,
    listener: JoinHandle<()>,
    core: JoinHandle<()>,
    writer: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl RunningServer {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Opens in-process connections to this server (see [`LocalConnector`]).
    pub fn local_connector(&self) -> crate::LocalConnector {
        crate::LocalConnector {
            shared: self.shared.clone(),
        }
    }

    /// The running configuration now and after each applied change (`RequestApplyConfig`):
    /// what components started beside the server (the in-process router) follow.
    pub fn config_updates(&self) -> watch::Receiver<Arc<Config>> {
        self.shared.config.subscribe()
    }

    /// Makes every configuration applied from now on (`RequestApplyConfig`, dry runs too) pass
    /// `check` as well: a configuration it refuses is answered `invalid_configuration` with its
    /// message and changes nothing. For what only the composition root can check, such as the
    /// script files of the strategies a router inside the process will run.
    pub fn check_applied_configs(&self, check: ConfigCheck) {
        self.shared.config_check.set(check);
    }

    /// Returns once no connection of `application` (of `tenant`) is registered, at once if
    /// none is: for a router application, what it held has then gone back to its queues. (When
    /// another connection of a router application is still there, the server keeps what the
    /// application holds.)
    pub async fn application_gone(&self, tenant: &str, application: &str) {
        let (reply, gone) = tokio::sync::oneshot::channel();
        let msg = CoreMsg::WhenGone {
            tenant: tenant.into(),
            application: application.into(),
            reply,
        };
        if self.shared.core.send(msg).await.is_ok() {
            // An error means the core ended: nothing is registered any more.
            let _ = gone.await;
        }
    }

    /// Interactions loaded from the store at startup.
    pub fn loaded_interactions(&self) -> u64 {
        self.shared.live_at_start.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes sessions, lets the core commit what it has, and waits for
    /// everything to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.listener.await;
        let _ = self.shared.core.send(CoreMsg::Shutdown).await;
        let _ = self.core.await;
        let _ = self.writer.await;
        self.shared.reporting.shutdown().await;
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down cleanly.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Returns at Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
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

/// Starts a server: loads the store into the engine, then opens the listener.
pub async fn start(opts: ServerOptions) -> anyhow::Result<RunningServer> {
    let started = Instant::now();
    // Install the metrics recorder before anything is counted.
    let _ = crate::metrics_export::handle();
    let ServerOptions {
        mut config,
        store,
        config_path,
        extra_applications,
    } = opts;
    for app in &extra_applications {
        config = config.with_application(app.clone());
    }

    // 1. The store knows the custom-property columns it must fill.
    store
        .ensure_custom_properties(&config.process.custom_properties)
        .await
        .context("preparing custom-property columns")?;

    // 2. The engine continues the store's sequences and loads every live interaction.
    let last_event_seq = store
        .last_event_seq()
        .await
        .context("reading the outbox sequence")?;
    let mut engine = Engine::new(
        &config.process,
        config.settings.clone(),
        config.server.node_id,
        last_event_seq,
    );
    if let Some(next) = store
        .meta_get("next_submit_seq")
        .await?
        .and_then(|v| v.parse().ok())
    {
        engine.set_next_submit_seq(next);
    }
    if let Some(ms) = store.meta_get("id_clock").await?.and_then(|v| v.parse().ok()) {
        engine.observe_id_clock(ixn_model::Timestamp(ms));
    }
    let (engine, loaded) = load_engine(engine, store.as_ref()).await?;
    tracing::info!(
        loaded,
        elapsed_ms = started.elapsed().as_millis() as u64,
        engine = store.engine(),
        "store loaded"
    );

    // 3. Event loggers, then core and writer.
    let reporting = ixn_events::Reporting::start(
        &config.loggers,
        config.server.keep_events_without_loggers,
        store.clone(),
    )
    .await
    .context("starting the event loggers")?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (core_tx, core_rx) = mpsc::channel(65_536);
    let (job_tx, job_rx) = mpsc::channel(1);
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (esp, esp_rx) = crate::esp::EspHandle::channel();
    let shared = Arc::new(Shared {
        kpi: Kpi::new(&config.settings),
        max_frame_size: config.server.max_frame_size,
        config: watch::Sender::new(Arc::new(config.clone())),
        extra_applications,
        config_path,
        store: store.clone(),
        core: core_tx,
        esp,
        next_client_id: AtomicU64::new(1),
        ready: AtomicBool::new(false),
        store_ok: AtomicBool::new(true),
        last_store_error: Mutex::new(None),
        config_check: CheckSlot::default(),
        live_at_start: AtomicU64::new(loaded),
        shutdown: shutdown_rx.clone(),
        reporting,
    });
    let writer = tokio::spawn(crate::writer::run(shared.clone(), job_rx, done_tx));
    let core = tokio::spawn(Core::new(engine, shared.clone(), job_tx).run(core_rx, done_rx));
    tokio::spawn(crate::esp::run(shared.clone(), esp_rx));

    // 4. Background purge of history past its retention.
    tokio::spawn(purge_history(shared.clone(), shutdown_rx.clone()));

    // 5. The listener.
    let app = crate::http::router(shared.clone());
    let (addr, tls, listener) = crate::tls::serve(&config.server, app, shutdown_rx).await?;
    shared.ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, tls, elapsed_ms = started.elapsed().as_millis() as u64, "ready");
    Ok(RunningServer {
        addr,
        tls,
        shutdown,
        listener,
        core,
        writer,
        shared,
    })
}

/// Loads every live interaction into the engine. The store decodes rows on one thread while the
/// engine indexes them on another, so a large store loads in about the time of the slower half.
async fn load_engine(mut engine: Engine, store: &dyn Store) -> anyhow::Result<(Engine, u64)> {
    const CHUNK: usize = 4096;
    let t = now();
    if let Ok(stats) = store.stats().await {
        engine.reserve(usize::try_from(stats.live_interactions).unwrap_or(0));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ixn_model::Interaction>>(16);
    let indexer = tokio::task::spawn_blocking(move || {
        let mut busy = Duration::ZERO;
        for chunk in rx {
            let started = Instant::now();
            for ix in chunk {
                engine.load(ix, t);
            }
            busy += started.elapsed();
        }
        tracing::info!(indexing_ms = busy.as_millis() as u64, "engine indexed the store");
        engine
    });
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut names = ixn_engine::Interner::default();
    let loaded = store
        .load_live(&mut |mut ix| {
            names.intern_all(&mut ix);
            chunk.push(ix);
            if chunk.len() == CHUNK {
                let _ = tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
            }
        })
        .await
        .context("loading live interactions");
    let _ = tx.send(chunk);
    drop(tx);
    let engine = indexer.await.context("indexing live interactions")?;
    Ok((engine, loaded?))
}

/// Deletes stopped interactions older than `history-retention`, in batches.
async fn purge_history(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
        let settings = shared.config().settings.clone();
        if settings.history_retention_min == 0 {
            continue;
        }
        let before = now().plus_millis(-(i64::from(settings.history_retention_min) * 60_000));
        loop {
            match shared
                .store
                .purge_stopped(before, u64::from(settings.purge_batch_size))
                .await
            {
                Ok(n) => {
                    metrics::counter!("ixn_purged_interactions_total").increment(n);
                    if n < u64::from(settings.purge_batch_size) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging history failed");
                    break;
                }
            }
        }
    }
}
