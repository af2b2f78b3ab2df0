//! Engine tests: a fixture built from a small TOML business process (two tenants, views with
//! conditions, orders and limits, workbins, a custom property), client contexts of each kind,
//! data-driven unit tests per request family, and property tests over random request sequences
//! that check [`Engine::check_invariants`] after every step.
//!
//! Everything here goes through [`Engine::handle`], `tick`, `load` and `take_batch`; the
//! invariant checker alone reads the engine's private bookkeeping, to compare it with a recount
//! from scratch.

mod agent_props;
mod agents;
mod invariants;
mod lifecycle;
mod properties;
mod props;
mod queries;

use ixn_config::Config;
use ixn_model::{ClientKind, Name, Timestamp, UserData, Value};
use ixn_protocol::{
    InteractionView, ProtocolError, Pull, ReportingEvent, ReportingEventKind, Request, ServerMessage, Submit,
};

use crate::{Batch, ClientCtx, Engine, Notify, Output};

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The business process of the tests.
///
/// Tenant `default`: queue `inbound` with views `all` (priority desc, submitted_at asc), `gold`
/// (custom property `segment`), `eu` (user-data key `Region`, limit 2) and `waited`
/// (time-dependent); queue `parking` with view `parking-all`; queue `empty` without views;
/// workbins `drafts` (agent) and `team` (agent group). Tenant `acme`: queue `inbound` with view
/// `acme-all` and workbin `drafts`.
pub(crate) const PROCESS: &str = r#"
[settings]
max-interactions-per-snapshot = 100

[[tenants]]
name = "default"

[[tenants]]
name = "acme"

[[media-types]]
name = "chat"

[[media-types]]
name = "email"

[[custom-properties]]
name = "segment"
key = "Segment"
type = "string"

[[queues]]
name = "inbound"

[[queues]]
name = "parking"

[[queues]]
name = "empty"

[[queues]]
name = "inbound"
tenant = "acme"

[[views]]
name = "all"
queue = "inbound"
order = "priority desc, submitted_at asc"

[[views]]
name = "gold"
queue = "inbound"
condition = "segment = 'gold'"
order = "priority desc, submitted_at asc"

[[views]]
name = "eu"
queue = "inbound"
condition = "Region = 'eu'"
limit = 2

[[views]]
name = "waited"
queue = "inbound"
condition = "_time_in_queue >= 5"

[[views]]
name = "parking-all"
queue = "parking"

[[views]]
name = "acme-all"
tenant = "acme"
queue = "inbound"

[[workbins]]
name = "drafts"
type = "agent"

[[workbins]]
name = "team"
type = "agent-group"

[[workbins]]
name = "drafts"
tenant = "acme"
type = "agent"
"#;

pub(crate) fn config(text: &str) -> Config {
    match ixn_config::parse(text, "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test process does not parse:\n{e}"),
    }
}

fn ctx(id: u64, tenant: &str, application: &str, kind: ClientKind, agent: Option<&str>) -> ClientCtx {
    ClientCtx {
        client_id: id,
        application: Name::new(application),
        kind,
        tenant: Name::new(tenant),
        agent: agent.map(Name::new),
    }
}

/// The clients of the tests; `client_id`s are distinct.
pub(crate) mod clients {
    use super::*;

    pub fn chat() -> ClientCtx {
        ctx(1, "default", "chat-server", ClientKind::MediaServer, None)
    }
    pub fn email() -> ClientCtx {
        ctx(2, "default", "email-server", ClientKind::MediaServer, None)
    }
    pub fn router() -> ClientCtx {
        ctx(3, "default", "router-1", ClientKind::Router, None)
    }
    pub fn ann() -> ClientCtx {
        ctx(4, "default", "desktop", ClientKind::AgentDesktop, Some("ann"))
    }
    pub fn bob() -> ClientCtx {
        ctx(5, "default", "desktop", ClientKind::AgentDesktop, Some("bob"))
    }
    pub fn admin() -> ClientCtx {
        ctx(6, "default", "admin", ClientKind::Admin, None)
    }
    pub fn reporting() -> ClientCtx {
        ctx(7, "default", "reports", ClientKind::Reporting, None)
    }
    pub fn acme_chat() -> ClientCtx {
        ctx(11, "acme", "chat-server", ClientKind::MediaServer, None)
    }
    pub fn acme_agent() -> ClientCtx {
        ctx(12, "acme", "desktop", ClientKind::AgentDesktop, Some("ann"))
    }
    pub fn acme_router() -> ClientCtx {
        ctx(13, "acme", "router-1", ClientKind::Router, None)
    }
    pub fn acme_reporting() -> ClientCtx {
        ctx(14, "acme", "reports", ClientKind::Reporting, None)
    }
}

/// An engine at a settable time, with the notifications of the last request.
pub(crate) struct Fixture {
    pub eng: Engine,
    pub now: Timestamp,
    pub out: Output,
    next_rid: u64,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_process(PROCESS)
    }

    pub fn with_process(text: &str) -> Fixture {
        let c = config(text);
        Fixture {
            eng: Engine::new(&c.process, c.settings, 1, 0),
            now: T0,
            out: Output::default(),
            next_rid: 1,
        }
    }

    /// Handles one request at `self.now`; `self.out` holds only this request's notifications.
    pub fn req(&mut self, client: &ClientCtx, request: Request) -> Result<ServerMessage, ProtocolError> {
        self.out = Output::default();
        let rid = self.next_rid;
        self.next_rid += 1;
        let answer = self.eng.handle(client, rid, request, self.now, &mut self.out);
        if let Ok(m) = &answer {
            assert_eq!(
                m.reference_id(),
                Some(rid),
                "the answer carries the reference: {m:?}"
            );
        }
        answer
    }

    /// Like [`Fixture::req`], for requests that must succeed.
    pub fn ok(&mut self, client: &ClientCtx, request: Request) -> ServerMessage {
        let name = request.name();
        match self.req(client, request) {
            Ok(m) => m,
            Err(e) => panic!("{name} failed: {e}"),
        }
    }

    /// The error code of a request that must fail; also checks that it changed nothing.
    pub fn fails(&mut self, client: &ClientCtx, request: Request) -> ProtocolError {
        self.eng.take_batch();
        let before = self.eng.fingerprint();
        let name = request.name();
        let err = match self.req(client, request) {
            Ok(m) => panic!("{name} should fail, got {m:?}"),
            Err(e) => e,
        };
        assert_eq!(
            self.eng.fingerprint(),
            before,
            "{name} failed with {err} but changed the engine"
        );
        let batch = self.eng.take_batch();
        assert!(
            batch.interactions.is_empty() && batch.events.is_empty(),
            "{name} failed but wrote {batch:?}"
        );
        assert!(
            self.out.notifications.is_empty(),
            "{name} failed but notified {:?}",
            self.out.notifications
        );
        err
    }

    pub fn submit_with(
        &mut self,
        client: &ClientCtx,
        queue: Option<&str>,
        f: impl FnOnce(&mut Submit),
    ) -> String {
        let mut s = submit_req(queue);
        f(&mut s);
        ack_id(&self.ok(client, Request::Submit(s)))
    }

    pub fn submit(&mut self, client: &ClientCtx, queue: &str) -> String {
        self.submit_with(client, Some(queue), |_| {})
    }

    pub fn pull_view(&mut self, client: &ClientCtx, view: &str, count: u32) -> Vec<String> {
        let r = Pull {
            view: Some(view.into()),
            count,
            interaction_ids: vec![],
            strategy: None,
            max_wait_ms: None,
        };
        pulled_ids(&self.ok(client, Request::Pull(r)))
    }

    pub fn get(&self, id: &str) -> Option<InteractionView> {
        let id = ixn_model::InteractionId::parse(id).ok()?;
        self.eng.live.get_by_id(&id).map(InteractionView::from)
    }

    pub fn state(&self, id: &str) -> Option<ixn_model::InteractionState> {
        self.get(id).map(|v| v.state)
    }

    /// Kinds of the events written since the last call.
    pub fn event_kinds(&mut self) -> Vec<ReportingEventKind> {
        self.batch().events.iter().map(|e| e.event).collect()
    }

    pub fn batch(&mut self) -> Batch {
        self.eng.take_batch()
    }

    pub fn queue_counts(&self, tenant: &str, queue: &str) -> (u64, u64) {
        let c = self.eng.views.counts(&Name::new(tenant), &Name::new(queue));
        (c.waiting, c.in_progress)
    }
}

pub(crate) fn submit_req(queue: Option<&str>) -> Submit {
    Submit {
        queue: queue.map(str::to_owned),
        ..Submit::new("chat")
    }
}

/// A queued interaction of tenant `default` as the store would load it.
pub(crate) fn interaction(id: &str, queue: &str, submit_seq: u64) -> ixn_model::Interaction {
    let at = T0.plus_millis(-1000 + submit_seq as i64);
    ixn_model::Interaction {
        moved_to_queue_at: None,
        ..ixn_model::Interaction::queued(
            ixn_model::InteractionId::parse(id).expect("valid id"),
            Name::new("default"),
            Name::new("chat"),
            Name::new(queue),
            Name::new("chat-server"),
            submit_seq,
            at,
        )
    }
}

pub(crate) fn user_data(pairs: &[(&str, &str)]) -> UserData {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Str((*v).to_owned())))
        .collect()
}

pub(crate) fn ack_id(m: &ServerMessage) -> String {
    match m {
        ServerMessage::EventAck {
            interaction_id: Some(id),
            ..
        } => id.clone(),
        other => panic!("expected an EventAck with an interaction id, got {other:?}"),
    }
}

pub(crate) fn pulled_ids(m: &ServerMessage) -> Vec<String> {
    match m {
        ServerMessage::EventPulledInteractions { interactions, .. } => {
            interactions.iter().map(|i| i.id.clone()).collect()
        }
        other => panic!("expected EventPulledInteractions, got {other:?}"),
    }
}

pub(crate) fn listed_ids(m: &ServerMessage) -> Vec<String> {
    match m {
        ServerMessage::EventFoundInteractions { interactions, .. }
        | ServerMessage::EventSnapshotInteractions { interactions, .. }
        | ServerMessage::EventWorkbinContent { interactions, .. } => {
            interactions.iter().map(|i| i.id.clone()).collect()
        }
        other => panic!("expected a list of interactions, got {other:?}"),
    }
}

/// Events as (kind, interaction id) for compact expectations.
pub(crate) fn kinds_of(events: &[ReportingEvent]) -> Vec<(ReportingEventKind, String)> {
    events
        .iter()
        .map(|e| (e.event, e.interaction_id.clone().unwrap_or_default()))
        .collect()
}

/// Notifications as (recipient, event name, interaction id).
pub(crate) fn notes(out: &Output) -> Vec<(Notify, &'static str, String)> {
    out.notifications
        .iter()
        .map(|(to, m)| {
            let (name, id) = match m {
                ServerMessage::EventRevoked { interaction_id, .. } => ("EventRevoked", interaction_id),
                ServerMessage::EventProcessingStopped { interaction_id, .. } => {
                    ("EventProcessingStopped", interaction_id)
                }
                ServerMessage::EventPropertiesChanged { interaction_id, .. } => {
                    ("EventPropertiesChanged", interaction_id)
                }
                other => panic!("unexpected notification {other:?}"),
            };
            (to.clone(), name, id.clone())
        })
        .collect()
}

pub(crate) fn holder(tenant: &str, name: &str) -> Notify {
    Notify::Holder {
        tenant: Name::new(tenant),
        holder: Name::new(name),
    }
}

pub(crate) fn application(tenant: &str, name: &str) -> Notify {
    Notify::Application {
        tenant: Name::new(tenant),
        application: Name::new(name),
    }
}

pub(crate) fn watching(tenant: &str, name: &str) -> Notify {
    Notify::SubmitterWatching {
        tenant: Name::new(tenant),
        application: Name::new(name),
    }
}
