//! Every metric name of the ingest service, in one place (Prometheus conventions: `surgstream_`
//! prefix, base units, `_total` counters, `_seconds` histograms; no id labels).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Telemetry frames read from Kafka.
pub const FRAMES_CONSUMED: &str = "surgstream_frames_consumed_total";
/// Telemetry frames committed to the lake.
pub const FRAMES_WRITTEN: &str = "surgstream_frames_written_total";
/// Events read from Kafka.
pub const EVENTS_CONSUMED: &str = "surgstream_events_consumed_total";
/// Events applied to PostgreSQL.
pub const EVENTS_APPLIED: &str = "surgstream_events_applied_total";
/// Flush attempts repeated because PostgreSQL was unreachable.
pub const PG_RETRIES: &str = "surgstream_postgres_retries_total";
/// Events skipped because their id was processed before (a replay of the topic).
pub const EVENTS_REPLAYED: &str = "surgstream_events_replayed_total";
/// Records sent to a dead-letter topic, by `topic` and `reason`.
pub const DEAD_LETTERS: &str = "surgstream_dead_letters_total";
/// Parquet files committed to the lake.
pub const FILES_WRITTEN: &str = "surgstream_lake_files_written_total";
/// Bytes of Parquet committed to the lake.
pub const BYTES_WRITTEN: &str = "surgstream_lake_bytes_written_total";
/// Records committed to the raw archive (`raw/`), by `topic`.
pub const RAW_RECORDS_WRITTEN: &str = "surgstream_raw_records_written_total";
/// Raw archive files committed.
pub const RAW_FILES_WRITTEN: &str = "surgstream_raw_files_written_total";
/// Bytes of raw archive files committed.
pub const RAW_BYTES_WRITTEN: &str = "surgstream_raw_bytes_written_total";
/// Rows per committed Parquet file.
pub const ROWS_PER_FILE: &str = "surgstream_lake_file_rows";
/// Duration of a telemetry flush (encode, write, manifest commit).
pub const FLUSH_DURATION: &str = "surgstream_flush_duration_seconds";
/// Duration of a PostgreSQL transaction that commits a flush or an event batch.
pub const PG_TRANSACTION: &str = "surgstream_postgres_transaction_seconds";
/// Frame timestamp → committed in the lake, for the OLDEST frame of each flush: every frame of
/// the flush waited at most this long, so a quantile of it bounds the same quantile of the
/// per-frame latency that `surgstream bench --live` measures (docs/operations.md).
pub const END_TO_END_LATENCY: &str = "surgstream_end_to_end_latency_seconds";
/// Frame timestamp → committed in the lake, for the NEWEST frame of each flush: the least any
/// frame of it waited (the gap to [`END_TO_END_LATENCY`] is how long the buffer gathered).
pub const END_TO_END_LATENCY_NEWEST: &str = "surgstream_end_to_end_latency_newest_frame_seconds";
/// Orphan lake files (named by no manifest row, older than the grace period) removed.
pub const FILES_SWEPT: &str = "surgstream_lake_files_swept_total";
/// Flushes, by `cause`: rows, bytes, age, memory, shutdown.
pub const FLUSHES: &str = "surgstream_flushes_total";
/// Bytes held in partition buffers, all together.
pub const BUFFERED_BYTES: &str = "surgstream_buffered_bytes";
/// Partition buffers holding something not yet durable.
pub const OPEN_BUFFERS: &str = "surgstream_open_buffers";
/// Lake writes tried again because the object store failed transiently.
pub const STORE_RETRIES: &str = "surgstream_lake_store_retries_total";
/// Flushes that lost the compare-and-set to another consumer (their files were discarded).
pub const FENCED_FLUSHES: &str = "surgstream_fenced_flushes_total";
/// Records between the group's committed offset and the high watermark, by `topic` and
/// `partition` (read from the broker, as kafka_exporter reads it).
pub const CONSUMER_LAG: &str = "surgstream_consumer_lag_messages";
/// Records fetched from the broker and waiting in librdkafka's queue for the ingestor: lag with
/// a full queue is the ingestor's, with an empty one the fetches'.
pub const FETCH_QUEUE: &str = "surgstream_consumer_fetch_queue_messages";
/// A telemetry record's age when the ingestor receives it: now − its Kafka timestamp (the
/// producer's send time). High while the fetch queue is empty: the broker or the fetches are
/// behind, not the ingestor.
pub const RECORD_AGE: &str = "surgstream_consumer_record_age_seconds";
/// Seconds between now and the newest frame committed to the lake.
pub const WRITE_LAG: &str = "surgstream_write_lag_seconds";
/// Bytes per committed Parquet file.
pub const BYTES_PER_FILE: &str = "surgstream_lake_file_bytes";
/// Partitions the group has assigned to this member now.
pub const ASSIGNED_PARTITIONS: &str = "surgstream_consumer_assigned_partitions";
/// The newest frame timestamp committed to the lake (Unix seconds): `time() - this` is the
/// lake's freshness, and keeps growing while the loop is blocked (unlike [`WRITE_LAG`], which
/// the loop sets).
pub const NEWEST_COMMITTED_FRAME: &str = "surgstream_lake_newest_frame_timestamp_seconds";
/// Errors the consumer returned instead of a record (a broker down, a failed authentication,
/// a partition error), by librdkafka's error `code`.
pub const CONSUMER_ERRORS: &str = "surgstream_consumer_errors_total";
/// Readiness per `check` (broker, database, store, progress): 1 passing, 0 failing; what
/// `/readyz` answers, every 5 s.
pub const READY: &str = "surgstream_ready";
/// When the process started (Unix seconds): a change is a restart. Set by the binary's metrics
/// endpoint for every command; described here so that every series is described in one place.
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// The help text of [`CONSUMER_LAG`].
const CONSUMER_LAG_HELP: &str =
    "Records between the group's committed offset and the high watermark, by topic and partition.";

/// A gauge with one series per partition this member is assigned, whose series go when the
/// partition does: [`CONSUMER_LAG_SERIES`].
///
/// Kept outside the `metrics` recorder because the facade cannot remove a series, and
/// metrics-exporter-prometheus 0.18 only forgets series left idle for a timeout set per metric
/// *kind* (`PrometheusBuilder::idle_timeout(MetricKindMask, …)`): on gauges, that would also
/// drop every gauge the loop does not set while a flush waits out an outage (buffers, write
/// lag, assigned partitions) and the simulator's set-once target rate, and it would drop a
/// revoked partition only a timeout later. A revoked partition's last lag, left behind by its
/// old owner, would skew `max by (topic, partition)` for good. The binary's `/metrics` appends
/// these series to the recorder's ([`render_partition_series`]).
#[derive(Debug)]
pub struct PartitionGauge {
    /// The metric name.
    name: &'static str,
    /// Its `# HELP` text.
    help: &'static str,
    /// The value per (topic, partition).
    values: Mutex<BTreeMap<(String, i32), f64>>,
}

impl PartitionGauge {
    /// An empty gauge family.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the series of `topic`/`partition`, creating it.
    pub fn set(&self, topic: &str, partition: i32, value: f64) {
        if let Ok(mut v) = self.values.lock() {
            v.insert((topic.to_owned(), partition), value);
        }
    }

    /// Keeps only the series of the partitions `keep` accepts (the assigned ones).
    pub fn retain(&self, mut keep: impl FnMut(&(String, i32)) -> bool) {
        if let Ok(mut v) = self.values.lock() {
            v.retain(|k, _| keep(k));
        }
    }

    /// The value of `topic`/`partition`, if it has a series.
    pub fn get(&self, topic: &str, partition: i32) -> Option<f64> {
        let v = self.values.lock().ok()?;
        v.get(&(topic.to_owned(), partition)).copied()
    }

    /// Appends the family in Prometheus text format (nothing when it has no series).
    pub fn render(&self, out: &mut String) {
        let Ok(values) = self.values.lock() else {
            return;
        };
        if values.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for ((topic, partition), value) in values.iter() {
            let topic = topic
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "{}{{topic=\"{topic}\",partition=\"{partition}\"}} {value}",
                self.name
            );
        }
        out.push('\n');
    }
}

/// [`CONSUMER_LAG`], one series per assigned partition: set by the probe
/// ([`crate::probe::record_consumer_lag`]), removed on revocation (the consumer's rebalance
/// callback).
pub static CONSUMER_LAG_SERIES: PartitionGauge =
    PartitionGauge::new(CONSUMER_LAG, CONSUMER_LAG_HELP);

/// The series kept outside the `metrics` recorder, in Prometheus text format, for `/metrics`.
pub fn render_partition_series() -> String {
    let mut out = String::new();
    CONSUMER_LAG_SERIES.render(&mut out);
    out
}

/// Registers descriptions, so that `/metrics` documents every series.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        FLUSHES,
        Unit::Count,
        "Buffer flushes, by cause (rows, bytes, age, memory, shutdown)."
    );
    describe_gauge!(CONSUMER_LAG, Unit::Count, CONSUMER_LAG_HELP);
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        Unit::Count,
        "Partitions the consumer group has assigned to this member."
    );
    describe_gauge!(
        FETCH_QUEUE,
        Unit::Count,
        "Records fetched and waiting in the client's queue for the ingestor."
    );
    describe_gauge!(
        WRITE_LAG,
        Unit::Seconds,
        "Now minus the newest frame timestamp committed to the lake."
    );
    describe_histogram!(
        BYTES_PER_FILE,
        Unit::Bytes,
        "Bytes per committed Parquet file."
    );
    describe_counter!(
        STORE_RETRIES,
        Unit::Count,
        "Lake writes tried again because the object store failed transiently."
    );
    describe_counter!(
        FENCED_FLUSHES,
        Unit::Count,
        "Flushes that lost the offset compare-and-set to another consumer; their files were discarded."
    );
    describe_counter!(
        RAW_RECORDS_WRITTEN,
        Unit::Count,
        "Consumed records committed to the raw archive (raw/), dead-lettered ones included."
    );
    describe_counter!(
        RAW_FILES_WRITTEN,
        Unit::Count,
        "Raw archive files committed."
    );
    describe_counter!(
        RAW_BYTES_WRITTEN,
        Unit::Bytes,
        "Bytes of raw archive files committed."
    );
    describe_counter!(
        FILES_SWEPT,
        Unit::Count,
        "Orphan lake files (named by no manifest row, older than the grace period) removed."
    );
    describe_gauge!(
        BUFFERED_BYTES,
        Unit::Bytes,
        "Bytes held in partition buffers, all together (bounded by --memory-limit)."
    );
    describe_gauge!(
        OPEN_BUFFERS,
        Unit::Count,
        "Partition buffers holding records not yet durable."
    );
    describe_counter!(
        FRAMES_CONSUMED,
        Unit::Count,
        "Telemetry frames read from Kafka."
    );
    describe_counter!(
        FRAMES_WRITTEN,
        Unit::Count,
        "Telemetry frames committed to the lake."
    );
    describe_counter!(EVENTS_CONSUMED, Unit::Count, "Events read from Kafka.");
    describe_counter!(EVENTS_APPLIED, Unit::Count, "Events applied to PostgreSQL.");
    describe_counter!(
        PG_RETRIES,
        Unit::Count,
        "Flush attempts repeated because PostgreSQL was unreachable."
    );
    describe_counter!(
        EVENTS_REPLAYED,
        Unit::Count,
        "Events whose id was processed before: replays that changed nothing."
    );
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Records sent to a dead-letter topic, by topic and reason."
    );
    describe_counter!(
        FILES_WRITTEN,
        Unit::Count,
        "Parquet files committed to the lake."
    );
    describe_counter!(
        BYTES_WRITTEN,
        Unit::Bytes,
        "Bytes of Parquet committed to the lake."
    );
    describe_histogram!(
        ROWS_PER_FILE,
        Unit::Count,
        "Rows per committed Parquet file."
    );
    describe_histogram!(
        FLUSH_DURATION,
        Unit::Seconds,
        "Telemetry flush: encode, write, manifest commit."
    );
    describe_histogram!(
        PG_TRANSACTION,
        Unit::Seconds,
        "PostgreSQL transaction committing a flush or an event batch."
    );
    describe_histogram!(
        END_TO_END_LATENCY,
        Unit::Seconds,
        "Oldest frame timestamp of a flush → committed in the lake (every frame of the flush waited at most this)."
    );
    describe_histogram!(
        END_TO_END_LATENCY_NEWEST,
        Unit::Seconds,
        "Newest frame timestamp of a flush → committed in the lake (the least a frame of it waited)."
    );
    describe_gauge!(
        NEWEST_COMMITTED_FRAME,
        Unit::Seconds,
        "Timestamp (Unix seconds) of the newest frame committed to the lake by this ingestor."
    );
    describe_counter!(
        CONSUMER_ERRORS,
        Unit::Count,
        "Errors the consumer returned instead of a record, by librdkafka error code."
    );
    describe_gauge!(
        READY,
        Unit::Count,
        "Readiness per check (broker, database, store, progress): 1 passing, 0 failing."
    );
    describe_gauge!(
        PROCESS_START_TIME,
        Unit::Seconds,
        "Start time of the process since the Unix epoch, in seconds."
    );
    describe_histogram!(
        RECORD_AGE,
        Unit::Seconds,
        "Telemetry record's Kafka timestamp (producer send time) → received by the ingestor."
    );
}

/// A recorder for unit tests that keeps each counter's and gauge's value by series
/// (`name{label="value",…}`), used with [`metrics::with_local_recorder`].
#[cfg(test)]
pub(crate) mod capture {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    /// What was recorded.
    #[derive(Debug, Default)]
    pub(crate) struct Captured(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

    fn series(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
            .collect();
        if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        }
    }

    impl Captured {
        fn slot(&self, key: &Key) -> Arc<AtomicU64> {
            let mut all = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.entry(series(key)).or_default().clone()
        }

        fn raw(&self, series: &str) -> Option<u64> {
            let all = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.get(series).map(|v| v.load(Ordering::Acquire))
        }

        /// A counter's value.
        pub(crate) fn counter(&self, series: &str) -> Option<u64> {
            self.raw(series)
        }

        /// A gauge's value.
        pub(crate) fn gauge(&self, series: &str) -> Option<f64> {
            self.raw(series).map(f64::from_bits)
        }
    }

    impl Recorder for Captured {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.slot(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.slot(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_series_render_as_prometheus_text_and_go_with_their_partition() {
        let lag = PartitionGauge::new("t_lag", "help text");
        let mut empty = String::new();
        lag.render(&mut empty);
        assert_eq!(empty, "", "no series, no family");
        lag.set("telemetry", 0, 12.0);
        lag.set("telemetry", 1, 3.0);
        let mut page = String::new();
        lag.render(&mut page);
        assert_eq!(
            page,
            "# HELP t_lag help text\n# TYPE t_lag gauge\n\
             t_lag{topic=\"telemetry\",partition=\"0\"} 12\n\
             t_lag{topic=\"telemetry\",partition=\"1\"} 3\n\n"
        );
        lag.retain(|(_, p)| *p == 1);
        assert_eq!(lag.get("telemetry", 0), None);
        assert_eq!(lag.get("telemetry", 1), Some(3.0));
    }
}
