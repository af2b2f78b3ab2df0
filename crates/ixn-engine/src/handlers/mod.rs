//! Request handlers. Each validates everything first and returns an error before touching
//! state, so a failed request changes nothing; then it applies the change through
//! [`Engine::update`] (unindex → change → index) and records events and notifications.

mod agent_state;
mod custom;
mod delivery;
mod lifecycle;
mod properties;

use ixn_model::{ClientKind, Interaction, InteractionId, InteractionState, Timestamp, Transition};
use ixn_protocol::{ErrorCode, ProtocolError, Request, ServerMessage};

use crate::effects::view_of;
use crate::live::Slot;
use crate::{ClientCtx, Engine, Output, queries};

pub(crate) fn handle(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    request: Request,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    match request {
        Request::Submit(r) => lifecycle::submit(eng, client, rid, r, now),
        Request::GetInteraction(r) => {
            let slot = eng.find_slot(client, &r.interaction_id)?;
            let ix = eng.ix(slot);
            Ok(ServerMessage::EventInteractionProperties {
                reference_id: rid,
                interaction: view_of(ix),
            })
        }
        Request::ChangeProperties(r) => properties::change(eng, client, rid, r, now, out),
        Request::PlaceInQueue(r) => lifecycle::place_in_queue(eng, client, rid, r, now, out),
        Request::PlaceInWorkbin(r) => lifecycle::place_in_workbin(eng, client, rid, r, now, out),
        Request::StopProcessing(r) => lifecycle::stop(eng, client, rid, r, now, out),
        Request::Hold(r) => properties::hold(eng, client, rid, &r.interaction_id, true, r.reason, now),
        Request::Resume(r) => properties::hold(eng, client, rid, &r.interaction_id, false, r.reason, now),
        Request::LockInteraction(r) => {
            properties::lock(eng, client, rid, &r.interaction_id, true, r.reason, now)
        }
        Request::UnlockInteraction(r) => {
            properties::lock(eng, client, rid, &r.interaction_id, false, None, now)
        }
        Request::Pull(r) => lifecycle::pull(eng, client, rid, r, now),
        Request::TakeSnapshot(r) => queries::take_snapshot(eng, client, rid, r, now),
        Request::GetSnapshotInteractions(r) => queries::snapshot_page(eng, client, rid, r, now),
        Request::ReleaseSnapshot(r) => queries::release_snapshot(eng, client, rid, r.snapshot_id),
        Request::FindInteractions(r) => queries::find(eng, client, rid, r, now),
        Request::GetWorkbinContent(r) => queries::workbin_content(eng, client, rid, r),
        Request::MoveInteractions(r) => lifecycle::move_interactions(eng, client, rid, r, now, out),
        Request::GetQueues(_) => Ok(queries::queues(eng, client, rid)),
        r @ (Request::AgentLogin(_)
        | Request::AgentLogout(_)
        | Request::AddMedia(_)
        | Request::RemoveMedia(_)
        | Request::NotReadyForMedia(_)
        | Request::CancelNotReadyForMedia(_)
        | Request::ChangeMediaStateReason(_)
        | Request::ChangeAgentStateReason(_)
        | Request::DoNotDisturbOn(_)
        | Request::DoNotDisturbOff(_)
        | Request::GetAgents(_)) => agent_state::handle(eng, client, rid, r, now),
        Request::RouteInteraction(r) => delivery::route(eng, client, rid, r, now),
        Request::Accept(r) => delivery::accept(eng, client, rid, &r.interaction_id, now),
        Request::Reject(r) => delivery::reject(eng, client, rid, &r.interaction_id, r.reason, now),
        Request::Transfer(r) => delivery::transfer(eng, client, rid, r, now, out),
        Request::Conference(r) => delivery::conference(eng, client, rid, r, now),
        Request::Intrude(r) => delivery::intrude(eng, client, rid, r, now),
        Request::LeaveInteraction(r) => delivery::leave(eng, client, rid, r, now),
        Request::CustomReporting(r) => custom::report(eng, client, rid, r, now),
        Request::RegisterClient(_)
        | Request::Ping(_)
        | Request::Subscribe(_)
        | Request::Unsubscribe(_)
        | Request::ApplyConfig(_)
        | Request::ThirdServer(_)
        | Request::ExternalServiceResponse(_) => Err(ProtocolError::new(
            ErrorCode::Internal,
            "connection-level request reached the engine",
        )),
    }
}

/// The interaction a request is about, if it names one.
pub(crate) fn interaction_of(request: &Request) -> Option<&str> {
    Some(match request {
        Request::GetInteraction(r) => &r.interaction_id,
        Request::ChangeProperties(r) => &r.interaction_id,
        Request::PlaceInQueue(r) => &r.interaction_id,
        Request::PlaceInWorkbin(r) => &r.interaction_id,
        Request::Hold(r) => &r.interaction_id,
        Request::Resume(r) => &r.interaction_id,
        Request::LockInteraction(r) => &r.interaction_id,
        Request::UnlockInteraction(r) => &r.interaction_id,
        Request::Transfer(r) => &r.interaction_id,
        Request::Conference(r) => &r.interaction_id,
        Request::ThirdServer(r) => r.interaction_id.as_deref()?,
        _ => return None,
    })
}

pub(crate) fn transition(t: Transition, ix: &Interaction) -> Result<InteractionState, ProtocolError> {
    t.apply(Some(ix.state))
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidState, format!("{}: {e}", ix.id)))
}

pub(crate) fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidValue, message)
}

/// What a client may do to an interaction it does not hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// Moving it (place, pull): only the holder, or anyone while it is queued.
    Move,
    /// Stopping, holding, changing properties: also any media server of the tenant (media
    /// servers own the customer sessions and must be able to end them).
    Touch,
}

impl Engine {
    /// The slot of an interaction of the client's tenant (other tenants' ids look unknown).
    pub(crate) fn find_slot(&self, client: &ClientCtx, id: &str) -> Result<Slot, ProtocolError> {
        let unknown = || ProtocolError::new(ErrorCode::UnknownInteraction, format!("no interaction {id:?}"));
        let id = InteractionId::parse(id).map_err(|_| unknown())?;
        let slot = self.live.slot_of(&id).ok_or_else(unknown)?;
        if self.ix(slot).tenant != client.tenant {
            return Err(unknown());
        }
        Ok(slot)
    }

    pub(crate) fn ix(&self, slot: Slot) -> &Interaction {
        match self.live.get(slot) {
            Some(ix) => ix,
            None => unreachable_slot(slot),
        }
    }

    /// Changes one live interaction, keeping every index exact and marking it for the batch.
    pub(crate) fn update(&mut self, slot: Slot, now: Timestamp, change: impl FnOnce(&mut Interaction)) {
        self.before_change(slot);
        self.unindex_slot(slot);
        if let Some(entry) = self.live.entry_mut(slot) {
            change(&mut entry.ix);
        }
        self.mark_dirty(slot);
        self.live.intern_slot(slot);
        self.index_slot(slot, now);
    }

    /// Checks that `client` may act on `ix` in the way asked.
    pub(crate) fn check_actor(
        &self,
        client: &ClientCtx,
        ix: &Interaction,
        act: Act,
    ) -> Result<(), ProtocolError> {
        if matches!(client.kind, ClientKind::Admin | ClientKind::Proxy)
            || ix.state == InteractionState::Queued
        {
            return Ok(());
        }
        if act == Act::Touch && client.kind == ClientKind::MediaServer {
            return Ok(());
        }
        if ix.assigned_to.as_ref() == Some(&client.holder_name()) {
            return Ok(());
        }
        Err(ProtocolError::new(
            ErrorCode::NotAssigned,
            format!(
                "{} is {} by {}, not by {}",
                ix.id,
                ix.state,
                ix.assigned_to.as_deref().unwrap_or("nobody"),
                client.holder_name()
            ),
        ))
    }
}

#[cold]
fn unreachable_slot(slot: Slot) -> ! {
    // Slots come from the live set's own maps; a missing one is a bug, not input.
    panic!("engine invariant broken: slot {slot} is not live")
}
