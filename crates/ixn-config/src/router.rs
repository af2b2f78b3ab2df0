//! `[router]`: how an `ixn router` process runs — its node name, the interaction servers it pulls
//! from (one connection each, the product family's `switch-multi-links-enabled`), how much it
//! pulls at once, how long it waits after a pull error (`mcr-pull-after-error-timeout`) and which
//! strategies it runs. Read at start only.

use std::fmt;
use std::path::PathBuf;

use crate::error::Diagnostics;
use crate::reader::{At, Fields};
use crate::sections::name_problem;
use toml::de::DeValue;

use crate::strategies::Strategy;

/// Default of `pull-batch`.
pub const DEFAULT_PULL_BATCH: u32 = 100;
/// Default of `mcr-pull-after-error-timeout`, in seconds.
pub const DEFAULT_PULL_AFTER_ERROR_S: u32 = 120;
/// Default node name.
pub const DEFAULT_NODE: &str = "router";

/// The `[router]` table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RouterConfig {
    /// This router's name, written into interactions it creates so that it cleans them up.
    pub node: String,
    pub servers: Vec<RouterServer>,
    /// Most interactions one strategy works on at once per server (and asks for in one pull).
    pub pull_batch: u32,
    /// Wait after a pull error 42, 83, 107, 108 or 109 before pulling that strategy from that
    /// server again.
    pub pull_after_error_s: u32,
    /// Strategy names to run; `None` runs every strategy of the file.
    pub strategies: Option<Vec<String>>,
}

impl RouterConfig {
    /// A router of one server with every default.
    pub fn single(server: RouterServer) -> RouterConfig {
        Self::with_defaults(vec![server])
    }

    /// A router of these servers with every default (`ixn serve` runs one in process with no
    /// server entry: it connects through `ixn_server::LocalConnector` instead).
    pub fn with_defaults(servers: Vec<RouterServer>) -> RouterConfig {
        RouterConfig {
            node: DEFAULT_NODE.to_owned(),
            servers,
            pull_batch: DEFAULT_PULL_BATCH,
            pull_after_error_s: DEFAULT_PULL_AFTER_ERROR_S,
            strategies: None,
        }
    }

    /// Whether this router runs `strategy`.
    pub fn runs(&self, strategy: &Strategy) -> bool {
        strategy.enabled
            && self
                .strategies
                .as_ref()
                .is_none_or(|names| names.contains(&strategy.name))
    }
}

/// One interaction server the router pulls from.
#[derive(Clone, PartialEq, Eq)]
pub struct RouterServer {
    /// `http://host:port`, `https://…` or a `ws(s)://…/v1/ws` URL.
    pub url: String,
    /// Application (kind `router`) the router registers as.
    pub application: String,
    /// Its API key, in clear: the router presents it.
    pub api_key: String,
    /// Extra CA certificate (PEM) trusted for `https`/`wss`.
    pub tls_ca_file: Option<PathBuf>,
    /// Tenant of the application: only that tenant's strategies are pulled from this server.
    pub tenant: String,
}

impl fmt::Debug for RouterServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterServer")
            .field("url", &self.url)
            .field("application", &self.application)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// `[router]` as read, with the positions of its strategy names for the cross-check.
#[derive(Debug)]
pub(crate) struct RouterDraft {
    config: RouterConfig,
    strategy_names: Vec<At<String>>,
}

/// Reads `[router]`, if present.
pub(crate) fn read(root: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<RouterDraft> {
    let mut f = root.table(d, "router")?;
    let node = f.string(d, "node").map_or_else(
        || DEFAULT_NODE.to_owned(),
        |n| {
            if let Some(problem) = name_problem(&n.value) {
                d.at(&n.span, format!("[router]: node {:?} {problem}", n.value));
            }
            n.value
        },
    );
    let pull_batch = narrow(f.int(d, "pull-batch", 1..=1000, u64::from(DEFAULT_PULL_BATCH), ""));
    let pull_after_error_s = narrow(f.int(
        d,
        "mcr-pull-after-error-timeout",
        60..=3600,
        u64::from(DEFAULT_PULL_AFTER_ERROR_S),
        "seconds",
    ));
    let strategy_names = strategy_names(&mut f, d);
    let servers = read_servers(&mut f, d);
    f.finish(d);
    Some(RouterDraft {
        config: RouterConfig {
            node,
            servers,
            pull_batch,
            pull_after_error_s,
            strategies: strategy_names
                .as_ref()
                .map(|names| names.iter().map(|n| n.value.clone()).collect()),
        },
        strategy_names: strategy_names.unwrap_or_default(),
    })
}

fn strategy_names(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<Vec<At<String>>> {
    let v = f.take("strategies")?;
    let DeValue::Array(items) = v.get_ref() else {
        d.at(
            &v.span(),
            "[router]: strategies must be an array of strategy names".to_owned(),
        );
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for item in items {
        match item.get_ref() {
            DeValue::String(s) => out.push(At::new(s.to_string(), item.span())),
            _ => d.at(
                &item.span(),
                "[router]: strategies must hold strategy names".to_owned(),
            ),
        }
    }
    Some(out)
}

fn read_servers(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Vec<RouterServer> {
    let Some(items) = f.array_of_tables(d, "servers") else {
        d.at(
            &f.span(),
            "[router]: missing servers (e.g. servers = [{ url = \"http://127.0.0.1:7070\", \
             application = \"router-1\", api-key = \"…\" }])"
                .to_owned(),
        );
        return Vec::new();
    };
    if items.is_empty() {
        d.at(
            &f.span(),
            "[router]: servers must list at least one server".to_owned(),
        );
    }
    let mut out = Vec::new();
    for (i, mut s) in items.into_iter().enumerate() {
        s.set_context(format!("[router]: servers[{i}]"));
        let url = s.required_string(d, "url");
        if let Some(u) = &url {
            let schemes = ["http://", "https://", "ws://", "wss://"];
            if !schemes.iter().any(|p| u.value.starts_with(p)) {
                d.at(
                    &u.span,
                    format!(
                        "{}: url must start with http://, https://, ws:// or wss://",
                        s.context()
                    ),
                );
            }
        }
        let application = s.required_string(d, "application");
        let api_key = s.required_string(d, "api-key");
        if let Some(k) = &api_key
            && k.value.chars().count() < 16
        {
            d.at(
                &k.span,
                format!("{}: api-key must be at least 16 characters long", s.context()),
            );
        }
        let tls_ca_file = s.string(d, "tls-ca-file").map(|p| PathBuf::from(p.value));
        let tenant = s
            .string(d, "tenant")
            .map_or_else(|| crate::model::defaults::TENANT.to_owned(), |t| t.value);
        s.finish(d);
        if let (Some(url), Some(application), Some(api_key)) = (url, application, api_key) {
            out.push(RouterServer {
                url: url.value,
                application: application.value,
                api_key: api_key.value,
                tls_ca_file,
                tenant,
            });
        }
    }
    out
}

fn narrow(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks that every strategy the router is told to run exists, and returns the configuration.
pub(crate) fn validate(draft: RouterDraft, strategies: &[Strategy], d: &mut Diagnostics<'_>) -> RouterConfig {
    for name in &draft.strategy_names {
        if !strategies.iter().any(|s| s.name == name.value) {
            let mut known: Vec<&str> = strategies.iter().map(|s| s.name.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            d.at(
                &name.span,
                format!(
                    "[router]: strategy {:?} does not exist (known strategies: {})",
                    name.value,
                    known.join(", ")
                ),
            );
        }
    }
    draft.config
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVERS: &str = "servers = [{ url = \"http://127.0.0.1:7070\", application = \"r1\", \
                           api-key = \"0123456789abcdef\" }]\n";

    #[test]
    fn defaults_and_servers() {
        let c = crate::parse(&format!("[router]\n{SERVERS}"), "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let r = c.router.expect("router");
        assert_eq!(r.node, DEFAULT_NODE);
        assert_eq!(r.pull_batch, DEFAULT_PULL_BATCH);
        assert_eq!(r.pull_after_error_s, DEFAULT_PULL_AFTER_ERROR_S);
        assert_eq!(r.strategies, None);
        assert_eq!(r.servers[0].tenant, "default");
        assert_eq!(r.servers[0].api_key, "0123456789abcdef");
        assert!(
            !format!("{r:?}").contains("0123456789abcdef"),
            "keys stay out of Debug"
        );
        assert!(r.runs(&Strategy::builtin_default("default")));
    }

    #[test]
    fn errors() {
        let cases: &[(String, &str)] = &[
            (
                format!("[router]\n{SERVERS}mcr-pull-after-error-timeout = 10\n"),
                "mcr-pull-after-error-timeout = 10 is out of range 60..3600 seconds (default 120)",
            ),
            (
                format!("[router]\n{SERVERS}strategies = [\"nope\"]\n"),
                "[router]: strategy \"nope\" does not exist (known strategies: default)",
            ),
            (
                "[router]\nnode = \"r1\"\n".to_owned(),
                "[router]: missing servers",
            ),
            (
                "[router]\nservers = [{ url = \"ftp://x\", application = \"r\", api-key = \"short\" }]\n"
                    .to_owned(),
                "url must start with http://",
            ),
            (
                "[router]\nservers = [{ url = \"ftp://x\", application = \"r\", api-key = \"short\" }]\n"
                    .to_owned(),
                "api-key must be at least 16 characters long",
            ),
        ];
        for (text, needle) in cases {
            let err = crate::parse(text, "t.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(needle), "{text}\n=> {err}");
        }
    }
}
