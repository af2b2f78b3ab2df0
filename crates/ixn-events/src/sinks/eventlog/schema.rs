//! The event log's tables (rpt_interaction, rpt_agent, rpt_esp, rpt_custom): their columns, the
//! custom-data columns added from the mapping sections, which table an event goes to, and the
//! row values of an event. Both SQL engines build their statements from these definitions, so
//! they cannot drift apart.

use std::collections::BTreeMap;

use ixn_config::{ColumnType, CustomColumn, LoggerConfig, ReportTable};
use ixn_model::userdata::ValueRef;
use ixn_model::{Timestamp, UserData};
use ixn_protocol::{ReportingEvent, ReportingEventKind as K};

/// SQL type of a column, as both engines spell it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SqlType {
    BigInt,
    Text,
    /// A string custom column of at most this many characters.
    Varchar(u32),
}

/// One cell.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub ty: SqlType,
    /// Where a custom-data column takes its value from.
    pub source: Option<CustomSource>,
}

#[derive(Clone, Debug)]
pub(crate) enum CustomSource {
    /// A user-data key of the event.
    UserData(CustomColumn),
    /// A field of the ESP call description (`esp-service-data`).
    EspCall(CustomColumn),
}

/// One table with its base and custom columns.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: Vec<Column>,
    /// Number of base columns (created by the migration); the rest are custom.
    pub base: usize,
}

/// Index of each table in [`Schema::tables`].
pub(crate) const INTERACTION: usize = 0;
pub(crate) const AGENT: usize = 1;
pub(crate) const ESP: usize = 2;
pub(crate) const CUSTOM: usize = 3;

const COMMON: &[(&str, SqlType)] = &[
    ("seq", SqlType::BigInt),
    ("event_id", SqlType::BigInt),
    ("event_name", SqlType::Text),
    ("event_time", SqlType::BigInt),
    ("tenant", SqlType::Text),
    ("interaction_id", SqlType::Text),
    ("media_type", SqlType::Text),
    ("actor_kind", SqlType::Text),
    ("actor_name", SqlType::Text),
    ("party_kind", SqlType::Text),
    ("party_name", SqlType::Text),
    ("reason_code", SqlType::BigInt),
    ("reason", SqlType::Text),
    ("custom_event_id", SqlType::BigInt),
    ("user_data", SqlType::Text),
    ("payload", SqlType::Text),
];

const INTERACTION_EXTRA: &[(&str, SqlType)] = &[
    ("queue", SqlType::Text),
    ("previous_queue", SqlType::Text),
    ("workbin", SqlType::Text),
    ("workbin_owner", SqlType::Text),
    ("state", SqlType::Text),
    ("changes", SqlType::Text),
];

const AGENT_EXTRA: &[(&str, SqlType)] = &[("agent", SqlType::Text)];

const ESP_EXTRA: &[(&str, SqlType)] = &[
    ("esp_request_id", SqlType::BigInt),
    ("esp_app", SqlType::Text),
    ("esp_service", SqlType::Text),
    ("esp_method", SqlType::Text),
    ("esp_outcome", SqlType::Text),
    ("esp_duration_ms", SqlType::BigInt),
];

/// Indexes created by the migration: (name, table, columns).
pub(crate) const INDEXES: &[(&str, &str, &str)] = &[
    ("ix_rpt_interaction_ixn", "rpt_interaction", "interaction_id, seq"),
    (
        "ix_rpt_interaction_event",
        "rpt_interaction",
        "event_id, event_time",
    ),
    ("ix_rpt_agent_time", "rpt_agent", "event_time"),
    ("ix_rpt_esp_ixn", "rpt_esp", "interaction_id"),
    ("ix_rpt_custom_time", "rpt_custom", "event_time"),
];

/// The tables of one logger, with its custom-data columns and custom-event routing.
#[derive(Clone, Debug)]
pub(crate) struct Schema {
    pub tables: [Table; 4],
    pub custom_events: BTreeMap<u32, ReportTable>,
    pub log_userdata: bool,
}

fn base_table(name: &'static str, extra: &[(&str, SqlType)]) -> Table {
    let columns: Vec<Column> = COMMON
        .iter()
        .chain(extra)
        .map(|(n, ty)| Column {
            name: (*n).to_owned(),
            ty: *ty,
            source: None,
        })
        .collect();
    Table {
        name,
        base: columns.len(),
        columns,
    }
}

fn custom_type(c: &CustomColumn) -> SqlType {
    match c.ty {
        ColumnType::String => SqlType::Varchar(c.length.unwrap_or(64)),
        ColumnType::Integer | ColumnType::Timestamp => SqlType::BigInt,
    }
}

impl Schema {
    pub(crate) fn new(cfg: &LoggerConfig) -> Schema {
        let mut tables = [
            base_table("rpt_interaction", INTERACTION_EXTRA),
            base_table("rpt_agent", AGENT_EXTRA),
            base_table("rpt_esp", ESP_EXTRA),
            base_table("rpt_custom", &[]),
        ];
        let cd = &cfg.custom_data;
        let mappings: [(usize, &Vec<CustomColumn>, bool); 5] = [
            (INTERACTION, &cd.itx, false),
            (ESP, &cd.esp, false),
            (ESP, &cd.esp_service, true),
            (AGENT, &cd.agent, false),
            (CUSTOM, &cd.custom, false),
        ];
        for (table, columns, from_esp_call) in mappings {
            for c in columns {
                let t = &mut tables[table];
                if t.columns.iter().any(|x| x.name.eq_ignore_ascii_case(&c.column)) {
                    // A custom column may not shadow a base column (nor appear twice).
                    tracing::warn!(table = t.name, column = %c.column, "custom column ignored: the name is taken");
                    continue;
                }
                let source = if from_esp_call {
                    CustomSource::EspCall(c.clone())
                } else {
                    CustomSource::UserData(c.clone())
                };
                t.columns.push(Column {
                    name: c.column.clone(),
                    ty: custom_type(c),
                    source: Some(source),
                });
            }
        }
        Schema {
            tables,
            custom_events: cfg.custom_events.clone(),
            log_userdata: cfg.filter.log_userdata,
        }
    }

    /// Which table stores this event.
    pub(crate) fn table_of(&self, e: &ReportingEvent) -> usize {
        match e.event {
            K::AgentLogin
            | K::AgentLogout
            | K::MediaAdded
            | K::MediaRemoved
            | K::NotReadyForMedia
            | K::ReadyForMedia
            | K::DoNotDisturbOn
            | K::DoNotDisturbOff
            | K::AgentStateReasonChanged
            | K::MediaStateReasonChanged => AGENT,
            K::ExternalServiceRequested | K::ExternalServiceResponded => ESP,
            K::CustomReporting => match e.custom_event_id.and_then(|id| self.custom_events.get(&id)) {
                Some(ReportTable::Interaction) => INTERACTION,
                Some(ReportTable::Agent) => AGENT,
                Some(ReportTable::Custom) | None => CUSTOM,
            },
            _ => INTERACTION,
        }
    }

    /// The row of `e` in table `table`, in column order.
    pub(crate) fn row(&self, table: usize, e: &ReportingEvent) -> Vec<Val> {
        self.tables[table]
            .columns
            .iter()
            .map(|c| match &c.source {
                None => base_value(&c.name, e),
                Some(_) if !self.log_userdata => Val::Null,
                Some(CustomSource::UserData(m)) => {
                    e.user_data.as_ref().map_or(Val::Null, |ud| custom_value(m, ud))
                }
                Some(CustomSource::EspCall(m)) => esp_call_value(m, e),
            })
            .collect()
    }
}

fn text(s: Option<&str>) -> Val {
    s.map_or(Val::Null, |s| Val::Text(s.to_owned()))
}

fn json<T: serde::Serialize>(v: Option<&T>) -> Val {
    v.and_then(|v| serde_json::to_string(v).ok())
        .map_or(Val::Null, Val::Text)
}

fn base_value(column: &str, e: &ReportingEvent) -> Val {
    match column {
        "seq" => Val::Int(e.seq as i64),
        "event_id" => Val::Int(i64::from(e.event_id)),
        "event_name" => Val::Text(e.event.name().to_owned()),
        "event_time" => Val::Int(e.time.0),
        "tenant" => Val::Text(e.tenant.clone()),
        "interaction_id" => text(e.interaction_id.as_deref()),
        "media_type" => text(e.media_type.as_deref()),
        "actor_kind" => text(e.actor.as_ref().map(|p| p.kind.as_str())),
        "actor_name" => text(e.actor.as_ref().map(|p| p.name.as_str())),
        "party_kind" => text(e.party.as_ref().map(|p| p.kind.as_str())),
        "party_name" => text(e.party.as_ref().map(|p| p.name.as_str())),
        "reason_code" => e.reason.as_ref().and_then(|r| r.code).map_or(Val::Null, Val::Int),
        "reason" => json(e.reason.as_ref()),
        "custom_event_id" => e.custom_event_id.map_or(Val::Null, |id| Val::Int(i64::from(id))),
        "user_data" => json(e.user_data.as_ref()),
        "payload" => json(Some(e)),
        "queue" => text(e.queue.as_deref()),
        "previous_queue" => text(e.previous_queue.as_deref()),
        "workbin" => text(e.workbin.as_deref()),
        "workbin_owner" => text(e.workbin_owner.as_deref()),
        "state" => text(e.state.map(|s| s.as_str())),
        "changes" => json(e.changes.as_ref()),
        "agent" => {
            let who = e.party.as_ref().or(e.actor.as_ref());
            text(who.map(|p| p.name.as_str()))
        }
        "esp_request_id" => e
            .esp
            .as_ref()
            .map_or(Val::Null, |c| Val::Int(c.request_id as i64)),
        "esp_app" => text(e.esp.as_ref().map(|c| c.app_name.as_str())),
        "esp_service" => text(e.esp.as_ref().map(|c| c.service.as_str())),
        "esp_method" => text(e.esp.as_ref().map(|c| c.method.as_str())),
        "esp_outcome" => text(e.esp.as_ref().and_then(|c| c.outcome.as_deref())),
        "esp_duration_ms" => e
            .esp
            .as_ref()
            .and_then(|c| c.duration_ms)
            .map_or(Val::Null, |d| Val::Int(d as i64)),
        _ => Val::Null,
    }
}

/// A user-data value converted to the column's type; `Null` when absent or not convertible.
fn custom_value(m: &CustomColumn, ud: &UserData) -> Val {
    match (m.ty, ud.get(&m.key)) {
        (_, None) => Val::Null,
        (ColumnType::String, Some(ValueRef::Str(s))) => {
            Val::Text(s.chars().take(m.length.unwrap_or(64) as usize).collect())
        }
        (ColumnType::String, Some(ValueRef::Int(i))) => Val::Text(i.to_string()),
        (ColumnType::Integer | ColumnType::Timestamp, Some(ValueRef::Int(i))) => Val::Int(i),
        (ColumnType::Integer, Some(ValueRef::Str(s))) => s.trim().parse().map_or(Val::Null, Val::Int),
        (ColumnType::Timestamp, Some(ValueRef::Str(s))) => {
            Timestamp::parse(s).map_or(Val::Null, |t| Val::Int(t.0))
        }
        _ => Val::Null,
    }
}

/// `esp-service-data`: the mapped key names a field of the ESP call description.
fn esp_call_value(m: &CustomColumn, e: &ReportingEvent) -> Val {
    let Some(c) = &e.esp else { return Val::Null };
    let as_text = |s: Option<&str>| match m.ty {
        ColumnType::String => text(s),
        _ => Val::Null,
    };
    match m.key.as_str() {
        "app_name" | "app-name" => as_text(Some(&c.app_name)),
        "app_type" | "app-type" => as_text(c.app_type.as_deref()),
        "service" => as_text(Some(&c.service)),
        "method" => as_text(Some(&c.method)),
        "outcome" => as_text(c.outcome.as_deref()),
        "fault_string" | "fault-string" => as_text(c.fault_string.as_deref()),
        "fault_code" | "fault-code" => c.fault_code.map_or(Val::Null, Val::Int),
        "duration_ms" | "duration-ms" => c.duration_ms.map_or(Val::Null, |d| Val::Int(d as i64)),
        "request_id" | "request-id" => Val::Int(c.request_id as i64),
        _ => Val::Null,
    }
}
