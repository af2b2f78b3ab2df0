//! The writer lock: one ixn server writes to a schema at a time.
//!
//! The writing connection holds a session advisory lock keyed by the schema for as long as it
//! lives. PostgreSQL releases it only when that connection's backend ends, which is after any
//! transaction it was running has committed or rolled back. So a server that starts right after
//! another was killed waits here until the killed server's last commit is resolved, instead of
//! loading the store while that commit is still on its way in (it would then hold an older
//! state in memory than the store has). A second server started against a store in use is
//! refused with the holder named.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::StoreError;

/// First key of the lock ("ixnw"); the second is the hash of the schema name.
const WRITER_LOCK_CLASS: i32 = 0x6978_6e77;
/// How long a connect waits for the lock before refusing to start.
pub const WRITER_LOCK_WAIT: Duration = Duration::from_secs(15);
/// Interval between attempts while another backend holds the lock.
const RETRY: Duration = Duration::from_millis(50);

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1, hashtext(coalesce(current_schema(), '')))";
const HOLDER: &str = "SELECT a.pid, coalesce(a.application_name, ''), \
     coalesce(host(a.client_addr), 'a local socket'), \
     coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'), coalesce(a.state, '?') \
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND l.classid = $1::int4::oid AND l.objid = hashtext(coalesce(current_schema(), ''))::oid";

/// Takes the writer lock on `client`, waiting up to `wait` while another backend holds it.
/// `schema` names the store in messages.
pub(super) async fn take_writer_lock(
    client: &Client,
    schema: &str,
    wait: Duration,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut waiting = false;
    loop {
        let taken: Option<bool> = client
            .query_one(TRY_LOCK, &[&WRITER_LOCK_CLASS])
            .await?
            .try_get(0)?;
        if taken == Some(true) {
            if waiting {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    schema,
                    "took the store's writer lock"
                );
            }
            return Ok(());
        }
        let holder = holder(client).await;
        if started.elapsed() >= wait {
            return Err(StoreError::Other(format!(
                "another ixn server is writing to the PostgreSQL store (schema {schema}): {holder} has held \
                 its writer lock for over {} s. Stop that server first, or give this one a schema of its \
                 own (`?schema=NAME` in the store URL)",
                wait.as_secs()
            )));
        }
        if !waiting {
            tracing::warn!(
                schema,
                holder,
                "waiting for the store's writer lock (held by another ixn server, or by the connection \
                 of one that has just stopped until its last commit is resolved)"
            );
            waiting = true;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Who holds the writer lock, for messages.
async fn holder(client: &Client) -> String {
    match client.query_opt(HOLDER, &[&WRITER_LOCK_CLASS]).await {
        Ok(Some(r)) => {
            let pid: i32 = r.try_get(0).unwrap_or_default();
            let app: String = r.try_get(1).unwrap_or_default();
            let from: String = r.try_get(2).unwrap_or_default();
            let since: String = r.try_get(3).unwrap_or_default();
            let state: String = r.try_get(4).unwrap_or_default();
            format!("PostgreSQL backend {pid} (application {app:?}, from {from}, connected {since}, {state})")
        }
        Ok(None) => "a connection that has just ended".to_owned(),
        Err(e) => format!("a connection that could not be described ({e})"),
    }
}
