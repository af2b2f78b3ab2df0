//! Every destination of reporting events, one module each, and [`build`], which picks the sink a
//! logger's `delivery-protocol` names. Sinks connect lazily on their first delivery, so a
//! destination that is down at start delays delivery but never the server.

pub mod amqp;
pub mod eventlog;
pub mod file;
pub mod kafka;
pub mod nats;
pub mod script;
pub mod stomp;
pub mod webhook;

use ixn_config::{LoggerConfig, SinkConfig};

use crate::sink::Sink;

/// The sink of one logger. `logger` brings the options some sinks need besides their own
/// (custom-data mapping and custom events of the event log).
pub fn build(cfg: &SinkConfig, logger: &LoggerConfig) -> Box<dyn Sink> {
    match cfg {
        SinkConfig::EventLog(opts) => Box::new(eventlog::EventLogSink::new(opts, logger)),
        SinkConfig::Nats(opts) => Box::new(nats::NatsSink::new(opts)),
        SinkConfig::Amqp(opts) => Box::new(amqp::AmqpSink::new(opts)),
        SinkConfig::Stomp(opts) => Box::new(stomp::StompSink::new(opts)),
        SinkConfig::Kafka(opts) => Box::new(kafka::KafkaSink::new(opts)),
        SinkConfig::File(opts) => Box::new(file::FileSink::new(opts)),
        SinkConfig::Webhook(opts) => Box::new(webhook::WebhookSink::new(opts)),
        SinkConfig::Script(opts) => Box::new(script::ScriptSink::new(opts)),
    }
}
