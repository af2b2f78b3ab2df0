//! Restart benchmark (DESIGN §11, P5: restart with 1M stored interactions, serving again within
//! 5 s). Fills a store with N live interactions (256 bytes of user data each) directly through
//! `ixn_store`, in `WriteBatch` commits of 10,000 rows, then starts the real binary on it and
//! measures, from spawn: `/health/ready` answering 200, and the first `GET /v1/queues` that shows
//! all N waiting in `inbound`. It measures; it asserts nothing about timing.
//!
//! ```text
//! cargo build --release -p ixn && cargo run --release -p ixn --example restart -- [--count N]
//!     [--runs K] [--binary target/release/ixn] [--postgres postgres://postgres@127.0.0.1:5432/test]
//! ```
//!
//! SQLite (default) runs `ixn serve --data-dir DIR` on a temporary directory; `--postgres URL`
//! fills a fresh schema `ixn_restart_<pid>_<nanos>` of that database, runs
//! `ixn server --config FILE` on it, and drops the schema at the end. Between runs the server is
//! killed with SIGKILL, so every run is a restart after a crash.
#![allow(clippy::print_stdout)] // the report is the example's output

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use ixn_client::{RestClient, TlsOptions};
use ixn_model::{IdGenerator, Interaction, InteractionState, Name, Timestamp, UserData, Value};
use ixn_store::{Store, WriteBatch};

/// Rows per commit while filling.
const BATCH_ROWS: usize = 10_000;
/// Encoded size of each interaction's user data.
const USER_DATA_BYTES: usize = 256;
/// The built-in process's queue the interactions wait in.
const QUEUE: &str = "inbound";
/// Give up on one start after this long.
const START_DEADLINE: Duration = Duration::from_secs(300);
/// How often readiness is polled (the measurement's resolution).
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Parser)]
#[command(about = "Time for ixn to serve again after a restart with N stored interactions")]
struct Args {
    /// Live interactions in the store.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Restarts measured on the filled store.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// The `ixn` binary.
    #[arg(long, default_value = "target/release/ixn")]
    binary: PathBuf,
    /// Use PostgreSQL (a fresh schema of this database) instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
}

/// Where the store is and how the server is started on it.
#[derive(Debug)]
enum Target {
    Sqlite {
        data_dir: PathBuf,
    },
    Postgres {
        config: PathBuf,
        admin_url: String,
        schema: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.binary.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p ixn` or pass --binary",
            args.binary.display()
        );
    }
    let dir = tempfile::tempdir().context("temporary directory")?;
    let key = format!("{:032x}", rand::random::<u128>());
    let (target, store_url) = prepare(&args, dir.path(), &key)?;
    let store = ixn_store::open(&store_url).await.context("opening the store")?;
    let filled = match fill(store.as_ref(), args.count).await {
        Ok(()) => scan(store.as_ref()).await,
        Err(e) => Err(e),
    };
    drop(store);
    let result = match filled {
        Ok(()) => measure(&args, &target, dir.path(), &key).await,
        Err(e) => Err(e),
    };
    if let Target::Postgres {
        admin_url, schema, ..
    } = &target
    {
        drop_schema(admin_url, schema).await;
    }
    result
}

/// Chooses the store and writes what the server needs to start on it.
fn prepare(args: &Args, dir: &Path, key: &str) -> anyhow::Result<(Target, String)> {
    match &args.postgres {
        None => {
            let data_dir = dir.join("data");
            std::fs::create_dir_all(&data_dir)?;
            // `ixn serve` keeps an existing admin key; the built-in process is written on start.
            std::fs::write(data_dir.join("admin.key"), format!("{key}\n"))?;
            let url = format!("sqlite://{}", data_dir.join("ixn.db").display());
            Ok((Target::Sqlite { data_dir }, url))
        }
        Some(base) => {
            if base.contains('?') {
                bail!("--postgres takes a URL without query parameters; the schema is chosen here");
            }
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos();
            let schema = format!("ixn_restart_{}_{nanos}", std::process::id());
            let url = format!("{base}?schema={schema}");
            // A file with applications defines the whole process: start from the built-in one.
            let text = format!(
                "[server]\nstore = \"{url}\"\n\n{}\n\n[[applications]]\nname = \"bench-admin\"\nkind = \"admin\"\n\
                 api-key = \"{key}\"\n",
                ixn_config::DEFAULT_PROCESS_TOML
            );
            let config = dir.join("ixn.toml");
            std::fs::write(&config, text)?;
            Ok((
                Target::Postgres {
                    config,
                    admin_url: base.clone(),
                    schema,
                },
                url,
            ))
        }
    }
}

/// Writes `count` queued interactions in commits of [`BATCH_ROWS`].
async fn fill(store: &dyn Store, count: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let user_data = padded_user_data();
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64,
    );
    let mut ids = IdGenerator::new(0);
    let mut seq = 1;
    while seq <= count {
        let end = (seq + BATCH_ROWS as u64).min(count + 1);
        let interactions = (seq..end)
            .map(|s| queued(ids.next(now), s, now, &user_data))
            .collect();
        let batch = WriteBatch {
            interactions,
            events: Vec::new(),
            meta: vec![("next_submit_seq".into(), end.to_string())],
        };
        store
            .commit(&batch)
            .await
            .with_context(|| format!("committing rows {seq}..{end}"))?;
        seq = end;
    }
    store.checkpoint().await.context("applying the last commits")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "filled {} store: {count} interactions in {secs:.1} s ({:.0} rows/s)",
        store.engine(),
        count as f64 / secs
    );
    Ok(())
}

/// Times the store's startup scan alone (no engine), to tell it apart from the server's share.
async fn scan(store: &dyn Store) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut bytes = 0usize;
    let rows = store
        .load_live(&mut |ix| bytes += ix.user_data.len())
        .await
        .context("load_live")?;
    println!(
        "store scan alone (load_live, {} rows decoded, no engine): {:.3} s",
        rows,
        started.elapsed().as_secs_f64()
    );
    std::hint::black_box(bytes);
    Ok(())
}

/// User data whose encoded form is exactly [`USER_DATA_BYTES`].
fn padded_user_data() -> UserData {
    let with = |pad: usize| {
        let mut ud = UserData::new();
        ud.push("Subject", Value::Str("restart benchmark".into()));
        ud.push("CustomerSegment", Value::Str("gold".into()));
        ud.push("pad", Value::Str("x".repeat(pad)));
        ud
    };
    let pad = (0..USER_DATA_BYTES)
        .find(|&p| with(p).encode().len() >= USER_DATA_BYTES)
        .unwrap_or(0);
    with(pad)
}

/// An interaction as a media server's submit leaves it: queued in [`QUEUE`].
fn queued(
    id: ixn_model::InteractionId,
    submit_seq: u64,
    now: Timestamp,
    user_data: &UserData,
) -> Interaction {
    Interaction {
        id,
        tenant: Name::from("default"),
        media_type: Name::from("email"),
        interaction_type: Some(Name::from("Inbound")),
        subtype: None,
        queue: Some(Name::from(QUEUE)),
        workbin: None,
        state: InteractionState::Queued,
        is_online: true,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: None,
        priority: (submit_seq % 10) as i64,
        service_objective: None,
        submitted_by: Name::from("restart-bench"),
        assigned_to: None,
        submit_seq,
        received_at: None,
        submitted_at: now,
        placed_in_queue_at: Some(now),
        moved_to_queue_at: Some(now),
        delivered_at: None,
        assigned_at: None,
        held_at: None,
        scheduled_at: None,
        completed_at: None,
        abandoned_at: None,
        user_data: user_data.clone(),
    }
}

/// One start per run: spawn → ready → queues show every interaction; then SIGKILL.
async fn measure(args: &Args, target: &Target, dir: &Path, key: &str) -> anyhow::Result<()> {
    let log = dir.join("server.log");
    for run in 1..=args.runs {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = RestClient::new(&base, key, &TlsOptions::default())?;
        let mut cmd = tokio::process::Command::new(&args.binary);
        match target {
            Target::Sqlite { data_dir } => cmd.arg("serve").arg("--data-dir").arg(data_dir),
            Target::Postgres { config, .. } => cmd.arg("server").arg("--config").arg(config),
        };
        let stderr = std::fs::File::create(&log)?;
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("IXN_STORE")
            .env_remove("IXN_DATA_DIR")
            .env("IXN_LOG", "info")
            .env("NO_COLOR", "1") // plain log lines, for reading and parsing
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", args.binary.display()))?;
        let timing = time_until_serving(&client, spawned, args.count).await;
        let rss = child.id().map(rss_mib).unwrap_or_default();
        child.start_kill()?;
        child.wait().await?;
        let (ready, serving) = timing.with_context(|| {
            format!(
                "server log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        let loaded = std::fs::read_to_string(&log)?
            .lines()
            .find(|l| l.contains("store loaded"))
            .and_then(|l| l.split("elapsed_ms=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "?".into());
        let indexing = std::fs::read_to_string(&log)?
            .lines()
            .find(|l| l.contains("engine indexed the store"))
            .and_then(|l| l.split("indexing_ms=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "?".into());
        println!(
            "run {run}: ready after {:.3} s, GET /v1/queues shows {} in {QUEUE} after {:.3} s \
             (server: store loaded in {loaded}, engine indexing busy {indexing}; resident {rss})",
            ready.as_secs_f64(),
            args.count,
            serving.as_secs_f64(),
        );
    }
    Ok(())
}

/// Polls until ready, then until the queue depth is `count`; both times from `spawned`.
async fn time_until_serving(
    client: &RestClient,
    spawned: Instant,
    count: u64,
) -> anyhow::Result<(Duration, Duration)> {
    let deadline = spawned + START_DEADLINE;
    while !client.ready().await {
        if Instant::now() > deadline {
            bail!("not ready within {START_DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    let ready = spawned.elapsed();
    loop {
        if let Ok(queues) = client.queues().await
            && queues.iter().any(|q| q.name == QUEUE && q.depth == count)
        {
            return Ok((ready, spawned.elapsed()));
        }
        if Instant::now() > deadline {
            bail!("{QUEUE} did not show {count} interactions within {START_DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Resident memory of a process, from /proc (Linux); empty elsewhere.
fn rss_mib(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map(|kb| format!("{} MiB", kb / 1024))
        .unwrap_or_else(|| "unknown".into())
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
    match dropped {
        Ok(()) => println!("dropped schema {schema}"),
        Err(e) => eprintln!("warning: could not drop schema {schema}: {e}"),
    }
}
