//! The in-memory window of one logger: events of committed batches, handed over by the server
//! right after each commit, so a logger that keeps up never reads the outbox back from disk.
//!
//! The window is bounded by `max-queue-size`. When a push would exceed it, the events are not
//! kept here; they are already durable in the outbox, and the logger reads them from there once
//! it notices the gap. Nothing is ever discarded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ixn_store::OutboxEvent;
use tokio::sync::Notify;

/// One logger's window.
#[derive(Debug)]
pub(crate) struct Window {
    state: Mutex<State>,
    /// Wakes the logger when events arrive.
    pub(crate) arrived: Notify,
    max_events: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Committed batches in order, shared between the windows of all loggers.
    chunks: VecDeque<Arc<[OutboxEvent]>>,
    /// Events in `chunks`.
    len: usize,
    /// Highest sequence committed so far (kept or not).
    last_seq: u64,
}

impl Window {
    pub(crate) fn new(max_events: usize, last_seq: u64) -> Window {
        Window {
            state: Mutex::new(State {
                last_seq,
                ..State::default()
            }),
            arrived: Notify::new(),
            max_events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Adds the events of one committed batch (in sequence order).
    pub(crate) fn push(&self, chunk: &Arc<[OutboxEvent]>) {
        let Some(last) = chunk.last() else { return };
        {
            let mut s = self.lock();
            s.last_seq = s.last_seq.max(last.seq);
            if s.len + chunk.len() <= self.max_events {
                s.len += chunk.len();
                s.chunks.push_back(chunk.clone());
            } else {
                metrics::counter!("ixn_logger_window_overflows_total").increment(1);
            }
        }
        self.arrived.notify_one();
    }

    /// Highest committed sequence.
    pub(crate) fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Up to `limit` events starting exactly at `from`, dropping older ones. Empty when the
    /// window does not start at `from` (the logger then reads the outbox).
    pub(crate) fn take_from(&self, from: u64, limit: usize) -> Vec<OutboxEvent> {
        let mut s = self.lock();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(front) = s.chunks.front().cloned() else {
                break;
            };
            let skip = front.iter().take_while(|e| e.seq < from).count();
            if skip == front.len() {
                s.chunks.pop_front();
                s.len -= front.len();
                continue;
            }
            let next = from + out.len() as u64;
            if front[skip].seq != next {
                break;
            }
            let take = (front.len() - skip).min(limit - out.len());
            out.extend(front[skip..skip + take].iter().cloned());
            if skip + take == front.len() {
                s.chunks.pop_front();
                s.len -= front.len();
            } else {
                // Keep the rest of this chunk; the next call skips what was taken.
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ixn_model::Timestamp;

    fn chunk(seqs: std::ops::RangeInclusive<u64>) -> Arc<[OutboxEvent]> {
        seqs.map(|seq| OutboxEvent {
            seq,
            time: Timestamp(0),
            name: "EventHeld".into(),
            interaction_id: None,
            payload: String::new(),
        })
        .collect()
    }

    fn seqs(v: &[OutboxEvent]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn takes_in_order_across_chunks_and_partially() {
        let w = Window::new(100, 0);
        w.push(&chunk(1..=3));
        w.push(&chunk(4..=6));
        assert_eq!(seqs(&w.take_from(1, 4)), [1, 2, 3, 4]);
        assert_eq!(seqs(&w.take_from(5, 10)), [5, 6]);
        assert!(w.take_from(7, 10).is_empty());
        assert_eq!(w.last_seq(), 6);
    }

    #[test]
    fn overflow_keeps_last_seq_and_leaves_a_gap() {
        let w = Window::new(4, 0);
        w.push(&chunk(1..=3));
        w.push(&chunk(4..=6)); // over the limit: not kept
        assert_eq!(w.last_seq(), 6);
        assert_eq!(seqs(&w.take_from(1, 10)), [1, 2, 3]);
        w.push(&chunk(7..=8));
        // 4..=6 must come from the outbox: the window does not start at 4.
        assert!(w.take_from(4, 10).is_empty());
        assert_eq!(seqs(&w.take_from(7, 10)), [7, 8]);
    }
}
