//! The results: one JSON document (`--json FILE`) and a markdown table on standard output.
//! Field names are part of the bench's interface (scripts compare runs): `scenario`,
//! `completed`, `errors`, `lost`, `throughput_per_s`, `latency_ms` {p50, p99, p999},
//! `server_rss_bytes`, and with the SQL baseline `baseline` {`throughput_per_s`, `latency_ms`}
//! and `ratio`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::Sample;

/// Percentiles of a latency histogram in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    /// One-minute load average when the run started (other work on the machine).
    pub load_average: Option<f64>,
}

impl Machine {
    pub fn current() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        let memory_kib = meminfo.as_deref().and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        });
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: memory_kib.map(|k| k * 1024),
            load_average,
        }
    }
}

/// The SQL baseline's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub clients: usize,
    pub completed: u64,
    pub errors: u64,
    pub throughput_per_s: f64,
    /// One lifecycle (four statements).
    pub latency_ms: Percentiles,
}

/// Start-up figures (`restart`, `memory`).
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// Interactions in the store when the server started.
    pub stored: u64,
    /// Spawn → `/health/ready`.
    pub ready_s: f64,
    /// Spawn → every stored interaction visible in the queue depths.
    pub serving_s: f64,
}

/// Everything one `ixn bench` run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub store: String,
    pub date: String,
    pub machine: Machine,
    pub command: String,
    /// `closed` (fixed lifecycles in flight) or `open` (fixed rate), or `none`.
    pub mode: String,
    pub concurrency: Option<usize>,
    pub offered_rate_per_s: Option<f64>,
    pub duration_s: f64,
    pub completed: u64,
    pub errors: u64,
    /// Acknowledged submits whose lifecycle never completed (after the drain).
    pub lost: u64,
    /// Submits never answered.
    pub unanswered: u64,
    /// Preloaded interactions the agents also handled.
    pub background_completed: u64,
    pub throughput_per_s: f64,
    /// Submit → invite (DESIGN P2), from the intended send time in open loop.
    pub latency_ms: Percentiles,
    /// Submit → acknowledged (one durable commit), from the same start.
    pub ack_latency_ms: Percentiles,
    /// Submit → stop acknowledged (the whole lifecycle).
    pub lifecycle_ms: Percentiles,
    pub server_rss_bytes: Option<u64>,
    pub server_peak_rss_bytes: Option<u64>,
    /// Percent of one core, averaged over the load.
    pub server_cpu_percent: Option<f64>,
    pub router_cpu_percent: Option<f64>,
    pub bench_cpu_percent: Option<f64>,
    /// `latency`: the closed-loop maximum the rate was derived from.
    pub calibrated_max_per_s: Option<f64>,
    pub preloaded: Option<u64>,
    pub preload_s: Option<f64>,
    pub startup: Option<Startup>,
    pub baseline: Option<Baseline>,
    /// ixn throughput / baseline throughput.
    pub ratio: Option<f64>,
    pub error_samples: Vec<String>,
    pub samples: Vec<Sample>,
}

impl Report {
    /// The results as a markdown table (with the baseline side by side when it ran).
    pub fn markdown(&self) -> String {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut row = |k: &str, v: String, b: String| rows.push((k.to_owned(), v, b));
        let none = String::new;
        let mode = match (self.concurrency, self.offered_rate_per_s) {
            (_, Some(r)) => format!("open loop, {r:.0}/s offered"),
            (Some(c), None) => format!("closed loop, {c} in flight"),
            _ => "no load".into(),
        };
        let base = self.baseline.as_ref();
        row(
            "load",
            mode,
            base.map_or_else(none, |b| format!("closed loop, {} clients", b.clients)),
        );
        if self.mode != "none" {
            row(
                "completed lifecycles",
                self.completed.to_string(),
                base.map_or_else(none, |b| b.completed.to_string()),
            );
            row(
                "throughput",
                format!("{:.0}/s", self.throughput_per_s),
                base.map_or_else(none, |b| format!("{:.0}/s", b.throughput_per_s)),
            );
            row(
                "submit → acknowledged p50 / p99 / p99.9",
                triple(&self.ack_latency_ms),
                String::new(),
            );
            row(
                "submit → invite p50 / p99 / p99.9",
                triple(&self.latency_ms),
                String::new(),
            );
            row(
                "lifecycle p50 / p99 / p99.9",
                triple(&self.lifecycle_ms),
                base.map_or_else(none, |b| triple(&b.latency_ms)),
            );
            row(
                "errors / lost / unanswered",
                format!("{} / {} / {}", self.errors, self.lost, self.unanswered),
                base.map_or_else(none, |b| b.errors.to_string()),
            );
            if self.background_completed > 0 {
                row(
                    "preloaded also handled",
                    self.background_completed.to_string(),
                    none(),
                );
            }
        }
        if let Some(s) = &self.startup {
            row("stored interactions", s.stored.to_string(), none());
            row("spawn → ready", format!("{:.2} s", s.ready_s), none());
            row(
                "spawn → all interactions served",
                format!("{:.2} s", s.serving_s),
                none(),
            );
        }
        if let Some(rss) = self.server_rss_bytes {
            row("server resident memory", mib(rss), none());
        }
        let pct = |p: Option<f64>| p.map_or_else(String::new, |p| format!("{p:.0} %"));
        if self.server_cpu_percent.is_some() {
            let cpu = match self.router_cpu_percent {
                Some(r) => format!("{} (router {})", pct(self.server_cpu_percent), pct(Some(r))),
                None => pct(self.server_cpu_percent),
            };
            row("server CPU (of one core)", cpu, none());
            row("bench CPU (of one core)", pct(self.bench_cpu_percent), none());
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n### ixn bench {} ({}) — {}, {} cores\n",
            self.scenario, self.store, self.date, self.machine.cores
        );
        if base.is_some() {
            let _ = writeln!(out, "| | ixn | SQL baseline |\n|---|---|---|");
            for (k, v, b) in &rows {
                let _ = writeln!(out, "| {k} | {v} | {b} |");
            }
        } else {
            let _ = writeln!(out, "| | ixn |\n|---|---|");
            for (k, v, _) in &rows {
                let _ = writeln!(out, "| {k} | {v} |");
            }
        }
        if let Some(r) = self.ratio {
            let _ = writeln!(out, "\nratio ixn / baseline: **{r:.2}×**");
        }
        for e in &self.error_samples {
            let _ = writeln!(out, "\nerror: {e}");
        }
        out
    }
}

fn triple(p: &Percentiles) -> String {
    if p.count == 0 {
        return "–".into();
    }
    format!("{:.2} / {:.2} / {:.2} ms", p.p50, p.p99, p.p999)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = crate::tracker::histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).expect("in range");
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((4.9..5.1).contains(&p.p50), "{}", p.p50);
        assert!((9.8..10.1).contains(&p.p99), "{}", p.p99);
        assert_eq!(Percentiles::of(&crate::tracker::histogram()).count, 0);
    }
}
