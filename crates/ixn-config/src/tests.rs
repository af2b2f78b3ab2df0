//! Whole-file tests: the built-in process, a file using every section, one case per error kind
//! (message and position), errors reported together, and parse never panicking.

use ixn_model::{CustomType, WorkbinOwnerType};
use proptest::prelude::*;

use super::*;

/// A file using every table and option (kept in step with docs/configuration.md by a test).
const FULL: &str = r#"
[server]
listen = "0.0.0.0:7070"
store = "postgres://ixn@127.0.0.1:5432/ixn?schema=ixn"
data-dir = "/var/lib/ixn"
node-id = 7
tls-cert = "cert.pem"
tls-key = "key.pem"
max-frame-size = 2097152
keep-events-without-loggers = true
route-in-process = true

[settings]
collect-request-counters = true
collect-error-counters = true
collect-esp-error-counters = true
max-interactions-per-snapshot = 1000
delivering-timeout = 45
handling-timeout = 60
routing-timeout = 30
history-retention = 0
purge-batch-size = 500
max-pull-wait = 20
agent-grace-period = 45
allow-multiple-agent-connections = "force-logout"

[[tenants]]
name = "default"

[[tenants]]
name = "acme"
description = "Acme Corp."

[[media-types]]
name = "chat"
handling-timeout = 15

[[media-types]]
name = "email"

[[custom-properties]]
name = "segment"
key = "CustomerSegment"
type = "string"

[[custom-properties]]
name = "score"
key = "Score"
type = "integer"

[[queues]]
name = "inbound"

[[queues]]
name = "inbound"
tenant = "acme"
description = "Acme's inbound queue"

[[views]]
name = "vip"
queue = "inbound"
condition = "segment = 'gold' AND score > 10"
order = "priority desc, submitted_at asc"
check-interval = 5
limit = 20
freeze-interval = 60
enabled = false

[[views]]
name = "vip"
tenant = "acme"
queue = "inbound"

[[workbins]]
name = "drafts"
type = "agent"

[[workbins]]
name = "shared"
tenant = "acme"
type = "place-group"

[[submitters]]
name = "vip-to-default"
view = "vip"
strategy = "default"
max-in-flight = 7
enabled = false

[[submitters]]
name = "acme-vip"
tenant = "acme"
view = "vip"
strategy = "default"

[[applications]]
name = "chat-server-1"
kind = "media-server"
api-key = "0123456789abcdef-chat"

[[applications]]
name = "router-1"
kind = "router"
tenant = "acme"
api-key-sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "ixn.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

#[test]
fn builtin_default_process() {
    let c = Config::builtin_default();
    let p = &c.process;
    let names = |v: Vec<&str>| v.join(",");
    assert_eq!(
        names(p.tenants.iter().map(|t| t.name.as_str()).collect()),
        "default"
    );
    assert_eq!(
        names(p.media_types.iter().map(|m| m.name.as_str()).collect()),
        "chat,email"
    );
    assert_eq!(
        names(p.queues.iter().map(|q| q.name.as_str()).collect()),
        "inbound,orchestration_system"
    );
    let view = p
        .view("default", "inbound-all")
        .map(|v| (v.queue.as_str(), v.order.text()));
    assert_eq!(view, Some(("inbound", "priority desc, submitted_at asc")));
    let subs: Vec<&str> = p
        .submitters_for_strategy("default", "default")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(subs, ["inbound-default"]);
    assert_eq!(
        p.workbin("default", "drafts").map(|w| w.owner_type),
        Some(WorkbinOwnerType::Agent)
    );
    assert_eq!(
        p.workbin("default", "team").map(|w| w.owner_type),
        Some(WorkbinOwnerType::AgentGroup)
    );
    assert!(p.applications.is_empty());
    assert_eq!(c.server, ServerConfig::default());
    assert_eq!(c.settings, Settings::default());
    assert_eq!(
        parse(DEFAULT_PROCESS_TOML, "default.toml").map(|c| c.process),
        Ok(c.process)
    );
}

#[test]
fn file_without_process_tables_gets_the_builtin_process() {
    let c = parse("[server]\nlisten = \"127.0.0.1:9000\"\n", "ixn.toml");
    let c = c.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.listen, "127.0.0.1:9000");
    assert_eq!(c.process, Config::builtin_default().process);
    assert_eq!(parse("", "empty.toml"), Ok(Config::builtin_default()));
}

#[test]
fn process_tables_replace_the_builtin_process() {
    let c = parse("[[queues]]\nname = \"only\"\n", "ixn.toml").unwrap_or_else(|e| panic!("{e}"));
    // No [[tenants]]: the one implicit tenant "default".
    assert_eq!(c.process.tenants.len(), 1);
    assert!(c.process.queue("default", "only").is_some());
    assert!(c.process.queue("default", "inbound").is_none());
    assert!(c.process.views.is_empty());
}

#[test]
fn full_example_parses_with_every_value() {
    let c = parse(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    let s = &c.server;
    assert_eq!(s.listen, "0.0.0.0:7070");
    assert_eq!(
        s.store.as_deref(),
        Some("postgres://ixn@127.0.0.1:5432/ixn?schema=ixn")
    );
    assert_eq!(s.data_dir.as_deref(), Some(Path::new("/var/lib/ixn")));
    assert_eq!((s.node_id, s.max_frame_size), (7, 2 << 20));
    assert!(s.keep_events_without_loggers);
    assert!(s.route_in_process);
    assert_eq!(s.tls_cert.as_deref(), Some(Path::new("cert.pem")));
    assert_eq!(s.tls_key.as_deref(), Some(Path::new("key.pem")));

    let expected = Settings {
        collect_request_counters: true,
        collect_error_counters: true,
        collect_esp_error_counters: true,
        max_interactions_per_snapshot: 1000,
        delivering_timeout_s: 45,
        handling_timeout_min: 60,
        routing_timeout_min: 30,
        history_retention_min: 0,
        purge_batch_size: 500,
        max_pull_wait_s: 20,
        allow_multiple_agent_connections: MultipleConnections::ForceLogout,
        agent_grace_period_s: 45,
    };
    assert_eq!(c.settings, expected);

    let p = &c.process;
    assert_eq!(
        p.tenant("acme").and_then(|t| t.description.as_deref()),
        Some("Acme Corp.")
    );
    assert_eq!(
        p.media_type("chat").and_then(|m| m.handling_timeout_min),
        Some(15)
    );
    assert_eq!(p.media_type("email").and_then(|m| m.handling_timeout_min), None);
    assert_eq!(
        p.custom_property("SEGMENT").map(|cp| cp.ty),
        Some(CustomType::String)
    );
    assert_eq!(
        p.custom_property("score").map(|cp| cp.key.as_str()),
        Some("Score")
    );
    assert!(
        p.queue("default", "inbound")
            .is_some_and(|q| q.description.is_none())
    );
    assert!(
        p.queue("acme", "inbound")
            .is_some_and(|q| q.description.is_some())
    );
    assert!(p.queue("nobody", "inbound").is_none());

    let vip = p.view("default", "vip").unwrap_or_else(|| panic!("view vip"));
    assert_eq!(vip.condition.text(), "segment = 'gold' AND score > 10");
    assert_eq!(vip.order.terms().len(), 2);
    assert_eq!(
        (
            vip.check_interval_s,
            vip.limit,
            vip.freeze_interval_s,
            vip.enabled
        ),
        (5, 20, 60, false)
    );
    let acme_vip = p.view("acme", "vip").unwrap_or_else(|| panic!("acme view vip"));
    assert_eq!(
        (
            acme_vip.check_interval_s,
            acme_vip.limit,
            acme_vip.freeze_interval_s
        ),
        (10, 0, 0)
    );
    assert!(acme_vip.enabled && acme_vip.order.terms().is_empty() && acme_vip.condition.text().is_empty());
    assert_eq!(p.views_of_queue("acme", "inbound").count(), 1);

    assert_eq!(
        p.workbin("acme", "shared").map(|w| w.owner_type),
        Some(WorkbinOwnerType::PlaceGroup)
    );
    let sub = p
        .submitter("default", "vip-to-default")
        .map(|s| (s.max_in_flight, s.enabled));
    assert_eq!(sub, Some((7, false)));
    let acme: Vec<_> = p
        .submitters_for_strategy("acme", "default")
        .map(|s| (s.max_in_flight, s.enabled))
        .collect();
    assert_eq!(acme, [(100, true)]);

    assert_eq!(
        p.application("chat-server-1")
            .map(|a| (a.kind, a.tenant.as_str())),
        Some((ClientKind::MediaServer, "default"))
    );
    let by_key = |k: &str| p.application_by_key(k).map(|a| a.name.as_str());
    assert_eq!(by_key("0123456789abcdef-chat"), Some("chat-server-1"));
    // The sha256 of "abc" was configured: the presented key is hashed before comparing.
    assert_eq!(by_key("abc"), Some("router-1"));
    assert_eq!(by_key("0123456789abcdef-chaT"), None);
    assert_eq!(by_key(""), None);
}

#[test]
fn docs_complete_example_parses() {
    let block = doc_block("## Complete example");
    if let Err(e) = parse(block, "docs/configuration.md") {
        panic!("{e}");
    }
}

/// The first fenced block after `marker` in docs/configuration.md.
fn doc_block(marker: &str) -> &'static str {
    let doc = include_str!("../../../docs/configuration.md");
    let after = doc.split_once(marker).map_or("", |(_, rest)| rest);
    let block = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'));
    let block = block.and_then(|(_, rest)| rest.split_once("```")).map(|(b, _)| b);
    block.unwrap_or_else(|| panic!("docs/configuration.md has no block after {marker:?}"))
}

#[test]
fn docs_builtin_process_is_the_builtin_process() {
    let doc = parse(doc_block("## The built-in process"), "docs/configuration.md").map(|c| c.process);
    assert_eq!(doc, Ok(Config::builtin_default().process));
}

#[test]
fn docs_error_example_is_what_parse_reports() {
    let input = doc_block("For example, this file:");
    let expected = doc_block("is rejected with:");
    let got = parse(input, "ixn.toml").err().map(|e| format!("{e}\n"));
    assert_eq!(got.as_deref(), Some(expected));
}

#[test]
fn applications_added_by_the_server() {
    let c = Config::builtin_default().with_application(Application::new(
        "admin",
        ClientKind::Admin,
        "default",
        "generated-key-of-some-length",
    ));
    let app = c.process.application_by_key("generated-key-of-some-length");
    assert_eq!(
        app.map(|a| (a.name.as_str(), a.kind)),
        Some(("admin", ClientKind::Admin))
    );
    assert!(app.is_some_and(|a| a.key_matches("generated-key-of-some-length") && !a.key_matches("x")));
    // Debug never prints key material.
    assert!(!format!("{:?}", c.process.applications).contains("key"));
}

/// One case per kind of error: the file, then the line and a part of the message expected.
#[test]
fn each_error_kind_is_reported_at_its_value() {
    let q = "[[queues]]\nname = \"inbound\"\n";
    let cases: Vec<(String, usize, &str)> = vec![
        ("a = \n".into(), 1, "TOML syntax"),
        ("[server]\nlisten = \"x:1\"\nlisten = \"y:2\"\n".into(), 3, "TOML syntax"),
        ("queue = 1\n".into(), 1, "top level: unknown key queue (did you mean queues?)"),
        ("[settings]\ndelivering-timout = 5\n".into(), 2, "unknown key delivering-timout (did you mean delivering-timeout?)"),
        ("[server]\nzzz = 1\n".into(), 2, "[server]: unknown key zzz (known keys: data-dir, keep-events-without-loggers, listen, max-frame-size"),
        ("[settings]\ndelivering-timeout = \"30\"\n".into(), 2, "delivering-timeout must be an integer, not a string"),
        ("[settings]\ndelivering-timeout = 0\n".into(), 2, "[settings]: delivering-timeout = 0 is out of range 1..86400 seconds (default 30)"),
        ("[settings]\n\nrouting-timeout = 10\n".into(), 3, "routing-timeout = 10 is out of range 20..525600 minutes (default 720)"),
        ("[settings]\nmax-interactions-per-snapshot = 99\n".into(), 2, "out of range 100..10000 (default 500)"),
        ("[settings]\nmax-pull-wait = -1\n".into(), 2, "max-pull-wait = -1 is out of range 1..600 seconds"),
        ("[settings]\npurge-batch-size = 99999999999999999999999\n".into(), 2, "out of range 1..100000"),
        ("[settings]\ncollect-request-counters = 1\n".into(), 2, "collect-request-counters must be true or false, not an integer"),
        ("[settings]\nallow-multiple-agent-connections = \"maybe\"\n".into(), 2, "must be true, false or \"force-logout\""),
        ("[server]\nnode-id = 3844\n".into(), 2, "node-id = 3844 is out of range 0..3843"),
        ("[server]\nmax-frame-size = 1023\n".into(), 2, "max-frame-size = 1023 is out of range 1024..67108864 bytes"),
        ("[server]\nlisten = \"7070\"\n".into(), 2, "listen = \"7070\" is not host:port"),
        ("[server]\nstore = \"mysql://x\"\n".into(), 2, "store must start with sqlite: or postgres://"),
        ("[server]\ndata-dir = \"\"\n".into(), 2, "data-dir must not be empty"),
        ("[server]\ntls-cert = \"c.pem\"\n".into(), 2, "tls-cert is set but tls-key is not"),
        ("[server]\ntls-key = \"k.pem\"\n".into(), 2, "tls-key is set but tls-cert is not"),
        ("server = 3\n".into(), 1, "top level: server must be a table, not an integer"),
        ("[queues]\nname = \"x\"\n".into(), 1, "queues must be an array of tables ([[queues]]), not a table"),
        ("queues = [1]\n".into(), 1, "queues[0] must be a table, not an integer"),
        ("[[queues]]\ntenant = \"default\"\n".into(), 1, "queues[0]: missing key name"),
        (format!("{q}{q}"), 4, "queue \"inbound\" is defined twice in tenant \"default\" (first at line 2)"),
        ("[[queues]]\nname = \"a,b\"\n".into(), 2, "queue name \"a,b\" must not contain ',' or ';'"),
        ("[[queues]]\nname = \"\"\n".into(), 2, "must be 1 to 64 characters long"),
        (format!("[[queues]]\nname = \"{}\"\n", "q".repeat(65)), 2, "must be 1 to 64 characters long"),
        ("[[queues]]\nname = \" q\"\n".into(), 2, "must not start or end with white space"),
        ("[[queues]]\nname = \"q\"\ntenant = \"acme\"\n".into(), 3, "queue \"q\": tenant \"acme\" does not exist (known tenants: default)"),
        ("[[queues]]\nname = \"q\"\ncolour = \"red\"\n".into(), 3, "queue \"q\": unknown key colour"),
        (format!("{q}[[views]]\nname = \"vip\"\n    queue = \"inbund\"\n"), 5, "view \"vip\": queue \"inbund\" does not exist (known queues: inbound)"),
        ("[[views]]\nname = \"v\"\n".into(), 1, "view \"v\": missing key queue"),
        (format!("{q}[[views]]\nname = \"v\"\nqueue = \"inbound\"\ncheck-interval = 0\n"), 6, "check-interval = 0 is out of range 1..3600 seconds (default 10)"),
        (format!("{q}[[views]]\nname = \"v\"\nqueue = \"inbound\"\nfreeze-interval = 86401\n"), 6, "freeze-interval = 86401 is out of range 0..86400 seconds (default 0)"),
        (format!("{q}[[views]]\nname = \"v\"\nqueue = \"inbound\"\ncondition = \"priority >\"\n"), 6, "view \"v\": invalid condition at character"),
        (format!("{q}[[views]]\nname = \"v\"\nqueue = \"inbound\"\norder = \"priority sideways\"\n"), 6, "view \"v\": invalid order at character 10:"),
        ("[[workbins]]\nname = \"w\"\ntype = \"desk\"\n".into(), 3, "workbin \"w\": type \"desk\" is not one of agent, agent-group, place, place-group"),
        ("[[submitters]]\nname = \"s\"\nview = \"nope\"\nstrategy = \"default\"\n".into(), 3, "submitter \"s\": view \"nope\" does not exist (there are no views)"),
        (format!("{q}[[views]]\nname = \"v\"\nqueue = \"inbound\"\n[[submitters]]\nname = \"s\"\nview = \"v\"\nstrategy = \"default\"\nmax-in-flight = 0\n"), 10, "max-in-flight = 0 is out of range 1..50000 (default 100)"),
        ("[[submitters]]\nname = \"s\"\nview = \"v\"\n".into(), 1, "submitter \"s\": missing key strategy"),
        ("[[media-types]]\nname = \"chat\"\nhandling-timeout = 0\n".into(), 3, "out of range 1..1440 minutes (default the server's handling-timeout)"),
        ("[[media-types]]\nname = \"chat\"\n[[media-types]]\nname = \"chat\"\n".into(), 4, "media type \"chat\" is defined twice (first at line 2)"),
        ("[[tenants]]\nname = \"t\"\n[[tenants]]\nname = \"t\"\n".into(), 4, "tenant \"t\" is defined twice"),
        ("[[custom-properties]]\nname = \"my-prop\"\nkey = \"K\"\ntype = \"string\"\n".into(), 2, "name is not an identifier"),
        ("[[custom-properties]]\nname = \"Priority\"\nkey = \"K\"\ntype = \"string\"\n".into(), 2, "clashes with the system property priority"),
        ("[[custom-properties]]\nname = \"p\"\nkey = \"K\"\ntype = \"float\"\n".into(), 4, "type \"float\" is not one of string, integer, timestamp"),
        ("[[custom-properties]]\nname = \"a\"\nkey = \"K\"\ntype = \"string\"\n[[custom-properties]]\nname = \"A\"\nkey = \"L\"\ntype = \"string\"\n".into(), 6, "custom property \"A\" is defined twice, ignoring case (first at line 2)"),
        ("[[custom-properties]]\nname = \"a\"\nkey = \"K\"\ntype = \"string\"\n[[custom-properties]]\nname = \"b\"\nkey = \"K\"\ntype = \"string\"\n".into(), 7, "user-data key \"K\" is already promoted by custom property \"a\""),
        ("[[applications]]\nname = \"a\"\nkind = \"media-server\"\napi-key = \"short\"\n".into(), 4, "api-key must be at least 16 characters long"),
        ("[[applications]]\nname = \"a\"\nkind = \"media-server\"\n".into(), 1, "application \"a\": missing key api-key (or api-key-sha256)"),
        ("[[applications]]\nname = \"a\"\nkind = \"robot\"\napi-key = \"0123456789abcdef\"\n".into(), 3, "kind \"robot\" is not one of media-server, agent-desktop"),
        ("[[applications]]\nname = \"a\"\nkind = \"admin\"\napi-key-sha256 = \"abc\"\n".into(), 4, "api-key-sha256 must be 64 hexadecimal digits"),
        ("[[applications]]\nname = \"a\"\nkind = \"admin\"\napi-key = \"0123456789abcdef\"\napi-key-sha256 = \"abc\"\n".into(), 5, "give api-key or api-key-sha256, not both"),
        (
            "[[applications]]\nname = \"a\"\nkind = \"admin\"\napi-key = \"0123456789abcdef\"\n\
             [[applications]]\nname = \"b\"\nkind = \"router\"\n\
             api-key-sha256 = \"9f9d51bc70ef21ca5c14f307980a29d8d7f1a3d1d1e6b5d7c9a94b3e5dfc4b10\"\n\
             [[applications]]\nname = \"c\"\nkind = \"router\"\napi-key = \"0123456789abcdef\"\n"
                .into(),
            12,
            "application \"c\": api key is the same as application \"a\"'s",
        ),
        ("[[applications]]\nname = \"a\"\nkind = \"admin\"\napi-key = \"0123456789abcdef\"\n[[applications]]\nname = \"a\"\nkind = \"admin\"\napi-key = \"0123456789abcdeg\"\n".into(), 6, "application \"a\" is defined twice (first at line 2)"),
    ];
    let mut failures = Vec::new();
    for (text, line, part) in &cases {
        let errs = errors(text);
        let found = errs
            .iter()
            .any(|e| e.line == *line && e.message.contains(part) && e.file == "ixn.toml");
        if !found {
            failures.push(format!(
                "--- expected line {line}: {part}\n{text}--- got:\n{}",
                ConfigErrors(errs)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exact_message_and_column() {
    let text = "[[queues]]\nname = \"inbound\"\n[[queues]]\nname = \"orchestration_system\"\n\
                [[views]]\nname = \"vip\"\nqueue =     \"inbund\"\n";
    let errs = parse(text, "ixn.toml").err().map(|e| e.to_string());
    let expected = "ixn.toml:7:13: view \"vip\": queue \"inbund\" does not exist (known queues: inbound, orchestration_system)";
    assert_eq!(errs.as_deref(), Some(expected));
}

#[test]
fn condition_errors_point_at_the_string_and_count_characters_within() {
    let text =
        "[[queues]]\nname = \"q\"\n[[views]]\nname = \"v\"\nqueue = \"q\"\n  condition = \"x = 'é' AND\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
    assert_eq!((errs[0].line, errs[0].column), (6, 15));
    // "x = 'é' AND" ends at character 12; its byte offset is 12 (13th byte).
    assert!(
        errs[0].message.contains("invalid condition at character 12:"),
        "{}",
        errs[0].message
    );
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let text = r#"
[settings]
delivering-timeout = 0
handling-timeout = 2000

[[queues]]
name = "inbound"
tenant = "nobody"

[[views]]
name = "v"
queue = "missing"
condition = "((("

[[submitters]]
name = "s"
view = "v"
strategy = "default"
max-in-flight = 0
mystery = true
"#;
    let errs = errors(text);
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 8, 12, 13, 19, 20], "{}", ConfigErrors(errs));
}

#[test]
fn the_same_name_in_two_tenants_is_fine() {
    let text = "[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"b\"\n\
                [[queues]]\nname = \"q\"\ntenant = \"a\"\n[[queues]]\nname = \"q\"\ntenant = \"b\"\n";
    let c = parse(text, "ixn.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.process.queue("a", "q").is_some() && c.process.queue("b", "q").is_some());
}

#[test]
fn allow_multiple_agent_connections_accepts_booleans_and_strings() {
    let cases = [
        ("true", MultipleConnections::Allow),
        ("false", MultipleConnections::Deny),
        ("\"true\"", MultipleConnections::Allow),
        ("\"false\"", MultipleConnections::Deny),
        ("\"force-logout\"", MultipleConnections::ForceLogout),
    ];
    for (value, expected) in cases {
        let text = format!("[settings]\nallow-multiple-agent-connections = {value}\n");
        let got = parse(&text, "ixn.toml").map(|c| c.settings.allow_multiple_agent_connections);
        assert_eq!(got, Ok(expected), "{value}");
    }
}

#[test]
fn load_file_reports_io_errors_at_line_zero() {
    let path = Path::new("/nonexistent/ixn-config-test/ixn.toml");
    let errs = load_file(path).err().map(|e| e.0).unwrap_or_default();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].line, errs[0].column), (0, 0));
    assert!(
        errs[0]
            .to_string()
            .starts_with("/nonexistent/ixn-config-test/ixn.toml: cannot read")
    );
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    for text in [
        "a = ".to_owned() + &"[".repeat(100_000),
        "a = ".to_owned() + &"{b = ".repeat(50_000),
    ] {
        assert!(parse(&text, "deep.toml").is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse(&text, "fuzz.toml");
    }

    #[test]
    fn parse_never_panics_on_mutated_configs(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~\n]{0,3}"), 1..6)
    ) {
        let mut text = FULL.to_owned();
        for (at, op, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                0 => text.insert_str(i, &insert),
                1 => {
                    let end = (i + insert.len().max(1)).min(text.len());
                    if text.is_char_boundary(end) {
                        text.replace_range(i..end, "");
                    }
                }
                _ => {
                    let end = (i + insert.len()).min(text.len());
                    if text.is_char_boundary(end) {
                        text.replace_range(i..end, &insert);
                    }
                }
            }
        }
        if let Err(errs) = parse(&text, "fuzz.toml") {
            // A failed parse always explains itself, at a position inside the text.
            prop_assert!(!errs.is_empty());
            let lines = text.lines().count().max(1) + 1;
            for e in &errs {
                prop_assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{}", e);
            }
        }
    }
}
