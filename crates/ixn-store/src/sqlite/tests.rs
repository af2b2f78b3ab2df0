//! The commit log across reopenings: what a crash leaves behind is applied once, and a log
//! that does not fit the tables is refused.

use super::apply::log_dir;
use super::*;
use crate::commitlog;
use crate::conformance::full;
use ixn_model::InteractionState;

fn event(seq: u64, id: &Interaction) -> OutboxEvent {
    OutboxEvent {
        seq,
        time: Timestamp::from_millis(1_000 + seq as i64),
        name: "EventPlacedInQueue".into(),
        interaction_id: Some(id.id.clone()),
        payload: format!(r#"{{"seq":{seq}}}"#),
    }
}

/// Appends an entry to the commit log as a crashed server would have left it.
fn leave_in_log(path: &Path, batch: &WriteBatch) -> u64 {
    let (mut log, _) = FileLog::open(&log_dir(path)).unwrap();
    let mut body = Vec::new();
    commitlog::encode(batch, &mut body);
    log.append(&body).unwrap()
}

fn log_records(path: &Path) -> usize {
    FileLog::open(&log_dir(path)).unwrap().1.len()
}

/// Entries left in the log (acknowledged, not yet applied when the process died) are in the
/// tables as soon as the store opens again, and an entry already applied is never applied a
/// second time (it would bring an older row back).
#[tokio::test]
async fn entries_left_in_the_log_are_applied_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ixn.db");
    drop(SqliteStore::open(&path).await.unwrap());

    let mut ix = full("default", "0V70MWDg01000001", 1);
    ix.state = InteractionState::Queued;
    let first = WriteBatch {
        interactions: vec![ix.clone()],
        events: vec![event(1, &ix)],
        meta: vec![("next_submit_seq".into(), "2".into())],
    };
    ix.state = InteractionState::Handling;
    let second = WriteBatch {
        interactions: vec![ix.clone()],
        events: vec![event(2, &ix)],
        meta: vec![("next_submit_seq".into(), "3".into())],
    };
    assert_eq!(leave_in_log(&path, &first), 1);
    assert_eq!(leave_in_log(&path, &second), 2);
    let first_segment = log_dir(&path).join(format!("{:020}.log", 1));
    let kept = std::fs::read(&first_segment).unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    let got = store
        .get("default", &ix.id)
        .await
        .unwrap()
        .expect("applied at open");
    assert_eq!(got, ix);
    assert_eq!(store.outbox_read(0, 10).await.unwrap().len(), 2);
    assert_eq!(store.last_event_seq().await.unwrap(), 2);
    assert_eq!(
        store.meta_get("next_submit_seq").await.unwrap().as_deref(),
        Some("3")
    );
    assert_eq!(log_records(&path), 0, "applied entries leave the log");

    // A commit after that continues the numbering; then the old entries reappear in the log
    // (as if their deletion had been lost): they are older than what the tables hold, so
    // nothing goes back.
    ix.state = InteractionState::Stopped;
    store
        .commit(&WriteBatch {
            interactions: vec![ix.clone()],
            events: vec![event(3, &ix)],
            meta: vec![],
        })
        .await
        .unwrap();
    drop(store);
    // The applier thread may still hold the store for a moment; wait until it closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reopened = loop {
        let s = SqliteStore::open(&path).await.unwrap();
        if s.get("default", &ix.id).await.unwrap().map(|i| i.state) == Some(InteractionState::Stopped) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stop never reached the tables"
        );
        drop(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(reopened);
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&first_segment, kept).unwrap();
    assert_eq!(log_records(&path), 2);
    let store = SqliteStore::open(&path).await.unwrap();
    let got = store.get("default", &ix.id).await.unwrap().unwrap();
    assert_eq!(got.state, InteractionState::Stopped, "an applied entry came back");
    assert_eq!(store.outbox_read(0, 10).await.unwrap().len(), 3);
}

/// A damaged entry stops the store from opening with a clear error, rather than starting
/// without acknowledged work.
#[tokio::test]
async fn a_damaged_log_entry_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ixn.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let (mut log, _) = FileLog::open(&log_dir(&path)).unwrap();
    log.append(&[1, 2]).unwrap();
    drop(log);
    let err = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("commit log"), "{err}");
}

/// A log that starts after where the tables end (entries in between are gone) is refused.
#[tokio::test]
async fn a_log_with_a_gap_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ixn.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let (mut log, _) = FileLog::open(&log_dir(&path)).unwrap();
    log.start_fresh(5).unwrap();
    let mut body = Vec::new();
    commitlog::encode(&WriteBatch::default(), &mut body);
    log.append(&body).unwrap();
    drop(log);
    let err = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("starts at entry 5"), "{err}");
}

/// One store per database file: a second open while the first is open is refused with a clear
/// error (two would both append to the commit log); once the first is dropped it opens.
#[tokio::test]
async fn a_database_in_use_is_not_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ixn.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(
        err.contains("another ixn server is using the SQLite store") && err.contains("ixn.db.lock"),
        "{err}"
    );
    drop(first);
    let again = SqliteStore::open(&path)
        .await
        .expect("open once the first store is gone");
    assert_eq!(again.stats().await.unwrap().live_interactions, 0);
}
