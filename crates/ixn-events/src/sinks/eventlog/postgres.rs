//! The event log in PostgreSQL: one connection, tables in `schema-name` (created when missing),
//! one transaction per batch with one `INSERT … SELECT FROM UNNEST(arrays)` per table.

use ixn_model::Timestamp;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::Rows;
use super::schema::{INDEXES, Schema, SqlType, Val};
use crate::sink::SinkError;

fn err(context: &str) -> impl Fn(tokio_postgres::Error) -> SinkError + '_ {
    move |e| SinkError::new(format!("{context}: {e}"))
}

/// Key of the advisory lock that serializes migrations of loggers sharing a database.
const MIGRATION_LOCK: i64 = 0x0069_786e_5f72_7074;

/// An open event-log connection.
#[derive(Debug)]
pub(crate) struct PgLog {
    client: Client,
    /// Insert statement of each table, with the column kinds of its parameters.
    inserts: Vec<(Statement, Vec<bool>)>,
}

fn sql_type(ty: SqlType) -> String {
    match ty {
        SqlType::BigInt => "BIGINT".to_owned(),
        SqlType::Text => "TEXT".to_owned(),
        SqlType::Varchar(n) => format!("VARCHAR({n})"),
    }
}

impl PgLog {
    pub(crate) async fn connect(
        url: &str,
        schema_name: Option<&str>,
        schema: &Schema,
    ) -> Result<PgLog, SinkError> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(err("connecting to the event log"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "event log connection closed");
            }
        });
        if let Some(s) = schema_name {
            // `s` is a checked identifier (letters, digits, _).
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{s}\"; SET search_path TO \"{s}\""
                ))
                .await
                .map_err(err("selecting the event log schema"))?;
        }
        migrate(&mut client, schema).await?;
        let mut inserts = Vec::new();
        for t in &schema.tables {
            let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            let arrays: Vec<String> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let ty = if c.ty == SqlType::BigInt { "bigint" } else { "text" };
                    format!("${}::{ty}[]", i + 1)
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) ON CONFLICT (seq) DO NOTHING",
                t.name,
                names.join(", "),
                arrays.join(", ")
            );
            let stmt = client.prepare(&sql).await.map_err(err("preparing an insert"))?;
            inserts.push((stmt, t.columns.iter().map(|c| c.ty == SqlType::BigInt).collect()));
        }
        Ok(PgLog { client, inserts })
    }

    pub(crate) async fn insert(&mut self, rows: &Rows) -> Result<(), SinkError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        for (table, rows) in rows.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let (stmt, is_int) = &self.inserts[table];
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(is_int.len());
            for (col, int) in is_int.iter().enumerate() {
                if *int {
                    let v: Vec<Option<i64>> = rows
                        .iter()
                        .map(|r| match &r[col] {
                            Val::Int(i) => Some(*i),
                            _ => None,
                        })
                        .collect();
                    params.push(Box::new(v));
                } else {
                    let v: Vec<Option<String>> = rows
                        .iter()
                        .map(|r| match &r[col] {
                            Val::Text(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    params.push(Box::new(v));
                }
            }
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            tx.execute(stmt, &refs)
                .await
                .map_err(err("inserting into the event log"))?;
        }
        tx.commit().await.map_err(err("committing to the event log"))
    }

    pub(crate) async fn purge(
        &mut self,
        stopped_before: Option<Timestamp>,
        custom_before: Option<Timestamp>,
    ) -> Result<u64, SinkError> {
        let mut n = 0;
        if let Some(t) = stopped_before {
            n += self
                .client
                .execute(
                    "DELETE FROM rpt_interaction WHERE interaction_id IN (SELECT interaction_id \
                     FROM rpt_interaction WHERE event_id = 156 AND event_time < $1)",
                    &[&t.0],
                )
                .await
                .map_err(err("event log retention"))?;
        }
        if let Some(t) = custom_before {
            n += self
                .client
                .execute("DELETE FROM rpt_custom WHERE event_time < $1", &[&t.0])
                .await
                .map_err(err("event log retention"))?;
        }
        Ok(n)
    }
}

/// Applies missing migrations and adds missing custom columns, under an advisory lock.
async fn migrate(client: &mut Client, schema: &Schema) -> Result<(), SinkError> {
    let tx = client
        .transaction()
        .await
        .map_err(err("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(err("locking the migration"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rpt_schema_migrations \
         (version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(err("creating rpt_schema_migrations"))?;
    let applied: i64 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM rpt_schema_migrations", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(err("reading rpt_schema_migrations"))?;
    if applied < 1 {
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
            tx.batch_execute(&format!("CREATE TABLE {} ({})", t.name, cols.join(", ")))
                .await
                .map_err(err("creating the event log tables"))?;
        }
        for (name, table, cols) in INDEXES {
            tx.batch_execute(&format!("CREATE INDEX {name} ON {table} ({cols})"))
                .await
                .map_err(err("creating the event log indexes"))?;
        }
        tx.execute(
            "INSERT INTO rpt_schema_migrations (version, name, applied_at) VALUES (1, 'initial', $1)",
            &[&crate::runner::now().0],
        )
        .await
        .map_err(err("recording the migration"))?;
    }
    for t in &schema.tables {
        let existing: Vec<String> = tx
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
                &[&t.name],
            )
            .await
            .map_err(err("reading the table columns"))?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
        for c in &t.columns[t.base..] {
            if !existing.iter().any(|e| e.eq_ignore_ascii_case(&c.name)) {
                tx.batch_execute(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    t.name,
                    c.name,
                    sql_type(c.ty)
                ))
                .await
                .map_err(err("adding a custom column"))?;
            }
        }
    }
    tx.commit().await.map_err(err("committing the migration"))
}
