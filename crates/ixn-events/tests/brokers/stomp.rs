//! STOMP against ActiveMQ Classic: the shared broker on 127.0.0.1:61613 for delivery, a private
//! ActiveMQ (its own folder, KahaDB and STOMP port) for the outage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ixn_config::StompOptions;
use ixn_events::sinks::stomp::StompSink;
use ixn_events::sinks::stomp::client::StompConnection;
use ixn_events::sinks::stomp::frame::Frame;
use ixn_protocol::ReportingEvent;

use super::process::{BrokerProcess, find_program, free_port};
use super::{Outage, available, check_received, deliver_all, deliver_through_outage, reachable};

const ADDRESS: &str = "127.0.0.1:61613";

fn options(address: &str, run: &str) -> StompOptions {
    StompOptions {
        address: address.to_owned(),
        destination: format!("/queue/ixn.test.{run}"),
        login: None,
        passcode: None,
        tls: false,
        tls_ca_file: None,
        tls_server_name: None,
    }
}

/// Subscribes to the queue and reads messages until every sent `seq` was seen, then a little
/// longer to catch duplicates (bounded). Checks the headers of every message.
async fn consume(opts: &StompOptions, sent: &[ReportingEvent]) -> Vec<ReportingEvent> {
    let connection = super::wait_for(Duration::from_secs(60), || async {
        StompConnection::connect(opts).await.ok()
    })
    .await;
    let mut connection = connection.expect("a consumer connection");
    connection
        .subscribe(&opts.destination, "0")
        .await
        .expect("subscribing");
    let wanted: std::collections::HashSet<u64> = sent.iter().map(|e| e.seq).collect();
    let mut seen = std::collections::HashSet::new();
    let mut events = Vec::new();
    loop {
        // Once everything arrived, a short quiet period ends the read; before, a long one fails.
        let quiet = if seen.len() == wanted.len() { 1 } else { 30 };
        let frame = tokio::time::timeout(Duration::from_secs(quiet), connection.read_frame()).await;
        let frame: Frame = match frame {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => panic!("reading from the queue: {e}"),
            Err(_) if seen.len() == wanted.len() => break,
            Err(_) => panic!("only {} of {} events arrived", seen.len(), wanted.len()),
        };
        assert_eq!(frame.command, "MESSAGE", "{frame:?}");
        let event: ReportingEvent = serde_json::from_slice(&frame.body).expect("a reporting event");
        let seq = event.seq.to_string();
        assert_eq!(frame.header("ixn-seq"), Some(seq.as_str()));
        assert_eq!(frame.header("ixn-event"), Some(event.event.name()));
        assert_eq!(frame.header("persistent"), Some("true"));
        assert_eq!(frame.header("content-type"), Some("application/json"));
        assert_eq!(frame.header("destination"), Some(opts.destination.as_str()));
        seen.insert(event.seq);
        events.push(event);
    }
    let _ = connection.disconnect().await;
    events
}

#[tokio::test]
async fn stomp_delivers_every_event_in_order() {
    if !available(
        "ActiveMQ (STOMP)",
        reachable(ADDRESS).await,
        "STOMP on 127.0.0.1:61613",
    ) {
        return;
    }
    let run = super::unique("d");
    let opts = options(ADDRESS, &run);
    let events = super::sample_events(&run, 1, 400, 12);
    let mut sink = StompSink::new(&opts);
    deliver_all(&mut sink, &events).await;
    let received = consume(&opts, &events).await;
    check_received(&events, &received, true);
}

/// A broker that answers the first SEND with ERROR (a scripted server: real brokers differ in
/// what they refuse).
#[tokio::test]
async fn stomp_error_frame_fails_the_batch() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let address = listener.local_addr().expect("address").to_string();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepting");
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered_connect = false;
        loop {
            let n = socket.read(&mut buf).await.expect("reading");
            if n == 0 {
                return received;
            }
            received.extend_from_slice(&buf[..n]);
            let frames = received.iter().filter(|b| **b == 0).count();
            if frames >= 1 && !answered_connect {
                answered_connect = true;
                socket
                    .write_all(b"CONNECTED\nversion:1.2\n\n\0")
                    .await
                    .expect("writing");
            }
            if frames >= 2 {
                let error = b"ERROR\nmessage:destination refused\n\nnot allowed\0";
                socket.write_all(error).await.expect("writing");
                return received;
            }
        }
    });
    let mut sink = StompSink::new(&options(&address, "refused"));
    let events = super::sample_events("e", 1, 3, 1);
    let result = ixn_events::Sink::deliver(&mut sink, &events).await;
    let error = result.expect_err("an ERROR frame must fail the batch");
    assert!(error.message.contains("destination refused"), "{error}");
    let received = server.await.expect("server");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("CONNECT\naccept-version:1.2\nhost:127.0.0.1\n"),
        "{text}"
    );
    assert!(
        text.contains("\0SEND\ndestination:/queue/ixn.test.refused\n"),
        "{text}"
    );
    assert!(
        text.contains("\npersistent:true\n") && text.contains("\nreceipt:ixn-1\n"),
        "{text}"
    );
}

/// A private ActiveMQ: its own configuration (STOMP only, on a free port) and KahaDB folder.
struct PrivateActiveMq(BrokerProcess);

#[async_trait::async_trait]
impl Outage for PrivateActiveMq {
    async fn stop(&mut self) {
        self.0.kill().await;
    }
    async fn start(&mut self) {
        self.0.start().await;
    }
}

/// Writes the instance folder (the Debian package's configuration with one STOMP connector).
fn activemq_instance(dir: &Path, port: u16) {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf folder");
    std::fs::create_dir_all(dir.join("data")).expect("data folder");
    let source = Path::new("/etc/activemq/instances-available/main");
    let xml = std::fs::read_to_string(source.join("activemq.xml")).expect("activemq.xml");
    let start = xml.find("<transportConnectors>").expect("connectors");
    let end = xml.find("</transportConnectors>").expect("connectors end");
    let connectors = format!(
        "<transportConnectors>\n<transportConnector name=\"stomp\" uri=\"stomp://127.0.0.1:{port}\"/>\n"
    );
    let xml = format!("{}{connectors}{}", &xml[..start], &xml[end..]);
    std::fs::write(conf.join("activemq.xml"), xml).expect("writing activemq.xml");
    let _ = std::fs::copy(source.join("log4j2.properties"), conf.join("log4j2.properties"));
}

fn activemq_jar() -> Option<PathBuf> {
    let jar = std::env::var_os("IXN_ACTIVEMQ_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/activemq/bin/activemq.jar"));
    jar.is_file().then_some(jar)
}

#[tokio::test]
async fn stomp_outage_loses_nothing() {
    let jar = activemq_jar();
    let java = find_program("IXN_JAVA", "java");
    let present = jar.is_some() && java.is_some();
    if !available("ActiveMQ and java", present, "install the activemq package") {
        return;
    }
    let (Some(jar), Some(java)) = (jar, java) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    activemq_instance(dir.path(), port);
    let base = dir.path().display().to_string();
    let args = vec![
        "-Xms64M".to_owned(),
        "-Xmx256M".to_owned(),
        "-Dactivemq.home=/usr/share/activemq".to_owned(),
        format!("-Dactivemq.base={base}"),
        format!("-Dactivemq.conf={base}/conf"),
        format!("-Dactivemq.data={base}/data"),
        "-jar".to_owned(),
        jar.display().to_string(),
        "start".to_owned(),
        format!("xbean:file:{base}/conf/activemq.xml"),
    ];
    let mut broker = BrokerProcess::new("activemq", &java, &args, dir.path(), port);
    broker.start().await;
    let address = broker.address();
    let run = super::unique("o");
    let opts = options(&address, &run);
    let events = super::sample_events(&run, 9_000, 500, 10);
    let mut sink = StompSink::new(&opts);
    let (_, _broker) =
        deliver_through_outage(&mut sink, Box::new(PrivateActiveMq(broker)), &events, 150).await;
    let received = consume(&opts, &events).await;
    check_received(&events, &received, false);
}
