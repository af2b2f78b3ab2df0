//! What the server sends: answers to requests (each with the request's `reference_id`) and
//! pushed events (no `reference_id`). Serialized as JSON objects tagged by `event`.

use std::collections::BTreeMap;

use ixn_model::{Timestamp, UserData};
use serde::{Deserialize, Serialize};

use serde_json::{Map, Value as Json};

use crate::{
    AgentView, ErrorBody, InteractionView, InviteKind, InviteOutcome, Party, ProtocolError, Reason,
    ReportingEvent, Visibility,
};

/// Depth of one queue.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    /// Interactions waiting in the queue (queued state, workbins excluded).
    pub depth: u64,
    /// Interactions taken from this queue and not yet returned or stopped (routing, delivering,
    /// handling).
    pub in_progress: u64,
}

/// One interaction a bulk request could not process.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ItemFailure {
    pub interaction_id: String,
    pub code: u32,
    pub message: String,
}

/// KPI counters, as returned by EventPing when collection is switched on.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct KpiCounters {
    /// Requests received per request name (`collect-request-counters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, u64>>,
    /// Error answers sent per error name (`collect-error-counters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, u64>>,
    /// ESP errors per original request type (`collect-esp-error-counters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp_errors: Option<BTreeMap<String, u64>>,
}

/// Every message the server sends.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum ServerMessage {
    /// Success. Carries the interaction when the request created or changed one.
    EventAck {
        reference_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction: Option<Box<InteractionView>>,
    },
    /// Failure; nothing was changed.
    EventError {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_id: Option<u64>,
        #[serde(flatten)]
        error: ErrorBody,
    },
    /// Answer to RequestRegisterClient.
    EventRegistered {
        reference_id: u64,
        client_id: u64,
        tenant: String,
        protocol_version: String,
        server_version: String,
    },
    /// Answer to RequestPing.
    EventPing {
        reference_id: u64,
        time: Timestamp,
        #[serde(default)]
        counters: KpiCounters,
    },
    /// Answer to RequestGetInteraction.
    EventInteractionProperties {
        reference_id: u64,
        interaction: Box<InteractionView>,
    },
    /// Answer to RequestPull (possibly empty).
    EventPulledInteractions {
        reference_id: u64,
        interactions: Vec<InteractionView>,
    },
    /// Answer to RequestTakeSnapshot.
    EventSnapshotTaken {
        reference_id: u64,
        snapshot_id: u64,
        count: u64,
    },
    /// Answer to RequestGetSnapshotInteractions: current properties of a page of the snapshot
    /// (interactions stopped since the snapshot was taken are left out).
    EventSnapshotInteractions {
        reference_id: u64,
        snapshot_id: u64,
        offset: u32,
        interactions: Vec<InteractionView>,
    },
    /// Answer to RequestFindInteractions.
    EventFoundInteractions {
        reference_id: u64,
        interactions: Vec<InteractionView>,
    },
    /// Answer to RequestGetWorkbinContent.
    EventWorkbinContent {
        reference_id: u64,
        workbin: String,
        owner: String,
        interactions: Vec<InteractionView>,
    },
    /// Answer to RequestMoveInteractions.
    EventInteractionMoved {
        reference_id: u64,
        moved: Vec<String>,
        failed: Vec<ItemFailure>,
    },
    /// Answer to RequestGetQueues.
    EventQueues {
        reference_id: u64,
        queues: Vec<QueueInfo>,
    },
    /// Pushed to the handling agent, and to the submitting media server when it asked for it.
    EventPropertiesChanged {
        interaction_id: String,
        #[serde(default)]
        changed_properties: UserData,
        #[serde(default)]
        added_properties: UserData,
        #[serde(default)]
        deleted_properties: Vec<String>,
        interaction: Box<InteractionView>,
    },
    /// Pushed to the submitting application when processing stops (whoever held the interaction
    /// gets EventRevoked).
    EventProcessingStopped {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        /// Application that stopped it.
        stopped_by: String,
    },
    /// Pushed to the client that held an interaction when it is taken away from it.
    EventRevoked {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    },
    /// A reporting event, pushed live to subscribed reporting clients.
    EventReporting { record: Box<ReportingEvent> },
    /// Answer to an agent-state request: the agent after the change.
    EventAgentStatus {
        reference_id: u64,
        agent: Box<AgentView>,
    },
    /// Answer to RequestGetAgents.
    EventAgents {
        reference_id: u64,
        agents: Vec<AgentView>,
    },
    /// Pushed to an agent: an interaction is offered; accept or reject before `expires_at`.
    EventInvite {
        invite: InviteKind,
        interaction: Box<InteractionView>,
        /// Who invites (the router, or the agent transferring or conferencing).
        from: Party,
        expires_at: Timestamp,
    },
    /// Pushed to whoever asked for an invite (the routing router, the transferring agent).
    EventInviteOutcome {
        interaction_id: String,
        agent: String,
        invite: InviteKind,
        outcome: InviteOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    },
    /// Pushed to the routers of a tenant: an agent can take more of these media now (it became
    /// ready, logged in, or finished an interaction).
    EventAgentAvailable { agent: String, media_types: Vec<String> },
    /// Pushed to the other parties of an interaction when one joins.
    EventPartyAdded {
        interaction_id: String,
        party: Party,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visibility: Option<Visibility>,
    },
    /// Pushed to the other parties of an interaction when one leaves.
    EventPartyRemoved { interaction_id: String, party: Party },
    /// Pushed to an ESP server: a relayed Request3rdServer; answer with
    /// RequestExternalServiceResponse carrying the same `request_id`.
    EventExternalServiceRequest {
        request_id: u64,
        service: String,
        method: String,
        #[serde(default)]
        parameters: Map<String, Json>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction_id: Option<String>,
        /// Who asked.
        origin: Party,
    },
    /// Answer to Request3rdServer: the ESP server's result.
    Event3rdServerResult {
        reference_id: u64,
        /// Application name of the ESP server that answered.
        app_name: String,
        result: Map<String, Json>,
    },
    /// Answer to Request3rdServer: the ESP server's fault.
    Event3rdServerFault {
        reference_id: u64,
        app_name: String,
        fault_code: i64,
        fault_string: String,
    },
}

impl ServerMessage {
    pub fn error(reference_id: Option<u64>, e: &ProtocolError) -> ServerMessage {
        ServerMessage::EventError {
            reference_id,
            error: ErrorBody::from(e),
        }
    }

    pub fn ack(reference_id: u64) -> ServerMessage {
        ServerMessage::EventAck {
            reference_id,
            interaction_id: None,
            interaction: None,
        }
    }

    /// The same answer for a client that registered with `brief_acks`: an EventAck without the
    /// interaction (its id stays); any other message unchanged.
    pub fn brief(self) -> ServerMessage {
        match self {
            ServerMessage::EventAck {
                reference_id,
                interaction_id,
                interaction: Some(_),
            } => ServerMessage::EventAck {
                reference_id,
                interaction_id,
                interaction: None,
            },
            other => other,
        }
    }

    /// The request this answers, or `None` for a pushed event.
    pub fn reference_id(&self) -> Option<u64> {
        use ServerMessage::*;
        match self {
            EventAck { reference_id, .. }
            | EventRegistered { reference_id, .. }
            | EventPing { reference_id, .. }
            | EventInteractionProperties { reference_id, .. }
            | EventPulledInteractions { reference_id, .. }
            | EventSnapshotTaken { reference_id, .. }
            | EventSnapshotInteractions { reference_id, .. }
            | EventFoundInteractions { reference_id, .. }
            | EventWorkbinContent { reference_id, .. }
            | EventInteractionMoved { reference_id, .. }
            | EventQueues { reference_id, .. }
            | EventAgentStatus { reference_id, .. }
            | EventAgents { reference_id, .. }
            | Event3rdServerResult { reference_id, .. }
            | Event3rdServerFault { reference_id, .. } => Some(*reference_id),
            EventError { reference_id, .. } => *reference_id,
            EventPropertiesChanged { .. }
            | EventProcessingStopped { .. }
            | EventRevoked { .. }
            | EventReporting { .. }
            | EventInvite { .. }
            | EventInviteOutcome { .. }
            | EventAgentAvailable { .. }
            | EventPartyAdded { .. }
            | EventPartyRemoved { .. }
            | EventExternalServiceRequest { .. } => None,
        }
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"EventError","code":1031,"name":"internal_error","message":"{e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn error_is_flat() {
        let m = ServerMessage::error(Some(4), &ProtocolError::of(ErrorCode::UnknownView));
        let json = m.to_json_string();
        assert_eq!(
            json,
            r#"{"event":"EventError","reference_id":4,"code":42,"name":"unknown_view","message":"the view does not exist"}"#
        );
        let back: ServerMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.reference_id(), Some(4));
    }
}
