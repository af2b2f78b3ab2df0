//! NATS JetStream sink: every event is one message on the configured subject, captured by a
//! file-backed stream that the sink creates when missing.
//!
//! The `Nats-Msg-Id` header carries the event's `seq`, so a batch retried after an outage is
//! dropped by JetStream's duplicate window instead of being stored twice. A batch is confirmed
//! only once every publish was acknowledged by the stream (stored on disk).

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, header};
use ixn_config::NatsOptions;
use ixn_protocol::ReportingEvent;

use crate::sink::{Sink, SinkError};

/// Bound of the TCP connect and handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one JetStream API request or publish acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// JetStream's de-duplication window of a stream created by the sink (the server's default).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Header naming the event's sequence number as a plain header too, for consumers that do not
/// read `Nats-Msg-Id`.
pub const SEQ_HEADER: &str = "Ixn-Seq";
/// Header naming the event kind (`EventPlacedInQueue`, …), so consumers can filter without
/// parsing the body.
pub const EVENT_HEADER: &str = "Ixn-Event";

/// Publishes reporting events to a JetStream stream.
#[derive(Debug)]
pub struct NatsSink {
    opts: NatsOptions,
    /// The JetStream context of the current connection; `None` until the first delivery and
    /// after a failure or `reset`, so the next delivery connects afresh.
    jetstream: Option<jetstream::Context>,
}

impl NatsSink {
    pub fn new(opts: &NatsOptions) -> Self {
        NatsSink {
            opts: opts.clone(),
            jetstream: None,
        }
    }

    /// Connects and makes sure the stream exists and captures the subject.
    async fn connect(&self) -> Result<jetstream::Context, SinkError> {
        let client = async_nats::ConnectOptions::new()
            .name("ixn-events")
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(ACK_TIMEOUT))
            .connect(self.opts.url.as_str())
            .await
            .map_err(|e| SinkError::new(format!("nats: connecting to {}: {e}", self.opts.url)))?;
        let mut context = jetstream::new(client);
        context.set_timeout(ACK_TIMEOUT);
        let config = stream::Config {
            name: self.opts.stream.clone(),
            subjects: vec![self.opts.subject.clone()],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let mut stream = context
            .get_or_create_stream(config)
            .await
            .map_err(|e| SinkError::new(format!("nats: creating stream {}: {e}", self.opts.stream)))?;
        let info = stream
            .info()
            .await
            .map_err(|e| SinkError::new(format!("nats: reading stream {}: {e}", self.opts.stream)))?;
        if !captures(&info.config.subjects, &self.opts.subject) {
            // An existing stream configured by someone else: publishing still works if another
            // stream captures the subject, so only warn.
            tracing::warn!(
                stream = %self.opts.stream,
                subject = %self.opts.subject,
                subjects = ?info.config.subjects,
                "the NATS stream does not list the sink's subject"
            );
        }
        Ok(context)
    }

    async fn publish_all(
        context: &jetstream::Context,
        subject: &str,
        events: &[ReportingEvent],
    ) -> Result<(), SinkError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event)
                .map_err(|e| SinkError::new(format!("nats: encoding event {}: {e}", event.seq)))?;
            let mut headers = HeaderMap::new();
            let seq = event.seq.to_string();
            headers.insert(header::NATS_MESSAGE_ID, seq.as_str());
            headers.insert(SEQ_HEADER, seq.as_str());
            headers.insert(EVENT_HEADER, event.event.name());
            headers.insert("Content-Type", "application/json");
            let ack = context
                .publish_with_headers(subject.to_owned(), headers, payload.into())
                .await
                .map_err(|e| SinkError::new(format!("nats: publishing event {}: {e}", event.seq)))?;
            acks.push((event.seq, ack));
        }
        // Publishes are pipelined; each acknowledgement future resolves on its own reply.
        for (seq, ack) in acks {
            ack.await
                .map_err(|e| SinkError::new(format!("nats: event {seq} not acknowledged: {e}")))?;
        }
        Ok(())
    }
}

/// Whether a stream subject list captures `subject` (exactly or through NATS wildcards).
fn captures(patterns: &[String], subject: &str) -> bool {
    patterns.iter().any(|pattern| subject_matches(pattern, subject))
}

fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for part in pattern.split('.') {
        match (part, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[async_trait::async_trait]
impl Sink for NatsSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.jetstream.is_none() {
            self.jetstream = Some(self.connect().await?);
        }
        let Some(context) = &self.jetstream else {
            return Err(SinkError::new("nats: not connected"));
        };
        let result = Self::publish_all(context, &self.opts.subject, events).await;
        if result.is_err() {
            // The client reconnects by itself, but a fresh connection after the runner's wait
            // gives a clean state (and a clear connect error while the server is down).
            self.jetstream = None;
        }
        result
    }

    async fn reset(&mut self) {
        self.jetstream = None;
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subject_patterns() {
        for (pattern, subject, expected) in [
            ("ixn.events", "ixn.events", true),
            ("ixn.*", "ixn.events", true),
            ("ixn.>", "ixn.events.a", true),
            (">", "ixn", true),
            ("ixn.*", "ixn.events.a", false),
            ("ixn.events", "ixn.other", false),
            ("ixn.events.a", "ixn.events", false),
        ] {
            assert_eq!(
                subject_matches(pattern, subject),
                expected,
                "{pattern} vs {subject}"
            );
        }
    }
}
