//! A strategy made ready to run: its steps as wire targets with their waits, the virtual-queue
//! reporting keys it writes, and where a returning interaction resumes. Pure: no I/O, no clock.

use std::sync::Arc;
use std::time::Duration;

use ixn_config::{FinalAction, Policy, Strategy, StrategyStep};
use ixn_model::{UserData, Value};
use ixn_protocol::{RouteTarget, SelectionPolicy};

use crate::script::CompiledScript;

/// One step ready to send: the target (without exclusions) and how long to try it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlanStep {
    pub target: RouteTarget,
    /// `None`: tried until something else happens (overflow, an agent, a revoke).
    pub wait: Option<Duration>,
}

impl PlanStep {
    /// A step from a script's `route(#{...})` or a configured step.
    pub fn from_config(step: &StrategyStep) -> PlanStep {
        PlanStep {
            target: RouteTarget {
                agents: step.agents.clone(),
                groups: step.groups.clone(),
                places: step.places.clone(),
                skills: step.skills.clone(),
                policy: policy(step.policy),
                exclude: Vec::new(),
            },
            wait: step.wait_s.map(|s| Duration::from_secs(u64::from(s))),
        }
    }

    /// `RTargetTypeSelected`: what kind of target the step names.
    pub fn target_type(&self) -> &'static str {
        let t = &self.target;
        match () {
            _ if !t.agents.is_empty() => "Agent",
            _ if !t.groups.is_empty() => "AgentGroup",
            _ if !t.places.is_empty() => "Place",
            _ if t.skills.is_some() => "SkillExpression",
            _ => "AnyAgent",
        }
    }

    /// `RTargetObjectSelected` / `RTargetRequested`: the target as one readable string.
    pub fn target_text(&self) -> String {
        let t = &self.target;
        let mut parts: Vec<String> = Vec::new();
        parts.extend(t.agents.iter().map(|a| format!("agent:{a}")));
        parts.extend(t.groups.iter().map(|g| format!("group:{g}")));
        parts.extend(t.places.iter().map(|p| format!("place:{p}")));
        if let Some(s) = &t.skills {
            parts.push(format!("skills:{s}"));
        }
        if parts.is_empty() {
            "any".to_owned()
        } else {
            parts.join(",")
        }
    }
}

pub fn policy(p: Policy) -> SelectionPolicy {
    match p {
        Policy::LongestIdle => SelectionPolicy::LongestIdle,
        Policy::MostFreeCapacity => SelectionPolicy::MostFreeCapacity,
        Policy::RoundRobin => SelectionPolicy::RoundRobin,
        Policy::BestSkill => SelectionPolicy::BestSkill,
    }
}

/// A strategy ready to run on the router.
#[derive(Debug)]
pub struct Plan {
    pub strategy: Strategy,
    pub steps: Arc<Vec<PlanStep>>,
    pub script: Option<Arc<CompiledScript>>,
}

impl Plan {
    pub fn new(strategy: Strategy, script: Option<Arc<CompiledScript>>) -> Plan {
        let mut steps: Vec<PlanStep> = strategy.steps.iter().map(PlanStep::from_config).collect();
        if steps.is_empty() {
            // A script strategy without steps falls back to any agent when its script fails.
            steps.push(PlanStep::from_config(&StrategyStep::default()));
        }
        Plan {
            strategy,
            steps: Arc::new(steps),
            script,
        }
    }

    pub fn name(&self) -> &str {
        &self.strategy.name
    }

    pub fn on_exhausted(&self) -> &FinalAction {
        &self.strategy.on_exhausted
    }

    /// Virtual-queue reporting keys written with a route request.
    pub fn reporting_keys(&self, step: &PlanStep) -> UserData {
        let s = &self.strategy;
        let mut keys = UserData::new();
        let text = step.target_text();
        keys.set("RStrategyName", Value::Str(s.name.clone()));
        keys.set("RVQID", Value::Str(s.virtual_queue().to_owned()));
        keys.set("RTenant", Value::Str(s.tenant.clone()));
        keys.set("RTargetRequested", Value::Str(text.clone()));
        keys.set("RTargetTypeSelected", Value::Str(step.target_type().to_owned()));
        keys.set("RTargetObjectSelected", Value::Str(text));
        if let Some(skills) = &step.target.skills {
            keys.set("RRequestedSkillCombination", Value::Str(skills.clone()));
        }
        for g in &step.target.groups {
            keys.set(format!("PegAG{g}"), Value::Int(1));
        }
        if let [agent] = step.target.agents.as_slice()
            && step.target.groups.is_empty()
            && step.target.places.is_empty()
        {
            keys.set("RTargetAgentSelected", Value::Str(agent.clone()));
        }
        keys
    }
}

/// Where an interaction that has been in the strategy for `elapsed` stands: the step it is in
/// and how far into that step it is. An interaction coming back (rejected, timed out) resumes
/// where its time puts it instead of starting over.
pub fn resume_point(steps: &[PlanStep], elapsed: Duration) -> (usize, Duration) {
    let mut into = elapsed;
    for (i, s) in steps.iter().enumerate() {
        match s.wait {
            Some(w) if into >= w && i + 1 < steps.len() => into -= w,
            _ => return (i, into),
        }
    }
    (steps.len().saturating_sub(1), into)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(wait: Option<u64>) -> PlanStep {
        PlanStep {
            target: RouteTarget::default(),
            wait: wait.map(Duration::from_secs),
        }
    }

    #[test]
    fn resume_points() {
        let steps = [step(Some(10)), step(Some(20)), step(Some(5))];
        let cases = [
            (0, (0, 0)),
            (9, (0, 9)),
            (10, (1, 0)),
            (29, (1, 19)),
            (30, (2, 0)),
            (100, (2, 70)),
        ];
        for (elapsed, (i, into)) in cases {
            assert_eq!(
                resume_point(&steps, Duration::from_secs(elapsed)),
                (i, Duration::from_secs(into)),
                "{elapsed}"
            );
        }
        assert_eq!(
            resume_point(&[step(None)], Duration::from_secs(50)),
            (0, Duration::from_secs(50))
        );
    }

    #[test]
    fn reporting_keys_name_the_strategy_and_target() {
        let mut strategy = Strategy::builtin_default("acme");
        strategy.virtual_queue = Some("VQ1".into());
        strategy.steps[0].groups = vec!["sales".into()];
        strategy.steps[0].skills = Some("english >= 3".into());
        let plan = Plan::new(strategy, None);
        let keys = plan.reporting_keys(&plan.steps[0]);
        assert_eq!(keys.get_str("RStrategyName"), Some("default"));
        assert_eq!(keys.get_str("RVQID"), Some("VQ1"));
        assert_eq!(keys.get_str("RTenant"), Some("acme"));
        assert_eq!(keys.get_str("RTargetTypeSelected"), Some("AgentGroup"));
        assert_eq!(
            keys.get_str("RTargetObjectSelected"),
            Some("group:sales,skills:english >= 3")
        );
        assert_eq!(keys.get_str("RRequestedSkillCombination"), Some("english >= 3"));
        assert_eq!(keys.get_int("PegAGsales"), Some(1));
        assert!(!keys.contains_key("RTargetAgentSelected"));
    }
}
