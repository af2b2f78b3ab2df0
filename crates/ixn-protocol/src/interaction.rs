//! The JSON form of an interaction: every system property by its snake_case name, then
//! `user_data`. Unset properties are left out.

use ixn_model::{Interaction, InteractionState, Timestamp, UserData};
use serde::{Deserialize, Serialize};

/// An interaction as clients see it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct InteractionView {
    pub id: String,
    pub tenant: String,
    pub media_type: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub interaction_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbin_owner: Option<String>,
    pub state: InteractionState,
    pub is_online: bool,
    pub is_locked: bool,
    pub is_held: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_objective: Option<i64>,
    pub submitted_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    pub submit_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    pub submitted_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_in_queue_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to_queue_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned_at: Option<Timestamp>,
    #[serde(default)]
    pub user_data: UserData,
}

impl From<&Interaction> for InteractionView {
    fn from(ix: &Interaction) -> Self {
        let s = |n: &Option<ixn_model::Name>| n.as_ref().map(|v| v.to_string());
        InteractionView {
            id: ix.id.to_string(),
            tenant: ix.tenant.to_string(),
            media_type: ix.media_type.to_string(),
            interaction_type: s(&ix.interaction_type),
            subtype: s(&ix.subtype),
            queue: s(&ix.queue),
            workbin: ix.workbin.as_ref().map(|w| w.name.to_string()),
            workbin_owner: ix.workbin.as_ref().map(|w| w.owner.to_string()),
            state: ix.state,
            is_online: ix.is_online,
            is_locked: ix.is_locked,
            is_held: ix.is_held,
            parent_id: ix.parent_id.as_ref().map(|p| p.to_string()),
            external_id: ix.external_id.clone(),
            priority: ix.priority,
            service_objective: ix.service_objective,
            submitted_by: ix.submitted_by.to_string(),
            assigned_to: s(&ix.assigned_to),
            submit_seq: ix.submit_seq,
            received_at: ix.received_at,
            submitted_at: ix.submitted_at,
            placed_in_queue_at: ix.placed_in_queue_at,
            moved_to_queue_at: ix.moved_to_queue_at,
            delivered_at: ix.delivered_at,
            assigned_at: ix.assigned_at,
            held_at: ix.held_at,
            scheduled_at: ix.scheduled_at,
            completed_at: ix.completed_at,
            abandoned_at: ix.abandoned_at,
            user_data: ix.user_data.clone(),
        }
    }
}
