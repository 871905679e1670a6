//! Every metric name of the ingest service, in one place (Prometheus conventions: `surgstream_`
//! prefix, base units, `_total` counters, `_seconds` histograms; no id labels).

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
/// Rows per committed Parquet file.
pub const ROWS_PER_FILE: &str = "surgstream_lake_file_rows";
/// Duration of a telemetry flush (encode, write, manifest commit).
pub const FLUSH_DURATION: &str = "surgstream_flush_duration_seconds";
/// Duration of a PostgreSQL transaction that commits a flush or an event batch.
pub const PG_TRANSACTION: &str = "surgstream_postgres_transaction_seconds";
/// Frame timestamp → committed in the lake.
pub const END_TO_END_LATENCY: &str = "surgstream_end_to_end_latency_seconds";
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
/// Records between a partition's position and its high watermark, by `topic` and `partition`.
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

/// Registers descriptions, so that `/metrics` documents every series.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        FLUSHES,
        Unit::Count,
        "Buffer flushes, by cause (rows, bytes, age, memory, shutdown)."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Records between the consumer's position and the high watermark, by topic and partition."
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
        "Newest frame timestamp of a flush → committed in the lake."
    );
    describe_histogram!(
        RECORD_AGE,
        Unit::Seconds,
        "Telemetry record's Kafka timestamp (producer send time) → received by the ingestor."
    );
}
