//! Per-view ordered indexes and the queue/workbin bookkeeping derived from each interaction.
//!
//! Every pullable interaction (queued in a queue, unlocked, not held, due) sits in the ordered
//! index of each view of its queue whose condition it matches, keyed by the view's order clause
//! (ties by submit sequence). A pull takes the first entries of one index: O(log n) per pulled
//! interaction whatever the backlog in that queue or any other. Conditions that depend on time
//! (`_time_in_queue`, `_age`) cannot be pre-evaluated: such views index every pullable
//! interaction of their queue and evaluate the condition at pull time.
//!
//! Invariant: `index` and `unindex` are exact inverses; every change to an interaction is
//! `unindex` → change → `index`, so derived state never drifts.

use std::collections::{BTreeSet, HashMap};

use ixn_model::condition::SortKey;
use ixn_model::{InteractionState, Name, Timestamp};

use crate::live::{Counted, LiveSet, Slot};
use crate::process::ProcessIndex;

/// Reference time for sort keys. Orders on `_time_in_queue` or `_age` must compare interactions
/// placed at different times consistently; evaluating every key against the same (far-future)
/// instant keeps their relative order, which is all an index needs.
pub(crate) const ORDER_REFERENCE: Timestamp = Timestamp(i64::MAX / 4);

/// How many index entries one pull may skip (frozen, or failing a time-dependent condition)
/// before it gives up and answers with what it found.
const MAX_SKIPPED_PER_PULL: usize = 10_000;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QueueCounts {
    pub waiting: u64,
    pub in_progress: u64,
}

#[derive(Debug)]
pub(crate) struct ViewState {
    pub index: BTreeSet<(SortKey, Slot)>,
    /// Interactions this view may not select before the given time (freeze interval).
    pub frozen: HashMap<Slot, Timestamp>,
    /// Interactions pulled through this view and not yet back or stopped.
    pub in_flight: u32,
}

/// (tenant, workbin, owner) → content in placement order (placed at, submit seq).
pub(crate) type WorkbinContents = HashMap<(Name, Name, Name), BTreeSet<(Timestamp, u64, Slot)>>;

#[derive(Debug)]
pub(crate) struct ViewIndexes {
    pub views: Vec<ViewState>,
    /// (tenant, queue) → views of that queue.
    by_queue: HashMap<(Name, Name), Vec<u16>>,
    pub queue_counts: HashMap<(Name, Name), QueueCounts>,
    pub workbins: WorkbinContents,
    scheduled: BTreeSet<(Timestamp, Slot)>,
}

fn in_flight(state: InteractionState) -> bool {
    matches!(
        state,
        InteractionState::Routing | InteractionState::Delivering | InteractionState::Handling
    )
}

impl ViewIndexes {
    pub fn new(process: &ProcessIndex) -> ViewIndexes {
        let mut by_queue: HashMap<(Name, Name), Vec<u16>> = HashMap::new();
        let mut views = Vec::with_capacity(process.views.len());
        for (i, v) in process.views.iter().enumerate() {
            by_queue
                .entry((v.tenant.clone(), v.queue.clone()))
                .or_default()
                .push(i as u16);
            views.push(ViewState {
                index: BTreeSet::new(),
                frozen: HashMap::new(),
                in_flight: 0,
            });
        }
        ViewIndexes {
            views,
            by_queue,
            queue_counts: HashMap::new(),
            workbins: HashMap::new(),
            scheduled: BTreeSet::new(),
        }
    }

    /// Derives every index entry and count of one interaction from its current state.
    pub fn index(&mut self, process: &ProcessIndex, live: &mut LiveSet, slot: Slot, now: Timestamp) {
        let Some(entry) = live.entry_mut(slot) else { return };
        let ix = &entry.ix;
        let queue_key = ix.queue.as_ref().map(|q| (ix.tenant.clone(), q.clone()));
        // Queue counts.
        entry.counted = match (&queue_key, ix.state) {
            (Some(_), InteractionState::Queued) if ix.workbin.is_none() => Some(Counted::Waiting),
            (Some(_), s) if in_flight(s) => Some(Counted::InProgress),
            _ => None,
        };
        if let (Some(key), Some(c)) = (&queue_key, entry.counted) {
            let counts = self.queue_counts.entry(key.clone()).or_default();
            match c {
                Counted::Waiting => counts.waiting += 1,
                Counted::InProgress => counts.in_progress += 1,
            }
        }
        // View in-flight limits.
        match entry.in_flight_view {
            Some(v) if in_flight(ix.state) && (v as usize) < self.views.len() => {
                self.views[v as usize].in_flight += 1;
                entry.in_flight_counted = true;
            }
            _ => {
                entry.in_flight_view = None;
                entry.in_flight_counted = false;
            }
        }
        // Workbins.
        if let (InteractionState::Queued, Some(w)) = (ix.state, &ix.workbin) {
            let placed = ix.placed_in_queue_at.unwrap_or(ix.submitted_at);
            self.workbins
                .entry((ix.tenant.clone(), w.name.clone(), w.owner.clone()))
                .or_default()
                .insert((placed, ix.submit_seq, slot));
            entry.in_workbin = true;
        }
        // Views.
        let pullable =
            ix.state == InteractionState::Queued && ix.workbin.is_none() && !ix.is_locked && !ix.is_held;
        let Some(key) = queue_key.filter(|_| pullable) else {
            return;
        };
        if let Some(at) = ix.scheduled_at.filter(|t| *t > now) {
            self.scheduled.insert((at, slot));
            entry.scheduled = true;
            return;
        }
        let Some(view_ids) = self.by_queue.get(&key) else {
            return;
        };
        for &v in view_ids {
            let def = &process.views[v as usize];
            if def.time_dependent || def.condition.eval(ix, now) {
                let sort_key = def.order.sort_key(ix, ORDER_REFERENCE);
                self.views[v as usize].index.insert((sort_key, slot));
                entry.memberships.push(v);
            }
        }
    }

    /// Removes everything [`ViewIndexes::index`] derived for one interaction. Returns whether
    /// that made room under an in-flight limit that was reached (a pull held by the limit is
    /// worth retrying).
    pub fn unindex(&mut self, process: &ProcessIndex, live: &mut LiveSet, slot: Slot) -> bool {
        let Some(entry) = live.entry_mut(slot) else {
            return false;
        };
        let mut freed = false;
        let ix = &entry.ix;
        if let (Some(c), Some(q)) = (entry.counted.take(), &ix.queue)
            && let Some(counts) = self.queue_counts.get_mut(&(ix.tenant.clone(), q.clone()))
        {
            match c {
                Counted::Waiting => counts.waiting = counts.waiting.saturating_sub(1),
                Counted::InProgress => counts.in_progress = counts.in_progress.saturating_sub(1),
            }
        }
        if entry.in_flight_counted {
            if let Some(v) = entry.in_flight_view {
                let cap = process
                    .views
                    .get(v as usize)
                    .map_or(u32::MAX, |d| d.in_flight_cap);
                if let Some(view) = self.views.get_mut(v as usize) {
                    freed = view.in_flight >= cap;
                    view.in_flight = view.in_flight.saturating_sub(1);
                }
            }
            entry.in_flight_counted = false;
        }
        if std::mem::take(&mut entry.in_workbin)
            && let Some(w) = &ix.workbin
        {
            let key = (ix.tenant.clone(), w.name.clone(), w.owner.clone());
            if let Some(set) = self.workbins.get_mut(&key) {
                let placed = ix.placed_in_queue_at.unwrap_or(ix.submitted_at);
                set.remove(&(placed, ix.submit_seq, slot));
                if set.is_empty() {
                    self.workbins.remove(&key);
                }
            }
        }
        if std::mem::take(&mut entry.scheduled)
            && let Some(at) = ix.scheduled_at
        {
            self.scheduled.remove(&(at, slot));
        }
        // The key is recomputed: it depends only on the interaction (unchanged since it was
        // indexed) and the fixed reference time, so it equals the key inserted.
        for v in entry.memberships.drain(..) {
            if let (Some(view), Some(def)) = (self.views.get_mut(v as usize), process.views.get(v as usize)) {
                view.index
                    .remove(&(def.order.sort_key(ix, ORDER_REFERENCE), slot));
                view.frozen.remove(&slot);
            }
        }
        freed
    }

    /// Hides an indexed interaction from view `v` until `until` (freeze-interval).
    pub fn freeze(&mut self, v: u16, slot: Slot, until: Timestamp) {
        if let Some(view) = self.views.get_mut(v as usize) {
            view.frozen.insert(slot, until);
        }
    }

    /// Up to `count` slots a pull through view `v` takes now, in the view's order.
    pub fn candidates(
        &mut self,
        process: &ProcessIndex,
        live: &LiveSet,
        v: u16,
        count: usize,
        now: Timestamp,
    ) -> Vec<Slot> {
        let def = &process.views[v as usize];
        let view = &mut self.views[v as usize];
        view.frozen.retain(|_, until| *until > now);
        let mut out = Vec::with_capacity(count.min(64));
        let mut skipped = 0;
        for (_, slot) in &view.index {
            if out.len() >= count || skipped > MAX_SKIPPED_PER_PULL {
                break;
            }
            if view.frozen.contains_key(slot) {
                skipped += 1;
                continue;
            }
            let Some(ix) = live.get(*slot) else { continue };
            if def.time_dependent && !def.condition.eval(ix, now) {
                skipped += 1;
                continue;
            }
            out.push(*slot);
        }
        out
    }

    /// Makes scheduled interactions whose time has come visible to their views.
    pub fn release_scheduled(&mut self, process: &ProcessIndex, live: &mut LiveSet, now: Timestamp) {
        while let Some(&(at, slot)) = self.scheduled.first() {
            if at > now {
                break;
            }
            self.unindex(process, live, slot);
            self.index(process, live, slot, now);
        }
    }

    pub fn next_scheduled(&self) -> Option<Timestamp> {
        self.scheduled.first().map(|(t, _)| *t)
    }

    pub fn counts(&self, tenant: &Name, queue: &Name) -> QueueCounts {
        self.queue_counts
            .get(&(tenant.clone(), queue.clone()))
            .copied()
            .unwrap_or_default()
    }
}
