//! [`IngestReport`]: what one run did, for the binary's summary, `bench` and the tests.

use serde::Serialize;
use surgstream_proto::latency::LatencySummary;

/// Counts of one run, for summaries and tests.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    /// Telemetry frames committed to the lake.
    pub frames_written: u64,
    /// Parquet files committed.
    pub files_written: u64,
    /// Bytes of Parquet committed.
    pub bytes_written: u64,
    /// Records committed to the raw archive.
    pub raw_records_written: u64,
    /// Raw archive files committed.
    pub raw_files_written: u64,
    /// Bytes of raw archive files committed.
    pub raw_bytes_written: u64,
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
