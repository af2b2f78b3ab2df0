//! What a handled request causes besides its answer: reporting events (queued for the next
//! batch) and notifications to other clients (delivered by the server after the commit).

use ixn_model::{ClientKind, Interaction, Name, Timestamp};
use ixn_protocol::{InteractionView, Party, ReportingEvent, ReportingEventKind, ServerMessage};

use crate::{ClientCtx, Engine};

/// Who a notification is for; the server maps these to connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notify {
    /// One connection.
    Client(u64),
    /// Every connection of an application of a tenant.
    Application { tenant: Name, application: Name },
    /// Every connection holding interactions under this name (an agent id, or a router's
    /// application name).
    Holder { tenant: Name, holder: Name },
    /// Connections of this media-server application that registered with
    /// `notify_properties_changed`.
    SubmitterWatching { tenant: Name, application: Name },
    /// Every router connection of a tenant.
    Routers { tenant: Name },
}

/// Notifications produced while handling requests, in order.
#[derive(Debug, Default)]
pub struct Output {
    pub notifications: Vec<(Notify, ServerMessage)>,
}

impl Output {
    pub fn notify(&mut self, to: Notify, message: ServerMessage) {
        self.notifications.push((to, message));
    }
}

/// The reporting party of a client: `agent` for desktops, `router` for routers, otherwise the
/// client kind (`media-server`, `admin`, …).
pub(crate) fn party_of(client: &ClientCtx) -> Party {
    let kind = match client.kind {
        ClientKind::AgentDesktop => "agent",
        ClientKind::Router => "router",
        other => other.as_str(),
    };
    Party {
        kind: kind.to_owned(),
        name: client.holder_name().to_string(),
    }
}

pub(crate) fn view_of(ix: &Interaction) -> Box<InteractionView> {
    Box::new(InteractionView::from(ix))
}

impl Engine {
    /// Queues a reporting event about `ix` for the next batch; `fill` sets the specific fields.
    pub(crate) fn emit(
        &mut self,
        kind: ReportingEventKind,
        ix: &Interaction,
        now: Timestamp,
        fill: impl FnOnce(&mut ReportingEvent),
    ) {
        let mut e = ReportingEvent::new(self.next_event_seq, kind, now, &ix.tenant);
        self.next_event_seq += 1;
        e.interaction_id = Some(ix.id.to_string());
        e.media_type = Some(ix.media_type.to_string());
        e.queue = ix.queue.as_ref().map(|q| q.to_string());
        if let Some(w) = &ix.workbin {
            e.workbin = Some(w.name.to_string());
            e.workbin_owner = Some(w.owner.to_string());
        }
        e.state = Some(ix.state);
        fill(&mut e);
        self.pending_events.push(e);
    }
}
