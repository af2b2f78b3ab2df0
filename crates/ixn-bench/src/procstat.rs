//! CPU time and resident memory of a process, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux). Elsewhere, or when the process is gone, readings are `None`.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux
/// architecture the project builds for).
const TICKS_PER_S: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    pub at: Instant,
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size now.
    pub rss_bytes: u64,
    /// Peak resident set size.
    pub peak_rss_bytes: u64,
}

/// Reads the process now.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let cpu_s = cpu_seconds(&stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        at,
        cpu_s,
        rss_bytes: status_kib(&status, "VmRSS:")? * 1024,
        peak_rss_bytes: status_kib(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// CPU used between two readings, in percent of one core.
pub fn cpu_percent(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (to.cpu_s - from.cpu_s) / wall
}

/// utime + stime (fields 14 and 15); the command name (field 2) may hold spaces, so fields are
/// counted after its closing parenthesis.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14 → index 11.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "42 (ixn serve) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0 1 0 0";
        assert_eq!(super::cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn parses_status() {
        let status = "Name:\tixn\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(super::status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(super::status_kib(status, "VmHWM:"), Some(2048));
        assert_eq!(super::status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let s = super::sample(std::process::id()).expect("own /proc entry");
            assert!(s.rss_bytes > 0);
        }
    }
}
