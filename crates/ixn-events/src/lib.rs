//! Event loggers: every `[[loggers]]` entry of the configuration drains the reporting outbox into
//! one destination (`event-log` SQL tables, a file, a webhook, a Rhai script, or a broker: NATS,
//! AMQP, STOMP, Kafka), independently of the others.
//!
//! Delivery is at least once and in sequence order: each logger keeps a cursor (the highest
//! sequence its destination confirmed), persisted in the store; an event leaves the outbox only
//! once every logger confirmed it. A destination that is down makes the outbox grow on disk and
//! raises an alarm; it never drops events and never stops the server.
//!
//! Architecture invariant: this crate knows the sinks' client libraries and the rpt_* tables of
//! the event log; it knows nothing of the engine or of client sessions. The server hands it the
//! events of each committed batch ([`Reporting::feed`]).

mod filter;
mod hub;
mod runner;
pub mod sink;
pub mod sinks;
mod status;
mod window;

pub use filter::{apply as filter_event, keeps as filter_keeps};
pub use hub::Reporting;
pub use sink::{Sink, SinkError};
pub use status::{LoggerStatus, ReportingStatus};
