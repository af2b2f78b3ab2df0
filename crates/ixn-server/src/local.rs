//! In-process connections: a component that runs inside the server's process (the router of
//! `ixn serve`) talks to the server with the same requests and answers as a WebSocket client —
//! registered with an application and API key, authorized by client kind, notified the same
//! way — without encoding JSON and crossing a socket twice for every message.
//!
//! [`LocalConnector::connect`] answers after the same commits as a WebSocket client.
//! [`LocalConnector::connect_inside`] is for a component whose every effect goes through this
//! server's requests: it is told what the core applied at once, before it is durable, and so
//! can act on it while the batch is still being committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ixn_engine::ClientCtx;
use ixn_model::ClientKind;
use ixn_protocol::{ErrorCode, ProtocolError, RegisterClient, Request, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::core::{CoreMsg, Reply};
use crate::startup::Shared;
use crate::writer::WsOut;

/// Waiters by reference id; `None` once the connection is gone.
type Pending = Arc<std::sync::Mutex<Option<HashMap<u64, oneshot::Sender<ServerMessage>>>>>;

/// Opens in-process connections to a running server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LocalConnector {
    pub(crate) shared: Arc<Shared>,
}

/// The connection is gone (the server stopped).
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection closed")]
pub struct LocalClosed;

/// One registered in-process connection. Requests are applied in the order they are sent;
/// dropping the connection ends the session as a closed WebSocket would.
#[derive(Debug)]
pub struct LocalConnection {
    requests: mpsc::UnboundedSender<(u64, Request)>,
    pending: Pending,
    next_ref: AtomicU64,
    client_id: u64,
}

impl LocalConnector {
    /// Registers a connection as `reg` says (the same application and key checks as
    /// `RequestRegisterClient`); pushed events arrive on the returned channel, which closes when
    /// the connection ends.
    pub async fn connect(
        &self,
        reg: &RegisterClient,
    ) -> Result<(LocalConnection, mpsc::UnboundedReceiver<ServerMessage>), ProtocolError> {
        self.open(reg, false).await
    }

    /// Like [`LocalConnector::connect`], for a component that shares the server's fate: its
    /// answers and notifications come as soon as the core has applied what they tell, before
    /// the batch holding it is durable. Only for a component with no effect outside this server
    /// other than through its requests (the router of `ixn serve`): a crash loses what it was
    /// told together with the batches not yet durable, and what it does in answer is applied
    /// to the batch being collected or a later one, whose effects outside the server (answers,
    /// invitations, events) wait for durability as always. Reporting events it subscribes to
    /// still come once they are durable.
    pub async fn connect_inside(
        &self,
        reg: &RegisterClient,
    ) -> Result<(LocalConnection, mpsc::UnboundedReceiver<ServerMessage>), ProtocolError> {
        self.open(reg, true).await
    }

    async fn open(
        &self,
        reg: &RegisterClient,
        inside: bool,
    ) -> Result<(LocalConnection, mpsc::UnboundedReceiver<ServerMessage>), ProtocolError> {
        let shared = &self.shared;
        if reg.kind == ClientKind::EspServer {
            return Err(ProtocolError::new(
                ErrorCode::RequestNotAllowed,
                "ESP servers connect over WebSocket",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel::<WsOut>();
        let ctx = crate::session::attach(shared, reg, &tx, inside).await?;
        tracing::debug!(application = %ctx.application, kind = %ctx.kind, "in-process client registered");
        let pending: Pending = Arc::new(std::sync::Mutex::new(Some(HashMap::new())));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let client_id = ctx.client_id;
        tokio::spawn(pump(rx, pending.clone(), events_tx));
        tokio::spawn(session(shared.clone(), ctx, requests_rx, tx, inside));
        let conn = LocalConnection {
            requests,
            pending,
            next_ref: AtomicU64::new(1),
            client_id,
        };
        Ok((conn, events))
    }
}

impl LocalConnection {
    /// The server's id of this connection.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Sends a request; the receiver gets its answer (or is dropped when the connection ends).
    pub fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, LocalClosed> {
        let rid = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().ok().as_deref_mut().and_then(Option::as_mut) {
            Some(p) => {
                p.insert(rid, tx);
            }
            None => return Err(LocalClosed),
        }
        self.requests.send((rid, request)).map_err(|_| LocalClosed)?;
        Ok(rx)
    }
}

/// Hands requests to the dispatcher one at a time, in order, until the connection is dropped
/// or the server stops.
async fn session(
    shared: Arc<Shared>,
    ctx: ClientCtx,
    mut requests: mpsc::UnboundedReceiver<(u64, Request)>,
    tx: mpsc::UnboundedSender<WsOut>,
    inside: bool,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (rid, request) = tokio::select! {
            r = requests.recv() => match r {
                Some(r) => r,
                None => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let reply = if inside {
            Reply::Inside(tx.clone())
        } else {
            Reply::Ws(tx.clone())
        };
        crate::session::dispatch(&shared, &ctx, rid, request, reply).await;
    }
    let _ = shared
        .core
        .send(CoreMsg::Unregister {
            client_id: ctx.client_id,
        })
        .await;
}

/// Delivers what the server sends: answers to their waiters, the rest as events. Ends when
/// every sender is gone (the session ended and the core forgot it).
async fn pump(
    mut rx: mpsc::UnboundedReceiver<WsOut>,
    pending: Pending,
    events: mpsc::UnboundedSender<ServerMessage>,
) {
    while let Some(out) = rx.recv().await {
        let m = match out {
            WsOut::Message(m) => m,
            // Text is shared by many receivers (reporting events): read back like a client would.
            WsOut::Text(t) => match serde_json::from_str::<ServerMessage>(&t) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable message for an in-process client");
                    continue;
                }
            },
        };
        let waiter = m
            .reference_id()
            .and_then(|r| pending.lock().ok()?.as_mut()?.remove(&r));
        match waiter {
            Some(w) => {
                let _ = w.send(m);
            }
            None => {
                let _ = events.send(m);
            }
        }
    }
    if let Ok(mut p) = pending.lock() {
        *p = None;
    }
}
