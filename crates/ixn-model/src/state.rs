//! The interaction state machine of DESIGN.md §3 as a pure function: `next(state, transition)`
//! returns the new state or an [`InvalidTransition`] error; it never panics. Held and locked are
//! flags beside the state, not states.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an interaction is in its lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum InteractionState {
    /// Waiting in a queue or a workbin.
    Queued,
    /// Pulled by a router through a submitter's view.
    Routing,
    /// Offered to an agent (invite sent, not yet accepted).
    Delivering,
    /// Being handled by an agent.
    Handling,
    /// Processing stopped; kept as history until purged.
    Stopped,
}

impl InteractionState {
    pub const ALL: [InteractionState; 5] = [
        Self::Queued,
        Self::Routing,
        Self::Delivering,
        Self::Handling,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Routing => "routing",
            Self::Delivering => "delivering",
            Self::Handling => "handling",
            Self::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }

    /// Stable small integer used by the store.
    pub fn code(self) -> i16 {
        match self {
            Self::Queued => 0,
            Self::Routing => 2,
            Self::Handling => 3,
            Self::Delivering => 4,
            Self::Stopped => 9,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| i64::from(s.code()) == code)
    }

    pub fn is_terminal(self) -> bool {
        self == Self::Stopped
    }
}

impl fmt::Display for InteractionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that moves an interaction between states.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transition {
    /// RequestSubmit from a media server (→ queued).
    SubmitByMediaServer,
    /// RequestSubmit from an agent desktop (→ handling).
    SubmitByAgent,
    /// RequestPull by a router through a view (queued → routing).
    PullByRouter,
    /// RequestPull by an agent (queued → handling).
    PullByAgent,
    /// A router routes it to an agent (routing → delivering).
    RouteToAgent,
    /// The agent accepts the invite (delivering → handling).
    Accept,
    /// The agent rejects the invite (delivering → queued).
    Reject,
    /// delivering-timeout (delivering → queued).
    DeliveringTimeout,
    /// routing-timeout (routing → queued).
    RoutingTimeout,
    /// handling-timeout (handling → queued).
    HandlingTimeout,
    /// RequestPlaceInQueue (queued, routing, handling → queued).
    PlaceInQueue,
    /// RequestPlaceInWorkbin (queued, routing, handling → queued in a workbin).
    PlaceInWorkbin,
    /// Transfer or conference invite to an agent while handled (handling → handling).
    InviteWhileHandling,
    /// RequestStopProcessing (any live state → stopped).
    Stop,
}

/// A transition that is not allowed from a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{transition:?} is not allowed while the interaction is {}", from.map_or("new", InteractionState::as_str))]
pub struct InvalidTransition {
    pub from: Option<InteractionState>,
    pub transition: Transition,
}

impl Transition {
    /// The state after `self` is applied to `from` (`None` = the interaction does not exist yet).
    pub fn apply(self, from: Option<InteractionState>) -> Result<InteractionState, InvalidTransition> {
        use InteractionState::*;
        use Transition::*;
        let to = match (from, self) {
            (None, SubmitByMediaServer) => Some(Queued),
            (None, SubmitByAgent) => Some(Handling),
            (Some(Queued), PullByRouter) => Some(Routing),
            (Some(Queued), PullByAgent) => Some(Handling),
            (Some(Routing), RouteToAgent) => Some(Delivering),
            (Some(Delivering), Accept) => Some(Handling),
            (Some(Delivering), Reject | DeliveringTimeout) => Some(Queued),
            (Some(Routing), RoutingTimeout) => Some(Queued),
            (Some(Handling), HandlingTimeout) => Some(Queued),
            (Some(Queued | Routing | Handling), PlaceInQueue | PlaceInWorkbin) => Some(Queued),
            (Some(Handling), InviteWhileHandling) => Some(Handling),
            (Some(Queued | Routing | Delivering | Handling), Stop) => Some(Stopped),
            _ => None,
        };
        to.ok_or(InvalidTransition {
            from,
            transition: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_T: [Transition; 14] = [
        Transition::SubmitByMediaServer,
        Transition::SubmitByAgent,
        Transition::PullByRouter,
        Transition::PullByAgent,
        Transition::RouteToAgent,
        Transition::Accept,
        Transition::Reject,
        Transition::DeliveringTimeout,
        Transition::RoutingTimeout,
        Transition::HandlingTimeout,
        Transition::PlaceInQueue,
        Transition::PlaceInWorkbin,
        Transition::InviteWhileHandling,
        Transition::Stop,
    ];

    #[test]
    fn the_table_of_the_design() {
        use InteractionState::*;
        use Transition::*;
        let ok = [
            (None, SubmitByMediaServer, Queued),
            (None, SubmitByAgent, Handling),
            (Some(Queued), PullByRouter, Routing),
            (Some(Queued), PullByAgent, Handling),
            (Some(Routing), RouteToAgent, Delivering),
            (Some(Delivering), Accept, Handling),
            (Some(Delivering), Reject, Queued),
            (Some(Delivering), DeliveringTimeout, Queued),
            (Some(Routing), RoutingTimeout, Queued),
            (Some(Handling), HandlingTimeout, Queued),
            (Some(Routing), PlaceInQueue, Queued),
            (Some(Handling), PlaceInWorkbin, Queued),
            (Some(Delivering), Stop, Stopped),
        ];
        for (from, t, to) in ok {
            assert_eq!(t.apply(from), Ok(to), "{from:?} {t:?}");
        }
        let bad = [
            (Some(Stopped), Stop),
            (Some(Queued), Accept),
            (Some(Handling), PullByRouter),
            (Some(Delivering), PlaceInQueue),
            (None, Stop),
            (Some(Queued), SubmitByMediaServer),
        ];
        for (from, t) in bad {
            assert!(t.apply(from).is_err(), "{from:?} {t:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in InteractionState::ALL {
            assert_eq!(InteractionState::from_code(i64::from(s.code())), Some(s));
            assert_eq!(InteractionState::parse(s.as_str()), Some(s));
        }
    }

    proptest! {
        /// Any sequence of transitions: never panics, stopped is absorbing, and a live state can
        /// always still be stopped.
        #[test]
        fn random_walks_stay_defined(seq in proptest::collection::vec(0usize..14, 0..64)) {
            let mut state: Option<InteractionState> = None;
            for i in seq {
                match ALL_T[i].apply(state) {
                    Ok(next) => {
                        prop_assert!(state != Some(InteractionState::Stopped));
                        state = Some(next);
                    }
                    Err(e) => prop_assert_eq!(e.from, state),
                }
                if let Some(s) = state
                    && !s.is_terminal()
                {
                    prop_assert_eq!(Transition::Stop.apply(state), Ok(InteractionState::Stopped));
                }
            }
        }
    }
}
