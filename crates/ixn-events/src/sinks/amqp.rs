//! AMQP 0-9-1 sink (RabbitMQ and compatible brokers): every event is one message published to a
//! durable topic exchange that the sink declares.
//!
//! The channel runs in publisher-confirm mode; a batch is confirmed only once the broker acked
//! every message of it (a nack fails the batch). With `recoverable` the messages are persistent
//! (delivery mode 2), so a confirm means they reached disk on every durable queue bound.
//! `message_id` and the `ixn-seq` header carry the event's `seq` for consumer de-duplication.

use std::time::Duration;

use ixn_config::AmqpOptions;
use ixn_protocol::ReportingEvent;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::sink::{Sink, SinkError};

/// Bound of connecting, opening the channel and declaring the exchange.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of publishing a batch and receiving every confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of the polite close on `reset`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Header carrying the event's sequence number (a long integer).
pub const SEQ_HEADER: &str = "ixn-seq";

/// Publishes reporting events to an AMQP exchange.
#[derive(Debug)]
pub struct AmqpSink {
    opts: AmqpOptions,
    /// The connection and its confirm-mode channel; `None` until the first delivery and after a
    /// failure or `reset`.
    link: Option<Link>,
}

#[derive(Debug)]
struct Link {
    connection: Connection,
    channel: Channel,
}

impl AmqpSink {
    pub fn new(opts: &AmqpOptions) -> Self {
        AmqpSink {
            opts: opts.clone(),
            link: None,
        }
    }

    async fn connect(&self) -> Result<Link, SinkError> {
        let properties = ConnectionProperties::default()
            .with_connection_name("ixn-events".into())
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let step = async {
            let connection = Connection::connect(&self.opts.url, properties)
                .await
                .map_err(|e| format!("connecting to {}: {e}", redact(&self.opts.url)))?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| format!("opening a channel: {e}"))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| format!("enabling publisher confirms: {e}"))?;
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .exchange_declare(
                    &self.opts.exchange,
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("declaring exchange {}: {e}", self.opts.exchange))?;
            Ok::<_, String>(Link { connection, channel })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, step).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(message)) => Err(SinkError::new(format!("amqp: {message}"))),
            Err(_) => Err(SinkError::new(format!(
                "amqp: no answer from {} within {CONNECT_TIMEOUT:?}",
                redact(&self.opts.url)
            ))),
        }
    }

    fn properties(&self, event: &ReportingEvent) -> BasicProperties {
        let mut headers = FieldTable::default();
        // A sequence number beyond i64 cannot occur (the store keeps it as a signed 64-bit value).
        let seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
        headers.insert(SEQ_HEADER.into(), AMQPValue::LongLongInt(seq));
        let mut properties = BasicProperties::default()
            .with_message_id(ShortString::from(event.seq.to_string()))
            .with_content_type("application/json".into())
            .with_type(event.event.name().into())
            .with_timestamp(u64::try_from(event.time.millis() / 1000).unwrap_or(0))
            .with_headers(headers);
        if self.opts.recoverable {
            properties = properties.with_delivery_mode(2);
        }
        properties
    }

    async fn publish_all(&self, channel: &Channel, events: &[ReportingEvent]) -> Result<(), String> {
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let payload =
                serde_json::to_vec(event).map_err(|e| format!("encoding event {}: {e}", event.seq))?;
            let confirm = channel
                .basic_publish(
                    &self.opts.exchange,
                    &self.opts.routing_key,
                    BasicPublishOptions::default(),
                    &payload,
                    self.properties(event),
                )
                .await
                .map_err(|e| format!("publishing event {}: {e}", event.seq))?;
            confirms.push((event.seq, confirm));
        }
        for (seq, confirm) in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(_)) => {}
                Ok(Confirmation::Nack(_)) => return Err(format!("the broker nacked event {seq}")),
                Ok(Confirmation::NotRequested) => {
                    return Err(format!("no confirm for event {seq} (confirm mode off)"));
                }
                Err(e) => return Err(format!("waiting for the confirm of event {seq}: {e}")),
            }
        }
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[async_trait::async_trait]
impl Sink for AmqpSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.link.is_none() {
            self.link = Some(self.connect().await?);
        }
        let Some(link) = &self.link else {
            return Err(SinkError::new("amqp: not connected"));
        };
        let result =
            match tokio::time::timeout(CONFIRM_TIMEOUT, self.publish_all(&link.channel, events)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(SinkError::new(format!("amqp: {message}"))),
                Err(_) => Err(SinkError::new(format!(
                    "amqp: confirms not received within {CONFIRM_TIMEOUT:?}"
                ))),
            };
        if result.is_err() {
            self.reset().await;
        }
        result
    }

    async fn reset(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, link.connection.close(200, "reset")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        for (url, expected) in [
            (
                "amqp://guest:guest@host:5672/%2f",
                "amqp://guest:***@host:5672/%2f",
            ),
            ("amqp://host:5672", "amqp://host:5672"),
            ("amqp://user@host", "amqp://user@host"),
        ] {
            assert_eq!(redact(url), expected);
        }
    }
}
