//! KPI counters (the product family's `collect-request-counters`, `collect-error-counters`,
//! `collect-esp-error-counters`): requests received per request name, error answers per error
//! name, ESP errors per request type. Lock-free, fixed-size, shared by all sessions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ixn_config::Settings;
use ixn_protocol::{ErrorCode, KpiCounters, Request};

#[derive(Debug)]
pub(crate) struct Kpi {
    collect_requests: AtomicBool,
    collect_errors: AtomicBool,
    collect_esp_errors: AtomicBool,
    requests: Vec<AtomicU64>,
    errors: Vec<AtomicU64>,
    esp_errors: Vec<AtomicU64>,
}

impl Kpi {
    pub fn new(settings: &Settings) -> Kpi {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        let kpi = Kpi {
            collect_requests: AtomicBool::new(false),
            collect_errors: AtomicBool::new(false),
            collect_esp_errors: AtomicBool::new(false),
            requests: zeros(Request::NAMES.len()),
            errors: zeros(ErrorCode::ALL.len()),
            esp_errors: zeros(Request::NAMES.len()),
        };
        kpi.configure(settings);
        kpi
    }

    /// Switches collection on or off (hot-applied with the configuration).
    pub fn configure(&self, s: &Settings) {
        self.collect_requests
            .store(s.collect_request_counters, Ordering::Relaxed);
        self.collect_errors
            .store(s.collect_error_counters, Ordering::Relaxed);
        self.collect_esp_errors
            .store(s.collect_esp_error_counters, Ordering::Relaxed);
    }

    pub fn request(&self, name: &'static str) {
        metrics::counter!("ixn_requests_total", "request" => name).increment(1);
        if self.collect_requests.load(Ordering::Relaxed)
            && let Some(i) = Request::NAMES.iter().position(|n| *n == name)
        {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn error(&self, code: ErrorCode) {
        metrics::counter!("ixn_errors_total", "error" => code.name()).increment(1);
        if self.collect_errors.load(Ordering::Relaxed)
            && let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code)
        {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counted when an ESP request fails (the ESP relay reports here).
    pub fn esp_error(&self, request: &'static str) {
        if self.collect_esp_errors.load(Ordering::Relaxed)
            && let Some(i) = Request::NAMES.iter().position(|n| *n == request)
        {
            self.esp_errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> KpiCounters {
        let collect = |on: &AtomicBool, names: &mut dyn Iterator<Item = &str>, values: &[AtomicU64]| {
            on.load(Ordering::Relaxed).then(|| {
                names
                    .zip(values)
                    .map(|(n, v)| (n.to_owned(), v.load(Ordering::Relaxed)))
                    .filter(|(_, v)| *v > 0)
                    .collect::<BTreeMap<_, _>>()
            })
        };
        KpiCounters {
            requests: collect(
                &self.collect_requests,
                &mut Request::NAMES.iter().copied(),
                &self.requests,
            ),
            errors: collect(
                &self.collect_errors,
                &mut ErrorCode::ALL.iter().map(|c| c.name()),
                &self.errors,
            ),
            esp_errors: collect(
                &self.collect_esp_errors,
                &mut Request::NAMES.iter().copied(),
                &self.esp_errors,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_when_switched_on() {
        let mut s = Settings::default();
        let kpi = Kpi::new(&s);
        kpi.request("RequestSubmit");
        assert_eq!(kpi.snapshot(), KpiCounters::default());
        s.collect_request_counters = true;
        s.collect_error_counters = true;
        kpi.configure(&s);
        kpi.request("RequestSubmit");
        kpi.request("RequestSubmit");
        kpi.error(ErrorCode::UnknownView);
        let snap = kpi.snapshot();
        assert_eq!(snap.requests.unwrap().get("RequestSubmit"), Some(&2));
        assert_eq!(snap.errors.unwrap().get("unknown_view"), Some(&1));
        assert!(snap.esp_errors.is_none());
    }
}
