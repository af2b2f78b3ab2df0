//! Agents and capacity: `[[agents]]`, `[[agent-groups]]`, `[[places]]` and `[[capacity-rules]]`.
//!
//! Agents need not be listed to log in: an unlisted agent has no groups, no skills and the
//! capacity rule of its place or tenant. Listing one gives it groups, skill levels and a rule.
//! A capacity rule is a list of alternatives, each a maximum per media type (`*` = any media not
//! named); an agent's load fits the rule when it fits at least one alternative, so "one e-mail,
//! or up to three chats" is `alternatives = [{ email = 1 }, { chat = 3 }]` and "a voice call
//! blocks everything" is `alternatives = [{ voice = 1 }, { chat = 3, email = 1 }]`.

use std::collections::HashSet;

use toml::de::DeValue;

use crate::error::Diagnostics;
use crate::reader::{At, Fields};
use crate::sections::name_problem;

/// An agent listed in the configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentDef {
    pub id: String,
    pub tenant: String,
    pub groups: Vec<String>,
    /// Skill name → level (0–100).
    pub skills: Vec<(String, u32)>,
    pub capacity_rule: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentGroup {
    pub name: String,
    pub tenant: String,
    pub capacity_rule: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlaceDef {
    pub name: String,
    pub tenant: String,
    pub capacity_rule: Option<String>,
}

/// Media type name of the wildcard entry of a capacity alternative.
pub const ANY_MEDIA: &str = "*";

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CapacityRule {
    pub name: String,
    pub tenant: String,
    /// Each alternative: media type (or `*`) → maximum at once.
    pub alternatives: Vec<Vec<(String, u32)>>,
}

/// An `[[agents]]` entry as read: id, tenant, groups, skills, capacity rule.
type AgentDraft = (
    At<String>,
    At<String>,
    Vec<At<String>>,
    Vec<(String, u32)>,
    Option<At<String>>,
);
/// A group or place as read: name, tenant, capacity rule.
type NamedDraft = (At<String>, At<String>, Option<At<String>>);
/// A capacity rule as read: name, tenant, alternatives.
type RuleDraft = (At<String>, At<String>, Vec<Vec<At<(String, u32)>>>);

/// The four agent tables as read, before cross-checks.
#[derive(Debug, Default)]
pub(crate) struct AgentsDraft {
    agents: Vec<AgentDraft>,
    groups: Vec<NamedDraft>,
    places: Vec<NamedDraft>,
    rules: Vec<RuleDraft>,
}

impl AgentsDraft {
    pub(crate) fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.groups.is_empty() && self.places.is_empty() && self.rules.is_empty()
    }
}

/// The validated agent tables.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct AgentsConfig {
    pub agents: Vec<AgentDef>,
    pub groups: Vec<AgentGroup>,
    pub places: Vec<PlaceDef>,
    pub rules: Vec<CapacityRule>,
}

fn name(
    f: &mut Fields<'_, '_>,
    d: &mut Diagnostics<'_>,
    key: &'static str,
    what: &str,
) -> Option<At<String>> {
    let v = f.required_string(d, key)?;
    if let Some(problem) = name_problem(&v.value) {
        d.at(
            &v.span,
            format!("{}: {what} name {:?} {problem}", f.context(), v.value),
        );
        return None;
    }
    f.set_context(format!("{what} {:?}", v.value));
    Some(v)
}

fn tenant(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> At<String> {
    f.string(d, "tenant")
        .unwrap_or_else(|| At::new(crate::model::defaults::TENANT.to_owned(), f.span()))
}

fn strings(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str) -> Vec<At<String>> {
    let Some(v) = f.take(key) else { return Vec::new() };
    let DeValue::Array(items) = v.get_ref() else {
        d.at(
            &v.span(),
            format!("{}: {key} must be an array of strings", f.context()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => out.push(At::new(s.to_string(), item.span())),
            _ => d.at(
                &item.span(),
                format!("{}: {key} must hold strings only", f.context()),
            ),
        }
    }
    out
}

/// A table of `name = integer` within `range`.
fn levels(
    f: &Fields<'_, '_>,
    d: &mut Diagnostics<'_>,
    key: &str,
    v: &toml::Spanned<DeValue<'_>>,
    max: u64,
) -> Vec<At<(String, u32)>> {
    let DeValue::Table(t) = v.get_ref() else {
        d.at(
            &v.span(),
            format!("{}: {key} must be a table of name = integer", f.context()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, val) in t.iter() {
        let n = match val.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match n
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| u64::from(*n) <= max)
        {
            Some(n) => out.push(At::new((k.get_ref().to_string(), n), val.span())),
            None => d.at(
                &val.span(),
                format!(
                    "{}: {key}.{} must be an integer 0..{max}",
                    f.context(),
                    k.get_ref()
                ),
            ),
        }
    }
    out
}

/// Reads the four tables from the document root.
pub(crate) fn read(root: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> AgentsDraft {
    let mut draft = AgentsDraft::default();
    for mut f in root.array_of_tables(d, "agents").unwrap_or_default() {
        let id = name(&mut f, d, "id", "agent");
        let tenant = tenant(&mut f, d);
        let groups = strings(&mut f, d, "groups");
        let skills = match f.take("skills") {
            Some(v) => levels(&f, d, "skills", v, 100)
                .into_iter()
                .map(|a| a.value)
                .collect(),
            None => Vec::new(),
        };
        let rule = f.string(d, "capacity-rule");
        f.finish(d);
        if let Some(id) = id {
            draft.agents.push((id, tenant, groups, skills, rule));
        }
    }
    for (table, what) in [("agent-groups", "agent group"), ("places", "place")] {
        for mut f in root.array_of_tables(d, table).unwrap_or_default() {
            let n = name(&mut f, d, "name", what);
            let tenant = tenant(&mut f, d);
            let rule = f.string(d, "capacity-rule");
            let _ = f.string(d, "description");
            f.finish(d);
            if let Some(n) = n {
                let item = (n, tenant, rule);
                if table == "places" {
                    draft.places.push(item);
                } else {
                    draft.groups.push(item);
                }
            }
        }
    }
    for mut f in root.array_of_tables(d, "capacity-rules").unwrap_or_default() {
        let n = name(&mut f, d, "name", "capacity rule");
        let tenant = tenant(&mut f, d);
        let _ = f.string(d, "description");
        let mut alternatives = Vec::new();
        let media = f.take("media");
        let alts = f.take("alternatives");
        match (media, alts) {
            (Some(m), None) => alternatives.push(levels(&f, d, "media", m, 10_000)),
            (None, Some(a)) => match a.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for item in items.iter() {
                        alternatives.push(levels(&f, d, "alternatives[]", item, 10_000));
                    }
                }
                _ => d.at(
                    &a.span(),
                    format!(
                        "{}: alternatives must be a non-empty array of tables",
                        f.context()
                    ),
                ),
            },
            (Some(m), Some(_)) => d.at(
                &m.span(),
                format!("{}: give either media or alternatives, not both", f.context()),
            ),
            (None, None) => d.at(
                &f.span(),
                format!(
                    "{}: missing media (e.g. media = {{ chat = 3 }}) or alternatives",
                    f.context()
                ),
            ),
        }
        f.finish(d);
        if let Some(n) = n {
            draft.rules.push((n, tenant, alternatives));
        }
    }
    draft
}

/// Cross-checks against tenants and media types; every problem is reported.
pub(crate) fn validate(
    draft: AgentsDraft,
    tenants: &HashSet<String>,
    media_types: &HashSet<String>,
    d: &mut Diagnostics<'_>,
) -> AgentsConfig {
    let check_tenant = |d: &mut Diagnostics<'_>, t: &At<String>, what: &str| {
        if !tenants.contains(&t.value) {
            d.at(&t.span, format!("{what}: unknown tenant {:?}", t.value));
        }
    };
    let mut seen = HashSet::new();
    let mut dup = |d: &mut Diagnostics<'_>, kind: &str, tenant: &str, n: &At<String>| {
        if !seen.insert((kind.to_owned(), tenant.to_owned(), n.value.clone())) {
            d.at(
                &n.span,
                format!("duplicate {kind} {:?} in tenant {tenant:?}", n.value),
            );
        }
    };
    let mut out = AgentsConfig::default();
    for (n, t, alternatives) in draft.rules {
        check_tenant(d, &t, &format!("capacity rule {:?}", n.value));
        dup(d, "capacity rule", &t.value, &n);
        for alt in &alternatives {
            for m in alt {
                if m.value.0 != ANY_MEDIA && !media_types.contains(&m.value.0) {
                    d.at(
                        &m.span,
                        format!(
                            "capacity rule {:?}: unknown media type {:?} (use \"*\" for any other media)",
                            n.value, m.value.0
                        ),
                    );
                }
            }
        }
        out.rules.push(CapacityRule {
            name: n.value,
            tenant: t.value,
            alternatives: alternatives
                .into_iter()
                .map(|a| a.into_iter().map(|m| m.value).collect())
                .collect(),
        });
    }
    let rule_exists = |tenant: &str, rule: &str, out: &AgentsConfig| {
        out.rules.iter().any(|r| r.tenant == tenant && r.name == rule)
    };
    let check_rule =
        |d: &mut Diagnostics<'_>, tenant: &str, rule: &Option<At<String>>, what: &str, out: &AgentsConfig| {
            if let Some(r) = rule
                && !rule_exists(tenant, &r.value, out)
            {
                d.at(&r.span, format!("{what}: unknown capacity rule {:?}", r.value));
            }
        };
    for (n, t, rule) in draft.groups {
        check_tenant(d, &t, &format!("agent group {:?}", n.value));
        dup(d, "agent group", &t.value, &n);
        check_rule(d, &t.value, &rule, &format!("agent group {:?}", n.value), &out);
        out.groups.push(AgentGroup {
            name: n.value,
            tenant: t.value,
            capacity_rule: rule.map(|r| r.value),
        });
    }
    for (n, t, rule) in draft.places {
        check_tenant(d, &t, &format!("place {:?}", n.value));
        dup(d, "place", &t.value, &n);
        check_rule(d, &t.value, &rule, &format!("place {:?}", n.value), &out);
        out.places.push(PlaceDef {
            name: n.value,
            tenant: t.value,
            capacity_rule: rule.map(|r| r.value),
        });
    }
    for (id, t, groups, skills, rule) in draft.agents {
        let what = format!("agent {:?}", id.value);
        check_tenant(d, &t, &what);
        dup(d, "agent", &t.value, &id);
        check_rule(d, &t.value, &rule, &what, &out);
        for g in &groups {
            if !out
                .groups
                .iter()
                .any(|x| x.tenant == t.value && x.name == g.value)
            {
                d.at(&g.span, format!("{what}: unknown agent group {:?}", g.value));
            }
        }
        out.agents.push(AgentDef {
            id: id.value,
            tenant: t.value,
            groups: groups.into_iter().map(|g| g.value).collect(),
            skills,
            capacity_rule: rule.map(|r| r.value),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::parse;

    const BASE: &str = r#"
[[media-types]]
name = "chat"

[[media-types]]
name = "email"

[[queues]]
name = "inbound"
"#;

    #[test]
    fn agent_tables_parse() {
        let text = format!(
            "{BASE}{}",
            r#"
[[capacity-rules]]
name = "default"
alternatives = [{ email = 1 }, { chat = 3 }]

[[capacity-rules]]
name = "wide"
media = { chat = 5, "*" = 1 }

[[agent-groups]]
name = "sales"
capacity-rule = "wide"

[[places]]
name = "p1"

[[agents]]
id = "ann"
groups = ["sales"]
skills = { english = 7, sales = 3 }
"#
        );
        let c = parse(&text, "a.toml").unwrap();
        let p = &c.process;
        assert_eq!(p.capacity_rules.len(), 2);
        assert_eq!(
            p.capacity_rules[0].alternatives,
            vec![vec![("email".to_owned(), 1)], vec![("chat".to_owned(), 3)]]
        );
        assert_eq!(p.agent_groups[0].capacity_rule.as_deref(), Some("wide"));
        assert_eq!(p.places[0].name, "p1");
        assert_eq!(
            p.agents[0].skills,
            vec![("english".to_owned(), 7), ("sales".to_owned(), 3)]
        );
        assert_eq!(p.agents[0].groups, ["sales"]);
    }

    #[test]
    fn agent_table_errors_are_all_reported() {
        let text = format!(
            "{BASE}{}",
            r#"
[[capacity-rules]]
name = "r"
media = { fax = 1 }

[[capacity-rules]]
name = "both"
media = { chat = 1 }
alternatives = [{ chat = 1 }]

[[capacity-rules]]
name = "none"

[[agents]]
id = "ann"
tenant = "nope"
groups = ["ghosts"]
skills = { english = 700 }
capacity-rule = "missing"
"#
        );
        let err = parse(&text, "a.toml").unwrap_err().to_string();
        for want in [
            "unknown media type \"fax\"",
            "either media or alternatives",
            "missing media",
            "unknown tenant \"nope\"",
            "unknown agent group \"ghosts\"",
            "english must be an integer 0..100",
            "unknown capacity rule \"missing\"",
        ] {
            assert!(err.contains(want), "{want:?} missing from:\n{err}");
        }
    }
}
