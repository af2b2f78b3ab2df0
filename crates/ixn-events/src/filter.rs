//! `event-filtering`: which events a logger keeps, following the product family's endpoint
//! classification (agent state, agent activity, queue, strategy, ESP service) and the id list.
//! An event a logger does not keep counts as delivered for that logger.

use ixn_config::EventFilter;
use ixn_protocol::{ReportingEvent, ReportingEventKind as K};

/// The event as this logger should see it, or `None` when it is filtered out.
pub fn apply(filter: &EventFilter, event: ReportingEvent) -> Option<ReportingEvent> {
    if !keeps(filter, &event) {
        return None;
    }
    let mut event = event;
    if !filter.log_userdata {
        event.user_data = None;
        event.changes = None;
    }
    Some(event)
}

/// Whether the filter keeps this event.
pub fn keeps(filter: &EventFilter, event: &ReportingEvent) -> bool {
    if !filter.by_id.is_empty() && !filter.by_id.contains(&event.event_id) {
        return false;
    }
    let party_is_router = || {
        event
            .party
            .as_ref()
            .is_some_and(|p| p.kind == "router" || p.kind == "strategy")
    };
    match event.event {
        K::AgentLogin
        | K::AgentLogout
        | K::MediaAdded
        | K::MediaRemoved
        | K::NotReadyForMedia
        | K::ReadyForMedia
        | K::DoNotDisturbOn
        | K::DoNotDisturbOff
        | K::AgentStateReasonChanged
        | K::MediaStateReasonChanged => filter.log_agent_state,
        K::PlacedInQueue | K::TakenFromQueue | K::PlacedInWorkbin | K::TakenFromWorkbin => filter.log_queue,
        K::ExternalServiceRequested | K::ExternalServiceResponded => filter.log_esp_service,
        K::PartyAdded | K::PartyRemoved if party_is_router() => filter.log_strategy,
        K::PartyAdded | K::PartyRemoved | K::AgentInvited | K::Revoked | K::Rejected => {
            filter.log_agent_activity
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ixn_model::Timestamp;
    use ixn_protocol::Party;

    fn ev(kind: K, party: Option<&str>) -> ReportingEvent {
        let mut e = ReportingEvent::new(1, kind, Timestamp(0), "t");
        e.party = party.map(|k| Party {
            kind: k.to_owned(),
            name: "x".to_owned(),
        });
        e
    }

    #[test]
    fn switches_and_ids() {
        let all = EventFilter::default();
        let cases: [(EventFilter, ReportingEvent, bool); 9] = [
            (all.clone(), ev(K::AgentLogin, None), true),
            (
                EventFilter {
                    log_agent_state: false,
                    ..all.clone()
                },
                ev(K::AgentLogin, None),
                false,
            ),
            (
                EventFilter {
                    log_queue: false,
                    ..all.clone()
                },
                ev(K::TakenFromWorkbin, None),
                false,
            ),
            (
                EventFilter {
                    log_queue: false,
                    ..all.clone()
                },
                ev(K::InteractionSubmitted, None),
                true,
            ),
            (
                EventFilter {
                    log_strategy: false,
                    ..all.clone()
                },
                ev(K::PartyAdded, Some("router")),
                false,
            ),
            (
                EventFilter {
                    log_strategy: false,
                    ..all.clone()
                },
                ev(K::PartyAdded, Some("agent")),
                true,
            ),
            (
                EventFilter {
                    log_agent_activity: false,
                    ..all.clone()
                },
                ev(K::Rejected, None),
                false,
            ),
            (
                EventFilter {
                    log_esp_service: false,
                    ..all.clone()
                },
                ev(K::ExternalServiceResponded, None),
                false,
            ),
            (
                EventFilter {
                    by_id: vec![168],
                    ..all.clone()
                },
                ev(K::Held, None),
                false,
            ),
        ];
        for (i, (filter, event, expected)) in cases.iter().enumerate() {
            assert_eq!(keeps(filter, event), *expected, "case {i}");
        }
    }

    #[test]
    fn userdata_switch_strips_user_data() {
        let mut e = ev(K::InteractionSubmitted, None);
        e.user_data = Some(ixn_model::UserData::new());
        let f = EventFilter {
            log_userdata: false,
            ..EventFilter::default()
        };
        assert_eq!(apply(&f, e).and_then(|e| e.user_data), None);
    }
}
