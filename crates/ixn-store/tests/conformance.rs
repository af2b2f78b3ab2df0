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

/// The PostgreSQL store at `url`; `None` (with a notice) when PostgreSQL is unreachable, unless
/// `IXN_REQUIRE_SERVICES=1`, which makes that a failure.
async fn connect_or_skip(url: &str, what: &str) -> Option<PgStore> {
    match PgStore::connect(url).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("IXN_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("PostgreSQL at {PG_URL} is required (IXN_REQUIRE_SERVICES=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: skipping the PostgreSQL {what}, {PG_URL} is unreachable: {e}");
            None
        }
    }
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
    let Some(store) = connect_or_skip(&url, "conformance run").await else {
        return;
    };
    let store = Arc::new(store);
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
    let Some(store) = connect_or_skip(&url, "reconnect test").await else {
        return;
    };
    let store = Arc::new(store);
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

/// A server killed while PostgreSQL is still executing its COMMIT: the commit lands after the
/// process is gone. A store opened next must not load before it has landed (it would hold an
/// older state in memory than the table, and a later restart would bring back a state nobody
/// was told about). The writer lock makes the new store wait for the dead connection's backend.
///
/// The COMMIT is held inside PostgreSQL by a deferred constraint trigger waiting on an advisory
/// lock the test holds, then released once the new store is waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_opens_only_after_a_dead_writers_last_commit_has_landed() {
    let schema = unique_schema();
    // The application name lets the test see its own writer waiting inside PostgreSQL.
    let url = format!("{PG_URL}?application_name={schema}&schema={schema}");
    let Some(first) = connect_or_skip(&url, "writer-lock test").await else {
        return;
    };
    let run = tokio::spawn({
        let (schema, url) = (schema.clone(), url.clone());
        async move {
            let mut row = conformance::minimal("t-lock", "conf-lock-1", 1);
            let batch = |ix: &ixn_model::Interaction| ixn_store::WriteBatch {
                interactions: vec![ix.clone()],
                ..Default::default()
            };
            first.commit(&batch(&row)).await.expect("first commit");

            let (admin, conn) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
                .await
                .expect("admin connection");
            tokio::spawn(conn);
            let key = i64::from(std::process::id()) << 32 | i64::from(rand_u32());
            admin
                .batch_execute(&format!(
                    "CREATE FUNCTION \"{schema}\".hold_commit() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$; \
                     CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT OR UPDATE ON \"{schema}\".interactions \
                     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"{schema}\".hold_commit(); \
                     SELECT pg_advisory_lock({key});"
                ))
                .await
                .expect("holding commits of the interactions table");

            // The writer sends its COMMIT, which now waits inside PostgreSQL; then the "server"
            // dies: the call is abandoned and every connection of the store closed.
            row.priority = 9;
            let stuck = tokio::spawn({
                let (store, b) = (first.clone(), batch(&row));
                async move { store.commit(&b).await }
            });
            // Bounded wait until the writer's COMMIT is blocked on the test's lock.
            let mut held = false;
            for _ in 0..200 {
                let row = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                        &[&schema],
                    )
                    .await
                    .expect("pg_stat_activity");
                if row.get::<_, i64>(0) == 1 {
                    held = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await; // polling interval
            }
            assert!(held && !stuck.is_finished(), "the writer's COMMIT was not held");
            stuck.abort();
            let _ = stuck.await;
            drop(first);

            // The next store waits for the lock while the dead writer's COMMIT is pending...
            let second =
                tokio::spawn(async move { PgStore::connect_waiting(&url, Duration::from_secs(20)).await });
            // Without the lock a connect returns in a few milliseconds; this is its window to.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                !second.is_finished(),
                "a new store opened while the previous writer's COMMIT was still pending"
            );
            // ...and once it lands, opens and finds the commit there (it was not lost either).
            admin
                .execute(&format!("SELECT pg_advisory_unlock({key})"), &[])
                .await
                .expect("releasing the held commit");
            let second = second.await.expect("join").expect("second store");
            let mut loaded = Vec::new();
            second.load_live(&mut |ix| loaded.push(ix)).await.expect("load");
            assert_eq!(loaded.len(), 1);
            assert_eq!(
                loaded[0].priority, 9,
                "the dead writer's last commit landed after the new store loaded"
            );
        }
    });
    let outcome = run.await;
    drop_schema(&schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Varies between runs (with the process id, an advisory-lock key no concurrent run shares).
fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
