//! The event log in SQLite: one connection used on a blocking thread, WAL, `synchronous=FULL`,
//! one transaction per batch.

use std::sync::{Arc, Mutex};

use ixn_model::Timestamp;
use rusqlite::Connection;

use super::Rows;
use super::schema::{INDEXES, Schema, SqlType, Val};
use crate::sink::SinkError;

fn err(context: &str) -> impl Fn(rusqlite::Error) -> SinkError + '_ {
    move |e| SinkError::new(format!("{context}: {e}"))
}

/// An open event-log database.
#[derive(Debug)]
pub(crate) struct SqliteLog {
    conn: Arc<Mutex<Connection>>,
    /// `INSERT OR IGNORE` statement of each table.
    inserts: Arc<[String; 4]>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::new(format!("event log task failed: {e}")))?
}

fn sql_type(ty: SqlType) -> &'static str {
    match ty {
        SqlType::BigInt => "BIGINT",
        SqlType::Text | SqlType::Varchar(_) => "TEXT",
    }
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    match conn.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl SqliteLog {
    pub(crate) async fn open(path: String, schema: &Schema) -> Result<SqliteLog, SinkError> {
        let tables = schema.clone();
        let conn = blocking(move || {
            let mut conn = Connection::open(&path).map_err(err("opening the event log"))?;
            conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")
                .map_err(err("configuring the event log"))?;
            migrate(&mut conn, &tables)?;
            Ok(conn)
        })
        .await?;
        let inserts = schema.tables.clone().map(|t| {
            let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            format!(
                "INSERT OR IGNORE INTO {} ({}) VALUES ({})",
                t.name,
                names.join(", "),
                marks.join(", ")
            )
        });
        Ok(SqliteLog {
            conn: Arc::new(Mutex::new(conn)),
            inserts: Arc::new(inserts),
        })
    }

    pub(crate) async fn insert(&mut self, rows: Rows) -> Result<(), SinkError> {
        let (conn, inserts) = (self.conn.clone(), self.inserts.clone());
        blocking(move || {
            let mut conn = lock(&conn);
            let tx = conn.transaction().map_err(err("starting a transaction"))?;
            for (table, rows) in rows.iter().enumerate() {
                if rows.is_empty() {
                    continue;
                }
                let mut stmt = tx
                    .prepare_cached(&inserts[table])
                    .map_err(err("preparing an insert"))?;
                for row in rows {
                    let params = row.iter().map(|v| match v {
                        Val::Null => rusqlite::types::Value::Null,
                        Val::Int(i) => rusqlite::types::Value::Integer(*i),
                        Val::Text(s) => rusqlite::types::Value::Text(s.clone()),
                    });
                    stmt.execute(rusqlite::params_from_iter(params))
                        .map_err(err("inserting into the event log"))?;
                }
            }
            tx.commit().map_err(err("committing to the event log"))
        })
        .await
    }

    pub(crate) async fn purge(
        &mut self,
        stopped_before: Option<Timestamp>,
        custom_before: Option<Timestamp>,
    ) -> Result<u64, SinkError> {
        let conn = self.conn.clone();
        blocking(move || {
            let conn = lock(&conn);
            let mut n = 0;
            if let Some(t) = stopped_before {
                n += conn
                    .execute(
                        "DELETE FROM rpt_interaction WHERE interaction_id IN (SELECT interaction_id \
                         FROM rpt_interaction WHERE event_id = 156 AND event_time < ?1)",
                        [t.0],
                    )
                    .map_err(err("event log retention"))?;
            }
            if let Some(t) = custom_before {
                n += conn
                    .execute("DELETE FROM rpt_custom WHERE event_time < ?1", [t.0])
                    .map_err(err("event log retention"))?;
            }
            Ok(n as u64)
        })
        .await
    }
}

/// Applies missing migrations, then adds missing custom columns.
fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), SinkError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS rpt_schema_migrations \
         (version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .map_err(err("creating rpt_schema_migrations"))?;
    let applied: i64 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM rpt_schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(err("reading rpt_schema_migrations"))?;
    if applied < 1 {
        let tx = conn.transaction().map_err(err("starting the migration"))?;
        for t in &schema.tables {
            let cols: Vec<String> = t.columns[..t.base]
                .iter()
                .map(|c| {
                    let pk = if c.name == "seq" {
                        " PRIMARY KEY NOT NULL"
                    } else {
                        ""
                    };
                    format!("{} {}{pk}", c.name, sql_type(c.ty))
                })
                .collect();
            tx.execute_batch(&format!("CREATE TABLE {} ({})", t.name, cols.join(", ")))
                .map_err(err("creating the event log tables"))?;
        }
        for (name, table, cols) in INDEXES {
            tx.execute_batch(&format!("CREATE INDEX {name} ON {table} ({cols})"))
                .map_err(err("creating the event log indexes"))?;
        }
        tx.execute(
            "INSERT INTO rpt_schema_migrations (version, name, applied_at) VALUES (1, 'initial', ?1)",
            [crate::runner::now().0],
        )
        .map_err(err("recording the migration"))?;
        tx.commit().map_err(err("committing the migration"))?;
    }
    for t in &schema.tables {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{}')", t.name))
            .map_err(err("reading the table columns"))?;
        let existing: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(err("reading the table columns"))?
            .collect::<Result<_, _>>()
            .map_err(err("reading the table columns"))?;
        for c in &t.columns[t.base..] {
            if !existing.iter().any(|e| e.eq_ignore_ascii_case(&c.name)) {
                conn.execute_batch(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    t.name,
                    c.name,
                    sql_type(c.ty)
                ))
                .map_err(err("adding a custom column"))?;
            }
        }
    }
    Ok(())
}
