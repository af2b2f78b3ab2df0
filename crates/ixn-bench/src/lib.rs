//! `ixn bench`: the load generator. It starts its own all-in-one server as a child process (or
//! targets a running one), drives it over the real protocol with simulated media servers and
//! agent desktops while the server's own router routes, and reports throughput, latency
//! percentiles (HdrHistogram, no coordinated omission in open loop), the server's CPU and
//! memory, and — with `--vs-sql-baseline` — the same lifecycle done the SQL-table way, side by
//! side, with the ratio.
//!
//! It uses only the public protocol and the store's public API (to preload a store before the
//! server starts); it never reaches into a running server.

mod args;
mod baseline;
mod fill;
mod fleet;
mod load;
mod plot;
pub mod procstat;
mod report;
mod scenarios;
mod target;
mod tracker;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;

pub use args::{BenchArgs, Scenario, parse_duration};
pub use report::{Baseline, Machine, Percentiles, Report, Startup};

/// Runs the scenario (and the SQL baseline, with `--vs-sql-baseline`) and returns its report,
/// printing nothing.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let mut report = scenarios::run(args).await?;
    if let Some(url) = &args.vs_sql_baseline {
        let b = sql_baseline(url, args).await?;
        report.ratio = (b.throughput_per_s > 0.0).then(|| report.throughput_per_s / b.throughput_per_s);
        report.baseline = Some(b);
    }
    Ok(report)
}

/// The SQL baseline alone, on PostgreSQL at `url`, with the arguments' concurrency, duration or
/// count, and user-data size as its property blob.
pub async fn sql_baseline(url: &str, args: &BenchArgs) -> anyhow::Result<Baseline> {
    let b = baseline::run(
        url,
        args.concurrency,
        args.duration,
        args.count,
        args.user_data_bytes,
        args.quiet,
    )
    .await?;
    Ok(Baseline {
        clients: b.clients,
        completed: b.completed,
        errors: b.errors,
        throughput_per_s: b.throughput(),
        latency_ms: Percentiles::of(&b.lifecycle),
    })
}

/// `ixn bench`: runs, prints the markdown table, writes `--json` and `--plot`. Fails (exit
/// status 1) when any acknowledged lifecycle was lost or any submit went unanswered.
pub async fn main(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let report = run(&args).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", report.markdown())?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = format!("ixn bench {} ({}) {}", report.scenario, report.store, report.date);
        std::fs::write(path, plot::svg(&title, &report.samples))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.lost > 0 || report.unanswered > 0 {
        writeln!(
            out,
            "FAILED: {} acknowledged lifecycles lost, {} submits unanswered",
            report.lost, report.unanswered
        )?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
