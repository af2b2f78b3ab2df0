//! The one trait every destination of reporting events implements, and its error.
//!
//! A sink only writes: batching, retries, filtering and outbox bookkeeping belong to the logger
//! runner, so a sink stays a thin adapter over one client library.

/// A destination of reporting events.
#[async_trait::async_trait]
pub trait Sink: Send + std::fmt::Debug {
    /// Writes a batch; Ok only once the destination confirmed every event of it (durably where it
    /// can). Events are in seq order.
    async fn deliver(&mut self, events: &[ixn_protocol::ReportingEvent]) -> Result<(), SinkError>;

    /// Drops any connection so the next `deliver` reconnects.
    async fn reset(&mut self) {}
}

/// Why a batch was not delivered; the runner retries it after `reconnect-timeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

impl SinkError {
    pub fn new(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
        }
    }
}
