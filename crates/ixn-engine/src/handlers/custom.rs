//! RequestCustomReporting: a client's own reporting event. It changes no interaction; it only
//! writes EventCustomReporting (with the client's custom event id and user data) to the outbox,
//! in order with the interaction events of the same batch, and is acknowledged once durable.

use ixn_model::Timestamp;
use ixn_protocol::{CustomReporting, ProtocolError, ReportingEvent, ReportingEventKind as K, ServerMessage};

use crate::effects::party_of;
use crate::{ClientCtx, Engine};

pub(crate) fn report(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: CustomReporting,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let actor = party_of(client);
    match &r.interaction_id {
        Some(id) => {
            // Validates the id within the client's tenant before anything is recorded.
            let slot = eng.find_slot(client, id)?;
            let ix = eng.ix(slot).clone();
            eng.emit(K::CustomReporting, &ix, now, |e| {
                e.actor = Some(actor);
                e.custom_event_id = Some(r.custom_event_id);
                e.user_data = Some(r.user_data);
            });
        }
        None => {
            let mut e = ReportingEvent::new(eng.next_event_seq, K::CustomReporting, now, &client.tenant);
            eng.next_event_seq += 1;
            e.actor = Some(actor);
            e.custom_event_id = Some(r.custom_event_id);
            e.user_data = Some(r.user_data);
            eng.pending_events.push(e);
        }
    }
    Ok(ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: r.interaction_id,
        interaction: None,
    })
}
