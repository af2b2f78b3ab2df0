//! Kinds of client application. Each kind may send only its own requests (the protocol crate
//! holds that table); the business process gives every application its kind and tenant.

use serde::{Deserialize, Serialize};

/// What a connected application is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// Chat, e-mail, SMS servers and capture points: submit and own interactions.
    MediaServer,
    /// An agent's desktop: pulls, handles, places, stops.
    AgentDesktop,
    /// A routing engine: pulls through submitters and routes.
    Router,
    /// Reporting engines: subscribe to reporting events, take snapshots.
    Reporting,
    /// Third-party servers answering ESP requests.
    EspServer,
    /// A cluster proxy relaying for other clients.
    Proxy,
    /// Operators and tools: may send every request.
    Admin,
}

impl ClientKind {
    pub const ALL: [ClientKind; 7] = [
        Self::MediaServer,
        Self::AgentDesktop,
        Self::Router,
        Self::Reporting,
        Self::EspServer,
        Self::Proxy,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MediaServer => "media-server",
            Self::AgentDesktop => "agent-desktop",
            Self::Router => "router",
            Self::Reporting => "reporting",
            Self::EspServer => "esp-server",
            Self::Proxy => "proxy",
            Self::Admin => "admin",
        }
    }

    /// Accepts `media-server`, `media_server` or `MediaServer`.
    pub fn parse(s: &str) -> Option<ClientKind> {
        let norm: String = s.chars().filter(|c| *c != '-' && *c != '_').collect();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().replace('-', "").eq_ignore_ascii_case(&norm))
    }
}

impl std::fmt::Display for ClientKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
