//! The server under load. By default the bench starts its own: `ixn serve` (all-in-one with its
//! router) on a temporary data directory for SQLite, or `ixn server` on a fresh schema for
//! PostgreSQL (its router in process, or `ixn router` beside it), each on a port of its own, with a generated configuration giving the
//! simulated media servers and agent desktops their applications and keys. With `--target` it
//! drives a running server instead and starts nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ixn_client::{RestClient, TlsOptions};
use tokio::process::{Child, Command};

use crate::args::BenchArgs;
use crate::procstat;

/// Longest wait for a started server to be ready (a million interactions load in seconds).
const START_DEADLINE: Duration = Duration::from_secs(300);
/// Readiness poll interval (the resolution of the restart measurement).
const POLL: Duration = Duration::from_millis(5);
/// The queue nothing selects, where `backlog` parks its million.
pub const PARKED_QUEUE: &str = "bench-parked";

/// An application the bench's clients register as.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub application: String,
    pub api_key: String,
}

/// How the bench's own server is started.
#[derive(Debug)]
enum Launch {
    /// `ixn serve --data-dir DIR`.
    Serve { data_dir: PathBuf },
    /// `ixn server --config FILE`, on PostgreSQL, and `ixn router --config FILE` when the
    /// router is separate.
    Split {
        config: PathBuf,
        separate_router: bool,
        admin_url: String,
        schema: String,
    },
}

/// The server the load goes to.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub media: Credentials,
    pub desktop: Credentials,
    /// Admin key (for readiness and queue depths); unknown with `--target`.
    pub admin_key: Option<String>,
    /// `sqlite`, `postgresql`, or `target` for a running server.
    pub store_label: String,
    /// The store the bench's server uses (for preloading before it starts).
    pub store_url: Option<String>,
    server_pid: Option<u32>,
    router_pid: Option<u32>,
    launch: Option<Launch>,
    binary: PathBuf,
    listen: String,
    children: Vec<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Chooses the server from the arguments and, for a server of its own, writes its
    /// configuration (nothing is started yet).
    pub fn prepare(args: &BenchArgs) -> anyhow::Result<Target> {
        match &args.target {
            Some(url) => Target::running(args, url),
            None => Target::own(args),
        }
    }

    fn running(args: &BenchArgs, url: &str) -> anyhow::Result<Target> {
        let key = |k: &Option<String>, what: &str| {
            k.clone().with_context(|| {
                format!(
                    "--target needs --{what}-key (or IXN_BENCH_{}_KEY)",
                    what.to_uppercase()
                )
            })
        };
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            media: Credentials {
                application: args.media_app.clone(),
                api_key: key(&args.media_key, "media")?,
            },
            desktop: Credentials {
                application: args.desktop_app.clone(),
                api_key: key(&args.desktop_key, "desktop")?,
            },
            admin_key: None,
            store_label: "target".into(),
            store_url: None,
            server_pid: args.server_pid,
            router_pid: None,
            launch: None,
            binary: PathBuf::new(),
            listen: String::new(),
            children: Vec::new(),
            dir: None,
        })
    }

    fn own(args: &BenchArgs) -> anyhow::Result<Target> {
        let binary = match &args.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().context("locating the ixn binary (pass --binary)")?,
        };
        let dir = tempfile::Builder::new()
            .prefix("ixn-bench-")
            .tempdir()
            .context("temporary directory")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let url = format!("http://{listen}");
        let keys = Keys::generate();
        let (launch, store_url, label) = if args.store == "sqlite" {
            let data_dir = dir.path().join("data");
            std::fs::create_dir_all(&data_dir)?;
            // `ixn serve` keeps an existing admin key and configuration.
            std::fs::write(data_dir.join("admin.key"), format!("{}\n", keys.admin))?;
            std::fs::write(data_dir.join("ixn.toml"), config_text(args, &keys, None, None))?;
            let store = format!("sqlite://{}", data_dir.join("ixn.db").display());
            (Launch::Serve { data_dir }, store, "sqlite")
        } else if args.store.starts_with("postgres://") || args.store.starts_with("postgresql://") {
            if args.store.contains('?') {
                bail!("--store takes a PostgreSQL URL without parameters; the bench picks a schema");
            }
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos();
            let schema = format!("ixn_bench_{}_{nanos}", std::process::id());
            let store = format!("{}?schema={schema}", args.store);
            let config = dir.path().join("ixn.toml");
            let router_url = args.separate_router.then_some(url.as_str());
            let text = config_text(args, &keys, Some(&store), router_url);
            std::fs::write(&config, text)?;
            let launch = Launch::Split {
                config,
                separate_router: args.separate_router,
                admin_url: args.store.clone(),
                schema,
            };
            (launch, store, "postgresql")
        } else {
            bail!(
                "--store must be `sqlite` or a postgres:// URL, not {:?}",
                args.store
            );
        };
        Ok(Target {
            url,
            media: Credentials {
                application: "bench-media".into(),
                api_key: keys.media,
            },
            desktop: Credentials {
                application: "bench-desktop".into(),
                api_key: keys.desktop,
            },
            admin_key: Some(keys.admin),
            store_label: label.into(),
            store_url: Some(store_url),
            server_pid: None,
            router_pid: None,
            launch: Some(launch),
            binary,
            listen,
            children: Vec::new(),
            dir: Some(dir),
        })
    }

    /// Whether the bench started (and may restart) this server.
    pub fn is_own(&self) -> bool {
        self.launch.is_some()
    }

    /// Process id of the interaction server, when known.
    pub fn server_pid(&self) -> Option<u32> {
        self.server_pid
    }

    /// Process id of a separate router process, when there is one.
    pub fn router_pid(&self) -> Option<u32> {
        self.router_pid
    }

    /// Starts the bench's own server (and router) and waits until it is ready; returns the time
    /// from spawn to ready. For a running server it only checks readiness.
    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let spawned = Instant::now();
        let Some(launch) = &self.launch else {
            return Ok(Duration::ZERO);
        };
        let dir = self.dir.as_ref().map(|d| d.path().to_owned()).unwrap_or_default();
        let mut server = Command::new(&self.binary);
        match launch {
            Launch::Serve { data_dir } => server.arg("serve").arg("--data-dir").arg(data_dir),
            Launch::Split { config, .. } => server.arg("server").arg("--config").arg(config),
        };
        server.args(["--listen", &self.listen]);
        let child = spawn(server, &dir.join("server.log"), &self.binary)?;
        self.server_pid = child.id();
        self.children.push(child);
        if let Launch::Split {
            config,
            separate_router: true,
            ..
        } = launch
        {
            let mut router = Command::new(&self.binary);
            router.arg("router").arg("--config").arg(config);
            let child = spawn(router, &dir.join("router.log"), &self.binary)?;
            self.router_pid = child.id();
            self.children.push(child);
        }
        let rest = self.rest()?;
        while !rest.ready().await {
            for c in &mut self.children {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "the server exited ({status}) before it was ready:\n{}",
                        self.logs()
                    );
                }
            }
            if spawned.elapsed() > START_DEADLINE {
                bail!("not ready within {START_DEADLINE:?}:\n{}", self.logs());
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(spawned.elapsed())
    }

    /// Waits until `queue` holds `depth` interactions (waiting or in progress).
    pub async fn wait_for_depth(&self, queue: &str, depth: u64) -> anyhow::Result<()> {
        let rest = self.rest()?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(queues) = rest.queues().await
                && queues
                    .iter()
                    .any(|q| q.name == queue && q.depth + q.in_progress >= depth)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{queue} did not reach {depth} interactions within {START_DEADLINE:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the bench's processes at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        self.server_pid = None;
        self.router_pid = None;
    }

    /// Stops the bench's server and removes what it created (temporary directory, schema).
    pub async fn shutdown(mut self) {
        self.kill().await;
        if let Some(Launch::Split {
            admin_url, schema, ..
        }) = &self.launch
        {
            drop_schema(admin_url, schema).await;
        }
    }

    /// A reading of the server's CPU and memory.
    pub fn sample(&self) -> Option<procstat::ProcSample> {
        self.server_pid.and_then(procstat::sample)
    }

    fn rest(&self) -> anyhow::Result<RestClient> {
        let key = self.admin_key.as_deref().unwrap_or("");
        Ok(RestClient::new(&self.url, key, &TlsOptions::default())?)
    }

    /// The end of the server's (and router's) log, for error messages.
    pub fn logs(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let mut out = String::new();
        for name in ["server.log", "router.log"] {
            if let Ok(text) = std::fs::read_to_string(dir.path().join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(30)..];
                out.push_str(&format!(
                    "--- {name} (last {} lines)\n{}\n",
                    tail.len(),
                    tail.join("\n")
                ));
            }
        }
        out
    }
}

fn spawn(mut cmd: Command, log: &Path, binary: &Path) -> anyhow::Result<Child> {
    let stderr = std::fs::File::create(log)?;
    cmd.env_remove("IXN_STORE")
        .env_remove("IXN_DATA_DIR")
        .env_remove("IXN_LISTEN")
        .env(
            "IXN_LOG",
            std::env::var("IXN_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    cmd.spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Generated API keys of the bench's applications.
#[derive(Debug)]
struct Keys {
    media: String,
    desktop: String,
    admin: String,
    router: String,
}

impl Keys {
    fn generate() -> Keys {
        let key = || format!("{:032x}", rand::random::<u128>());
        Keys {
            media: key(),
            desktop: key(),
            admin: key(),
            router: key(),
        }
    }
}

/// The configuration of the bench's server: the built-in process plus a parking queue, the
/// agents' capacity, and the applications of the simulated clients. With `store`, also the
/// `[server]` store, and either the `[router]` that `ixn router` reads from the same file (with
/// the server's `url`) or the router in the server's process.
fn config_text(args: &BenchArgs, keys: &Keys, store: Option<&str>, url: Option<&str>) -> String {
    let mut t = String::new();
    if let Some(store) = store {
        t.push_str(&format!("[server]\nstore = \"{store}\"\n"));
        if url.is_none() {
            t.push_str("route-in-process = true\n");
        }
        t.push('\n');
    }
    t.push_str(ixn_config::DEFAULT_PROCESS_TOML);
    t.push_str(&format!(
        "\n[[queues]]\nname = \"{PARKED_QUEUE}\"\ntenant = \"default\"\n\
         description = \"Backlog parked by the benchmark; no view selects it.\"\n\n\
         [[capacity-rules]]\nname = \"default\"\nmedia = {{ \"*\" = {} }}\n\n",
        args.capacity
    ));
    let apps = [
        ("bench-media", "media-server", &keys.media),
        ("bench-desktop", "agent-desktop", &keys.desktop),
        ("bench-admin", "admin", &keys.admin),
        ("bench-router", "router", &keys.router),
    ];
    for (name, kind, key) in apps {
        t.push_str(&format!(
            "[[applications]]\nname = \"{name}\"\nkind = \"{kind}\"\napi-key = \"{key}\"\n\n"
        ));
    }
    if let Some(url) = url {
        t.push_str(&format!(
            "[router]\nservers = [{{ url = \"{url}\", application = \"bench-router\", api-key = \"{}\" }}]\n",
            keys.router
        ));
    }
    t
}

async fn drop_schema(url: &str, schema: &str) {
    let dropped = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        let r = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
        drop(client);
        let _ = driver.await;
        r
    }
    .await;
    if let Err(e) = dropped {
        tracing::warn!(schema, error = %e, "could not drop the benchmark's schema");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::args::BenchArgs,
    }

    /// The generated configuration is one the server accepts, in both forms.
    #[test]
    fn generated_configuration_is_valid() {
        let args = Cli::parse_from(["bench", "lifecycle"]).args;
        let keys = super::Keys::generate();
        let plain = super::config_text(&args, &keys, None, None);
        let config = ixn_config::parse(&plain, "bench.toml").expect("valid sqlite configuration");
        assert_eq!(config.process.applications.len(), 4);
        let split = super::config_text(
            &args,
            &keys,
            Some("postgres://postgres@127.0.0.1:5432/test?schema=x"),
            Some("http://127.0.0.1:1"),
        );
        let config = ixn_config::parse(&split, "bench.toml").expect("valid split configuration");
        assert!(config.router.is_some());
        assert!(!config.server.route_in_process);
        let inside = super::config_text(
            &args,
            &keys,
            Some("postgres://postgres@127.0.0.1:5432/test?schema=x"),
            None,
        );
        let config = ixn_config::parse(&inside, "bench.toml").expect("valid configuration");
        assert!(config.router.is_none());
        assert!(config.server.route_in_process);
    }
}
