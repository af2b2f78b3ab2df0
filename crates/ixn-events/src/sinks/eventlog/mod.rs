//! `event-log`: reporting events as rows of rpt_interaction, rpt_agent, rpt_esp and rpt_custom in
//! SQLite or PostgreSQL (its own URL, possibly another database than the interaction store).
//!
//! Tables are created by numbered migrations recorded in `rpt_schema_migrations`; custom-data
//! columns are added when missing. Every row's primary key is the event's `seq`, so a batch
//! delivered again after a crash inserts nothing twice. Retention deletes the rows of stopped
//! interactions (and custom rows) after the configured minutes.
//!
//! Architecture note: this module owns the SQL of the rpt_* tables; the interaction store's SQL
//! stays in `ixn-store`.

mod postgres;
pub(crate) mod schema;
mod sqlite;

use std::time::{Duration, Instant};

use ixn_config::{EventLogOptions, LoggerConfig};
use ixn_model::Timestamp;
use ixn_protocol::ReportingEvent;

use crate::sink::{Sink, SinkError};
use schema::{Schema, Val};

/// How often retention runs (after a delivery).
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Rows of one batch grouped by table, in seq order within each.
pub(crate) type Rows = [Vec<Vec<Val>>; 4];

/// The connection of either engine.
#[derive(Debug)]
enum Engine {
    Sqlite(sqlite::SqliteLog),
    Postgres(postgres::PgLog),
}

/// The event-log sink; connects (and migrates) on first delivery.
#[derive(Debug)]
pub struct EventLogSink {
    opts: EventLogOptions,
    schema: Schema,
    engine: Option<Engine>,
    last_retention: Option<Instant>,
}

impl EventLogSink {
    pub fn new(opts: &EventLogOptions, logger: &LoggerConfig) -> EventLogSink {
        EventLogSink {
            opts: opts.clone(),
            schema: Schema::new(logger),
            engine: None,
            last_retention: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut Engine, SinkError> {
        if self.engine.is_none() {
            let url = self.opts.url.as_str();
            let engine = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Engine::Postgres(
                    postgres::PgLog::connect(url, self.opts.schema_name.as_deref(), &self.schema).await?,
                )
            } else {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(url)
                    .to_owned();
                Engine::Sqlite(sqlite::SqliteLog::open(path, &self.schema).await?)
            };
            self.engine = Some(engine);
        }
        self.engine
            .as_mut()
            .ok_or_else(|| SinkError::new("event log not connected"))
    }

    /// Deletes rows past their retention: rpt_interaction rows of interactions stopped before
    /// `now - interaction-retention`, rpt_custom rows older than `now - custom-retention`.
    /// Returns how many rows were deleted. Runs by itself at most once a minute.
    pub async fn purge(&mut self, now: Timestamp) -> Result<u64, SinkError> {
        let minutes = |m: u32| (m > 0).then(|| Timestamp(now.0 - i64::from(m) * 60_000));
        let stopped_before = minutes(self.opts.interaction_retention_min);
        let custom_before = minutes(self.opts.custom_retention_min);
        if stopped_before.is_none() && custom_before.is_none() {
            return Ok(0);
        }
        match self.connect().await? {
            Engine::Sqlite(s) => s.purge(stopped_before, custom_before).await,
            Engine::Postgres(p) => p.purge(stopped_before, custom_before).await,
        }
    }
}

#[async_trait::async_trait]
impl Sink for EventLogSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        let mut rows: Rows = Default::default();
        for e in events {
            let table = self.schema.table_of(e);
            rows[table].push(self.schema.row(table, e));
        }
        match self.connect().await? {
            Engine::Sqlite(s) => s.insert(rows).await?,
            Engine::Postgres(p) => p.insert(&rows).await?,
        }
        if self
            .last_retention
            .is_none_or(|t| t.elapsed() >= RETENTION_INTERVAL)
        {
            self.last_retention = Some(Instant::now());
            if let Err(e) = self.purge(crate::runner::now()).await {
                tracing::warn!(error = %e, "event log retention failed; will retry");
            }
        }
        Ok(())
    }

    async fn reset(&mut self) {
        self.engine = None;
    }
}
