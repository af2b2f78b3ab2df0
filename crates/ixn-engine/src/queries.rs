//! Read requests over live interactions: snapshots (consistent, ordered, paged), find,
//! workbin content and queue depths. Snapshots belong to the connection that took them and are
//! released with it, on request, or after [`SNAPSHOT_IDLE_MS`] without use.

use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{InteractionId, Name, Timestamp};
use ixn_protocol::{
    ErrorCode, FindInteractions, GetSnapshotInteractions, GetWorkbinContent, InteractionView, ProtocolError,
    QueueInfo, ServerMessage, TakeSnapshot,
};

use crate::{ClientCtx, Engine};

/// A snapshot unused for this long is released.
pub const SNAPSHOT_IDLE_MS: i64 = 30 * 60 * 1000;
/// Default and largest page of RequestFindInteractions.
const FIND_DEFAULT_LIMIT: u32 = 100;
const FIND_MAX_LIMIT: u32 = 10_000;

/// The ids a snapshot selected, in order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub owner: u64,
    pub ids: Vec<InteractionId>,
    pub last_used: Timestamp,
}

fn bad_condition(what: &str, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidCondition, format!("{what}: {e}"))
}

impl Engine {
    fn parse_query(
        &self,
        condition: Option<&str>,
        order: Option<&str>,
    ) -> Result<(Condition, OrderBy), ProtocolError> {
        let props = &self.process.custom_properties;
        let condition = match condition {
            Some(text) => Condition::parse(text, props).map_err(|e| bad_condition("condition", e))?,
            None => Condition::always(),
        };
        let order = match order {
            Some(text) => OrderBy::parse(text, props).map_err(|e| bad_condition("order", e))?,
            None => OrderBy::default(),
        };
        Ok((condition, order))
    }

    /// Live interactions of the client's tenant matching, in order (`queue` narrows the scan).
    fn select(
        &self,
        client: &ClientCtx,
        queue: Option<&Name>,
        condition: &Condition,
        order: &OrderBy,
        now: Timestamp,
    ) -> Vec<InteractionId> {
        let mut hits: Vec<_> = self
            .live
            .iter()
            .map(|(_, ix)| ix)
            .filter(|ix| ix.tenant == client.tenant)
            .filter(|ix| queue.is_none_or(|q| ix.queue.as_ref() == Some(q)))
            .filter(|ix| condition.eval(ix, now))
            .map(|ix| (order.sort_key(ix, crate::views::ORDER_REFERENCE), ix.id.clone()))
            .collect();
        hits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        hits.into_iter().map(|(_, id)| id).collect()
    }

    pub(crate) fn snapshot_ids(
        &mut self,
        client: &ClientCtx,
        snapshot_id: u64,
        now: Timestamp,
    ) -> Result<Vec<InteractionId>, ProtocolError> {
        match self.snapshots.get_mut(&snapshot_id) {
            Some(s) if s.owner == client.client_id => {
                s.last_used = now;
                Ok(s.ids.clone())
            }
            _ => Err(ProtocolError::new(
                ErrorCode::UnknownSnapshot,
                format!("no snapshot {snapshot_id}"),
            )),
        }
    }
}

pub(crate) fn take_snapshot(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: TakeSnapshot,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let queue = match &r.queue {
        Some(q) => Some(
            eng.process
                .queue(&client.tenant, q)
                .cloned()
                .ok_or_else(|| ProtocolError::new(ErrorCode::UnknownQueue, format!("no queue {q:?}")))?,
        ),
        None => None,
    };
    let (condition, order) = eng.parse_query(r.condition.as_deref(), r.order.as_deref())?;
    let cap = eng.settings.max_interactions_per_snapshot;
    let max = r.max.unwrap_or(cap).min(cap) as usize;
    let mut ids = eng.select(client, queue.as_ref(), &condition, &order, now);
    ids.truncate(max);
    let snapshot_id = eng.next_snapshot_id;
    eng.next_snapshot_id += 1;
    let count = ids.len() as u64;
    eng.snapshots.insert(
        snapshot_id,
        Snapshot {
            owner: client.client_id,
            ids,
            last_used: now,
        },
    );
    Ok(ServerMessage::EventSnapshotTaken {
        reference_id: rid,
        snapshot_id,
        count,
    })
}

pub(crate) fn snapshot_page(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: GetSnapshotInteractions,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let ids = eng.snapshot_ids(client, r.snapshot_id, now)?;
    let interactions = ids
        .iter()
        .skip(r.offset as usize)
        .take(r.count as usize)
        .filter_map(|id| eng.live.get_by_id(id))
        .map(InteractionView::from)
        .collect();
    Ok(ServerMessage::EventSnapshotInteractions {
        reference_id: rid,
        snapshot_id: r.snapshot_id,
        offset: r.offset,
        interactions,
    })
}

pub(crate) fn release_snapshot(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    snapshot_id: u64,
) -> Result<ServerMessage, ProtocolError> {
    match eng.snapshots.get(&snapshot_id) {
        Some(s) if s.owner == client.client_id => {
            eng.snapshots.remove(&snapshot_id);
            Ok(ServerMessage::ack(rid))
        }
        _ => Err(ProtocolError::new(
            ErrorCode::UnknownSnapshot,
            format!("no snapshot {snapshot_id}"),
        )),
    }
}

pub(crate) fn expire_snapshots(eng: &mut Engine, now: Timestamp) {
    eng.snapshots
        .retain(|_, s| now.millis() - s.last_used.millis() < SNAPSHOT_IDLE_MS);
}

/// Validates a find request's limits; shared with the server's history search.
pub fn find_window(r: &FindInteractions) -> Result<(u32, u32), ProtocolError> {
    let limit = r.limit.unwrap_or(FIND_DEFAULT_LIMIT);
    if limit == 0 || limit > FIND_MAX_LIMIT {
        return Err(ProtocolError::new(
            ErrorCode::InvalidValue,
            format!("limit must be 1..={FIND_MAX_LIMIT}"),
        ));
    }
    Ok((limit, r.offset))
}

pub(crate) fn find(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: FindInteractions,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let (limit, offset) = find_window(&r)?;
    let (condition, order) = eng.parse_query(Some(&r.condition), r.order.as_deref())?;
    let ids = eng.select(client, None, &condition, &order, now);
    let interactions = ids
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .filter_map(|id| eng.live.get_by_id(id))
        .map(InteractionView::from)
        .collect();
    Ok(ServerMessage::EventFoundInteractions {
        reference_id: rid,
        interactions,
    })
}

pub(crate) fn workbin_content(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: GetWorkbinContent,
) -> Result<ServerMessage, ProtocolError> {
    let w = eng.resolve_workbin(client, &r.workbin)?;
    let key = (client.tenant.clone(), w.name.clone(), w.owner.clone());
    let interactions = eng
        .views
        .workbins
        .get(&key)
        .map(|set| {
            set.iter()
                .filter_map(|(_, _, slot)| eng.live.get(*slot))
                .map(InteractionView::from)
                .collect()
        })
        .unwrap_or_default();
    Ok(ServerMessage::EventWorkbinContent {
        reference_id: rid,
        workbin: w.name.to_string(),
        owner: w.owner.to_string(),
        interactions,
    })
}

pub(crate) fn queues(eng: &Engine, client: &ClientCtx, rid: u64) -> ServerMessage {
    let queues = eng
        .process
        .queue_list
        .get(&client.tenant)
        .map(|names| {
            names
                .iter()
                .map(|q| {
                    let c = eng.views.counts(&client.tenant, q);
                    QueueInfo {
                        name: q.to_string(),
                        depth: c.waiting,
                        in_progress: c.in_progress,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    ServerMessage::EventQueues {
        reference_id: rid,
        queues,
    }
}
