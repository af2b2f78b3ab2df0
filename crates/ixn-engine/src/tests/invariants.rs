//! The engine's invariants, checked against a recount from scratch: every derived structure
//! (view indexes, memberships, queue counts, workbin contents, the scheduled set, view in-flight
//! counts) equals what the live interactions alone imply. Also a fingerprint of the whole
//! observable state, to show that a failed request changed nothing.

use std::collections::{BTreeMap, BTreeSet};

use ixn_model::condition::SortKey;
use ixn_model::{Interaction, InteractionState, Name, Timestamp};

use crate::Engine;
use crate::live::{Counted, Slot};
use crate::views::ORDER_REFERENCE;

/// (tenant, workbin, owner) → (placed at, submit seq, slot), as `ViewIndexes::workbins` holds it.
type Workbins = BTreeMap<(Name, Name, Name), BTreeSet<(Timestamp, u64, Slot)>>;

fn in_flight(s: InteractionState) -> bool {
    matches!(
        s,
        InteractionState::Routing | InteractionState::Delivering | InteractionState::Handling
    )
}

/// Whether a view may select `ix` at `now` (before its condition is applied).
pub(crate) fn pullable(ix: &Interaction, now: Timestamp) -> bool {
    ix.state == InteractionState::Queued
        && ix.workbin.is_none()
        && ix.queue.is_some()
        && !ix.is_locked
        && !ix.is_held
        && ix.scheduled_at.is_none_or(|t| t <= now)
}

/// Everything a client could observe, plus the counters a failed request must not move.
#[derive(Debug, PartialEq)]
pub(crate) struct Fingerprint {
    interactions: BTreeMap<String, Interaction>,
    views: Vec<(BTreeSet<(SortKey, Slot)>, u32)>,
    queue_counts: BTreeMap<(Name, Name), (u64, u64)>,
    workbins: BTreeMap<(Name, Name, Name), Vec<Slot>>,
    next_submit_seq: u64,
    next_event_seq: u64,
    snapshots: BTreeMap<u64, (u64, usize)>,
    next_snapshot_id: u64,
    pending: (usize, usize, usize),
    next_deadline: Option<Timestamp>,
}

impl Engine {
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            interactions: self
                .live
                .iter()
                .map(|(_, ix)| (ix.id.to_string(), ix.clone()))
                .collect(),
            views: self
                .views
                .views
                .iter()
                .map(|v| (v.index.clone(), v.in_flight))
                .collect(),
            queue_counts: self
                .views
                .queue_counts
                .iter()
                .map(|(k, c)| (k.clone(), (c.waiting, c.in_progress)))
                .collect(),
            workbins: self
                .views
                .workbins
                .iter()
                .map(|(k, set)| (k.clone(), set.iter().map(|(_, _, s)| *s).collect()))
                .collect(),
            next_submit_seq: self.next_submit_seq,
            next_event_seq: self.next_event_seq,
            snapshots: self
                .snapshots
                .iter()
                .map(|(id, s)| (*id, (s.owner, s.ids.len())))
                .collect(),
            next_snapshot_id: self.next_snapshot_id,
            pending: (
                self.dirty.len(),
                self.stopped_rows.len(),
                self.pending_events.len(),
            ),
            next_deadline: self.next_deadline(),
        }
    }

    /// Panics with a precise message when any derived structure differs from a recount.
    /// `now` is the time of the last request or tick (scheduled interactions due by then must
    /// have been released).
    pub(crate) fn check_invariants(&self, now: Timestamp) {
        let mut expected_views: Vec<BTreeSet<(SortKey, Slot)>> =
            vec![BTreeSet::new(); self.process.views.len()];
        let mut expected_in_flight = vec![0u32; self.process.views.len()];
        let mut counts: BTreeMap<(Name, Name), (u64, u64)> = BTreeMap::new();
        let mut workbins = Workbins::new();
        let mut earliest_scheduled: Option<Timestamp> = None;
        let mut live = 0;
        for slot in self.live.slots() {
            live += 1;
            let Some(entry) = self.live.entry(slot) else {
                panic!("slot {slot} listed but empty")
            };
            let ix = &entry.ix;
            assert_eq!(
                self.live.slot_of(&ix.id),
                Some(slot),
                "{}: id map points elsewhere",
                ix.id
            );
            assert!(!ix.state.is_terminal(), "{}: stopped but still live", ix.id);
            // Exactly one place: waiting in a queue, in a workbin, or held by a router or agent.
            let places = [
                ix.state == InteractionState::Queued && ix.workbin.is_none() && ix.queue.is_some(),
                ix.state == InteractionState::Queued && ix.workbin.is_some(),
                in_flight(ix.state) && ix.assigned_to.is_some(),
            ];
            assert_eq!(
                places.iter().filter(|p| **p).count(),
                1,
                "{}: in {places:?} places",
                ix.id
            );
            // Queue counts.
            let counted = match (&ix.queue, ix.state) {
                (Some(_), InteractionState::Queued) if ix.workbin.is_none() => Some(Counted::Waiting),
                (Some(_), s) if in_flight(s) => Some(Counted::InProgress),
                _ => None,
            };
            assert_eq!(
                entry.counted, counted,
                "{}: counted as {:?}",
                ix.id, entry.counted
            );
            if let (Some(q), Some(c)) = (&ix.queue, counted) {
                let e = counts.entry((ix.tenant.clone(), q.clone())).or_default();
                match c {
                    Counted::Waiting => e.0 += 1,
                    Counted::InProgress => e.1 += 1,
                }
            }
            // Workbins.
            let in_workbin = ix.state == InteractionState::Queued && ix.workbin.is_some();
            assert_eq!(entry.in_workbin, in_workbin, "{}: in_workbin flag", ix.id);
            if let (true, Some(w)) = (in_workbin, &ix.workbin) {
                let placed = ix.placed_in_queue_at.unwrap_or(ix.submitted_at);
                workbins
                    .entry((ix.tenant.clone(), w.name.clone(), w.owner.clone()))
                    .or_default()
                    .insert((placed, ix.submit_seq, slot));
            }
            // View in-flight counts.
            if entry.in_flight_counted {
                let v = entry
                    .in_flight_view
                    .unwrap_or_else(|| panic!("{}: counted in flight, no view", ix.id));
                assert!(
                    in_flight(ix.state),
                    "{}: counted in flight while {}",
                    ix.id,
                    ix.state
                );
                expected_in_flight[v as usize] += 1;
            }
            // Views and the scheduled set.
            let waits = pullable(ix, Timestamp(i64::MAX)) && ix.scheduled_at.is_some_and(|t| t > now);
            assert_eq!(
                entry.scheduled, waits,
                "{}: scheduled flag (scheduled_at {:?})",
                ix.id, ix.scheduled_at
            );
            if let (true, Some(at)) = (waits, ix.scheduled_at) {
                earliest_scheduled = Some(earliest_scheduled.map_or(at, |e| e.min(at)));
            }
            let mut expected_memberships = Vec::new();
            if pullable(ix, now) {
                for (v, def) in self.process.views.iter().enumerate() {
                    let same_queue = def.tenant == ix.tenant && ix.queue.as_ref() == Some(&def.queue);
                    if same_queue && (def.time_dependent || def.condition.eval(ix, now)) {
                        let key = def.order.sort_key(ix, ORDER_REFERENCE);
                        expected_views[v].insert((key.clone(), slot));
                        expected_memberships.push(v as u16);
                    }
                }
            }
            let mut memberships = entry.memberships.to_vec();
            memberships.sort();
            expected_memberships.sort();
            assert_eq!(memberships, expected_memberships, "{}: view memberships", ix.id);
        }
        assert_eq!(self.live.len(), live, "id map size vs live entries");
        for (v, view) in self.views.views.iter().enumerate() {
            assert!(
                view.index == expected_views[v],
                "view {v} index: {} entries, expected {}",
                view.index.len(),
                expected_views[v].len()
            );
            assert_eq!(view.in_flight, expected_in_flight[v], "view {v} in-flight count");
        }
        let actual_counts: BTreeMap<_, _> = self
            .views
            .queue_counts
            .iter()
            .filter(|(_, c)| c.waiting + c.in_progress > 0)
            .map(|(k, c)| (k.clone(), (c.waiting, c.in_progress)))
            .collect();
        assert_eq!(actual_counts, counts, "queue counts (waiting, in_progress)");
        let actual_workbins: BTreeMap<_, _> = self
            .views
            .workbins
            .iter()
            .map(|(k, set)| (k.clone(), set.clone()))
            .collect();
        assert_eq!(actual_workbins, workbins, "workbin contents");
        assert_eq!(
            self.views.next_scheduled(),
            earliest_scheduled,
            "earliest scheduled interaction"
        );
        self.check_delivery_invariants();
    }

    /// Delivery state derived from interactions is exact: every interaction in routing,
    /// delivering or handling has exactly one state timer for its state, every held one is
    /// counted in its holder's load, and no agent is over capacity.
    fn check_delivery_invariants(&self) {
        use ixn_model::InteractionState as S;
        let mut expected_timers = BTreeMap::new();
        for (_, ix) in self.live.iter() {
            if matches!(ix.state, S::Routing | S::Delivering | S::Handling) {
                expected_timers.insert(ix.id.to_string(), ix.state);
            }
            if matches!(ix.state, S::Delivering | S::Handling)
                && let Some(holder) = &ix.assigned_to
            {
                let held = self
                    .agents
                    .holding(&(ix.tenant.clone(), holder.clone()))
                    .is_some_and(|h| h.ids.contains(&ix.id));
                assert!(held, "{} is not counted in {holder}'s load", ix.id);
            }
        }
        let actual: BTreeMap<_, _> = self
            .delivery
            .state_timer
            .iter()
            .map(|(id, (key, s))| {
                assert!(
                    self.delivery.timers.contains_key(key),
                    "state timer of {id} is not scheduled"
                );
                (id.to_string(), *s)
            })
            .collect();
        assert_eq!(actual, expected_timers, "state timers");
        if let Err(problem) = self.check_agents() {
            panic!("{problem}");
        }
    }
}
