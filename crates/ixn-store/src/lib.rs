//! The durable store of ixn: one [`Store`] trait with two engines, SQLite (the embedded default,
//! WAL, bundled) and PostgreSQL, each with its own migrations, and one conformance suite
//! ([`conformance`]) that every engine must pass.
//!
//! The server keeps live interactions in memory and uses the store as its durable copy: every
//! change reaches the store as a [`WriteBatch`] (full rows of changed interactions plus the
//! reporting events those changes produced, written to the outbox in the same transaction).
//! A batch is committed atomically and durably before any request in it is acknowledged; many
//! requests share one batch (group commit). Writes are idempotent (upsert by id, outbox insert
//! by sequence), so a batch whose commit outcome is unknown can simply be committed again.
//!
//! Architecture invariant: this is the only crate that knows SQL. It knows nothing of the wire
//! protocol, clients or the business process beyond the custom-property columns it is told about.

mod commitlog;
pub mod conformance;
mod error;
mod filelog;
mod migrations;
pub mod postgres;
mod rows;
pub mod sqlgen;
pub mod sqlite;

use async_trait::async_trait;
use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{CustomProperty, Interaction, InteractionId, Timestamp};

pub use error::StoreError;

/// One reporting event as kept in the outbox until every logger has delivered it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutboxEvent {
    /// Server-wide, gap-free, strictly increasing sequence number (starts at 1).
    pub seq: u64,
    /// When the change happened.
    pub time: Timestamp,
    /// Event name, e.g. `EventPlacedInQueue`.
    pub name: String,
    /// The interaction concerned, when there is one.
    pub interaction_id: Option<InteractionId>,
    /// The event as JSON (the versioned reporting envelope; opaque to the store).
    pub payload: String,
}

/// Everything one group commit writes, in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// Full current rows of every interaction changed in the batch (insert or replace by id).
    /// Stopped interactions are written with state `stopped` and kept as history.
    pub interactions: Vec<Interaction>,
    /// Reporting events, in sequence order.
    pub events: Vec<OutboxEvent>,
    /// Small server-wide values to persist with the batch (e.g. the next submit sequence).
    pub meta: Vec<(String, String)>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.interactions.is_empty() && self.events.is_empty() && self.meta.is_empty()
    }
}

/// A query over stored interactions (live and history): condition, order, paging.
#[derive(Clone, Debug)]
pub struct StoreQuery {
    pub tenant: String,
    /// `None` selects every interaction of the tenant.
    pub condition: Option<Condition>,
    /// Empty means `submit_seq`.
    pub order: OrderBy,
    pub offset: u64,
    pub limit: u64,
}

/// What a store holds, for health and status reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub live_interactions: u64,
    pub stopped_interactions: u64,
    pub outbox_events: u64,
}

/// The durable store. Implementations are cheap to share (`Arc<dyn Store>`); every method may be
/// called concurrently, except that the server calls [`Store::commit`] from one task at a time.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Engine name for logs and metrics (`sqlite`, `postgres`).
    fn engine(&self) -> &'static str;

    /// Adds the columns (and indexes) of custom properties that do not have one yet.
    /// Columns of properties no longer configured are left in place (data is never dropped).
    async fn ensure_custom_properties(&self, props: &[CustomProperty]) -> Result<(), StoreError>;

    /// Commits one batch atomically and durably (synced) before returning.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Makes everything committed visible in the tables at once (the SQLite store applies its
    /// commit log in the background); a no-op for stores that write the tables directly. For
    /// bulk loaders that hand the store to another process next.
    async fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Calls `sink` with every interaction that is not stopped, in `submit_seq` order
    /// (startup). Must be fast: a million rows in a few seconds.
    async fn load_live(&self, sink: &mut (dyn FnMut(Interaction) + Send)) -> Result<u64, StoreError>;

    /// One interaction by id, live or stopped.
    async fn get(&self, tenant: &str, id: &InteractionId) -> Result<Option<Interaction>, StoreError>;

    /// Whether any tenant's interaction (live or stopped) has this id. Ids are unique across
    /// tenants, so a client-supplied id must not reuse another tenant's.
    async fn id_exists(&self, id: &InteractionId) -> Result<bool, StoreError>;

    /// Interactions matching a query, compiled to parameterized SQL (values are never
    /// concatenated into the statement). Conditions may use system and custom properties only.
    async fn find(&self, query: &StoreQuery) -> Result<Vec<Interaction>, StoreError>;

    /// Deletes up to `limit` stopped interactions completed before `before`; returns how many.
    async fn purge_stopped(&self, before: Timestamp, limit: u64) -> Result<u64, StoreError>;

    /// Outbox events with `seq > after`, in order, at most `limit`.
    async fn outbox_read(&self, after: u64, limit: u64) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Deletes outbox events with `seq <= upto` (all loggers confirmed them); returns how many.
    async fn outbox_delete_upto(&self, upto: u64) -> Result<u64, StoreError>;

    /// Highest event sequence ever written (0 when none), even if already deleted.
    async fn last_event_seq(&self) -> Result<u64, StoreError>;

    /// A value stored with [`WriteBatch::meta`].
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Stores one meta value outside any batch, durably (e.g. an event logger's cursor).
    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// Opens a store from a URL: `sqlite://PATH` (or a plain path) or `postgres://…`.
/// `options` for PostgreSQL may carry `?schema=NAME` to keep ixn's tables in their own schema.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}
