//! Runs the store conformance suite against both engines: SQLite in a temporary directory and
//! PostgreSQL on loopback in a schema of its own (dropped afterwards). Without a reachable
//! PostgreSQL the second test is skipped with a notice, unless `IXN_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use ixn_store::postgres::PgStore;
use ixn_store::sqlite::SqliteStore;
use ixn_store::{Store, conformance};

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// On a multi-threaded runtime, SQLite's `load_live` decodes in place on the worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("nested/ixn.db"))
        .await
        .expect("open sqlite");
    conformance::run_all(&store).await;
    drop(store);
    // Reopening applies no migration twice and finds the data.
    let again = SqliteStore::open(&dir.path().join("nested/ixn.db"))
        .await
        .expect("reopen sqlite");
    assert!(again.stats().await.expect("stats").live_interactions > 0);
}

/// On a current-thread runtime it cannot block in place and hands rows over a channel instead.
#[tokio::test]
async fn sqlite_passes_the_conformance_suite_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("ixn.db"))
        .await
        .expect("open sqlite");
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_opens_through_the_url_helper() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("via-url.db").display());
    let store = ixn_store::open(&url).await.expect("open");
    assert_eq!(store.engine(), "sqlite");
}

fn unique_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("ixn_conf_{}_{nanos}", std::process::id())
}

async fn drop_schema(schema: &str) {
    let Ok((client, conn)) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(conn);
    if let Err(e) = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
    {
        eprintln!("could not drop test schema {schema}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let schema = unique_schema();
    let url = format!("{PG_URL}?schema={schema}");
    let store = match PgStore::connect(&url).await {
        Ok(store) => Arc::new(store),
        Err(e) if std::env::var("IXN_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("PostgreSQL at {PG_URL} is required (IXN_REQUIRE_SERVICES=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: skipping the PostgreSQL conformance run, {PG_URL} is unreachable: {e}");
            return;
        }
    };
    // Run in a task so the schema is dropped even when a case fails.
    let run = tokio::spawn(async move {
        conformance::run_all(&*store).await;
        // While this store is open it holds the writer lock: a second one is refused, naming
        // the holder.
        let refused = PgStore::connect_waiting(&url, Duration::from_millis(300)).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("another ixn server") && message.contains("PostgreSQL backend"),
            "a second writer was not refused as expected: {message:?}"
        );
        // Once it is gone, a new connect takes the lock and finds the schema migrated.
        drop(store);
        let again = PgStore::connect_waiting(&url, Duration::from_secs(10))
            .await
            .expect("reconnect after the first store is gone");
        assert!(again.stats().await.expect("stats").live_interactions > 0);
    });
    let outcome = run.await;
    drop_schema(&schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A connection killed under the store fails at most the call that meets it; the next calls
/// reconnect (the server retries the batch, which is idempotent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconnects_after_its_connections_are_killed() {
    let schema = unique_schema();
    // The application name lets this test kill its own connections and nobody else's.
    let url = format!("{PG_URL}?application_name={schema}&schema={schema}");
    let store = match PgStore::connect(&url).await {
        Ok(store) => Arc::new(store),
        Err(e) if std::env::var("IXN_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("PostgreSQL at {PG_URL} is required (IXN_REQUIRE_SERVICES=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: skipping the PostgreSQL reconnect test, {PG_URL} is unreachable: {e}");
            return;
        }
    };
    let run = tokio::spawn({
        let store = store.clone();
        let schema = schema.clone();
        async move {
            let first = conformance::minimal("t-reconnect", "conf-reconnect-1", 1);
            let batch = ixn_store::WriteBatch {
                interactions: vec![first.clone()],
                ..Default::default()
            };
            store.commit(&batch).await.expect("first commit");
            assert!(store.get("t-reconnect", &first.id).await.expect("get").is_some());

            let (admin, conn) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
                .await
                .expect("admin");
            tokio::spawn(conn);
            let killed = admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    &[&schema],
                )
                .await
                .expect("terminate");
            assert!(
                killed >= 2,
                "writer and reader connections were killed ({killed})"
            );

            let second = conformance::minimal("t-reconnect", "conf-reconnect-2", 2);
            let batch = ixn_store::WriteBatch {
                interactions: vec![second.clone()],
                ..Default::default()
            };
            // The first attempt may still meet the dead connection; the retry must not.
            if let Err(e) = store.commit(&batch).await {
                eprintln!("commit on a killed connection failed as allowed: {e}");
                store.commit(&batch).await.expect("commit after reconnect");
            }
            let mut found = None;
            for _ in 0..3 {
                match store.get("t-reconnect", &second.id).await {
                    Ok(row) => {
                        found = row;
                        break;
                    }
                    Err(e) => eprintln!("read on a killed connection failed as allowed: {e}"),
                }
            }
            assert_eq!(found, Some(second));
        }
    });
    let outcome = run.await;
    drop(store);
    drop_schema(&schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
