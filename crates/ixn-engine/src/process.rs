//! The business process compiled for the engine: names interned, views numbered (view indexes
//! are addressed by number), lookups by (tenant, name) in O(1).

use std::collections::{HashMap, HashSet};

use ixn_config::BusinessProcess;
use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{CustomProperty, Name, WorkbinOwnerType};

#[derive(Debug)]
pub(crate) struct ViewDef {
    pub tenant: Name,
    pub name: Name,
    pub queue: Name,
    pub condition: Condition,
    pub order: OrderBy,
    /// Condition or order reads the clock, so it is evaluated at pull time.
    pub time_dependent: bool,
    /// Max interactions selected by this view in flight at once (0 = unlimited).
    pub limit: u32,
    pub enabled: bool,
    /// Seconds an interaction returned to the queue stays invisible to this view.
    pub freeze_interval_s: u32,
    /// The smallest in-flight limit on this view: its own `limit` or a submitter's
    /// `max-in-flight` (`u32::MAX` when none). Below it no pull is held by a limit.
    pub in_flight_cap: u32,
}

/// One submitter feeding a strategy.
#[derive(Debug, Clone)]
pub(crate) struct SubmitterDef {
    pub view: Option<u16>,
    pub max_in_flight: u32,
    pub enabled: bool,
}

#[derive(Debug)]
pub(crate) struct ProcessIndex {
    pub media_types: HashSet<Name>,
    /// (tenant, queue) → queue name; queues per tenant in configuration order.
    pub queues: HashMap<(Name, Name), Name>,
    pub queue_list: HashMap<Name, Vec<Name>>,
    pub views: Vec<ViewDef>,
    pub view_ids: HashMap<(Name, Name), u16>,
    pub workbins: HashMap<(Name, Name), WorkbinOwnerType>,
    pub custom_properties: Vec<CustomProperty>,
    /// Media type → its own handling-timeout (minutes).
    pub handling_timeouts: HashMap<Name, u32>,
    /// (tenant, strategy) → its submitters in configuration order.
    pub strategies: HashMap<(Name, Name), Vec<SubmitterDef>>,
}

impl ProcessIndex {
    pub fn build(bp: &BusinessProcess) -> ProcessIndex {
        let n = |s: &str| Name::from(s);
        let mut queues = HashMap::new();
        let mut queue_list: HashMap<Name, Vec<Name>> = HashMap::new();
        for q in &bp.queues {
            queues.insert((n(&q.tenant), n(&q.name)), n(&q.name));
            queue_list.entry(n(&q.tenant)).or_default().push(n(&q.name));
        }
        let mut views = Vec::new();
        let mut view_ids = HashMap::new();
        for v in &bp.views {
            view_ids.insert((n(&v.tenant), n(&v.name)), views.len() as u16);
            views.push(ViewDef {
                tenant: n(&v.tenant),
                name: n(&v.name),
                queue: n(&v.queue),
                time_dependent: v.condition.is_time_dependent() || v.order.is_time_dependent(),
                condition: v.condition.clone(),
                order: v.order.clone(),
                limit: v.limit,
                enabled: v.enabled,
                freeze_interval_s: v.freeze_interval_s,
                in_flight_cap: if v.limit > 0 { v.limit } else { u32::MAX },
            });
        }
        for s in &bp.submitters {
            if let Some(&v) = view_ids.get(&(n(&s.tenant), n(&s.view))) {
                let cap = &mut views[v as usize].in_flight_cap;
                *cap = (*cap).min(s.max_in_flight);
            }
        }
        ProcessIndex {
            media_types: bp.media_types.iter().map(|m| n(&m.name)).collect(),
            queues,
            queue_list,
            views,
            view_ids: view_ids.clone(),
            workbins: bp
                .workbins
                .iter()
                .map(|w| ((n(&w.tenant), n(&w.name)), w.owner_type))
                .collect(),
            custom_properties: bp.custom_properties.clone(),
            handling_timeouts: bp
                .media_types
                .iter()
                .filter_map(|m| m.handling_timeout_min.map(|t| (n(&m.name), t)))
                .collect(),
            strategies: {
                let mut map: HashMap<(Name, Name), Vec<SubmitterDef>> = HashMap::new();
                for s in &bp.submitters {
                    map.entry((n(&s.tenant), n(&s.strategy)))
                        .or_default()
                        .push(SubmitterDef {
                            view: view_ids.get(&(n(&s.tenant), n(&s.view))).copied(),
                            max_in_flight: s.max_in_flight,
                            enabled: s.enabled,
                        });
                }
                map
            },
        }
    }

    /// The interned queue name, when the queue exists in the tenant.
    pub fn queue(&self, tenant: &Name, name: &str) -> Option<&Name> {
        self.queues.get(&(tenant.clone(), Name::from(name)))
    }

    pub fn view_id(&self, tenant: &Name, name: &str) -> Option<u16> {
        self.view_ids.get(&(tenant.clone(), Name::from(name))).copied()
    }

    pub fn workbin(&self, tenant: &Name, name: &str) -> Option<WorkbinOwnerType> {
        self.workbins.get(&(tenant.clone(), Name::from(name))).copied()
    }
}
