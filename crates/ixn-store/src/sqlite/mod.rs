//! The SQLite engine: one database file in WAL mode with `synchronous=FULL`, so an acknowledged
//! commit survives `kill -9` and power loss. One writer connection (purges, schema changes,
//! applying the commit log) and a few read connections (WAL lets readers run beside the
//! writer); every call runs on Tokio's blocking pool, never on an async worker thread.
//!
//! Commits go to the commit log and reach the tables in the background ([`apply`]).
//!
//!
//! It does not cache rows: the server keeps live interactions in memory and this file is their
//! durable copy. An in-memory database (`:memory:`) is not supported, because the readers
//! would each see a database of their own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ixn_model::{CustomProperty, CustomType, Interaction, InteractionId, Scalar, Timestamp, UserData};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, Statement, TransactionBehavior};

use self::apply::{Pending, applier, recover};
use crate::filelog::FileLog;
use crate::migrations::{self, Migration};
use crate::rows::{self, COLUMNS, CustomValue, RowRead};
use crate::sqlgen::{self, Dialect, SqlParam};
use crate::{OutboxEvent, Store, StoreError, StoreQuery, StoreStats, WriteBatch};

/// How many read connections to keep: `find` and `get` from API handlers may run while a
/// long `load_live` or a status report holds one.
const READERS: usize = 2;
/// How long a connection waits on a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows handed from the blocking reader to the async sink at a time in `load_live` (when it
/// cannot block in place); small enough to stay below malloc's mmap threshold.
const LOAD_CHUNK: usize = 256;

const OUTBOX_INSERT: &str = "INSERT OR IGNORE INTO outbox (seq, event_time, name, interaction_id, payload) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
const META_UPSERT: &str =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
/// `last_event_seq` only ever grows, even if an older batch is committed again.
const LAST_SEQ_UPSERT: &str = "INSERT INTO meta (key, value) VALUES ('last_event_seq', ?1) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value \
     WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)";

/// The SQLite store. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `<db>.lock`, locked while this store is open: one server per database file (two
    /// would both append to the commit log). The lock goes with the file when this is dropped,
    /// or when the process dies.
    _lock: std::fs::File,
    /// The only connection that writes the tables.
    writer: Mutex<Writer>,
    /// The commit log (see the module documentation).
    log: Mutex<FileLog>,
    /// Batches in the log and not yet in the tables, oldest first.
    pending: Mutex<Pending>,
    /// Wakes the applier thread.
    wake: Condvar,
    /// The last log entry known to be in the tables (the next commit deletes up to it).
    applied: AtomicU64,
    /// Read-only connections for get, find, load and status queries.
    readers: Vec<Mutex<Connection>>,
    /// Round-robin start for picking a reader when all are busy.
    next_reader: AtomicUsize,
}

struct Writer {
    conn: Connection,
    /// Custom properties from the last `ensure_custom_properties`: their columns are filled on
    /// every upsert.
    custom: Vec<CustomProperty>,
    /// The upsert statement for the current custom columns (the key of the statement cache).
    upsert_sql: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves it usable: an open transaction was rolled back
    // when its guard dropped during unwinding.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs blocking SQLite work on Tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker: {e}")))?
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    // 64 MiB of page cache keeps the indexes of a large table hot.
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")?;
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    } else {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other(format!(
                "sqlite: cannot enable WAL (journal mode is {mode})"
            )));
        }
        // FULL: the WAL is synced at every commit, so an acknowledged batch is on disk.
        // Checkpoints every ~4 MiB of WAL (SQLite's default). Only the commit-log applier
        // writes here, so fewer rewrites of hot pages matter less than the burst a large
        // checkpoint writes before its fsync: every commit-log fsync meanwhile waited behind
        // ~40 MiB (submit -> invite p99.9 27-37 ms at 2,000/s, 17-21 ms now).
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1000;")?;
    }
    Ok(conn)
}

/// How long opening waits for the lock of a store being closed (the last reference to a dropped
/// store may still be finishing its work on the applier thread).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the exclusive lock on `<db>.lock`, waiting up to [`LOCK_WAIT`].
fn lock_file(db: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Other(format!("cannot open {}: {e}", path.display())))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Other(format!(
                    "another ixn server is using the SQLite store {} (its lock file {} is held); \
                     stop that server first, or give this one a data directory of its own",
                    db.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Other(format!("cannot lock {}: {e}", path.display())));
            }
        }
    }
}

fn migrate(conn: &mut Connection, list: &[Migration]) -> Result<(), StoreError> {
    conn.execute_batch(migrations::CREATE_MIGRATIONS_TABLE)?;
    // IMMEDIATE takes the write lock first, so two processes opening one file do not both
    // apply a migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for m in list {
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM ixn_schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tracing::info!(version = m.version, name = m.name, "applying sqlite migration");
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO ixn_schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, rows::now().millis()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn upsert_sql(custom: &[CustomProperty]) -> String {
    let mut cols: Vec<String> = COLUMNS.iter().map(|p| rows::quoted(p.column())).collect();
    cols.push("user_data".to_owned());
    cols.extend(custom.iter().map(rows::custom_column));
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = cols[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    format!(
        "INSERT INTO interactions ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
        cols.join(", "),
        params.join(", "),
        updates.join(", ")
    )
}

fn bind_scalar(stmt: &mut Statement<'_>, i: usize, v: Scalar<'_>) -> rusqlite::Result<()> {
    match v {
        Scalar::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null),
        Scalar::Int(n) => stmt.raw_bind_parameter(i, n),
        Scalar::Str(s) => stmt.raw_bind_parameter(i, s),
        Scalar::Ts(t) => stmt.raw_bind_parameter(i, t.millis()),
    }
}

fn bind_custom(stmt: &mut Statement<'_>, i: usize, v: CustomValue) -> rusqlite::Result<()> {
    match v {
        CustomValue::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null),
        CustomValue::Int(n) => stmt.raw_bind_parameter(i, n),
        CustomValue::Text(s) => stmt.raw_bind_parameter(i, s),
    }
}

fn upsert(stmt: &mut Statement<'_>, it: &Interaction, custom: &[CustomProperty]) -> rusqlite::Result<()> {
    for (i, p) in COLUMNS.iter().enumerate() {
        bind_scalar(stmt, i + 1, it.system(*p))?;
    }
    stmt.raw_bind_parameter(COLUMNS.len() + 1, it.user_data.encode())?;
    for (j, p) in custom.iter().enumerate() {
        bind_custom(stmt, COLUMNS.len() + 2 + j, rows::custom_value(&it.user_data, p))?;
    }
    stmt.raw_execute()?;
    Ok(())
}

/// Adds missing custom columns, their indexes, and fills the new columns of existing rows.
fn add_custom_columns(w: &mut Writer, props: &[CustomProperty]) -> Result<(), StoreError> {
    let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT name, type FROM pragma_table_info('interactions')")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut added = Vec::new();
    for p in props {
        rows::check_custom_name(p)?;
        let col = rows::custom_column(p);
        let sql_type = if p.ty == CustomType::String {
            "TEXT"
        } else {
            "INTEGER"
        };
        match existing.iter().find(|(name, _)| name.eq_ignore_ascii_case(&col)) {
            Some((_, ty)) if ty.eq_ignore_ascii_case(sql_type) => {}
            Some((_, ty)) => {
                return Err(StoreError::Other(format!(
                    "custom property {} has column type {ty} in the store but is configured as {:?}",
                    p.name, p.ty
                )));
            }
            None => {
                tracing::info!(column = %col, "adding custom property column");
                tx.execute_batch(&format!(
                    "ALTER TABLE interactions ADD COLUMN {col} {sql_type}; \
                     CREATE INDEX IF NOT EXISTS ix_interactions_{col} ON interactions (tenant, {col});"
                ))?;
                added.push(p.clone());
            }
        }
    }
    if !added.is_empty() {
        backfill(&tx, &added)?;
    }
    tx.commit()?;
    Ok(())
}

/// Fills newly added custom columns from the user data of rows written before they existed.
fn backfill(tx: &rusqlite::Transaction<'_>, added: &[CustomProperty]) -> Result<(), StoreError> {
    let sets: Vec<String> = added
        .iter()
        .enumerate()
        .map(|(j, p)| format!("{} = ?{}", rows::custom_column(p), j + 2))
        .collect();
    let mut update = tx.prepare(&format!(
        "UPDATE interactions SET {} WHERE rowid = ?1",
        sets.join(", ")
    ))?;
    let mut select = tx.prepare("SELECT rowid, user_data FROM interactions")?;
    let mut rows_iter = select.query([])?;
    while let Some(row) = rows_iter.next()? {
        let rowid: i64 = row.get(0)?;
        let ud = UserData::decode(
            row.get_ref(1)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let values: Vec<CustomValue> = added.iter().map(|p| rows::custom_value(&ud, p)).collect();
        if values.iter().all(|v| *v == CustomValue::Null) {
            continue;
        }
        update.raw_bind_parameter(1, rowid)?;
        for (j, v) in values.into_iter().enumerate() {
            bind_custom(&mut update, j + 2, v)?;
        }
        update.raw_execute()?;
    }
    Ok(())
}

impl RowRead for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("column {i} is not UTF-8"))),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected text, found {:?}",
                other.data_type()
            ))),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected integer, found {:?}",
                other.data_type()
            ))),
        }
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b)),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected blob, found {:?}",
                other.data_type()
            ))),
        }
    }
}

fn to_sql_value(p: SqlParam) -> SqlValue {
    match p {
        SqlParam::Null => SqlValue::Null,
        SqlParam::Int(n) => SqlValue::Integer(n),
        SqlParam::Real(r) => SqlValue::Real(r),
        SqlParam::Text(s) => SqlValue::Text(s),
    }
}

/// Compiles a query to SQL and its parameters (tenant first, then the condition's, then paging).
fn find_sql(query: &StoreQuery) -> Result<(String, Vec<SqlValue>), StoreError> {
    let mut params = vec![SqlValue::Text(query.tenant.clone())];
    let mut sql = format!(
        "SELECT {} FROM interactions WHERE tenant = ?1",
        rows::select_list()
    );
    if let Some(cond) = &query.condition {
        let (text, cond_params) = sqlgen::compile_where(cond, Dialect::Sqlite, 2, rows::now())
            .map_err(|e| StoreError::Query(e.to_string()))?;
        sql.push_str(&format!(" AND ({text})"));
        params.extend(cond_params.into_iter().map(to_sql_value));
    }
    let order = rows::order_sql(&query.order, Dialect::Sqlite)?;
    let n = params.len();
    sql.push_str(&format!(" ORDER BY {order} LIMIT ?{} OFFSET ?{}", n + 1, n + 2));
    params.push(SqlValue::Integer(rows::sql_u64(query.limit)));
    params.push(SqlValue::Integer(rows::sql_u64(query.offset)));
    Ok((sql, params))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
            }
            let lock = lock_file(&path)?;
            let mut conn = open_connection(&path, false)?;
            migrate(&mut conn, migrations::SQLITE)?;
            let readers = (0..READERS)
                .map(|_| open_connection(&path, true).map(Mutex::new))
                .collect::<Result<_, _>>()?;
            let mut writer = Writer {
                conn,
                custom: Vec::new(),
                upsert_sql: upsert_sql(&[]),
            };
            let (log, applied) = recover(&path, &mut writer)?;
            let inner = Arc::new(Inner {
                path,
                _lock: lock,
                writer: Mutex::new(writer),
                log: Mutex::new(log),
                pending: Mutex::new(Pending::default()),
                wake: Condvar::new(),
                applied: AtomicU64::new(applied),
                readers,
                next_reader: AtomicUsize::new(0),
            });
            let weak = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("ixn-sqlite-apply".into())
                .spawn(move || applier(weak))
                .map_err(|e| StoreError::Other(format!("sqlite: cannot start the log applier: {e}")))?;
            Ok(SqliteStore { inner })
        })
        .await
    }

    /// Runs `f` with the writer connection on the blocking pool.
    async fn with_writer<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            inner.catch_up()?;
            f(&mut lock(&inner.writer))
        })
        .await
    }

    /// Runs `f` with a free read connection (or the next one in turn) on the blocking pool.
    async fn with_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            inner.catch_up()?;
            f(&inner.reader())
        })
        .await
    }
}

impl Inner {
    /// A free read connection, or the next one in turn when all are busy.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        match self.readers.iter().find_map(|r| r.try_lock().ok()) {
            Some(guard) => guard,
            None => {
                lock(&self.readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len()])
            }
        }
    }
}

/// Decodes every live row in `submit_seq` order into `each`; stops early when it returns false.
fn each_live(conn: &Connection, each: &mut dyn FnMut(Interaction) -> bool) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT {} FROM interactions WHERE state <> 'stopped' ORDER BY submit_seq",
        rows::select_list()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows_iter = stmt.query([])?;
    let mut count = 0;
    while let Some(row) = rows_iter.next()? {
        count += 1;
        if !each(rows::decode(row)?) {
            break;
        }
    }
    Ok(count)
}

impl SqliteStore {
    /// `load_live` on a multi-threaded runtime: the worker thread becomes a blocking one and
    /// calls the sink itself, so no row crosses threads (allocation and free stay on one
    /// thread's cache). Startup is the only caller, so parking one worker is harmless.
    fn load_live_in_place(&self, sink: &mut (dyn FnMut(Interaction) + Send)) -> Result<u64, StoreError> {
        tokio::task::block_in_place(|| {
            self.inner.catch_up()?;
            let conn = self.inner.reader();
            let read = each_live(&conn, &mut |it| {
                sink(it);
                true
            });
            // The scan filled this connection's page cache with the whole table; a server
            // holding a large backlog needs that memory for the backlog instead.
            let _ = conn.release_memory();
            read
        })
    }

    /// `load_live` elsewhere (a current-thread runtime cannot block in place): rows are decoded
    /// on the blocking pool and handed over in chunks.
    async fn load_live_via_channel(
        &self,
        sink: &mut (dyn FnMut(Interaction) + Send),
    ) -> Result<u64, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Interaction>, StoreError>>(4);
        let reading = self.with_reader(move |conn| {
            let mut chunk = Vec::with_capacity(LOAD_CHUNK);
            let read = each_live(conn, &mut |it| {
                chunk.push(it);
                if chunk.len() < LOAD_CHUNK {
                    return true;
                }
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(LOAD_CHUNK));
                tx.blocking_send(Ok(full)).is_ok() // false: the caller went away
            });
            let _ = conn.release_memory();
            let last = match read {
                Ok(_) => Ok(chunk),
                Err(e) => Err(e),
            };
            let _ = tx.blocking_send(last);
            Ok(())
        });
        let delivering = async {
            let mut count = 0u64;
            while let Some(chunk) = rx.recv().await {
                for it in chunk? {
                    sink(it);
                    count += 1;
                }
            }
            Ok::<u64, StoreError>(count)
        };
        let (read, delivered) = tokio::join!(reading, delivering);
        read?;
        delivered
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn ensure_custom_properties(&self, props: &[CustomProperty]) -> Result<(), StoreError> {
        let props = props.to_vec();
        self.with_writer(move |w| {
            add_custom_columns(w, &props)?;
            w.upsert_sql = upsert_sql(&props);
            w.custom = props;
            Ok(())
        })
        .await
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // The blocking pool needs owned data; a clone costs far less than the fsync that follows.
        let batch = batch.clone();
        let inner = self.inner.clone();
        blocking(move || inner.commit(batch)).await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.catch_up()).await
    }

    async fn load_live(&self, sink: &mut (dyn FnMut(Interaction) + Send)) -> Result<u64, StoreError> {
        let flavor = tokio::runtime::Handle::current().runtime_flavor();
        if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
            self.load_live_in_place(sink)
        } else {
            self.load_live_via_channel(sink).await
        }
    }

    async fn get(&self, tenant: &str, id: &InteractionId) -> Result<Option<Interaction>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.as_str().to_owned());
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {} FROM interactions WHERE id = ?1 AND tenant = ?2",
                rows::select_list()
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows_iter = stmt.query([id, tenant])?;
            rows_iter.next()?.map(rows::decode).transpose()
        })
        .await
    }

    async fn id_exists(&self, id: &InteractionId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT 1 FROM interactions WHERE id = ?1")?;
            Ok(stmt.exists([id])?)
        })
        .await
    }

    async fn find(&self, query: &StoreQuery) -> Result<Vec<Interaction>, StoreError> {
        let (sql, params) = find_sql(query)?;
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows_iter = stmt.query(rusqlite::params_from_iter(params))?;
            let mut out = Vec::new();
            while let Some(row) = rows_iter.next()? {
                out.push(rows::decode(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn purge_stopped(&self, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        self.with_writer(move |w| {
            let n = w
                .conn
                .prepare_cached(
                    "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions \
                 WHERE state = 'stopped' AND completed_at < ?1 LIMIT ?2)",
                )?
                .execute([before.millis(), rows::sql_u64(limit)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn outbox_read(&self, after: u64, limit: u64) -> Result<Vec<OutboxEvent>, StoreError> {
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_time, name, interaction_id, payload FROM outbox \
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows_iter = stmt.query([rows::sql_u64(after), rows::sql_u64(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows_iter.next()? {
                let interaction_id = match r
                    .get_ref(3)?
                    .as_str_or_null()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                {
                    Some(s) => Some(InteractionId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))?),
                    None => None,
                };
                out.push(OutboxEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    time: Timestamp::from_millis(r.get(1)?),
                    name: r.get(2)?,
                    interaction_id,
                    payload: r.get(4)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_delete_upto(&self, upto: u64) -> Result<u64, StoreError> {
        self.with_writer(move |w| {
            let n = w
                .conn
                .prepare_cached("DELETE FROM outbox WHERE seq <= ?1")?
                .execute([rows::sql_u64(upto)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn last_event_seq(&self) -> Result<u64, StoreError> {
        let value = self.meta_get("last_event_seq").await?;
        rows::parse_last_seq(value)
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.with_reader(move |conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with_writer(move |w| {
            w.conn.prepare_cached(META_UPSERT)?.execute([key, value])?;
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.with_reader(|conn| {
            let mut stats = StoreStats::default();
            // Grouping by state alone lets SQLite count from the (state, completed_at) index.
            let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM interactions GROUP BY state")?;
            let mut rows_iter = stmt.query([])?;
            while let Some(r) = rows_iter.next()? {
                let (state, n): (String, i64) = (r.get(0)?, r.get(1)?);
                if state == "stopped" {
                    stats.stopped_interactions = n as u64;
                } else {
                    stats.live_interactions += n as u64;
                }
            }
            stats.outbox_events =
                conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as u64;
            Ok(stats)
        })
        .await
    }
}

mod apply;
#[cfg(test)]
mod tests;
