#![recursion_limit = "512"]
//! The ixn interaction server: HTTP and WebSocket listeners (optionally TLS), client sessions,
//! the core actor that owns the [`ixn_engine::Engine`], and the store writer that makes every
//! change durable before it is acknowledged (group commit).
//!
//! Request path: a session parses and authorizes a request, sends it to the core actor; the
//! core applies it to the engine and queues the answer behind the current batch; the writer
//! commits the batch (interactions + outbox events, one transaction) and only then releases
//! the answers, the notifications and the live reporting events of that batch.
//!
//! Architecture invariant: this crate owns transports and tasks; it holds no interaction state
//! of its own (the engine does) and writes SQL nowhere (the store does).

mod core;
mod esp;
mod held;
mod http;
mod kpi;
mod local;
mod metrics_export;
mod reporting;
mod rest;
mod session;
mod startup;
mod tls;
mod writer;

pub use local::{LocalClosed, LocalConnection, LocalConnector};
pub use startup::{ConfigCheck, RunningServer, ServerOptions, start, wait_for_signal};
