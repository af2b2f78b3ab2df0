//! The interaction server core: every live interaction in memory, per-view ordered indexes, and
//! the handling of every interaction request as a synchronous function of
//! (state, client, request, now).
//!
//! The engine is owned by one task (the server's core actor); nothing here is shared or locked.
//! A request either fails with a [`ProtocolError`] and changes nothing, or succeeds and records
//! its effects: changed interactions (collected with [`Engine::take_batch`] for the store),
//! reporting events (same batch, same transaction) and notifications for other clients.
//! The caller acknowledges the request only after that batch is durable.
//!
//! Architecture invariant: no I/O, no clocks, no async. Time comes in as a parameter, so every
//! behaviour, timers included, is testable without sleeping. The engine knows application and
//! agent *names*; which connection they use is the server's business.

mod agents;
mod delivery;
mod effects;
mod esp;
mod handlers;
mod live;
mod process;
mod queries;
mod views;

use std::collections::HashMap;

use ixn_config::{BusinessProcess, Settings};
use ixn_model::{ClientKind, IdGenerator, Interaction, InteractionId, Name, Timestamp};
use ixn_protocol::{ProtocolError, ReportingEvent, Request, ServerMessage};

pub use delivery::HANDLING_TIMEOUT_KEY;
pub use effects::{Notify, Output};
pub use live::Interner;
use live::LiveSet;
use process::ProcessIndex;
pub use queries::{Snapshot, find_window};
use views::ViewIndexes;

/// Who sent a request, as the engine needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCtx {
    /// Connection id (unique per server run); snapshots belong to it.
    pub client_id: u64,
    pub application: Name,
    pub kind: ClientKind,
    pub tenant: Name,
    /// Agent id for desktops (the application name when none was given).
    pub agent: Option<Name>,
}

impl ClientCtx {
    /// The name this client holds interactions under (`assigned_to`).
    pub fn holder_name(&self) -> Name {
        match (&self.agent, self.kind) {
            (Some(agent), ClientKind::AgentDesktop) => agent.clone(),
            _ => self.application.clone(),
        }
    }
}

/// Rows and events to write in the next group commit.
#[derive(Debug, Default)]
pub struct Batch {
    /// Numbers batches in the order they are taken (from 1); see [`Engine::release_after`].
    pub number: u64,
    /// Current rows of every interaction changed since the last batch (stopped ones included).
    pub interactions: Vec<Interaction>,
    pub events: Vec<ReportingEvent>,
    pub meta: Vec<(String, String)>,
}

/// The in-memory interaction server.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    process: ProcessIndex,
    live: LiveSet,
    views: ViewIndexes,
    ids: IdGenerator,
    next_submit_seq: u64,
    next_event_seq: u64,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot_id: u64,
    /// Interactions changed since the last batch, by id (stopped ones are in `stopped_rows`).
    dirty: Vec<InteractionId>,
    stopped_rows: Vec<Interaction>,
    pending_events: Vec<ReportingEvent>,
    submit_seq_dirty: bool,
    /// Ids stopped recently, oldest first: a stopped row may still be on its way to the store,
    /// where the server's duplicate check cannot see it yet.
    recently_stopped: RecentIds,
    agents: agents::Agents,
    delivery: delivery::Delivery,
    /// Notifications produced by hooks and timers, moved to the caller's [`Output`].
    notes: Vec<(Notify, ServerMessage)>,
    /// Agents that may have gained capacity (announced to routers with EventAgentAvailable).
    touched_agents: Vec<agents::Key>,
    /// Changes whenever an interaction becomes pullable (held pulls retry when it moves).
    work_epoch: u64,
    /// The time of the request or tick being handled.
    now_hint: Timestamp,
    /// The number the next [`Engine::take_batch`] gives its batch: changes made now belong to it.
    open_batch: u64,
    /// Set while a request's changes need not be durable before its answer (taking into
    /// routing, offering to an agent).
    volatile: bool,
    /// The latest batch the request being handled depends on (while `volatile`).
    depends_on: u64,
    /// What [`Engine::release_after`] reports for the last request handled.
    release: Option<u64>,
    /// The row to write for an interaction changed durably in the batch being collected and
    /// then volatilely (taken into routing or offered by a router told of it at once): its state
    /// before the volatile change, so that no row ever holds one.
    volatile_base: HashMap<InteractionId, Interaction>,
}

impl Engine {
    /// An empty engine for a business process. `next_event_seq` continues the store's outbox.
    pub fn new(process: &BusinessProcess, settings: Settings, node_id: u16, last_event_seq: u64) -> Engine {
        let process_def = process;
        let process = ProcessIndex::build(process);
        let views = ViewIndexes::new(&process);
        Engine {
            settings,
            process,
            live: LiveSet::default(),
            views,
            ids: IdGenerator::new(node_id),
            next_submit_seq: 1,
            next_event_seq: last_event_seq + 1,
            snapshots: HashMap::new(),
            next_snapshot_id: 1,
            dirty: Vec::new(),
            stopped_rows: Vec::new(),
            pending_events: Vec::new(),
            submit_seq_dirty: false,
            recently_stopped: RecentIds::default(),
            agents: agents::Agents::new(process_def),
            delivery: delivery::Delivery::default(),
            notes: Vec::new(),
            touched_agents: Vec::new(),
            work_epoch: 0,
            now_hint: Timestamp::from_millis(0),
            open_batch: 1,
            volatile: false,
            depends_on: 0,
            release: None,
            volatile_base: HashMap::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Adds one interaction read from the store at startup (not written back).
    pub fn load(&mut self, ix: Interaction, now: Timestamp) {
        if ix.state.is_terminal() {
            return;
        }
        self.next_submit_seq = self.next_submit_seq.max(ix.submit_seq + 1);
        self.ids.observe(ix.submitted_at);
        let slot = self.live.insert(ix);
        self.index_slot(slot, now);
    }

    /// Continues generated ids after the last one ever issued (`id_clock` in store meta), so a
    /// restart never reissues an id, even one of an interaction already stopped.
    pub fn observe_id_clock(&mut self, last: Timestamp) {
        self.ids.observe(last);
    }

    /// Continues submit sequence numbers after the highest ever given (kept in store meta).
    pub fn set_next_submit_seq(&mut self, next: u64) {
        self.next_submit_seq = self.next_submit_seq.max(next);
    }

    /// Makes room for `additional` interactions about to be loaded (saves rehashing at startup).
    pub fn reserve(&mut self, additional: usize) {
        self.live.reserve(additional);
    }

    /// Number of live (not stopped) interactions.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Handles one request. On error nothing has changed.
    pub fn handle(
        &mut self,
        client: &ClientCtx,
        reference_id: u64,
        request: Request,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<ServerMessage, ProtocolError> {
        self.now_hint = now;
        self.volatile = false;
        self.depends_on = 0;
        let touched = handlers::interaction_of(&request).map(str::to_owned);
        let result = handlers::handle(self, client, reference_id, request, now, out);
        self.release = (result.is_ok() && self.volatile).then_some(self.depends_on);
        self.volatile = false;
        if result.is_ok()
            && client.kind == ClientKind::AgentDesktop
            && let Some(id) = touched.and_then(|t| InteractionId::parse(&t).ok())
            && self
                .live
                .get_by_id(&id)
                .is_some_and(|ix| ix.assigned_to.as_ref() == Some(&client.holder_name()))
        {
            self.touch_handling(&id, now);
        }
        self.flush_notes(out);
        result
    }

    /// Moves hook and timer notifications to `out`, and announces agents that gained capacity.
    fn flush_notes(&mut self, out: &mut Output) {
        for key in std::mem::take(&mut self.touched_agents) {
            let media = self.agents.available_media(&key);
            if !media.is_empty() {
                self.notes.push((
                    Notify::Routers {
                        tenant: key.0.clone(),
                    },
                    ServerMessage::EventAgentAvailable {
                        agent: key.1.to_string(),
                        media_types: media,
                    },
                ));
            }
        }
        out.notifications.append(&mut self.notes);
    }

    /// Changes whenever an interaction becomes pullable; a held pull is worth retrying when it
    /// differs from the value seen when the pull was held.
    pub fn work_epoch(&self) -> u64 {
        self.work_epoch
    }

    /// State, load and reasons of the logged-in agents of a tenant (all tenants when `None`).
    pub fn agent_views(&self, tenant: Option<&str>) -> Vec<ixn_protocol::AgentView> {
        let mut v: Vec<_> = self
            .agents
            .agents
            .values()
            .filter(|a| tenant.is_none_or(|t| *a.tenant == *t))
            .map(|a| self.agents.view(a))
            .collect();
        v.sort_by(|a, b| (&a.tenant, &a.agent_id).cmp(&(&b.tenant, &b.agent_id)));
        v
    }

    /// Checks the delivery invariants (for tests): no agent over capacity.
    pub fn check_agents(&self) -> Result<(), String> {
        match self
            .agents
            .over_capacity()
            .or_else(|| self.agents.index_problem())
        {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Replaces the business process and settings atomically (already validated).
    pub fn apply_process(&mut self, process: &BusinessProcess, settings: Settings, now: Timestamp) {
        self.settings = settings;
        self.agents.configure(process);
        let old_process = std::mem::replace(&mut self.process, ProcessIndex::build(process));
        self.views = ViewIndexes::new(&self.process);
        let slots: Vec<_> = self.live.slots().collect();
        for slot in slots {
            // Derived state of the old process goes; in-flight view limits follow views by name.
            if let Some(entry) = self.live.entry_mut(slot) {
                let view_name = entry
                    .in_flight_view
                    .and_then(|v| old_process.views.get(v as usize))
                    .map(|v| v.name.clone());
                entry.in_flight_view =
                    view_name.and_then(|name| self.process.view_id(&entry.ix.tenant, &name));
                entry.reset_derived();
            }
            self.views.index(&self.process, &mut self.live, slot, now);
            self.work_epoch += 1;
        }
    }

    /// A connection went away: its snapshots are released, and a desktop's agent keeps its
    /// login for `agent-grace-period` (logged out at once when it is 0).
    pub fn client_gone(&mut self, client_id: u64, now: Timestamp, out: &mut Output) {
        self.now_hint = now;
        self.snapshots.retain(|_, s| s.owner != client_id);
        self.agent_connection_gone(client_id, now);
        self.flush_notes(out);
    }

    /// The last connection of a router application closed: what it held in `routing` goes back
    /// to its queues (the server calls this; it knows the connections).
    pub fn router_gone(&mut self, tenant: &str, application: &str, now: Timestamp, out: &mut Output) {
        self.now_hint = now;
        self.router_gone_at(&Name::from(tenant), &Name::from(application), now);
        self.flush_notes(out);
    }

    /// Runs due timers: scheduled interactions becoming visible, idle snapshots expiring,
    /// routing / delivering / handling timeouts, invites expiring, agents' grace periods ending.
    pub fn tick(&mut self, now: Timestamp, out: &mut Output) {
        self.now_hint = now;
        let before = self.views.next_scheduled();
        self.views.release_scheduled(&self.process, &mut self.live, now);
        if before.is_some_and(|t| t <= now) {
            self.work_epoch += 1;
        }
        queries::expire_snapshots(self, now);
        self.fire_delivery_timers(now);
        self.flush_notes(out);
    }

    /// When [`Engine::tick`] should run next, if anything is scheduled.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match (self.views.next_scheduled(), self.delivery.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the answer and notifications of the last request handled may be released.
    ///
    /// `None`: after the batch being collected now is durable (the rule for every change a
    /// client is told about). `Some(n)`: as soon as batch `n` is durable, because the request
    /// only took interactions into routing or offered them to an agent. Those changes are
    /// written with the next batch but not waited for: if the server stops first, the
    /// interaction is found queued or routing at restart and goes back to its queue, where a
    /// routed or offered interaction goes anyway when its router or agent is gone. `n` is the
    /// last batch that changed the interactions involved, so nothing is released before what
    /// it builds on is durable.
    pub fn release_after(&self) -> Option<u64> {
        self.release
    }

    /// The number of the batch being collected (see [`Engine::take_batch`]).
    pub fn open_batch(&self) -> u64 {
        self.open_batch
    }

    /// Call before changing a live interaction: a volatile change of one already changed in the
    /// batch being collected keeps the state to write for it (see `volatile_base`).
    pub(crate) fn before_change(&mut self, slot: live::Slot) {
        if !self.volatile {
            return;
        }
        if let Some(entry) = self.live.entry(slot)
            && entry.durable_batch == self.open_batch
            && !self.volatile_base.contains_key(&entry.ix.id)
        {
            self.volatile_base.insert(entry.ix.id.clone(), entry.ix.clone());
        }
    }

    /// Marks a live interaction changed. Unless the request is volatile, answers about it
    /// wait for the batch being collected.
    pub(crate) fn mark_dirty(&mut self, slot: live::Slot) {
        let (open, volatile) = (self.open_batch, self.volatile);
        if let Some(entry) = self.live.entry_mut(slot) {
            if volatile {
                self.depends_on = self.depends_on.max(entry.durable_batch);
            } else {
                entry.durable_batch = open;
                // A durable change after a volatile one: the batch writes the current state.
                self.volatile_base.remove(&entry.ix.id);
            }
            self.dirty.push(entry.ix.id.clone());
        }
    }

    /// Takes everything changed since the last call, for one group commit. Interactions whose
    /// only changes since the last batch were volatile (see [`Engine::release_after`]) are
    /// left out: their row in the store stays at its last durable state; those changed durably
    /// and then volatilely are written as they were before the volatile change.
    pub fn take_batch(&mut self) -> Batch {
        let number = self.open_batch;
        self.open_batch += 1;
        let mut interactions = std::mem::take(&mut self.stopped_rows);
        let mut seen = std::collections::HashSet::new();
        for id in self.dirty.drain(..) {
            if seen.insert(id.clone())
                && let Some(slot) = self.live.slot_of(&id)
                && let Some(entry) = self.live.entry(slot)
                && entry.durable_batch == number
            {
                let row = self.volatile_base.remove(&id).unwrap_or_else(|| entry.ix.clone());
                interactions.push(row);
            }
        }
        self.volatile_base.clear();
        let mut meta = Vec::new();
        if std::mem::take(&mut self.submit_seq_dirty) {
            meta.push(("next_submit_seq".to_owned(), self.next_submit_seq.to_string()));
            meta.push(("id_clock".to_owned(), self.ids.clock().millis().to_string()));
        }
        Batch {
            number,
            interactions,
            events: std::mem::take(&mut self.pending_events),
            meta,
        }
    }

    /// A live interaction of a tenant.
    pub fn interaction(&self, tenant: &str, id: &InteractionId) -> Option<&Interaction> {
        self.live.get_by_id(id).filter(|ix| &*ix.tenant == tenant)
    }
}

/// A bounded set of recent ids (first in, first out).
#[derive(Debug, Default)]
struct RecentIds {
    order: std::collections::VecDeque<InteractionId>,
    set: std::collections::HashSet<InteractionId>,
}

impl RecentIds {
    /// Far more than one commit's worth of stops.
    const CAPACITY: usize = 65_536;

    fn insert(&mut self, id: InteractionId) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, id: &InteractionId) -> bool {
        self.set.contains(id)
    }
}

#[cfg(test)]
mod tests;
