//! Delivery and collaboration: a router's route request, the agent's accept or reject, and
//! transfer, conference, intrude and leave on a handled interaction.

use ixn_model::skills::SkillExpr;
use ixn_model::{InteractionId, InteractionState, Name, Timestamp, Transition};
use ixn_protocol::{
    Conference, ErrorCode, Intrude, InviteKind, InviteOutcome, LeaveInteraction, Party, ProtocolError,
    Reason, ReportingEventKind as K, RouteInteraction, ServerMessage, Transfer, Visibility,
};

use super::{invalid, transition};
use crate::delivery::{Invite, Timer};
use crate::effects::{party_of, view_of};
use crate::live::Slot;
use crate::{ClientCtx, Engine, Notify, Output};

/// User-data key the engine sets to the agent an interaction was routed to.
pub const TARGET_AGENT_KEY: &str = "RTargetAgentSelected";
/// User-data key the engine sets to that agent's place, when it logged in at one.
pub const TARGET_PLACE_KEY: &str = "RTargetPlaceSelected";

fn agent_party(name: &Name) -> Party {
    Party {
        kind: "agent".into(),
        name: name.to_string(),
    }
}

fn no_invite(id: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NoInvite,
        format!("no pending invite for this agent on {id}"),
    )
}

impl Engine {
    fn ack_with(&self, rid: u64, slot: Slot) -> ServerMessage {
        let ix = self.ix(slot);
        ServerMessage::EventAck {
            reference_id: rid,
            interaction_id: Some(ix.id.to_string()),
            interaction: Some(view_of(ix)),
        }
    }

    /// An invite's notification to the invited agent.
    fn send_invite(&mut self, slot: Slot, agent: &Name, kind: InviteKind, from: Party, expires: Timestamp) {
        let ix = self.ix(slot);
        let note = (
            Notify::Holder {
                tenant: ix.tenant.clone(),
                holder: agent.clone(),
            },
            ServerMessage::EventInvite {
                invite: kind,
                interaction: view_of(ix),
                from,
                expires_at: expires,
            },
        );
        self.notes.push(note);
        let offer = self.agents.next_offer();
        let tenant = self.ix(slot).tenant.clone();
        if let Some(a) = self.agents.agents.get_mut(&(tenant, agent.clone())) {
            a.last_offer = offer;
        }
    }

    /// Every party of a handled interaction (holder first) except `except`.
    fn parties_of(&self, slot: Slot, except: &Name) -> Vec<Name> {
        let ix = self.ix(slot);
        let mut out: Vec<Name> = ix.assigned_to.iter().cloned().collect();
        if let Some(p) = self.delivery.parties.get(&ix.id) {
            out.extend(p.iter().map(|(n, _)| n.clone()));
        }
        out.retain(|n| n != except);
        out
    }

    fn tell_parties(&mut self, slot: Slot, except: &Name, message: ServerMessage) {
        let tenant = self.ix(slot).tenant.clone();
        for p in self.parties_of(slot, except) {
            self.notes.push((
                Notify::Holder {
                    tenant: tenant.clone(),
                    holder: p,
                },
                message.clone(),
            ));
        }
    }

    /// The agent named directly or logged in at `place`.
    fn resolve_agent(
        &self,
        tenant: &Name,
        agent: Option<&str>,
        place: Option<&str>,
    ) -> Result<Name, ProtocolError> {
        let found = match (agent, place) {
            (Some(a), None) => self
                .agents
                .agents
                .get(&(tenant.clone(), Name::from(a)))
                .map(|x| x.id.clone()),
            (None, Some(p)) => self
                .agents
                .agents
                .values()
                .filter(|x| x.tenant == *tenant && x.place.as_deref() == Some(p))
                .min_by_key(|x| x.login_order)
                .map(|x| x.id.clone()),
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    "give exactly one of `agent` or `place`",
                ));
            }
        };
        found.ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::UnknownAgent,
                format!("no logged-in agent {:?}", agent.or(place).unwrap_or_default()),
            )
        })
    }
}

pub(crate) fn route(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: RouteInteraction,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let before = eng.ix(slot).clone();
    transition(Transition::RouteToAgent, &before)?;
    eng.check_actor(client, &before, super::Act::Move)?;
    let skills = r
        .target
        .skills
        .as_deref()
        .map(SkillExpr::parse)
        .transpose()
        .map_err(|e| invalid(format!("target.skills: {e}")))?;
    let declined = eng.delivery.declined.get(&before.id).cloned().unwrap_or_default();
    let agent = eng
        .agents
        .select(
            &before.tenant,
            &before.media_type,
            &r.target,
            skills.as_ref(),
            &declined,
        )
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::NoAgentAvailable,
                format!(
                    "no agent of the target can take {} ({}) now",
                    before.id, before.media_type
                ),
            )
        })?;
    let router = client.holder_name();
    // Offering to an agent is volatile (see Engine::release_after).
    eng.volatile = true;
    // The virtual-queue reporting key of the chosen target, written in the same change.
    let mut added = r.added_properties.clone();
    added.set(TARGET_AGENT_KEY, ixn_model::Value::Str(agent.to_string()));
    if let Some(place) = eng
        .agents
        .agents
        .get(&(before.tenant.clone(), agent.clone()))
        .and_then(|a| a.place.clone())
    {
        added.set(TARGET_PLACE_KEY, ixn_model::Value::Str(place.to_string()));
    }
    eng.update(slot, now, |ix| {
        ix.state = InteractionState::Delivering;
        ix.assigned_to = Some(agent.clone());
        ix.assigned_at = Some(now);
        ix.user_data.merge(&added);
    });
    eng.delivery.routed_by.insert(before.id.clone(), router);
    let expires = now.plus_millis(i64::from(eng.settings.delivering_timeout_s) * 1000);
    let from = party_of(client);
    eng.send_invite(slot, &agent, InviteKind::Route, from.clone(), expires);
    let ix = eng.ix(slot).clone();
    eng.emit(K::AgentInvited, &ix, now, |e| {
        e.actor = Some(from);
        e.party = Some(agent_party(&agent));
    });
    eng.emit(K::PropertiesChanged, &ix, now, |e| {
        e.changes = Some(ixn_protocol::PropertyChanges {
            added,
            ..Default::default()
        });
    });
    Ok(eng.ack_with(rid, slot))
}

fn pending_invite(eng: &Engine, id: &InteractionId, agent: &Name) -> Option<usize> {
    eng.delivery
        .invites
        .get(id)
        .and_then(|l| l.iter().position(|i| &i.agent == agent))
}

fn take_invite(eng: &mut Engine, id: &InteractionId, pos: usize) -> Invite {
    let list = eng.delivery.invites.get_mut(id);
    let inv = match list {
        Some(l) => l.remove(pos),
        None => unreachable_invite(),
    };
    if eng.delivery.invites.get(id).is_some_and(Vec::is_empty) {
        eng.delivery.invites.remove(id);
    }
    eng.delivery.timers.remove(&inv.expires);
    inv
}

#[cold]
fn unreachable_invite() -> ! {
    panic!("engine invariant broken: invite position without invite list")
}

pub(crate) fn accept(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    interaction_id: &str,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, interaction_id)?;
    let before = eng.ix(slot).clone();
    let me = client.holder_name();
    if before.state == InteractionState::Delivering && before.assigned_to.as_ref() == Some(&me) {
        transition(Transition::Accept, &before)?;
        let router = eng.delivery.routed_by.remove(&before.id);
        eng.update(slot, now, |ix| {
            ix.state = InteractionState::Handling;
            ix.delivered_at = Some(now);
        });
        let ix = eng.ix(slot).clone();
        eng.emit(K::PartyAdded, &ix, now, |e| e.party = Some(agent_party(&me)));
        if let Some(router) = router {
            let (tenant, id, outcome) = (&before.tenant, &before.id, InviteOutcome::Accepted);
            eng.outcome_note(tenant, router, id, &me, InviteKind::Route, outcome, None);
        }
        return Ok(eng.ack_with(rid, slot));
    }
    let pos = pending_invite(eng, &before.id, &me).ok_or_else(|| no_invite(interaction_id))?;
    let inv = take_invite(eng, &before.id, pos);
    let media = before.media_type.clone();
    let key = (before.tenant.clone(), me.clone());
    if let Some(requester) = inv.requester.clone() {
        let (tenant, id) = (&before.tenant, &before.id);
        eng.outcome_note(
            tenant,
            requester,
            id,
            &me,
            inv.kind,
            InviteOutcome::Accepted,
            None,
        );
    }
    match inv.kind {
        InviteKind::Transfer => {
            // The reservation becomes the primary holding through the index hook.
            eng.release_load(&key, &media, &before.id);
            let old = before.assigned_to.clone();
            eng.update(slot, now, |ix| {
                ix.assigned_to = Some(me.clone());
                ix.assigned_at = Some(now);
            });
            let ix = eng.ix(slot).clone();
            if let Some(old) = old {
                eng.emit(K::PartyRemoved, &before, now, |e| {
                    e.party = Some(agent_party(&old))
                });
                let reason = Some(Reason {
                    code: None,
                    description: Some("transferred".into()),
                });
                eng.revoked_note(&before.tenant, old, &before.id, reason);
            }
            eng.emit(K::PartyAdded, &ix, now, |e| e.party = Some(agent_party(&me)));
        }
        _ => {
            eng.delivery
                .parties
                .entry(before.id.clone())
                .or_default()
                .push((me.clone(), Visibility::Conference));
            eng.emit(K::PartyAdded, &before, now, |e| e.party = Some(agent_party(&me)));
            eng.tell_parties(
                slot,
                &me,
                ServerMessage::EventPartyAdded {
                    interaction_id: before.id.to_string(),
                    party: agent_party(&me),
                    visibility: Some(Visibility::Conference),
                },
            );
        }
    }
    Ok(eng.ack_with(rid, slot))
}

pub(crate) fn reject(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    interaction_id: &str,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, interaction_id)?;
    let before = eng.ix(slot).clone();
    let me = client.holder_name();
    if before.state == InteractionState::Delivering && before.assigned_to.as_ref() == Some(&me) {
        transition(Transition::Reject, &before)?;
        let router = eng.delivery.routed_by.get(&before.id).cloned();
        eng.emit(K::Rejected, &before, now, |e| {
            e.party = Some(agent_party(&me));
            e.reason = reason.clone();
        });
        eng.delivery
            .declined
            .entry(before.id.clone())
            .or_default()
            .push(me.clone());
        eng.return_to_queue(slot, &before, now, "rejected");
        if let Some(router) = router {
            let (tenant, id, outcome) = (&before.tenant, &before.id, InviteOutcome::Rejected);
            eng.outcome_note(tenant, router, id, &me, InviteKind::Route, outcome, reason);
        }
        return Ok(ServerMessage::ack(rid));
    }
    let pos = pending_invite(eng, &before.id, &me).ok_or_else(|| no_invite(interaction_id))?;
    let inv = take_invite(eng, &before.id, pos);
    eng.delivery
        .declined
        .entry(before.id.clone())
        .or_default()
        .push(me.clone());
    eng.release_load(
        &(before.tenant.clone(), me.clone()),
        &before.media_type,
        &before.id,
    );
    eng.emit(K::Rejected, &before, now, |e| {
        e.party = Some(agent_party(&me));
        e.reason = reason.clone();
    });
    if let Some(requester) = inv.requester.clone() {
        let (tenant, id) = (&before.tenant, &before.id);
        eng.outcome_note(
            tenant,
            requester,
            id,
            &me,
            inv.kind,
            InviteOutcome::Rejected,
            reason,
        );
    }
    Ok(ServerMessage::ack(rid))
}

/// Checks that the client handles the interaction (holder, state handling).
fn handled_by(eng: &Engine, client: &ClientCtx, slot: Slot) -> Result<(), ProtocolError> {
    let ix = eng.ix(slot);
    if ix.state != InteractionState::Handling {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{} is {}, not handling", ix.id, ix.state),
        ));
    }
    eng.check_actor(client, ix, super::Act::Move)
}

fn invite_agent(
    eng: &mut Engine,
    client: &ClientCtx,
    slot: Slot,
    agent: Name,
    kind: InviteKind,
    now: Timestamp,
) -> Result<(), ProtocolError> {
    let ix = eng.ix(slot).clone();
    let already = eng.parties_of(slot, &Name::from("")).contains(&agent)
        || pending_invite(eng, &ix.id, &agent).is_some();
    if already {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{agent} is already a party of, or invited to, {}", ix.id),
        ));
    }
    let key = (ix.tenant.clone(), agent.clone());
    let available = eng
        .agents
        .agents
        .get(&key)
        .is_some_and(|a| eng.agents.available(a, &ix.media_type));
    if !available {
        return Err(ProtocolError::new(
            ErrorCode::AgentNotAvailable,
            format!("agent {agent} cannot take {} now", ix.media_type),
        ));
    }
    let until = now.plus_millis(i64::from(eng.settings.delivering_timeout_s) * 1000);
    let expires = eng
        .delivery
        .add_timer(until, Timer::Invite(ix.id.clone(), agent.clone()));
    eng.agents.hold(&key, &ix.media_type, &ix.id);
    let from = party_of(client);
    eng.delivery
        .invites
        .entry(ix.id.clone())
        .or_default()
        .push(Invite {
            agent: agent.clone(),
            kind,
            requester: Some(client.holder_name()),
            expires,
        });
    eng.send_invite(slot, &agent, kind, from.clone(), until);
    eng.emit(K::AgentInvited, &ix, now, |e| {
        e.actor = Some(from);
        e.party = Some(agent_party(&agent));
    });
    Ok(())
}

pub(crate) fn transfer(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: Transfer,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    handled_by(eng, client, slot)?;
    if let Some(q) = &r.queue {
        if r.agent.is_some() || r.place.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "give one of `agent`, `place` or `queue`",
            ));
        }
        let queue = eng
            .process
            .queue(&client.tenant, q)
            .cloned()
            .ok_or_else(|| ProtocolError::new(ErrorCode::UnknownQueue, format!("no queue {q:?}")))?;
        eng.place_slot_in_queue(client, slot, queue, &Default::default(), now, out);
        return Ok(eng.ack_with(rid, slot));
    }
    let tenant = eng.ix(slot).tenant.clone();
    let agent = eng.resolve_agent(&tenant, r.agent.as_deref(), r.place.as_deref())?;
    invite_agent(eng, client, slot, agent, InviteKind::Transfer, now)?;
    Ok(eng.ack_with(rid, slot))
}

pub(crate) fn conference(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: Conference,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    handled_by(eng, client, slot)?;
    let tenant = eng.ix(slot).tenant.clone();
    let agent = eng.resolve_agent(&tenant, r.agent.as_deref(), r.place.as_deref())?;
    invite_agent(eng, client, slot, agent, InviteKind::Conference, now)?;
    Ok(eng.ack_with(rid, slot))
}

pub(crate) fn intrude(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: Intrude,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let ix = eng.ix(slot).clone();
    if ix.state != InteractionState::Handling {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{} is {}, not handling", ix.id, ix.state),
        ));
    }
    let me = client.holder_name();
    if !eng.agents.agents.contains_key(&(ix.tenant.clone(), me.clone())) {
        return Err(ProtocolError::new(
            ErrorCode::AgentNotLoggedIn,
            format!("agent {me:?} is not logged in"),
        ));
    }
    if eng.parties_of(slot, &Name::from("")).contains(&me) {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{me} is already a party of {}", ix.id),
        ));
    }
    if r.visibility == Visibility::Conference {
        eng.agents
            .hold(&(ix.tenant.clone(), me.clone()), &ix.media_type, &ix.id);
    }
    eng.delivery
        .parties
        .entry(ix.id.clone())
        .or_default()
        .push((me.clone(), r.visibility));
    eng.emit(K::PartyAdded, &ix, now, |e| {
        e.party = Some(Party {
            kind: "supervisor".into(),
            name: me.to_string(),
        });
    });
    if r.visibility != Visibility::Monitor {
        let notice = ServerMessage::EventPartyAdded {
            interaction_id: ix.id.to_string(),
            party: agent_party(&me),
            visibility: Some(r.visibility),
        };
        match r.visibility {
            // Coaching: only the handling agent sees the supervisor.
            Visibility::Coach => {
                if let Some(holder) = ix.assigned_to.clone() {
                    eng.notes.push((
                        Notify::Holder {
                            tenant: ix.tenant.clone(),
                            holder,
                        },
                        notice,
                    ));
                }
            }
            _ => eng.tell_parties(slot, &me, notice),
        }
    }
    Ok(eng.ack_with(rid, slot))
}

pub(crate) fn leave(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: LeaveInteraction,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    let before = eng.ix(slot).clone();
    let me = client.holder_name();
    let party_pos = eng
        .delivery
        .parties
        .get(&before.id)
        .and_then(|p| p.iter().position(|(n, _)| *n == me));
    let removed = ServerMessage::EventPartyRemoved {
        interaction_id: before.id.to_string(),
        party: agent_party(&me),
    };
    if let Some(pos) = party_pos {
        if let Some(list) = eng.delivery.parties.get_mut(&before.id) {
            list.remove(pos);
            if list.is_empty() {
                eng.delivery.parties.remove(&before.id);
            }
        }
        eng.release_load(
            &(before.tenant.clone(), me.clone()),
            &before.media_type,
            &before.id,
        );
        eng.emit(K::PartyRemoved, &before, now, |e| {
            e.party = Some(agent_party(&me));
            e.reason = r.reason.clone();
        });
        eng.tell_parties(slot, &me, removed);
        return Ok(ServerMessage::ack(rid));
    }
    if before.state != InteractionState::Handling || before.assigned_to.as_ref() != Some(&me) {
        return Err(ProtocolError::new(
            ErrorCode::NotAssigned,
            format!("{me} is not a party of {}", before.id),
        ));
    }
    // The first conference party takes over; with no one left it returns to its queue.
    let heir = eng.delivery.parties.get(&before.id).and_then(|p| {
        p.iter()
            .position(|(_, v)| *v == Visibility::Conference)
            .map(|i| (i, p[i].0.clone()))
    });
    if let Some((pos, heir)) = heir {
        if let Some(list) = eng.delivery.parties.get_mut(&before.id) {
            list.remove(pos);
        }
        eng.release_load(
            &(before.tenant.clone(), heir.clone()),
            &before.media_type,
            &before.id,
        );
        eng.update(slot, now, |ix| {
            ix.assigned_to = Some(heir.clone());
            ix.assigned_at = Some(now);
        });
        eng.emit(K::PartyRemoved, &before, now, |e| {
            e.party = Some(agent_party(&me));
            e.reason = r.reason.clone();
        });
        eng.tell_parties(slot, &me, removed);
        return Ok(ServerMessage::ack(rid));
    }
    if before.queue.is_none() {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!(
                "{} came from no queue: place it in a queue or workbin, or stop it",
                before.id
            ),
        ));
    }
    eng.return_to_queue(slot, &before, now, "last party left");
    Ok(ServerMessage::ack(rid))
}
