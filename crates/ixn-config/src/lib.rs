//! ixn's configuration file: `[server]` (how the process runs), `[settings]` (server options under
//! their product-family names) and the business process (tenants, media types, queues, views,
//! workbins, submitters, custom properties, applications).
//!
//! [`parse`] validates the file as a whole and reports every problem at once, each at the
//! `file:line:column` of the offending value; a [`Config`] therefore only exists when valid.
//!
//! Architecture invariant: this crate is pure. It takes text and returns values; apart from the
//! [`load_file`] convenience it does no I/O, and it knows nothing of the network, the store or
//! the engine (which decide what applying a configuration means).

mod agents;
mod apikey;
mod error;
pub mod loggers;
mod model;
mod reader;
mod router;
mod sections;
mod strategies;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

use toml::de::DeTable;

pub use agents::{ANY_MEDIA, AgentDef, AgentGroup, CapacityRule, PlaceDef};
pub use error::{ConfigError, ConfigErrors};
pub use ixn_model::ClientKind;
pub use loggers::{
    AmqpOptions, ColumnType, CustomColumn, CustomData, EventFilter, EventLogOptions, FileOptions,
    KafkaOptions, LoggerConfig, NatsOptions, ReportTable, ScriptOptions, ScriptSource, SinkConfig,
    StompOptions, WebhookOptions,
};
pub use model::{
    Application, BusinessProcess, Config, MediaType, MultipleConnections, Queue, ServerConfig, Settings,
    Submitter, Tenant, View, Workbin,
};
pub use router::{DEFAULT_NODE, DEFAULT_PULL_AFTER_ERROR_S, DEFAULT_PULL_BATCH, RouterConfig, RouterServer};
pub use strategies::{
    DEFAULT_STRATEGY, FinalAction, Overflow, Policy, PriorityRaise, ScriptCode, Strategy, StrategyScript,
    StrategyStep,
};

use error::Diagnostics;
use reader::Fields;

/// The built-in business process of `ixn serve`, used when a file defines none: tenant
/// `default`, media types `chat` and `email`, queue `inbound` with view `inbound-all` and
/// submitter `inbound-default` (strategy `default`), queue `orchestration_system`, workbins
/// `drafts` (agent) and `team` (agent group). No applications: the server adds its own admin key.
pub const DEFAULT_PROCESS_TOML: &str = include_str!("default_process.toml");

/// Parses and validates a whole configuration file. `file` names it in error messages.
///
/// A file without any business-process table (`[[tenants]]`, `[[queues]]`, …) gets the
/// built-in process ([`DEFAULT_PROCESS_TOML`]); a file with any of them defines the whole process.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let mut d = Diagnostics::new(file, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // A recovered document is a guess; checking it would report errors that are not there.
        for e in syntax_errors {
            d.at(&e.span().unwrap_or(0..0), format!("TOML syntax: {}", e.message()));
        }
        d.finish()?;
    }

    let mut fields = Fields::new(root.get_ref(), root.span(), "top level");
    let mut draft = sections::read_root(&mut fields, &mut d);
    let strategy_drafts = strategies::read(&mut fields, &mut d);
    let router_draft = router::read(&mut fields, &mut d);
    fields.finish(&mut d);

    let (server, settings, has_process) = (draft.server.clone(), draft.settings.clone(), draft.has_process);
    let loggers = std::mem::take(&mut draft.loggers);
    let known = strategies::KnownNames::of(&draft, has_process, builtin_process);
    let process = validate::process(draft, &mut d);
    let strategies = strategies::validate(strategy_drafts, &known, &mut d);
    let router = router_draft.map(|r| router::validate(r, &strategies, &mut d));
    d.finish()?;
    let mut process = match process {
        Some(p) if has_process => p,
        _ => builtin_process(),
    };
    process.strategies = strategies;
    Ok(Config {
        server,
        settings,
        process,
        loggers,
        router,
    })
}

/// Reads and parses a file; a read failure is reported like a parse error, at line 0.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            column: 0,
            message: format!("cannot read the configuration file: {e}"),
        }])),
    }
}

fn builtin_process() -> BusinessProcess {
    match parse(DEFAULT_PROCESS_TOML, "<built-in>") {
        Ok(config) => config.process,
        // The built-in text is a constant checked by the tests; an empty process beats a panic.
        Err(_) => BusinessProcess::default(),
    }
}

impl Config {
    /// Default `[server]` and `[settings]` with the built-in business process.
    pub fn builtin_default() -> Config {
        Config {
            server: ServerConfig::default(),
            settings: Settings::default(),
            process: builtin_process(),
            loggers: Vec::new(),
            router: None,
        }
    }

    /// Adds an application that is not in the file, such as the generated admin key.
    pub fn with_application(mut self, app: Application) -> Config {
        self.process.applications.push(app);
        self
    }
}
