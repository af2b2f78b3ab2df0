//! The scenarios of DESIGN §11 as sequences of steps: prepare the server (and preload its
//! store), start it, connect the simulated clients, apply load for one or two phases, stop
//! everything, and fill in the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::args::{BenchArgs, Scenario};
use crate::fill::{self, Backlog};
use crate::fleet::{AgentBehaviour, Fleet, Payload};
use crate::load::{self, Limit, Mode, Phase, Watched};
use crate::report::{Machine, Percentiles, Report, Startup};
use crate::target::{PARKED_QUEUE, Target};

/// Priority of the load's interactions: above preloaded ones (0), so a routed backlog waits
/// behind the load instead of in front of it.
const LOAD_PRIORITY: i64 = 5;
/// Time given to a freshly loaded server before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let mut target = Target::prepare(args)?;
    let result = match args.scenario {
        Scenario::Lifecycle | Scenario::Latency | Scenario::Backlog => under_load(args, &mut target).await,
        Scenario::Memory | Scenario::Restart => at_rest(args, &mut target).await,
    };
    let result = result.map_err(|e| {
        let logs = target.logs();
        if logs.is_empty() { e } else { e.context(logs) }
    });
    target.shutdown().await;
    result
}

/// `lifecycle`, `latency`, `backlog`.
async fn under_load(args: &BenchArgs, target: &mut Target) -> anyhow::Result<Report> {
    let mut report = empty_report(args, target);
    if args.scenario == Scenario::Backlog {
        let backlogs = [
            backlog(PARKED_QUEUE, args.parked, args),
            backlog(&args.queue, args.waiting, args),
        ];
        preload(target, &backlogs, args, &mut report).await?;
    }
    target.start().await?;
    if args.scenario == Scenario::Backlog {
        target.wait_for_depth(PARKED_QUEUE, args.parked).await?;
    }
    let behaviour = AgentBehaviour {
        accept_delay: args.accept_delay,
        handling_time: args.handling_time,
    };
    let payload = Payload {
        queue: args.queue.clone(),
        media_type: args.media_type.clone(),
        priority: LOAD_PRIORITY,
        user_data: fill::padded_user_data(args.user_data_bytes),
    };
    let fleet = Fleet::connect(target, args.media_servers, args.agents, behaviour, payload).await?;
    let fleet = Arc::new(fleet);
    let watched = Watched {
        server: target.server_pid(),
        router: target.router_pid(),
    };
    let limit = Limit {
        duration: args.duration,
        count: args.count,
        drain: args.drain,
    };
    let mode = match (args.scenario, args.rate) {
        (_, Some(rate)) => Mode::Open { rate },
        (Scenario::Latency, None) => {
            let calibration = Limit {
                duration: args.calibrate,
                count: None,
                drain: args.drain,
            };
            let closed = Mode::Closed {
                concurrency: args.concurrency,
            };
            let max = load::run(&fleet, closed, calibration, watched, "max rate", args.quiet).await;
            let max_rate = max.throughput();
            report.calibrated_max_per_s = Some(max_rate);
            if max_rate <= 0.0 {
                bail!(
                    "the calibration completed no lifecycle: {:?}",
                    max.outcome.rec.error_samples
                );
            }
            Mode::Open { rate: max_rate / 2.0 }
        }
        _ => Mode::Closed {
            concurrency: args.concurrency,
        },
    };
    let phase = load::run(&fleet, mode, limit, watched, args.scenario.name(), args.quiet).await;
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.close().await;
    }
    fill_load(&mut report, mode, &phase);
    Ok(report)
}

/// `memory` and `restart`: no load; the server starts on a preloaded store.
async fn at_rest(args: &BenchArgs, target: &mut Target) -> anyhow::Result<Report> {
    if !target.is_own() {
        bail!(
            "{} needs a server the bench starts itself (no --target)",
            args.scenario.name()
        );
    }
    let mut report = empty_report(args, target);
    let stored = args.interactions;
    preload(target, &[backlog(&args.queue, stored, args)], args, &mut report).await?;
    let mut startup = start_and_serve(target, &args.queue, stored).await?;
    if args.scenario == Scenario::Restart {
        // Measured again after a crash: the store is what SIGKILL left.
        target.kill().await;
        startup = start_and_serve(target, &args.queue, stored).await?;
    }
    tokio::time::sleep(SETTLE).await;
    let sample = target.sample();
    report.server_rss_bytes = sample.map(|s| s.rss_bytes);
    report.server_peak_rss_bytes = sample.map(|s| s.peak_rss_bytes);
    report.startup = Some(startup);
    Ok(report)
}

async fn start_and_serve(target: &mut Target, queue: &str, stored: u64) -> anyhow::Result<Startup> {
    let started = Instant::now();
    let ready = target.start().await?;
    target.wait_for_depth(queue, stored).await?;
    Ok(Startup {
        stored,
        ready_s: ready.as_secs_f64(),
        serving_s: started.elapsed().as_secs_f64(),
    })
}

fn backlog(queue: &str, count: u64, args: &BenchArgs) -> Backlog {
    Backlog {
        queue: queue.to_owned(),
        media_type: args.media_type.clone(),
        count,
        priority: 0,
    }
}

async fn preload(
    target: &Target,
    backlogs: &[Backlog],
    args: &BenchArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let url = target
        .store_url
        .as_deref()
        .context("preloading needs a server the bench starts itself (no --target)")?;
    let total: u64 = backlogs.iter().map(|b| b.count).sum();
    if !args.quiet {
        eprintln!(
            "preloading {total} interactions into the {} store…",
            target.store_label
        );
    }
    let secs = fill::fill(url, backlogs, args.user_data_bytes).await?;
    report.preloaded = Some(total);
    report.preload_s = Some(secs);
    Ok(())
}

fn empty_report(args: &BenchArgs, target: &Target) -> Report {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Report {
        scenario: args.scenario.name().into(),
        store: target.store_label.clone(),
        date: ixn_model::Timestamp(now).to_string(),
        machine: Machine::current(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        mode: "none".into(),
        concurrency: None,
        offered_rate_per_s: None,
        duration_s: 0.0,
        completed: 0,
        errors: 0,
        lost: 0,
        unanswered: 0,
        background_completed: 0,
        throughput_per_s: 0.0,
        latency_ms: Percentiles::default(),
        ack_latency_ms: Percentiles::default(),
        lifecycle_ms: Percentiles::default(),
        server_rss_bytes: None,
        server_peak_rss_bytes: None,
        server_cpu_percent: None,
        router_cpu_percent: None,
        bench_cpu_percent: None,
        calibrated_max_per_s: None,
        preloaded: None,
        preload_s: None,
        startup: None,
        baseline: None,
        ratio: None,
        error_samples: Vec::new(),
        samples: Vec::new(),
    }
}

fn fill_load(report: &mut Report, mode: Mode, phase: &Phase) {
    match mode {
        Mode::Closed { concurrency } => {
            report.mode = "closed".into();
            report.concurrency = Some(concurrency);
        }
        Mode::Open { rate } => {
            report.mode = "open".into();
            report.offered_rate_per_s = Some(rate);
        }
    }
    let rec = &phase.outcome.rec;
    report.duration_s = phase.elapsed.as_secs_f64();
    report.completed = rec.completed;
    report.errors = rec.errors;
    report.lost = phase.outcome.lost;
    report.unanswered = phase.outcome.unanswered;
    report.background_completed = rec.background_completed;
    report.throughput_per_s = phase.throughput();
    report.latency_ms = Percentiles::of(&rec.invite);
    report.ack_latency_ms = Percentiles::of(&rec.ack);
    report.lifecycle_ms = Percentiles::of(&rec.lifecycle);
    report.server_rss_bytes = phase.server_rss_bytes;
    report.server_peak_rss_bytes = phase.server_peak_rss_bytes;
    report.server_cpu_percent = phase.server_cpu_percent;
    report.router_cpu_percent = phase.router_cpu_percent;
    report.bench_cpu_percent = phase.bench_cpu_percent;
    report.error_samples = rec.error_samples.clone();
    report.samples = phase.samples.clone();
}
