//! `surgstream replay --from-raw`: the raw archive's records produced again, byte for byte with
//! their keys and headers, to a topic — to rebuild a lake after a fix or a schema change, or to
//! feed a new consumer long after Kafka's retention dropped the originals.
//!
//! The committed raw files of one consumer group and source topic (the `raw_files` manifest,
//! optionally a window of Kafka timestamps) are read one flushed range at a time — the files of
//! a range's hours merged back into offset order — and sent in that order by an idempotent
//! producer, to the same partition number by default: each partition's records arrive in the
//! order they had, so a consumer of the new topic sees each robot's and each procedure's
//! history as the original consumers did. Memory is one range's records plus the producer's
//! queue, however large the archive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;
use surgstream_kafka::KafkaSettings;
use surgstream_lake::Lake;
use surgstream_lake::raw::{ArchivedRecord, read_raw_records};
use surgstream_store::Store;
use surgstream_store::raw::{self, RawFile, Window};

use crate::error::IngestError;

/// What to replay, and where to.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// How to reach the cluster.
    pub kafka: KafkaSettings,
    /// The consumer group whose raw archive is read.
    pub group: String,
    /// The archived (source) topic.
    pub topic: String,
    /// The topic to produce to.
    pub to_topic: String,
    /// Only records whose Kafka timestamp falls in it (records without one only when it is
    /// open at both ends).
    pub window: Window,
    /// Send each record to the partition it came from (the target needs at least as many
    /// partitions); otherwise the producer's partitioner places it by key.
    pub same_partitions: bool,
    /// Give each record its archived Kafka timestamp (as CreateTime) instead of the send time.
    /// Beware the target's retention: records older than `retention.ms` are deleted by the
    /// broker as soon as they land.
    pub keep_timestamps: bool,
    /// How long to wait for the broker.
    pub timeout: Duration,
}

/// What a replay sent.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplayReport {
    /// Raw files read.
    pub files: u64,
    /// Records produced and acknowledged.
    pub records: u64,
    /// Bytes of keys, values and headers produced.
    pub bytes: u64,
    /// Archived records left out: outside the window.
    pub outside_window: u64,
    /// Records produced, by source partition.
    pub by_partition: BTreeMap<i32, u64>,
    /// Seconds from start to the last acknowledgement.
    pub elapsed_seconds: f64,
}

/// Records handed to the producer and not yet acknowledged, at most.
const MAX_IN_FLIGHT: usize = 50_000;

/// Replays the archive ([`ReplayConfig`]); returns once the broker has acknowledged every
/// record. A record the broker refuses stops the replay with its partition and offset (what was
/// acknowledged before stays sent: replay again into a fresh topic, or from there with
/// `--since`).
pub async fn replay_raw(
    cfg: &ReplayConfig,
    lake: &Lake,
    store: &Store,
) -> Result<ReplayReport, IngestError> {
    let started = Instant::now();
    let kafka = |what: String| {
        let brokers = cfg.kafka.brokers().to_owned();
        move |source| IngestError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    if cfg.to_topic == cfg.topic {
        return Err(IngestError::Replay(format!(
            "replaying {} into itself would make its consumers read every record twice (the \
             lake would keep both copies): give a new topic with --to-topic",
            cfg.topic
        )));
    }
    let files = raw::raw_files(store.pool(), &cfg.group, &cfg.topic, cfg.window).await?;
    if files.is_empty() {
        return Err(IngestError::Replay(format!(
            "consumer group {} has no committed raw files of topic {}{}: check --group and \
             --topic (`surgstream verify` shows what the group committed)",
            cfg.group,
            cfg.topic,
            if cfg.window.since.is_some() || cfg.window.until.is_some() {
                " in that window"
            } else {
                ""
            }
        )));
    }
    let partitions = target_partitions(cfg)?;
    if cfg.same_partitions
        && let Some(p) = files.iter().map(|f| f.partition).max()
        && p >= partitions
    {
        return Err(IngestError::Replay(format!(
            "{} has {partitions} partitions, and the archive of {} has records of partition \
             {p}: create it with at least {} partitions, or place records by key with \
             --partition-by-key",
            cfg.to_topic,
            cfg.topic,
            p + 1
        )));
    }
    let mut config = ClientConfig::new();
    config
        .set("client.id", "surgstream-replay")
        .set("compression.codec", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", "65536")
        .set(
            "message.timeout.ms",
            cfg.timeout
                .max(Duration::from_secs(30))
                .as_millis()
                .to_string(),
        );
    cfg.kafka.apply(&mut config);
    // Idempotence keeps each partition's order through retries.
    let producer: FutureProducer<surgstream_kafka::KafkaContext> = config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create_with_context(cfg.kafka.context())
        .map_err(kafka("create producer".into()))?;

    let mut report = ReplayReport::default();
    let mut in_flight = FuturesUnordered::new();
    for range in ranges(&files) {
        let mut records = Vec::new();
        for f in range {
            let bytes = lake.get(&f.path).await?;
            records.extend(read_raw_records(&f.path, bytes)?);
            report.files += 1;
        }
        // A range's hours are separate files: back into offset order.
        records.sort_by_key(|r| r.offset);
        for r in records {
            if !in_window(&r, cfg.window) {
                report.outside_window += 1;
                continue;
            }
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (key, value) in &r.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            let mut rec: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&cfg.to_topic).headers(headers);
            if let Some(k) = r.key.as_deref() {
                rec = rec.key(k);
            }
            if let Some(v) = r.value.as_deref() {
                rec = rec.payload(v);
            }
            if cfg.same_partitions {
                rec = rec.partition(r.partition);
            }
            if cfg.keep_timestamps
                && let Some((t, _)) = r.timestamp
            {
                rec = rec.timestamp(t);
            }
            let size = r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                    .sum::<usize>();
            loop {
                match producer.send_result(rec) {
                    Ok(delivery) => {
                        let at = (r.partition, r.offset);
                        in_flight.push(async move { (delivery.await, at) });
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        match in_flight.next().await {
                            Some(done) => settle(cfg, done)?,
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((e, _)) => {
                        return Err(refused(cfg, (r.partition, r.offset), e));
                    }
                }
            }
            report.records += 1;
            report.bytes += size as u64;
            *report.by_partition.entry(r.partition).or_default() += 1;
            while in_flight.len() >= MAX_IN_FLIGHT {
                if let Some(done) = in_flight.next().await {
                    settle(cfg, done)?;
                }
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        settle(cfg, done)?;
    }
    producer
        .flush(cfg.timeout)
        .map_err(kafka(format!("flush to {}", cfg.to_topic)))?;
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The manifest's files grouped by flushed range (partition, first and last offset): the files
/// of one flush's hours, which together hold its records.
fn ranges(files: &[RawFile]) -> Vec<Vec<&RawFile>> {
    let mut out: Vec<Vec<&RawFile>> = Vec::new();
    for f in files {
        match out.last_mut() {
            Some(last)
                if last.first().is_some_and(|l| {
                    (l.partition, l.first_offset, l.last_offset)
                        == (f.partition, f.first_offset, f.last_offset)
                }) =>
            {
                last.push(f)
            }
            _ => out.push(vec![f]),
        }
    }
    out
}

fn in_window(r: &ArchivedRecord, w: Window) -> bool {
    if w.since.is_none() && w.until.is_none() {
        return true;
    }
    let Some(t) = r
        .timestamp
        .and_then(|(ms, _)| DateTime::<Utc>::from_timestamp_millis(ms))
    else {
        return false;
    };
    w.since.is_none_or(|s| t >= s) && w.until.is_none_or(|u| t < u)
}

type Delivery = (
    Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
    (i32, i64),
);

fn settle(cfg: &ReplayConfig, (result, at): Delivery) -> Result<(), IngestError> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(refused(cfg, at, e)),
        Err(_) => Err(IngestError::Interrupted),
    }
}

fn refused(cfg: &ReplayConfig, (partition, offset): (i32, i64), e: KafkaError) -> IngestError {
    IngestError::Kafka {
        brokers: cfg.kafka.brokers().to_owned(),
        what: format!(
            "produce {}/{partition}@{offset} (archived) to {}",
            cfg.topic, cfg.to_topic
        ),
        source: Box::new(e),
    }
}

/// How many partitions the target topic has; it must exist.
fn target_partitions(cfg: &ReplayConfig) -> Result<i32, IngestError> {
    let consumer: BaseConsumer<surgstream_kafka::KafkaContext> = cfg
        .kafka
        .client_config()
        .create_with_context(cfg.kafka.context())
        .map_err(|e| IngestError::Kafka {
            brokers: cfg.kafka.brokers().to_owned(),
            what: "create metadata client".into(),
            source: Box::new(e),
        })?;
    // Serves librdkafka's first request for an OAUTHBEARER token (MSK IAM).
    let _ = consumer.poll(Duration::ZERO);
    let md = consumer
        .fetch_metadata(Some(&cfg.to_topic), cfg.timeout)
        .map_err(|e| IngestError::Kafka {
            brokers: cfg.kafka.brokers().to_owned(),
            what: format!("metadata of {}", cfg.to_topic),
            source: Box::new(e),
        })?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == cfg.to_topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    if n == 0 {
        return Err(IngestError::MissingTopic {
            topic: cfg.to_topic.clone(),
            brokers: cfg.kafka.brokers().to_owned(),
        });
    }
    Ok(n as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use surgstream_lake::raw::TimestampType;

    fn file(path: &str, partition: i32, first: i64, last: i64) -> RawFile {
        RawFile {
            path: path.into(),
            partition,
            first_offset: first,
            last_offset: last,
            records: 1,
            bytes: 1,
            min_timestamp: None,
            max_timestamp: None,
        }
    }

    #[test]
    fn the_files_of_one_flushs_hours_are_read_together() {
        let files = [
            file("a", 0, 0, 9),
            file("b", 0, 0, 9),
            file("c", 0, 10, 20),
            file("d", 1, 10, 20),
        ];
        let paths: Vec<Vec<&str>> = ranges(&files)
            .iter()
            .map(|r| r.iter().map(|f| f.path.as_str()).collect())
            .collect();
        assert_eq!(paths, vec![vec!["a", "b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn a_window_takes_its_start_not_its_end_and_unstamped_records_only_when_open() {
        let t0 = DateTime::<Utc>::from_timestamp_millis(1_000_000).expect("test value");
        let t1 = DateTime::<Utc>::from_timestamp_millis(2_000_000).expect("test value");
        let w = Window {
            since: Some(t0),
            until: Some(t1),
        };
        let at = |ms: Option<i64>| ArchivedRecord {
            partition: 0,
            offset: 0,
            timestamp: ms.map(|m| (m, TimestampType::CreateTime)),
            key: None,
            headers: vec![],
            value: None,
        };
        assert!(in_window(&at(Some(1_000_000)), w));
        assert!(!in_window(&at(Some(2_000_000)), w));
        assert!(!in_window(&at(Some(999_999)), w));
        assert!(!in_window(&at(None), w));
        assert!(in_window(&at(None), Window::default()));
    }
}
