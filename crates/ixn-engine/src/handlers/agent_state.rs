//! Agent state requests: login and logout, media, ready / not ready, reasons, do-not-disturb,
//! and presence (a dropped desktop keeps its login for the grace period).

use ixn_config::MultipleConnections;
use ixn_model::{ClientKind, Name, Timestamp};
use ixn_protocol::{
    AgentLogin, ErrorCode, InviteKind, InviteOutcome, Party, ProtocolError, Reason, ReportingEvent,
    ReportingEventKind as K, Request, ServerMessage,
};

use crate::agents::{Agent, Key, MediaState};
use crate::delivery::Timer;
use crate::{ClientCtx, Engine, Notify};

fn agent_key(client: &ClientCtx) -> Result<Key, ProtocolError> {
    match (&client.agent, client.kind) {
        (Some(agent), ClientKind::AgentDesktop) => Ok((client.tenant.clone(), agent.clone())),
        _ => Err(ProtocolError::new(
            ErrorCode::RequestNotAllowed,
            "agent requests come from an agent desktop",
        )),
    }
}

fn not_logged_in(key: &Key) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::AgentNotLoggedIn,
        format!("agent {:?} is not logged in", key.1),
    )
}

impl Engine {
    /// Queues an agent reporting event.
    pub(crate) fn emit_agent(
        &mut self,
        kind: K,
        agent: &Agent,
        media: Option<&str>,
        reason: Option<Reason>,
        now: Timestamp,
    ) {
        let mut e = ReportingEvent::new(self.next_event_seq, kind, now, &agent.tenant);
        self.next_event_seq += 1;
        e.media_type = media.map(str::to_owned);
        e.party = Some(Party {
            kind: "agent".into(),
            name: agent.id.to_string(),
        });
        e.reason = reason;
        if let Some(place) = &agent.place {
            e.actor = Some(Party {
                kind: "place".into(),
                name: place.to_string(),
            });
        }
        self.pending_events.push(e);
    }

    fn status(&self, rid: u64, key: &Key) -> ServerMessage {
        match self.agents.agents.get(key) {
            Some(agent) => ServerMessage::EventAgentStatus {
                reference_id: rid,
                agent: Box::new(self.agents.view(agent)),
            },
            None => ServerMessage::ack(rid),
        }
    }

    /// Logs an agent out: pending offers are revoked (the interactions return to their queues);
    /// interactions it handles stay with it.
    pub(crate) fn logout_agent(&mut self, key: &Key, reason: Option<Reason>, now: Timestamp) {
        let Some(agent) = self.agents.agents.remove(key) else {
            return;
        };
        self.agents.refresh(key);
        let ids: Vec<_> = self
            .agents
            .holding(key)
            .map(|h| h.ids.clone())
            .unwrap_or_default();
        for id in ids {
            let Some(slot) = self.live.slot_of(&id) else {
                continue;
            };
            let before = self.ix(slot).clone();
            if before.state == ixn_model::InteractionState::Delivering
                && before.assigned_to.as_ref() == Some(&key.1)
            {
                let router = self.delivery.routed_by.get(&id).cloned();
                self.return_to_queue(slot, &before, now, "agent logged out");
                if let Some(router) = router {
                    let revoked = InviteOutcome::Revoked;
                    self.outcome_note(&key.0, router, &id, &key.1, InviteKind::Route, revoked, None);
                }
            } else if let Some(list) = self.delivery.invites.get_mut(&id)
                && let Some(pos) = list.iter().position(|i| i.agent == key.1)
            {
                let inv = list.remove(pos);
                if list.is_empty() {
                    self.delivery.invites.remove(&id);
                }
                self.delivery.timers.remove(&inv.expires);
                let media = before.media_type.clone();
                self.release_load(key, &media, &id);
                self.revoke_invite_notes(&key.0, &id, &inv, InviteOutcome::Revoked);
            }
        }
        self.emit_agent(K::AgentLogout, &agent, None, reason, now);
    }

    /// A connection went away: a desktop's agent stays logged in for the grace period.
    pub(crate) fn agent_connection_gone(&mut self, client_id: u64, now: Timestamp) {
        let grace = i64::from(self.settings.agent_grace_period_s) * 1000;
        let keys: Vec<Key> = self
            .agents
            .agents
            .iter()
            .filter(|(_, a)| a.connections.contains(&client_id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(agent) = self.agents.agents.get_mut(&key) else {
                continue;
            };
            agent.connections.retain(|c| *c != client_id);
            if agent.connections.is_empty() {
                if grace == 0 {
                    self.logout_agent(&key, Some(disconnected()), now);
                } else {
                    agent.disconnected_since = Some(now);
                    self.agents.refresh(&key);
                    self.delivery.add_timer(now.plus_millis(grace), Timer::Grace(key));
                }
            }
        }
    }

    /// The last connection of a router application went away: the interactions it held in
    /// `routing` return to their queues at once instead of waiting for `routing-timeout`.
    pub(crate) fn router_gone_at(&mut self, tenant: &Name, router: &Name, now: Timestamp) {
        let held: Vec<_> = self
            .live
            .iter()
            .filter(|(_, ix)| {
                ix.state == ixn_model::InteractionState::Routing
                    && ix.tenant == *tenant
                    && ix.assigned_to.as_ref() == Some(router)
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in held {
            let before = self.ix(slot).clone();
            self.return_to_queue(slot, &before, now, "router disconnected");
        }
    }

    pub(crate) fn grace_expired(&mut self, key: &Key, now: Timestamp) {
        let grace = i64::from(self.settings.agent_grace_period_s) * 1000;
        let expired = self
            .agents
            .agents
            .get(key)
            .and_then(|a| a.disconnected_since)
            .is_some_and(|since| since.plus_millis(grace) <= now);
        if expired {
            self.logout_agent(key, Some(disconnected()), now);
        }
    }
}

fn disconnected() -> Reason {
    Reason {
        code: None,
        description: Some("desktop disconnected longer than agent-grace-period".into()),
    }
}

pub(crate) fn handle(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    request: Request,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    if let Request::GetAgents(r) = &request {
        let mut agents: Vec<_> = eng
            .agents
            .agents
            .values()
            .filter(|a| a.tenant == client.tenant)
            .filter(|a| r.agent_id.as_deref().is_none_or(|id| *a.id == *id))
            .map(|a| eng.agents.view(a))
            .collect();
        agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        return Ok(ServerMessage::EventAgents {
            reference_id: rid,
            agents,
        });
    }
    let key = agent_key(client)?;
    if let Request::AgentLogin(r) = request {
        return login(eng, client, rid, key, r, now);
    }
    let media_known = |eng: &Engine, m: &str| {
        if eng.process.media_types.contains(m) {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::UnknownMediaType,
                format!("no media type {m:?}"),
            ))
        }
    };
    let Some(agent) = eng.agents.agents.get(&key) else {
        return Err(not_logged_in(&key));
    };
    let has_media = |m: &str| {
        if agent.media(m).is_some() {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::MediaNotLoggedIn,
                format!("agent {:?} is not logged in for {m:?}", key.1),
            ))
        }
    };
    // Validate completely before changing anything.
    match &request {
        Request::AddMedia(r) => {
            media_known(eng, &r.media_type)?;
            if agent.media(&r.media_type).is_some() {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidState,
                    format!("agent {:?} already has media {:?}", key.1, r.media_type),
                ));
            }
        }
        Request::RemoveMedia(r) => has_media(&r.media_type)?,
        Request::NotReadyForMedia(r) => has_media(&r.media_type)?,
        Request::CancelNotReadyForMedia(r) => has_media(&r.media_type)?,
        Request::ChangeMediaStateReason(r) => has_media(&r.media_type)?,
        _ => {}
    }
    let mut events: Vec<(K, Option<String>, Option<Reason>)> = Vec::new();
    let Some(agent) = eng.agents.agents.get_mut(&key) else {
        return Err(not_logged_in(&key));
    };
    match request {
        Request::AgentLogout(r) => {
            eng.logout_agent(&key, r.reason, now);
            return Ok(ServerMessage::ack(rid));
        }
        Request::AddMedia(r) => {
            agent.media.push(MediaState {
                media: Name::from(r.media_type.as_str()),
                ready: r.ready,
                reason: r.reason.clone(),
            });
            events.push((K::MediaAdded, Some(r.media_type.clone()), r.reason.clone()));
            let kind = if r.ready {
                K::ReadyForMedia
            } else {
                K::NotReadyForMedia
            };
            events.push((kind, Some(r.media_type), r.reason));
        }
        Request::RemoveMedia(r) => {
            agent.media.retain(|m| *m.media != *r.media_type);
            events.push((K::MediaRemoved, Some(r.media_type), r.reason));
        }
        Request::NotReadyForMedia(r) => {
            if let Some(m) = agent.media_mut(&r.media_type) {
                m.ready = false;
                m.reason = r.reason.clone();
            }
            events.push((K::NotReadyForMedia, Some(r.media_type), r.reason));
        }
        Request::CancelNotReadyForMedia(r) => {
            if let Some(m) = agent.media_mut(&r.media_type) {
                m.ready = true;
                m.reason = r.reason.clone();
            }
            events.push((K::ReadyForMedia, Some(r.media_type), r.reason));
        }
        Request::ChangeMediaStateReason(r) => {
            if let Some(m) = agent.media_mut(&r.media_type) {
                m.reason = r.reason.clone();
            }
            events.push((K::MediaStateReasonChanged, Some(r.media_type), r.reason));
        }
        Request::ChangeAgentStateReason(r) => {
            agent.reason = r.reason.clone();
            events.push((K::AgentStateReasonChanged, None, r.reason));
        }
        Request::DoNotDisturbOn(r) => {
            agent.dnd = true;
            events.push((K::DoNotDisturbOn, None, r.reason));
        }
        Request::DoNotDisturbOff(r) => {
            agent.dnd = false;
            events.push((K::DoNotDisturbOff, None, r.reason));
        }
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "not an agent-state request",
            ));
        }
    }
    let agent = agent.clone();
    for (kind, media, reason) in events {
        eng.emit_agent(kind, &agent, media.as_deref(), reason, now);
    }
    eng.agents.refresh(&key);
    eng.touched_agents.push(key.clone());
    Ok(eng.status(rid, &key))
}

fn login(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    key: Key,
    r: AgentLogin,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    for m in &r.media {
        if !eng.process.media_types.contains(m.media_type.as_str()) {
            return Err(ProtocolError::new(
                ErrorCode::UnknownMediaType,
                format!("no media type {:?}", m.media_type),
            ));
        }
    }
    if let Some(existing) = eng.agents.agents.get_mut(&key) {
        let connected = !existing.connections.is_empty();
        if existing.connections.contains(&client.client_id) {
            return Err(ProtocolError::new(
                ErrorCode::InvalidState,
                format!("agent {:?} is already logged in on this connection", key.1),
            ));
        }
        if !connected {
            // Reconnect within the grace period: the login resumes as it was.
            existing.connections.push(client.client_id);
            existing.disconnected_since = None;
            eng.agents.refresh(&key);
            eng.touched_agents.push(key.clone());
            return Ok(eng.status(rid, &key));
        }
        match eng.settings.allow_multiple_agent_connections {
            MultipleConnections::Allow => {
                existing.connections.push(client.client_id);
                return Ok(eng.status(rid, &key));
            }
            MultipleConnections::Deny => {
                return Err(ProtocolError::of(ErrorCode::AgentAlreadyLoggedIn));
            }
            MultipleConnections::ForceLogout => {
                for old in existing.connections.clone() {
                    eng.notes.push((
                        Notify::Client(old),
                        ServerMessage::EventError {
                            reference_id: None,
                            error: ixn_protocol::ErrorBody::from(&ProtocolError::new(
                                ErrorCode::AgentAlreadyLoggedIn,
                                "logged out: the agent logged in from another connection",
                            )),
                        },
                    ));
                }
                eng.logout_agent(&key, None, now);
            }
        }
    }
    let mut media: Vec<MediaState> = Vec::new();
    for m in &r.media {
        if media.iter().any(|x| *x.media == *m.media_type) {
            continue;
        }
        media.push(MediaState {
            media: Name::from(m.media_type.as_str()),
            ready: m.ready,
            reason: m.reason.clone(),
        });
    }
    let order = eng.agents.next_login_order();
    let agent = Agent {
        id: key.1.clone(),
        tenant: key.0.clone(),
        place: r.place.as_deref().map(Name::from),
        logged_in_at: now,
        login_order: order,
        media,
        dnd: false,
        reason: r.reason.clone(),
        connections: vec![client.client_id],
        disconnected_since: None,
        idle_since: now,
        last_offer: 0,
    };
    eng.emit_agent(K::AgentLogin, &agent, None, r.reason, now);
    for m in &agent.media {
        let kind = if m.ready {
            K::ReadyForMedia
        } else {
            K::NotReadyForMedia
        };
        eng.emit_agent(kind, &agent, Some(&m.media), m.reason.clone(), now);
    }
    eng.agents.agents.insert(key.clone(), agent);
    eng.agents.refresh(&key);
    eng.touched_agents.push(key.clone());
    Ok(eng.status(rid, &key))
}
