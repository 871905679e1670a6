//! [`IngestConfig`]: what `surgstream ingest` is told. The binary builds it from its options
//! (each has a flag and an environment variable: docs/configuration.md).

use std::time::Duration;

use crate::health;

/// Ingest settings. Every field has a command-line option and an environment variable.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// How to reach the cluster (brokers, TLS, SASL), for the consumer and the dead-letter
    /// producer alike.
    pub kafka: surgstream_kafka::KafkaSettings,
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
    /// for frames that arrive late: see [`crate::policy::hold`]).
    pub max_age: Duration,
    /// Events applied per PostgreSQL transaction, at most.
    pub event_batch: usize,
    /// Pending events are applied at least this often.
    pub event_max_age: Duration,
    /// Remove orphan lake files this often (see [`crate::verify::sweep`]).
    pub sweep_interval: Duration,
    /// Orphans are files older than this that no manifest row names.
    pub sweep_grace: Duration,
    /// Whether every consumed record is also kept as it came, in the lake's `raw/` archive,
    /// committed with the typed files and events of its range.
    pub raw_archive: bool,
    /// How long a flush keeps trying while the lake's store fails transiently.
    pub store_retry_timeout: Duration,
    /// How long a flush keeps trying while PostgreSQL is unreachable.
    pub pg_retry_timeout: Duration,
    /// Drain and exit once no record arrived for this long and every partition is caught up.
    pub until_idle: Option<Duration>,
    /// How long to wait for the broker (metadata, watermarks, DLQ deliveries).
    pub timeout: Duration,
    /// Where the ingestor reports its readiness (`/readyz`).
    pub health: health::Health,
    /// librdkafka properties for the consumer (fetch sizes, security, …), applied over the
    /// ingestor's own settings; those that carry the delivery guarantee are refused by
    /// [`crate::check_consumer_option`].
    pub consumer_options: Vec<(String, String)>,
}
