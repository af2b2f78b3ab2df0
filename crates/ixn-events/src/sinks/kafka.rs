//! Kafka sink (Apache Kafka and protocol-compatible brokers): every event is one record of the
//! configured topic, which the sink creates when missing.
//!
//! The record key is the interaction id (the `seq` for events without one) and the partition is
//! chosen from the key with Kafka's own default partitioner (murmur2), so all events of one
//! interaction land in one partition, in order, and other producers agree on the placement.
//! Produce requests ask for every in-sync replica's acknowledgement; a batch is confirmed once
//! every partition it touched answered.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ixn_config::KafkaOptions;
use ixn_protocol::ReportingEvent;
use rskafka::BackoffConfig;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use crate::sink::{Sink, SinkError};

/// How long the client's own retries of one request may go on before the sink gives up and lets
/// the runner retry the batch.
const RETRY_DEADLINE: Duration = Duration::from_secs(10);
/// Bound of connecting, creating the topic and opening the partition clients.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound of producing one batch.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Broker-side timeout of topic creation, in milliseconds.
const CREATE_TOPIC_TIMEOUT_MS: i32 = 5_000;

/// Header carrying the event's sequence number (decimal text).
pub const SEQ_HEADER: &str = "ixn-seq";
/// Header carrying the event kind (`EventPlacedInQueue`, …).
pub const EVENT_HEADER: &str = "ixn-event";

/// Produces reporting events to a Kafka topic.
#[derive(Debug)]
pub struct KafkaSink {
    opts: KafkaOptions,
    /// One client per partition of the topic; `None` until the first delivery and after a
    /// failure or `reset`.
    link: Option<Link>,
}

struct Link {
    partitions: Vec<PartitionClient>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl KafkaSink {
    pub fn new(opts: &KafkaOptions) -> Self {
        KafkaSink {
            opts: opts.clone(),
            link: None,
        }
    }

    async fn connect(&self) -> Result<Link, SinkError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.try_connect()).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(message)) => Err(SinkError::new(format!("kafka: {message}"))),
            Err(_) => Err(SinkError::new(format!(
                "kafka: no answer from {:?} within {CONNECT_TIMEOUT:?}",
                self.opts.brokers
            ))),
        }
    }

    async fn try_connect(&self) -> Result<Link, String> {
        let client = client(&self.opts.brokers)
            .await
            .map_err(|e| format!("connecting to {:?}: {e}", self.opts.brokers))?;
        let count = self.ensure_topic(&client).await?;
        let mut partitions = Vec::with_capacity(count);
        for partition in 0..count {
            let partition = i32::try_from(partition).map_err(|e| e.to_string())?;
            let partition_client = client
                .partition_client(self.opts.topic.clone(), partition, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| format!("opening partition {partition}: {e}"))?;
            partitions.push(partition_client);
        }
        Ok(Link { partitions })
    }

    /// Creates the topic when missing; returns its partition count.
    async fn ensure_topic(&self, client: &Client) -> Result<usize, String> {
        if let Some(count) = self.partition_count(client).await? {
            return Ok(count);
        }
        let controller = client
            .controller_client()
            .map_err(|e| format!("reaching the controller: {e}"))?;
        let created = controller
            .create_topic(
                self.opts.topic.clone(),
                self.opts.partitions.max(1),
                1,
                CREATE_TOPIC_TIMEOUT_MS,
            )
            .await;
        match created {
            Ok(()) => {}
            // Another producer created it meanwhile.
            Err(KafkaError::ServerError {
                protocol_error: ProtocolError::TopicAlreadyExists,
                ..
            }) => {}
            Err(e) => return Err(format!("creating topic {}: {e}", self.opts.topic)),
        }
        // Topic metadata can lag behind its creation; the partition clients retry until it is
        // known, so the configured count is used when the listing does not show it yet.
        let count = self.partition_count(client).await?;
        Ok(count.unwrap_or(usize::try_from(self.opts.partitions.max(1)).unwrap_or(1)))
    }

    async fn partition_count(&self, client: &Client) -> Result<Option<usize>, String> {
        let topics = client
            .list_topics()
            .await
            .map_err(|e| format!("listing topics: {e}"))?;
        let count = topics
            .iter()
            .find(|topic| topic.name == self.opts.topic)
            .map(|topic| topic.partitions.len())
            .filter(|count| *count > 0);
        if let Some(count) = count
            && i32::try_from(count).ok() != Some(self.opts.partitions)
        {
            tracing::warn!(
                topic = %self.opts.topic,
                existing = count,
                configured = self.opts.partitions,
                "the Kafka topic exists with another partition count; using the existing one"
            );
        }
        Ok(count)
    }

    async fn produce_all(link: &Link, events: &[ReportingEvent]) -> Result<(), String> {
        let mut by_partition: BTreeMap<usize, Vec<Record>> = BTreeMap::new();
        for event in events {
            let key = record_key(event);
            let partition = partition_for(&key, link.partitions.len());
            let value =
                serde_json::to_vec(event).map_err(|e| format!("encoding event {}: {e}", event.seq))?;
            let timestamp =
                rskafka::chrono::DateTime::from_timestamp_millis(event.time.millis()).unwrap_or_default();
            let headers = BTreeMap::from([
                (SEQ_HEADER.to_owned(), event.seq.to_string().into_bytes()),
                (EVENT_HEADER.to_owned(), event.event.name().as_bytes().to_vec()),
            ]);
            by_partition.entry(partition).or_default().push(Record {
                key: Some(key),
                value: Some(value),
                headers,
                timestamp,
            });
        }
        let produces = by_partition.into_iter().map(|(partition, records)| async move {
            let client = &link.partitions[partition];
            client
                .produce(records, Compression::NoCompression)
                .await
                .map_err(|e| format!("producing to partition {partition}: {e}"))
        });
        futures_util::future::try_join_all(produces).await?;
        Ok(())
    }
}

/// The record key: the interaction id, or the sequence number for events without one.
pub fn record_key(event: &ReportingEvent) -> Vec<u8> {
    match &event.interaction_id {
        Some(id) => id.as_bytes().to_vec(),
        None => event.seq.to_string().into_bytes(),
    }
}

/// The partition Kafka's default partitioner picks for a keyed record.
pub fn partition_for(key: &[u8], partitions: usize) -> usize {
    let positive = (murmur2(key) & 0x7fff_ffff) as usize;
    positive % partitions.max(1)
}

/// MurmurHash2 as Kafka's clients compute it (`Utils.murmur2`, seed 0x9747b28c).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A client whose retries of one request stop after [`RETRY_DEADLINE`] (the library's default
/// retries forever, which would hide an outage from the runner).
pub async fn client(brokers: &[String]) -> Result<Client, KafkaError> {
    let backoff = BackoffConfig {
        deadline: Some(RETRY_DEADLINE),
        ..BackoffConfig::default()
    };
    ClientBuilder::new(brokers.to_vec())
        .client_id("ixn-events")
        .backoff_config(backoff)
        .build()
        .await
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.link.is_none() {
            self.link = Some(self.connect().await?);
        }
        let Some(link) = &self.link else {
            return Err(SinkError::new("kafka: not connected"));
        };
        let result = match tokio::time::timeout(PRODUCE_TIMEOUT, Self::produce_all(link, events)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(SinkError::new(format!("kafka: {message}"))),
            Err(_) => Err(SinkError::new(format!(
                "kafka: no produce answer within {PRODUCE_TIMEOUT:?}"
            ))),
        };
        if result.is_err() {
            self.link = None;
        }
        result
    }

    async fn reset(&mut self) {
        self.link = None;
    }
}

#[cfg(test)]
mod tests {
    use super::{murmur2, partition_for};

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors of Kafka's own UtilsTest.
        for (key, expected) in [
            ("21", -973932308_i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(key.as_bytes()) as i32, expected, "{key}");
        }
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        for partitions in [1, 2, 3, 7] {
            for key in ["a", "interaction-1", "0001A2B3C4"] {
                let p = partition_for(key.as_bytes(), partitions);
                assert!(p < partitions);
                assert_eq!(p, partition_for(key.as_bytes(), partitions));
            }
        }
        assert_eq!(partition_for(b"x", 0), 0);
    }
}
