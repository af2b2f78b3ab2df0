//! `ixn bench` end to end: a short lifecycle run against a child server (the real `ixn` binary
//! with its router) checks that every lifecycle completes, none is lost, and the JSON carries
//! the promised fields; the SQL baseline runs against PostgreSQL on 127.0.0.1:5432.
//!
//! The child server needs the `ixn` binary next to this test's directory (`cargo test
//! --workspace` builds it; or set `IXN_BENCH_BINARY`). PostgreSQL and the binary are services:
//! when missing, a test is skipped with a note, unless `IXN_REQUIRE_SERVICES=1`, which makes it
//! fail. Every run is bounded by a count and a duration; nothing asserts on timing.

use std::path::PathBuf;

use clap::Parser;
use ixn_bench::BenchArgs;
use serde_json::Value as Json;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn required() -> bool {
    std::env::var("IXN_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (or fails, when services are required) with a note.
fn missing(what: &str) {
    assert!(!required(), "{what} (IXN_REQUIRE_SERVICES=1)");
    eprintln!("note: skipped: {what}");
}

/// `target/<profile>/ixn`, from this test's own path (`target/<profile>/deps/bench-…`).
fn ixn_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("IXN_BENCH_BINARY") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe
        .parent()?
        .parent()?
        .join(format!("ixn{}", std::env::consts::EXE_SUFFIX));
    bin.exists().then_some(bin)
}

async fn postgres_reachable() -> bool {
    tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls)
        .await
        .is_ok()
}

fn args(extra: &[&str]) -> BenchArgs {
    let mut argv = vec!["bench"];
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lifecycle_run_completes_every_lifecycle() {
    let Some(binary) = ixn_binary() else {
        return missing("the ixn binary is not built (cargo build -p ixn)");
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("result.json");
    let plot = dir.path().join("result.svg");
    let a = args(&[
        "lifecycle",
        "--count",
        "200",
        "--duration",
        "60s",
        "--drain",
        "20s",
        "--concurrency",
        "8",
        "--media-servers",
        "2",
        "--agents",
        "4",
        "--quiet",
        "--binary",
        binary.to_str().expect("utf-8 path"),
        "--json",
        json.to_str().expect("utf-8 path"),
        "--plot",
        plot.to_str().expect("utf-8 path"),
    ]);
    let code = ixn_bench::main(a).await.expect("the bench runs");
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).expect("valid JSON");
    assert_eq!(report["scenario"], "lifecycle");
    assert_eq!(report["store"], "sqlite");
    assert_eq!(report["completed"], 200, "{report:#}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["unanswered"], 0);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(report["errors"].is_u64());
    assert!(report["throughput_per_s"].as_f64().is_some_and(|t| t > 0.0));
    for p in ["p50", "p99", "p999"] {
        assert!(
            report["latency_ms"][p].as_f64().is_some_and(|v| v > 0.0),
            "latency_ms.{p}"
        );
        assert!(
            report["lifecycle_ms"][p].as_f64().is_some_and(|v| v > 0.0),
            "lifecycle_ms.{p}"
        );
    }
    assert_eq!(report["latency_ms"]["count"], 200);
    if cfg!(target_os = "linux") {
        assert!(report["server_rss_bytes"].as_u64().is_some_and(|b| b > 0));
    }
    assert!(report["baseline"].is_null() && report["ratio"].is_null());
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_baseline_runs_and_cleans_up() {
    if !postgres_reachable().await {
        return missing("PostgreSQL is not reachable at 127.0.0.1:5432");
    }
    let a = args(&[
        "lifecycle",
        "--count",
        "200",
        "--duration",
        "60s",
        "--concurrency",
        "4",
        "--quiet",
    ]);
    let b = ixn_bench::sql_baseline(POSTGRES, &a)
        .await
        .expect("the baseline runs");
    assert_eq!((b.completed, b.errors, b.clients), (200, 0, 4));
    assert!(b.throughput_per_s > 0.0);
    assert_eq!(b.latency_ms.count, 200);
    let (client, conn) = tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(conn);
    let left = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = $1",
            &[&format!("ixn_bench_baseline_{}", std::process::id())],
        )
        .await
        .expect("query");
    assert_eq!(left.get::<_, i64>(0), 0, "the baseline's table was dropped");
    drop(client);
    let _ = driver.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_run_on_postgresql_loses_nothing() {
    let Some(binary) = ixn_binary() else {
        return missing("the ixn binary is not built (cargo build -p ixn)");
    };
    if !postgres_reachable().await {
        return missing("PostgreSQL is not reachable at 127.0.0.1:5432");
    }
    // The router inside the server (`route-in-process`), then as its own process.
    for separate in [false, true] {
        let mut given = vec![
            "lifecycle",
            "--store",
            POSTGRES,
            "--count",
            "100",
            "--duration",
            "60s",
            "--drain",
            "20s",
            "--concurrency",
            "4",
            "--agents",
            "2",
            "--quiet",
            "--binary",
            binary.to_str().expect("utf-8 path"),
        ];
        if separate {
            given.push("--separate-router");
        }
        let report = ixn_bench::run(&args(&given)).await.expect("the bench runs");
        assert_eq!(report.store, "postgresql");
        assert_eq!(
            (report.completed, report.lost, report.unanswered),
            (100, 0, 0),
            "separate router: {separate}; {:?}",
            report.error_samples
        );
        assert_eq!(
            report.router_cpu_percent.is_some(),
            separate,
            "a router process exactly when asked for one"
        );
    }
}
