//! Delivery bookkeeping: the timers of interactions in flight (routing, delivering, handling),
//! pending invites, extra parties (conference, intrude), agents who declined an interaction, and
//! the load each holder carries. All of it is derived from, or attached to, live interactions
//! and kept exact by two hooks around every change ([`Engine::unindex_slot`] and
//! [`Engine::index_slot`]).
//!
//! Timers are data: a sorted map of deadlines. [`Engine::next_deadline`] tells the server when
//! to call [`Engine::tick`], so a timer fires when due, not on a periodic scan.

use std::collections::{BTreeMap, HashMap};

use ixn_model::{Interaction, InteractionId, InteractionState, Name, Timestamp, Transition, ValueRef};
use ixn_protocol::{
    InviteKind, InviteOutcome, Party, Reason, ReportingEventKind as K, ServerMessage, Visibility,
};

use crate::agents::Key;
use crate::live::Slot;
use crate::{Engine, Notify};

/// User-data key overriding `handling-timeout` (minutes) for one interaction.
pub const HANDLING_TIMEOUT_KEY: &str = "handling-timeout";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The state timer of an interaction (routing, delivering or handling timeout).
    State(InteractionId, InteractionState),
    /// A transfer or conference invite to `agent` expires.
    Invite(InteractionId, Name),
    /// A disconnected agent's grace period ends.
    Grace(Key),
    /// An interaction's freeze in a view ends: pulls may find it again.
    Unfreeze,
}

pub(crate) type TimerKey = (Timestamp, u64);

/// A pending invite.
#[derive(Clone, Debug)]
pub(crate) struct Invite {
    pub agent: Name,
    pub kind: InviteKind,
    /// Told how the invite ended (the routing router, the transferring agent).
    pub requester: Option<Name>,
    pub expires: TimerKey,
}

#[derive(Debug, Default)]
pub(crate) struct Delivery {
    pub timers: BTreeMap<TimerKey, Timer>,
    next_timer: u64,
    /// The state timer of each interaction in routing, delivering or handling.
    pub state_timer: HashMap<InteractionId, (TimerKey, InteractionState)>,
    /// Transfer and conference invites (route invites are the delivering state itself).
    pub invites: HashMap<InteractionId, Vec<Invite>>,
    /// Who routed an interaction now delivering (told the outcome).
    pub routed_by: HashMap<InteractionId, Name>,
    /// Parties besides the holder.
    pub parties: HashMap<InteractionId, Vec<(Name, Visibility)>>,
    /// Agents who rejected an interaction or let its offer time out: never offered it again.
    pub declined: HashMap<InteractionId, Vec<Name>>,
    /// Where each held interaction's load is counted: holder key and media.
    held: HashMap<InteractionId, (Key, Name)>,
}

impl Delivery {
    pub fn add_timer(&mut self, at: Timestamp, timer: Timer) -> TimerKey {
        self.next_timer += 1;
        let key = (at, self.next_timer);
        self.timers.insert(key, timer);
        key
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.keys().next().map(|k| k.0)
    }

    fn pop_due(&mut self, now: Timestamp) -> Option<Timer> {
        let (&key, _) = self.timers.iter().next().filter(|(k, _)| k.0 <= now)?;
        self.timers.remove(&key)
    }
}

fn held_state(state: InteractionState) -> bool {
    matches!(state, InteractionState::Delivering | InteractionState::Handling)
}

impl Engine {
    /// Removes a live interaction from every derived structure before a change.
    pub(crate) fn unindex_slot(&mut self, slot: Slot) {
        if self.views.unindex(&self.process, &mut self.live, slot) {
            // A reached in-flight limit has room again (unless the change counts the
            // interaction back in): a strategy pull held because of it is worth retrying.
            self.work_epoch += 1;
        }
        let Some(ix) = self.live.get(slot) else { return };
        if let Some((key, media)) = self.delivery.held.remove(&ix.id) {
            let id = ix.id.clone();
            self.release_load(&key, &media, &id);
        }
    }

    /// Adds a live interaction to every derived structure after a change, and keeps its state
    /// timer, invites and parties consistent with its new state.
    pub(crate) fn index_slot(&mut self, slot: Slot, now: Timestamp) {
        self.views.index(&self.process, &mut self.live, slot, now);
        let Some(ix) = self.live.get(slot) else { return };
        let (id, state, media, tenant) = (ix.id.clone(), ix.state, ix.media_type.clone(), ix.tenant.clone());
        if held_state(state)
            && let Some(holder) = ix.assigned_to.clone()
        {
            let key = (tenant, holder);
            self.agents.hold(&key, &media, &id);
            self.delivery.held.insert(id.clone(), (key, media));
        }
        if state == InteractionState::Queued {
            self.work_epoch += 1;
        }
        let wanted = matches!(
            state,
            InteractionState::Routing | InteractionState::Delivering | InteractionState::Handling
        );
        let current = self.delivery.state_timer.get(&id).map(|(_, s)| *s);
        if current != Some(state) || !wanted {
            if let Some((key, _)) = self.delivery.state_timer.remove(&id) {
                self.delivery.timers.remove(&key);
            }
            if wanted {
                let at = self.state_deadline(slot, now);
                let key = self.delivery.add_timer(at, Timer::State(id.clone(), state));
                self.delivery.state_timer.insert(id.clone(), (key, state));
            }
        }
        if state != InteractionState::Delivering {
            self.delivery.routed_by.remove(&id);
        }
        if state != InteractionState::Handling {
            self.end_collaboration(&id, now);
        }
    }

    /// Restarts the handling timer of an interaction (a request from the handling desktop).
    pub(crate) fn touch_handling(&mut self, id: &InteractionId, now: Timestamp) {
        let Some(slot) = self.live.slot_of(id) else { return };
        if self.ix(slot).state != InteractionState::Handling {
            return;
        }
        if let Some((key, _)) = self.delivery.state_timer.remove(id) {
            self.delivery.timers.remove(&key);
        }
        let at = self.state_deadline(slot, now);
        let key = self
            .delivery
            .add_timer(at, Timer::State(id.clone(), InteractionState::Handling));
        self.delivery
            .state_timer
            .insert(id.clone(), (key, InteractionState::Handling));
    }

    fn state_deadline(&self, slot: Slot, now: Timestamp) -> Timestamp {
        let ix = self.ix(slot);
        let minutes = |m: u32| now.plus_millis(i64::from(m) * 60_000);
        match ix.state {
            InteractionState::Routing => minutes(self.settings.routing_timeout_min),
            InteractionState::Delivering => {
                now.plus_millis(i64::from(self.settings.delivering_timeout_s) * 1000)
            }
            _ => minutes(self.handling_timeout_min(ix)),
        }
    }

    /// User-data key `handling-timeout` → the media type's option → the server option.
    fn handling_timeout_min(&self, ix: &Interaction) -> u32 {
        let from_user_data = ix.user_data.get(HANDLING_TIMEOUT_KEY).and_then(|v| match v {
            ValueRef::Int(n) => u32::try_from(n).ok(),
            ValueRef::Str(s) => s.trim().parse().ok(),
            _ => None,
        });
        from_user_data
            .filter(|m| *m > 0)
            .or_else(|| self.process.handling_timeouts.get(&ix.media_type).copied())
            .unwrap_or(self.settings.handling_timeout_min)
    }

    /// Releases one unit of load; an agent that gains capacity is announced to routers.
    pub(crate) fn release_load(&mut self, key: &Key, media: &Name, id: &InteractionId) {
        let now = self.now_hint;
        self.agents.release(key, media, id, now);
        if self.agents.agents.contains_key(key) {
            self.touched_agents.push(key.clone());
        }
    }

    /// Ends transfer/conference invites and extra parties of an interaction that left handling.
    fn end_collaboration(&mut self, id: &InteractionId, _now: Timestamp) {
        let Some(slot) = self.live.slot_of(id) else { return };
        let (tenant, media) = {
            let ix = self.ix(slot);
            (ix.tenant.clone(), ix.media_type.clone())
        };
        self.drop_collaboration(&tenant, &media, id);
    }

    /// Revokes the pending invites and removes the extra parties of an interaction, releasing
    /// their load and telling each of them (and each invite's requester).
    fn drop_collaboration(&mut self, tenant: &Name, media: &Name, id: &InteractionId) {
        for inv in self.delivery.invites.remove(id).unwrap_or_default() {
            self.delivery.timers.remove(&inv.expires);
            self.release_load(&(tenant.clone(), inv.agent.clone()), media, id);
            self.revoke_invite_notes(tenant, id, &inv, InviteOutcome::Revoked);
        }
        for (agent, _) in self.delivery.parties.remove(id).unwrap_or_default() {
            self.release_load(&(tenant.clone(), agent.clone()), media, id);
            self.revoked_note(tenant, agent, id, None);
        }
    }

    /// EventRevoked to a holder's connections.
    pub(crate) fn revoked_note(
        &mut self,
        tenant: &Name,
        holder: Name,
        id: &InteractionId,
        reason: Option<Reason>,
    ) {
        self.notes.push((
            Notify::Holder {
                tenant: tenant.clone(),
                holder,
            },
            ServerMessage::EventRevoked {
                interaction_id: id.to_string(),
                reason,
            },
        ));
    }

    /// EventInviteOutcome to whoever asked for an invite (a router, a transferring agent). The
    /// arguments are the event's fields, named at every call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn outcome_note(
        &mut self,
        tenant: &Name,
        requester: Name,
        id: &InteractionId,
        agent: &Name,
        invite: InviteKind,
        outcome: InviteOutcome,
        reason: Option<Reason>,
    ) {
        self.notes.push((
            Notify::Holder {
                tenant: tenant.clone(),
                holder: requester,
            },
            ServerMessage::EventInviteOutcome {
                interaction_id: id.to_string(),
                agent: agent.to_string(),
                invite,
                outcome,
                reason,
            },
        ));
    }

    /// Tells the invited agent its invite is gone and the requester how it ended.
    pub(crate) fn revoke_invite_notes(
        &mut self,
        tenant: &Name,
        id: &InteractionId,
        inv: &Invite,
        outcome: InviteOutcome,
    ) {
        self.revoked_note(tenant, inv.agent.clone(), id, None);
        if let Some(requester) = inv.requester.clone() {
            self.outcome_note(tenant, requester, id, &inv.agent, inv.kind, outcome, None);
        }
    }

    /// An interaction left memory (stopped): drop everything attached to it.
    pub(crate) fn forget_delivery(&mut self, ix: &Interaction) {
        let id = &ix.id;
        if let Some((key, _)) = self.delivery.state_timer.remove(id) {
            self.delivery.timers.remove(&key);
        }
        if let Some(router) = self.delivery.routed_by.remove(id)
            && let Some(agent) = &ix.assigned_to
        {
            let revoked = InviteOutcome::Revoked;
            self.outcome_note(&ix.tenant, router, id, agent, InviteKind::Route, revoked, None);
        }
        self.drop_collaboration(&ix.tenant, &ix.media_type, id);
        self.delivery.declined.remove(id);
    }

    /// Runs every delivery timer due at `now`.
    pub(crate) fn fire_delivery_timers(&mut self, now: Timestamp) {
        // Bounded: each timer fires once; firing never schedules one due at or before `now`
        // except a fresh state timer, which has a positive timeout.
        let mut budget = self.delivery.timers.len() + 1;
        while budget > 0 {
            budget -= 1;
            let Some(timer) = self.delivery.pop_due(now) else {
                break;
            };
            match timer {
                Timer::State(id, state) => {
                    self.delivery.state_timer.remove(&id);
                    self.state_timeout(&id, state, now);
                }
                Timer::Invite(id, agent) => self.invite_timeout(&id, &agent, now),
                Timer::Grace(key) => self.grace_expired(&key, now),
                Timer::Unfreeze => self.work_epoch += 1,
            }
        }
    }

    fn state_timeout(&mut self, id: &InteractionId, state: InteractionState, now: Timestamp) {
        let Some(slot) = self.live.slot_of(id) else { return };
        let before = self.ix(slot).clone();
        if before.state != state {
            return;
        }
        let (transition, reason) = match state {
            InteractionState::Routing => (Transition::RoutingTimeout, "routing-timeout"),
            InteractionState::Delivering => (Transition::DeliveringTimeout, "delivering-timeout"),
            _ => (Transition::HandlingTimeout, "handling-timeout"),
        };
        if transition.apply(Some(state)).is_err() {
            return;
        }
        if state == InteractionState::Delivering
            && let Some(agent) = &before.assigned_to
        {
            self.delivery
                .declined
                .entry(id.clone())
                .or_default()
                .push(agent.clone());
        }
        let router = self.delivery.routed_by.get(id).cloned();
        self.return_to_queue(slot, &before, now, reason);
        if let (Some(router), Some(agent)) = (router, &before.assigned_to) {
            let timed_out = InviteOutcome::TimedOut;
            self.outcome_note(
                &before.tenant,
                router,
                id,
                agent,
                InviteKind::Route,
                timed_out,
                None,
            );
        }
    }

    /// Puts an interaction back in the queue it was taken from, frozen for the view that
    /// selected it, and tells the holder it is gone.
    pub(crate) fn return_to_queue(&mut self, slot: Slot, before: &Interaction, now: Timestamp, why: &str) {
        let view = self.live.entry(slot).and_then(|e| e.in_flight_view);
        let holder = before.assigned_to.clone();
        self.update(slot, now, |ix| {
            ix.state = InteractionState::Queued;
            ix.assigned_to = None;
            ix.workbin = None;
            ix.placed_in_queue_at = Some(now);
        });
        if let Some(v) = view {
            let freeze = self
                .process
                .views
                .get(v as usize)
                .map_or(0, |d| d.freeze_interval_s);
            if freeze > 0 {
                let until = now.plus_millis(i64::from(freeze) * 1000);
                self.views.freeze(v, slot, until);
                self.delivery.add_timer(until, Timer::Unfreeze);
            }
        }
        let reason = Some(Reason {
            code: None,
            description: Some(why.to_owned()),
        });
        if let Some(holder) = holder {
            let kind = if before.state == InteractionState::Routing {
                "router"
            } else {
                "agent"
            };
            let party = Party {
                kind: kind.into(),
                name: holder.to_string(),
            };
            self.emit(K::Revoked, before, now, |e| {
                e.party = Some(party.clone());
                e.reason = reason.clone();
            });
            self.emit(K::PartyRemoved, before, now, |e| e.party = Some(party));
            self.revoked_note(&before.tenant, holder, &before.id, reason.clone());
        }
        let ix = self.ix(slot).clone();
        self.emit(K::PlacedInQueue, &ix, now, |e| e.reason = reason);
    }

    fn invite_timeout(&mut self, id: &InteractionId, agent: &Name, _now: Timestamp) {
        let Some(slot) = self.live.slot_of(id) else { return };
        let (tenant, media) = {
            let ix = self.ix(slot);
            (ix.tenant.clone(), ix.media_type.clone())
        };
        let Some(list) = self.delivery.invites.get_mut(id) else {
            return;
        };
        let Some(pos) = list.iter().position(|i| &i.agent == agent) else {
            return;
        };
        let inv = list.remove(pos);
        if list.is_empty() {
            self.delivery.invites.remove(id);
        }
        self.delivery
            .declined
            .entry(id.clone())
            .or_default()
            .push(agent.clone());
        self.release_load(&(tenant.clone(), agent.clone()), &media, id);
        self.revoke_invite_notes(&tenant, id, &inv, InviteOutcome::TimedOut);
    }
}
