//! Reading each section of the file into drafts: typed values that remember where they were
//! written, checked one by one (types, ranges, name syntax, unknown keys).
//!
//! Checks that need more than one item (duplicates, references, conditions) live in
//! `validate`, which works on these drafts.

use std::path::PathBuf;

use ixn_model::{CustomType, WorkbinOwnerType};

use crate::apikey::{self, KeyDigest, MIN_KEY_LEN};
use crate::error::Diagnostics;
use ixn_model::ClientKind;

use crate::model::{MultipleConnections, ServerConfig, Settings, defaults};
use crate::reader::{At, Fields};

/// Everything read from the file, before cross-checks.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub server: ServerConfig,
    pub settings: Settings,
    /// False when the file has none of the business-process tables.
    pub has_process: bool,
    pub tenants: Vec<TenantDraft>,
    pub media_types: Vec<MediaTypeDraft>,
    pub queues: Vec<QueueDraft>,
    pub views: Vec<ViewDraft>,
    pub workbins: Vec<WorkbinDraft>,
    pub submitters: Vec<SubmitterDraft>,
    pub custom_properties: Vec<CustomPropertyDraft>,
    pub applications: Vec<ApplicationDraft>,
    /// `[[loggers]]`, complete (they need no cross-checks with the process).
    pub loggers: Vec<crate::loggers::LoggerConfig>,
    /// `[[agents]]`, `[[agent-groups]]`, `[[places]]`, `[[capacity-rules]]` (part of the process).
    pub agents: crate::agents::AgentsDraft,
}

#[derive(Debug)]
pub(crate) struct TenantDraft {
    pub name: At<String>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct MediaTypeDraft {
    pub name: At<String>,
    pub handling_timeout_min: Option<u32>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct QueueDraft {
    pub name: At<String>,
    pub tenant: At<String>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct ViewDraft {
    pub name: At<String>,
    pub tenant: At<String>,
    pub queue: At<String>,
    /// `None` when it had the wrong type (already reported).
    pub condition: Option<At<String>>,
    pub order: Option<At<String>>,
    pub check_interval_s: u32,
    pub limit: u32,
    pub freeze_interval_s: u32,
    pub enabled: bool,
    pub description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct WorkbinDraft {
    pub name: At<String>,
    pub tenant: At<String>,
    pub owner_type: WorkbinOwnerType,
    pub description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct SubmitterDraft {
    pub name: At<String>,
    pub tenant: At<String>,
    pub view: At<String>,
    pub strategy: At<String>,
    pub max_in_flight: u32,
    pub enabled: bool,
}

#[derive(Debug)]
pub(crate) struct CustomPropertyDraft {
    pub name: At<String>,
    pub key: At<String>,
    pub ty: CustomType,
}

pub(crate) struct ApplicationDraft {
    pub name: At<String>,
    pub kind: ClientKind,
    pub tenant: At<String>,
    /// Digest of the key and where the key was written; `None` after a reported error.
    pub key: Option<At<KeyDigest>>,
}

impl std::fmt::Debug for ApplicationDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationDraft")
            .field("name", &self.name.value)
            .finish_non_exhaustive()
    }
}

/// Names of the business-process tables, in the order the documentation presents them.
pub(crate) const PROCESS_TABLES: [&str; 8] = [
    "tenants",
    "media-types",
    "queues",
    "views",
    "workbins",
    "submitters",
    "custom-properties",
    "applications",
];

/// Reads the document root.
pub(crate) fn read_root(root: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Draft {
    let mut draft = Draft::default();
    if let Some(mut f) = root.table(d, "server") {
        draft.server = read_server(&mut f, d);
        f.finish(d);
    }
    if let Some(mut f) = root.table(d, "settings") {
        draft.settings = read_settings(&mut f, d);
        f.finish(d);
    }
    draft.loggers = crate::loggers::read_loggers(root, d);
    draft.agents = crate::agents::read(root, d);
    draft.has_process |= !draft.agents.is_empty();
    for table in PROCESS_TABLES {
        let Some(items) = root.array_of_tables(d, table) else {
            continue;
        };
        draft.has_process = true;
        for mut f in items {
            match table {
                "tenants" => draft.tenants.extend(read_tenant(&mut f, d)),
                "media-types" => draft.media_types.extend(read_media_type(&mut f, d)),
                "queues" => draft.queues.extend(read_queue(&mut f, d)),
                "views" => draft.views.extend(read_view(&mut f, d)),
                "workbins" => draft.workbins.extend(read_workbin(&mut f, d)),
                "submitters" => draft.submitters.extend(read_submitter(&mut f, d)),
                "custom-properties" => draft.custom_properties.extend(read_custom_property(&mut f, d)),
                _ => draft.applications.extend(read_application(&mut f, d)),
            }
            f.finish(d);
        }
    }
    draft
}

fn narrow<T: TryFrom<u64> + Default>(n: u64) -> T {
    // Ranges checked by the reader all fit the target type; the default is never used.
    T::try_from(n).unwrap_or_default()
}

fn read_server(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> ServerConfig {
    let mut s = ServerConfig::default();
    if let Some(listen) = f.string(d, "listen") {
        if !is_host_port(&listen.value) {
            d.at(
                &listen.span,
                format!("[server]: listen = {:?} is not host:port", listen.value),
            );
        }
        s.listen = listen.value;
    }
    if let Some(store) = f.string(d, "store") {
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|p| store.value.starts_with(p)) {
            d.at(
                &store.span,
                "[server]: store must start with sqlite: or postgres://".to_owned(),
            );
        }
        s.store = Some(store.value);
    }
    s.data_dir = non_empty_path(f, d, "data-dir");
    s.node_id = narrow(f.int(d, "node-id", 0..=3843, 0, ""));
    let cert = f.string(d, "tls-cert");
    let key = f.string(d, "tls-key");
    match (&cert, &key) {
        (Some(c), None) => d.at(
            &c.span,
            "[server]: tls-cert is set but tls-key is not (give both or neither)",
        ),
        (None, Some(k)) => d.at(
            &k.span,
            "[server]: tls-key is set but tls-cert is not (give both or neither)",
        ),
        _ => {}
    }
    s.tls_cert = cert.map(|c| PathBuf::from(c.value));
    s.tls_key = key.map(|k| PathBuf::from(k.value));
    let frame = f.int(
        d,
        "max-frame-size",
        1024..=64 << 20,
        defaults::MAX_FRAME_SIZE as u64,
        "bytes",
    );
    s.max_frame_size = narrow(frame);
    s.keep_events_without_loggers = f.bool(d, "keep-events-without-loggers", false);
    s.route_in_process = f.bool(d, "route-in-process", false);
    s
}

fn non_empty_path(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str) -> Option<PathBuf> {
    let v = f.string(d, key)?;
    if v.value.is_empty() {
        d.at(&v.span, format!("{}: {key} must not be empty", f.context()));
        return None;
    }
    Some(PathBuf::from(v.value))
}

/// `host:port` or `[v6]:port`, with a numeric port.
fn is_host_port(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(':')
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

fn read_settings(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Settings {
    let def = Settings::default();
    let mut int = |key, range, default: u32, unit| narrow(f.int(d, key, range, u64::from(default), unit));
    let mut s = Settings {
        max_interactions_per_snapshot: int("max-interactions-per-snapshot", 100..=10_000, 500, ""),
        delivering_timeout_s: int(
            "delivering-timeout",
            1..=86_400,
            def.delivering_timeout_s,
            "seconds",
        ),
        handling_timeout_min: int("handling-timeout", 1..=1440, def.handling_timeout_min, "minutes"),
        routing_timeout_min: int(
            "routing-timeout",
            20..=525_600,
            def.routing_timeout_min,
            "minutes",
        ),
        history_retention_min: int(
            "history-retention",
            0..=5_256_000,
            def.history_retention_min,
            "minutes",
        ),
        purge_batch_size: int("purge-batch-size", 1..=100_000, def.purge_batch_size, ""),
        max_pull_wait_s: int("max-pull-wait", 1..=600, def.max_pull_wait_s, "seconds"),
        agent_grace_period_s: int(
            "agent-grace-period",
            0..=3600,
            def.agent_grace_period_s,
            "seconds",
        ),
        ..def
    };
    s.collect_request_counters = f.bool(d, "collect-request-counters", false);
    s.collect_error_counters = f.bool(d, "collect-error-counters", false);
    s.collect_esp_error_counters = f.bool(d, "collect-esp-error-counters", false);
    if let Some(v) = f.take("allow-multiple-agent-connections") {
        let parsed = match v.get_ref() {
            toml::de::DeValue::Boolean(true) => Some(MultipleConnections::Allow),
            toml::de::DeValue::Boolean(false) => Some(MultipleConnections::Deny),
            toml::de::DeValue::String(s) => MultipleConnections::parse(s),
            _ => None,
        };
        match parsed {
            Some(m) => s.allow_multiple_agent_connections = m,
            None => d.at(
                &v.span(),
                "[settings]: allow-multiple-agent-connections must be true, false or \"force-logout\" \
                 (default true)",
            ),
        }
    }
    s
}

/// Longest name of a business-process object.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Why `name` is not a valid object name, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN {
        return Some(format!("must be 1 to {MAX_NAME_LEN} characters long"));
    }
    if name.contains([',', ';']) {
        return Some("must not contain ',' or ';'".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Some("must not contain control characters".to_owned());
    }
    if name.trim() != name {
        return Some("must not start or end with white space".to_owned());
    }
    None
}

/// Reads a required name key, checks its syntax, and names the table after it in later messages.
fn read_name(
    f: &mut Fields<'_, '_>,
    d: &mut Diagnostics<'_>,
    key: &'static str,
    what: &str,
) -> Option<At<String>> {
    let name = f.required_string(d, key)?;
    if let Some(problem) = name_problem(&name.value) {
        d.at(
            &name.span,
            format!("{}: {what} name {:?} {problem}", f.context(), name.value),
        );
    }
    f.set_context(format!("{what} {:?}", name.value));
    Some(name)
}

/// A reference to another object by name (its syntax is checked where that object is defined).
fn read_ref(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str) -> Option<At<String>> {
    f.required_string(d, key)
}

fn read_tenant_ref(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> At<String> {
    f.string(d, "tenant")
        .unwrap_or_else(|| At::new(defaults::TENANT.to_owned(), f.span()))
}

fn description(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<String> {
    f.string(d, "description").map(|a| a.value)
}

fn read_tenant(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<TenantDraft> {
    let name = read_name(f, d, "name", "tenant");
    let description = description(f, d);
    Some(TenantDraft {
        name: name?,
        description,
    })
}

fn read_media_type(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<MediaTypeDraft> {
    let name = read_name(f, d, "name", "media type");
    let handling = f.int_at(
        d,
        "handling-timeout",
        1..=1440,
        "the server's handling-timeout",
        "minutes",
    );
    let description = description(f, d);
    Some(MediaTypeDraft {
        name: name?,
        handling_timeout_min: handling.map(|h| narrow(h.value)),
        description,
    })
}

fn read_queue(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<QueueDraft> {
    let name = read_name(f, d, "name", "queue");
    let tenant = read_tenant_ref(f, d);
    let description = description(f, d);
    Some(QueueDraft {
        name: name?,
        tenant,
        description,
    })
}

fn read_view(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<ViewDraft> {
    let name = read_name(f, d, "name", "view");
    let tenant = read_tenant_ref(f, d);
    let queue = read_ref(f, d, "queue");
    let condition = f
        .string(d, "condition")
        .or_else(|| Some(At::new(String::new(), f.span())));
    let order = f
        .string(d, "order")
        .or_else(|| Some(At::new(defaults::ORDER.to_owned(), f.span())));
    let check_interval_s = narrow(f.int(d, "check-interval", 1..=3600, 10, "seconds"));
    let limit = narrow(f.int(d, "limit", 0..=1_000_000, 0, ""));
    let freeze_interval_s = narrow(f.int(d, "freeze-interval", 0..=86_400, 0, "seconds"));
    let enabled = f.bool(d, "enabled", true);
    let description = description(f, d);
    Some(ViewDraft {
        name: name?,
        tenant,
        queue: queue?,
        condition,
        order,
        check_interval_s,
        limit,
        freeze_interval_s,
        enabled,
        description,
    })
}

/// Reads a string key that must be one of `choices`, reporting the choices otherwise.
fn read_choice<T: Copy>(
    f: &mut Fields<'_, '_>,
    d: &mut Diagnostics<'_>,
    key: &'static str,
    choices: &[(&str, T)],
) -> Option<T> {
    let v = f.required_string(d, key)?;
    let found = choices.iter().find(|(s, _)| *s == v.value).map(|(_, t)| *t);
    if found.is_none() {
        let names: Vec<&str> = choices.iter().map(|(s, _)| *s).collect();
        d.at(
            &v.span,
            format!(
                "{}: {key} {:?} is not one of {}",
                f.context(),
                v.value,
                names.join(", ")
            ),
        );
    }
    found
}

fn read_workbin(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<WorkbinDraft> {
    let name = read_name(f, d, "name", "workbin");
    let tenant = read_tenant_ref(f, d);
    let owner_types = [
        ("agent", WorkbinOwnerType::Agent),
        ("agent-group", WorkbinOwnerType::AgentGroup),
        ("place", WorkbinOwnerType::Place),
        ("place-group", WorkbinOwnerType::PlaceGroup),
    ];
    let owner_type = read_choice(f, d, "type", &owner_types);
    let description = description(f, d);
    Some(WorkbinDraft {
        name: name?,
        tenant,
        owner_type: owner_type?,
        description,
    })
}

fn read_submitter(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<SubmitterDraft> {
    let name = read_name(f, d, "name", "submitter");
    let tenant = read_tenant_ref(f, d);
    let view = read_ref(f, d, "view");
    let strategy = f.required_string(d, "strategy");
    if let Some(s) = &strategy
        && let Some(problem) = name_problem(&s.value)
    {
        d.at(
            &s.span,
            format!("{}: strategy name {:?} {problem}", f.context(), s.value),
        );
    }
    let max_in_flight = narrow(f.int(d, "max-in-flight", 1..=50_000, 100, ""));
    let enabled = f.bool(d, "enabled", true);
    Some(SubmitterDraft {
        name: name?,
        tenant,
        view: view?,
        strategy: strategy?,
        max_in_flight,
        enabled,
    })
}

fn read_custom_property(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<CustomPropertyDraft> {
    // Syntax of custom property names is stricter than other names (they become identifiers in
    // conditions and SQL columns), so `validate` checks them, not `read_name`.
    let name = f.required_string(d, "name");
    if let Some(n) = &name {
        f.set_context(format!("custom property {:?}", n.value));
    }
    let key = f.required_string(d, "key");
    if let Some(k) = &key
        && (k.value.is_empty() || k.value.chars().count() > 255)
    {
        d.at(
            &k.span,
            format!("{}: key must be 1 to 255 characters long", f.context()),
        );
    }
    let types = [
        ("string", CustomType::String),
        ("integer", CustomType::Integer),
        ("timestamp", CustomType::Timestamp),
    ];
    let ty = read_choice(f, d, "type", &types);
    Some(CustomPropertyDraft {
        name: name?,
        key: key?,
        ty: ty?,
    })
}

fn read_application(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<ApplicationDraft> {
    let name = read_name(f, d, "name", "application");
    let kinds: Vec<(&str, ClientKind)> = ClientKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
    let kind = read_choice(f, d, "kind", &kinds);
    let tenant = read_tenant_ref(f, d);
    let clear = f.string(d, "api-key");
    let hashed = f.string(d, "api-key-sha256");
    let key = match (clear, hashed) {
        (Some(c), None) => {
            if c.value.chars().count() < MIN_KEY_LEN {
                d.at(
                    &c.span,
                    format!(
                        "{}: api-key must be at least {MIN_KEY_LEN} characters long",
                        f.context()
                    ),
                );
            }
            Some(At::new(apikey::digest(&c.value), c.span))
        }
        (None, Some(h)) => match apikey::parse_hex_digest(&h.value) {
            Some(digest) => Some(At::new(digest, h.span)),
            None => {
                d.at(
                    &h.span,
                    format!("{}: api-key-sha256 must be 64 hexadecimal digits", f.context()),
                );
                None
            }
        },
        (Some(_), Some(h)) => {
            d.at(
                &h.span,
                format!("{}: give api-key or api-key-sha256, not both", f.context()),
            );
            None
        }
        (None, None) => {
            d.at(
                &f.span(),
                format!("{}: missing key api-key (or api-key-sha256)", f.context()),
            );
            None
        }
    };
    Some(ApplicationDraft {
        name: name?,
        kind: kind?,
        tenant,
        key,
    })
}
