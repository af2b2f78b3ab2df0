//! The command line of `ixn bench`: the scenario, where the server is, how the load is shaped,
//! and where the results go. Durations are written `30s`, `500ms`, `2m` or `1h`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Which measurement to run (DESIGN §11).
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Scenario {
    /// P1: submit → router pull → invite → accept → stop, durable; closed loop at maximum rate
    /// unless `--rate` is given.
    Lifecycle,
    /// P2: submit → invite latency, open loop at half the measured maximum (or `--rate`).
    Latency,
    /// P3: the lifecycle with `--parked` interactions in another queue and `--waiting` in the
    /// routed one, preloaded into the store before the server starts.
    Backlog,
    /// P4: resident memory of the server holding `--interactions` queued interactions.
    Memory,
    /// P5: time from start to ready (and to serving every interaction) with `--interactions`
    /// stored.
    Restart,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Lifecycle => "lifecycle",
            Scenario::Latency => "latency",
            Scenario::Backlog => "backlog",
            Scenario::Memory => "memory",
            Scenario::Restart => "restart",
        }
    }
}

/// `ixn bench SCENARIO [OPTIONS]`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Drive a running server at this URL instead of starting one (needs the application
    /// names and keys below).
    #[arg(long)]
    pub target: Option<String>,
    /// Store of the server the bench starts: `sqlite` (a temporary data directory, `ixn serve`)
    /// or a PostgreSQL URL (a fresh schema of that database, dropped at the end; `ixn server`
    /// with its router in process, or `ixn router` beside it with `--separate-router`).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// PostgreSQL: run the router as its own process (`ixn router`, over WebSocket) instead of
    /// inside the server (`[server] route-in-process`).
    #[arg(long)]
    pub separate_router: bool,
    /// The `ixn` binary to start (default: the running executable).
    #[arg(long)]
    pub binary: Option<PathBuf>,

    /// How long to apply load (after calibration, if any).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub duration: Duration,
    /// Stop after this many submitted lifecycles instead of after `--duration`.
    #[arg(long)]
    pub count: Option<u64>,
    /// Open loop at this many lifecycles per second (latency measured from each intended send
    /// time). Without it: closed loop at maximum rate (`latency`: half the measured maximum).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: lifecycles in flight at once (also the SQL baseline's clients).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Media-server connections submitting.
    #[arg(long, default_value_t = 4)]
    pub media_servers: usize,
    /// Agent desktops (one connection each, agent ids `bench-agent-N`).
    #[arg(long, default_value_t = 32)]
    pub agents: usize,
    /// Chats each agent may handle at once.
    #[arg(long, default_value_t = 4)]
    pub capacity: u32,
    /// Delay between an invite and the agent's accept.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub accept_delay: Duration,
    /// Time an agent handles an interaction before stopping it.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub handling_time: Duration,
    /// Encoded size of each submitted interaction's user data.
    #[arg(long, default_value_t = 256)]
    pub user_data_bytes: usize,
    /// After the load stops, how long to wait for lifecycles still in flight.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain: Duration,
    /// `latency`: length of the closed-loop run measuring the maximum rate.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub calibrate: Duration,

    /// `backlog`: interactions parked in another queue.
    #[arg(long, default_value_t = 1_000_000)]
    pub parked: u64,
    /// `backlog`: interactions waiting in the routed queue (lower priority than the load's).
    #[arg(long, default_value_t = 100_000)]
    pub waiting: u64,
    /// `memory` and `restart`: queued interactions held or stored.
    #[arg(long, default_value_t = 1_000_000)]
    pub interactions: u64,

    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw throughput and latency over time into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Also run the SQL baseline (one PostgreSQL table) with the same concurrency and duration,
    /// and report the ratio.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub vs_sql_baseline: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,

    /// `--target`: process id of the server, for its CPU and resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// `--target`: media-server application.
    #[arg(long, env = "IXN_BENCH_MEDIA_APP", default_value = "bench-media")]
    pub media_app: String,
    #[arg(long, env = "IXN_BENCH_MEDIA_KEY", hide_env_values = true)]
    pub media_key: Option<String>,
    /// `--target`: agent-desktop application.
    #[arg(long, env = "IXN_BENCH_DESKTOP_APP", default_value = "bench-desktop")]
    pub desktop_app: String,
    #[arg(long, env = "IXN_BENCH_DESKTOP_KEY", hide_env_values = true)]
    pub desktop_key: Option<String>,
    /// `--target`: queue the load submits to (routed by the strategy its submitter names).
    #[arg(long, default_value = "inbound")]
    pub queue: String,
    /// Media type of the load (agents log in with it).
    #[arg(long, default_value = "chat")]
    pub media_type: String,
}

/// Parses `250ms`, `30s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        let cases = [
            ("30s", Some(Duration::from_secs(30))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("7", Some(Duration::from_secs(7))),
            ("5 days", None),
            ("s", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), want, "{text}");
        }
    }
}
