//! The ESP relay: Request3rdServer calls are forwarded to a connected ESP server (chosen by
//! application name, or by application type and service with round robin), and the server's
//! result or fault goes back to the requester. One task owns the registry of ESP connections,
//! the pending calls and their deadlines; sessions talk to it through [`EspHandle`].
//!
//! Each step of a call is also a reporting event: the relay hands it to the core actor, which
//! records it in the engine and releases the forwarded request (or the answer) only after the
//! batch holding that event is durable. Deadlines sit in an ordered set and the task sleeps until
//! the first one, so a timeout answers on time without scanning.
//!
//! Architecture invariant: the relay holds no interaction state and never touches the engine
//! itself; what reporting needs goes through the core.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ixn_engine::{ClientCtx, Engine};
use ixn_model::{ClientKind, InteractionId, Name, Timestamp};
use ixn_protocol::{
    ErrorCode, EspInfo, ExternalServiceResponse, Party, ProtocolError, ServerMessage, ThirdServer,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::core::{CoreMsg, Reply};
use crate::startup::Shared;
use crate::writer::{Dest, WsOut};

/// Seconds a call waits for its answer when the request gives no `timeout_s`.
const DEFAULT_TIMEOUT_S: u32 = 30;
/// Longest `timeout_s` a request may ask for.
const MAX_TIMEOUT_S: u32 = 600;
/// Messages queued for the relay before senders wait.
const QUEUE: usize = 4096;
/// The request name ESP error counters are kept under (`collect-esp-error-counters`).
const REQUEST_NAME: &str = "Request3rdServer";

/// What sessions tell the relay.
#[derive(Debug)]
pub(crate) enum EspMsg {
    /// An `esp-server` connection registered.
    Register {
        ctx: ClientCtx,
        app_type: Option<String>,
        services: Vec<String>,
        tx: mpsc::UnboundedSender<WsOut>,
    },
    /// An `esp-server` connection went away; its pending calls fail.
    Unregister { client_id: u64 },
    Call {
        ctx: ClientCtx,
        reference_id: u64,
        request: ThirdServer,
        reply: Reply,
    },
    Respond {
        ctx: ClientCtx,
        reference_id: u64,
        response: ExternalServiceResponse,
        reply: Reply,
    },
}

/// The sessions' side of the relay. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct EspHandle {
    tx: mpsc::Sender<EspMsg>,
}

impl EspHandle {
    pub fn channel() -> (EspHandle, mpsc::Receiver<EspMsg>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (EspHandle { tx }, rx)
    }

    /// Adds an ESP connection to the registry (before its registration is answered, so a call
    /// sent after that answer finds it).
    pub async fn register(
        &self,
        ctx: &ClientCtx,
        app_type: Option<String>,
        services: Vec<String>,
        tx: mpsc::UnboundedSender<WsOut>,
    ) {
        let msg = EspMsg::Register {
            ctx: ctx.clone(),
            app_type,
            services,
            tx,
        };
        let _ = self.tx.send(msg).await;
    }

    pub async fn unregister(&self, client_id: u64) {
        let _ = self.tx.send(EspMsg::Unregister { client_id }).await;
    }

    pub async fn call(
        &self,
        shared: &Shared,
        ctx: &ClientCtx,
        reference_id: u64,
        request: ThirdServer,
        reply: Reply,
    ) {
        let msg = EspMsg::Call {
            ctx: ctx.clone(),
            reference_id,
            request,
            reply,
        };
        self.send(shared, reference_id, msg).await;
    }

    pub async fn respond(
        &self,
        shared: &Shared,
        ctx: &ClientCtx,
        reference_id: u64,
        response: ExternalServiceResponse,
        reply: Reply,
    ) {
        let msg = EspMsg::Respond {
            ctx: ctx.clone(),
            reference_id,
            response,
            reply,
        };
        self.send(shared, reference_id, msg).await;
    }

    async fn send(&self, shared: &Shared, reference_id: u64, msg: EspMsg) {
        let refused = self.tx.send(msg).await.err().map(|e| e.0);
        if let Some(EspMsg::Call { reply, .. } | EspMsg::Respond { reply, .. }) = refused {
            fail(
                shared,
                reply,
                reference_id,
                ProtocolError::of(ErrorCode::ShuttingDown),
            );
        }
    }
}

/// One step of a relayed call for reporting, recorded by the core in the current batch.
#[derive(Debug)]
pub(crate) struct EspStep {
    responded: bool,
    tenant: Name,
    actor: Party,
    interaction_id: Option<String>,
    info: EspInfo,
}

impl EspStep {
    pub fn record(self, engine: &mut Engine, now: Timestamp) {
        let id = self.interaction_id.as_deref();
        if self.responded {
            engine.record_external_service_responded(&self.tenant, self.actor, id, self.info, now);
        } else {
            engine.record_external_service_requested(&self.tenant, self.actor, id, self.info, now);
        }
    }
}

/// A connected ESP server.
#[derive(Debug)]
struct EspServer {
    tenant: Name,
    application: Name,
    app_type: Option<String>,
    /// Empty: any service.
    services: Vec<String>,
    tx: mpsc::UnboundedSender<WsOut>,
}

impl EspServer {
    fn offers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

/// The connection chosen for a call.
struct Picked {
    client_id: u64,
    app_name: String,
    app_type: Option<String>,
    tx: mpsc::UnboundedSender<WsOut>,
}

/// A call forwarded to an ESP server and not answered yet.
#[derive(Debug)]
struct PendingCall {
    requester: ClientCtx,
    reply: Reply,
    /// Connection id of the ESP server it went to.
    server: u64,
    interaction_id: Option<String>,
    info: EspInfo,
    started: Instant,
    deadline: Instant,
}

/// A call ready to go: the step to record, the message for the ESP server, the pending call.
type Relayed = (EspStep, (Dest, WsOut), PendingCall);

/// How a pending call ended.
enum Outcome {
    Answered(ServerMessage),
    Failed(ProtocolError),
}

/// The relay task's state.
struct Relay {
    shared: Arc<Shared>,
    /// By connection id: round robin walks them in this order.
    servers: BTreeMap<u64, EspServer>,
    /// Round-robin position per (tenant, `name:…` or `type:…/service`).
    turns: HashMap<(Name, String), usize>,
    pending: HashMap<u64, PendingCall>,
    /// (deadline, request id) of every pending call; the first is the next to expire.
    deadlines: BTreeSet<(Instant, u64)>,
    next_request_id: u64,
}

/// Runs the relay until the server shuts down.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<EspMsg>) {
    let mut shutdown = shared.shutdown.clone();
    let mut relay = Relay {
        shared,
        servers: BTreeMap::new(),
        turns: HashMap::new(),
        pending: HashMap::new(),
        deadlines: BTreeSet::new(),
        next_request_id: 1,
    };
    loop {
        let next = relay.deadlines.first().map(|(at, _)| *at);
        // The select only picks what happened; the work is done outside it, so nothing it
        // borrows (the shutdown watch) is held across the relay's awaits.
        let msg = tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => Some(m),
                None => break,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => None,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match msg {
            Some(m) => relay.on_msg(m).await,
            None => relay.expire(Instant::now()).await,
        }
    }
}

impl Relay {
    async fn on_msg(&mut self, msg: EspMsg) {
        match msg {
            EspMsg::Register {
                ctx,
                app_type,
                services,
                tx,
            } => {
                tracing::debug!(application = %ctx.application, ?app_type, ?services, "ESP server connected");
                self.servers.insert(
                    ctx.client_id,
                    EspServer {
                        tenant: ctx.tenant,
                        application: ctx.application,
                        app_type,
                        services,
                        tx,
                    },
                );
            }
            EspMsg::Unregister { client_id } => self.server_gone(client_id).await,
            EspMsg::Call {
                ctx,
                reference_id,
                request,
                reply,
            } => match self.call(ctx, reference_id, request, reply) {
                Ok((step, forward, pending)) => {
                    self.to_core(step, vec![forward]).await;
                    self.deadlines.insert((pending.deadline, pending.info.request_id));
                    self.pending.insert(pending.info.request_id, pending);
                }
                Err((e, reply)) => {
                    if e.code == ErrorCode::EspServerNotFound {
                        self.shared.kpi.esp_error(REQUEST_NAME);
                    }
                    fail(&self.shared, reply, reference_id, e);
                }
            },
            EspMsg::Respond {
                ctx,
                reference_id,
                response,
                reply,
            } => self.respond(ctx, reference_id, response, reply).await,
        }
    }

    /// Validates a call and picks its ESP server: the step to record, the message to forward
    /// and the pending call; on error, the error and the reply it goes to.
    fn call(
        &mut self,
        ctx: ClientCtx,
        reference_id: u64,
        r: ThirdServer,
        reply: Reply,
    ) -> Result<Relayed, (ProtocolError, Reply)> {
        match self.check_and_pick(&ctx, &r) {
            Ok(server) => Ok(self.relay(ctx, reference_id, r, reply, server)),
            Err(e) => Err((e, reply)),
        }
    }

    /// Checks a call's fields and picks the connection that serves it.
    fn check_and_pick(&mut self, ctx: &ClientCtx, r: &ThirdServer) -> Result<Picked, ProtocolError> {
        let timeout_s = r.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        if !(1..=MAX_TIMEOUT_S).contains(&timeout_s) {
            return Err(invalid(format!(
                "timeout_s must be 1 to {MAX_TIMEOUT_S}, not {timeout_s}"
            )));
        }
        if r.service.is_empty() || r.method.is_empty() {
            return Err(invalid("service and method must not be empty"));
        }
        if let Some(id) = &r.interaction_id {
            InteractionId::parse(id).map_err(|e| invalid(format!("interaction_id {id:?}: {e}")))?;
        }
        self.pick(&ctx.tenant, r)
    }

    /// Starts relaying a checked call to the picked ESP connection.
    fn relay(
        &mut self,
        ctx: ClientCtx,
        reference_id: u64,
        r: ThirdServer,
        reply: Reply,
        server: Picked,
    ) -> Relayed {
        let timeout_s = r.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let info = EspInfo {
            request_id,
            reference_id,
            app_name: server.app_name,
            app_type: server.app_type,
            service: r.service.clone(),
            method: r.method.clone(),
            ..EspInfo::default()
        };
        let forward = ServerMessage::EventExternalServiceRequest {
            request_id,
            service: r.service,
            method: r.method,
            parameters: r.parameters,
            interaction_id: r.interaction_id.clone(),
            origin: party_of(&ctx),
        };
        let step = EspStep {
            responded: false,
            tenant: ctx.tenant.clone(),
            actor: party_of(&ctx),
            interaction_id: r.interaction_id.clone(),
            info: info.clone(),
        };
        let started = Instant::now();
        tracing::debug!(request_id, app = %info.app_name, service = %info.service, method = %info.method, "ESP call relayed");
        let pending = PendingCall {
            requester: ctx,
            reply,
            server: server.client_id,
            interaction_id: r.interaction_id,
            info,
            started,
            deadline: started + Duration::from_secs(u64::from(timeout_s)),
        };
        (step, (Dest::Ws(server.tx), WsOut::Message(forward)), pending)
    }

    /// The connection that serves a call: by name (that application's connections), or by type
    /// (connections of that type offering the service), round robin either way.
    fn pick(&mut self, tenant: &Name, r: &ThirdServer) -> Result<Picked, ProtocolError> {
        let (key, candidates): (String, Vec<u64>) = match (&r.app_name, &r.app_type) {
            (Some(name), app_type) => (
                format!("name:{name}"),
                self.servers
                    .iter()
                    .filter(|(_, s)| s.tenant == *tenant && s.application.as_str() == name.as_str())
                    .filter(|(_, s)| app_type.is_none() || s.app_type == *app_type)
                    .map(|(id, _)| *id)
                    .collect(),
            ),
            (None, Some(app_type)) => (
                format!("type:{app_type}/{}", r.service),
                self.servers
                    .iter()
                    .filter(|(_, s)| s.tenant == *tenant && s.app_type.as_deref() == Some(app_type.as_str()))
                    .filter(|(_, s)| s.offers(&r.service))
                    .map(|(id, _)| *id)
                    .collect(),
            ),
            (None, None) => {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    "Request3rdServer needs app_name or app_type",
                ));
            }
        };
        if candidates.is_empty() {
            let what = match (&r.app_name, &r.app_type) {
                (Some(name), _) => format!("name: {name}"),
                (None, app_type) => format!(
                    "type: {}, service: {}",
                    app_type.as_deref().unwrap_or_default(),
                    r.service
                ),
            };
            return Err(ProtocolError::new(
                ErrorCode::EspServerNotFound,
                format!("Not found by type: no connected ESP server ({what})"),
            ));
        }
        let turn = self.turns.entry((tenant.clone(), key)).or_insert(0);
        let chosen = candidates[*turn % candidates.len()];
        *turn = turn.wrapping_add(1);
        self.servers
            .get(&chosen)
            .map(|s| Picked {
                client_id: chosen,
                app_name: s.application.to_string(),
                app_type: s.app_type.clone(),
                tx: s.tx.clone(),
            })
            .ok_or_else(|| ProtocolError::of(ErrorCode::Internal))
    }

    async fn respond(&mut self, ctx: ClientCtx, rid: u64, r: ExternalServiceResponse, reply: Reply) {
        let expired = || {
            invalid(format!(
                "unknown or expired request_id {} (late answers are dropped)",
                r.request_id
            ))
        };
        // Only the application the call went to may answer it (over any of its connections,
        // REST included); to anyone else the id looks unknown.
        let Some(call) = self.pending.get(&r.request_id) else {
            return fail(&self.shared, reply, rid, expired());
        };
        if call.requester.tenant != ctx.tenant || *call.info.app_name != *ctx.application {
            return fail(&self.shared, reply, rid, expired());
        }
        let has_fault = r.fault_code.is_some() || r.fault_string.is_some();
        if has_fault && r.result.is_some() {
            let e = invalid("an answer carries a result or a fault, not both");
            return fail(&self.shared, reply, rid, e);
        }
        let Some(call) = self.take(r.request_id) else {
            return fail(&self.shared, reply, rid, expired());
        };
        let app_name = call.info.app_name.clone();
        let (outcome, answer) = if has_fault {
            self.shared.kpi.esp_error(REQUEST_NAME);
            let fault_code = r.fault_code.unwrap_or(0);
            let fault_string = r.fault_string.unwrap_or_default();
            let answer = ServerMessage::Event3rdServerFault {
                reference_id: call.info.reference_id,
                app_name,
                fault_code,
                fault_string: fault_string.clone(),
            };
            (("fault", Some(fault_code), Some(fault_string)), answer)
        } else {
            let answer = ServerMessage::Event3rdServerResult {
                reference_id: call.info.reference_id,
                app_name,
                result: r.result.unwrap_or_default(),
            };
            (("result", None, None), answer)
        };
        let ack = (reply.into_dest(), WsOut::Message(ServerMessage::ack(rid)));
        self.finish(call, outcome, Outcome::Answered(answer), Some(ack))
            .await;
    }

    /// Fails every call whose deadline has passed.
    async fn expire(&mut self, now: Instant) {
        while let Some(&(at, request_id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(call) = self.pending.remove(&request_id) {
                tracing::debug!(request_id, app = %call.info.app_name, "ESP call timed out");
                let e = ProtocolError::new(
                    ErrorCode::EspTimeout,
                    format!(
                        "{} did not answer {}.{} in time",
                        call.info.app_name, call.info.service, call.info.method
                    ),
                );
                self.shared.kpi.esp_error(REQUEST_NAME);
                self.finish(call, ("timeout", None, None), Outcome::Failed(e), None)
                    .await;
            }
        }
    }

    /// An ESP connection went away: it leaves the registry and its pending calls fail.
    async fn server_gone(&mut self, client_id: u64) {
        let Some(server) = self.servers.remove(&client_id) else {
            return;
        };
        tracing::debug!(application = %server.application, "ESP server disconnected");
        let mut orphans: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, c)| c.server == client_id)
            .map(|(id, _)| *id)
            .collect();
        orphans.sort_unstable();
        for request_id in orphans {
            if let Some(call) = self.take(request_id) {
                let e = ProtocolError::new(
                    ErrorCode::EspServerGone,
                    format!(
                        "ESP server {} disconnected before answering {}.{}",
                        call.info.app_name, call.info.service, call.info.method
                    ),
                );
                self.shared.kpi.esp_error(REQUEST_NAME);
                self.finish(call, ("server_gone", None, None), Outcome::Failed(e), None)
                    .await;
            }
        }
    }

    /// Removes a pending call and its deadline.
    fn take(&mut self, request_id: u64) -> Option<PendingCall> {
        let call = self.pending.remove(&request_id)?;
        self.deadlines.remove(&(call.deadline, request_id));
        Some(call)
    }

    /// Records the responded step and releases the requester's answer (and `extra`) after it.
    async fn finish(
        &mut self,
        call: PendingCall,
        (outcome, fault_code, fault_string): (&str, Option<i64>, Option<String>),
        result: Outcome,
        extra: Option<(Dest, WsOut)>,
    ) {
        let mut info = call.info;
        let rid = info.reference_id;
        info.outcome = Some(outcome.to_owned());
        info.fault_code = fault_code;
        info.fault_string = fault_string;
        info.duration_ms = Some(u64::try_from(call.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        metrics::counter!("ixn_esp_calls_total", "outcome" => outcome.to_owned()).increment(1);
        let answer = match result {
            Outcome::Answered(m) => m,
            Outcome::Failed(e) => {
                self.shared.kpi.error(e.code);
                ServerMessage::error(Some(rid), &e)
            }
        };
        let step = EspStep {
            responded: true,
            tenant: call.requester.tenant.clone(),
            actor: party_of(&call.requester),
            interaction_id: call.interaction_id,
            info,
        };
        let mut releases = vec![(call.reply.into_dest(), WsOut::Message(answer))];
        releases.extend(extra);
        self.to_core(step, releases).await;
    }

    async fn to_core(&self, step: EspStep, releases: Vec<(Dest, WsOut)>) {
        let _ = self.shared.core.send(CoreMsg::Esp { step, releases }).await;
    }
}

/// The reporting party of a requester (as the engine names parties).
fn party_of(ctx: &ClientCtx) -> Party {
    let kind = match ctx.kind {
        ClientKind::AgentDesktop => "agent",
        ClientKind::Router => "router",
        other => other.as_str(),
    };
    Party {
        kind: kind.to_owned(),
        name: ctx.holder_name().to_string(),
    }
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidValue, message)
}

/// Answers at once with an error (nothing changed, so nothing waits for a commit).
fn fail(shared: &Shared, reply: Reply, rid: u64, e: ProtocolError) {
    shared.kpi.error(e.code);
    crate::writer::deliver(
        reply.into_dest(),
        WsOut::Message(ServerMessage::error(Some(rid), &e)),
    );
}
