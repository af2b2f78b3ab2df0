//! Whole-model checks over the drafts (unique names, references, conditions, custom property
//! names, API keys) and assembly of the validated [`BusinessProcess`].
//!
//! Every check runs even after others failed, so one pass reports everything; the process is
//! only assembled when the file has no error at all.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use ixn_model::condition::{Condition, ConditionError, OrderBy};
use ixn_model::{CustomProperty, SysProp};

use crate::error::Diagnostics;
use crate::model::{
    Application, BusinessProcess, MediaType, Queue, Submitter, Tenant, View, Workbin, defaults,
};
use crate::reader::At;
use crate::sections::{CustomPropertyDraft, Draft, TenantDraft};

/// Longest custom property name: its SQL column `cp_<name>` must fit PostgreSQL's 63 bytes.
const MAX_CUSTOM_NAME_LEN: usize = 48;

/// Words of the condition language that cannot name a custom property.
const RESERVED_WORDS: &[&str] = &[
    "and", "or", "not", "in", "like", "is", "between", "null", "true", "false", "asc", "desc", "now",
];

/// Checks the drafts as a whole and builds the process; `None` when anything was reported
/// (here or earlier).
pub(crate) fn process(mut draft: Draft, d: &mut Diagnostics<'_>) -> Option<BusinessProcess> {
    if draft.tenants.is_empty() {
        // A file that declares no tenant works in the one default tenant.
        draft.tenants.push(TenantDraft {
            name: At::new(defaults::TENANT.to_owned(), 0..0),
            description: None,
        });
    }
    check_unique(d, "tenant", draft.tenants.iter().map(|t| ("", &t.name)));
    check_unique(d, "media type", draft.media_types.iter().map(|m| ("", &m.name)));
    check_unique(
        d,
        "queue",
        draft.queues.iter().map(|q| (q.tenant.value.as_str(), &q.name)),
    );
    check_unique(
        d,
        "view",
        draft.views.iter().map(|v| (v.tenant.value.as_str(), &v.name)),
    );
    check_unique(
        d,
        "workbin",
        draft.workbins.iter().map(|w| (w.tenant.value.as_str(), &w.name)),
    );
    check_unique(
        d,
        "submitter",
        draft
            .submitters
            .iter()
            .map(|s| (s.tenant.value.as_str(), &s.name)),
    );
    check_unique(d, "application", draft.applications.iter().map(|a| ("", &a.name)));

    check_references(&draft, d);
    let agents = {
        let tenants = draft.tenants.iter().map(|t| t.name.value.clone()).collect();
        let media = draft.media_types.iter().map(|m| m.name.value.clone()).collect();
        crate::agents::validate(std::mem::take(&mut draft.agents), &tenants, &media, d)
    };
    let custom = custom_properties(&draft.custom_properties, d);
    check_api_keys(&draft, d);
    let views = views(&draft, &custom, d);

    if d.has_errors() {
        return None;
    }
    Some(BusinessProcess {
        tenants: draft
            .tenants
            .into_iter()
            .map(|t| Tenant {
                name: t.name.value,
                description: t.description,
            })
            .collect(),
        media_types: draft
            .media_types
            .into_iter()
            .map(|m| MediaType {
                name: m.name.value,
                handling_timeout_min: m.handling_timeout_min,
                description: m.description,
            })
            .collect(),
        queues: draft
            .queues
            .into_iter()
            .map(|q| Queue {
                name: q.name.value,
                tenant: q.tenant.value,
                description: q.description,
            })
            .collect(),
        views,
        workbins: draft
            .workbins
            .into_iter()
            .map(|w| Workbin {
                name: w.name.value,
                tenant: w.tenant.value,
                owner_type: w.owner_type,
                description: w.description,
            })
            .collect(),
        submitters: draft
            .submitters
            .into_iter()
            .map(|s| Submitter {
                name: s.name.value,
                tenant: s.tenant.value,
                view: s.view.value,
                strategy: s.strategy.value,
                max_in_flight: s.max_in_flight,
                enabled: s.enabled,
            })
            .collect(),
        custom_properties: custom,
        applications: draft
            .applications
            .into_iter()
            .filter_map(|a| {
                let key = a.key?;
                Some(Application::with_key_digest(
                    a.name.value,
                    a.kind,
                    a.tenant.value,
                    key.value,
                ))
            })
            .collect(),
        agents: agents.agents,
        agent_groups: agents.groups,
        places: agents.places,
        capacity_rules: agents.rules,
        // Filled by the caller: strategies are checked against the process actually used.
        strategies: Vec::new(),
    })
}

/// Reports the second and later definitions of a name within its scope (a tenant, or `""` for
/// global objects).
fn check_unique<'a>(
    d: &mut Diagnostics<'_>,
    what: &str,
    items: impl Iterator<Item = (&'a str, &'a At<String>)>,
) {
    let mut seen: HashMap<(&str, &str), Range<usize>> = HashMap::new();
    for (scope, name) in items {
        match seen.get(&(scope, name.value.as_str())) {
            Some(first) => {
                let (line, _) = d.position(first.start);
                let scope = if scope.is_empty() {
                    String::new()
                } else {
                    format!(" in tenant {scope:?}")
                };
                d.at(
                    &name.span,
                    format!(
                        "{what} {:?} is defined twice{scope} (first at line {line})",
                        name.value
                    ),
                );
            }
            None => {
                seen.insert((scope, name.value.as_str()), name.span.clone());
            }
        }
    }
}

/// `known queues: a, b` for an error message, listing at most a screenful.
fn known_list<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> String {
    const MAX: usize = 12;
    let names: BTreeSet<&str> = names.collect();
    if names.is_empty() {
        return format!("there are no {what}");
    }
    let mut list: Vec<&str> = names.iter().copied().take(MAX).collect();
    let more = names.len().saturating_sub(MAX);
    if more > 0 {
        list.push("…");
    }
    format!("known {what}: {}", list.join(", "))
}

fn check_references(draft: &Draft, d: &mut Diagnostics<'_>) {
    let tenants: Vec<&str> = draft.tenants.iter().map(|t| t.name.value.as_str()).collect();
    let mut check_tenant = |what: String, tenant: &At<String>| {
        if !tenants.contains(&tenant.value.as_str()) {
            let known = known_list("tenants", tenants.iter().copied());
            d.at(
                &tenant.span,
                format!("{what}: tenant {:?} does not exist ({known})", tenant.value),
            );
        }
    };
    for q in &draft.queues {
        check_tenant(format!("queue {:?}", q.name.value), &q.tenant);
    }
    for v in &draft.views {
        check_tenant(format!("view {:?}", v.name.value), &v.tenant);
    }
    for w in &draft.workbins {
        check_tenant(format!("workbin {:?}", w.name.value), &w.tenant);
    }
    for s in &draft.submitters {
        check_tenant(format!("submitter {:?}", s.name.value), &s.tenant);
    }
    for a in &draft.applications {
        check_tenant(format!("application {:?}", a.name.value), &a.tenant);
    }

    for v in &draft.views {
        let tenant = v.tenant.value.as_str();
        let exists = draft
            .queues
            .iter()
            .any(|q| q.tenant.value == tenant && q.name.value == v.queue.value);
        if !exists {
            let known = known_list(
                "queues",
                draft
                    .queues
                    .iter()
                    .filter(|q| q.tenant.value == tenant)
                    .map(|q| q.name.value.as_str()),
            );
            d.at(
                &v.queue.span,
                format!(
                    "view {:?}: queue {:?} does not exist ({known})",
                    v.name.value, v.queue.value
                ),
            );
        }
    }
    for s in &draft.submitters {
        let tenant = s.tenant.value.as_str();
        let exists = draft
            .views
            .iter()
            .any(|v| v.tenant.value == tenant && v.name.value == s.view.value);
        if !exists {
            let known = known_list(
                "views",
                draft
                    .views
                    .iter()
                    .filter(|v| v.tenant.value == tenant)
                    .map(|v| v.name.value.as_str()),
            );
            d.at(
                &s.view.span,
                format!(
                    "submitter {:?}: view {:?} does not exist ({known})",
                    s.name.value, s.view.value
                ),
            );
        }
    }
}

/// Why `name` cannot name a custom property, if it cannot.
fn custom_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("is not an identifier (a letter, then letters, digits or '_')".to_owned());
    }
    if name.len() > MAX_CUSTOM_NAME_LEN {
        return Some(format!("is longer than {MAX_CUSTOM_NAME_LEN} characters"));
    }
    if let Some(p) = SysProp::lookup(name) {
        return Some(format!("clashes with the system property {}", p.column()));
    }
    if RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(name)) {
        return Some("is a reserved word of the condition language".to_owned());
    }
    None
}

/// Checks custom properties and returns them (all of them, so conditions using a faulty one
/// report only the property's own error, not a second one).
fn custom_properties(drafts: &[CustomPropertyDraft], d: &mut Diagnostics<'_>) -> Vec<CustomProperty> {
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut keys: HashMap<&str, &str> = HashMap::new();
    for p in drafts {
        let ctx = format!("custom property {:?}", p.name.value);
        if let Some(problem) = custom_name_problem(&p.name.value) {
            d.at(&p.name.span, format!("{ctx}: name {problem}"));
        }
        // Case-insensitive: conditions and SQL column names ignore case.
        match names.get(&p.name.value.to_ascii_lowercase()) {
            Some(first) => {
                let (line, _) = d.position(first.start);
                d.at(
                    &p.name.span,
                    format!("{ctx} is defined twice, ignoring case (first at line {line})"),
                );
            }
            None => {
                names.insert(p.name.value.to_ascii_lowercase(), p.name.span.clone());
            }
        }
        match keys.get(p.key.value.as_str()) {
            Some(other) => d.at(
                &p.key.span,
                format!(
                    "{ctx}: user-data key {:?} is already promoted by custom property {other:?}",
                    p.key.value
                ),
            ),
            None => {
                keys.insert(&p.key.value, &p.name.value);
            }
        }
    }
    drafts
        .iter()
        .map(|p| CustomProperty {
            name: p.name.value.clone(),
            key: p.key.value.clone(),
            ty: p.ty,
        })
        .collect()
}

fn check_api_keys(draft: &Draft, d: &mut Diagnostics<'_>) {
    for (i, a) in draft.applications.iter().enumerate() {
        let Some(key) = &a.key else { continue };
        let earlier = draft.applications[..i]
            .iter()
            .find(|b| b.key.as_ref().is_some_and(|k| k.value == key.value));
        if let Some(b) = earlier {
            d.at(
                &key.span,
                format!(
                    "application {:?}: api key is the same as application {:?}'s",
                    a.name.value, b.name.value
                ),
            );
        }
    }
}

/// `invalid condition at character 12: …`, with the position counted in characters from 1.
fn condition_message(what: &str, text: &str, e: &ConditionError) -> String {
    let mut pos = e.pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let character = text[..pos].chars().count() + 1;
    format!("invalid {what} at character {character}: {}", e.message)
}

fn views(draft: &Draft, custom: &[CustomProperty], d: &mut Diagnostics<'_>) -> Vec<View> {
    let mut out = Vec::with_capacity(draft.views.len());
    for v in &draft.views {
        let ctx = format!("view {:?}", v.name.value);
        let condition = v.condition.as_ref().and_then(|c| {
            Condition::parse(&c.value, custom)
                .map_err(|e| {
                    d.at(
                        &c.span,
                        format!("{ctx}: {}", condition_message("condition", &c.value, &e)),
                    )
                })
                .ok()
        });
        let order = v.order.as_ref().and_then(|o| {
            OrderBy::parse(&o.value, custom)
                .map_err(|e| {
                    d.at(
                        &o.span,
                        format!("{ctx}: {}", condition_message("order", &o.value, &e)),
                    )
                })
                .ok()
        });
        let (Some(condition), Some(order)) = (condition, order) else {
            continue;
        };
        out.push(View {
            name: v.name.value.clone(),
            tenant: v.tenant.value.clone(),
            queue: v.queue.value.clone(),
            condition,
            order,
            check_interval_s: v.check_interval_s,
            limit: v.limit,
            freeze_interval_s: v.freeze_interval_s,
            enabled: v.enabled,
            description: v.description.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_property_names() {
        let cases = [
            ("segment", None),
            ("Segment_2", None),
            ("_age", Some("is not an identifier")),
            ("2nd", Some("is not an identifier")),
            ("with-dash", Some("is not an identifier")),
            ("", Some("is not an identifier")),
            ("priority", Some("clashes with the system property priority")),
            ("MediaType", Some("clashes with the system property media_type")),
            ("AND", Some("reserved word")),
            ("desc", Some("reserved word")),
        ];
        for (name, expected) in cases {
            let got = custom_name_problem(name);
            match expected {
                None => assert_eq!(got, None, "{name}"),
                Some(part) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(part)),
                    "{name}: {got:?}"
                ),
            }
        }
        assert!(custom_name_problem(&"a".repeat(49)).is_some());
        assert!(custom_name_problem(&"a".repeat(48)).is_none());
    }

    #[test]
    fn known_lists_are_sorted_and_capped() {
        assert_eq!(known_list("queues", ["b", "a"].into_iter()), "known queues: a, b");
        assert_eq!(known_list("queues", std::iter::empty()), "there are no queues");
        let many: Vec<String> = (10..30).map(|i| format!("q{i}")).collect();
        let text = known_list("queues", many.iter().map(String::as_str));
        assert!(text.ends_with("q21, …"), "{text}");
    }
}
