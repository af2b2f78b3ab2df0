//! NATS JetStream: the shared server on 127.0.0.1:4222 for delivery, a private `nats-server` for
//! the outage.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use ixn_config::NatsOptions;
use ixn_events::Sink;
use ixn_events::sinks::nats::NatsSink;
use ixn_protocol::ReportingEvent;

use super::process::{BrokerProcess, find_program, free_port};
use super::{Outage, available, check_received, deliver_all, deliver_through_outage, reachable};

const ADDRESS: &str = "127.0.0.1:4222";

fn options(url: &str, run: &str) -> NatsOptions {
    NatsOptions {
        url: url.to_owned(),
        subject: format!("ixn.test.{run}"),
        stream: format!("IXN_TEST_{run}"),
    }
}

/// Reads the whole stream back with a pull consumer; checks the headers of every message.
async fn read_stream(url: &str, opts: &NatsOptions) -> Vec<ReportingEvent> {
    let client = async_nats::connect(url).await.expect("connecting a consumer");
    let context = jetstream::new(client);
    let mut stream = context
        .get_stream(&opts.stream)
        .await
        .expect("the sink created the stream");
    let stored = stream.info().await.expect("stream info").state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .expect("creating a consumer");
    let mut messages = consumer.messages().await.expect("consuming");
    let mut events = Vec::new();
    while (events.len() as u64) < stored {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let message = match next {
            Ok(Some(Ok(message))) => message,
            other => panic!("reading message {} of {stored}: {other:?}", events.len() + 1),
        };
        let event: ReportingEvent = serde_json::from_slice(&message.payload).expect("a reporting event");
        let headers = message.headers.as_ref().expect("headers");
        let seq = event.seq.to_string();
        assert_eq!(
            headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str()),
            Some(seq.as_str())
        );
        assert_eq!(headers.get("Ixn-Seq").map(|v| v.as_str()), Some(seq.as_str()));
        assert_eq!(
            headers.get("Ixn-Event").map(|v| v.as_str()),
            Some(event.event.name())
        );
        assert_eq!(message.subject.as_str(), opts.subject);
        events.push(event);
    }
    let _ = context.delete_stream(&opts.stream).await;
    events
}

#[tokio::test]
async fn nats_delivers_every_event_in_order() {
    if !available(
        "NATS",
        reachable(ADDRESS).await,
        "nats-server -js on 127.0.0.1:4222",
    ) {
        return;
    }
    let run = super::unique("d");
    let opts = options(&format!("nats://{ADDRESS}"), &run);
    let events = super::sample_events(&run, 1, 400, 12);
    let mut sink = NatsSink::new(&opts);
    deliver_all(&mut sink, &events).await;
    // A batch delivered again (a runner retrying after a lost confirm) is dropped by JetStream.
    sink.deliver(&events[..super::BATCH]).await.expect("redelivery");
    let received = read_stream(&opts.url, &opts).await;
    check_received(&events, &received, true);
}

/// The private server of the outage test, with its own JetStream folder.
struct PrivateNats(BrokerProcess);

#[async_trait::async_trait]
impl Outage for PrivateNats {
    async fn stop(&mut self) {
        self.0.kill().await;
    }
    async fn start(&mut self) {
        self.0.start().await;
    }
}

#[tokio::test]
async fn nats_outage_loses_nothing() {
    let program = find_program("IXN_NATS_SERVER", "nats-server");
    if !available(
        "nats-server",
        program.is_some(),
        "install the nats-server package",
    ) {
        return;
    }
    let Some(program) = program else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let store = dir.path().join("jetstream");
    let args: Vec<String> = ["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]
        .iter()
        .map(|s| s.to_string())
        .chain([store.display().to_string()])
        .collect();
    let mut server = BrokerProcess::new("nats", &program, &args, dir.path(), port);
    server.start().await;
    let url = format!("nats://{}", server.address());
    let run = super::unique("o");
    let opts = options(&url, &run);
    let events = super::sample_events(&run, 1_000, 600, 10);
    let mut sink = NatsSink::new(&opts);
    let (_, _server) = deliver_through_outage(&mut sink, Box::new(PrivateNats(server)), &events, 200).await;
    let received = read_stream(&url, &opts).await;
    check_received(&events, &received, false);
}
