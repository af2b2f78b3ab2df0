//! The Rust client of the ixn protocol: [`Client`] speaks the WebSocket protocol (pipelined
//! requests, answers matched by reference id, pushed events on a channel) and [`RestClient`] the
//! REST facade. The CLI, routers and the benchmark use these; there is no private back door.

mod rest;
mod tls;
mod ws;

pub use rest::RestClient;
pub use tls::TlsOptions;
pub use ws::{Client, Registration};

use ixn_protocol::ErrorBody;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error (nothing was changed).
    #[error("server error {} ({}): {}", .0.name, .0.code, .0.message)]
    Server(ErrorBody),
    #[error("connection: {0}")]
    Connection(String),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("timed out waiting for the answer")]
    Timeout,
}

impl ClientError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
}
