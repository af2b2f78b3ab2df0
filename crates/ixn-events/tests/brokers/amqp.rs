//! RabbitMQ (AMQP 0-9-1) on 127.0.0.1:5672. The outage test stops and starts the shared node's
//! application (`rabbitmqctl stop_app` / `start_app`), so both tests of this module hold one lock.

use std::time::Duration;

use ixn_config::AmqpOptions;
use ixn_events::sinks::amqp::AmqpSink;
use ixn_protocol::ReportingEvent;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::process::find_program;
use super::{Outage, available, check_received, deliver_all, deliver_through_outage, reachable};

const ADDRESS: &str = "127.0.0.1:5672";
const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Serializes the tests that use the shared node (one of them stops it).
static NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(run: &str) -> AmqpOptions {
    AmqpOptions {
        url: URL.to_owned(),
        exchange: format!("ixn.test.{run}"),
        routing_key: "ixn.events".to_owned(),
        recoverable: true,
    }
}

async fn channel() -> Option<(Connection, Channel)> {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(URL, properties).await.ok()?;
    let channel = connection.create_channel().await.ok()?;
    Some((connection, channel))
}

/// Declares the exchange as the sink does and a durable queue bound to it, before any event is
/// published (AMQP keeps nothing for queues that do not exist yet).
async fn bind_queue(opts: &AmqpOptions, queue: &str) {
    let (_connection, channel) = channel().await.expect("a consumer connection");
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            &opts.exchange,
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("declaring the exchange");
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue, options, FieldTable::default())
        .await
        .expect("declaring the queue");
    channel
        .queue_bind(
            queue,
            &opts.exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding the queue");
}

/// Takes every message of the queue (basic.get until empty), checks their properties, then
/// deletes the queue and the exchange.
async fn drain_queue(opts: &AmqpOptions, queue: &str) -> Vec<ReportingEvent> {
    let channel = super::wait_for(Duration::from_secs(60), || async { channel().await }).await;
    let (_connection, channel) = channel.expect("a consumer connection");
    let mut events = Vec::new();
    let get = BasicGetOptions { no_ack: true };
    while let Some(message) = channel.basic_get(queue, get).await.expect("basic.get") {
        let delivery = message.delivery;
        let event: ReportingEvent = serde_json::from_slice(&delivery.data).expect("a reporting event");
        let properties = &delivery.properties;
        let seq = event.seq.to_string();
        assert_eq!(
            properties.message_id().as_ref().map(|v| v.as_str()),
            Some(seq.as_str())
        );
        assert_eq!(*properties.delivery_mode(), Some(2));
        assert_eq!(
            properties.content_type().as_ref().map(|v| v.as_str()),
            Some("application/json")
        );
        assert_eq!(
            properties.kind().as_ref().map(|v| v.as_str()),
            Some(event.event.name())
        );
        let header = properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("ixn-seq").cloned());
        assert_eq!(header, Some(AMQPValue::LongLongInt(event.seq as i64)));
        assert_eq!(delivery.routing_key.as_str(), opts.routing_key);
        events.push(event);
    }
    let _ = channel.queue_delete(queue, QueueDeleteOptions::default()).await;
    let _ = channel
        .exchange_delete(&opts.exchange, ExchangeDeleteOptions::default())
        .await;
    events
}

#[tokio::test]
async fn amqp_delivers_every_event_in_order() {
    let _node = NODE.lock().await;
    if !available(
        "RabbitMQ",
        reachable(ADDRESS).await,
        "rabbitmq-server on 127.0.0.1:5672",
    ) {
        return;
    }
    let run = super::unique("d");
    let opts = options(&run);
    let queue = format!("ixn.test.{run}");
    bind_queue(&opts, &queue).await;
    let events = super::sample_events(&run, 1, 400, 12);
    let mut sink = AmqpSink::new(&opts);
    deliver_all(&mut sink, &events).await;
    let received = drain_queue(&opts, &queue).await;
    check_received(&events, &received, true);
}

/// The shared node's application, stopped and started with rabbitmqctl; started again on drop
/// if a failing test left it stopped.
struct SharedRabbit {
    ctl: std::path::PathBuf,
    stopped: bool,
}

impl SharedRabbit {
    fn run(&self, command: &str) {
        let status = std::process::Command::new(&self.ctl)
            .args(["-q", command])
            .status()
            .unwrap_or_else(|e| panic!("running rabbitmqctl {command}: {e}"));
        assert!(status.success(), "rabbitmqctl {command} failed: {status}");
    }
}

#[async_trait::async_trait]
impl Outage for SharedRabbit {
    async fn stop(&mut self) {
        self.stopped = true;
        tokio::task::block_in_place(|| self.run("stop_app"));
    }
    async fn start(&mut self) {
        tokio::task::block_in_place(|| self.run("start_app"));
        self.stopped = false;
        let up = super::wait_for(Duration::from_secs(60), || async {
            reachable(ADDRESS).await.then_some(())
        })
        .await;
        assert!(up.is_some(), "RabbitMQ did not listen again after start_app");
    }
}

impl Drop for SharedRabbit {
    fn drop(&mut self) {
        if self.stopped {
            let _ = std::process::Command::new(&self.ctl)
                .args(["-q", "start_app"])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_outage_loses_nothing() {
    let _node = NODE.lock().await;
    if !available(
        "RabbitMQ",
        reachable(ADDRESS).await,
        "rabbitmq-server on 127.0.0.1:5672",
    ) {
        return;
    }
    let ctl = find_program("IXN_RABBITMQCTL", "rabbitmqctl");
    if !available("rabbitmqctl", ctl.is_some(), "install rabbitmq-server") {
        return;
    }
    let Some(ctl) = ctl else { return };
    let run = super::unique("o");
    let opts = options(&run);
    let queue = format!("ixn.test.{run}");
    bind_queue(&opts, &queue).await;
    let events = super::sample_events(&run, 5_000, 500, 10);
    let mut sink = AmqpSink::new(&opts);
    let broker = Box::new(SharedRabbit { ctl, stopped: false });
    let (_, _broker) = deliver_through_outage(&mut sink, broker, &events, 150).await;
    let received = drain_queue(&opts, &queue).await;
    check_received(&events, &received, false);
}
