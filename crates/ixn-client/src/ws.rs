//! WebSocket client: one background task owns the socket; requests are pipelined and their
//! answers routed back by `reference_id`; pushed events go to [`Client::events`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ixn_model::ClientKind;
use ixn_protocol::{Envelope, RegisterClient, Request, ServerMessage};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::{ClientError, TlsOptions};

/// Who the client registers as.
#[derive(Clone, Debug)]
pub struct Registration {
    pub application: String,
    pub kind: ClientKind,
    pub api_key: String,
    pub agent_id: Option<String>,
    pub notify_properties_changed: bool,
    /// Acknowledgements carry the interaction id only (see RequestRegisterClient).
    pub brief_acks: bool,
    /// ESP servers: the application type they serve.
    pub app_type: Option<String>,
    /// ESP servers: the services they offer (empty: any).
    pub services: Vec<String>,
}

impl Registration {
    pub fn new(application: impl Into<String>, kind: ClientKind, api_key: impl Into<String>) -> Self {
        Registration {
            application: application.into(),
            kind,
            api_key: api_key.into(),
            agent_id: None,
            notify_properties_changed: false,
            brief_acks: false,
            app_type: None,
            services: Vec::new(),
        }
    }
}

/// Waiters by reference id; `None` once the connection is gone (no new waiter can be added).
type Pending = Arc<std::sync::Mutex<Option<HashMap<u64, oneshot::Sender<ServerMessage>>>>>;

/// A registered WebSocket connection. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_ref: Arc<AtomicU64>,
    events: Arc<Mutex<mpsc::UnboundedReceiver<ServerMessage>>>,
    client_id: u64,
    timeout: Duration,
}

impl Client {
    /// Connects to `base_url` (`http://host:port`, `https://…`, or a `ws(s)://…/v1/ws` URL) and
    /// registers.
    pub async fn connect(base_url: &str, reg: Registration, tls: &TlsOptions) -> Result<Client, ClientError> {
        let url = ws_url(base_url);
        let connector = if url.starts_with("wss://") {
            Some(tokio_tungstenite::Connector::Rustls(tls.client_config()?))
        } else {
            None
        };
        // Small reads: the WebSocket layer zeroes its whole read buffer (128 KiB by default)
        // before each read, and protocol messages are small.
        let config =
            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), Some(config), true, connector)
                .await
                .map_err(|e| ClientError::Connection(format!("{url}: {e}")))?;
        let (mut sink, mut stream) = socket.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::new(std::sync::Mutex::new(Some(HashMap::new())));
        tokio::spawn(async move {
            while let Some(first) = out_rx.recv().await {
                if sink.feed(Message::Text(first.into())).await.is_err() {
                    return;
                }
                while let Ok(more) = out_rx.try_recv() {
                    if sink.feed(Message::Text(more.into())).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(m) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
                    tracing::warn!(text = %text.as_str(), "unreadable server message");
                    continue;
                };
                let waiter = m
                    .reference_id()
                    .and_then(|r| reader_pending.lock().ok()?.as_mut()?.remove(&r));
                match waiter {
                    Some(w) => {
                        let _ = w.send(m);
                    }
                    None => {
                        let _ = ev_tx.send(m);
                    }
                }
            }
            // Connection gone: fail everything still waiting, and every later call at once.
            if let Ok(mut p) = reader_pending.lock() {
                *p = None;
            }
        });
        let mut client = Client {
            out: out_tx,
            pending,
            next_ref: Arc::new(AtomicU64::new(1)),
            events: Arc::new(Mutex::new(ev_rx)),
            client_id: 0,
            timeout: Duration::from_secs(30),
        };
        let answer = client
            .call(Request::RegisterClient(RegisterClient {
                application: reg.application,
                kind: reg.kind,
                api_key: reg.api_key,
                agent_id: reg.agent_id,
                notify_properties_changed: reg.notify_properties_changed,
                brief_acks: reg.brief_acks,
                app_type: reg.app_type,
                services: reg.services,
            }))
            .await?;
        match answer {
            ServerMessage::EventRegistered { client_id, .. } => client.client_id = client_id,
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        Ok(client)
    }

    /// The server's id of this connection.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Whether the connection is gone (every later call fails at once).
    pub fn is_closed(&self) -> bool {
        self.pending.lock().map_or(true, |p| p.is_none())
    }

    /// How long [`Client::call`] waits for an answer (30 s by default).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends a request and waits for its answer; an EventError becomes [`ClientError::Server`].
    pub async fn call(&self, request: Request) -> Result<ServerMessage, ClientError> {
        let rx = self.send(request)?;
        let answer = tokio::time::timeout(self.timeout, rx)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|_| ClientError::Connection("connection closed".into()))?;
        match answer {
            ServerMessage::EventError { error, .. } => Err(ClientError::Server(error)),
            other => Ok(other),
        }
    }

    /// Sends a request without waiting; the receiver gets the raw answer.
    pub fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, ClientError> {
        let reference_id = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().ok().as_deref_mut().and_then(Option::as_mut) {
            Some(p) => {
                p.insert(reference_id, tx);
            }
            None => return Err(ClientError::Connection("connection closed".into())),
        }
        let text = Envelope {
            reference_id,
            request,
        }
        .to_json()
        .to_string();
        self.out
            .send(text)
            .map_err(|_| ClientError::Connection("connection closed".into()))?;
        Ok(rx)
    }

    /// Sends raw text (for tests of the server's input handling).
    pub fn send_raw(&self, text: impl Into<String>) -> Result<(), ClientError> {
        self.out
            .send(text.into())
            .map_err(|_| ClientError::Connection("connection closed".into()))
    }

    /// The next pushed event (or unmatched answer), waiting at most `timeout`.
    pub async fn next_event(&self, timeout: Duration) -> Option<ServerMessage> {
        let mut rx = self.events.lock().await;
        tokio::time::timeout(timeout, rx.recv()).await.ok().flatten()
    }
}

fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.starts_with("ws://") || base.starts_with("wss://") {
        return base.to_owned();
    }
    let rest = base.strip_prefix("https://").map(|r| format!("wss://{r}"));
    let rest = rest.or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")));
    format!("{}/v1/ws", rest.unwrap_or_else(|| format!("ws://{base}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert_eq!(
            super::ws_url("http://127.0.0.1:7070"),
            "ws://127.0.0.1:7070/v1/ws"
        );
        assert_eq!(super::ws_url("https://h:1/"), "wss://h:1/v1/ws");
        assert_eq!(super::ws_url("127.0.0.1:7070"), "ws://127.0.0.1:7070/v1/ws");
        assert_eq!(super::ws_url("ws://x/v1/ws"), "ws://x/v1/ws");
    }
}
