//! Client sessions: a WebSocket connection registers once (application, kind, API key), then
//! sends requests that are parsed strictly, authorized by client kind, and dispatched. Bad input
//! gets an EventError with the request's reference and changes nothing; the connection stays
//! up. The REST facade shares [`dispatch`] with sessions.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use ixn_engine::{ClientCtx, find_window};
use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{ClientKind, InteractionId, Name};
use ixn_protocol::{
    Envelope, ErrorCode, FindInteractions, InteractionView, PROTOCOL_VERSION, ProtocolError, RegisterClient,
    Request, ServerMessage,
};
use ixn_store::StoreQuery;
use tokio::sync::mpsc;

use crate::core::{CoreMsg, Reply, now};
use crate::startup::Shared;
use crate::writer::WsOut;

/// Failed registrations tolerated on one connection before it is closed.
const MAX_AUTH_FAILURES: u32 = 5;

/// Runs one WebSocket connection to its end.
pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<WsOut>();
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(Message::Text(first.into_text().into())).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(Message::Text(more.into_text().into())).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut ctx: Option<ClientCtx> = None;
    let mut auth_failures = 0;
    let mut shutdown = shared.shutdown.clone();
    loop {
        let msg = tokio::select! {
            m = stream.next() => match m {
                Some(Ok(m)) => m,
                _ => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                reject(
                    &shared,
                    &tx,
                    None,
                    ProtocolError::new(ErrorCode::MalformedMessage, "send JSON in text frames"),
                );
                continue;
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if text.len() > shared.max_frame_size {
            let e = ProtocolError::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "message of {} bytes is larger than max-frame-size ({})",
                    text.len(),
                    shared.max_frame_size
                ),
            );
            reject(&shared, &tx, None, e);
            continue;
        }
        let env = match Envelope::parse(text.as_str()) {
            Ok(env) => env,
            Err(f) => {
                reject(&shared, &tx, f.reference_id, f.error);
                continue;
            }
        };
        match (&ctx, env.request) {
            (None, Request::RegisterClient(r)) => match attach(&shared, &r, &tx, false).await {
                Ok(c) => {
                    if c.kind == ClientKind::EspServer {
                        let (app_type, services) = (r.app_type.clone(), r.services.clone());
                        shared.esp.register(&c, app_type, services, tx.clone()).await;
                    }
                    let _ = tx.send(WsOut::Message(ServerMessage::EventRegistered {
                        reference_id: env.reference_id,
                        client_id: c.client_id,
                        tenant: c.tenant.to_string(),
                        protocol_version: PROTOCOL_VERSION.to_owned(),
                        server_version: env!("CARGO_PKG_VERSION").to_owned(),
                    }));
                    tracing::debug!(application = %c.application, kind = %c.kind, "client registered");
                    ctx = Some(c);
                }
                Err(e) => {
                    reject(&shared, &tx, Some(env.reference_id), e);
                    auth_failures += 1;
                    if auth_failures >= MAX_AUTH_FAILURES {
                        break;
                    }
                }
            },
            (None, _) => reject(
                &shared,
                &tx,
                Some(env.reference_id),
                ProtocolError::of(ErrorCode::NotRegistered),
            ),
            (Some(c), request) => {
                dispatch(&shared, c, env.reference_id, request, Reply::Ws(tx.clone())).await
            }
        }
    }
    if let Some(c) = ctx.as_ref().filter(|c| c.kind == ClientKind::EspServer) {
        shared.esp.unregister(c.client_id).await;
    }
    if let Some(c) = ctx {
        let _ = shared
            .core
            .send(CoreMsg::Unregister {
                client_id: c.client_id,
            })
            .await;
    }
    drop(tx);
    let _ = writer.await;
}

/// Answers with an error (counted in the KPI error counters and metrics).
fn reject(shared: &Shared, tx: &mpsc::UnboundedSender<WsOut>, reference_id: Option<u64>, e: ProtocolError) {
    shared.kpi.error(e.code);
    let _ = tx.send(WsOut::Message(ServerMessage::error(reference_id, &e)));
}

/// Checks a registration and announces the connection to the core, which then sends its
/// answers and notifications to `tx` (WebSocket sessions and in-process connections alike).
pub(crate) async fn attach(
    shared: &Shared,
    r: &RegisterClient,
    tx: &mpsc::UnboundedSender<WsOut>,
    inside: bool,
) -> Result<ClientCtx, ProtocolError> {
    let ctx = register(shared, r)?;
    shared.kpi.request("RequestRegisterClient");
    shared
        .core
        .send(CoreMsg::Register {
            ctx: ctx.clone(),
            tx: tx.clone(),
            notify_properties_changed: r.notify_properties_changed,
            brief_acks: r.brief_acks,
            inside,
        })
        .await
        .map_err(|_| ProtocolError::of(ErrorCode::ShuttingDown))?;
    Ok(ctx)
}

/// Checks a registration against the configured applications.
fn register(shared: &Shared, r: &RegisterClient) -> Result<ClientCtx, ProtocolError> {
    let config = shared.config();
    let app = config
        .process
        .application_by_key(&r.api_key)
        .filter(|a| a.name == r.application && a.kind == r.kind)
        .ok_or_else(|| ProtocolError::of(ErrorCode::AuthenticationFailed))?;
    Ok(client_ctx(shared, app, r.agent_id.as_deref()))
}

pub(crate) fn client_ctx(shared: &Shared, app: &ixn_config::Application, agent: Option<&str>) -> ClientCtx {
    let agent = match app.kind {
        ClientKind::AgentDesktop => Some(Name::from(agent.unwrap_or(&app.name))),
        _ => None,
    };
    ClientCtx {
        client_id: shared.next_client_id(),
        application: Name::from(app.name.as_str()),
        kind: app.kind,
        tenant: Name::from(app.tenant.as_str()),
        agent,
    }
}

fn answer(reply: Reply, msg: ServerMessage) {
    crate::writer::deliver(reply.into_dest(), WsOut::Message(msg));
}

fn fail(shared: &Shared, reply: Reply, rid: u64, e: ProtocolError) {
    shared.kpi.error(e.code);
    answer(reply, ServerMessage::error(Some(rid), &e));
}

/// Handles one request of an authenticated client. The answer goes to `reply`, either
/// directly (connection-level requests, store reads) or after the core's commit.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    ctx: &ClientCtx,
    rid: u64,
    request: Request,
    reply: Reply,
) {
    shared.kpi.request(request.name());
    if !request.allowed_for(ctx.kind) {
        let e = ProtocolError::new(
            ErrorCode::RequestNotAllowed,
            format!("a {} client may not send {}", ctx.kind, request.name()),
        );
        return fail(shared, reply, rid, e);
    }
    match request {
        Request::RegisterClient(_) => fail(
            shared,
            reply,
            rid,
            ProtocolError::of(ErrorCode::AlreadyRegistered),
        ),
        Request::Ping(_) => answer(
            reply,
            ServerMessage::EventPing {
                reference_id: rid,
                time: now(),
                counters: shared.kpi.snapshot(),
            },
        ),
        Request::ApplyConfig(r) => match crate::http::apply_config(shared, &r.config, r.dry_run).await {
            Ok(()) => answer(reply, ServerMessage::ack(rid)),
            Err(e) => fail(shared, reply, rid, e),
        },
        Request::FindInteractions(r) if r.include_stopped => {
            let shared = shared.clone();
            let tenant = ctx.tenant.to_string();
            tokio::spawn(async move {
                match find_in_store(&shared, tenant, r).await {
                    Ok(interactions) => answer(
                        reply,
                        ServerMessage::EventFoundInteractions {
                            reference_id: rid,
                            interactions,
                        },
                    ),
                    Err(e) => fail(&shared, reply, rid, e),
                }
            });
        }
        Request::Submit(r) if r.interaction_id.is_some() => {
            // Ids are global: not one kept as history, in any tenant.
            let id = r
                .interaction_id
                .as_deref()
                .and_then(|i| InteractionId::parse(i).ok());
            if let Some(id) = id {
                match shared.store.id_exists(&id).await {
                    Ok(true) => {
                        let e = ProtocolError::new(
                            ErrorCode::DuplicateInteraction,
                            format!("{id} is already taken"),
                        );
                        return fail(shared, reply, rid, e);
                    }
                    Ok(false) => {}
                    Err(e) => return fail(shared, reply, rid, store_error(e)),
                }
            }
            to_core(shared, ctx, rid, Request::Submit(r), reply).await;
        }
        Request::ThirdServer(r) => shared.esp.call(shared, ctx, rid, r, reply).await,
        Request::ExternalServiceResponse(r) => shared.esp.respond(shared, ctx, rid, r, reply).await,
        other => to_core(shared, ctx, rid, other, reply).await,
    }
}

async fn to_core(shared: &Shared, ctx: &ClientCtx, rid: u64, request: Request, reply: Reply) {
    let msg = CoreMsg::Request {
        ctx: ctx.clone(),
        reference_id: rid,
        request,
        reply,
    };
    if let Err(mpsc::error::SendError(CoreMsg::Request { reply, .. })) = shared.core.send(msg).await {
        fail(shared, reply, rid, ProtocolError::of(ErrorCode::ShuttingDown));
    }
}

pub(crate) fn store_error(e: ixn_store::StoreError) -> ProtocolError {
    match e {
        ixn_store::StoreError::Query(m) => ProtocolError::new(ErrorCode::InvalidCondition, m),
        other => {
            tracing::warn!(error = %other, "store read failed");
            ProtocolError::of(ErrorCode::StoreUnavailable)
        }
    }
}

async fn find_in_store(
    shared: &Shared,
    tenant: String,
    r: FindInteractions,
) -> Result<Vec<InteractionView>, ProtocolError> {
    let (limit, offset) = find_window(&r)?;
    let props = shared.config().process.custom_properties.clone();
    let bad = |e: ixn_model::condition::ConditionError| {
        ProtocolError::new(ErrorCode::InvalidCondition, e.to_string())
    };
    let condition = Condition::parse(&r.condition, &props).map_err(bad)?;
    let order = match &r.order {
        Some(o) => OrderBy::parse(o, &props).map_err(bad)?,
        None => OrderBy::default(),
    };
    let query = StoreQuery {
        tenant,
        condition: Some(condition),
        order,
        offset: u64::from(offset),
        limit: u64::from(limit),
    };
    let rows = shared.store.find(&query).await.map_err(store_error)?;
    Ok(rows.iter().map(InteractionView::from).collect())
}

/// Answers RequestGetInteraction for an interaction that is not live from the store's history.
pub(crate) fn spawn_history_lookup(shared: Arc<Shared>, ctx: ClientCtx, rid: u64, id: String, reply: Reply) {
    tokio::spawn(async move {
        let unknown = || ProtocolError::new(ErrorCode::UnknownInteraction, format!("no interaction {id:?}"));
        let Ok(parsed) = InteractionId::parse(&id) else {
            return fail(&shared, reply, rid, unknown());
        };
        match shared.store.get(&ctx.tenant, &parsed).await {
            Ok(Some(ix)) => answer(
                reply,
                ServerMessage::EventInteractionProperties {
                    reference_id: rid,
                    interaction: Box::new(InteractionView::from(&ix)),
                },
            ),
            Ok(None) => fail(&shared, reply, rid, unknown()),
            Err(e) => fail(&shared, reply, rid, store_error(e)),
        }
    });
}
