//! `[[loggers]]`: event loggers, each draining the reporting outbox into one destination
//! (`delivery-protocol`) with its own batching, filtering and custom-data mapping.
//!
//! Option names and ranges follow the product family's Event Logger (`batch-size`,
//! `storing-timeout`, `max-queue-size`, `event-filtering`, the custom data sections,
//! `custom-events`); destination options sit flat in the logger's table. Loggers are read at
//! start only: changing them needs a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::de::DeValue;

use crate::error::Diagnostics;
use crate::reader::{At, Fields};
use crate::sections::name_problem;

/// One named event logger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LoggerConfig {
    pub name: String,
    /// Where events go (`delivery-protocol` and its options).
    pub sink: SinkConfig,
    /// Events per write (1–5,000, default 500).
    pub batch_size: u32,
    /// Longest wait before a partial batch is written, in milliseconds (500–60,000, default 1,000).
    pub storing_timeout_ms: u32,
    /// Events kept in memory ahead of delivery (10,000–100,000, default 20,000); beyond it the
    /// logger reads the outbox on disk instead, never discarding anything.
    pub max_queue_size: u32,
    /// Wait after a failed write before the next attempt (first step of a capped backoff).
    pub reconnect_timeout_ms: u32,
    pub filter: EventFilter,
    /// The five custom data sections: user-data keys copied into extra columns.
    pub custom_data: CustomData,
    /// `custom-events`: custom event id → table storing its EventCustomReporting.
    pub custom_events: BTreeMap<u32, ReportTable>,
}

/// Where a logger delivers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SinkConfig {
    EventLog(EventLogOptions),
    Nats(NatsOptions),
    Amqp(AmqpOptions),
    Stomp(StompOptions),
    Kafka(KafkaOptions),
    File(FileOptions),
    Webhook(WebhookOptions),
    Script(ScriptOptions),
}

impl SinkConfig {
    /// The `delivery-protocol` value.
    pub fn protocol(&self) -> &'static str {
        match self {
            SinkConfig::EventLog(_) => "event-log",
            SinkConfig::Nats(_) => "nats",
            SinkConfig::Amqp(_) => "amqp",
            SinkConfig::Stomp(_) => "stomp",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::File(_) => "file",
            SinkConfig::Webhook(_) => "webhook",
            SinkConfig::Script(_) => "script",
        }
    }
}

/// `event-filtering`: which events a logger keeps. A filtered-out event counts as delivered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventFilter {
    /// Agent activity events (login, logout, media, ready / not ready, DND, reasons: 170–179).
    pub log_agent_state: bool,
    /// Interaction events whose endpoint is an agent (party added / removed by an agent,
    /// invited, revoked, rejected).
    pub log_agent_activity: bool,
    /// Placed in / taken from a queue or workbin (151–154).
    pub log_queue: bool,
    /// Party added / removed whose party is a strategy (router).
    pub log_strategy: bool,
    /// External service requested / responded (180, 181).
    pub log_esp_service: bool,
    /// False strips user data (and the custom-data columns filled from it).
    pub log_userdata: bool,
    /// When not empty, only these event ids are kept.
    pub by_id: Vec<u32>,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            log_agent_state: true,
            log_agent_activity: true,
            log_queue: true,
            log_strategy: true,
            log_esp_service: true,
            log_userdata: true,
            by_id: Vec::new(),
        }
    }
}

/// Type of a custom-data column.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ColumnType {
    String,
    Integer,
    Timestamp,
}

/// One custom-data option: `KEY = "column;type;length"`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CustomColumn {
    /// User-data key (case-sensitive).
    pub key: String,
    /// Column added to the table (a plain SQL identifier).
    pub column: String,
    pub ty: ColumnType,
    /// Maximum length of a string column (default 64); `None` for other types.
    pub length: Option<u32>,
}

/// The five custom data sections.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CustomData {
    /// `itx-custom-data` → rpt_interaction.
    pub itx: Vec<CustomColumn>,
    /// `esp-custom-data` → rpt_esp (user data of the ESP events).
    pub esp: Vec<CustomColumn>,
    /// `esp-service-data` → rpt_esp (the service's own data of the ESP events).
    pub esp_service: Vec<CustomColumn>,
    /// `agent-custom-data` → rpt_agent (user data of EventCustomReporting stored there).
    pub agent: Vec<CustomColumn>,
    /// `custom-customdata` → rpt_custom.
    pub custom: Vec<CustomColumn>,
}

/// A table of the event log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReportTable {
    Interaction,
    Agent,
    Custom,
}

impl ReportTable {
    pub fn table_name(self) -> &'static str {
        match self {
            ReportTable::Interaction => "rpt_interaction",
            ReportTable::Agent => "rpt_agent",
            ReportTable::Custom => "rpt_custom",
        }
    }
}

/// `event-log`: the rpt_* tables in SQLite or PostgreSQL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventLogOptions {
    /// `sqlite://PATH` or `postgres://…`; may differ from the interaction store.
    pub url: String,
    /// PostgreSQL schema of the tables (created when missing); `None` uses the search path.
    pub schema_name: Option<String>,
    /// Minutes after an interaction stopped before its rpt_interaction rows are deleted; 0 keeps
    /// everything.
    pub interaction_retention_min: u32,
    /// Minutes after which rpt_custom rows are deleted; 0 keeps everything.
    pub custom_retention_min: u32,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NatsOptions {
    pub url: String,
    pub subject: String,
    pub stream: String,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AmqpOptions {
    pub url: String,
    pub exchange: String,
    pub routing_key: String,
    /// Persistent delivery mode.
    pub recoverable: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StompOptions {
    /// `host:port`.
    pub address: String,
    pub destination: String,
    pub login: Option<String>,
    pub passcode: Option<String>,
    pub tls: bool,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KafkaOptions {
    pub brokers: Vec<String>,
    pub topic: String,
    pub partitions: i32,
}

/// `file`: JSON lines with size-based rotation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FileOptions {
    pub path: PathBuf,
    /// Rotate once the file reaches this many bytes.
    pub max_file_size: u64,
    /// Rotated files kept (`PATH.1` … `PATH.N`); 0 keeps none.
    pub max_files: u32,
}

/// `webhook`: HTTP POST of a JSON array per batch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookOptions {
    pub url: String,
    /// Key of the `X-Ixn-Signature` HMAC-SHA256 header; no header when `None`.
    pub secret: Option<String>,
    pub timeout_ms: u32,
    /// Attempts within one delivery before the runner's reconnect-timeout takes over.
    pub max_retries: u32,
    /// First wait between attempts, doubled each time.
    pub retry_backoff_ms: u32,
}

/// `script`: a Rhai function called per batch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScriptOptions {
    pub source: ScriptSource,
    /// Operations one call may run (sandbox).
    pub max_operations: u64,
    /// Wall-clock limit of one call, in milliseconds.
    pub time_limit_ms: u32,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ScriptSource {
    File(PathBuf),
    Inline(String),
}

/// Defaults of the destination options, shared with the documentation.
pub mod defaults {
    pub const NATS_URL: &str = "nats://127.0.0.1:4222";
    pub const NATS_SUBJECT: &str = "ixn.events";
    pub const NATS_STREAM: &str = "IXN_EVENTS";
    pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    pub const AMQP_EXCHANGE: &str = "ixn.events";
    pub const AMQP_ROUTING_KEY: &str = "ixn.events";
    pub const STOMP_ADDRESS: &str = "127.0.0.1:61613";
    pub const STOMP_DESTINATION: &str = "/queue/ixn.events";
    pub const KAFKA_BROKER: &str = "127.0.0.1:9092";
    pub const KAFKA_TOPIC: &str = "ixn-events";
}

impl LoggerConfig {
    /// A logger with every option at its default.
    pub fn new(name: impl Into<String>, sink: SinkConfig) -> LoggerConfig {
        LoggerConfig {
            name: name.into(),
            sink,
            batch_size: 500,
            storing_timeout_ms: 1000,
            max_queue_size: 20_000,
            reconnect_timeout_ms: 10_000,
            filter: EventFilter::default(),
            custom_data: CustomData::default(),
            custom_events: BTreeMap::new(),
        }
    }
}

fn narrow<T: TryFrom<u64> + Default>(n: u64) -> T {
    // Ranges checked by the reader all fit the target type.
    T::try_from(n).unwrap_or_default()
}

/// Reads every `[[loggers]]` table; names must be unique.
pub(crate) fn read_loggers(root: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Vec<LoggerConfig> {
    let Some(items) = root.array_of_tables(d, "loggers") else {
        return Vec::new();
    };
    let mut out: Vec<LoggerConfig> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for mut f in items {
        let (name, logger) = read_logger(&mut f, d);
        if let Some(name) = name {
            if names.contains(&name.value) {
                d.at(&name.span, format!("logger {:?} is defined twice", name.value));
            }
            names.push(name.value);
        }
        out.extend(logger);
        f.finish(d);
    }
    out
}

/// The logger's name (when readable) and the logger (when valid).
fn read_logger(
    f: &mut Fields<'_, '_>,
    d: &mut Diagnostics<'_>,
) -> (Option<At<String>>, Option<LoggerConfig>) {
    let name = f.required_string(d, "name");
    if let Some(n) = &name {
        if let Some(problem) = name_problem(&n.value) {
            d.at(
                &n.span,
                format!("{}: logger name {:?} {problem}", f.context(), n.value),
            );
        }
        f.set_context(format!("logger {:?}", n.value));
    }
    let protocol = f.required_string(d, "delivery-protocol");
    let sink = protocol.and_then(|p| read_sink(f, d, &p));
    let batch_size = narrow(f.int(d, "batch-size", 1..=5000, 500, ""));
    let storing_timeout_ms = narrow(f.int(d, "storing-timeout", 500..=60_000, 1000, "milliseconds"));
    let max_queue_size = narrow(f.int(d, "max-queue-size", 10_000..=100_000, 20_000, ""));
    let reconnect_s: u32 = narrow(f.int(d, "reconnect-timeout", 1..=3600, 10, "seconds"));
    let filter = f.table(d, "event-filtering").map(|mut t| {
        let filter = read_filter(&mut t, d);
        t.finish(d);
        filter
    });
    let custom_data = CustomData {
        itx: read_columns(f, d, "itx-custom-data"),
        esp: read_columns(f, d, "esp-custom-data"),
        esp_service: read_columns(f, d, "esp-service-data"),
        agent: read_columns(f, d, "agent-custom-data"),
        custom: read_columns(f, d, "custom-customdata"),
    };
    let custom_events = read_custom_events(f, d);
    let logger = match (&name, sink) {
        (Some(name), Some(sink)) => Some(LoggerConfig {
            name: name.value.clone(),
            sink,
            batch_size,
            storing_timeout_ms,
            max_queue_size,
            reconnect_timeout_ms: reconnect_s.saturating_mul(1000),
            filter: filter.unwrap_or_default(),
            custom_data,
            custom_events,
        }),
        _ => None,
    };
    (name, logger)
}

fn string_or(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str, default: &str) -> String {
    f.string(d, key).map_or_else(|| default.to_owned(), |a| a.value)
}

fn non_empty(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, key: &'static str) -> Option<At<String>> {
    let v = f.string(d, key)?;
    if v.value.is_empty() {
        d.at(&v.span, format!("{}: {key} must not be empty", f.context()));
        return None;
    }
    Some(v)
}

const PROTOCOLS: &str = "event-log, nats, amqp, stomp, kafka, file, webhook, script";

fn read_sink(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, protocol: &At<String>) -> Option<SinkConfig> {
    Some(match protocol.value.as_str() {
        "event-log" => SinkConfig::EventLog(read_event_log(f, d)?),
        "nats" => SinkConfig::Nats(NatsOptions {
            url: string_or(f, d, "url", defaults::NATS_URL),
            subject: string_or(f, d, "subject", defaults::NATS_SUBJECT),
            stream: string_or(f, d, "stream", defaults::NATS_STREAM),
        }),
        "amqp" => SinkConfig::Amqp(AmqpOptions {
            url: string_or(f, d, "url", defaults::AMQP_URL),
            exchange: string_or(f, d, "exchange", defaults::AMQP_EXCHANGE),
            routing_key: string_or(f, d, "routing-key", defaults::AMQP_ROUTING_KEY),
            recoverable: f.bool(d, "recoverable", true),
        }),
        "stomp" => SinkConfig::Stomp(StompOptions {
            address: string_or(f, d, "address", defaults::STOMP_ADDRESS),
            destination: string_or(f, d, "destination", defaults::STOMP_DESTINATION),
            login: f.string(d, "login").map(|a| a.value),
            passcode: f.string(d, "passcode").map(|a| a.value),
            tls: f.bool(d, "tls", false),
            tls_ca_file: non_empty(f, d, "tls-ca-file").map(|a| PathBuf::from(a.value)),
            tls_server_name: f.string(d, "tls-server-name").map(|a| a.value),
        }),
        "kafka" => SinkConfig::Kafka(read_kafka(f, d)),
        "file" => SinkConfig::File(FileOptions {
            path: PathBuf::from(f.required_string(d, "path")?.value),
            max_file_size: f.int(d, "max-file-size", 4096..=1 << 40, 100 << 20, "bytes"),
            max_files: narrow(f.int(d, "max-files", 0..=1000, 10, "")),
        }),
        "webhook" => SinkConfig::Webhook(read_webhook(f, d)?),
        "script" => SinkConfig::Script(read_script(f, d)?),
        other => {
            d.at(
                &protocol.span,
                format!(
                    "{}: delivery-protocol {other:?} is not one of {PROTOCOLS}",
                    f.context()
                ),
            );
            return None;
        }
    })
}

fn read_event_log(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<EventLogOptions> {
    let url = f.required_string(d, "url");
    if let Some(u) = &url {
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|p| u.value.starts_with(p)) {
            d.at(
                &u.span,
                format!("{}: url must start with sqlite: or postgres://", f.context()),
            );
        }
    }
    let schema_name = f.string(d, "schema-name");
    if let Some(s) = &schema_name
        && !is_identifier(&s.value)
    {
        d.at(
            &s.span,
            format!(
                "{}: schema-name {:?} must be a plain identifier (letters, digits, _)",
                f.context(),
                s.value
            ),
        );
    }
    let interaction_retention_min = narrow(f.int(d, "interaction-retention", 0..=5_256_000, 0, "minutes"));
    let custom_retention_min = narrow(f.int(d, "custom-retention", 0..=5_256_000, 0, "minutes"));
    Some(EventLogOptions {
        url: url?.value,
        schema_name: schema_name.map(|s| s.value),
        interaction_retention_min,
        custom_retention_min,
    })
}

fn read_kafka(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> KafkaOptions {
    let mut brokers = vec![defaults::KAFKA_BROKER.to_owned()];
    if let Some(v) = f.take("brokers") {
        match v.get_ref() {
            DeValue::Array(items) if !items.is_empty() => {
                brokers = items
                    .iter()
                    .filter_map(|i| match i.get_ref() {
                        DeValue::String(s) => Some(s.to_string()),
                        _ => {
                            d.at(&i.span(), format!("{}: brokers must be strings", f.context()));
                            None
                        }
                    })
                    .collect();
            }
            _ => d.at(
                &v.span(),
                format!(
                    "{}: brokers must be a non-empty array of \"host:port\"",
                    f.context()
                ),
            ),
        }
    }
    KafkaOptions {
        brokers,
        topic: string_or(f, d, "topic", defaults::KAFKA_TOPIC),
        partitions: narrow(f.int(d, "partitions", 1..=10_000, 1, "")),
    }
}

fn read_webhook(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<WebhookOptions> {
    let url = f.required_string(d, "url");
    if let Some(u) = &url
        && !(u.value.starts_with("http://") || u.value.starts_with("https://"))
    {
        d.at(
            &u.span,
            format!("{}: url must start with http:// or https://", f.context()),
        );
    }
    let secret = non_empty(f, d, "secret").map(|a| a.value);
    let timeout_ms = narrow(f.int(d, "timeout", 100..=300_000, 10_000, "milliseconds"));
    let max_retries = narrow(f.int(d, "max-retries", 0..=100, 3, ""));
    let retry_backoff_ms = narrow(f.int(d, "retry-backoff", 10..=60_000, 500, "milliseconds"));
    Some(WebhookOptions {
        url: url?.value,
        secret,
        timeout_ms,
        max_retries,
        retry_backoff_ms,
    })
}

fn read_script(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> Option<ScriptOptions> {
    let file = non_empty(f, d, "script-file");
    let inline = non_empty(f, d, "script");
    let source = match (file, inline) {
        (Some(p), None) => Some(ScriptSource::File(PathBuf::from(p.value))),
        (None, Some(s)) => Some(ScriptSource::Inline(s.value)),
        (Some(_), Some(s)) => {
            d.at(
                &s.span,
                format!("{}: give script or script-file, not both", f.context()),
            );
            None
        }
        (None, None) => {
            d.at(
                &f.span(),
                format!("{}: missing key script-file (or script)", f.context()),
            );
            None
        }
    };
    let max_operations = f.int(d, "max-operations", 1000..=1_000_000_000, 1_000_000, "");
    let time_limit_ms = narrow(f.int(d, "time-limit", 10..=600_000, 5000, "milliseconds"));
    Some(ScriptOptions {
        source: source?,
        max_operations,
        time_limit_ms,
    })
}

fn read_filter(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> EventFilter {
    let mut filter = EventFilter {
        log_agent_state: f.bool(d, "log-agent-state", true),
        log_agent_activity: f.bool(d, "log-agent-activity", true),
        log_queue: f.bool(d, "log-queue", true),
        log_strategy: f.bool(d, "log-strategy", true),
        log_esp_service: f.bool(d, "log-esp-service", true),
        log_userdata: f.bool(d, "log-userdata", true),
        by_id: Vec::new(),
    };
    let Some(v) = f.take("event-filter-by-id") else {
        return filter;
    };
    // The family's comma-separated string, or a TOML array of integers.
    let ids: Option<Vec<u32>> = match v.get_ref() {
        DeValue::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect(),
        DeValue::Array(items) => items
            .iter()
            .map(|i| match i.get_ref() {
                DeValue::Integer(n) => n.as_str().parse().ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    match ids {
        Some(ids) => filter.by_id = ids,
        None => d.at(
            &v.span(),
            format!(
                "{}: event-filter-by-id must be event ids, as \"150,156\" or [150, 156]",
                f.context()
            ),
        ),
    }
    filter
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 48
}

fn read_columns(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>, section: &'static str) -> Vec<CustomColumn> {
    let Some(mut t) = f.table(d, section) else {
        return Vec::new();
    };
    let context = format!("{}: [{section}]", f.context());
    let mut out: Vec<CustomColumn> = Vec::new();
    for (key, value) in t.entries_raw() {
        let DeValue::String(s) = value.get_ref() else {
            d.at(
                &value.span(),
                format!("{context}: {key} must be a string \"column;type;length\""),
            );
            continue;
        };
        match parse_column(key, s) {
            Ok(c) => {
                if out.iter().any(|o| o.column.eq_ignore_ascii_case(&c.column)) {
                    d.at(
                        &value.span(),
                        format!("{context}: column {} is used twice", c.column),
                    );
                }
                out.push(c);
            }
            Err(problem) => d.at(&value.span(), format!("{context}: {key} = {s:?}: {problem}")),
        }
    }
    t.finish(d);
    out
}

/// Parses `column;type;length` (type and length optional: string, 64).
fn parse_column(key: &str, value: &str) -> Result<CustomColumn, String> {
    let mut parts = value.split(';').map(str::trim);
    let column = parts.next().unwrap_or_default().to_owned();
    if !is_identifier(&column) {
        return Err("the column must be a plain identifier (letters, digits, _)".to_owned());
    }
    let ty = match parts.next().unwrap_or("string") {
        "" | "string" => ColumnType::String,
        "integer" => ColumnType::Integer,
        "timestamp" => ColumnType::Timestamp,
        other => return Err(format!("type {other:?} is not one of string, integer, timestamp")),
    };
    let length = match (ty, parts.next()) {
        (ColumnType::String, None | Some("")) => Some(64),
        (ColumnType::String, Some(n)) => match n.parse::<u32>() {
            Ok(n) if (1..=4000).contains(&n) => Some(n),
            _ => return Err(format!("length {n:?} must be 1 to 4000")),
        },
        (_, None | Some("")) => None,
        (_, Some(_)) => return Err("only string columns have a length".to_owned()),
    };
    if parts.next().is_some() {
        return Err("expected at most column;type;length".to_owned());
    }
    Ok(CustomColumn {
        key: key.to_owned(),
        column,
        ty,
        length,
    })
}

fn read_custom_events(f: &mut Fields<'_, '_>, d: &mut Diagnostics<'_>) -> BTreeMap<u32, ReportTable> {
    let Some(mut t) = f.table(d, "custom-events") else {
        return BTreeMap::new();
    };
    let context = format!("{}: [custom-events]", f.context());
    let mut out = BTreeMap::new();
    for (key, value) in t.entries_raw() {
        let table = match value.get_ref() {
            DeValue::String(s) => match s.as_ref() {
                "rpt_interaction" | "interaction" => Some(ReportTable::Interaction),
                "rpt_agent" | "agent" => Some(ReportTable::Agent),
                "rpt_custom" | "custom" => Some(ReportTable::Custom),
                _ => None,
            },
            _ => None,
        };
        let Some(table) = table else {
            d.at(
                &value.span(),
                format!("{context}: {key} must be \"rpt_interaction\", \"rpt_agent\" or \"rpt_custom\""),
            );
            continue;
        };
        match key.parse::<u32>() {
            Ok(id) => {
                out.insert(id, table);
            }
            Err(_) => d.at(
                &value.span(),
                format!("{context}: {key:?} must be a custom event id (an integer)"),
            ),
        }
    }
    t.finish(d);
    out
}

#[cfg(test)]
mod tests;
