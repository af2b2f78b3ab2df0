//! Reporting of relayed ESP calls. The relay itself (which connection serves a call, pending
//! calls, timeouts) is connection plumbing and lives in the server; the engine only gives each
//! step of a call its place in the outbox sequence, so EventExternalServiceRequested and
//! EventExternalServiceResponded are durable and ordered like every other reporting event.

use ixn_model::{InteractionId, Timestamp};
use ixn_protocol::{EspInfo, Party, ReportingEvent, ReportingEventKind};

use crate::Engine;

impl Engine {
    /// Queues EventExternalServiceRequested for the next batch: `actor` asked, the call was
    /// relayed to the ESP server `esp.app_name`.
    pub fn record_external_service_requested(
        &mut self,
        tenant: &str,
        actor: Party,
        interaction_id: Option<&str>,
        esp: EspInfo,
        now: Timestamp,
    ) {
        self.record_external_service(
            ReportingEventKind::ExternalServiceRequested,
            tenant,
            actor,
            interaction_id,
            esp,
            now,
        );
    }

    /// Queues EventExternalServiceResponded for the next batch (a result, a fault, a timeout,
    /// or the ESP server going away; `esp.outcome` says which).
    pub fn record_external_service_responded(
        &mut self,
        tenant: &str,
        actor: Party,
        interaction_id: Option<&str>,
        esp: EspInfo,
        now: Timestamp,
    ) {
        self.record_external_service(
            ReportingEventKind::ExternalServiceResponded,
            tenant,
            actor,
            interaction_id,
            esp,
            now,
        );
    }

    fn record_external_service(
        &mut self,
        kind: ReportingEventKind,
        tenant: &str,
        actor: Party,
        interaction_id: Option<&str>,
        esp: EspInfo,
        now: Timestamp,
    ) {
        let mut e = ReportingEvent::new(self.next_event_seq, kind, now, tenant);
        self.next_event_seq += 1;
        if let Some(id) = interaction_id {
            e.interaction_id = Some(id.to_owned());
            // A live interaction of this tenant lends its context; another tenant's looks unknown.
            let live = InteractionId::parse(id)
                .ok()
                .and_then(|id| self.interaction(tenant, &id));
            if let Some(ix) = live {
                e.media_type = Some(ix.media_type.to_string());
                e.queue = ix.queue.as_ref().map(|q| q.to_string());
                e.state = Some(ix.state);
            }
        }
        e.actor = Some(actor);
        e.party = Some(Party {
            kind: "esp-server".to_owned(),
            name: esp.app_name.clone(),
        });
        e.esp = Some(esp);
        self.pending_events.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{Fixture, clients};

    fn info(outcome: Option<&str>) -> EspInfo {
        EspInfo {
            request_id: 7,
            reference_id: 3,
            app_name: "ucs".to_owned(),
            app_type: Some("UCS".to_owned()),
            service: "Contact".to_owned(),
            method: "Identify".to_owned(),
            outcome: outcome.map(str::to_owned),
            ..EspInfo::default()
        }
    }

    fn router() -> Party {
        Party {
            kind: "router".to_owned(),
            name: "router".to_owned(),
        }
    }

    #[test]
    fn steps_take_the_next_sequence_numbers_in_order() {
        let mut f = Fixture::new();
        let id = f.submit(&clients::chat(), "inbound");
        let before = f.eng.take_batch().events.last().map(|e| e.seq).unwrap_or(0);
        f.eng
            .record_external_service_requested("default", router(), Some(&id), info(None), f.now);
        f.eng
            .record_external_service_responded("default", router(), Some(&id), info(Some("result")), f.now);
        let events = f.eng.take_batch().events;
        let got: Vec<_> = events.iter().map(|e| (e.seq, e.event.id())).collect();
        assert_eq!(got, vec![(before + 1, 180), (before + 2, 181)]);
        let responded = &events[1];
        assert_eq!(responded.media_type.as_deref(), Some("chat"));
        assert_eq!(responded.queue.as_deref(), Some("inbound"));
        assert_eq!(responded.party.as_ref().map(|p| p.name.as_str()), Some("ucs"));
        assert_eq!(responded.actor, Some(router()));
        assert_eq!(
            responded.esp.as_ref().and_then(|e| e.outcome.as_deref()),
            Some("result")
        );
    }

    #[test]
    fn another_tenants_interaction_lends_no_context() {
        let mut f = Fixture::new();
        let id = f.submit(&clients::chat(), "inbound");
        f.eng.take_batch();
        f.eng
            .record_external_service_requested("acme", router(), Some(&id), info(None), f.now);
        let events = f.eng.take_batch().events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].tenant, "acme");
        assert_eq!(events[0].interaction_id.as_deref(), Some(id.as_str()));
        assert!(events[0].media_type.is_none() && events[0].queue.is_none());
    }
}
