//! `surgstream ingest`: one consumer group reading the telemetry and events topics.
//!
//! Telemetry records are validated into per-partition [`FrameBuffer`](surgstream_lake::FrameBuffer)s and flushed as Parquet
//! files under their final names; then ONE PostgreSQL transaction records the files in
//! `lake_files` and moves `ingest_offsets` with compare-and-set; only then is the offset
//! committed to Kafka. Events are applied the same way: the rows and the offset move in one
//! transaction. On assignment the consumer resumes from PostgreSQL's offsets, so a crash at any
//! moment neither loses nor duplicates a committed record. Bad records go to the dead-letter
//! topics with their reason and the offset moves on.
//!
//! The files, in the order a record meets them: `consumer.rs` (the Kafka client and its
//! rebalances), `records.rs` (checks, buffering, dead letters; `decode.rs` the bytes), `partition.rs` (per-partition
//! buffers and positions), `flush.rs` (the flush policy's decisions and the lake files),
//! `commit.rs` (the commit protocol and its invariants: read this one first), `service.rs`
//! (the main loop), `probe.rs` (readiness and consumer lag), [`verify`] (the offline checks),
//! [`replay`] (the raw archive produced again).

mod commit;
pub mod compact;
mod config;
mod consumer;
mod decode;
mod dlq;
mod error;
use surgstream_proto::fault;
mod flush;
pub mod health;
pub mod metrics;
mod partition;
pub mod policy;
mod probe;
mod raw_encoder;
mod records;
pub mod replay;
mod report;
mod service;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{Consumer, StreamConsumer};
use surgstream_lake::Lake;
use surgstream_proto::latency::PartitionLatencies;
use surgstream_store::Store;
use tokio_util::sync::CancellationToken;

pub use commit::discard_uncommitted;
pub use config::IngestConfig;
pub use consumer::{
    FETCH_MIN_BYTES, FETCH_QUEUE_BACKOFF_MS, FETCH_WAIT_MAX_MS, QUEUED_MAX_KBYTES,
    check_consumer_option, max_poll_interval,
};
pub use dlq::DeadLetters;
pub use error::IngestError;
pub use report::IngestReport;

use consumer::{Ctx, check_topics, consumer_config};
use raw_encoder::RawEncoder;
use service::Ingest;

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
    let ctx = Ctx {
        kafka: cfg.kafka.context(),
        ..Ctx::default()
    };
    let kafka = |what: &str| {
        let brokers = cfg.kafka.brokers().to_owned();
        let what = what.to_owned();
        move |source| IngestError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    check_topics(&cfg).await?;
    let consumer: StreamConsumer<Ctx> = consumer_config(
        &cfg.kafka,
        &cfg.group,
        max_poll_interval(cfg.store_retry_timeout, cfg.pg_retry_timeout),
        &cfg.consumer_options,
    )
    .create_with_context(ctx.clone())
    .map_err(kafka("create consumer"))?;
    let consumer = Arc::new(consumer);
    // The lake's store before anything is consumed: credentials it refuses or a bucket that
    // does not exist stop the ingestor now, with the store's own message, rather than at the
    // first flush (the prefix holds nothing: the check costs one request however large the
    // lake). A store that is down is not a reason to stop: flushes wait for it.
    match lake.list("_surgstream/readiness").await {
        Err(e) if !e.is_transient() => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "the lake's store does not answer yet: flushes will wait for it")
        }
        Ok(_) => {}
    }
    let dlq = DeadLetters::connect(&cfg.kafka, cfg.timeout)
        .map_err(kafka("create dead-letter producer"))?;
    consumer
        .subscribe(&[&cfg.telemetry_topic, &cfg.events_topic])
        .map_err(kafka("subscribe"))?;
    tracing::info!(brokers = %cfg.kafka.brokers(), kafka = %cfg.kafka.summary(), group = %cfg.group, lake = %lake.url(), postgres = %store.target(), "ingest started");

    let probes = CancellationToken::new();
    tokio::spawn(probe::probe(
        cfg.clone(),
        consumer.clone(),
        ctx.assignment.clone(),
        lake.clone(),
        store.clone(),
        probes.clone(),
    ));
    let raw_encoder = if cfg.raw_archive {
        Some(RawEncoder::start()?)
    } else {
        None
    };
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
        raw_encoder,
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
