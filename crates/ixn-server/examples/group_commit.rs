//! Group commit at work: C concurrent WebSocket clients submit interactions as fast as their
//! answers come back, against a real server on a temporary SQLite store (`synchronous=FULL`, so
//! every commit is synced). With one request per commit the rate would be bounded by the sync
//! latency; sharing commits, it grows with the number of clients. Measures; asserts nothing.
//!
//! `cargo run --release -p ixn-server --example group_commit -- [SECONDS] [CLIENTS...]`
//! (defaults: 5 seconds, clients 1 8 32 128).
#![allow(clippy::print_stdout, reason = "a measurement tool reports on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ixn_client::{Client, Registration, TlsOptions};
use ixn_config::Application;
use ixn_model::ClientKind;
use ixn_protocol::{Request, Submit};
use ixn_server::{ServerOptions, start};

const KEY: &str = "group-commit-measurement-key";

fn submit() -> Request {
    Request::Submit(Submit {
        priority: Some(1),
        ..Submit::to_queue("inbound", "chat")
    })
}

async fn measure(clients: usize, seconds: u64) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let store = ixn_store::open(&format!("sqlite://{}", dir.path().join("ixn.db").display())).await?;
    let mut config = ixn_config::Config::builtin_default();
    config.server.listen = "127.0.0.1:0".into();
    let app = Application::new("media", ClientKind::MediaServer, "default", KEY);
    let server = start(ServerOptions {
        config,
        store,
        config_path: None,
        extra_applications: vec![app],
    })
    .await?;
    let url = server.base_url();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let reg = Registration::new("media", ClientKind::MediaServer, KEY);
        let client = Client::connect(&url, reg, &TlsOptions::default()).await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if client.call(submit()).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    server.shutdown().await;
    Ok((n as f64 / elapsed, n))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut counts: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, 8, 32, 128];
    }
    println!("| clients | acknowledged submits/s | total |");
    println!("|---|---|---|");
    for c in counts {
        let (rate, n) = measure(c, seconds).await?;
        println!("| {c} | {rate:.0} | {n} |");
    }
    Ok(())
}
