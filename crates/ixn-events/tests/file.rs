//! The file sink: every event as one JSON line, in order, across size-based rotations.

mod common;

use ixn_config::FileOptions;
use ixn_events::Sink;
use ixn_events::sinks::file::FileSink;
use ixn_protocol::ReportingEvent;

#[tokio::test]
async fn lines_in_order_across_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out").join("events.jsonl");
    let opts = FileOptions {
        path: path.clone(),
        max_file_size: 8192,
        max_files: 50,
    };
    let mut sink = FileSink::new(&opts);
    let events = common::run_of_events(40, 1);
    for batch in events.chunks(9) {
        sink.deliver(batch).await.expect("deliver");
    }
    // Oldest rotated file first: PATH.N … PATH.1, then PATH.
    let mut files: Vec<_> = (1..=50)
        .rev()
        .map(|i| dir.path().join("out").join(format!("events.jsonl.{i}")))
        .filter(|p| p.exists())
        .collect();
    assert!(files.len() >= 2, "rotated at least twice: {files:?}");
    files.push(path);
    let mut got: Vec<ReportingEvent> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let size = text.len() as u64;
        assert!(size <= 8192 || text.lines().count() <= 9, "{f:?} is {size} bytes");
        for line in text.lines() {
            got.push(serde_json::from_str(line).expect("a JSON envelope per line"));
        }
    }
    assert_eq!(got, events, "every event once, in order");
}

#[tokio::test]
async fn oldest_rotation_is_dropped_past_max_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("e.jsonl");
    let opts = FileOptions {
        path: path.clone(),
        max_file_size: 4096,
        max_files: 2,
    };
    let mut sink = FileSink::new(&opts);
    let events = common::run_of_events(60, 1);
    for batch in events.chunks(5) {
        sink.deliver(batch).await.expect("deliver");
    }
    assert!(dir.path().join("e.jsonl.1").exists());
    assert!(dir.path().join("e.jsonl.2").exists());
    assert!(!dir.path().join("e.jsonl.3").exists());
    // What is kept is the newest events, still in order and ending with the last one.
    let mut kept: Vec<u64> = Vec::new();
    for f in ["e.jsonl.2", "e.jsonl.1", "e.jsonl"] {
        let text = std::fs::read_to_string(dir.path().join(f)).expect("read");
        kept.extend(
            text.lines()
                .map(|l| serde_json::from_str::<ReportingEvent>(l).expect("json").seq),
        );
    }
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    assert_eq!(kept.last().copied(), events.last().map(|e| e.seq));
}
