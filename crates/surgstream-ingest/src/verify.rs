//! `surgstream verify`: the source topics, read from the start, against what is committed — the
//! lake through its manifest (`lake_files`) and the events through `processed_events`.
//!
//! For every partition, the records below the consumer group's committed offset (PostgreSQL's
//! `ingest_offsets`) must be in the committed lake exactly once, by (procedure_id, seq), or be
//! records the ingestor dead-letters (judged by the same checks). Records at or above it are
//! pending: not yet ingested, not a discrepancy (unless `require_drained`). Files in the store
//! that no manifest row names, older than the grace period, are orphans; manifest rows whose file
//! is gone are missing files. With the raw archive on, every record below the committed offset
//! must also be in `raw/` exactly once, with the key, headers and value the topic has.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;
use surgstream_lake::raw::{RAW, read_raw_digests, record_digest};
use surgstream_lake::{FrameBuffer, Lake, TABLE, read_keys};
use surgstream_proto::headers;
use surgstream_store::{Store, offsets, raw};
use uuid::Uuid;

use surgstream_proto::time::now_micros;

use crate::decode::{decode_event, decode_telemetry};
use crate::error::IngestError;

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// How to reach the cluster.
    pub kafka: surgstream_kafka::KafkaSettings,
    /// The consumer group whose committed offsets and manifest are checked.
    pub group: String,
    /// Telemetry topic.
    pub telemetry_topic: String,
    /// Events topic.
    pub events_topic: String,
    /// How long to wait for the broker.
    pub timeout: Duration,
    /// Files younger than this that no manifest row names are in flight, not orphans.
    pub grace: Duration,
}

/// One partition of a source topic.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionCheck {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records in the partition (low to high watermark).
    pub records: u64,
    /// The group's next offset in PostgreSQL; None: never committed.
    pub committed: Option<i64>,
    /// The high watermark when the check started.
    pub high_watermark: i64,
    /// Frames or events in the records below the committed offset.
    pub items: u64,
    /// Records below the committed offset that the ingestor dead-letters.
    pub invalid_records: u64,
    /// Records at or above the committed offset: not yet ingested.
    pub pending_records: u64,
}

/// The outcome. [`VerifyReport::discrepancies`] is 0 when everything committed is exactly what
/// was sent.
#[derive(Debug, Default, Clone, Serialize)]
pub struct VerifyReport {
    /// Per source partition.
    pub partitions: Vec<PartitionCheck>,
    /// Valid frames below the committed offsets.
    pub frames_sent: u64,
    /// Rows in the files the manifest names.
    pub frames_in_lake: u64,
    /// (procedure_id, seq) pairs sent but not in the committed lake.
    pub missing: u64,
    /// Pairs more often in the committed lake than sent.
    pub duplicated: u64,
    /// Pairs in the committed lake that were never sent below the committed offsets.
    pub unexpected: u64,
    /// Up to 10 of the pairs above, as `procedure_id/seq: what`.
    pub examples: Vec<String>,
    /// Files the manifest names.
    pub manifest_files: u64,
    /// Files the manifest names that the store does not have.
    pub missing_files: Vec<String>,
    /// Files in the store that no manifest row names, older than the grace period.
    pub orphan_files: Vec<String>,
    /// Such files younger than the grace period (a flush in progress).
    pub in_flight_files: u64,
    /// Valid events below the committed offsets.
    pub events_sent: u64,
    /// Of those, events whose id is not in `processed_events`.
    pub events_unprocessed: u64,
    /// Records at or above the committed offsets, all partitions.
    pub pending_records: u64,
    /// Whether the raw archive was checked: the group has committed raw files (it ran with
    /// `--raw-archive on`). Then every record below the committed offsets must be in it once,
    /// byte for byte.
    pub raw_checked: bool,
    /// Raw files the raw manifest names (of both topics).
    pub raw_files: u64,
    /// Records in them.
    pub raw_records: u64,
    /// Records below the committed offsets that no raw file holds.
    pub raw_missing: u64,
    /// Records more than once in the raw archive.
    pub raw_duplicated: u64,
    /// Records in the raw archive that the topic does not have below the committed offset.
    pub raw_unexpected: u64,
    /// Records whose archived key, headers or value differ from the topic's.
    pub raw_altered: u64,
    /// Records before the first archived offset of their partition (consumed before the group
    /// archived anything there): not checked.
    pub raw_before_start: u64,
}

impl VerifyReport {
    /// Everything that should not be.
    pub fn discrepancies(&self) -> u64 {
        self.data_discrepancies() + self.orphan_files.len() as u64
    }

    /// What makes the committed lake or tables differ from what was sent: missing, duplicated
    /// or never-sent frames, missing files, unprocessed events, raw records missing, twice,
    /// never consumed or altered. (Orphan files are not read by anyone: untidy, not wrong.)
    pub fn data_discrepancies(&self) -> u64 {
        self.missing
            + self.duplicated
            + self.unexpected
            + self.missing_files.len() as u64
            + self.events_unprocessed
            + self.raw_missing
            + self.raw_duplicated
            + self.raw_unexpected
            + self.raw_altered
    }
}

type Pair = ([u8; 16], i64);

/// A record by (partition, offset, [`record_digest`] of its key, headers and value).
type RawKey = (i32, i64, u64);

/// The records the raw files hold; a file the manifest names but the store lacks is a missing
/// file.
async fn read_raw(
    lake: &Lake,
    files: &[raw::RawFile],
    present: &HashMap<&str, chrono::DateTime<chrono::Utc>>,
    report: &mut VerifyReport,
) -> Result<Vec<RawKey>, IngestError> {
    let mut out = Vec::new();
    for f in files {
        report.raw_files += 1;
        if !present.contains_key(f.path.as_str()) {
            report.missing_files.push(f.path.clone());
            continue;
        }
        let held = read_raw_digests(&f.path, lake.get(&f.path).await?)?;
        report.raw_records += held.len() as u64;
        out.extend(held);
    }
    Ok(out)
}

/// The records from where each partition's archive starts (its first committed raw file's
/// first offset): those before it were consumed before the group archived anything there (an
/// ingestor of an older version, or `--raw-archive off`), and are counted apart.
fn since_archive_start(
    sent: Vec<RawKey>,
    files: &[raw::RawFile],
    report: &mut VerifyReport,
) -> Vec<RawKey> {
    let mut start: HashMap<i32, i64> = HashMap::new();
    for f in files {
        let s = start.entry(f.partition).or_insert(f.first_offset);
        *s = (*s).min(f.first_offset);
    }
    let (kept, before): (Vec<RawKey>, Vec<RawKey>) = sent
        .into_iter()
        .partition(|(p, offset, _)| start.get(p).is_some_and(|s| offset >= s));
    report.raw_before_start += before.len() as u64;
    kept
}

/// Each record below the committed offsets once in the raw archive, byte for byte.
fn compare_raw(
    topic: &str,
    mut sent: Vec<RawKey>,
    mut archived: Vec<RawKey>,
    report: &mut VerifyReport,
) {
    sent.sort_unstable();
    archived.sort_unstable();
    let example = |report: &mut VerifyReport, (p, offset): (i32, i64), what: &str| {
        if report.examples.len() < 10 {
            report
                .examples
                .push(format!("raw {topic}/{p}@{offset}: {what}"));
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < sent.len() || j < archived.len() {
        let at = |k: &RawKey| (k.0, k.1);
        let key = match (sent.get(i), archived.get(j)) {
            (Some(a), Some(b)) => at(a).min(at(b)),
            (Some(a), None) => at(a),
            (None, Some(b)) => at(b),
            (None, None) => break,
        };
        let digest = sent.get(i).filter(|k| at(k) == key).map(|k| k.2);
        let mut s = 0u64;
        while sent.get(i).is_some_and(|k| at(k) == key) {
            s += 1;
            i += 1;
        }
        let mut copies = Vec::new();
        while let Some(k) = archived.get(j).filter(|k| at(k) == key) {
            copies.push(k.2);
            j += 1;
        }
        let held = copies.len() as u64;
        if s == 0 {
            report.raw_unexpected += held;
            example(
                report,
                key,
                "in the raw archive, not in the topic below the committed offset",
            );
        } else if held == 0 {
            report.raw_missing += s;
            example(report, key, "missing from the raw archive");
        } else if held > s {
            report.raw_duplicated += held - s;
            example(report, key, "more than once in the raw archive");
        } else if copies.iter().any(|&d| Some(d) != digest) {
            report.raw_altered += 1;
            example(report, key, "archived with other bytes than the topic has");
        }
    }
}

/// Runs the check.
pub async fn verify(
    cfg: &VerifyConfig,
    lake: &Lake,
    store: &Store,
) -> Result<VerifyReport, IngestError> {
    let mut report = VerifyReport::default();

    // Telemetry: what was sent below the committed offsets.
    let committed = offsets::load(store.pool(), &cfg.group, &cfg.telemetry_topic).await?;
    let mut scratch = FrameBuffer::new();
    let now = now_micros();
    let mut sent: Vec<Pair> = Vec::new();
    let raw_telemetry = raw::raw_files(
        store.pool(),
        &cfg.group,
        &cfg.telemetry_topic,
        Default::default(),
    )
    .await?;
    let raw_events = raw::raw_files(
        store.pool(),
        &cfg.group,
        &cfg.events_topic,
        Default::default(),
    )
    .await?;
    report.raw_checked = !raw_telemetry.is_empty() || !raw_events.is_empty();
    let mut raw_sent: Vec<RawKey> = Vec::new();
    let parts = read_topic(
        cfg,
        &cfg.telemetry_topic,
        &committed,
        report.raw_checked.then_some(&mut raw_sent),
        |offset, schema, payload| {
            let batch = decode_telemetry(schema, payload).ok()?;
            let valid = scratch.push_record(offset, &batch.frames, now).is_ok();
            scratch.clear();
            if !valid {
                return None;
            }
            let mut n = 0;
            for f in &batch.frames {
                let id: [u8; 16] = f.procedure_id.as_ref().try_into().ok()?;
                sent.push((id, i64::try_from(f.seq).ok()?));
                n += 1;
            }
            Some(n)
        },
    )
    .await?;
    report.partitions.extend(parts);
    report.frames_sent = sent.len() as u64;

    // The committed lake.
    let manifest = offsets::manifest_paths(
        store.pool(),
        Some((cfg.group.as_str(), cfg.telemetry_topic.as_str())),
    )
    .await?;
    let mut listed = lake.list(TABLE).await?;
    listed.extend(lake.list(RAW).await?);
    listed.extend(lake.list("archive").await?);
    let present: HashMap<&str, chrono::DateTime<chrono::Utc>> =
        listed.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let mut lake_pairs: Vec<Pair> = Vec::new();
    report.manifest_files = manifest.len() as u64;
    for path in &manifest {
        if !present.contains_key(path.as_str()) {
            report.missing_files.push(path.clone());
            continue;
        }
        let bytes = lake.get(path).await?;
        lake_pairs.extend(read_keys(path, bytes)?);
    }
    report.frames_in_lake = lake_pairs.len() as u64;
    let unnamed = unnamed_files(&listed, store, cfg.grace).await?;
    report.orphan_files = unnamed.orphans;
    report.in_flight_files = unnamed.in_flight;
    compare(&mut sent, &mut lake_pairs, &mut report);
    if report.raw_checked {
        let archived = read_raw(lake, &raw_telemetry, &present, &mut report).await?;
        let sent = since_archive_start(raw_sent, &raw_telemetry, &mut report);
        compare_raw(&cfg.telemetry_topic, sent, archived, &mut report);
    }

    // Events: every valid event below the committed offsets was processed (applied or rejected).
    let committed = offsets::load(store.pool(), &cfg.group, &cfg.events_topic).await?;
    let mut ids: Vec<Uuid> = Vec::new();
    let mut raw_sent: Vec<RawKey> = Vec::new();
    let parts = read_topic(
        cfg,
        &cfg.events_topic,
        &committed,
        report.raw_checked.then_some(&mut raw_sent),
        |_, schema, payload| {
            let event = decode_event(schema, payload).ok()?;
            let id = Uuid::from_slice(&event.event_id).ok()?;
            ids.push(id);
            Some(1)
        },
    )
    .await?;
    if report.raw_checked {
        let archived = read_raw(lake, &raw_events, &present, &mut report).await?;
        let sent = since_archive_start(raw_sent, &raw_events, &mut report);
        compare_raw(&cfg.events_topic, sent, archived, &mut report);
    }
    report.partitions.extend(parts);
    report.events_sent = ids.len() as u64;
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(10_000) {
        let found = offsets::count_processed(store.pool(), chunk).await?;
        report.events_unprocessed += (chunk.len() as u64).saturating_sub(found);
    }
    report.pending_records = report.partitions.iter().map(|p| p.pending_records).sum();
    Ok(report)
}

/// Lake files that no manifest row (of any group) names.
#[derive(Debug, Default)]
pub struct Unnamed {
    /// Older than the grace period: left by a crash between writing and committing, or by a
    /// fenced writer. Nothing reads them; the sweeper removes them.
    pub orphans: Vec<String>,
    /// Younger: most likely a flush in progress.
    pub in_flight: u64,
}

async fn unnamed_files(
    listed: &[(String, chrono::DateTime<chrono::Utc>)],
    store: &Store,
    grace: Duration,
) -> Result<Unnamed, IngestError> {
    let named: std::collections::HashSet<String> = offsets::manifest_paths(store.pool(), None)
        .await?
        .into_iter()
        .collect();
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut out = Unnamed::default();
    for (name, modified) in listed {
        if name.ends_with(".parquet") && !named.contains(name) {
            if *modified > cutoff {
                out.in_flight += 1;
            } else {
                out.orphans.push(name.clone());
            }
        }
    }
    Ok(out)
}

/// Removes the lake files that no manifest row names and that are older than `grace` (orphans);
/// returns what it removed (or, with `dry_run`, would remove) and how many younger ones it left.
/// `grace` must exceed the longest flush, retries included (a flush rewrites its files under the
/// same names when it tries again).
pub async fn sweep(
    lake: &Lake,
    store: &Store,
    grace: Duration,
    dry_run: bool,
) -> Result<Unnamed, IngestError> {
    let mut listed = lake.list(TABLE).await?;
    listed.extend(lake.list(RAW).await?);
    listed.extend(lake.list("archive").await?);
    let unnamed = unnamed_files(&listed, store, grace).await?;
    if !dry_run {
        for name in &unnamed.orphans {
            lake.delete(name).await?;
            tracing::info!(file = %name, "swept an orphan lake file (named by no manifest row)");
        }
        ::metrics::counter!(crate::metrics::FILES_SWEPT).increment(unnamed.orphans.len() as u64);
    }
    Ok(unnamed)
}

/// Multiset comparison of sent and committed pairs.
fn compare(sent: &mut [Pair], lake: &mut [Pair], report: &mut VerifyReport) {
    sent.sort_unstable();
    lake.sort_unstable();
    let hex = |id: &[u8; 16]| Uuid::from_bytes(*id).to_string();
    let (mut i, mut j) = (0, 0);
    while i < sent.len() || j < lake.len() {
        let key = match (sent.get(i), lake.get(j)) {
            (Some(a), Some(b)) => *a.min(b),
            (Some(a), None) => *a,
            (None, Some(b)) => *b,
            (None, None) => break,
        };
        let mut s = 0u64;
        while sent.get(i) == Some(&key) {
            s += 1;
            i += 1;
        }
        let mut l = 0u64;
        while lake.get(j) == Some(&key) {
            l += 1;
            j += 1;
        }
        let what = if s == 0 {
            report.unexpected += l;
            "in the lake, never sent"
        } else if l < s {
            report.missing += s - l;
            "missing from the lake"
        } else if l > s {
            report.duplicated += l - s;
            "duplicated in the lake"
        } else {
            continue;
        };
        if report.examples.len() < 10 {
            report
                .examples
                .push(format!("{}/{}: {what}", hex(&key.0), key.1));
        }
    }
}

/// Reads every partition of `topic` from its low to its high watermark (as of the start), calling
/// `item` for each record below the committed offset: Some(items in it), or None when the
/// ingestor dead-letters it; with `raw`, also noting each such record's [`RawKey`].
async fn read_topic(
    cfg: &VerifyConfig,
    topic: &str,
    committed: &HashMap<i32, i64>,
    mut raw: Option<&mut Vec<RawKey>>,
    mut item: impl FnMut(i64, Option<&[u8]>, &[u8]) -> Option<u64>,
) -> Result<Vec<PartitionCheck>, IngestError> {
    let kafka = |what: String| {
        let brokers = cfg.kafka.brokers().to_owned();
        move |source| IngestError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    let consumer: BaseConsumer<surgstream_kafka::KafkaContext> = cfg
        .kafka
        .client_config()
        .set("group.id", "surgstream-verify")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(cfg.kafka.context())
        .map_err(kafka("create consumer".into()))?;
    // Serves librdkafka's first request for an OAUTHBEARER token (MSK IAM) before the
    // metadata request waits on it.
    let _ = consumer.poll(Duration::ZERO);
    let metadata =
        tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), cfg.timeout))
            .map_err(kafka(format!("metadata of {topic}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(IngestError::MissingTopic {
            topic: topic.to_owned(),
            brokers: cfg.kafka.brokers().to_owned(),
        });
    }
    let mut checks = Vec::new();
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in partitions {
        let (low, high) =
            tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, p, cfg.timeout))
                .map_err(kafka(format!("watermarks of {topic}/{p}")))?;
        let next = committed.get(&p).copied();
        checks.push(PartitionCheck {
            topic: topic.to_owned(),
            partition: p,
            records: (high - low).max(0) as u64,
            committed: next,
            high_watermark: high,
            items: 0,
            invalid_records: 0,
            pending_records: (high - next.unwrap_or(low).max(low)).max(0) as u64,
        });
        let upto = next.unwrap_or(low).min(high);
        if upto > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(kafka(format!("assign {topic}/{p}")))?;
            ends.insert(p, upto);
        }
    }
    if ends.is_empty() {
        return Ok(checks);
    }
    consumer
        .assign(&tpl)
        .map_err(kafka(format!("assign {topic}")))?;
    let mut last_progress = Instant::now();
    while !ends.is_empty() {
        let polled = tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200)));
        let Some(msg) = polled else {
            if last_progress.elapsed() > cfg.timeout * 3 {
                let waiting: Vec<String> = ends
                    .iter()
                    .map(|(p, end)| format!("{topic}/{p} up to {end}"))
                    .collect();
                return Err(IngestError::Stalled {
                    what: format!("reading {}", waiting.join(", ")),
                    waited: last_progress.elapsed(),
                });
            }
            continue;
        };
        let m = msg.map_err(kafka(format!("read {topic}")))?;
        last_progress = Instant::now();
        let (p, offset) = (m.partition(), m.offset());
        let Some(&end) = ends.get(&p) else {
            continue;
        };
        if offset < end {
            let schema = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == headers::SCHEMA))
                .and_then(|h| h.value);
            let check = checks
                .iter_mut()
                .find(|c| c.partition == p)
                .ok_or_else(|| IngestError::Stalled {
                    what: format!("unknown partition {topic}/{p}"),
                    waited: Duration::ZERO,
                })?;
            if let Some(raw) = raw.as_mut() {
                let headers = m.headers().into_iter().flat_map(|h| h.iter());
                let digest = record_digest(m.key(), headers.map(|h| (h.key, h.value)), m.payload());
                raw.push((p, offset, digest));
            }
            match item(offset, schema, m.payload().unwrap_or_default()) {
                Some(n) => check.items += n,
                None => check.invalid_records += 1,
            }
        }
        if offset + 1 >= end {
            ends.remove(&p);
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_sent_and_committed_as_multisets() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let mut sent = vec![(a, 0), (a, 1), (a, 2), (b, 0)];
        let mut lake = vec![(a, 2), (a, 0), (a, 0), (b, 7)];
        let mut r = VerifyReport::default();
        compare(&mut sent, &mut lake, &mut r);
        // (a,0) twice: 1 duplicated; (a,1) and (b,0): missing; (b,7): never sent.
        assert_eq!((r.missing, r.duplicated, r.unexpected), (2, 1, 1));
        assert_eq!(r.examples.len(), 4);
        assert_eq!(r.discrepancies(), 4);
        let mut same = vec![(a, 0), (b, 1)];
        let mut r = VerifyReport::default();
        compare(&mut same.clone(), &mut same, &mut r);
        assert_eq!(r.discrepancies(), 0);
    }
}
