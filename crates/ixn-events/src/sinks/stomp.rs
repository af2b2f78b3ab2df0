//! STOMP 1.2 sink (ActiveMQ, Artemis, RabbitMQ's STOMP plugin, …): every event is one SEND to
//! the configured destination, persistent, with a `receipt` header.
//!
//! A batch is confirmed once the broker returned the RECEIPT of every SEND (a broker sends a
//! persistent message's receipt after storing it); an ERROR frame fails the batch. The `ixn-seq`
//! header carries the event's `seq` for consumer de-duplication. The client is this module's own
//! ([`client`], [`frame`]): small, over tokio, with optional TLS through rustls.

pub mod client;
pub mod frame;

use std::collections::HashSet;
use std::time::Duration;

use ixn_config::StompOptions;
use ixn_protocol::ReportingEvent;

use crate::sink::{Sink, SinkError};
use client::{StompConnection, StompError};
use frame::Frame;

/// Bound of connecting and the CONNECT handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of sending one window of frames and receiving its receipts.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// SEND frames written before waiting for their receipts, so neither side's socket buffers fill
/// up with a large batch.
const WINDOW: usize = 200;
/// Bound of the polite DISCONNECT on `reset`.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Header carrying the event's sequence number (decimal text).
pub const SEQ_HEADER: &str = "ixn-seq";
/// Header carrying the event kind (`EventPlacedInQueue`, …).
pub const EVENT_HEADER: &str = "ixn-event";

/// Sends reporting events to a STOMP destination.
#[derive(Debug)]
pub struct StompSink {
    opts: StompOptions,
    /// The open session; `None` until the first delivery and after a failure or `reset`.
    connection: Option<StompConnection>,
}

impl StompSink {
    pub fn new(opts: &StompOptions) -> Self {
        StompSink {
            opts: opts.clone(),
            connection: None,
        }
    }

    async fn connect(&self) -> Result<StompConnection, SinkError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, StompConnection::connect(&self.opts)).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(SinkError::new(format!(
                "stomp: connecting to {}: {e}",
                self.opts.address
            ))),
            Err(_) => Err(SinkError::new(format!(
                "stomp: no CONNECTED from {} within {CONNECT_TIMEOUT:?}",
                self.opts.address
            ))),
        }
    }

    fn send_frame(&self, event: &ReportingEvent) -> Result<Frame, SinkError> {
        let body = serde_json::to_vec(event)
            .map_err(|e| SinkError::new(format!("stomp: encoding event {}: {e}", event.seq)))?;
        Ok(Frame::new("SEND")
            .with_header("destination", self.opts.destination.as_str())
            .with_header("content-type", "application/json")
            .with_header("persistent", "true")
            .with_header(SEQ_HEADER, event.seq.to_string())
            .with_header(EVENT_HEADER, event.event.name())
            .with_header("receipt", receipt_id(event.seq))
            .with_body(body))
    }

    /// Sends one window of events and waits for every receipt.
    async fn send_window(
        connection: &mut StompConnection,
        frames: &[Frame],
        events: &[ReportingEvent],
    ) -> Result<(), StompError> {
        connection.send(frames).await?;
        let mut pending: HashSet<String> = events.iter().map(|e| receipt_id(e.seq)).collect();
        while !pending.is_empty() {
            let frame = connection.read_frame().await?;
            match frame.command.as_str() {
                "RECEIPT" => {
                    if let Some(id) = frame.header("receipt-id") {
                        pending.remove(id);
                    }
                }
                "ERROR" => return Err(StompError::broker(&frame)),
                // Nothing else is expected on a connection that never subscribes.
                other => return Err(StompError::Unexpected(other.to_owned())),
            }
        }
        Ok(())
    }

    async fn send_all(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        let mut frames = Vec::with_capacity(events.len());
        for event in events {
            frames.push(self.send_frame(event)?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(SinkError::new("stomp: not connected"));
        };
        for (frames, events) in frames.chunks(WINDOW).zip(events.chunks(WINDOW)) {
            let window = Self::send_window(connection, frames, events);
            match tokio::time::timeout(RECEIPT_TIMEOUT, window).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(SinkError::new(format!("stomp: {e}"))),
                Err(_) => {
                    return Err(SinkError::new(format!(
                        "stomp: receipts not received within {RECEIPT_TIMEOUT:?}"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn receipt_id(seq: u64) -> String {
    format!("ixn-{seq}")
}

#[async_trait::async_trait]
impl Sink for StompSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        let result = self.send_all(events).await;
        if result.is_err() {
            // The session state is unknown after an error (a broker closes it after ERROR).
            self.connection = None;
        }
        result
    }

    async fn reset(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, connection.disconnect()).await;
        }
    }
}
