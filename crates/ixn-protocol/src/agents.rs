//! Agent, delivery and routing types of the wire contract: how a desktop logs in per media, how
//! a router names the agents an interaction may go to, and how the server describes an agent.

use ixn_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Reason;

/// One media an agent logs in with (RequestAgentLogin) or adds (RequestAddMedia).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaLogin {
    pub media_type: String,
    /// Ready at once (`true`, the default) or not ready with `reason`.
    #[serde(default = "yes")]
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

fn yes() -> bool {
    true
}

/// How the server chooses among the agents of a target that can take the interaction now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionPolicy {
    /// The agent idle (with no interaction of any media) the longest; ties by login order.
    #[default]
    LongestIdle,
    /// The agent with the most free capacity for the media (maximum minus load).
    MostFreeCapacity,
    /// Rotates through the target's agents.
    RoundRobin,
    /// The highest sum of the levels of the skills the target's expression names.
    BestSkill,
}

impl SelectionPolicy {
    pub const ALL: [SelectionPolicy; 4] = [
        Self::LongestIdle,
        Self::MostFreeCapacity,
        Self::RoundRobin,
        Self::BestSkill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongestIdle => "longest-idle",
            Self::MostFreeCapacity => "most-free-capacity",
            Self::RoundRobin => "round-robin",
            Self::BestSkill => "best-skill",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The agents an interaction may be routed to. The lists are alternatives (an agent matching
/// any of them qualifies); a skill expression narrows every candidate further. With no agents,
/// groups or places at all, every logged-in agent of the tenant is a candidate.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTarget {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub places: Vec<String>,
    /// Skill expression, e.g. `english >= 5 & (sales | support >= 3)`; a bare skill name means
    /// level ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<String>,
    #[serde(default)]
    pub policy: SelectionPolicy,
    /// Agents never to choose (they rejected the interaction or let the offer time out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// What an invite is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InviteKind {
    /// A router delivers the interaction.
    Route,
    /// The handling agent hands it over.
    Transfer,
    /// The handling agent adds a party.
    Conference,
}

/// How a supervisor joins an interaction (RequestIntrude).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Sees everything; the customer and the agent do not see the supervisor.
    Monitor,
    /// Seen by the agent only.
    Coach,
    /// A full party, seen by everyone.
    #[default]
    Conference,
}

/// How an invite ended, as told to the router that routed the interaction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InviteOutcome {
    Accepted,
    Rejected,
    TimedOut,
    /// Withdrawn: the agent logged out, or the interaction was stopped or moved.
    Revoked,
}

/// One media of an agent as the server sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MediaStatus {
    pub media_type: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Interactions of this media the agent has (delivering or handling).
    pub load: u32,
    /// How many more the capacity rule allows now (0 when it blocks this media).
    pub free: u32,
}

/// An agent as the server sees it (answers to agent requests and RequestGetAgents).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgentView {
    pub agent_id: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    pub logged_in_at: Timestamp,
    /// `false` while the desktop is disconnected (its login is kept for the grace period).
    pub connected: bool,
    pub do_not_disturb: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Since when the agent has had no interaction at all (`None` while busy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<Timestamp>,
    pub capacity_rule: String,
    pub media: Vec<MediaStatus>,
    /// Interactions offered to or handled by the agent.
    pub interactions: Vec<String>,
}
