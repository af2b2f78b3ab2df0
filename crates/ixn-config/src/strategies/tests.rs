//! Reading and checking `[[strategies]]`, through the whole-file parser.

use super::*;

#[test]
fn policies_round_trip() {
    for p in Policy::ALL {
        assert_eq!(Policy::parse(p.as_str()), Some(p));
    }
    assert_eq!(Policy::parse("fastest"), None);
}

#[test]
fn builtin_default_is_one_open_step() {
    let s = Strategy::builtin_default("acme");
    assert_eq!(s.name, DEFAULT_STRATEGY);
    assert_eq!(s.tenant, "acme");
    assert_eq!(s.steps, vec![StrategyStep::default()]);
    assert_eq!(s.steps[0].policy, Policy::LongestIdle);
    assert_eq!(s.virtual_queue(), "default");
}

const PROCESS: &str = r#"
[[tenants]]
name = "default"

[[tenants]]
name = "acme"

[[queues]]
name = "inbound"

[[queues]]
name = "escalations"

[[workbins]]
name = "parked"
type = "agent-group"
"#;

fn parse(extra: &str) -> Result<crate::Config, String> {
    crate::parse(&format!("{PROCESS}{extra}"), "t.toml").map_err(|e| e.to_string())
}

#[test]
fn a_full_strategy() {
    let c = parse(
        r#"
[[strategies]]
name = "sales"
virtual-queue = "VQ_Sales"
priority-increment = 2
priority-interval = 30
priority-max = 50
overflow-queue = "escalations"
overflow-after = 600
on-exhausted = { action = "workbin", workbin = "parked", owner = "team-a" }

[[strategies.steps]]
agents = ["a1"]
policy = "best-skill"
skills = "sales >= 5"
wait = 20

[[strategies.steps]]
groups = ["sales"]
policy = "most-free-capacity"
wait = 60
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = c.process.strategy("default", "sales").expect("strategy");
    assert_eq!(s.virtual_queue(), "VQ_Sales");
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].agents, vec!["a1".to_owned()]);
    assert_eq!(s.steps[0].policy, Policy::BestSkill);
    assert_eq!(s.steps[0].skills.as_deref(), Some("sales >= 5"));
    assert_eq!(s.steps[1].wait_s, Some(60));
    assert_eq!(
        s.priority_raise,
        Some(PriorityRaise {
            increment: 2,
            interval_s: 30,
            max: Some(50)
        })
    );
    assert_eq!(
        s.overflow,
        Some(Overflow {
            queue: "escalations".into(),
            after_s: 600
        })
    );
    assert_eq!(
        s.on_exhausted,
        FinalAction::PlaceInWorkbin {
            workbin: "parked".into(),
            owner: Some("team-a".into())
        }
    );
    // Declaring a strategy replaces the built-in ones.
    assert!(c.process.strategy("acme", DEFAULT_STRATEGY).is_none());
}

#[test]
fn without_strategies_every_tenant_gets_the_default() {
    let c = parse("").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<(&str, &str)> = c
        .process
        .strategies
        .iter()
        .map(|s| (s.tenant.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(names, vec![("default", "default"), ("acme", "default")]);
    let builtin = crate::Config::builtin_default();
    assert_eq!(
        builtin.process.strategy("default", "default"),
        Some(&Strategy::builtin_default("default"))
    );
}

#[test]
fn strategies_alone_use_the_builtin_process() {
    let text = "[[strategies]]\nname = \"x\"\noverflow-queue = \"inbound\"\noverflow-after = 5\n\n\
                    [[strategies.steps]]\n";
    let c = crate::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.process.queue("default", "orchestration_system").is_some());
    assert_eq!(c.process.strategies.len(), 1);
}

#[test]
fn scripts() {
    let c = parse(
        "[[strategies]]\nname = \"s\"\nscript = \"route(#{})\"\nmax-operations = 5000\ntime-limit = 50\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = &c.process.strategies[0];
    assert!(s.steps.is_empty());
    assert_eq!(
        s.script,
        Some(StrategyScript {
            code: ScriptCode::Inline("route(#{})".into()),
            max_operations: 5000,
            time_limit_ms: 50
        })
    );
}

#[test]
fn errors_point_at_the_value() {
    let cases: &[(&str, &str)] = &[
        (
            "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\npolicy = \"fastest\"\n",
            "step 1: policy \"fastest\" is not one of longest-idle",
        ),
        (
            "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n[[strategies.steps]]\n",
            "step 1 has no wait",
        ),
        (
            "[[strategies]]\nname = \"s\"\non-exhausted = { action = \"stop\" }\n[[strategies.steps]]\n",
            "the last step has no wait",
        ),
        (
            "[[strategies]]\nname = \"s\"\noverflow-queue = \"nope\"\noverflow-after = 5\n[[strategies.steps]]\n",
            "queue \"nope\" does not exist (known queues: escalations, inbound)",
        ),
        (
            "[[strategies]]\nname = \"s\"\noverflow-queue = \"inbound\"\n[[strategies.steps]]\n",
            "give overflow-queue and overflow-after together",
        ),
        (
            "[[strategies]]\nname = \"s\"\npriority-increment = 1\n[[strategies.steps]]\n",
            "give priority-increment and priority-interval together",
        ),
        (
            "[[strategies]]\nname = \"s\"\n",
            "give at least one [[strategies.steps]] or a script",
        ),
        (
            "[[strategies]]\nname = \"s\"\nscript = \"1\"\nscript-file = \"a.rhai\"\n",
            "give script or script-file, not both",
        ),
        (
            "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\nskills = \" \"\n",
            "invalid skills expression",
        ),
        (
            "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\nskills = \"english >= & sales\"\n",
            "step 1: invalid skills expression",
        ),
        (
            "[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n[[strategies]]\nname = \"s\"\n[[strategies.steps]]\n",
            "strategy \"s\" is defined twice in tenant \"default\"",
        ),
        (
            "[[strategies]]\nname = \"s\"\ntenant = \"zed\"\n[[strategies.steps]]\n",
            "tenant \"zed\" does not exist",
        ),
        (
            "[[strategies]]\nname = \"s\"\non-exhausted = { action = \"workbin\", workbin = \"w\" }\n\
                 [[strategies.steps]]\nwait = 5\n",
            "workbin \"w\" does not exist (known workbins: parked)",
        ),
    ];
    for (text, needle) in cases {
        let err = parse(text).err().unwrap_or_default();
        assert!(err.contains(needle), "{text}\n=> {err}");
        assert!(err.starts_with("t.toml:"), "{err}");
    }
}
