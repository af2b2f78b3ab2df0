//! Applying load for one phase: closed loop (a fixed number of lifecycles in flight, the next
//! submitted when one ends: the maximum rate) or open loop (submits at intended times
//! `t0 + i / rate`, never waiting for answers, latency counted from the intended time so a slow
//! server cannot hide its queueing: no coordinated omission). Once a second a sampler records
//! throughput, latency, and the server's CPU and memory, and moves the progress bar.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::oneshot;

use crate::fleet::Fleet;
use crate::procstat::{self, ProcSample};
use crate::tracker::Outcome;

/// How long a closed-loop slot waits for its lifecycle before starting another.
const SLOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Sampling period of the time series.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// How the load is shaped.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// When the load stops.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub duration: Duration,
    /// Stop after this many submits (before `duration` if it comes first).
    pub count: Option<u64>,
    pub drain: Duration,
}

/// One point of the time series.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub completed_per_s: f64,
    pub invite_p50_ms: Option<f64>,
    pub invite_p99_ms: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_bytes: Option<u64>,
}

/// What one phase measured.
#[derive(Debug)]
pub struct Phase {
    pub outcome: Outcome,
    /// From the first submit to the last completion (or the end of the load).
    pub elapsed: Duration,
    pub samples: Vec<Sample>,
    /// Server CPU over the phase, percent of one core.
    pub server_cpu_percent: Option<f64>,
    pub router_cpu_percent: Option<f64>,
    /// The bench's own CPU over the phase (it shares the machine).
    pub bench_cpu_percent: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    pub server_peak_rss_bytes: Option<u64>,
}

impl Phase {
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.outcome.rec.completed as f64 / secs
        } else {
            0.0
        }
    }
}

/// Process ids whose CPU and memory the phase reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watched {
    pub server: Option<u32>,
    pub router: Option<u32>,
}

/// Runs one phase and waits (up to the drain time) for its lifecycles to end.
pub async fn run(
    fleet: &Arc<Fleet>,
    mode: Mode,
    limit: Limit,
    watched: Watched,
    label: &str,
    quiet: bool,
) -> Phase {
    fleet.tracker().reset();
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let bar = progress(label, limit.duration, quiet);
    let first = Readings::take(watched);
    let t0 = Instant::now();
    let drivers = match mode {
        Mode::Closed { concurrency } => (0..concurrency.max(1))
            .map(|_| {
                tokio::spawn(closed_slot(
                    fleet.clone(),
                    stop.clone(),
                    issued.clone(),
                    limit.count,
                ))
            })
            .collect(),
        Mode::Open { rate } => vec![tokio::spawn(open_loop(
            fleet.clone(),
            stop.clone(),
            issued.clone(),
            rate,
            limit.count,
        ))],
    };
    let mut samples = Vec::new();
    let mut last = first;
    let load_end = t0 + limit.duration;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::from_std(t0 + SAMPLE_EVERY), SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let now = Readings::take(watched);
        samples.push(sample(fleet, t0, &last, &now));
        last = now;
        if let (Some(bar), Some(s)) = (&bar, samples.last()) {
            bar.set_position(t0.elapsed().as_secs().min(limit.duration.as_secs()));
            bar.set_message(format!(
                "{:.0}/s  p99 {:.2} ms  in flight {}",
                s.completed_per_s,
                s.invite_p99_ms.unwrap_or(0.0),
                fleet.tracker().in_flight()
            ));
        }
        let counted_out = limit.count.is_some_and(|c| issued.load(Ordering::Relaxed) >= c);
        if Instant::now() >= load_end || counted_out {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let load_elapsed = t0.elapsed();
    // Closed-loop slots end when their lifecycle does; the drain bounds the wait either way.
    let drain_end = Instant::now() + limit.drain;
    while fleet.tracker().in_flight() > 0 && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end = Readings::take(watched);
    let outcome = fleet.tracker().finish();
    for d in drivers {
        let _ = d.await;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // Lifecycles started near the end complete during the drain: count until the last one.
    let elapsed = outcome
        .rec
        .last_completion
        .map_or(load_elapsed, |at| at.saturating_duration_since(t0));
    Phase {
        elapsed,
        samples,
        server_cpu_percent: cpu(first.server, end.server),
        router_cpu_percent: cpu(first.router, end.router),
        bench_cpu_percent: cpu(first.bench, end.bench),
        server_rss_bytes: end.server.map(|s| s.rss_bytes),
        server_peak_rss_bytes: end.server.map(|s| s.peak_rss_bytes),
        outcome,
    }
}

async fn closed_slot(fleet: Arc<Fleet>, stop: Arc<AtomicBool>, issued: Arc<AtomicU64>, count: Option<u64>) {
    while !stop.load(Ordering::Relaxed) {
        if count.is_some_and(|c| issued.fetch_add(1, Ordering::Relaxed) >= c) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        fleet.submit(Instant::now(), Some(tx));
        let _ = tokio::time::timeout(SLOT_TIMEOUT, rx).await;
    }
}

async fn open_loop(
    fleet: Arc<Fleet>,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicU64>,
    rate: f64,
    count: Option<u64>,
) {
    // Paced by a thread of its own: Tokio's timers fire on whole milliseconds, which would send
    // each submit up to a millisecond after its intended time and count that lateness as the
    // server's latency. A thread's sleep ends within tens of microseconds.
    let runtime = tokio::runtime::Handle::current();
    let pacer = tokio::task::spawn_blocking(move || {
        let _in_runtime = runtime.enter();
        let rate = rate.max(0.001);
        let t0 = Instant::now();
        let mut n: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let due = (t0.elapsed().as_secs_f64() * rate) as u64 + 1;
            let due = count.map_or(due, |c| due.min(c));
            while n < due {
                fleet.submit(t0 + Duration::from_secs_f64(n as f64 / rate), None);
                n += 1;
                issued.store(n, Ordering::Relaxed);
            }
            if count.is_some_and(|c| n >= c) {
                return;
            }
            let next = t0 + Duration::from_secs_f64(n as f64 / rate);
            // Bounded, so a stop is noticed even at a very low rate.
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
    });
    let _ = pacer.await;
}

/// CPU and memory readings of the watched processes and of the bench itself.
#[derive(Clone, Copy, Debug)]
struct Readings {
    server: Option<ProcSample>,
    router: Option<ProcSample>,
    bench: Option<ProcSample>,
}

impl Readings {
    fn take(w: Watched) -> Readings {
        Readings {
            server: w.server.and_then(procstat::sample),
            router: w.router.and_then(procstat::sample),
            bench: procstat::sample(std::process::id()),
        }
    }
}

fn cpu(from: Option<ProcSample>, to: Option<ProcSample>) -> Option<f64> {
    Some(procstat::cpu_percent(&from?, &to?))
}

fn sample(fleet: &Fleet, t0: Instant, last: &Readings, now: &Readings) -> Sample {
    let (completed, p50, p99) = fleet.tracker().inspect(|rec| {
        let h = &mut rec.interval_invite;
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
        };
        let out = (rec.interval_completed, q(h, 0.5), q(h, 0.99));
        h.reset();
        rec.interval_completed = 0;
        out
    });
    let secs = match (last.bench, now.bench) {
        (Some(a), Some(b)) => b.at.duration_since(a.at).as_secs_f64(),
        _ => SAMPLE_EVERY.as_secs_f64(),
    };
    Sample {
        t_s: t0.elapsed().as_secs_f64(),
        completed_per_s: completed as f64 / secs.max(0.001),
        invite_p50_ms: p50,
        invite_p99_ms: p99,
        server_cpu_percent: cpu(last.server, now.server),
        server_rss_bytes: now.server.map(|s| s.rss_bytes),
    }
}

fn progress(label: &str, duration: Duration, quiet: bool) -> Option<ProgressBar> {
    if quiet {
        return None;
    }
    let bar = ProgressBar::new(duration.as_secs().max(1));
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} s  {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    Some(bar)
}
