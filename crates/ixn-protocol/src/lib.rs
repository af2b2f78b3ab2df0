//! The ixn wire protocol: what clients send ([`Request`]), what the server answers and pushes
//! ([`ServerMessage`]), the reporting-event envelope ([`ReportingEvent`]) and the one error
//! catalogue ([`ErrorCode`]). Messages are JSON objects; a request names itself in `request`
//! (`"RequestSubmit"`) and carries a `reference_id`; every answer carries the same
//! `reference_id` back; pushed events have none.
//!
//! Architecture invariant: this crate is the contract with the outside world. It does no I/O
//! and knows nothing about transports (WebSocket, REST), the engine or the store.

mod agents;
mod error;
mod interaction;
mod reporting;
mod request;
mod server;

pub use agents::{
    AgentView, InviteKind, InviteOutcome, MediaLogin, MediaStatus, RouteTarget, SelectionPolicy, Visibility,
};
pub use error::{ErrorBody, ErrorCode, ProtocolError};
pub use interaction::InteractionView;
pub use reporting::{
    EspInfo, Party, PropertyChanges, REPORTING_ENVELOPE_VERSION, ReportingEvent, ReportingEventKind,
};
pub use request::*;
pub use server::*;

/// Version of this protocol, sent in the registration acknowledgement.
pub const PROTOCOL_VERSION: &str = "1.0";
