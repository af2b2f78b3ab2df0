//! The script sink: a Rhai `deliver(events)` sees every event as a map, in order; a thrown error
//! fails the batch; runaway scripts are stopped by the operation limit.

mod common;

use ixn_config::{ScriptOptions, ScriptSource};
use ixn_events::Sink;
use ixn_events::sinks::script::ScriptSink;

fn options(source: ScriptSource) -> ScriptOptions {
    ScriptOptions {
        source,
        max_operations: 1_000_000,
        time_limit_ms: 5000,
    }
}

#[tokio::test]
async fn every_event_reaches_the_script_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seen.txt");
    let script = dir.path().join("logger.rhai");
    std::fs::write(
        &script,
        format!(
            r#"
fn deliver(events) {{
    for e in events {{
        let line = `${{e.seq}} ${{e.event}} ${{e.event_id}}`;
        if "interaction_id" in e {{ line += " " + e.interaction_id; }}
        append_line("{}", line);
    }}
}}
"#,
            out.display()
        ),
    )
    .expect("write script");
    let mut sink = ScriptSink::new(&options(ScriptSource::File(script)));
    let events = common::run_of_events(10, 1);
    for batch in events.chunks(7) {
        sink.deliver(batch).await.expect("deliver");
    }
    let expected: Vec<String> = events
        .iter()
        .map(|e| {
            let mut line = format!("{} {} {}", e.seq, e.event.name(), e.event_id);
            if let Some(id) = &e.interaction_id {
                line += &format!(" {id}");
            }
            line
        })
        .collect();
    let got: Vec<String> = std::fs::read_to_string(&out)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_thrown_error_fails_the_batch() {
    let script = r#"
fn deliver(events) {
    for e in events { if e.event_id == 156 { throw "refusing " + e.seq; } }
}
"#;
    let mut sink = ScriptSink::new(&options(ScriptSource::Inline(script.into())));
    let events = common::run_of_events(1, 1);
    sink.deliver(&events[..3])
        .await
        .expect("no stop event in this batch");
    let err = sink.deliver(&events).await.expect_err("the stop event throws");
    assert!(err.message.contains("refusing 4"), "{err}");
}

#[tokio::test]
async fn runaway_and_invalid_scripts_fail() {
    let endless = "fn deliver(events) { loop { } }";
    let mut sink = ScriptSink::new(&ScriptOptions {
        max_operations: 10_000,
        ..options(ScriptSource::Inline(endless.into()))
    });
    let events = common::run_of_events(1, 1);
    assert!(
        sink.deliver(&events).await.is_err(),
        "stopped by the operation limit"
    );

    let mut none = ScriptSink::new(&options(ScriptSource::Inline("fn other(x) { }".into())));
    let err = none.deliver(&events).await.expect_err("no deliver function");
    assert!(err.message.contains("deliver"), "{err}");
}
