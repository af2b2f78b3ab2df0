//! Agents as the engine sees them: who is logged in, at which place, ready for which media,
//! with what load; the capacity rule that applies; and the selection of the best agent of a
//! routing target. Load is kept per holder and updated on every change of an interaction's
//! state or holder, so "can this agent take one more chat" never counts anything.

mod capacity;

use std::collections::{BTreeSet, HashMap};

use ixn_config::BusinessProcess;
use ixn_model::skills::SkillExpr;
use ixn_model::{InteractionId, Name, Timestamp};
use ixn_protocol::{AgentView, MediaStatus, Reason, RouteTarget, SelectionPolicy};

pub(crate) use capacity::{MediaCount, Rule};

/// (tenant, agent id or place name).
pub(crate) type Key = (Name, Name);

/// One media an agent is logged in for.
#[derive(Clone, Debug)]
pub(crate) struct MediaState {
    pub media: Name,
    pub ready: bool,
    pub reason: Option<Reason>,
}

#[derive(Clone, Debug)]
pub(crate) struct Agent {
    pub id: Name,
    pub tenant: Name,
    pub place: Option<Name>,
    pub logged_in_at: Timestamp,
    pub login_order: u64,
    pub media: Vec<MediaState>,
    pub dnd: bool,
    pub reason: Option<Reason>,
    /// Connections (client ids) of the desktop; empty while disconnected.
    pub connections: Vec<u64>,
    pub disconnected_since: Option<Timestamp>,
    /// When the agent last had no interaction at all (or logged in).
    pub idle_since: Timestamp,
    /// Sequence of the last offer made to it (round robin).
    pub last_offer: u64,
}

impl Agent {
    pub fn media(&self, media: &str) -> Option<&MediaState> {
        self.media.iter().find(|m| &*m.media == media)
    }

    pub fn media_mut(&mut self, media: &str) -> Option<&mut MediaState> {
        self.media.iter_mut().find(|m| &*m.media == media)
    }
}

/// What one holder (agent, or any client name) has: load per media and the interactions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Holding {
    pub load: Vec<MediaCount>,
    pub ids: Vec<InteractionId>,
}

/// A configured agent: groups, skills (name, level) and its own capacity rule.
type AgentConfig = (Vec<Name>, Vec<(Name, u32)>, Option<Name>);

/// Configured agent data: groups, skills and capacity rules, per tenant.
#[derive(Debug, Default)]
struct Directory {
    /// (tenant, agent) → its configuration.
    agents: HashMap<Key, AgentConfig>,
    group_rules: HashMap<Key, Name>,
    place_rules: HashMap<Key, Name>,
    rules: HashMap<Key, Rule>,
}

/// Where an available agent sorts: idle before busy, then longest idle, then login order.
type Rank = (bool, i64, u64, Name);

/// Every logged-in agent and every holder's load.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    pub agents: HashMap<Key, Agent>,
    holdings: HashMap<Key, Holding>,
    /// Agents that can take one more of a media now, per (tenant, media), best first for
    /// longest-idle: a routing decision reads the first entry that fits the target instead of
    /// looking at every agent.
    ready: HashMap<Key, BTreeSet<Rank>>,
    /// The entries of each agent in `ready`, to remove them when its state changes.
    filed: HashMap<Key, Vec<(Name, Rank)>>,
    dir: Directory,
    builtin: Option<Rule>,
    next_login: u64,
    next_offer: u64,
}

impl Agents {
    pub fn new(bp: &BusinessProcess) -> Agents {
        let mut a = Agents::default();
        a.configure(bp);
        a
    }

    /// Takes the agent configuration of a (new) business process; logins and loads stay.
    pub fn configure(&mut self, bp: &BusinessProcess) {
        let n = |s: &str| Name::from(s);
        let mut dir = Directory::default();
        for r in &bp.capacity_rules {
            dir.rules.insert((n(&r.tenant), n(&r.name)), Rule::compile(r));
        }
        for g in &bp.agent_groups {
            if let Some(r) = &g.capacity_rule {
                dir.group_rules.insert((n(&g.tenant), n(&g.name)), n(r));
            }
        }
        for p in &bp.places {
            if let Some(r) = &p.capacity_rule {
                dir.place_rules.insert((n(&p.tenant), n(&p.name)), n(r));
            }
        }
        for a in &bp.agents {
            dir.agents.insert(
                (n(&a.tenant), n(&a.id)),
                (
                    a.groups.iter().map(|g| n(g)).collect(),
                    a.skills.iter().map(|(s, l)| (n(s), *l)).collect(),
                    a.capacity_rule.as_deref().map(n),
                ),
            );
        }
        self.dir = dir;
        self.builtin = Some(Rule::builtin());
        let keys: Vec<Key> = self.agents.keys().cloned().collect();
        for key in keys {
            self.refresh(&key);
        }
    }

    /// Re-files an agent in the availability index after anything about it changed (login,
    /// logout, media, ready, do-not-disturb, presence, load, rules).
    pub fn refresh(&mut self, key: &Key) {
        for (media, rank) in self.filed.remove(key).unwrap_or_default() {
            if let Some(set) = self.ready.get_mut(&(key.0.clone(), media)) {
                set.remove(&rank);
            }
        }
        let Some(agent) = self.agents.get(key) else { return };
        let rank: Rank = (
            self.holdings.contains_key(key),
            agent.idle_since.millis(),
            agent.login_order,
            agent.id.clone(),
        );
        let media: Vec<Name> = agent
            .media
            .iter()
            .filter(|m| self.available(agent, &m.media))
            .map(|m| m.media.clone())
            .collect();
        let mut filed = Vec::with_capacity(media.len());
        for m in media {
            self.ready
                .entry((key.0.clone(), m.clone()))
                .or_default()
                .insert(rank.clone());
            filed.push((m, rank.clone()));
        }
        if !filed.is_empty() {
            self.filed.insert(key.clone(), filed);
        }
    }

    pub fn next_login_order(&mut self) -> u64 {
        self.next_login += 1;
        self.next_login
    }

    pub fn next_offer(&mut self) -> u64 {
        self.next_offer += 1;
        self.next_offer
    }

    /// The capacity rule of an agent: its own → its place's → its first group's with one → the
    /// tenant's rule named `default` → the built-in rule (one of each media at a time).
    pub fn rule(&self, agent: &Agent) -> &Rule {
        let tenant = &agent.tenant;
        let cfg = self.dir.agents.get(&(tenant.clone(), agent.id.clone()));
        let name = cfg
            .and_then(|c| c.2.clone())
            .or_else(|| {
                agent
                    .place
                    .as_ref()
                    .and_then(|p| self.dir.place_rules.get(&(tenant.clone(), p.clone())).cloned())
            })
            .or_else(|| {
                cfg.and_then(|c| {
                    c.0.iter()
                        .find_map(|g| self.dir.group_rules.get(&(tenant.clone(), g.clone())).cloned())
                })
            })
            .unwrap_or_else(|| Name::from("default"));
        match self.dir.rules.get(&(tenant.clone(), name)) {
            Some(r) => r,
            None => self.builtin_rule(),
        }
    }

    fn builtin_rule(&self) -> &Rule {
        static BUILTIN: std::sync::OnceLock<Rule> = std::sync::OnceLock::new();
        self.builtin
            .as_ref()
            .unwrap_or_else(|| BUILTIN.get_or_init(Rule::builtin))
    }

    pub fn groups(&self, tenant: &Name, agent: &Name) -> &[Name] {
        self.dir
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .map_or(&[], |c| c.0.as_slice())
    }

    pub fn skill_level(&self, tenant: &Name, agent: &Name, skill: &str) -> u32 {
        self.dir
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .and_then(|c| c.1.iter().find(|(s, _)| &**s == skill).map(|(_, l)| *l))
            .unwrap_or(0)
    }

    pub fn holding(&self, key: &Key) -> Option<&Holding> {
        self.holdings.get(key)
    }

    /// Records that `holder` now has `id` (of `media`) as delivering, handling or a party.
    pub fn hold(&mut self, key: &Key, media: &Name, id: &InteractionId) {
        let h = self.holdings.entry(key.clone()).or_default();
        if h.ids.contains(id) {
            return;
        }
        h.ids.push(id.clone());
        match h.load.iter_mut().find(|(m, _)| m == media) {
            Some((_, n)) => *n += 1,
            None => h.load.push((media.clone(), 1)),
        }
        self.refresh(key);
    }

    /// The opposite of [`Agents::hold`]; marks the agent idle when it has nothing left.
    pub fn release(&mut self, key: &Key, media: &Name, id: &InteractionId, now: Timestamp) {
        let Some(h) = self.holdings.get_mut(key) else {
            return;
        };
        let Some(pos) = h.ids.iter().position(|x| x == id) else {
            return;
        };
        h.ids.swap_remove(pos);
        if let Some(entry) = h.load.iter_mut().find(|(m, _)| m == media) {
            entry.1 = entry.1.saturating_sub(1);
        }
        h.load.retain(|(_, n)| *n > 0);
        if h.ids.is_empty() {
            self.holdings.remove(key);
            if let Some(agent) = self.agents.get_mut(key) {
                agent.idle_since = now;
            }
        }
        self.refresh(key);
    }

    pub fn load(&self, key: &Key) -> &[MediaCount] {
        self.holdings.get(key).map_or(&[], |h| h.load.as_slice())
    }

    /// Whether the agent may get a new offer of `media` now: connected, logged in and ready for
    /// the media, not in do-not-disturb, and under capacity.
    pub fn available(&self, agent: &Agent, media: &str) -> bool {
        agent.disconnected_since.is_none()
            && !agent.dnd
            && agent.media(media).is_some_and(|m| m.ready)
            && self
                .rule(agent)
                .can_take(self.load(&(agent.tenant.clone(), agent.id.clone())), media)
    }

    /// Media types for which the agent can take one more now.
    pub fn available_media(&self, key: &Key) -> Vec<String> {
        let Some(agent) = self.agents.get(key) else {
            return Vec::new();
        };
        agent
            .media
            .iter()
            .filter(|m| self.available(agent, &m.media))
            .map(|m| m.media.to_string())
            .collect()
    }

    /// The best agent of `target` that can take an interaction of `media` now. Only agents
    /// filed as available for the media are looked at, in longest-idle order, so with that
    /// policy the first one that fits the target is the answer.
    pub fn select(
        &self,
        tenant: &Name,
        media: &Name,
        target: &RouteTarget,
        skills: Option<&SkillExpr>,
        declined: &[Name],
    ) -> Option<Name> {
        let any = target.agents.is_empty() && target.groups.is_empty() && target.places.is_empty();
        let set = self.ready.get(&(tenant.clone(), media.clone()))?;
        let mut best: Option<(&Agent, (u64, u64, u64))> = None;
        for rank in set {
            let Some(agent) = self.agents.get(&(tenant.clone(), rank.3.clone())) else {
                continue;
            };
            if declined.contains(&agent.id) || target.exclude.iter().any(|x| **x == *agent.id) {
                continue;
            }
            let in_target = any
                || target.agents.iter().any(|a| **a == *agent.id)
                || agent
                    .place
                    .as_ref()
                    .is_some_and(|p| target.places.iter().any(|x| **x == **p))
                || self
                    .groups(tenant, &agent.id)
                    .iter()
                    .any(|g| target.groups.iter().any(|x| **x == **g));
            if !in_target || !self.available(agent, media) {
                continue;
            }
            let level = |s: &str| self.skill_level(tenant, &agent.id, s);
            if let Some(expr) = skills
                && !expr.matches(&level)
            {
                continue;
            }
            let key = (agent.tenant.clone(), agent.id.clone());
            let busy = u64::from(self.holdings.contains_key(&key));
            let idle = agent.idle_since.millis().max(0) as u64;
            // Smaller is better; login order breaks ties deterministically.
            let rank = match target.policy {
                SelectionPolicy::LongestIdle => (busy, idle, agent.login_order),
                SelectionPolicy::MostFreeCapacity => {
                    let free = self.rule(agent).free(self.load(&key), media);
                    (u64::MAX - u64::from(free), idle, agent.login_order)
                }
                SelectionPolicy::RoundRobin => (agent.last_offer, agent.login_order, 0),
                SelectionPolicy::BestSkill => {
                    let score = skills.map_or(0, |e| e.score(&level));
                    (u64::MAX - score, busy, idle)
                }
            };
            if best.as_ref().is_none_or(|(_, r)| rank < *r) {
                best = Some((agent, rank));
                if target.policy == SelectionPolicy::LongestIdle {
                    break;
                }
            }
        }
        best.map(|(a, _)| a.id.clone())
    }

    /// The wire view of an agent.
    pub fn view(&self, agent: &Agent) -> AgentView {
        let key = (agent.tenant.clone(), agent.id.clone());
        let rule = self.rule(agent);
        let load = self.load(&key);
        let holding = self.holdings.get(&key);
        AgentView {
            agent_id: agent.id.to_string(),
            tenant: agent.tenant.to_string(),
            place: agent.place.as_ref().map(|p| p.to_string()),
            logged_in_at: agent.logged_in_at,
            connected: agent.disconnected_since.is_none(),
            do_not_disturb: agent.dnd,
            reason: agent.reason.clone(),
            idle_since: holding.is_none().then_some(agent.idle_since),
            capacity_rule: rule.name.to_string(),
            media: agent
                .media
                .iter()
                .map(|m| MediaStatus {
                    media_type: m.media.to_string(),
                    ready: m.ready,
                    reason: m.reason.clone(),
                    load: load.iter().find(|(x, _)| *x == m.media).map_or(0, |(_, n)| *n),
                    free: rule.free(load, &m.media),
                })
                .collect(),
            interactions: holding.map_or_else(Vec::new, |h| h.ids.iter().map(|i| i.to_string()).collect()),
        }
    }

    /// Checks that the availability index holds exactly the agents available per media, at
    /// their current rank (for tests).
    pub fn index_problem(&self) -> Option<String> {
        let mut expected: Vec<(Key, Rank)> = Vec::new();
        for (key, agent) in &self.agents {
            for m in agent.media.iter().filter(|m| self.available(agent, &m.media)) {
                let rank = (
                    self.holdings.contains_key(key),
                    agent.idle_since.millis(),
                    agent.login_order,
                    agent.id.clone(),
                );
                expected.push(((key.0.clone(), m.media.clone()), rank));
            }
        }
        let mut actual: Vec<(Key, Rank)> = self
            .ready
            .iter()
            .flat_map(|(k, set)| set.iter().map(move |r| (k.clone(), r.clone())))
            .collect();
        expected.sort();
        actual.sort();
        (expected != actual).then(|| format!("availability index {actual:?} != {expected:?}"))
    }

    /// Checks that no logged-in agent is over its capacity rule (for tests).
    pub fn over_capacity(&self) -> Option<String> {
        self.agents.values().find_map(|agent| {
            let load = self.load(&(agent.tenant.clone(), agent.id.clone()));
            (!self.rule(agent).holds(load)).then(|| format!("{} over capacity: {load:?}", agent.id))
        })
    }
}
