//! Requests that move interactions: submit, place in queue / workbin, pull, stop, move.

use ixn_model::{
    ClientKind, Interaction, InteractionId, InteractionState, Name, Timestamp, Transition, UserData,
    WorkbinOwnerType, WorkbinRef,
};
use ixn_protocol::{
    ErrorCode, ItemFailure, MoveInteractions, Party, PlaceInQueue, PlaceInWorkbin, ProtocolError, Pull,
    ReportingEventKind as K, ServerMessage, StopProcessing, Submit, WorkbinTarget,
};

use super::{Act, invalid, transition};
use crate::effects::{party_of, view_of};
use crate::live::Slot;
use crate::{ClientCtx, Engine, Notify, Output};

/// Where interactions a router submits without a queue are parked.
pub const ORCHESTRATION_QUEUE: &str = "orchestration_system";

/// Most interactions one pull may take.
pub(crate) const MAX_PULL_COUNT: u32 = 1000;

pub(crate) fn submit(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: Submit,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    if !eng.process.media_types.contains(r.media_type.as_str()) {
        return Err(ProtocolError::new(
            ErrorCode::UnknownMediaType,
            format!("no media type {:?}", r.media_type),
        ));
    }
    let queue = match &r.queue {
        Some(q) => Some(
            eng.process
                .queue(&client.tenant, q)
                .cloned()
                .ok_or_else(|| ProtocolError::new(ErrorCode::UnknownQueue, format!("no queue {q:?}")))?,
        ),
        // A router's own interaction without a queue is parked in `orchestration_system`.
        None if client.kind == ClientKind::Router && r.workbin.is_none() => Some(
            eng.process
                .queue(&client.tenant, ORCHESTRATION_QUEUE)
                .cloned()
                .ok_or_else(|| {
                    ProtocolError::new(
                        ErrorCode::UnknownQueue,
                        format!(
                            "no queue {ORCHESTRATION_QUEUE:?} for a router's interaction without a queue"
                        ),
                    )
                })?,
        ),
        None => None,
    };
    let workbin = r
        .workbin
        .as_ref()
        .map(|w| eng.resolve_workbin(client, w))
        .transpose()?;
    let by_agent = client.kind == ClientKind::AgentDesktop && workbin.is_none();
    if !by_agent && queue.is_none() && workbin.is_none() {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            "RequestSubmit: `queue` (or `workbin`) is required",
        ));
    }
    let id = match &r.interaction_id {
        Some(text) => {
            let id = InteractionId::parse(text).map_err(|e| invalid(e.to_string()))?;
            if eng.live.slot_of(&id).is_some() || eng.recently_stopped.contains(&id) {
                return Err(ProtocolError::new(
                    ErrorCode::DuplicateInteraction,
                    format!("{id} is already taken"),
                ));
            }
            id
        }
        None => loop {
            // Generated ids are unique by construction; client-chosen ones may have taken one.
            let id = eng.ids.next(now);
            if eng.live.slot_of(&id).is_none() && !eng.recently_stopped.contains(&id) {
                break id;
            }
        },
    };
    let parent_id = r
        .parent_id
        .as_deref()
        .map(InteractionId::parse)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let t = if by_agent {
        Transition::SubmitByAgent
    } else {
        Transition::SubmitByMediaServer
    };
    let state = t.apply(None).map_err(|e| invalid(e.to_string()))?;
    let holder = by_agent.then(|| client.holder_name());
    let queued = state == InteractionState::Queued;
    let ix = Interaction {
        id,
        tenant: client.tenant.clone(),
        media_type: Name::from(r.media_type.as_str()),
        interaction_type: r.interaction_type.as_deref().map(Name::from),
        subtype: r.subtype.as_deref().map(Name::from),
        queue,
        workbin,
        state,
        is_online: r.is_online.unwrap_or(true),
        is_locked: false,
        is_held: false,
        parent_id,
        external_id: r.external_id,
        priority: r.priority.unwrap_or(0),
        service_objective: r.service_objective,
        submitted_by: client.application.clone(),
        assigned_to: holder.clone(),
        submit_seq: eng.next_submit_seq,
        received_at: r.received_at,
        submitted_at: now,
        placed_in_queue_at: queued.then_some(now),
        moved_to_queue_at: queued.then_some(now),
        delivered_at: None,
        assigned_at: holder.as_ref().map(|_| now),
        held_at: None,
        scheduled_at: r.scheduled_at,
        completed_at: None,
        abandoned_at: None,
        user_data: r.user_data.unwrap_or_default(),
    };
    eng.next_submit_seq += 1;
    eng.submit_seq_dirty = true;
    let slot = eng.live.insert(ix);
    eng.index_slot(slot, now);
    eng.mark_dirty(slot);
    let ix = eng.ix(slot).clone();
    let actor = party_of(client);
    eng.emit(K::InteractionSubmitted, &ix, now, |e| {
        e.actor = Some(actor.clone());
        e.user_data = Some(ix.user_data.clone());
    });
    if ix.workbin.is_some() {
        eng.emit(K::PlacedInWorkbin, &ix, now, |e| e.actor = Some(actor.clone()));
    } else if queued {
        eng.emit(K::PlacedInQueue, &ix, now, |e| e.actor = Some(actor.clone()));
    } else {
        eng.emit(K::PartyAdded, &ix, now, |e| e.party = Some(actor.clone()));
    }
    Ok(ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: Some(view_of(&ix)),
    })
}

impl Engine {
    pub(crate) fn resolve_workbin(
        &self,
        client: &ClientCtx,
        w: &WorkbinTarget,
    ) -> Result<WorkbinRef, ProtocolError> {
        let owner_type = self.process.workbin(&client.tenant, &w.name).ok_or_else(|| {
            ProtocolError::new(ErrorCode::UnknownWorkbin, format!("no workbin {:?}", w.name))
        })?;
        let owner = match (&w.owner, owner_type) {
            (Some(o), _) if !o.is_empty() => Name::from(o.as_str()),
            (_, WorkbinOwnerType::Agent) if client.kind == ClientKind::AgentDesktop => client.holder_name(),
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    format!(
                        "workbin {:?} is of type {}: `owner` is required",
                        w.name,
                        owner_type.as_str()
                    ),
                ));
            }
        };
        self.check_workbin_owner(client, owner_type, &owner)?;
        Ok(WorkbinRef {
            name: Name::from(w.name.as_str()),
            owner,
        })
    }

    /// An agent may use its own personal workbins only (group workbins are shared).
    pub(crate) fn check_workbin_owner(
        &self,
        client: &ClientCtx,
        owner_type: WorkbinOwnerType,
        owner: &Name,
    ) -> Result<(), ProtocolError> {
        let personal = owner_type == WorkbinOwnerType::Agent;
        if client.kind == ClientKind::AgentDesktop && personal && *owner != client.holder_name() {
            return Err(ProtocolError::new(
                ErrorCode::RequestNotAllowed,
                format!(
                    "agent {} may not use the personal workbin of {owner}",
                    client.holder_name()
                ),
            ));
        }
        Ok(())
    }

    /// Events and notifications for an interaction leaving wherever it is now (a queue, a
    /// workbin, or the router or agent holding it) because of `client`.
    fn leave_current_place(
        &mut self,
        client: &ClientCtx,
        before: &Interaction,
        now: Timestamp,
        out: &mut Output,
    ) {
        let actor = party_of(client);
        match (before.state, &before.workbin) {
            (InteractionState::Queued, Some(_)) => {
                self.emit(K::TakenFromWorkbin, before, now, |e| {
                    e.actor = Some(actor.clone())
                });
            }
            (InteractionState::Queued, None) => {
                self.emit(K::TakenFromQueue, before, now, |e| e.actor = Some(actor.clone()));
            }
            (_, _) => {
                if let Some(holder) = &before.assigned_to {
                    let kind = if before.state == InteractionState::Routing {
                        "router"
                    } else {
                        "agent"
                    };
                    let party = Party {
                        kind: kind.to_owned(),
                        name: holder.to_string(),
                    };
                    self.emit(K::PartyRemoved, before, now, |e| {
                        e.actor = Some(actor.clone());
                        e.party = Some(party.clone());
                    });
                    if *holder != client.holder_name() {
                        self.emit(K::Revoked, before, now, |e| {
                            e.actor = Some(actor.clone());
                            e.party = Some(party);
                        });
                        out.notify(
                            Notify::Holder {
                                tenant: before.tenant.clone(),
                                holder: holder.clone(),
                            },
                            ServerMessage::EventRevoked {
                                interaction_id: before.id.to_string(),
                                reason: None,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Puts a live interaction into a queue (validated by the caller).
    pub(crate) fn place_slot_in_queue(
        &mut self,
        client: &ClientCtx,
        slot: Slot,
        queue: Name,
        added: &UserData,
        now: Timestamp,
        out: &mut Output,
    ) {
        let before = self.ix(slot).clone();
        self.leave_current_place(client, &before, now, out);
        self.update(slot, now, |ix| {
            ix.queue = Some(queue);
            ix.workbin = None;
            ix.state = InteractionState::Queued;
            ix.assigned_to = None;
            ix.placed_in_queue_at = Some(now);
            ix.moved_to_queue_at.get_or_insert(now);
            ix.user_data.merge(added);
        });
        let ix = self.ix(slot).clone();
        let actor = party_of(client);
        let previous = before.queue.as_ref().map(|q| q.to_string());
        self.emit(K::PlacedInQueue, &ix, now, |e| {
            e.actor = Some(actor.clone());
            e.previous_queue = previous;
        });
        if !added.is_empty() {
            self.emit(K::PropertiesChanged, &ix, now, |e| {
                e.actor = Some(actor);
                e.changes = Some(ixn_protocol::PropertyChanges {
                    added: added.clone(),
                    ..Default::default()
                });
            });
        }
    }
}

pub(crate) fn place_in_queue(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: PlaceInQueue,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let queue = eng
        .process
        .queue(&client.tenant, &r.queue)
        .cloned()
        .ok_or_else(|| ProtocolError::new(ErrorCode::UnknownQueue, format!("no queue {:?}", r.queue)))?;
    let ix = eng.ix(slot);
    eng.check_actor(client, ix, Act::Move)?;
    transition(Transition::PlaceInQueue, ix)?;
    if client.kind == ClientKind::MediaServer && ix.state != InteractionState::Queued {
        return Err(ProtocolError::new(
            ErrorCode::NotAssigned,
            format!(
                "{} is {}; a media server may only move queued interactions",
                ix.id, ix.state
            ),
        ));
    }
    eng.place_slot_in_queue(client, slot, queue, &r.added_properties, now, out);
    Ok(ack_with(eng, rid, slot))
}

pub(crate) fn place_in_workbin(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: PlaceInWorkbin,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let workbin = eng.resolve_workbin(client, &r.workbin)?;
    let before = eng.ix(slot).clone();
    eng.check_actor(client, &before, Act::Move)?;
    transition(Transition::PlaceInWorkbin, &before)?;
    eng.leave_current_place(client, &before, now, out);
    eng.update(slot, now, |ix| {
        ix.workbin = Some(workbin);
        ix.state = InteractionState::Queued;
        ix.assigned_to = None;
        ix.placed_in_queue_at = Some(now);
    });
    let ix = eng.ix(slot).clone();
    let actor = party_of(client);
    eng.emit(K::PlacedInWorkbin, &ix, now, |e| e.actor = Some(actor));
    Ok(ack_with(eng, rid, slot))
}

pub(crate) fn stop(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: StopProcessing,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let before = eng.ix(slot).clone();
    eng.check_actor(client, &before, Act::Touch)?;
    let state = transition(Transition::Stop, &before)?;
    eng.leave_current_place(client, &before, now, out);
    eng.unindex_slot(slot);
    let Some(mut ix) = eng.live.remove(slot) else {
        return Err(ProtocolError::of(ErrorCode::Internal));
    };
    eng.forget_delivery(&ix);
    ix.state = state;
    ix.completed_at = Some(now);
    let actor = party_of(client);
    let reason = r.reason.clone();
    eng.emit(K::ProcessingStopped, &ix, now, |e| {
        e.actor = Some(actor);
        e.reason = reason;
        e.user_data = Some(ix.user_data.clone());
    });
    if ix.submitted_by != client.application {
        out.notify(
            Notify::Application {
                tenant: ix.tenant.clone(),
                application: ix.submitted_by.clone(),
            },
            ServerMessage::EventProcessingStopped {
                interaction_id: ix.id.to_string(),
                reason: r.reason,
                stopped_by: client.application.to_string(),
            },
        );
    }
    let answer = ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: Some(view_of(&ix)),
    };
    eng.recently_stopped.insert(ix.id.clone());
    eng.stopped_rows.push(ix);
    Ok(answer)
}

pub(crate) fn pull(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: Pull,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    if r.count == 0 || r.count > MAX_PULL_COUNT {
        return Err(invalid(format!("count must be 1..={MAX_PULL_COUNT}")));
    }
    let t = if client.kind == ClientKind::Router {
        Transition::PullByRouter
    } else {
        Transition::PullByAgent
    };
    let by_view: Vec<(Slot, Option<u16>)> = match (&r.view, r.interaction_ids.is_empty()) {
        (None, true) if r.strategy.is_some() => {
            let strategy = r.strategy.as_deref().unwrap_or_default();
            eng.strategy_candidates(client, strategy, r.count, now)?
        }
        (Some(view), true) => {
            let v = eng.process.view_id(&client.tenant, view).ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::UnknownView,
                    format!("no view {view:?} in tenant {}", client.tenant),
                )
            })?;
            let def = &eng.process.views[v as usize];
            if !def.enabled {
                return Err(ProtocolError::new(
                    ErrorCode::ViewDisabled,
                    format!("view {view:?} is disabled"),
                ));
            }
            let mut count = r.count;
            if def.limit > 0 {
                count = count.min(def.limit.saturating_sub(eng.views.views[v as usize].in_flight));
            }
            eng.views
                .candidates(&eng.process, &eng.live, v, count as usize, now)
                .into_iter()
                .map(|s| (s, Some(v)))
                .collect()
        }
        (None, false) => {
            if r.interaction_ids.len() > MAX_PULL_COUNT as usize {
                return Err(invalid(format!(
                    "at most {MAX_PULL_COUNT} interaction_ids per pull"
                )));
            }
            let mut slots = Vec::with_capacity(r.interaction_ids.len());
            for id in &r.interaction_ids {
                let slot = eng.find_slot(client, id)?;
                let ix = eng.ix(slot);
                transition(t, ix)?;
                if let Some(w) = &ix.workbin
                    && let Some(owner_type) = eng.process.workbin(&client.tenant, &w.name)
                {
                    eng.check_workbin_owner(client, owner_type, &w.owner)?;
                }
                if ix.is_locked {
                    return Err(ProtocolError::new(
                        ErrorCode::InteractionLocked,
                        format!("{} is locked", ix.id),
                    ));
                }
                if !slots.iter().any(|(s, _)| *s == slot) {
                    slots.push((slot, None));
                }
            }
            slots
        }
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "RequestPull: give one of `view`, `strategy` or `interaction_ids`",
            ));
        }
    };
    let holder = client.holder_name();
    let actor = party_of(client);
    // Taking into routing is volatile (see Engine::release_after); an agent's pull is not.
    eng.volatile = t == Transition::PullByRouter;
    let mut pulled = Vec::with_capacity(by_view.len());
    for (slot, view) in by_view {
        let before = eng.ix(slot).clone();
        let Ok(state) = transition(t, &before) else {
            continue;
        };
        eng.before_change(slot);
        eng.unindex_slot(slot);
        if let Some(entry) = eng.live.entry_mut(slot) {
            let ix = &mut entry.ix;
            ix.state = state;
            ix.workbin = None;
            ix.assigned_to = Some(holder.clone());
            ix.assigned_at = Some(now);
            if state == InteractionState::Handling {
                ix.delivered_at.get_or_insert(now);
            }
            entry.in_flight_view = view;
        }
        eng.mark_dirty(slot);
        eng.live.intern_slot(slot);
        eng.index_slot(slot, now);
        let kind = if before.workbin.is_some() {
            K::TakenFromWorkbin
        } else {
            K::TakenFromQueue
        };
        eng.emit(kind, &before, now, |e| e.actor = Some(actor.clone()));
        let ix = eng.ix(slot).clone();
        eng.emit(K::PartyAdded, &ix, now, |e| e.party = Some(actor.clone()));
        pulled.push(ixn_protocol::InteractionView::from(&ix));
    }
    Ok(ServerMessage::EventPulledInteractions {
        reference_id: rid,
        interactions: pulled,
    })
}

impl Engine {
    /// Up to `count` interactions for a router pulling `strategy`: through every enabled
    /// submitter of the strategy in turn, each capped by its `max-in-flight` and its view's
    /// limit. Errors: 107 no submitter serves it, 109 all its submitters are disabled,
    /// 108 no enabled submitter has an existing, enabled view.
    fn strategy_candidates(
        &mut self,
        client: &ClientCtx,
        strategy: &str,
        count: u32,
        now: Timestamp,
    ) -> Result<Vec<(Slot, Option<u16>)>, ProtocolError> {
        let key = (client.tenant.clone(), Name::from(strategy));
        let Some(subs) = self.process.strategies.get(&key).cloned() else {
            return Err(ProtocolError::new(
                ErrorCode::StrategyDoesNotExist,
                format!(
                    "no submitter serves strategy {strategy:?} in tenant {}",
                    client.tenant
                ),
            ));
        };
        if subs.iter().all(|s| !s.enabled) {
            return Err(ProtocolError::new(
                ErrorCode::StrategyIsDisabled,
                format!("every submitter of strategy {strategy:?} is disabled"),
            ));
        }
        let views: Vec<(u16, u32)> = subs
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| s.view.map(|v| (v, s.max_in_flight)))
            .filter(|(v, _)| self.process.views.get(*v as usize).is_some_and(|d| d.enabled))
            .collect();
        if views.is_empty() {
            return Err(ProtocolError::new(
                ErrorCode::StrategyHasNoViews,
                format!("strategy {strategy:?} has no enabled views"),
            ));
        }
        let mut out: Vec<(Slot, Option<u16>)> = Vec::new();
        for (v, max_in_flight) in views {
            let remaining = count.saturating_sub(out.len() as u32);
            if remaining == 0 {
                break;
            }
            let def = &self.process.views[v as usize];
            let in_flight = self.views.views[v as usize].in_flight;
            let mut allowed = remaining.min(max_in_flight.saturating_sub(in_flight));
            if def.limit > 0 {
                allowed = allowed.min(def.limit.saturating_sub(in_flight));
            }
            if allowed == 0 {
                continue;
            }
            // One interaction may match two views of the strategy: take it once.
            for slot in self
                .views
                .candidates(&self.process, &self.live, v, allowed as usize + out.len(), now)
            {
                if out.len() as u32 >= count
                    || out.iter().filter(|(_, x)| *x == Some(v)).count() as u32 >= allowed
                {
                    break;
                }
                if !out.iter().any(|(s, _)| *s == slot) {
                    out.push((slot, Some(v)));
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn move_interactions(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: MoveInteractions,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let queue = eng
        .process
        .queue(&client.tenant, &r.queue)
        .cloned()
        .ok_or_else(|| ProtocolError::new(ErrorCode::UnknownQueue, format!("no queue {:?}", r.queue)))?;
    let ids = eng.snapshot_ids(client, r.snapshot_id, now)?;
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    let fail = |id: &InteractionId, code: ErrorCode, message: String| ItemFailure {
        interaction_id: id.to_string(),
        code: code.code(),
        message,
    };
    for id in ids {
        let Some(slot) = eng.live.slot_of(&id) else {
            failed.push(fail(
                &id,
                ErrorCode::UnknownInteraction,
                "stopped since the snapshot was taken".into(),
            ));
            continue;
        };
        let ix = eng.ix(slot);
        if ix.state != InteractionState::Queued {
            failed.push(fail(&id, ErrorCode::InvalidState, format!("it is {}", ix.state)));
            continue;
        }
        if ix.is_locked {
            failed.push(fail(&id, ErrorCode::InteractionLocked, "it is locked".into()));
            continue;
        }
        eng.place_slot_in_queue(client, slot, queue.clone(), &UserData::new(), now, out);
        moved.push(id.to_string());
    }
    Ok(ServerMessage::EventInteractionMoved {
        reference_id: rid,
        moved,
        failed,
    })
}

fn ack_with(eng: &Engine, rid: u64, slot: Slot) -> ServerMessage {
    let ix = eng.ix(slot);
    ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: Some(view_of(ix)),
    }
}
