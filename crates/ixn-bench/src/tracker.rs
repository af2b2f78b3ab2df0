//! What happened to every lifecycle the load started: when it was meant to start, whether its
//! submit was acknowledged, when its invite arrived, when its stop was acknowledged. Latencies go
//! into HdrHistograms (whole run and the current one-second interval); whatever is still pending
//! after the drain is lost (acknowledged) or unanswered.
//!
//! Interactions are matched by their `external_id` (`bench-<seq>`), which the invite carries, so
//! the invite may arrive before the submit's acknowledgement is read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::oneshot;

/// Prefix of the external ids of the load's interactions.
const EXTERNAL_PREFIX: &str = "bench-";
/// Error messages kept for the report.
const KEPT_ERRORS: usize = 5;

/// The external id of lifecycle `seq`.
pub fn external_id(seq: u64) -> String {
    format!("{EXTERNAL_PREFIX}{seq}")
}

fn seq_of(external_id: Option<&str>) -> Option<u64> {
    external_id?.strip_prefix(EXTERNAL_PREFIX)?.parse().ok()
}

/// A latency histogram in microseconds, up to an hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds hdrhistogram accepts")
}

#[derive(Debug)]
struct Pending {
    /// Intended start (open loop) or send time (closed loop).
    start: Instant,
    acked: bool,
    invited: bool,
    /// The closed-loop slot waiting for this lifecycle to end.
    waiter: Option<oneshot::Sender<()>>,
}

/// Counts and histograms of one phase.
#[derive(Debug)]
pub struct Recorder {
    pub submitted: u64,
    pub completed: u64,
    /// Failed requests of any kind (a failed accept is retried by the router's next invite).
    pub errors: u64,
    /// Lifecycles of preloaded interactions the agents also completed.
    pub background_completed: u64,
    pub last_completion: Option<Instant>,
    /// Submit → acknowledged (durable), µs.
    pub ack: Histogram<u64>,
    /// Submit → invite, µs.
    pub invite: Histogram<u64>,
    /// Submit → stop acknowledged, µs.
    pub lifecycle: Histogram<u64>,
    pub interval_invite: Histogram<u64>,
    pub interval_completed: u64,
    pub error_samples: Vec<String>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            submitted: 0,
            completed: 0,
            errors: 0,
            background_completed: 0,
            last_completion: None,
            ack: histogram(),
            invite: histogram(),
            lifecycle: histogram(),
            interval_invite: histogram(),
            interval_completed: 0,
            error_samples: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct State {
    pending: HashMap<u64, Pending>,
    next_seq: u64,
    rec: Recorder,
}

/// Shared by the media servers, the agents and the sampler.
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
}

/// What was left when a phase ended.
#[derive(Debug)]
pub struct Outcome {
    pub rec: Recorder,
    /// Acknowledged but never completed.
    pub lost: u64,
    /// Never answered.
    pub unanswered: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: Mutex::new(State {
                pending: HashMap::new(),
                next_seq: 1,
                rec: Recorder::new(),
            }),
        }
    }
}

impl Tracker {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panicking holder cannot leave the counters inconsistent enough to matter here.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Starts a new phase: fresh counters and histograms (sequence numbers keep growing).
    pub fn reset(&self) {
        self.with(|s| {
            s.pending.clear();
            s.rec = Recorder::new();
        });
    }

    /// Registers a lifecycle about to be submitted; returns its sequence number.
    pub fn begin(&self, start: Instant, waiter: Option<oneshot::Sender<()>>) -> u64 {
        self.with(|s| {
            let seq = s.next_seq;
            s.next_seq += 1;
            s.rec.submitted += 1;
            s.pending.insert(
                seq,
                Pending {
                    start,
                    acked: false,
                    invited: false,
                    waiter,
                },
            );
            seq
        })
    }

    /// The submit was acknowledged.
    pub fn acked(&self, seq: u64, at: Instant) {
        self.with(|s| {
            if let Some(p) = s.pending.get_mut(&seq) {
                p.acked = true;
                let us = micros(at.saturating_duration_since(p.start));
                s.rec.ack.saturating_record(us);
            }
        });
    }

    /// The submit failed: the lifecycle ends here as an error.
    pub fn submit_failed(&self, seq: u64, message: String) {
        self.with(|s| {
            note_error(&mut s.rec, message);
            if let Some(p) = s.pending.remove(&seq)
                && let Some(w) = p.waiter
            {
                let _ = w.send(());
            }
        });
    }

    /// Any other request failed (the lifecycle may still complete).
    pub fn error(&self, message: String) {
        self.with(|s| note_error(&mut s.rec, message));
    }

    /// An agent got the invite of the interaction with this external id.
    pub fn invited(&self, external_id: Option<&str>, at: Instant) {
        let Some(seq) = seq_of(external_id) else { return };
        self.with(|s| {
            if let Some(p) = s.pending.get_mut(&seq)
                && !p.invited
            {
                p.invited = true;
                let us = micros(at.saturating_duration_since(p.start));
                s.rec.invite.saturating_record(us);
                s.rec.interval_invite.saturating_record(us);
            }
        });
    }

    /// An agent's stop was acknowledged.
    pub fn completed(&self, external_id: Option<&str>, at: Instant) {
        self.with(|s| {
            let Some(p) = seq_of(external_id).and_then(|seq| s.pending.remove(&seq)) else {
                if external_id.is_none() {
                    s.rec.background_completed += 1;
                }
                return;
            };
            s.rec.completed += 1;
            s.rec.interval_completed += 1;
            s.rec.last_completion = Some(at);
            s.rec
                .lifecycle
                .saturating_record(micros(at.saturating_duration_since(p.start)));
            if let Some(w) = p.waiter {
                let _ = w.send(());
            }
        });
    }

    /// Lifecycles started and not finished.
    pub fn in_flight(&self) -> usize {
        self.with(|s| s.pending.len())
    }

    /// Calls `f` with the recorder (for the sampler, which resets the interval figures).
    pub fn inspect<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> R {
        self.with(|s| f(&mut s.rec))
    }

    /// Ends the phase: everything still pending is lost or unanswered.
    pub fn finish(&self) -> Outcome {
        self.with(|s| {
            let lost = s.pending.values().filter(|p| p.acked).count() as u64;
            let unanswered = s.pending.len() as u64 - lost;
            // Name a few, with how far they got, so they can be looked up on the server.
            let mut named: Vec<(u64, bool)> = s
                .pending
                .iter()
                .filter(|(_, p)| p.acked)
                .map(|(seq, p)| (*seq, p.invited))
                .collect();
            named.sort_unstable();
            for (seq, invited) in named.into_iter().take(KEPT_ERRORS) {
                let at = if invited {
                    "invited, never stopped"
                } else {
                    "never invited"
                };
                s.rec
                    .error_samples
                    .push(format!("not completed: external id {} ({at})", external_id(seq)));
            }
            for (_, p) in s.pending.drain() {
                if let Some(w) = p.waiter {
                    let _ = w.send(());
                }
            }
            Outcome {
                rec: std::mem::replace(&mut s.rec, Recorder::new()),
                lost,
                unanswered,
            }
        })
    }
}

fn note_error(rec: &mut Recorder, message: String) {
    rec.errors += 1;
    if rec.error_samples.len() < KEPT_ERRORS {
        rec.error_samples.push(message);
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_lifecycle_is_counted_once_whatever_the_order() {
        let t = Tracker::default();
        let t0 = Instant::now();
        let seq = t.begin(t0, None);
        let id = external_id(seq);
        // The invite overtakes the submit's acknowledgement.
        t.invited(Some(&id), t0 + Duration::from_millis(2));
        t.invited(Some(&id), t0 + Duration::from_millis(9));
        t.acked(seq, t0 + Duration::from_millis(4));
        t.completed(Some(&id), t0 + Duration::from_millis(5));
        t.completed(Some(&id), t0 + Duration::from_millis(6));
        t.completed(None, t0);
        let out = t.finish();
        assert_eq!(
            (
                out.rec.completed,
                out.rec.background_completed,
                out.lost,
                out.unanswered
            ),
            (1, 1, 0, 0)
        );
        assert_eq!(out.rec.invite.len(), 1);
        assert!(out.rec.invite.max() < 3_000);
        assert_eq!(out.rec.ack.len(), 1);
        assert!((3_900..4_100).contains(&out.rec.ack.max()));
    }

    #[test]
    fn pending_lifecycles_are_lost_or_unanswered() {
        let t = Tracker::default();
        let now = Instant::now();
        let acked = t.begin(now, None);
        t.acked(acked, now);
        let _unanswered = t.begin(now, None);
        let failed = t.begin(now, None);
        t.submit_failed(failed, "refused".into());
        let out = t.finish();
        assert_eq!((out.lost, out.unanswered, out.rec.errors), (1, 1, 1));
        assert_eq!(
            out.rec.error_samples,
            vec![
                "refused".to_owned(),
                format!(
                    "not completed: external id {} (never invited)",
                    external_id(acked)
                )
            ]
        );
    }

    #[test]
    fn a_closed_loop_slot_is_released() {
        let t = Tracker::default();
        let (tx, mut rx) = oneshot::channel();
        let seq = t.begin(Instant::now(), Some(tx));
        assert!(rx.try_recv().is_err());
        t.completed(Some(&external_id(seq)), Instant::now());
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn foreign_external_ids_are_ignored() {
        for id in ["other-1", "bench-x", "bench-"] {
            assert_eq!(seq_of(Some(id)), None, "{id}");
        }
        assert_eq!(seq_of(Some("bench-42")), Some(42));
    }
}
