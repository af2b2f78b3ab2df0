//! `[[strategies]]`: the routing strategies routers run, declared in the business process.
//!
//! A strategy is a list of steps, each a target (agents, groups, places, a skill expression) with
//! a selection policy and a wait before it widens to the next step; around the steps sit the
//! priority raise with age, the overflow to another queue, the action taken when the steps are
//! exhausted, and optionally a script deciding instead of the steps. This module reads and checks
//! them; running them is the router's job. A file that declares no strategy gets a built-in
//! `default` strategy in each tenant: one step, any agent, longest idle first.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::DeValue;

use crate::error::Diagnostics;
use crate::reader::{At, Fields};
use crate::sections::name_problem;

/// Name of the strategy every tenant gets when the file declares none.
pub const DEFAULT_STRATEGY: &str = "default";

/// One routing strategy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Strategy {
    pub name: String,
    pub tenant: String,
    /// A disabled strategy is not run by routers (its submitters keep their interactions).
    pub enabled: bool,
    /// Virtual queue reported in user data (`RVQID`); the strategy name when absent.
    pub virtual_queue: Option<String>,
    /// Tried in order; each widens the previous one after its wait.
    pub steps: Vec<StrategyStep>,
    pub priority_raise: Option<PriorityRaise>,
    pub overflow: Option<Overflow>,
    /// What happens when the last step's wait has passed.
    pub on_exhausted: FinalAction,
    /// A script deciding instead of the steps (which remain the fallback when it fails).
    pub script: Option<StrategyScript>,
    pub description: Option<String>,
}

impl Strategy {
    /// The built-in strategy: one step, any agent of the tenant, longest idle first.
    pub fn builtin_default(tenant: &str) -> Strategy {
        Strategy {
            name: DEFAULT_STRATEGY.to_owned(),
            tenant: tenant.to_owned(),
            enabled: true,
            virtual_queue: None,
            steps: vec![StrategyStep::default()],
            priority_raise: None,
            overflow: None,
            on_exhausted: FinalAction::KeepWaiting,
            script: None,
            description: Some("Any ready agent with free capacity, longest idle first.".to_owned()),
        }
    }

    /// The virtual queue name reported in `RVQID`.
    pub fn virtual_queue(&self) -> &str {
        self.virtual_queue.as_deref().unwrap_or(&self.name)
    }
}

/// One step: who may get the interaction, how to choose among them, and how long to try.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StrategyStep {
    pub agents: Vec<String>,
    pub groups: Vec<String>,
    pub places: Vec<String>,
    /// Skill expression, e.g. `english >= 5 & (sales | support >= 3)`.
    pub skills: Option<String>,
    pub policy: Policy,
    /// Seconds to try this step before widening to the next; `None` tries it forever.
    pub wait_s: Option<u32>,
}

/// How the server chooses among a target's agents that can take the interaction now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Policy {
    #[default]
    LongestIdle,
    MostFreeCapacity,
    RoundRobin,
    BestSkill,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::LongestIdle,
        Policy::MostFreeCapacity,
        Policy::RoundRobin,
        Policy::BestSkill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::LongestIdle => "longest-idle",
            Policy::MostFreeCapacity => "most-free-capacity",
            Policy::RoundRobin => "round-robin",
            Policy::BestSkill => "best-skill",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Raise the priority of a waiting interaction by `increment` every `interval_s`, up to `max`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PriorityRaise {
    pub increment: i64,
    pub interval_s: u32,
    pub max: Option<i64>,
}

/// Move a still-waiting interaction to `queue` after `after_s` in the strategy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Overflow {
    pub queue: String,
    pub after_s: u32,
}

/// What a strategy does when its steps are exhausted (or a script decides it).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub enum FinalAction {
    /// Keep trying the last step.
    #[default]
    KeepWaiting,
    PlaceInQueue(String),
    PlaceInWorkbin {
        workbin: String,
        owner: Option<String>,
    },
    Stop {
        reason: Option<String>,
    },
}

/// A script strategy and its sandbox limits.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StrategyScript {
    pub code: ScriptCode,
    /// Most operations one run may execute.
    pub max_operations: u64,
    /// Longest wall-clock time of one run, in milliseconds (ESP calls included).
    pub time_limit_ms: u32,
}

/// Where a script's text is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ScriptCode {
    Inline(String),
    /// Read by the router at start.
    File(PathBuf),
}

/// A strategy as read, with positions for the cross-checks.
#[derive(Debug)]
pub(crate) struct StrategyDraft {
    name: At<String>,
    tenant: At<String>,
    overflow_queue: Option<At<String>>,
    exhausted_queue: Option<At<String>>,
    exhausted_workbin: Option<At<String>>,
    strategy: Strategy,
}

/// Names the strategies may refer to: `(tenant, name)` of tenants (`""` scope), queues and
/// workbins.
#[derive(Debug, Default)]
pub(crate) struct KnownNames {
    pub tenants: Vec<String>,
    pub queues: Vec<(String, String)>,
    pub workbins: Vec<(String, String)>,
}

impl KnownNames {
    /// The names of the file's process, or of the built-in one when the file has none.
    pub(crate) fn of(
        draft: &crate::sections::Draft,
        has_process: bool,
        builtin: fn() -> crate::model::BusinessProcess,
    ) -> KnownNames {
        if !has_process {
            let p = builtin();
            return KnownNames {
                tenants: p.tenants.iter().map(|t| t.name.clone()).collect(),
                queues: p
                    .queues
                    .iter()
                    .map(|q| (q.tenant.clone(), q.name.clone()))
                    .collect(),
                workbins: p
                    .workbins
                    .iter()
                    .map(|w| (w.tenant.clone(), w.name.clone()))
                    .collect(),
            };
        }
        let mut tenants: Vec<String> = draft.tenants.iter().map(|t| t.name.value.clone()).collect();
        if tenants.is_empty() {
            tenants.push(crate::model::defaults::TENANT.to_owned());
        }
        KnownNames {
            tenants,
            queues: draft
                .queues
                .iter()
                .map(|q| (q.tenant.value.clone(), q.name.value.clone()))
                .collect(),
            workbins: draft
                .workbins
                .iter()
                .map(|w| (w.tenant.value.clone(), w.name.value.clone()))
                .collect(),
        }
    }
}

impl crate::model::BusinessProcess {
    /// The strategy `name` of `tenant`.
    pub fn strategy(&self, tenant: &str, name: &str) -> Option<&Strategy> {
        self.strategies
            .iter()
            .find(|s| s.tenant == tenant && s.name == name)
    }
}

/// Reads every `[[strategies]]` table.
pub(crate) fn read(root: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Vec<StrategyDraft> {
    let Some(items) = root.array_of_tables(d, "strategies") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for mut f in items {
        out.extend(read_strategy(&mut f, d));
        f.finish(d);
    }
    out
}

fn read_strategy(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<StrategyDraft> {
    let name = f.required_string(d, "name");
    if let Some(n) = &name {
        if let Some(problem) = name_problem(&n.value) {
            d.at(
                &n.span,
                format!("{}: strategy name {:?} {problem}", f.context(), n.value),
            );
        }
        f.set_context(format!("strategy {:?}", n.value));
    }
    let tenant = f
        .string(d, "tenant")
        .unwrap_or_else(|| At::new(crate::model::defaults::TENANT.to_owned(), f.span()));
    let enabled = f.bool(d, "enabled", true);
    let virtual_queue = f.string(d, "virtual-queue");
    if let Some(vq) = &virtual_queue
        && let Some(problem) = name_problem(&vq.value)
    {
        d.at(
            &vq.span,
            format!("{}: virtual-queue {:?} {problem}", f.context(), vq.value),
        );
    }
    let description = f.string(d, "description").map(|a| a.value);
    let steps = read_steps(f, d);
    let priority_raise = read_priority(f, d);
    let (overflow, overflow_queue) = read_overflow(f, d);
    let (on_exhausted, exhausted_queue, exhausted_workbin) = read_final(f, d);
    let script = read_script(f, d);
    if steps.is_empty() && script.is_none() {
        d.at(
            &f.span(),
            format!(
                "{}: give at least one [[strategies.steps]] or a script",
                f.context()
            ),
        );
    }
    check_waits(f, d, &steps, &on_exhausted);
    let name = name?;
    Some(StrategyDraft {
        strategy: Strategy {
            name: name.value.clone(),
            tenant: tenant.value.clone(),
            enabled,
            virtual_queue: virtual_queue.map(|v| v.value),
            steps: steps.into_iter().map(|s| s.value).collect(),
            priority_raise,
            overflow,
            on_exhausted,
            script,
            description,
        },
        name,
        tenant,
        overflow_queue,
        exhausted_queue,
        exhausted_workbin,
    })
}

/// A step without a wait is tried forever: any later step, or a final action, is unreachable.
fn check_waits(f: &Fields<'_, '_>, d: &mut Diagnostics<'_>, steps: &[At<StrategyStep>], last: &FinalAction) {
    for (i, s) in steps.iter().enumerate() {
        let is_last = i + 1 == steps.len();
        if s.value.wait_s.is_none() && !is_last {
            d.at(
                &s.span,
                format!(
                    "{}: step {} has no wait, so the steps after it are never tried",
                    f.context(),
                    i + 1
                ),
            );
        }
        if is_last && s.value.wait_s.is_none() && *last != FinalAction::KeepWaiting {
            d.at(
                &s.span,
                format!(
                    "{}: the last step has no wait, so on-exhausted is never reached",
                    f.context()
                ),
            );
        }
    }
}

fn read_steps(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Vec<At<StrategyStep>> {
    let Some(items) = f.array_of_tables(d, "steps") else {
        return Vec::new();
    };
    let context = f.context().to_owned();
    let mut out = Vec::new();
    for (i, mut s) in items.into_iter().enumerate() {
        s.set_context(format!("{context}: step {}", i + 1));
        let agents = strings(&mut s, d, "agents");
        let groups = strings(&mut s, d, "groups");
        let places = strings(&mut s, d, "places");
        let skills = s.string(d, "skills");
        if let Some(expr) = &skills
            && let Some(problem) = skill_problem(&expr.value)
        {
            d.at(
                &expr.span,
                format!("{}: invalid skills expression: {problem}", s.context()),
            );
        }
        let policy = match s.string(d, "policy") {
            None => Policy::default(),
            Some(p) => Policy::parse(&p.value).unwrap_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|p| p.as_str()).collect();
                d.at(
                    &p.span,
                    format!(
                        "{}: policy {:?} is not one of {}",
                        s.context(),
                        p.value,
                        names.join(", ")
                    ),
                );
                Policy::default()
            }),
        };
        let wait_s = s
            .int_at(d, "wait", 1..=86_400, "none (try this step forever)", "seconds")
            .map(|w| narrow(w.value));
        let span = s.span();
        s.finish(d);
        out.push(At::new(
            StrategyStep {
                agents,
                groups,
                places,
                skills: skills.map(|s| s.value),
                policy,
                wait_s,
            },
            span,
        ));
    }
    out
}

/// Why a skill expression cannot be used, if it cannot.
fn skill_problem(expr: &str) -> Option<String> {
    if expr.trim().is_empty() {
        return Some("it is empty (leave the key out to accept any skills)".to_owned());
    }
    ixn_model::skills::SkillExpr::parse(expr).err()
}

fn read_priority(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<PriorityRaise> {
    let increment = f.int_at(d, "priority-increment", 1..=1_000_000, "none", "");
    let interval = f.int_at(d, "priority-interval", 1..=86_400, "none", "seconds");
    let max = f.take("priority-max").and_then(|v| match v.get_ref() {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .and_then(|n| i64::try_from(n).ok()),
        _ => {
            d.at(
                &v.span(),
                format!("{}: priority-max must be an integer", f.context()),
            );
            None
        }
    });
    match (increment, interval) {
        (Some(inc), Some(int)) => Some(PriorityRaise {
            increment: i64::try_from(inc.value).unwrap_or(1),
            interval_s: narrow(int.value),
            max,
        }),
        (Some(a), None) | (None, Some(a)) => {
            d.at(
                &a.span,
                format!(
                    "{}: give priority-increment and priority-interval together",
                    f.context()
                ),
            );
            None
        }
        (None, None) => None,
    }
}

fn read_overflow(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> (Option<Overflow>, Option<At<String>>) {
    let queue = f.string(d, "overflow-queue");
    let after = f.int_at(d, "overflow-after", 1..=604_800, "none", "seconds");
    match (queue, after) {
        (Some(q), Some(a)) => (
            Some(Overflow {
                queue: q.value.clone(),
                after_s: narrow(a.value),
            }),
            Some(q),
        ),
        (Some(At { span, .. }), None) | (None, Some(At { span, .. })) => {
            d.at(
                &span,
                format!("{}: give overflow-queue and overflow-after together", f.context()),
            );
            (None, None)
        }
        (None, None) => (None, None),
    }
}

type FinalRead = (FinalAction, Option<At<String>>, Option<At<String>>);

fn read_final(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> FinalRead {
    let Some(mut t) = f.table(d, "on-exhausted") else {
        return (FinalAction::KeepWaiting, None, None);
    };
    t.set_context(format!("{}: on-exhausted", f.context()));
    let action = t.required_string(d, "action");
    let result = match action.as_ref().map(|a| a.value.as_str()) {
        None => (FinalAction::KeepWaiting, None, None),
        Some("keep-waiting") => (FinalAction::KeepWaiting, None, None),
        Some("queue") => match t.required_string(d, "queue") {
            Some(q) => (FinalAction::PlaceInQueue(q.value.clone()), Some(q), None),
            None => (FinalAction::KeepWaiting, None, None),
        },
        Some("workbin") => {
            let workbin = t.required_string(d, "workbin");
            let owner = t.string(d, "owner").map(|o| o.value);
            match workbin {
                Some(w) => (
                    FinalAction::PlaceInWorkbin {
                        workbin: w.value.clone(),
                        owner,
                    },
                    None,
                    Some(w),
                ),
                None => (FinalAction::KeepWaiting, None, None),
            }
        }
        Some("stop") => (
            FinalAction::Stop {
                reason: t.string(d, "reason").map(|r| r.value),
            },
            None,
            None,
        ),
        Some(other) => {
            if let Some(a) = &action {
                d.at(
                    &a.span,
                    format!(
                        "{}: action {other:?} is not one of keep-waiting, queue, workbin, stop",
                        t.context()
                    ),
                );
            }
            (FinalAction::KeepWaiting, None, None)
        }
    };
    t.finish(d);
    result
}

fn read_script(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<StrategyScript> {
    let inline = f.string(d, "script");
    let file = f.string(d, "script-file");
    let max_operations = f.int(d, "max-operations", 1000..=100_000_000, 100_000, "");
    let time_limit_ms = narrow(f.int(d, "time-limit", 1..=60_000, 1000, "milliseconds"));
    let code = match (inline, file) {
        (Some(s), None) => ScriptCode::Inline(s.value),
        (None, Some(p)) if !p.value.is_empty() => ScriptCode::File(PathBuf::from(p.value)),
        (None, Some(p)) => {
            d.at(&p.span, format!("{}: script-file must not be empty", f.context()));
            return None;
        }
        (Some(_), Some(p)) => {
            d.at(
                &p.span,
                format!("{}: give script or script-file, not both", f.context()),
            );
            return None;
        }
        (None, None) => return None,
    };
    Some(StrategyScript {
        code,
        max_operations,
        time_limit_ms,
    })
}

/// A list of names, e.g. `agents = ["a1", "a2"]`.
fn strings(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str) -> Vec<String> {
    let Some(v) = f.take(key) else { return Vec::new() };
    let DeValue::Array(items) = v.get_ref() else {
        d.at(
            &v.span(),
            format!("{}: {key} must be an array of strings", f.context()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => out.push(s.to_string()),
            _ => d.at(
                &item.span(),
                format!("{}: {key} must hold non-empty strings", f.context()),
            ),
        }
    }
    out
}

fn narrow(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks the strategies as a whole (unique names per tenant, tenants, queues and workbins that
/// exist) and returns them; a file without strategies gets the built-in `default` per tenant.
pub(crate) fn validate(
    drafts: Vec<StrategyDraft>,
    known: &KnownNames,
    d: &mut Diagnostics<'_>,
) -> Vec<Strategy> {
    if drafts.is_empty() {
        return known
            .tenants
            .iter()
            .map(|t| Strategy::builtin_default(t))
            .collect();
    }
    let mut seen: HashMap<(&str, &str), Range<usize>> = HashMap::new();
    for s in &drafts {
        let key = (s.tenant.value.as_str(), s.name.value.as_str());
        match seen.get(&key) {
            Some(first) => {
                let (line, _) = d.position(first.start);
                d.at(
                    &s.name.span,
                    format!(
                        "strategy {:?} is defined twice in tenant {:?} (first at line {line})",
                        s.name.value, s.tenant.value
                    ),
                );
            }
            None => {
                seen.insert(key, s.name.span.clone());
            }
        }
    }
    for s in &drafts {
        let ctx = format!("strategy {:?}", s.name.value);
        let tenant = s.tenant.value.as_str();
        if !known.tenants.iter().any(|t| t == tenant) {
            d.at(
                &s.tenant.span,
                format!(
                    "{ctx}: tenant {tenant:?} does not exist (known tenants: {})",
                    known.tenants.join(", ")
                ),
            );
            continue;
        }
        for q in [&s.overflow_queue, &s.exhausted_queue].into_iter().flatten() {
            check_exists(d, &ctx, "queue", &known.queues, tenant, q);
        }
        if let Some(w) = &s.exhausted_workbin {
            check_exists(d, &ctx, "workbin", &known.workbins, tenant, w);
        }
    }
    drafts.into_iter().map(|s| s.strategy).collect()
}

fn check_exists(
    d: &mut Diagnostics<'_>,
    ctx: &str,
    what: &str,
    names: &[(String, String)],
    tenant: &str,
    name: &At<String>,
) {
    if names.iter().any(|(t, n)| t == tenant && *n == name.value) {
        return;
    }
    let mut list: Vec<&str> = names
        .iter()
        .filter(|(t, _)| t == tenant)
        .map(|(_, n)| n.as_str())
        .collect();
    list.sort_unstable();
    let known = if list.is_empty() {
        format!("there are no {what}s")
    } else {
        format!("known {what}s: {}", list.join(", "))
    };
    d.at(
        &name.span,
        format!("{ctx}: {what} {:?} does not exist ({known})", name.value),
    );
}

#[cfg(test)]
mod tests;
