//! `ixn serve` (all-in-one, zero configuration) and `ixn server --config FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ixn_config::{Application, Config};
use ixn_model::ClientKind;
use ixn_server::ServerOptions;

use crate::router::{compile_in_process, start_in_process_router};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP/WebSocket listener.
    #[arg(long, env = "IXN_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Where the store, the admin key and an applied configuration are kept.
    #[arg(long, env = "IXN_DATA_DIR", default_value = "ixn-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Overrides [server] listen.
    #[arg(long, env = "IXN_LISTEN")]
    pub listen: Option<String>,
    /// Overrides [server] store.
    #[arg(long, env = "IXN_STORE")]
    pub store: Option<String>,
    /// Overrides [server] data-dir.
    #[arg(long, env = "IXN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// File name of the admin key in the data directory.
const ADMIN_KEY_FILE: &str = "admin.key";
/// File name of the key of the `desktop` application `ixn serve` configures for `ixn desktop`.
const DESKTOP_KEY_FILE: &str = "desktop.key";
/// File an applied configuration is saved to by `ixn serve`.
const SERVE_CONFIG_FILE: &str = "ixn.toml";

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let key_path = args.data_dir.join(ADMIN_KEY_FILE);
    let key = admin_key(&key_path)?;
    let config_path = args.data_dir.join(SERVE_CONFIG_FILE);
    let mut config = if config_path.exists() {
        ixn_config::load_file(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        std::fs::write(&config_path, ixn_config::DEFAULT_PROCESS_TOML)
            .with_context(|| format!("writing {}", config_path.display()))?;
        Config::builtin_default()
    };
    config.server.listen = args.listen;
    let store_url = format!("sqlite://{}", args.data_dir.join("ixn.db").display());
    let admin = Application::new("admin", ClientKind::Admin, "default", &key);
    // A desktop application for `ixn desktop` (any agent id may log in with it).
    let desktop_key = admin_key(&args.data_dir.join(DESKTOP_KEY_FILE))?;
    let desktop = Application::new("desktop", ClientKind::AgentDesktop, "default", &desktop_key);
    let routers = vec![crate::router::serve_router_application()];
    run(
        config,
        &store_url,
        Some(config_path),
        vec![admin, desktop],
        Some(&key_path),
        routers,
    )
    .await
}

pub async fn server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut config = ixn_config::load_file(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.server.data_dir = Some(d);
    }
    if let Some(s) = args.store {
        config.server.store = Some(s);
    }
    let data_dir = config
        .server
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("ixn-data"));
    let store_url = match &config.server.store {
        Some(s) => s.clone(),
        None => {
            std::fs::create_dir_all(&data_dir)?;
            format!("sqlite://{}", data_dir.join("ixn.db").display())
        }
    };
    let routers = if config.server.route_in_process {
        in_process_routers(&config)?
    } else {
        Vec::new()
    };
    run(config, &store_url, Some(args.config), Vec::new(), None, routers).await
}

/// With `[server] route-in-process`: an application for the router inside the server, one per
/// tenant with an enabled strategy that an enabled submitter serves (a strategy has nothing to
/// pull otherwise).
fn in_process_routers(config: &Config) -> anyhow::Result<Vec<(Application, String)>> {
    let p = &config.process;
    let mut tenants: Vec<&str> = p
        .strategies
        .iter()
        .filter(|s| s.enabled)
        .filter(|s| {
            p.submitters
                .iter()
                .any(|sub| sub.enabled && sub.tenant == s.tenant && sub.strategy == s.name)
        })
        .map(|s| s.tenant.as_str())
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    if tenants.is_empty() {
        anyhow::bail!(
            "[server] route-in-process = true, but no enabled [[strategies]] that a [[submitters]] \
             entry serves, so nothing to route (see docs/routing.md)"
        );
    }
    tenants
        .into_iter()
        .map(|tenant| {
            let name = format!("ixn-router-{tenant}");
            if config.process.applications.iter().any(|a| a.name == name) {
                anyhow::bail!(
                    "[server] route-in-process = true: the in-process router of tenant {tenant} \
                     is application {name}, which the configuration already defines; rename it"
                );
            }
            Ok(crate::router::in_process_router_application(&name, tenant))
        })
        .collect()
}

async fn run(
    config: Config,
    store_url: &str,
    config_path: Option<PathBuf>,
    mut extra_applications: Vec<Application>,
    key_path: Option<&Path>,
    routers: Vec<(Application, String)>,
) -> anyhow::Result<ExitCode> {
    // The in-process routers' applications exist besides the configured ones.
    extra_applications.extend(routers.iter().map(|(app, _)| app.clone()));
    let strategies = config.process.strategies.clone();
    let store = ixn_store::open(store_url)
        .await
        .with_context(|| format!("opening store {}", redact(store_url)))?;
    let server = ixn_server::start(ServerOptions {
        config,
        store,
        config_path,
        extra_applications,
    })
    .await?;
    println!("ixn listening on {}", server.base_url());
    if let Some(p) = key_path {
        println!(
            "admin API key: {} (use it as `Authorization: Bearer <key>`)",
            p.display()
        );
    }
    let mut router = None;
    if !routers.is_empty() {
        let compiled = compile_in_process(&strategies).context("starting the in-process router")?;
        router = Some(start_in_process_router(
            compiled,
            server.local_connector(),
            &routers,
        ));
        // A configuration whose strategies the router inside could not run is refused.
        server.check_applied_configs(std::sync::Arc::new(|config: &Config| {
            compile_in_process(&config.process.strategies)
                .map(drop)
                .map_err(|e| e.to_string())
        }));
    }
    let mut routed = strategies;
    let mut updates = server.config_updates();
    let signal = ixn_server::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            changed = updates.changed(), if router.is_some() => {
                if changed.is_err() {
                    // The server is gone; wait for the signal as before.
                    (&mut signal).await;
                    break;
                }
                let applied = updates.borrow_and_update().process.strategies.clone();
                if applied != routed && let Some(old) = router.take() {
                    router = Some(follow_strategies(old, &applied, &server, &routers).await);
                    routed = applied;
                }
            }
        }
    }
    tracing::info!("shutting down");
    // The router first, while the server still answers, so it does not see its server vanish
    // and try to reconnect.
    if let Some(r) = router {
        r.shutdown().await;
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Reads the admin key, or generates one (32 random bytes, hex) readable by the owner only.
fn admin_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let key = existing.trim().to_owned();
        if key.len() >= 16 {
            return Ok(key);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

/// A store URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The in-process router after a configuration with other strategies was applied: the old
/// router stops, the server takes back what it held (once the router's last connection is
/// gone, see `RunningServer::application_gone`), and a new router with the applied strategies
/// pulls it again. The strategies are compiled first (they were checked when the configuration
/// was applied, but a script file may have changed since): if they cannot run, the old router
/// keeps routing with the ones it has.
async fn follow_strategies(
    old: ixn_router::Router,
    strategies: &[ixn_config::Strategy],
    server: &ixn_server::RunningServer,
    routers: &[(Application, String)],
) -> ixn_router::Router {
    let compiled = match compile_in_process(strategies) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the applied strategies cannot run; the in-process router keeps the previous ones");
            return old;
        }
    };
    old.shutdown().await;
    for (app, _) in routers {
        server.application_gone(&app.tenant, &app.name).await;
    }
    tracing::info!("in-process router restarted with the applied strategies");
    start_in_process_router(compiled, server.local_connector(), routers)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
