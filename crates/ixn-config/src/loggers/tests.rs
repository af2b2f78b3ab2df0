//! Reading `[[loggers]]`: the documented example, defaults, and located errors.

use super::*;

/// The example of docs/configuration.md's "Loggers" section.
fn doc_example() -> &'static str {
    let doc = include_str!("../../../../docs/configuration.md");
    let after = doc.split_once("## Loggers").map_or("", |(_, rest)| rest);
    let block = after.split_once("```toml\n").map_or("", |(_, rest)| rest);
    block.split_once("```").map_or("", |(b, _)| b)
}

#[test]
fn docs_example_parses_with_its_values() {
    let config = crate::parse(doc_example(), "docs/configuration.md").unwrap_or_else(|e| panic!("{e}"));
    let [db, file] = &config.loggers[..] else {
        panic!("two loggers expected")
    };
    assert_eq!(
        (db.name.as_str(), db.batch_size, db.storing_timeout_ms),
        ("reporting-db", 1000, 500)
    );
    assert_eq!((db.max_queue_size, db.reconnect_timeout_ms), (20_000, 10_000));
    let SinkConfig::EventLog(opts) = &db.sink else {
        panic!("event-log expected")
    };
    assert_eq!(opts.schema_name.as_deref(), Some("ixn_reporting"));
    assert_eq!(opts.interaction_retention_min, 1440);
    assert!(!db.filter.log_agent_state && db.filter.log_queue);
    assert_eq!(db.filter.by_id, [150, 151, 152, 156, 190]);
    assert_eq!(db.custom_data.itx.len(), 2);
    assert_eq!(db.custom_data.itx[1].ty, ColumnType::Integer);
    assert_eq!(db.custom_events.get(&5001), Some(&ReportTable::Custom));
    let SinkConfig::File(f) = &file.sink else {
        panic!("file expected")
    };
    assert_eq!((f.max_file_size, f.max_files), (1 << 30, 5));
}

#[test]
fn broker_defaults() {
    let text = "[[loggers]]\nname = \"n\"\ndelivery-protocol = \"nats\"\n\
                [[loggers]]\nname = \"a\"\ndelivery-protocol = \"amqp\"\nrecoverable = false\n\
                [[loggers]]\nname = \"s\"\ndelivery-protocol = \"stomp\"\ntls = true\n\
                [[loggers]]\nname = \"k\"\ndelivery-protocol = \"kafka\"\nbrokers = [\"b1:9092\", \"b2:9092\"]\n";
    let loggers = crate::parse(text, "t.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .loggers;
    let sinks: Vec<SinkConfig> = loggers.into_iter().map(|l| l.sink).collect();
    assert_eq!(
        sinks,
        [
            SinkConfig::Nats(NatsOptions {
                url: defaults::NATS_URL.into(),
                subject: defaults::NATS_SUBJECT.into(),
                stream: defaults::NATS_STREAM.into(),
            }),
            SinkConfig::Amqp(AmqpOptions {
                url: defaults::AMQP_URL.into(),
                exchange: defaults::AMQP_EXCHANGE.into(),
                routing_key: defaults::AMQP_ROUTING_KEY.into(),
                recoverable: false,
            }),
            SinkConfig::Stomp(StompOptions {
                address: defaults::STOMP_ADDRESS.into(),
                destination: defaults::STOMP_DESTINATION.into(),
                login: None,
                passcode: None,
                tls: true,
                tls_ca_file: None,
                tls_server_name: None,
            }),
            SinkConfig::Kafka(KafkaOptions {
                brokers: vec!["b1:9092".into(), "b2:9092".into()],
                topic: defaults::KAFKA_TOPIC.into(),
                partitions: 1,
            }),
        ]
    );
}

#[test]
fn errors_are_located_and_all_reported() {
    let text = "[[loggers]]\nname = \"x\"\ndelivery-protocol = \"msmq\"\nbatch-size = 0\n\n\
                [[loggers]]\nname = \"x\"\ndelivery-protocol = \"file\"\npath = \"p\"\nmax-queue-size = 5\nsubjet = \"s\"\n\
                [loggers.itx-custom-data]\nSeg = \"seg;float\"\n";
    let errors: Vec<String> = match crate::parse(text, "t.toml") {
        Ok(_) => panic!("must fail"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    };
    let expected = [
        "t.toml:3:21: logger \"x\": delivery-protocol \"msmq\" is not one of",
        "t.toml:4:14: logger \"x\": batch-size = 0 is out of range 1..5000",
        "t.toml:7:8: logger \"x\" is defined twice",
        "t.toml:10:18: logger \"x\": max-queue-size = 5 is out of range 10000..100000",
        "t.toml:11:1: logger \"x\": unknown key subjet",
        "t.toml:13:7: logger \"x\": [itx-custom-data]: Seg = \"seg;float\": type \"float\"",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(expected) {
        assert!(got.starts_with(want), "{got}\n  does not start with\n{want}");
    }
}

#[test]
fn column_specs() {
    let cases = [
        ("seg", Ok(("seg", ColumnType::String, Some(64)))),
        ("seg;string;10", Ok(("seg", ColumnType::String, Some(10)))),
        ("n;integer", Ok(("n", ColumnType::Integer, None))),
        ("t;timestamp", Ok(("t", ColumnType::Timestamp, None))),
        ("n;integer;4", Err(())),
        ("bad col", Err(())),
        ("x;float", Err(())),
        ("x;string;0", Err(())),
        ("x;string;5;6", Err(())),
    ];
    for (spec, expected) in cases {
        let got = parse_column("Key", spec)
            .map(|c| (c.column.clone(), c.ty, c.length))
            .map_err(|_| ());
        let expected = expected.map(|(c, t, l)| (c.to_owned(), t, l));
        assert_eq!(got, expected, "{spec}");
    }
}
