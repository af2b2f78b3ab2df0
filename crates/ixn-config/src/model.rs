//! The validated configuration: server settings, options, and the business process.
//!
//! Values of these types exist only after the whole file was validated, so code that receives a
//! [`BusinessProcess`] may trust every reference in it (a view's queue exists, a submitter's
//! view exists, names are unique within their tenant).

use std::fmt;
use std::path::PathBuf;

use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{ClientKind, CustomProperty, WorkbinOwnerType};

use crate::apikey::{self, KeyDigest};

/// The whole configuration file.
#[derive(Clone, PartialEq, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub settings: Settings,
    pub process: BusinessProcess,
    /// Event loggers (`[[loggers]]`), read at start only.
    pub loggers: Vec<crate::loggers::LoggerConfig>,
    /// `[router]`: how an `ixn router` process runs, read at start only.
    pub router: Option<crate::router::RouterConfig>,
}

/// How this process runs: read once at start, never hot-applied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServerConfig {
    /// `host:port` of the HTTP + WebSocket listener.
    pub listen: String,
    /// `sqlite://…` or `postgres://…`; `None` lets the binary pick SQLite in `data_dir`.
    pub store: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Distinguishes servers sharing one store in generated interaction ids (0..=3843).
    pub node_id: u16,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest WebSocket frame or HTTP body accepted, in bytes.
    pub max_frame_size: usize,
    /// Whether reporting events are kept in the outbox while no event logger is configured
    /// (for a logger added later); otherwise they go only to subscribed clients.
    pub keep_events_without_loggers: bool,
    /// Whether `ixn server` runs a router in its own process for the tenants with strategies
    /// (instead of, or besides, `ixn router` processes).
    pub route_in_process: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: defaults::LISTEN.to_owned(),
            store: None,
            data_dir: None,
            node_id: 0,
            tls_cert: None,
            tls_key: None,
            max_frame_size: defaults::MAX_FRAME_SIZE,
            keep_events_without_loggers: false,
            route_in_process: false,
        }
    }
}

/// Server options under their product-family names; a running server applies changes at once.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Settings {
    pub collect_request_counters: bool,
    pub collect_error_counters: bool,
    pub collect_esp_error_counters: bool,
    pub max_interactions_per_snapshot: u32,
    pub delivering_timeout_s: u32,
    pub handling_timeout_min: u32,
    pub routing_timeout_min: u32,
    /// How long stopped interactions are kept; 0 keeps them forever.
    pub history_retention_min: u32,
    pub purge_batch_size: u32,
    /// How long a router's pull may wait for work before it is answered empty.
    pub max_pull_wait_s: u32,
    pub allow_multiple_agent_connections: MultipleConnections,
    /// How long a disconnected desktop keeps its agent logged in (its invites stay too); a
    /// reconnect within it resumes, after it the agent is logged out and its invites revoked.
    pub agent_grace_period_s: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            collect_request_counters: false,
            collect_error_counters: false,
            collect_esp_error_counters: false,
            max_interactions_per_snapshot: 500,
            delivering_timeout_s: 30,
            handling_timeout_min: 180,
            routing_timeout_min: 720,
            history_retention_min: 10_080,
            purge_batch_size: 1000,
            max_pull_wait_s: 10,
            allow_multiple_agent_connections: MultipleConnections::Allow,
            agent_grace_period_s: 30,
        }
    }
}

/// Built-in defaults shared by [`Default`] impls, the reader and the documentation tests.
pub(crate) mod defaults {
    pub const LISTEN: &str = "127.0.0.1:7070";
    pub const MAX_FRAME_SIZE: usize = 1 << 20;
    pub const TENANT: &str = "default";
    /// Empty: submission order.
    pub const ORDER: &str = "";
}

/// What happens when an agent logs in again from a second connection
/// (`allow-multiple-agent-connections`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MultipleConnections {
    /// `true`: both connections stay.
    Allow,
    /// `false`: the second login is refused.
    Deny,
    /// `force-logout`: the first connection's agent is logged out.
    ForceLogout,
}

impl MultipleConnections {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "true",
            Self::Deny => "false",
            Self::ForceLogout => "force-logout",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Allow, Self::Deny, Self::ForceLogout]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The business process: the data a contact-center engineer edits, validated as a whole and
/// hot-applied atomically.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct BusinessProcess {
    pub tenants: Vec<Tenant>,
    pub media_types: Vec<MediaType>,
    pub queues: Vec<Queue>,
    pub views: Vec<View>,
    pub workbins: Vec<Workbin>,
    pub submitters: Vec<Submitter>,
    /// Global across tenants, like the product family's custom properties.
    pub custom_properties: Vec<CustomProperty>,
    pub applications: Vec<Application>,
    pub agents: Vec<crate::agents::AgentDef>,
    pub agent_groups: Vec<crate::agents::AgentGroup>,
    pub places: Vec<crate::agents::PlaceDef>,
    pub capacity_rules: Vec<crate::agents::CapacityRule>,
    /// Routing strategies (`[[strategies]]`); the built-in `default` per tenant when none is given.
    pub strategies: Vec<crate::strategies::Strategy>,
}

impl BusinessProcess {
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    pub fn media_type(&self, name: &str) -> Option<&MediaType> {
        self.media_types.iter().find(|m| m.name == name)
    }

    pub fn queue(&self, tenant: &str, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.tenant == tenant && q.name == name)
    }

    pub fn view(&self, tenant: &str, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.tenant == tenant && v.name == name)
    }

    /// The views over one queue, in file order.
    pub fn views_of_queue<'a>(&'a self, tenant: &'a str, queue: &'a str) -> impl Iterator<Item = &'a View> {
        self.views
            .iter()
            .filter(move |v| v.tenant == tenant && v.queue == queue)
    }

    pub fn workbin(&self, tenant: &str, name: &str) -> Option<&Workbin> {
        self.workbins
            .iter()
            .find(|w| w.tenant == tenant && w.name == name)
    }

    pub fn submitter(&self, tenant: &str, name: &str) -> Option<&Submitter> {
        self.submitters
            .iter()
            .find(|s| s.tenant == tenant && s.name == name)
    }

    /// Every submitter (enabled or not) feeding `strategy`; callers check `enabled`, because a
    /// strategy whose submitters are all disabled answers differently from an unknown one.
    pub fn submitters_for_strategy<'a>(
        &'a self,
        tenant: &'a str,
        strategy: &'a str,
    ) -> impl Iterator<Item = &'a Submitter> {
        self.submitters
            .iter()
            .filter(move |s| s.tenant == tenant && s.strategy == strategy)
    }

    pub fn custom_property(&self, name: &str) -> Option<&CustomProperty> {
        self.custom_properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn application(&self, name: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.name == name)
    }

    /// The application whose API key is `api_key`. Every application is compared, in constant
    /// time, so timing reveals neither the key nor which application matched.
    pub fn application_by_key(&self, api_key: &str) -> Option<&Application> {
        let presented = apikey::digest(api_key);
        let mut found = None;
        for app in &self.applications {
            if apikey::ct_eq(&app.key, &presented) && found.is_none() {
                found = Some(app);
            }
        }
        found
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tenant {
    pub name: String,
    pub description: Option<String>,
}

/// A media type (chat, email, …); global across tenants.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MediaType {
    pub name: String,
    /// Overrides the server's `handling-timeout` for interactions of this media type.
    pub handling_timeout_min: Option<u32>,
    pub description: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Queue {
    pub name: String,
    pub tenant: String,
    pub description: Option<String>,
}

/// A selection rule over one queue: which interactions routers may pull, in which order.
#[derive(Clone, PartialEq, Debug)]
pub struct View {
    pub name: String,
    pub tenant: String,
    pub queue: String,
    pub condition: Condition,
    pub order: OrderBy,
    pub check_interval_s: u32,
    /// Most interactions selected by this view that may be in flight at once; 0 = unlimited.
    pub limit: u32,
    /// Minimum time before an interaction returned to the queue is selected again.
    pub freeze_interval_s: u32,
    pub enabled: bool,
    pub description: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Workbin {
    pub name: String,
    pub tenant: String,
    pub owner_type: WorkbinOwnerType,
    pub description: Option<String>,
}

/// Binds a view to a routing strategy: routers serving `strategy` get what `view` selects.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Submitter {
    pub name: String,
    pub tenant: String,
    pub view: String,
    pub strategy: String,
    /// Most interactions from this submitter held by routers at once.
    pub max_in_flight: u32,
    pub enabled: bool,
}

/// A client allowed to connect, and the key it proves itself with.
///
/// Only the SHA-256 digest of the key is kept, whether the file gave the key in clear or
/// hashed, so a memory dump or a `Debug` print never shows a usable key.
#[derive(Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub kind: ClientKind,
    pub tenant: String,
    key: KeyDigest,
}

impl Application {
    /// An application with a clear-text key, e.g. the admin key the server generates at start.
    /// The caller keeps names and keys unique; the file reader checks its own.
    pub fn new(name: impl Into<String>, kind: ClientKind, tenant: impl Into<String>, api_key: &str) -> Self {
        Self::with_key_digest(name, kind, tenant, apikey::digest(api_key))
    }

    pub(crate) fn with_key_digest(
        name: impl Into<String>,
        kind: ClientKind,
        tenant: impl Into<String>,
        key: KeyDigest,
    ) -> Self {
        Application {
            name: name.into(),
            kind,
            tenant: tenant.into(),
            key,
        }
    }

    /// Whether `api_key` is this application's key (constant time).
    pub fn key_matches(&self, api_key: &str) -> bool {
        apikey::ct_eq(&self.key, &apikey::digest(api_key))
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}
