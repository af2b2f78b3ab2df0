//! The router's view of one interaction server: a [`Link`] sends requests (pipelined, each
//! answered on its own channel) and pushed events arrive on a channel that closes when the
//! connection goes. [`Connector`] makes a new link, so a server that went away can be
//! reconnected. [`WsConnector`] is the real one (through `ixn-client`); tests plug in an
//! in-memory server, which lets them run on a paused clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ixn_client::{Client, Registration, TlsOptions};
use ixn_model::ClientKind;
use ixn_protocol::{Ping, Request, ServerMessage};
use tokio::sync::{mpsc, oneshot};

/// A boxed future, for the object-safe connector.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a request could not be sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection closed")]
pub struct LinkClosed;

/// One connection to one interaction server.
pub trait Link: Send + Sync + fmt::Debug + 'static {
    /// Sends a request; the receiver gets its answer, or is dropped when the connection goes.
    fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, LinkClosed>;
}

/// A fresh connection: the link and its pushed events (the channel closes with the connection).
#[derive(Debug)]
pub struct Connected {
    pub link: Arc<dyn Link>,
    pub events: mpsc::UnboundedReceiver<ServerMessage>,
}

/// Makes connections to one server (registered as a router).
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// Where it connects, for logs.
    fn describe(&self) -> String;
    fn connect(&self) -> BoxFuture<Result<Connected, String>>;
}

/// Connects over WebSocket with `ixn-client`.
#[derive(Clone)]
pub struct WsConnector {
    url: String,
    application: String,
    api_key: String,
    tls: TlsOptions,
}

impl fmt::Debug for WsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnector")
            .field("url", &self.url)
            .field("application", &self.application)
            .finish_non_exhaustive()
    }
}

impl WsConnector {
    pub fn new(
        url: impl Into<String>,
        application: impl Into<String>,
        api_key: impl Into<String>,
        tls: TlsOptions,
    ) -> Self {
        WsConnector {
            url: url.into(),
            application: application.into(),
            api_key: api_key.into(),
            tls,
        }
    }
}

#[derive(Debug)]
struct ClientLink(Client);

impl Link for ClientLink {
    fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, LinkClosed> {
        self.0.send(request).map_err(|_| LinkClosed)
    }
}

/// How long one wait for a pushed event lasts before checking the connection is still there.
const EVENT_WAIT: Duration = Duration::from_secs(300);

impl Connector for WsConnector {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<Result<Connected, String>> {
        let this = self.clone();
        Box::pin(async move {
            let reg = Registration::new(this.application, ClientKind::Router, this.api_key);
            let client = Client::connect(&this.url, reg, &this.tls)
                .await
                .map_err(|e| e.to_string())?;
            let (tx, events) = mpsc::unbounded_channel();
            let reader = client.clone();
            tokio::spawn(async move {
                loop {
                    // Ends when the router drops the events' receiver, so that this clone of the
                    // client does not keep the connection open.
                    let next = tokio::select! {
                        next = reader.next_event(EVENT_WAIT) => next,
                        () = tx.closed() => return,
                    };
                    match next {
                        Some(m) => {
                            if tx.send(m).is_err() {
                                return;
                            }
                        }
                        // Nothing for a while, or the connection is gone: a send tells which
                        // (the client refuses new requests once its connection closed).
                        None => {
                            if reader.send(Request::Ping(Ping {})).is_err() || tx.is_closed() {
                                return;
                            }
                        }
                    }
                }
            });
            Ok(Connected {
                link: Arc::new(ClientLink(client)),
                events,
            })
        })
    }
}
