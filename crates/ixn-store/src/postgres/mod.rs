//! The PostgreSQL engine (tokio-postgres, no TLS). One connection commits (and changes the
//! schema); a couple of connections serve reads, each shared by concurrent readers through
//! tokio-postgres's pipelining. A closed connection is replaced on its next use; the call that
//! saw it fail returns the error, and the server retries (writes are idempotent).
//!
//! A batch is written with one multi-row statement per table (`INSERT … SELECT * FROM UNNEST`
//! of column arrays), so a thousand interactions cost one round trip, not a thousand.
//! `?schema=NAME` in the URL keeps ixn's tables in a schema of their own (created if missing).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::BytesMut;
use futures_util::{TryStreamExt, pin_mut};
use ixn_model::{
    CustomProperty, CustomType, Interaction, InteractionId, Scalar, SysPropType, Timestamp, UserData,
};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Row, Statement, Transaction};

use crate::migrations;

mod lock;
mod write;
use crate::rows::{self, COLUMNS, CustomValue, RowRead};
use crate::sqlgen::{self, Dialect, SqlParam};
use crate::{OutboxEvent, Store, StoreError, StoreQuery, StoreStats, WriteBatch};
pub use lock::WRITER_LOCK_WAIT;
use write::*;

/// Read connections; each is shared by concurrent readers (requests are pipelined).
const READERS: usize = 2;
/// Rows per multi-row statement; bounds the size of one message.
const UPSERT_CHUNK: usize = 5000;
/// Key of the advisory lock that serializes schema changes between servers sharing a database.
const SCHEMA_LOCK: i64 = 0x6978_6e5f_7363_6865; // "ixn_sche"

const OUTBOX_INSERT: &str = "INSERT INTO outbox (seq, event_time, name, interaction_id, payload) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
     ON CONFLICT (seq) DO NOTHING";
const META_UPSERT: &str = "INSERT INTO meta (key, value) SELECT * FROM UNNEST($1::text[], $2::text[]) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
/// `last_event_seq` only ever grows, even if an older batch is committed again.
const LAST_SEQ_UPSERT: &str = "INSERT INTO meta (key, value) VALUES ('last_event_seq', $1) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value \
     WHERE meta.value::bigint < EXCLUDED.value::bigint";

/// The PostgreSQL store. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection settings without `schema` (tokio-postgres does not know it).
    config: Config,
    /// Schema holding ixn's tables; `None` uses the server's default search path.
    schema: Option<String>,
    /// How long taking the writer lock may wait (see `lock.rs`).
    lock_wait: std::time::Duration,
    /// The committing connection. A Tokio mutex held across awaits on purpose: the writer is
    /// used by one task at a time (the server's committer) and a transaction needs `&mut Client`.
    writer: tokio::sync::Mutex<WriterSlot>,
    /// Read connections, replaced when closed. The lock is never held across an await.
    readers: Vec<Mutex<Option<Arc<Client>>>>,
    next_reader: AtomicUsize,
}

struct WriterSlot {
    conn: Option<Writer>,
    /// Custom properties from the last `ensure_custom_properties`; filled on every upsert.
    custom: Vec<CustomProperty>,
}

impl WriterSlot {
    /// After a failed write the connection is dropped and a fresh one opened on next use:
    /// the failure may be a connection the client has not yet noticed is dead, and a new
    /// connection costs little next to a commit that keeps failing.
    fn settle<T>(&mut self, result: &Result<T, StoreError>) {
        if result.is_err() {
            self.conn = None;
        }
    }
}

struct Writer {
    client: Client,
    /// Prepared statements of this connection by SQL text (prepared once, reused per batch).
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("hosts", &self.inner.config.get_hosts())
            .field("dbname", &self.inner.config.get_dbname())
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// Splits `schema=NAME` off the query string of a connection URL.
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) => schema = Some(name.to_owned()),
            None => rest.push(pair),
        }
    }
    if let Some(name) = &schema {
        let mut chars = name.chars();
        let ok = name.len() <= 63
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(StoreError::Other(format!(
                "postgres schema {name:?} must be up to 63 letters, digits or '_', not starting with a digit"
            )));
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

impl PgStore {
    /// Connects, creates the schema if the URL names one, takes the writer lock (waiting up to
    /// [`WRITER_LOCK_WAIT`] for another server's), and brings the tables up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_waiting(url, WRITER_LOCK_WAIT).await
    }

    /// [`PgStore::connect`], waiting up to `lock_wait` for the writer lock.
    pub async fn connect_waiting(url: &str, lock_wait: std::time::Duration) -> Result<Self, StoreError> {
        let (url, schema) = split_schema(url)?;
        let mut config: Config = url.parse()?;
        if config.get_application_name().is_none() {
            // Names ixn's connections in pg_stat_activity (and the writer lock's holder).
            config.application_name("ixn");
        }
        let mut inner = Inner {
            config,
            schema,
            lock_wait,
            writer: tokio::sync::Mutex::new(WriterSlot {
                conn: None,
                custom: Vec::new(),
            }),
            readers: (0..READERS).map(|_| Mutex::new(None)).collect(),
            next_reader: AtomicUsize::new(0),
        };
        let mut client = inner.open(true).await?;
        // The lock first: a server still running on this schema is never migrated under.
        lock::take_writer_lock(&client, inner.schema_label(), inner.lock_wait).await?;
        migrate(&mut client).await?;
        *inner.writer.get_mut() = WriterSlot {
            conn: Some(Writer {
                client,
                statements: HashMap::new(),
            }),
            custom: Vec::new(),
        };
        Ok(PgStore {
            inner: Arc::new(inner),
        })
    }

    /// A read connection, reconnected if it was closed.
    async fn reader(&self) -> Result<ReadConn, StoreError> {
        let slot = self.inner.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
        let current = self.inner.readers[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(client) = current.filter(|c| !c.is_closed()) {
            return Ok(ReadConn { slot, client });
        }
        let client = Arc::new(self.inner.open(false).await?);
        *self.inner.readers[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
        Ok(ReadConn { slot, client })
    }

    /// Passes a read's result through, first forgetting its connection if the connection was
    /// lost (the error may arrive before the client notices it is closed).
    fn checked<T>(&self, conn: &ReadConn, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let lost = matches!(&result, Err(StoreError::Postgres(e)) if connection_lost(e));
        if lost {
            let mut slot = self.inner.readers[conn.slot]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn.client)) {
                *slot = None;
            }
        }
        result
    }
}

/// A read connection and the slot it came from.
struct ReadConn {
    slot: usize,
    client: Arc<Client>,
}

/// Whether an error means the connection is unusable: closed, broken, or the server ending it
/// (SQLSTATE classes 08 connection exception and 57P operator intervention).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.code()
            .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"))
        || e.source().is_some_and(|s| s.is::<std::io::Error>())
}

impl Inner {
    /// The schema, for messages.
    fn schema_label(&self) -> &str {
        self.schema.as_deref().unwrap_or("of the default search path")
    }

    /// Opens one connection, with ixn's schema first on its search path.
    async fn open(&self, create_schema: bool) -> Result<Client, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "postgres connection ended");
            }
        });
        if let Some(schema) = &self.schema {
            if create_schema {
                // Under the advisory lock: concurrent CREATE SCHEMA IF NOT EXISTS can still clash.
                client
                    .batch_execute(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); \
                         CREATE SCHEMA IF NOT EXISTS \"{schema}\"; COMMIT;"
                    ))
                    .await?;
            }
            client
                .batch_execute(&format!("SET search_path TO \"{schema}\""))
                .await?;
        }
        Ok(client)
    }
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(migrations::CREATE_MIGRATIONS_TABLE).await?;
    for m in migrations::POSTGRES {
        let done = tx
            .query_opt(
                "SELECT version FROM ixn_schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .await?;
        if done.is_none() {
            tracing::info!(version = m.version, name = m.name, "applying postgres migration");
            tx.batch_execute(m.sql).await?;
            tx.execute(
                "INSERT INTO ixn_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &rows::now().millis()],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

impl RowRead for Row {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        self.try_get(i)
            .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }

    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(i)
            .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        self.try_get(i)
            .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }
}

/// A condition parameter that adapts to the type PostgreSQL inferred for its placeholder, so
/// sqlgen's dynamically typed values bind to text, bigint or double columns alike.
#[derive(Debug)]
struct PgParam(SqlParam);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for PgParam {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (&self.0, ty) {
            (SqlParam::Null, _) => Ok(IsNull::Yes),
            (SqlParam::Int(n), &Type::INT8) => n.to_sql(ty, out),
            (SqlParam::Int(n), &Type::INT4) => i32::try_from(*n)?.to_sql(ty, out),
            (SqlParam::Int(n), &Type::INT2) => i16::try_from(*n)?.to_sql(ty, out),
            (SqlParam::Int(n), &Type::FLOAT8) => (*n as f64).to_sql(ty, out),
            (SqlParam::Int(n), &Type::BOOL) => (*n != 0).to_sql(ty, out),
            (SqlParam::Int(n), _) => n.to_string().to_sql(ty, out),
            (SqlParam::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (SqlParam::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (SqlParam::Real(r), &Type::INT8) if r.fract() == 0.0 => (*r as i64).to_sql(ty, out),
            (SqlParam::Real(r), &Type::TEXT | &Type::VARCHAR) => r.to_string().to_sql(ty, out),
            (SqlParam::Real(r), _) => Err(format!("cannot bind {r} as {ty}").into()),
            (SqlParam::Text(s), &Type::INT8) => s.trim().parse::<i64>()?.to_sql(ty, out),
            (SqlParam::Text(s), &Type::FLOAT8) => s.trim().parse::<f64>()?.to_sql(ty, out),
            (SqlParam::Text(s), _) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Compiles a query to SQL and its parameters (tenant first, then the condition's, then paging).
fn find_sql(query: &StoreQuery) -> Result<(String, Vec<Param<'static>>), StoreError> {
    let mut params: Vec<Param<'static>> = vec![Box::new(query.tenant.clone())];
    let mut sql = format!(
        "SELECT {} FROM interactions WHERE tenant = $1",
        rows::select_list()
    );
    if let Some(cond) = &query.condition {
        let (text, cond_params) = sqlgen::compile_where(cond, Dialect::Postgres, 2, rows::now())
            .map_err(|e| StoreError::Query(e.to_string()))?;
        sql.push_str(&format!(" AND ({text})"));
        params.extend(
            cond_params
                .into_iter()
                .map(|p| Box::new(PgParam(p)) as Param<'static>),
        );
    }
    let order = rows::order_sql(&query.order, Dialect::Postgres)?;
    let n = params.len();
    sql.push_str(&format!(" ORDER BY {order} LIMIT ${} OFFSET ${}", n + 1, n + 2));
    params.push(Box::new(rows::sql_u64(query.limit)));
    params.push(Box::new(rows::sql_u64(query.offset)));
    Ok((sql, params))
}

fn outbox_event(r: &Row) -> Result<OutboxEvent, StoreError> {
    let interaction_id = match r.try_get::<_, Option<&str>>(3)? {
        Some(s) => Some(InteractionId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        None => None,
    };
    Ok(OutboxEvent {
        seq: r.try_get::<_, i64>(0)? as u64,
        time: Timestamp::from_millis(r.try_get(1)?),
        name: r.try_get(2)?,
        interaction_id,
        payload: r.try_get(4)?,
    })
}

impl PgStore {
    /// The writer, reconnected if its connection was closed.
    async fn writer<'a>(slot: &'a mut WriterSlot, inner: &Inner) -> Result<&'a mut Writer, StoreError> {
        if slot.conn.as_ref().is_none_or(|w| w.client.is_closed()) {
            slot.conn = None;
            let client = inner.open(false).await?;
            lock::take_writer_lock(&client, inner.schema_label(), inner.lock_wait).await?;
            slot.conn = Some(Writer {
                client,
                statements: HashMap::new(),
            });
        }
        slot.conn
            .as_mut()
            .ok_or_else(|| StoreError::Other("postgres writer unavailable".to_owned()))
    }
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn ensure_custom_properties(&self, props: &[CustomProperty]) -> Result<(), StoreError> {
        let mut slot = self.inner.writer.lock().await;
        let w = Self::writer(&mut slot, &self.inner).await?;
        let result = add_custom_columns(&mut w.client, props).await;
        slot.settle(&result);
        result?;
        slot.custom = props.to_vec();
        Ok(())
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut slot = self.inner.writer.lock().await;
        let custom = slot.custom.clone();
        let w = Self::writer(&mut slot, &self.inner).await?;
        let result = write_batch(w, &custom, batch).await;
        slot.settle(&result);
        result
    }

    async fn load_live(&self, sink: &mut (dyn FnMut(Interaction) + Send)) -> Result<u64, StoreError> {
        let conn = self.reader().await?;
        let sql = format!(
            "SELECT {} FROM interactions WHERE state <> 'stopped' ORDER BY submit_seq",
            rows::select_list()
        );
        let result = async {
            let stream = conn
                .client
                .query_raw(sql.as_str(), std::iter::empty::<&(dyn ToSql + Sync)>())
                .await?;
            pin_mut!(stream);
            let mut count = 0u64;
            while let Some(row) = stream.try_next().await? {
                sink(rows::decode(&row)?);
                count += 1;
            }
            Ok(count)
        }
        .await;
        self.checked(&conn, result)
    }

    async fn get(&self, tenant: &str, id: &InteractionId) -> Result<Option<Interaction>, StoreError> {
        let conn = self.reader().await?;
        let sql = format!(
            "SELECT {} FROM interactions WHERE id = $1 AND tenant = $2",
            rows::select_list()
        );
        let row = conn
            .client
            .query_opt(sql.as_str(), &[&id.as_str(), &tenant])
            .await;
        let row = self.checked(&conn, row.map_err(StoreError::from))?;
        row.as_ref().map(rows::decode).transpose()
    }

    async fn id_exists(&self, id: &InteractionId) -> Result<bool, StoreError> {
        let conn = self.reader().await?;
        let row = conn
            .client
            .query_opt("SELECT 1 FROM interactions WHERE id = $1", &[&id.as_str()])
            .await;
        let row = self.checked(&conn, row.map_err(StoreError::from))?;
        Ok(row.is_some())
    }

    async fn find(&self, query: &StoreQuery) -> Result<Vec<Interaction>, StoreError> {
        let (sql, params) = find_sql(query)?;
        let conn = self.reader().await?;
        let found = conn.client.query(sql.as_str(), &as_refs(&params)).await;
        let found = self.checked(&conn, found.map_err(StoreError::from))?;
        found.iter().map(rows::decode).collect()
    }

    async fn purge_stopped(&self, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        let mut slot = self.inner.writer.lock().await;
        let w = Self::writer(&mut slot, &self.inner).await?;
        let result = w
            .client
            .execute(
                "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions \
                 WHERE state = 'stopped' AND completed_at < $1 LIMIT $2)",
                &[&before.millis(), &rows::sql_u64(limit)],
            )
            .await
            .map_err(StoreError::from);
        slot.settle(&result);
        result
    }

    async fn outbox_read(&self, after: u64, limit: u64) -> Result<Vec<OutboxEvent>, StoreError> {
        let conn = self.reader().await?;
        let found = conn
            .client
            .query(
                "SELECT seq, event_time, name, interaction_id, payload FROM outbox \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&rows::sql_u64(after), &rows::sql_u64(limit)],
            )
            .await;
        let found = self.checked(&conn, found.map_err(StoreError::from))?;
        found.iter().map(outbox_event).collect()
    }

    async fn outbox_delete_upto(&self, upto: u64) -> Result<u64, StoreError> {
        let mut slot = self.inner.writer.lock().await;
        let w = Self::writer(&mut slot, &self.inner).await?;
        let result = w
            .client
            .execute("DELETE FROM outbox WHERE seq <= $1", &[&rows::sql_u64(upto)])
            .await
            .map_err(StoreError::from);
        slot.settle(&result);
        result
    }

    async fn last_event_seq(&self) -> Result<u64, StoreError> {
        rows::parse_last_seq(self.meta_get("last_event_seq").await?)
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.reader().await?;
        let row = conn
            .client
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await;
        let row = self.checked(&conn, row.map_err(StoreError::from))?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut slot = self.inner.writer.lock().await;
        let w = Self::writer(&mut slot, &self.inner).await?;
        let result = w
            .client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .await
            .map(|_| ())
            .map_err(StoreError::from);
        slot.settle(&result);
        result
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let conn = self.reader().await?;
        let (by_state, outbox) = tokio::join!(
            conn.client
                .query("SELECT state, count(*) FROM interactions GROUP BY state", &[]),
            conn.client.query_one("SELECT count(*) FROM outbox", &[]),
        );
        let by_state = self.checked(&conn, by_state.map_err(StoreError::from))?;
        let outbox = self.checked(&conn, outbox.map_err(StoreError::from))?;
        let mut stats = StoreStats::default();
        for r in by_state {
            let (state, n): (&str, i64) = (r.try_get(0)?, r.try_get(1)?);
            if state == "stopped" {
                stats.stopped_interactions = n as u64;
            } else {
                stats.live_interactions += n as u64;
            }
        }
        stats.outbox_events = outbox.try_get::<_, i64>(0)? as u64;
        Ok(stats)
    }
}
