//! `surgstream ingest`: one consumer group reading the telemetry and events topics.
//!
//! Telemetry records are validated into per-partition [`FrameBuffer`]s and flushed as Parquet
//! files under their final names; then ONE PostgreSQL transaction records the files in
//! `lake_files` and moves `ingest_offsets` with compare-and-set; only then is the offset
//! committed to Kafka. Events are applied the same way: the rows and the offset move in one
//! transaction. On assignment the consumer resumes from PostgreSQL's offsets, so a crash at any
//! moment neither loses nor duplicates a committed record. Bad records go to the dead-letter
//! topics with their reason and the offset moves on.

mod dlq;
mod fault;
pub mod health;
pub mod metrics;
pub mod policy;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::DateTime;
use policy::FlushCause;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext, Message};
use serde::Serialize;
use surgstream_lake::{FrameBuffer, Lake, LakeError, LakePath, encode_parquet, writer_properties};
use surgstream_proto::latency::{LatencySummary, PartitionLatencies};
use surgstream_proto::time::now_micros;
use surgstream_proto::{headers, v1::Event};
use surgstream_store::offsets::{self, LakeFile};
use surgstream_store::{Applied, Source, Store, StoreError, apply_events};
use tokio_util::sync::CancellationToken;

pub use dlq::DeadLetters;

/// Ingest settings. Every field has a command-line option and an environment variable.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Consumer group; offsets in PostgreSQL are kept per group.
    pub group: String,
    /// Telemetry topic.
    pub telemetry_topic: String,
    /// Events topic.
    pub events_topic: String,
    /// Dead-letter topic for telemetry.
    pub telemetry_dlq_topic: String,
    /// Dead-letter topic for events.
    pub events_dlq_topic: String,
    /// A partition's buffer flushes when it holds this many frames.
    pub max_rows: usize,
    /// A partition's buffer flushes when it holds this many bytes.
    pub max_bytes: usize,
    /// All buffers together hold at most this many bytes: over it, the largest flushes.
    pub memory_limit: usize,
    /// A partition's frames are flushed this long after their timestamps (after they arrive,
    /// for frames that arrive late: see [`policy::hold`]).
    pub max_age: Duration,
    /// Events applied per PostgreSQL transaction, at most.
    pub event_batch: usize,
    /// Pending events are applied at least this often.
    pub event_max_age: Duration,
    /// Remove orphan lake files this often (see [`verify::sweep`]).
    pub sweep_interval: Duration,
    /// Orphans are files older than this that no manifest row names.
    pub sweep_grace: Duration,
    /// How long a flush keeps trying while the lake's store fails transiently.
    pub store_retry_timeout: Duration,
    /// Drain and exit once no record arrived for this long and every partition is caught up.
    pub until_idle: Option<Duration>,
    /// How long to wait for the broker (metadata, watermarks, DLQ deliveries).
    pub timeout: Duration,
    /// Where the ingestor reports its readiness (`/readyz`).
    pub health: health::Health,
    /// librdkafka properties for the consumer (fetch sizes, security, …), applied over the
    /// ingestor's own settings; those that carry the delivery guarantee are refused by
    /// [`check_consumer_option`].
    pub consumer_options: Vec<(String, String)>,
}

/// What went wrong; the service stops, and a restart resumes exactly where PostgreSQL says.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Kafka client creation, subscription or metadata failed.
    #[error("Kafka at {brokers}: {what}: {source}")]
    Kafka {
        /// The bootstrap servers.
        brokers: String,
        /// What was being done.
        what: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// A topic to consume does not exist.
    #[error(
        "topic {topic} does not exist on {brokers} (create it, e.g. with `scripts/services.sh up`)"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A record could not be dead-lettered: stopping rather than losing it.
    #[error("cannot dead-letter {source_topic}/{partition}@{offset} to {dlq}: {source}")]
    DeadLetter {
        /// The dead-letter topic.
        dlq: String,
        /// Source topic.
        source_topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The producer's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The broker stopped answering while a topic was being read.
    #[error("Kafka stalled: {what}: no record for {waited:?}")]
    Stalled {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// A lake file's upload was cancelled: the async runtime is shutting down.
    #[error("interrupted while storing a lake file: the runtime is shutting down")]
    Interrupted,
    /// Arrow refused a batch built from validated frames (a bug).
    #[error("cannot build Arrow batch for {topic}/{partition}: {source}")]
    Arrow {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Arrow's error.
        #[source]
        source: surgstream_lake::schema::ArrowError,
    },
}

/// Counts of one run, for summaries and tests.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    /// Telemetry frames committed to the lake.
    pub frames_written: u64,
    /// Parquet files committed.
    pub files_written: u64,
    /// Bytes of Parquet committed.
    pub bytes_written: u64,
    /// Events applied to PostgreSQL.
    pub events_applied: u64,
    /// Events processed before (same event id): replays that changed nothing.
    pub events_replayed: u64,
    /// Flushes by cause.
    pub flushes: std::collections::BTreeMap<&'static str, u64>,
    /// Telemetry records dead-lettered.
    pub telemetry_dead_letters: u64,
    /// Event records dead-lettered (undecodable or not applicable).
    pub event_dead_letters: u64,
    /// Flushes that lost a compare-and-set to another consumer (their files were removed).
    pub fenced_flushes: u64,
    /// Seconds from start to exit.
    pub elapsed_seconds: f64,
    /// Telemetry records per partition, from their send (the record's Kafka timestamp) to
    /// being received here: the broker's and the fetches' part of the end-to-end latency.
    pub record_age: std::collections::BTreeMap<i32, LatencySummary>,
}

/// The consumer's `fetch.min.bytes` unless `--consumer-option` sets it.
pub const FETCH_MIN_BYTES: &str = "1048576";
/// The consumer's `fetch.wait.max.ms` unless `--consumer-option` sets it.
pub const FETCH_WAIT_MAX_MS: &str = "100";

/// How long a member may hold no partition before it rejoins the group (doubled each time).
const REJOIN_AFTER: Duration = Duration::from_secs(20);
/// How long a flush keeps trying while PostgreSQL is unreachable (and `--until-idle` keeps
/// asking a broker that does not answer its watermark queries) before the ingestor gives up;
/// well inside librdkafka's 5-minute max.poll.interval.ms, so the group keeps this member.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Assignment changes, recorded by the rebalance callback and reconciled by the main loop.
#[derive(Debug, Default)]
struct Assignment {
    generation: u64,
    partitions: HashSet<(String, i32)>,
}

/// Consumer context: records rebalances.
#[derive(Debug, Clone, Default)]
struct Ctx {
    assignment: Arc<Mutex<Assignment>>,
}

impl ClientContext for Ctx {
    /// Every 5 s (`statistics.interval.ms`): consumer lag per assigned partition, the records
    /// between Kafka's committed offset and the high watermark, as `kafka-consumer-groups`
    /// reports it (the Kafka commit follows the PostgreSQL one); and the records fetched but not
    /// yet handed to the ingestor.
    fn stats(&self, statistics: rdkafka::Statistics) {
        // The consumer forwards every partition's queue to its one queue, and each partition
        // reports that queue's count: one gauge, not one per partition.
        let queued = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|(partition, _)| **partition >= 0)
            .map(|(_, p)| p.fetchq_cnt)
            .max()
            .unwrap_or(0);
        ::metrics::gauge!(metrics::FETCH_QUEUE).set(queued as f64);
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    ::metrics::gauge!(metrics::CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut a) = self.assignment.lock() else {
            return;
        };
        a.generation += 1;
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    a.partitions.insert((e.topic().to_owned(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    a.partitions.remove(&(e.topic().to_owned(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// An event waiting for its batch transaction, with the record as it came (key and value) so
/// that a rejected event is dead-lettered byte for byte, unknown fields included.
#[derive(Debug)]
struct PendingEvent {
    offset: i64,
    event: Event,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// `Err((reason, message))` when a `schema` header is present and names another message; a
/// record without the header is accepted if it decodes.
fn check_schema(found: Option<&[u8]>, expected: &str) -> Result<(), (&'static str, String)> {
    match found {
        Some(s) if s != expected.as_bytes() => Err((
            "unknown_schema",
            format!(
                "schema header {:?} is not {expected}",
                String::from_utf8_lossy(s)
            ),
        )),
        _ => Ok(()),
    }
}

/// A telemetry record decoded by prost, or why it is dead-lettered (before the frames' own
/// checks, which the buffer makes). `verify` reads the source topic with this decoder, not the
/// ingestor's in-place one, so that a fault in either shows as a discrepancy.
fn decode_telemetry(
    schema: Option<&[u8]>,
    payload: &[u8],
) -> Result<surgstream_proto::v1::TelemetryBatch, (&'static str, String)> {
    check_schema(schema, headers::SCHEMA_TELEMETRY_BATCH)?;
    surgstream_proto::decode_batch(payload).map_err(|e| ("undecodable", e.to_string()))
}

/// An event record as the ingestor reads it: the event, or why it is dead-lettered.
fn decode_event(schema: Option<&[u8]>, payload: &[u8]) -> Result<Event, (&'static str, String)> {
    check_schema(schema, headers::SCHEMA_EVENT)?;
    surgstream_proto::decode_event(payload).map_err(|e| ("undecodable", e.to_string()))
}

/// Per assigned partition.
#[derive(Debug)]
struct PartitionState {
    /// The next offset that is not yet durable (PostgreSQL's view); None: never committed.
    durable: Option<i64>,
    /// The next offset expected from Kafka.
    position: i64,
    /// Whether a seek to `position` was already attempted after assignment.
    seeked: bool,
    /// When the buffer is due for its age: the earliest deadline of its records.
    due: Option<Instant>,
    /// Telemetry buffer (telemetry topic only).
    frames: FrameBuffer,
    /// Pending events (events topic only).
    events: Vec<PendingEvent>,
    /// Bytes of the pending events' payloads.
    event_bytes: usize,
    /// Dead letters handed to the producer, to be acknowledged before the offset moves on.
    dead_letters: Vec<dlq::PendingDelivery>,
    /// Newest frame timestamp buffered (µs), for latency.
    newest_frame: i64,
}

impl PartitionState {
    fn new(durable: Option<i64>) -> Self {
        Self {
            durable,
            position: durable.unwrap_or(0),
            seeked: false,
            due: None,
            frames: FrameBuffer::new(),
            events: Vec::new(),
            event_bytes: 0,
            dead_letters: Vec::new(),
            newest_frame: i64::MIN,
        }
    }

    fn pending(&self) -> bool {
        self.position > self.durable.unwrap_or(0)
            || !self.frames.is_empty()
            || !self.events.is_empty()
    }
}

/// The running service.
struct Ingest {
    cfg: IngestConfig,
    consumer: Arc<StreamConsumer<Ctx>>,
    ctx: Ctx,
    lake: Lake,
    store: Store,
    dlq: DeadLetters,
    parts: HashMap<(String, i32), PartitionState>,
    generation: u64,
    report: IngestReport,
    shutdown: CancellationToken,
    /// Newest frame timestamp committed to the lake (µs), for the write lag.
    newest_committed: i64,
    /// Telemetry records' age when received, per partition.
    record_age: PartitionLatencies,
}

/// Consumer properties `--consumer-option` may not set: the group is its own option, and
/// the delivery guarantee needs offsets committed with the data (never by librdkafka) and a new
/// group to start from the earliest record.
const RESERVED_CONSUMER_OPTIONS: [&str; 5] = [
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "bootstrap.servers",
];

/// Parses a `KEY=VALUE` librdkafka consumer property, refusing the reserved ones by name.
pub fn check_consumer_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE (e.g. fetch.max.bytes=104857600)"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("{s:?} has no property name before '='"));
    }
    if RESERVED_CONSUMER_OPTIONS.contains(&k) {
        return Err(format!(
            "{k} is set by surgstream itself (the delivery guarantee depends on it; use --brokers \
             and --group for those two)"
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// The ingest consumer's librdkafka properties: ours, then `--consumer-option`'s, then what
/// the delivery guarantee rests on, which nothing overrides.
fn consumer_config(brokers: &str, group: &str, options: &[(String, String)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", brokers)
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "5000")
        .set("client.id", "surgstream-ingest")
        // Fewer, fuller fetches (librdkafka's defaults answer each fetch as soon as one byte is
        // there): a broker that pays per request keeps up. Against Tansu at 100,000 frames/s,
        // with librdkafka's defaults a partition's records waited up to 79 s on the broker and
        // the producer's acknowledgements 12 s; with these, 6 s and 1 s (README, Performance).
        // At most 100 ms more per fetch at low rates, well inside a flush's --max-age.
        .set("fetch.min.bytes", FETCH_MIN_BYTES)
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
    for (k, v) in options {
        client.set(k, v);
    }
    // Offsets live in PostgreSQL, never in Kafka, and a group without them starts from the
    // beginning.
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    client
}

/// Runs until `shutdown` is cancelled or, with `until_idle`, until the topics are drained;
/// everything buffered is flushed and committed before returning. With `idle_gate`, the idle
/// exit is only considered once the gate is cancelled (the demo opens it when the simulator
/// has finished).
pub async fn run(
    cfg: IngestConfig,
    lake: Lake,
    store: Store,
    shutdown: CancellationToken,
    idle_gate: Option<CancellationToken>,
) -> Result<IngestReport, IngestError> {
    metrics::describe();
    let started = Instant::now();
    let ctx = Ctx::default();
    let kafka = |what: &str| {
        let brokers = cfg.brokers.clone();
        let what = what.to_owned();
        move |source| IngestError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    let consumer: StreamConsumer<Ctx> =
        consumer_config(&cfg.brokers, &cfg.group, &cfg.consumer_options)
            .create_with_context(ctx.clone())
            .map_err(kafka("create consumer"))?;
    let consumer = Arc::new(consumer);
    check_topics(&consumer, &cfg).await?;
    let dlq = DeadLetters::connect(&cfg.brokers, cfg.timeout)
        .map_err(kafka("create dead-letter producer"))?;
    consumer
        .subscribe(&[&cfg.telemetry_topic, &cfg.events_topic])
        .map_err(kafka("subscribe"))?;
    tracing::info!(brokers = %cfg.brokers, group = %cfg.group, lake = %lake.url(), postgres = %store.target(), "ingest started");

    let probes = CancellationToken::new();
    tokio::spawn(probe(
        cfg.clone(),
        consumer.clone(),
        lake.clone(),
        store.clone(),
        probes.clone(),
    ));
    let mut ingest = Ingest {
        cfg,
        consumer,
        ctx,
        lake,
        store,
        dlq,
        parts: HashMap::new(),
        generation: 0,
        report: IngestReport::default(),
        shutdown: shutdown.clone(),
        newest_committed: i64::MIN,
        record_age: PartitionLatencies::default(),
    };
    let result = ingest.main_loop(&shutdown, idle_gate.as_ref()).await;
    let _stop_probes = probes.drop_guard();
    if result.is_ok() {
        ingest.flush_all().await?;
    }
    ingest.report.elapsed_seconds = started.elapsed().as_secs_f64();
    ingest.report.record_age = ingest.record_age.by_partition();
    result.map(|()| ingest.report)
}

/// Probes the broker, PostgreSQL and the lake's store every 5 s for `/readyz`, independently of
/// the ingest loop (which may be waiting for one of them).
async fn probe(
    cfg: IngestConfig,
    consumer: Arc<StreamConsumer<Ctx>>,
    lake: Lake,
    store: Store,
    stop: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(5);
    const WAIT: Duration = Duration::from_secs(3);
    loop {
        let c = consumer.clone();
        let topic = cfg.telemetry_topic.clone();
        let broker = tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&topic), WAIT))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map(|_| ()).map_err(|e| format!("{}: {e}", cfg.brokers)));
        cfg.health.set("broker", broker);
        let db = tokio::time::timeout(WAIT, store.ping())
            .await
            .map(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|_| Err(format!("no answer within {WAIT:?}")));
        cfg.health.set("database", db);
        let lake_ok = tokio::time::timeout(WAIT, lake.list("_surgstream/readiness"))
            .await
            .map_err(|_| format!("{}: no answer within {WAIT:?}", lake.url()))
            .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
        cfg.health.set("store", lake_ok);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn check_topics(
    consumer: &Arc<StreamConsumer<Ctx>>,
    cfg: &IngestConfig,
) -> Result<(), IngestError> {
    let c = consumer.clone();
    let timeout = cfg.timeout;
    let md = tokio::task::spawn_blocking(move || c.fetch_metadata(None, timeout))
        .await
        .map_err(|_| IngestError::Kafka {
            brokers: cfg.brokers.clone(),
            what: "fetch metadata".into(),
            source: Box::new(KafkaError::Canceled),
        })?
        .map_err(|source| IngestError::Kafka {
            brokers: cfg.brokers.clone(),
            what: "fetch metadata".into(),
            source: Box::new(source),
        })?;
    for topic in [
        &cfg.telemetry_topic,
        &cfg.events_topic,
        &cfg.telemetry_dlq_topic,
        &cfg.events_dlq_topic,
    ] {
        if !md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        {
            return Err(IngestError::MissingTopic {
                topic: topic.clone(),
                brokers: cfg.brokers.clone(),
            });
        }
    }
    Ok(())
}

/// Writes one lake object, trying again with backoff (250 ms doubling to 10 s) while the store
/// fails transiently, for up to `give_up_after`. Nothing is consumed meanwhile, so the buffers
/// stay as they are; a shutdown request ends the wait (the records were not committed and are
/// read again on restart).
async fn put_with_retry(
    lake: &Lake,
    path: &str,
    bytes: bytes::Bytes,
    shutdown: &CancellationToken,
    give_up_after: Duration,
) -> Result<(), IngestError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut failures = 0u32;
    loop {
        match lake.put(path, bytes.clone()).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(path, failures, down_for = ?started.elapsed(), "lake store reachable again");
                }
                return Ok(());
            }
            Err(e) if e.is_transient() && started.elapsed() < give_up_after => {
                failures += 1;
                ::metrics::counter!(metrics::STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, retry_in = ?wait, failing_for = ?started.elapsed(),
                    "lake store unavailable: keeping the buffers, not consuming, trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(e.into()),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How many lake files a flush keeps being stored at once. A backfill's flush writes hundreds
/// of small files (one per event hour): one PUT after another, an object store's round trip
/// (tens of milliseconds on S3) would be paid once per file.
const PUTS_IN_FLIGHT: usize = 8;

/// Encodes one hour of a partition's frames as Parquet, on the flushing task: encoding on
/// several threads at once bought nothing on two cores shared with the broker, and grew the
/// resident memory by an allocator arena per thread.
fn encode_file(
    file: &LakePath,
    h: &surgstream_lake::HourBatch,
) -> Result<(LakeFile, bytes::Bytes), LakeError> {
    let path = file.to_string();
    let bytes =
        encode_parquet(&h.batch, writer_properties()).map_err(|source| LakeError::Encode {
            path: path.clone(),
            source,
        })?;
    let meta = LakeFile {
        path,
        partition: file.partition,
        first_offset: file.first_offset,
        last_offset: file.last_offset,
        rows: h.batch.num_rows() as i64,
        bytes: bytes.len() as i64,
        min_event_time: DateTime::from_timestamp_micros(h.min_timestamp).unwrap_or_default(),
        max_event_time: DateTime::from_timestamp_micros(h.max_timestamp).unwrap_or_default(),
    };
    Ok((meta, bytes))
}

/// Stores one encoded lake file ([`put_with_retry`]), as a task of its own.
async fn store_file(
    lake: Lake,
    file: LakeFile,
    bytes: bytes::Bytes,
    shutdown: CancellationToken,
    give_up_after: Duration,
) -> Result<LakeFile, IngestError> {
    put_with_retry(&lake, &file.path, bytes, &shutdown, give_up_after).await?;
    Ok(file)
}

/// The file a [`store_file`] task stored; a panic in it is a panic here.
async fn finish(
    task: tokio::task::JoinHandle<Result<LakeFile, IngestError>>,
) -> Result<LakeFile, IngestError> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(IngestError::Interrupted),
    }
}

/// After a fenced flush: removes the files this consumer wrote, except those that the manifest
/// names. A winner that flushed the same offset range wrote the same bytes under the same name
/// and committed them: removing "our" copy would remove its committed file. Returns the paths
/// removed.
pub async fn discard_uncommitted(
    lake: &Lake,
    store: &Store,
    paths: &[String],
) -> Result<Vec<String>, IngestError> {
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let named = offsets::named(store.pool(), &refs).await?;
    let mut removed = Vec::new();
    for p in paths.iter().filter(|p| !named.contains(p)) {
        lake.delete(p).await?;
        removed.push(p.clone());
    }
    Ok(removed)
}

impl Ingest {
    async fn main_loop(
        &mut self,
        shutdown: &CancellationToken,
        idle_gate: Option<&CancellationToken>,
    ) -> Result<(), IngestError> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_record = Instant::now();
        let mut stats = Instant::now();
        let mut unassigned_since = Some(Instant::now());
        let mut rejoin_after = REJOIN_AFTER;
        let mut watermark_failing: Option<Instant> = None;
        let mut last_sweep = Instant::now();
        let mut sweeping: Option<tokio::task::JoinHandle<Result<verify::Unnamed, IngestError>>> =
            None;
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    tracing::info!("shutdown requested: flushing");
                    return Ok(());
                }
                msg = consumer.recv() => {
                    self.beat();
                    self.reconcile_assignment().await?;
                    match msg {
                        Ok(m) => {
                            last_record = Instant::now();
                            self.handle(&m).await?;
                            self.flush_due().await?;
                        }
                        Err(e) => tracing::warn!(error = %e, "consumer error"),
                    }
                }
                _ = tick.tick() => {
                    self.beat();
                    self.reconcile_assignment().await?;
                    self.flush_due().await?;
                    self.rejoin_if_stranded(&mut unassigned_since, &mut rejoin_after)?;
                    if let Some(task) = sweeping.take_if(|t| t.is_finished()) {
                        match task.await {
                            Ok(Ok(u)) => tracing::debug!(removed = u.orphans.len(), in_flight = u.in_flight, "sweep done"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "sweeping orphan lake files failed; trying again later"),
                            Err(e) => tracing::warn!(error = %e, "the sweeper task failed"),
                        }
                    }
                    if sweeping.is_none() && last_sweep.elapsed() >= self.cfg.sweep_interval {
                        last_sweep = Instant::now();
                        let (lake, store, grace) = (self.lake.clone(), self.store.clone(), self.cfg.sweep_grace);
                        sweeping = Some(tokio::spawn(async move { verify::sweep(&lake, &store, grace, false).await }));
                    }
                    if stats.elapsed() >= Duration::from_secs(5) {
                        stats = Instant::now();
                        self.record_lag();
                        tracing::info!(frames_written = self.report.frames_written, files = self.report.files_written,
                            events_applied = self.report.events_applied, "ingest progress");
                    }
                    if let Some(idle) = self.cfg.until_idle {
                        let gate_open = idle_gate.is_none_or(CancellationToken::is_cancelled);
                        if gate_open && last_record.elapsed() >= idle && self.caught_up_or_wait(&mut watermark_failing).await? {
                            tracing::info!(idle = ?idle, "topics idle and drained: stopping");
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Tells `/readyz` the loop runs; stalled past twice the longest flush age (30 s at least).
    fn beat(&self) {
        let stall = (self.cfg.max_age.max(self.cfg.event_max_age) * 2).max(Duration::from_secs(30));
        self.cfg.health.beat(stall);
    }

    /// Write lag: seconds between now and the newest frame committed. (Consumer lag per
    /// partition comes from librdkafka's statistics: [`Ctx::stats`].)
    fn record_lag(&self) {
        if self.newest_committed > i64::MIN {
            let behind = (now_micros() - self.newest_committed) as f64 / 1e6;
            ::metrics::gauge!(metrics::WRITE_LAG).set(behind.max(0.0));
        }
    }

    /// A member left with no partition for long is most likely stranded by a broker that lost
    /// the group's leader during a rebalance (seen with Tansu after `kill -9` of the previous
    /// leader): it leaves and joins the group again, backing off so that a legitimately idle
    /// member (more members than partitions) rejoins rarely.
    fn rejoin_if_stranded(
        &mut self,
        since: &mut Option<Instant>,
        after: &mut Duration,
    ) -> Result<(), IngestError> {
        if !self.parts.is_empty() {
            *since = None;
            *after = REJOIN_AFTER;
            return Ok(());
        }
        let started = *since.get_or_insert_with(Instant::now);
        if started.elapsed() < *after {
            return Ok(());
        }
        tracing::warn!(waited = ?started.elapsed(), group = %self.cfg.group, "no partition assigned: leaving and joining the group again");
        self.consumer.unsubscribe();
        self.consumer
            .subscribe(&[&self.cfg.telemetry_topic, &self.cfg.events_topic])
            .map_err(|source| IngestError::Kafka {
                brokers: self.cfg.brokers.clone(),
                what: "subscribe".into(),
                source: Box::new(source),
            })?;
        *since = Some(Instant::now());
        *after = (*after * 2).min(Duration::from_secs(300));
        Ok(())
    }

    /// Drops the state of revoked partitions (their buffered records were not committed: the
    /// new owner re-reads them from PostgreSQL's offsets) and loads offsets for new ones.
    async fn reconcile_assignment(&mut self) -> Result<(), IngestError> {
        let (generation, assigned) = {
            let Ok(a) = self.ctx.assignment.lock() else {
                return Ok(());
            };
            if a.generation == self.generation {
                return Ok(());
            }
            (a.generation, a.partitions.clone())
        };
        self.generation = generation;
        self.parts.retain(|k, s| {
            let keep = assigned.contains(k);
            if !keep && s.pending() {
                tracing::info!(topic = %k.0, partition = k.1, "partition revoked: dropping its uncommitted buffer");
            }
            keep
        });
        for topic in [
            self.cfg.telemetry_topic.clone(),
            self.cfg.events_topic.clone(),
        ] {
            let durable = offsets::load(self.store.pool(), &self.cfg.group, &topic).await?;
            for (t, p) in assigned.iter().filter(|(t, _)| *t == topic) {
                self.parts
                    .entry((t.clone(), *p))
                    .or_insert_with(|| PartitionState::new(durable.get(p).copied()));
            }
        }
        Ok(())
    }

    async fn handle(&mut self, m: &BorrowedMessage<'_>) -> Result<(), IngestError> {
        let key = (m.topic().to_owned(), m.partition());
        let offset = m.offset();
        let Some(state) = self.parts.get_mut(&key) else {
            // A record of a partition we no longer own (fetched before a revoke): ignore it.
            return Ok(());
        };
        if !state.seeked {
            state.seeked = true;
            // PostgreSQL, not Kafka's committed offset, says where a partition resumes: Kafka's
            // may be behind (a crash between the two commits) or ahead (offsets reset in
            // PostgreSQL to replay, a database restored from a backup).
            if state.durable.is_some() && offset != state.position {
                let behind = offset > state.position;
                if behind {
                    tracing::info!(topic = %key.0, partition = key.1, from = state.position, kafka = offset,
                        "resuming at PostgreSQL's offset, behind Kafka's committed one");
                }
                match self.consumer.seek(
                    &key.0,
                    key.1,
                    Offset::Offset(state.position),
                    self.cfg.timeout,
                ) {
                    // librdkafka drops what it fetched before the seek.
                    Ok(()) => return Ok(()),
                    Err(e) if behind => {
                        return Err(IngestError::Kafka {
                            brokers: self.cfg.brokers.clone(),
                            what: format!(
                                "seek {}/{} back to offset {} (refusing to skip records)",
                                key.0, key.1, state.position
                            ),
                            source: Box::new(e),
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, topic = %key.0, partition = key.1, "seek failed; skipping replayed records instead");
                    }
                }
            }
        }
        if offset < state.position {
            // Already durable (or already buffered): a replay after resume.
            return Ok(());
        }
        if offset > state.position {
            tracing::debug!(topic = %key.0, partition = key.1, expected = state.position, got = offset, "offset gap (compaction or control records)");
        }
        state.position = offset + 1;
        let arrived = Instant::now();
        let schema = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == headers::SCHEMA))
            .and_then(|h| h.value);
        let payload = m.payload().unwrap_or_default();
        let src = Source {
            topic: &key.0,
            partition: key.1,
            offset,
        };
        let telemetry = key.0 == self.cfg.telemetry_topic;
        // A record without frames (an event, a dead letter) waits its whole age limit.
        let mut hold = if telemetry {
            self.cfg.max_age
        } else {
            self.cfg.event_max_age
        };
        let now = now_micros();
        if telemetry && let Some(sent_ms) = m.timestamp().to_millis() {
            let seconds = self.record_age.record_age(key.1, sent_ms, now);
            ::metrics::histogram!(metrics::RECORD_AGE).record(seconds);
        }
        let rejected = if telemetry {
            check_schema(schema, headers::SCHEMA_TELEMETRY_BATCH)
                .and_then(|()| {
                    // Read in place, straight into the buffer: no per-frame allocation.
                    let pushed = state
                        .frames
                        .push_encoded(offset, payload, now)
                        .map_err(|e| (e.reason(), e.to_string()))?;
                    ::metrics::counter!(metrics::FRAMES_CONSUMED).increment(pushed.frames as u64);
                    state.newest_frame = state.newest_frame.max(pushed.newest);
                    if pushed.frames > 0 {
                        let delay =
                            Duration::from_micros(now.saturating_sub(pushed.oldest).max(0) as u64);
                        hold = policy::hold(self.cfg.max_age, delay);
                    }
                    Ok(())
                })
                .err()
        } else {
            ::metrics::counter!(metrics::EVENTS_CONSUMED).increment(1);
            decode_event(schema, payload)
                .map(|event| {
                    state.event_bytes += payload.len();
                    state.events.push(PendingEvent {
                        offset,
                        event,
                        key: m.key().map(<[u8]>::to_vec),
                        payload: payload.to_vec(),
                    });
                })
                .err()
        };
        if let Some((reason, message)) = rejected {
            let (dlq, count) = if telemetry {
                state.frames.note_offset(offset);
                (
                    &self.cfg.telemetry_dlq_topic,
                    &mut self.report.telemetry_dead_letters,
                )
            } else {
                (
                    &self.cfg.events_dlq_topic,
                    &mut self.report.event_dead_letters,
                )
            };
            let delivery = self
                .dlq
                .send(dlq, src, m.key(), payload, reason, &message)?;
            state.dead_letters.push(delivery);
            *count += 1;
        }
        let due = arrived + hold;
        state.due = Some(state.due.map_or(due, |d| d.min(due)));
        Ok(())
    }

    /// Flushes what the flush policy ([`policy::decide`]) says is due now.
    async fn flush_due(&mut self) -> Result<(), IngestError> {
        let buffers: Vec<policy::Buffered<&(String, i32)>> = self
            .parts
            .iter()
            .map(|(k, s)| {
                let telemetry = k.0 == self.cfg.telemetry_topic;
                policy::Buffered {
                    key: k,
                    rows: if telemetry {
                        s.frames.rows()
                    } else {
                        s.events.len()
                    },
                    bytes: s.frames.bytes() + s.event_bytes,
                    due: s.due,
                    max_rows: if telemetry {
                        self.cfg.max_rows
                    } else {
                        self.cfg.event_batch
                    },
                }
            })
            .collect();
        ::metrics::gauge!(metrics::BUFFERED_BYTES)
            .set(buffers.iter().map(|b| b.bytes).sum::<usize>() as f64);
        ::metrics::gauge!(metrics::OPEN_BUFFERS)
            .set(buffers.iter().filter(|b| b.due.is_some()).count() as f64);
        let limits = policy::Limits {
            max_bytes: self.cfg.max_bytes,
            memory_limit: self.cfg.memory_limit,
        };
        let due: Vec<((String, i32), FlushCause)> =
            policy::decide(&buffers, limits, Instant::now())
                .into_iter()
                .map(|(k, cause)| (k.clone(), cause))
                .collect();
        self.flush(due).await
    }

    async fn flush_all(&mut self) -> Result<(), IngestError> {
        let due: Vec<_> = self
            .parts
            .iter()
            .filter(|(_, s)| s.pending())
            .map(|(k, _)| (k.clone(), FlushCause::Shutdown))
            .collect();
        self.flush(due).await
    }

    /// Makes everything consumed from these partitions durable, then commits their offsets:
    /// first the lake files of all of them, under their final names and before any
    /// transaction is open (a store that is down holds no PostgreSQL lock while the ingestor
    /// waits for it), each stored while the next is encoded ([`PUTS_IN_FLIGHT`] at most); then
    /// one transaction per partition, in order. Nothing is consumed meanwhile.
    async fn flush(&mut self, due: Vec<((String, i32), FlushCause)>) -> Result<(), IngestError> {
        let started = Instant::now();
        let written = self.write_files(&due).await?;
        for ((key, cause), files) in due.iter().zip(written) {
            self.commit(key, *cause, &files, started).await?;
        }
        Ok(())
    }

    /// The lake files of each telemetry partition in `due` (none for events, or for a
    /// partition with no frames pending), in `due`'s order.
    async fn write_files(
        &self,
        due: &[((String, i32), FlushCause)],
    ) -> Result<Vec<Vec<LakeFile>>, IngestError> {
        let mut files: Vec<Vec<LakeFile>> = due.iter().map(|_| Vec::new()).collect();
        let mut running: std::collections::VecDeque<(usize, tokio::task::JoinHandle<_>)> =
            std::collections::VecDeque::new();
        let result = async {
            for (i, (key, _)) in due.iter().enumerate() {
                let Some(state) = self.parts.get(key) else {
                    continue;
                };
                if key.0 != self.cfg.telemetry_topic || state.frames.is_empty() {
                    continue;
                }
                let partition = key.1;
                let hours =
                    state
                        .frames
                        .to_hour_batches()
                        .map_err(|source| IngestError::Arrow {
                            topic: key.0.clone(),
                            partition,
                            source,
                        })?;
                let (first, last) = state
                    .frames
                    .offsets()
                    .unwrap_or((state.position - 1, state.position - 1));
                for h in &hours {
                    let file = LakePath {
                        hour: h.hour,
                        partition,
                        first_offset: first,
                        last_offset: last,
                    };
                    let (meta, bytes) = encode_file(&file, h)?;
                    if running.len() >= PUTS_IN_FLIGHT
                        && let Some((j, task)) = running.pop_front()
                    {
                        files[j].push(finish(task).await?);
                    }
                    let task = tokio::spawn(store_file(
                        self.lake.clone(),
                        meta,
                        bytes,
                        self.shutdown.clone(),
                        self.cfg.store_retry_timeout,
                    ));
                    running.push_back((i, task));
                }
            }
            while let Some((j, task)) = running.pop_front() {
                files[j].push(finish(task).await?);
            }
            Ok(())
        }
        .await;
        // On a failure the files still being written are not waited for: they are named by no
        // manifest row, and the sweep removes them (as after a crash).
        for (_, task) in running {
            task.abort();
        }
        result.map(|()| files)
    }

    /// [`Self::commit_once`], tried again while PostgreSQL is unreachable (a restart, a
    /// failover): the buffer stays in memory and nothing is consumed meanwhile; the files stay
    /// as written. Gives up after [`RETRY_FOR`].
    async fn commit(
        &mut self,
        key: &(String, i32),
        cause: FlushCause,
        written: &[LakeFile],
        started: Instant,
    ) -> Result<(), IngestError> {
        let retrying = Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match self.commit_once(key, cause, written, started).await {
                Err(IngestError::Store(e))
                    if e.is_transient() && retrying.elapsed() < RETRY_FOR =>
                {
                    tracing::warn!(error = %e, retry_in = ?wait, "PostgreSQL unavailable: keeping the batch and trying again");
                    ::metrics::counter!(metrics::PG_RETRIES).increment(1);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// Names one partition's files in the manifest (or applies its events) and advances its
    /// offset, in one transaction.
    async fn commit_once(
        &mut self,
        key: &(String, i32),
        cause: FlushCause,
        written: &[LakeFile],
        started: Instant,
    ) -> Result<(), IngestError> {
        let Some(state) = self.parts.get_mut(key) else {
            return Ok(());
        };
        if !state.pending() {
            return Ok(());
        }
        let expected = state.durable;
        let next = state.position;
        let (topic, partition) = (key.0.as_str(), key.1);
        let telemetry = topic == self.cfg.telemetry_topic;

        // The compare-and-set comes first: a fenced consumer stops here, before it touches the
        // manifest or the event store.
        let pg_started = Instant::now();
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(StoreError::query("begin"))?;
        match offsets::advance(&mut tx, &self.cfg.group, topic, partition, expected, next).await {
            Ok(()) => {}
            Err(StoreError::Fenced { .. }) => {
                drop(tx);
                tracing::warn!(
                    topic,
                    partition,
                    ?expected,
                    "fenced: another consumer committed this partition; discarding the flush"
                );
                let paths: Vec<String> = written.iter().map(|f| f.path.clone()).collect();
                discard_uncommitted(&self.lake, &self.store, &paths).await?;
                self.report.fenced_flushes += 1;
                ::metrics::counter!(metrics::FENCED_FLUSHES).increment(1);
                let durable = offsets::load(self.store.pool(), &self.cfg.group, topic).await?;
                *state = PartitionState::new(durable.get(&partition).copied());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let mut rejected = Vec::new();
        let mut applied = 0u64;
        let mut replayed = 0u64;
        if telemetry {
            offsets::record_files(&mut tx, &self.cfg.group, topic, written).await?;
            fault::point("after_write");
        } else {
            let batch: Vec<(Source<'_>, &Event)> = state
                .events
                .iter()
                .map(|pending| {
                    let src = Source {
                        topic,
                        partition,
                        offset: pending.offset,
                    };
                    (src, &pending.event)
                })
                .collect();
            let outcomes = apply_events(&mut tx, &batch).await?;
            for (pending, outcome) in state.events.iter().zip(outcomes) {
                match outcome {
                    Ok(Applied::New) => applied += 1,
                    Ok(Applied::Replay) => replayed += 1,
                    Err(r) => rejected.push((pending, r)),
                }
            }
        }
        // Dead letters are delivered before the offset moves past them: at least once.
        for (pending, r) in &rejected {
            let src = Source {
                topic,
                partition,
                offset: pending.offset,
            };
            let delivery = self.dlq.send(
                &self.cfg.events_dlq_topic,
                src,
                pending.key.as_deref(),
                &pending.payload,
                r.reason,
                &r.message,
            )?;
            state.dead_letters.push(delivery);
        }
        dlq::settle(&mut state.dead_letters).await?;
        let dead_lettered = rejected.len() as u64;
        tx.commit().await.map_err(StoreError::query("commit"))?;
        ::metrics::histogram!(metrics::PG_TRANSACTION).record(pg_started.elapsed().as_secs_f64());
        fault::point("after_commit");

        // Durable: account, clear, and tell Kafka (for lag monitoring).
        let rows: i64 = written.iter().map(|f| f.rows).sum();
        let bytes: i64 = written.iter().map(|f| f.bytes).sum();
        for f in written {
            ::metrics::histogram!(metrics::ROWS_PER_FILE).record(f.rows as f64);
        }
        ::metrics::counter!(metrics::FRAMES_WRITTEN).increment(rows as u64);
        ::metrics::counter!(metrics::FILES_WRITTEN).increment(written.len() as u64);
        ::metrics::counter!(metrics::BYTES_WRITTEN).increment(bytes as u64);
        ::metrics::counter!(metrics::EVENTS_APPLIED).increment(applied);
        ::metrics::counter!(metrics::EVENTS_REPLAYED).increment(replayed);
        for f in written {
            ::metrics::histogram!(metrics::BYTES_PER_FILE).record(f.bytes as f64);
        }
        if rows > 0 && state.newest_frame > i64::MIN {
            self.newest_committed = self.newest_committed.max(state.newest_frame);
            let lag = (now_micros() - state.newest_frame) as f64 / 1e6;
            ::metrics::histogram!(metrics::END_TO_END_LATENCY).record(lag.max(0.0));
        }
        ::metrics::histogram!(metrics::FLUSH_DURATION).record(started.elapsed().as_secs_f64());
        ::metrics::counter!(metrics::FLUSHES, "cause" => cause.as_str()).increment(1);
        *self.report.flushes.entry(cause.as_str()).or_default() += 1;
        self.report.frames_written += rows as u64;
        self.report.files_written += written.len() as u64;
        self.report.bytes_written += bytes as u64;
        self.report.events_applied += applied;
        self.report.events_replayed += replayed;
        self.report.event_dead_letters += dead_lettered;
        state.durable = Some(next);
        state.frames.clear();
        state.events.clear();
        state.event_bytes = 0;
        state.due = None;
        state.newest_frame = i64::MIN;
        tracing::debug!(
            topic,
            partition,
            next,
            files = written.len(),
            rows,
            applied,
            "flushed"
        );

        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .is_ok()
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "Kafka offset commit failed (PostgreSQL stays the source of truth)");
        }
        Ok(())
    }

    /// [`Self::caught_up`], where a broker too busy to answer (a watermark query that times out)
    /// means "not yet" rather than the end of the run, for up to [`RETRY_FOR`] in a row.
    async fn caught_up_or_wait(&self, failing: &mut Option<Instant>) -> Result<bool, IngestError> {
        match self.caught_up().await {
            Ok(done) => {
                *failing = None;
                Ok(done)
            }
            Err(e) if failing.get_or_insert_with(Instant::now).elapsed() < RETRY_FOR => {
                tracing::warn!(error = %e, "cannot tell whether the topics are drained yet; trying again");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether every assigned partition has been consumed up to its high watermark.
    async fn caught_up(&self) -> Result<bool, IngestError> {
        if self.parts.is_empty() {
            return Ok(false);
        }
        for ((topic, partition), state) in &self.parts {
            let c = self.consumer.clone();
            let (t, p, timeout) = (topic.clone(), *partition, self.cfg.timeout);
            let high = tokio::task::spawn_blocking(move || c.fetch_watermarks(&t, p, timeout))
                .await
                .map_err(|_| IngestError::Kafka {
                    brokers: self.cfg.brokers.clone(),
                    what: "fetch watermarks".into(),
                    source: Box::new(KafkaError::Canceled),
                })?
                .map_err(|source| IngestError::Kafka {
                    brokers: self.cfg.brokers.clone(),
                    what: format!("fetch watermarks of {topic}/{partition}"),
                    source: Box::new(source),
                })?
                .1;
            if state.position < high {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_config_defaults_yield_to_options_but_the_guarantee_does_not() {
        let get = |c: &ClientConfig, k: &str| c.get(k).map(str::to_owned);
        let plain = consumer_config("b:9092", "g", &[]);
        assert_eq!(
            get(&plain, "fetch.min.bytes").as_deref(),
            Some(FETCH_MIN_BYTES)
        );
        assert_eq!(
            get(&plain, "fetch.wait.max.ms").as_deref(),
            Some(FETCH_WAIT_MAX_MS)
        );
        assert_eq!(get(&plain, "bootstrap.servers").as_deref(), Some("b:9092"));

        let opt = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let tuned = consumer_config(
            "b:9092",
            "g",
            &[
                opt("fetch.min.bytes", "1"),
                opt("fetch.wait.max.ms", "500"),
                // check_consumer_option refuses these; were one to get through, it still loses.
                opt("enable.auto.commit", "true"),
                opt("group.id", "other"),
            ],
        );
        assert_eq!(get(&tuned, "fetch.min.bytes").as_deref(), Some("1"));
        assert_eq!(get(&tuned, "fetch.wait.max.ms").as_deref(), Some("500"));
        assert_eq!(get(&tuned, "enable.auto.commit").as_deref(), Some("false"));
        assert_eq!(
            get(&tuned, "enable.auto.offset.store").as_deref(),
            Some("false")
        );
        assert_eq!(get(&tuned, "group.id").as_deref(), Some("g"));
    }
}
