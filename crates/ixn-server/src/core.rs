//! The core actor: the one task that owns the engine. It applies requests in arrival order,
//! queues their answers and notifications behind the current batch, hands batches to the
//! writer one at a time (group commit: while one batch is being committed the next one
//! collects every request that arrives), and runs the engine's timers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ixn_config::{BusinessProcess, Settings};
use ixn_engine::{ClientCtx, Engine, Notify, Output};
use ixn_model::{Name, Timestamp};
use ixn_protocol::{ErrorCode, ProtocolError, Request, ServerMessage};
use ixn_store::WriteBatch;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::startup::Shared;
use crate::writer::{Dest, Job, WsOut, deliver};

/// Most requests applied before the core looks at the writer again.
const MAX_REQUESTS_PER_ROUND: usize = 4096;

/// Where the answer to a request goes.
#[derive(Debug)]
pub(crate) enum Reply {
    Ws(mpsc::UnboundedSender<WsOut>),
    /// An in-process client that shares the server's fate (see [`Dest::Inside`]).
    Inside(mpsc::UnboundedSender<WsOut>),
    Rest(oneshot::Sender<ServerMessage>),
}

impl Reply {
    pub fn into_dest(self) -> Dest {
        match self {
            Reply::Ws(tx) => Dest::Ws(tx),
            Reply::Inside(tx) => Dest::Inside(tx),
            Reply::Rest(tx) => Dest::Rest(tx),
        }
    }
}

/// Messages to the core actor.
#[derive(Debug)]
pub(crate) enum CoreMsg {
    Register {
        ctx: ClientCtx,
        tx: mpsc::UnboundedSender<WsOut>,
        notify_properties_changed: bool,
        brief_acks: bool,
        /// An in-process client sharing the server's fate: told at once (see [`Dest::Inside`]).
        inside: bool,
    },
    Unregister {
        client_id: u64,
    },
    Request {
        ctx: ClientCtx,
        reference_id: u64,
        request: Request,
        reply: Reply,
    },
    ApplyProcess {
        process: Box<BusinessProcess>,
        settings: Box<Settings>,
        reply: oneshot::Sender<()>,
    },
    /// A step of a relayed ESP call: its reporting event joins the current batch, and what it
    /// causes (the forwarded request, the answer) is released once that batch is durable.
    Esp {
        step: crate::esp::EspStep,
        releases: Vec<(Dest, WsOut)>,
    },
    /// Answer once no connection of this application is registered (at once if none is):
    /// what a router application held has then gone back to its queues.
    WhenGone {
        tenant: Name,
        application: Name,
        reply: oneshot::Sender<()>,
    },
    /// Stop taking requests, commit what was applied, and end.
    Shutdown,
}

#[derive(Debug)]
struct SessionEntry {
    ctx: ClientCtx,
    tx: mpsc::UnboundedSender<WsOut>,
    notify_properties_changed: bool,
    /// EventAck answers go without the interaction (see RequestRegisterClient).
    brief_acks: bool,
    /// Shares the server's fate: answers and notifications go at once (see [`Dest::Inside`]).
    inside: bool,
    subscribed: bool,
}

impl SessionEntry {
    fn dest(&self) -> Dest {
        if self.inside {
            Dest::Inside(self.tx.clone())
        } else {
            Dest::Ws(self.tx.clone())
        }
    }
}

pub(crate) struct Core {
    pub(crate) engine: Engine,
    pub(crate) shared: Arc<Shared>,
    sessions: HashMap<u64, SessionEntry>,
    pub(crate) releases: Vec<(Dest, WsOut)>,
    pub(crate) held: crate::held::HeldPulls,
    writer: mpsc::Sender<Job>,
    writer_busy: bool,
    /// The last batch known durable (see `Engine::release_after`).
    committed: u64,
    /// The latest batch whose changes a client inside the server was told of before they were
    /// durable: what such a client does next may build on them, so its effects outside the
    /// server wait for that batch too (see [`Core::after_for`]).
    told_inside: u64,
    /// `WhenGone` waiters: tenant, application, whom to tell.
    gone_waiters: Vec<(Name, Name, oneshot::Sender<()>)>,
}

pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

impl Core {
    /// Whether a connection of this application is registered.
    fn connected(&self, tenant: &Name, application: &Name) -> bool {
        self.sessions
            .values()
            .any(|s| s.ctx.tenant == *tenant && s.ctx.application == *application)
    }

    /// Tells `reply` once no connection of the application is registered: now, or after the
    /// `Unregister` of its last one.
    fn when_gone(&mut self, tenant: Name, application: Name, reply: oneshot::Sender<()>) {
        if self.connected(&tenant, &application) {
            self.gone_waiters.push((tenant, application, reply));
        } else {
            let _ = reply.send(());
        }
    }

    pub fn new(engine: Engine, shared: Arc<Shared>, writer: mpsc::Sender<Job>) -> Core {
        Core {
            engine,
            shared,
            sessions: HashMap::new(),
            releases: Vec::new(),
            held: Default::default(),
            writer,
            writer_busy: false,
            committed: 0,
            told_inside: 0,
            gone_waiters: Vec::new(),
        }
    }

    /// Runs until every request sender is gone, then flushes and returns.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>, mut done: mpsc::UnboundedReceiver<u64>) {
        let mut next_tick = Instant::now();
        loop {
            tokio::select! {
                biased;
                Some(n) = done.recv() => {
                    self.writer_busy = false;
                    self.committed = n;
                }
                msg = rx.recv() => match msg {
                    Some(CoreMsg::Shutdown) | None => break,
                    Some(m) => self.on_msg(m),
                },
                _ = tokio::time::sleep_until(next_tick) => {
                    next_tick = self.tick();
                }
            }
            let mut n = 0;
            while n < MAX_REQUESTS_PER_ROUND {
                match rx.try_recv() {
                    Ok(CoreMsg::Shutdown) => {
                        rx.close();
                        break;
                    }
                    Ok(m) => self.on_msg(m),
                    Err(_) => break,
                }
                n += 1;
            }
            self.service_held();
            if let Some(deadline) = self.engine.next_deadline() {
                let wait = (deadline.millis() - now().millis()).clamp(0, 1000) as u64;
                next_tick = next_tick.min(Instant::now() + Duration::from_millis(wait));
            }
            if let Some(deadline) = self.held.next_deadline() {
                next_tick = next_tick.min(deadline);
            }
            self.flush().await;
        }
        // Shutdown: wait for the batch in flight, then commit what is left.
        while self.writer_busy {
            let Some(n) = done.recv().await else { break };
            self.writer_busy = false;
            self.committed = n;
        }
        self.flush().await;
        while self.writer_busy && done.recv().await.is_some() {
            self.writer_busy = false;
        }
    }

    /// Hands the pending batch to the writer when it is idle.
    async fn flush(&mut self) {
        if self.writer_busy {
            return;
        }
        let batch = self.engine.take_batch();
        if batch.interactions.is_empty() && batch.events.is_empty() && self.releases.is_empty() {
            return;
        }
        // The events are encoded by the writer, off this task; subscribers get them there too.
        let subscribers = if batch.events.is_empty() {
            Vec::new()
        } else {
            self.sessions
                .values()
                .filter(|s| s.subscribed)
                .map(|s| (s.ctx.tenant.clone(), s.tx.clone()))
                .collect()
        };
        let job = Job {
            number: batch.number,
            batch: WriteBatch {
                interactions: batch.interactions,
                events: Vec::new(),
                meta: batch.meta,
            },
            events: batch.events,
            subscribers,
            releases: std::mem::take(&mut self.releases),
        };
        if self.writer.send(job).await.is_ok() {
            self.writer_busy = true;
        }
    }

    fn tick(&mut self) -> Instant {
        let t = now();
        let mut out = Output::default();
        self.engine.tick(t, &mut out);
        self.route(out);
        metrics::gauge!("ixn_live_interactions").set(self.engine.live_count() as f64);
        metrics::gauge!("ixn_connected_clients").set(self.sessions.len() as f64);
        Instant::now() + Duration::from_millis(1000)
    }

    fn on_msg(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Register {
                ctx,
                tx,
                notify_properties_changed,
                brief_acks,
                inside,
            } => {
                self.sessions.insert(
                    ctx.client_id,
                    SessionEntry {
                        ctx,
                        tx,
                        notify_properties_changed,
                        brief_acks,
                        inside,
                        subscribed: false,
                    },
                );
            }
            CoreMsg::Unregister { client_id } => {
                if let Some(gone) = self.sessions.remove(&client_id)
                    && gone.ctx.kind == ixn_model::ClientKind::Router
                    && !self.connected(&gone.ctx.tenant, &gone.ctx.application)
                {
                    let mut out = Output::default();
                    self.engine
                        .router_gone(&gone.ctx.tenant, &gone.ctx.application, now(), &mut out);
                    self.route(out);
                }
                self.held.drop_client(client_id);
                let mut out = Output::default();
                self.engine.client_gone(client_id, now(), &mut out);
                self.route(out);
                for (tenant, application, reply) in std::mem::take(&mut self.gone_waiters) {
                    self.when_gone(tenant, application, reply);
                }
            }
            CoreMsg::WhenGone {
                tenant,
                application,
                reply,
            } => self.when_gone(tenant, application, reply),
            CoreMsg::Request {
                ctx,
                reference_id,
                request,
                reply,
            } => self.on_request(ctx, reference_id, request, reply),
            CoreMsg::ApplyProcess {
                process,
                settings,
                reply,
            } => {
                self.engine.apply_process(&process, *settings, now());
                let _ = reply.send(());
            }
            CoreMsg::Esp { step, releases } => {
                step.record(&mut self.engine, now());
                for (dest, out) in releases {
                    self.queue(dest, out);
                }
            }
            CoreMsg::Shutdown => {}
        }
    }

    fn on_request(&mut self, ctx: ClientCtx, rid: u64, request: Request, reply: Reply) {
        let reply = match &request {
            Request::Pull(p) if p.strategy.is_some() => match self.try_hold(&ctx, rid, p, reply) {
                Some(reply) => reply,
                None => return,
            },
            _ => reply,
        };
        let answer = match &request {
            Request::Subscribe(_) | Request::Unsubscribe(_) => {
                let on = matches!(request, Request::Subscribe(_));
                match self.sessions.get_mut(&ctx.client_id) {
                    Some(s) => {
                        s.subscribed = on;
                        ServerMessage::ack(rid)
                    }
                    None => ServerMessage::error(
                        Some(rid),
                        &ProtocolError::new(
                            ErrorCode::InvalidState,
                            "subscriptions need a WebSocket connection",
                        ),
                    ),
                }
            }
            _ => {
                let history_id = match &request {
                    Request::GetInteraction(g) => Some(g.interaction_id.clone()),
                    _ => None,
                };
                let mut out = Output::default();
                let result = self.engine.handle(&ctx, rid, request, now(), &mut out);
                let after = self.after_for(&ctx);
                self.route_after(out, after);
                match result {
                    Ok(m) => {
                        let brief = self.sessions.get(&ctx.client_id).is_some_and(|s| s.brief_acks);
                        let m = if brief { m.brief() } else { m };
                        self.release(reply.into_dest(), WsOut::Message(m), after);
                        return;
                    }
                    Err(e) if e.code == ErrorCode::UnknownInteraction && history_id.is_some() => {
                        // Not live: it may be stopped and kept as history in the store.
                        let id = history_id.unwrap_or_default();
                        crate::session::spawn_history_lookup(self.shared.clone(), ctx, rid, id, reply);
                        return;
                    }
                    Err(e) => {
                        self.shared.kpi.error(e.code);
                        ServerMessage::error(Some(rid), &e)
                    }
                }
            }
        };
        self.queue(reply.into_dest(), WsOut::Message(answer));
    }

    /// Sends a message now when the batch it waits for (`after`, see
    /// `Engine::release_after`) is durable; otherwise with the batch being collected.
    pub(crate) fn release(&mut self, dest: Dest, out: WsOut, after: Option<u64>) {
        if self.durable(after) {
            deliver(dest, out);
        } else {
            self.queue(dest, out);
        }
    }

    /// Sends a message with the batch being collected, keeping its place behind the messages
    /// already waiting; at once to a client inside the server (see [`Dest::Inside`]), which is
    /// told everything in the order it happens.
    pub(crate) fn queue(&mut self, dest: Dest, out: WsOut) {
        if dest.is_inside() {
            self.told_inside = self.engine.open_batch();
            deliver(dest, out);
        } else {
            self.releases.push((dest, out));
        }
    }

    /// What the answer and the effects of the request just handled for `ctx` wait for
    /// (`Engine::release_after`). A client inside the server may have acted on changes it was
    /// told of before they were durable (an agent's login or a stop freeing capacity, heard as
    /// `EventAgentAvailable`): its effects also wait for the batch holding those.
    pub(crate) fn after_for(&self, ctx: &ClientCtx) -> Option<u64> {
        let after = self.engine.release_after()?;
        let inside = self.sessions.get(&ctx.client_id).is_some_and(|s| s.inside);
        Some(if inside {
            after.max(self.told_inside)
        } else {
            after
        })
    }

    /// Whether what a message waits for (see [`Core::release`]) is durable already.
    fn durable(&self, after: Option<u64>) -> bool {
        after.is_some_and(|n| n <= self.committed)
    }

    /// Resolves notification targets to connections; released with the batch being collected.
    pub(crate) fn route(&mut self, out: Output) {
        self.route_after(out, None);
    }

    /// Resolves notification targets to connections, released as [`Core::release`] says.
    pub(crate) fn route_after(&mut self, out: Output, after: Option<u64>) {
        let now = self.durable(after);
        let open = self.engine.open_batch();
        let mut told_inside = self.told_inside;
        for (to, msg) in out.notifications {
            let matches = |s: &SessionEntry| -> bool {
                match &to {
                    Notify::Client(id) => s.ctx.client_id == *id,
                    Notify::Application { tenant, application } => {
                        s.ctx.tenant == *tenant && s.ctx.application == *application
                    }
                    Notify::Holder { tenant, holder } => {
                        s.ctx.tenant == *tenant && s.ctx.holder_name() == *holder
                    }
                    Notify::SubmitterWatching { tenant, application } => {
                        s.notify_properties_changed
                            && s.ctx.tenant == *tenant
                            && s.ctx.application == *application
                    }
                    Notify::Routers { tenant } => {
                        s.ctx.kind == ixn_model::ClientKind::Router && s.ctx.tenant == *tenant
                    }
                }
            };
            for s in self.sessions.values().filter(|s| matches(s)) {
                let (dest, out) = (s.dest(), WsOut::Message(msg.clone()));
                if now {
                    deliver(dest, out);
                } else if s.inside {
                    told_inside = open;
                    deliver(dest, out);
                } else {
                    self.releases.push((dest, out));
                }
            }
        }
        self.told_inside = told_inside;
    }
}
