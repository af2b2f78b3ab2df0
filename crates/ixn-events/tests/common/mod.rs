//! Shared helpers of the sink tests: a realistic run of events, and PostgreSQL reachability.

#![allow(dead_code)] // each test binary uses only some helpers

use ixn_config::{LoggerConfig, SinkConfig};
use ixn_model::{Timestamp, UserData, Value};
use ixn_protocol::{Party, ReportingEvent, ReportingEventKind as K};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const T0: i64 = 1_795_440_457_120;

/// A run of `n` interactions, each submitted, queued, taken, stopped; plus agent, ESP and custom
/// events; sequences from `first_seq`, gap-free.
pub fn run_of_events(n: usize, first_seq: u64) -> Vec<ReportingEvent> {
    let mut out = Vec::new();
    let mut seq = first_seq;
    let mut push = |kind: K, ixn: Option<usize>, fill: &dyn Fn(&mut ReportingEvent)| {
        let mut e = ReportingEvent::new(seq, kind, Timestamp(T0 + seq as i64), "acme");
        if let Some(i) = ixn {
            e.interaction_id = Some(format!("ixn-{i:05}"));
            e.media_type = Some("email".into());
        }
        fill(&mut e);
        out.push(e);
        seq += 1;
    };
    for i in 0..n {
        push(K::InteractionSubmitted, Some(i), &|e| {
            let mut ud = UserData::new();
            ud.push("Segment", Value::Str(format!("gold-{i}")));
            ud.push("Score", Value::Int(i as i64));
            e.user_data = Some(ud);
            e.queue = Some("inbound".into());
        });
        push(K::PlacedInQueue, Some(i), &|e| e.queue = Some("inbound".into()));
        push(K::TakenFromQueue, Some(i), &|e| e.queue = Some("inbound".into()));
        push(K::ProcessingStopped, Some(i), &|_| {});
    }
    push(K::AgentLogin, None, &|e| {
        e.party = Some(Party {
            kind: "agent".into(),
            name: "agent-7".into(),
        })
    });
    push(K::ExternalServiceRequested, Some(0), &|_| {});
    push(K::CustomReporting, None, &|e| {
        e.custom_event_id = Some(5001);
        let mut ud = UserData::new();
        ud.push("Campaign", Value::Str("spring".into()));
        e.user_data = Some(ud);
    });
    push(K::CustomReporting, Some(0), &|e| e.custom_event_id = Some(7));
    out
}

/// A logger with the given sink and the mapping sections these tests check.
pub fn logger(sink: SinkConfig) -> LoggerConfig {
    let text = r#"
[[loggers]]
name = "test"
delivery-protocol = "file"
path = "unused"

[loggers.itx-custom-data]
Segment = "segment;string;8"
Score = "score;integer"

[loggers.custom-customdata]
Campaign = "campaign"

[loggers.custom-events]
7 = "rpt_interaction"
"#;
    let mut cfg = ixn_config::parse(text, "test.toml")
        .expect("valid logger configuration")
        .loggers
        .remove(0);
    cfg.sink = sink;
    cfg
}

/// Whether PostgreSQL is reachable; panics when it is not but IXN_REQUIRE_SERVICES=1.
pub async fn postgres_available() -> bool {
    match tokio_postgres::connect(PG_URL, tokio_postgres::NoTls).await {
        Ok(_) => true,
        Err(e) if std::env::var("IXN_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("PostgreSQL at {PG_URL} is required (IXN_REQUIRE_SERVICES=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("note: PostgreSQL at {PG_URL} unreachable ({e}); test skipped");
            false
        }
    }
}
