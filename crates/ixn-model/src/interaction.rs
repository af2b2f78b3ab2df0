//! The interaction: one unit of customer work with its system properties and user data.
//! [`SysProp`] is the catalogue of system properties (name on the wire, column name, type and
//! who may set it); conditions, the store and the protocol all read it from here.

use serde::{Deserialize, Serialize};

use crate::{InteractionId, InteractionState, Name, Timestamp, UserData};

/// Who owns a workbin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum WorkbinOwnerType {
    Agent,
    AgentGroup,
    Place,
    PlaceGroup,
}

impl WorkbinOwnerType {
    pub const ALL: [WorkbinOwnerType; 4] = [Self::Agent, Self::AgentGroup, Self::Place, Self::PlaceGroup];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::AgentGroup => "agent_group",
            Self::Place => "place",
            Self::PlaceGroup => "place_group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A workbin instance: the workbin type's name and the owner it belongs to.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct WorkbinRef {
    /// Name of the workbin in the business process.
    pub name: Name,
    /// Id of the agent, group, place or place group that owns this instance.
    pub owner: Name,
}

/// One interaction with every system property of the design, and its user data.
#[derive(Clone, PartialEq, Debug)]
pub struct Interaction {
    pub id: InteractionId,
    pub tenant: Name,
    pub media_type: Name,
    pub interaction_type: Option<Name>,
    pub subtype: Option<Name>,
    /// The queue it is in, or the queue it was last taken from (kept while routed or handled,
    /// because timeouts and rejects return it there).
    pub queue: Option<Name>,
    /// Set while the interaction sits in a workbin.
    pub workbin: Option<WorkbinRef>,
    pub state: InteractionState,
    pub is_online: bool,
    pub is_locked: bool,
    pub is_held: bool,
    pub parent_id: Option<InteractionId>,
    pub external_id: Option<String>,
    pub priority: i64,
    pub service_objective: Option<i64>,
    /// Application name of the client that submitted it (it receives EventProcessingStopped).
    pub submitted_by: Name,
    /// Agent (or router) currently holding it.
    pub assigned_to: Option<Name>,
    /// Server-wide submission order; the tie-breaker of every view order.
    pub submit_seq: u64,
    pub received_at: Option<Timestamp>,
    pub submitted_at: Timestamp,
    pub placed_in_queue_at: Option<Timestamp>,
    pub moved_to_queue_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub assigned_at: Option<Timestamp>,
    pub held_at: Option<Timestamp>,
    pub scheduled_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub abandoned_at: Option<Timestamp>,
    pub user_data: UserData,
}

/// Type of a system property's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SysPropType {
    Str,
    Int,
    Timestamp,
}

/// A property value as conditions and orders see it; `Null` when unset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Ts(Timestamp),
}

macro_rules! sys_props {
    ($( $variant:ident => $column:literal, $wire:literal, $ty:ident, submit: $submit:literal, update: $update:literal; )*) => {
        /// Every system property. `column` is the snake_case name used in conditions, SQL and
        /// JSON; `protocol_name` is the product family's name, also accepted in conditions.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum SysProp { $( $variant, )* }

        impl SysProp {
            pub const ALL: &'static [SysProp] = &[ $( SysProp::$variant, )* ];

            pub fn column(self) -> &'static str {
                match self { $( SysProp::$variant => $column, )* }
            }

            pub fn protocol_name(self) -> &'static str {
                match self { $( SysProp::$variant => $wire, )* }
            }

            pub fn ty(self) -> SysPropType {
                match self { $( SysProp::$variant => SysPropType::$ty, )* }
            }

            /// May a client give it in RequestSubmit?
            pub fn settable_at_submit(self) -> bool {
                match self { $( SysProp::$variant => $submit, )* }
            }

            /// May RequestChangeProperties change it?
            pub fn updatable(self) -> bool {
                match self { $( SysProp::$variant => $update, )* }
            }
        }
    };
}

sys_props! {
    Id => "id", "InteractionId", Str, submit: true, update: false;
    Tenant => "tenant", "TenantId", Str, submit: false, update: false;
    MediaType => "media_type", "MediaType", Str, submit: true, update: false;
    InteractionType => "type", "InteractionType", Str, submit: true, update: false;
    Subtype => "subtype", "InteractionSubtype", Str, submit: true, update: false;
    Queue => "queue", "Queue", Str, submit: true, update: false;
    Workbin => "workbin", "Workbin", Str, submit: false, update: false;
    WorkbinOwner => "workbin_owner", "WorkbinOwner", Str, submit: false, update: false;
    State => "state", "InteractionState", Str, submit: false, update: false;
    IsOnline => "is_online", "IsOnline", Int, submit: true, update: true;
    IsLocked => "is_locked", "IsLocked", Int, submit: false, update: false;
    IsHeld => "is_held", "IsHeld", Int, submit: false, update: false;
    ParentId => "parent_id", "ParentId", Str, submit: true, update: true;
    ExternalId => "external_id", "ExternalId", Str, submit: true, update: true;
    Priority => "priority", "Priority", Int, submit: true, update: true;
    ServiceObjective => "service_objective", "ServiceObjective", Int, submit: true, update: true;
    SubmittedBy => "submitted_by", "SubmittedBy", Str, submit: false, update: false;
    AssignedTo => "assigned_to", "AssignedTo", Str, submit: false, update: false;
    SubmitSeq => "submit_seq", "SubmitSeq", Int, submit: false, update: false;
    ReceivedAt => "received_at", "ReceivedAt", Timestamp, submit: true, update: false;
    SubmittedAt => "submitted_at", "SubmittedAt", Timestamp, submit: false, update: false;
    PlacedInQueueAt => "placed_in_queue_at", "PlacedInQueueAt", Timestamp, submit: false, update: false;
    MovedToQueueAt => "moved_to_queue_at", "MovedToQueueAt", Timestamp, submit: false, update: false;
    DeliveredAt => "delivered_at", "DeliveredAt", Timestamp, submit: false, update: false;
    AssignedAt => "assigned_at", "AssignedAt", Timestamp, submit: false, update: false;
    HeldAt => "held_at", "HeldAt", Timestamp, submit: false, update: false;
    ScheduledAt => "scheduled_at", "ScheduledAt", Timestamp, submit: true, update: true;
    CompletedAt => "completed_at", "CompletedAt", Timestamp, submit: false, update: false;
    AbandonedAt => "abandoned_at", "AbandonedAt", Timestamp, submit: false, update: false;
}

impl SysProp {
    /// Looks a property up by column name (`media_type`) or protocol name (`MediaType`),
    /// ignoring ASCII case.
    pub fn lookup(name: &str) -> Option<SysProp> {
        SysProp::ALL
            .iter()
            .copied()
            .find(|p| p.column().eq_ignore_ascii_case(name) || p.protocol_name().eq_ignore_ascii_case(name))
    }
}

fn opt_ts(t: Option<Timestamp>) -> Scalar<'static> {
    t.map_or(Scalar::Null, Scalar::Ts)
}

fn opt_str(s: Option<&str>) -> Scalar<'_> {
    s.map_or(Scalar::Null, Scalar::Str)
}

impl Interaction {
    /// A new interaction submitted at `at` and waiting in `queue`: online, unlocked, not held,
    /// priority 0, no user data. Callers set anything else with struct update syntax.
    pub fn queued(
        id: InteractionId,
        tenant: Name,
        media_type: Name,
        queue: Name,
        submitted_by: Name,
        submit_seq: u64,
        at: Timestamp,
    ) -> Interaction {
        Interaction {
            id,
            tenant,
            media_type,
            interaction_type: None,
            subtype: None,
            queue: Some(queue),
            workbin: None,
            state: InteractionState::Queued,
            is_online: true,
            is_locked: false,
            is_held: false,
            parent_id: None,
            external_id: None,
            priority: 0,
            service_objective: None,
            submitted_by,
            assigned_to: None,
            submit_seq,
            received_at: None,
            submitted_at: at,
            placed_in_queue_at: Some(at),
            moved_to_queue_at: Some(at),
            delivered_at: None,
            assigned_at: None,
            held_at: None,
            scheduled_at: None,
            completed_at: None,
            abandoned_at: None,
            user_data: UserData::new(),
        }
    }

    /// The value of one system property.
    pub fn system(&self, p: SysProp) -> Scalar<'_> {
        match p {
            SysProp::Id => Scalar::Str(self.id.as_str()),
            SysProp::Tenant => Scalar::Str(&self.tenant),
            SysProp::MediaType => Scalar::Str(&self.media_type),
            SysProp::InteractionType => opt_str(self.interaction_type.as_deref()),
            SysProp::Subtype => opt_str(self.subtype.as_deref()),
            SysProp::Queue => opt_str(self.queue.as_deref()),
            SysProp::Workbin => opt_str(self.workbin.as_ref().map(|w| w.name.as_str())),
            SysProp::WorkbinOwner => opt_str(self.workbin.as_ref().map(|w| w.owner.as_str())),
            SysProp::State => Scalar::Str(self.state.as_str()),
            SysProp::IsOnline => Scalar::Int(i64::from(self.is_online)),
            SysProp::IsLocked => Scalar::Int(i64::from(self.is_locked)),
            SysProp::IsHeld => Scalar::Int(i64::from(self.is_held)),
            SysProp::ParentId => opt_str(self.parent_id.as_ref().map(InteractionId::as_str)),
            SysProp::ExternalId => opt_str(self.external_id.as_deref()),
            SysProp::Priority => Scalar::Int(self.priority),
            SysProp::ServiceObjective => self.service_objective.map_or(Scalar::Null, Scalar::Int),
            SysProp::SubmittedBy => Scalar::Str(&self.submitted_by),
            SysProp::AssignedTo => opt_str(self.assigned_to.as_deref()),
            SysProp::SubmitSeq => Scalar::Int(self.submit_seq as i64),
            SysProp::ReceivedAt => opt_ts(self.received_at),
            SysProp::SubmittedAt => Scalar::Ts(self.submitted_at),
            SysProp::PlacedInQueueAt => opt_ts(self.placed_in_queue_at),
            SysProp::MovedToQueueAt => opt_ts(self.moved_to_queue_at),
            SysProp::DeliveredAt => opt_ts(self.delivered_at),
            SysProp::AssignedAt => opt_ts(self.assigned_at),
            SysProp::HeldAt => opt_ts(self.held_at),
            SysProp::ScheduledAt => opt_ts(self.scheduled_at),
            SysProp::CompletedAt => opt_ts(self.completed_at),
            SysProp::AbandonedAt => opt_ts(self.abandoned_at),
        }
    }

    /// Seconds since it was last placed in a queue (`_time_in_queue`); `None` when not queued.
    pub fn time_in_queue(&self, now: Timestamp) -> Option<i64> {
        if self.state != InteractionState::Queued {
            return None;
        }
        self.placed_in_queue_at.map(|t| t.seconds_until(now).max(0))
    }

    /// Seconds since it was received (or submitted) (`_age`).
    pub fn age(&self, now: Timestamp) -> i64 {
        self.received_at
            .unwrap_or(self.submitted_at)
            .seconds_until(now)
            .max(0)
    }

    /// Whether views may select it now: queued in a queue (not a workbin), unlocked, and due.
    pub fn is_pullable(&self, now: Timestamp) -> bool {
        self.state == InteractionState::Queued
            && self.workbin.is_none()
            && !self.is_locked
            && self.scheduled_at.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_either_name_any_case() {
        assert_eq!(SysProp::lookup("media_type"), Some(SysProp::MediaType));
        assert_eq!(SysProp::lookup("MediaType"), Some(SysProp::MediaType));
        assert_eq!(SysProp::lookup("PRIORITY"), Some(SysProp::Priority));
        assert_eq!(SysProp::lookup("InteractionId"), Some(SysProp::Id));
        assert_eq!(SysProp::lookup("nope"), None);
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in SysProp::ALL {
            assert!(seen.insert(p.column()), "{}", p.column());
            assert!(seen.insert(p.protocol_name()) || p.protocol_name() == p.column());
        }
    }
}

/// Type of a custom property's column.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomType {
    String,
    Integer,
    Timestamp,
}

/// A user-data key promoted to its own typed, indexed column (the product family's
/// "custom property"): conditions may use it by `name`, and store queries can filter on it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CustomProperty {
    /// Identifier used in conditions and orders, and the column name (`cp_<name>` in SQL).
    pub name: String,
    /// The user-data key whose value fills the column (case-sensitive).
    pub key: String,
    pub ty: CustomType,
}
