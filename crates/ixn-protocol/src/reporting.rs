//! Reporting events: the versioned envelope written to the outbox in the same transaction as
//! the change, and pushed to subscribed reporting clients. Every event has a server-wide,
//! gap-free sequence number (`seq`) so consumers can drop duplicates and detect gaps.

use ixn_model::{Timestamp, UserData};
use serde::{Deserialize, Serialize};

use crate::Reason;

/// Version of [`ReportingEvent`]'s JSON layout. Bumped on incompatible changes only.
pub const REPORTING_ENVELOPE_VERSION: u32 = 1;

macro_rules! kinds {
    ($( $variant:ident = $id:literal, $name:literal; )*) => {
        /// Every reporting event, with its numeric id (used by `event-filter-by-id`).
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum ReportingEventKind { $( #[serde(rename = $name)] $variant, )* }

        impl ReportingEventKind {
            pub const ALL: &'static [ReportingEventKind] = &[ $( ReportingEventKind::$variant, )* ];

            pub fn id(self) -> u32 {
                match self { $( ReportingEventKind::$variant => $id, )* }
            }

            pub fn name(self) -> &'static str {
                match self { $( ReportingEventKind::$variant => $name, )* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $name => Some(ReportingEventKind::$variant), )* _ => None }
            }
        }
    };
}

kinds! {
    InteractionSubmitted = 150, "EventInteractionSubmitted";
    PlacedInQueue = 151, "EventPlacedInQueue";
    TakenFromQueue = 152, "EventTakenFromQueue";
    PlacedInWorkbin = 153, "EventPlacedInWorkbin";
    TakenFromWorkbin = 154, "EventTakenFromWorkbin";
    PropertiesChanged = 155, "EventPropertiesChanged";
    ProcessingStopped = 156, "EventProcessingStopped";
    Held = 157, "EventHeld";
    Resumed = 158, "EventResumed";
    PartyAdded = 159, "EventPartyAdded";
    PartyRemoved = 160, "EventPartyRemoved";
    AgentInvited = 161, "EventAgentInvited";
    Revoked = 162, "EventRevoked";
    Locked = 163, "EventLocked";
    Unlocked = 164, "EventUnlocked";
    Rejected = 168, "EventRejected";
    AgentLogin = 170, "EventAgentLogin";
    AgentLogout = 171, "EventAgentLogout";
    MediaAdded = 172, "EventMediaAdded";
    MediaRemoved = 173, "EventMediaRemoved";
    NotReadyForMedia = 174, "EventNotReadyForMedia";
    ReadyForMedia = 175, "EventReadyForMedia";
    DoNotDisturbOn = 176, "EventDoNotDisturbOn";
    DoNotDisturbOff = 177, "EventDoNotDisturbOff";
    AgentStateReasonChanged = 178, "EventAgentStateReasonChanged";
    MediaStateReasonChanged = 179, "EventMediaStateReasonChanged";
    ExternalServiceRequested = 180, "EventExternalServiceRequested";
    ExternalServiceResponded = 181, "EventExternalServiceResponded";
    CustomReporting = 190, "EventCustomReporting";
}

/// Who did something, or to whom it happened.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Party {
    /// `agent`, `router`, `media-server`, …
    pub kind: String,
    pub name: String,
}

/// One reporting event (envelope version 1).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ReportingEvent {
    /// Envelope version ([`REPORTING_ENVELOPE_VERSION`]).
    pub v: u32,
    /// Server-wide sequence number.
    pub seq: u64,
    pub event: ReportingEventKind,
    /// Numeric id of `event`.
    pub event_id: u32,
    pub time: Timestamp,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The queue it came from (queue-to-queue moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbin_owner: Option<String>,
    /// State of the interaction: after the event for arrivals (submitted, placed, party added),
    /// before it for departures (taken from queue or workbin, party removed, revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ixn_model::InteractionState>,
    /// The actor: who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Party>,
    /// The party added, removed, invited, revoked or rejecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// User data of the interaction after the event (submitted, stopped, properties changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData>,
    /// For EventPropertiesChanged: what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<PropertyChanges>,
    /// For EventCustomReporting: the requester's custom event id (routes it to an event-log table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_event_id: Option<u32>,
    /// For EventExternalServiceRequested/Responded: the relayed ESP call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp: Option<EspInfo>,
}

/// One relayed ESP call as reporting sees it (parameters and results are not copied).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct EspInfo {
    /// The server's id of the relayed call (`request_id` of EventExternalServiceRequest).
    pub request_id: u64,
    /// The requester's `reference_id` of Request3rdServer.
    pub reference_id: u64,
    /// Application name of the ESP server the call went to.
    pub app_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    pub service: String,
    pub method: String,
    /// Responded only: `result`, `fault`, `timeout` or `server_gone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_string: Option<String>,
    /// Responded only: milliseconds between relaying the call and its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The three lists of a property change.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PropertyChanges {
    #[serde(default)]
    pub changed: UserData,
    #[serde(default)]
    pub added: UserData,
    #[serde(default)]
    pub deleted: Vec<String>,
}

impl ReportingEvent {
    /// A new event with only the mandatory fields set.
    pub fn new(seq: u64, event: ReportingEventKind, time: Timestamp, tenant: &str) -> ReportingEvent {
        ReportingEvent {
            v: REPORTING_ENVELOPE_VERSION,
            seq,
            event,
            event_id: event.id(),
            time,
            tenant: tenant.to_owned(),
            interaction_id: None,
            media_type: None,
            queue: None,
            previous_queue: None,
            workbin: None,
            workbin_owner: None,
            state: None,
            actor: None,
            party: None,
            reason: None,
            user_data: None,
            changes: None,
            custom_event_id: None,
            esp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_unique_and_rejected_is_168() {
        let mut ids = std::collections::HashSet::new();
        for k in ReportingEventKind::ALL {
            assert!(ids.insert(k.id()));
            assert_eq!(ReportingEventKind::from_name(k.name()), Some(*k));
        }
        assert_eq!(ReportingEventKind::Rejected.id(), 168);
    }

    #[test]
    fn json_shape() {
        let e = ReportingEvent::new(3, ReportingEventKind::PlacedInQueue, Timestamp(0), "default");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"seq":3,"event":"EventPlacedInQueue","event_id":151,"time":"1970-01-01T00:00:00.000Z","tenant":"default"}"#
        );
    }
}
