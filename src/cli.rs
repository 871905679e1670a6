//! The command-line options of every command (the clap definitions, most with an environment
//! variable): here those of the commands that stream (sim, ingest, demo, bench, create-topics)
//! and the shared connection options; in `cli/lake.rs` those of the commands that keep the
//! lake's tables; the value parsers in `cli/values.rs`. No command logic and no I/O here: the
//! commands are in `commands/`, what they share in `setup.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use surgstream_proto::topics;

mod lake;
mod values;
pub use lake::*;
pub use values::*;

/// Real-time telemetry pipeline for fleets of surgical robots.
#[derive(Debug, Parser)]
#[command(name = "surgstream", version, about, propagate_version = true)]
pub struct Args {
    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, global = true, env = "SURGSTREAM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a robot fleet and send its telemetry and events to Kafka.
    Sim(SimArgs),
    /// Consume telemetry into the Parquet lake and events into PostgreSQL, exactly once.
    Ingest(IngestArgs),
    /// Run sim and ingest together for --duration, then print a summary.
    Demo(DemoArgs),
    /// Apply the PostgreSQL migrations (safe to run any number of times).
    Migrate(DbArgs),
    /// Create the project's topics on the broker (idempotent).
    CreateTopics(TopicsArgs),
    /// The end-to-end throughput harness: pre-fill fresh topics with --frames frames, time
    /// `ingest` draining them; a table and a JSON result.
    Bench(BenchArgs),
    /// Remove lake files that no manifest row names, older than --grace (what a crash between
    /// writing a file and committing it leaves). `ingest` does this every --sweep-interval.
    Sweep(SweepArgs),
    /// Rewrite the small committed lake files of closed hours (a backfill's, a quiet fleet's)
    /// into large month files sorted by (procedure_id, timestamp), swapped in the manifest in
    /// one transaction, then follow the swap into the Iceberg table as a replace snapshot.
    Compact(CompactArgs),
    /// Compare the source topics with the committed lake and tables: missing and duplicated
    /// frames, unprocessed events, orphan files. Exit code 1 on any discrepancy.
    Verify(VerifyArgs),
    /// Refresh the warehouse: the star schema (warehouse/*.sql) over the committed lake and the
    /// relational tables, as Parquet under warehouse/ in the lake and in PostgreSQL's
    /// `warehouse` schema. Only months whose inputs changed are rebuilt.
    Warehouse(WarehouseArgs),
    /// One procedure's case file: its robot and facility, the procedure, its lifecycle, its
    /// outcome and every telemetry frame in order, from PostgreSQL and the lake.
    Export(ExportArgs),
    /// The lake as Apache Iceberg tables (catalog in PostgreSQL): publish what the manifest
    /// committed. `ingest` publishes every --iceberg-interval.
    Iceberg(IcebergArgs),
    /// Produce the raw archive's records (raw/ in the lake) again, byte for byte with their keys
    /// and headers, to a topic: to rebuild a lake after a fix, or to feed a new consumer long
    /// after Kafka's retention.
    Replay(ReplayArgs),
    /// Move finished procedures (completed, aborted, cancelled) older than --older-than out of
    /// PostgreSQL, with their outcomes and status audit, into archive/ in the lake
    /// (month-partitioned Parquet), in the transaction that records the objects. The warehouse
    /// and `export` read them there. `ingest --archive-after` does this periodically.
    Archive(ArchiveArgs),
    /// Bring archived procedures back into PostgreSQL (a legal hold, a clinical review).
    Restore(RestoreArgs),
    /// Print the IAM authentication token the Kafka clients (--msk) or the PostgreSQL pool
    /// (--rds) would use now, signed with the AWS SDK's credential chain: what to run when a
    /// connection is refused. Like `aws rds generate-db-auth-token`.
    AuthToken(AuthTokenArgs),
}

/// `auth-token`: which token, for what, signed when.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("service").required(true).args(["msk", "rds"])))]
pub struct AuthTokenArgs {
    /// The MSK IAM token (SASL OAUTHBEARER), for the cluster in --region.
    #[arg(long)]
    pub msk: bool,
    /// The RDS IAM token (the PostgreSQL password) of --user at --host:--port.
    #[arg(long, requires_all = ["host", "user"])]
    pub rds: bool,
    /// The RDS endpoint.
    #[arg(long)]
    pub host: Option<String>,
    /// The RDS port.
    #[arg(long, default_value_t = 5432)]
    pub port: u16,
    /// The database user (its IAM policy allows rds-db:connect on it).
    #[arg(long)]
    pub user: Option<String>,
    /// The region [default: the RDS host name's, else the SDK's (AWS_REGION, the profile's)].
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// The AWS profile [default: AWS_PROFILE, else the default profile].
    #[arg(long)]
    pub profile: Option<String>,
    /// Sign as at this instant (RFC 3339) instead of now: the same credentials then give the
    /// same token, for comparing with another signer.
    #[arg(long, value_parser = parse_instant)]
    pub signing_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Kafka connection and topic names.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port…].
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// A Kafka client properties file for every client (TLS, SASL, …), as Kafka's own tools
    /// take with --command-config; SURGSTREAM_KAFKA_CLIENT_<PROPERTY> variables override it.
    /// docs/security.md.
    #[arg(long, env = "SURGSTREAM_KAFKA_CONFIG", value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
    /// Telemetry topic (key = procedure_id).
    #[arg(long, env = "SURGSTREAM_TELEMETRY_TOPIC", default_value = topics::TELEMETRY)]
    pub telemetry_topic: String,
    /// Events topic (key = robot_id).
    #[arg(long, env = "SURGSTREAM_EVENTS_TOPIC", default_value = topics::EVENTS)]
    pub events_topic: String,
    /// How long to wait for the broker before giving up, e.g. 10s.
    #[arg(long, env = "SURGSTREAM_KAFKA_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub kafka_timeout: Duration,
}

/// PostgreSQL connection.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// PostgreSQL URL; credentials are never printed.
    /// [default: postgres://postgres@127.0.0.1:5432/surgstream]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the PostgreSQL URL (a mounted secret), instead of --database-url.
    #[arg(
        long,
        env = "DATABASE_URL_FILE",
        conflicts_with = "database_url",
        value_name = "PATH"
    )]
    pub database_url_file: Option<PathBuf>,
    /// How long to wait for a PostgreSQL connection, e.g. 10s.
    #[arg(long, env = "SURGSTREAM_DB_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub db_timeout: Duration,
    /// RDS IAM authentication: every connection's password is a new RDS auth token signed with
    /// the AWS SDK's credential chain (the URL holds none, and asks for TLS); the region is the
    /// RDS host name's, else AWS_REGION's. docs/security.md.
    #[arg(long, env = "SURGSTREAM_DATABASE_IAM_AUTH")]
    pub database_iam_auth: bool,
}

/// Which kind of simulated run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// The data model's volumes over the past two years, as a backfill sent as fast as the
    /// broker takes it.
    Seed,
    /// Operating rooms streaming now, in wall-clock time.
    Live,
}

/// What the simulated fleet looks like.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// `seed`: 50 robots in 10 facilities, 5,000 procedures over 2 years, 100 telemetry samples
    /// each, 200 maintenance logs, sent as a backfill. `live`: operating rooms streaming now at
    /// --hz. Default: seed for `sim`, live for `demo`.
    #[arg(long, env = "SURGSTREAM_SIM_PROFILE", value_enum)]
    pub profile: Option<ProfileArg>,
    /// Seed profile: multiply the fleet, facilities, procedures and maintenance (e.g. 10, 100).
    #[arg(long, env = "SURGSTREAM_SIM_SCALE", default_value_t = 1.0, value_parser = parse_scale)]
    pub scale: f64,
    /// Robots in the fleet (operating rooms in a live run). Default: 50 × scale (seed), 10
    /// (live).
    #[arg(long, env = "SURGSTREAM_SIM_ROBOTS")]
    pub robots: Option<u32>,
    /// Seed: procedures in the window (default 5,000 × scale). Live: stop after this many
    /// (default: no limit).
    #[arg(long, env = "SURGSTREAM_SIM_PROCEDURES")]
    pub procedures: Option<u32>,
    /// Seed: telemetry samples per procedure, evenly spaced (default 100).
    #[arg(long, env = "SURGSTREAM_SIM_SAMPLES")]
    pub samples: Option<u32>,
    /// Live: telemetry frames per second per procedure, 1–10000 (default 100, the dVRK's state
    /// rate).
    #[arg(long, env = "SURGSTREAM_SIM_HZ")]
    pub hz: Option<u32>,
    /// Live: run procedures, turnovers and repairs this many times faster than real time
    /// (telemetry stays at --hz). Default 1 (`demo`: 480, a 2-hour case in 15 s).
    #[arg(long, env = "SURGSTREAM_SIM_SPEED")]
    pub speed: Option<f64>,
    /// Seed of every random choice: same seed and options, same data. Unset: a new seed (and so
    /// a new fleet) each run, printed so that the run can be reproduced.
    #[arg(long, env = "SURGSTREAM_SIM_SEED")]
    pub seed: Option<u64>,
    /// Seed: the window (default 730days). Live: how long the feed runs, e.g. 30s, 2h (default:
    /// until stopped; `demo`: 30s); procedures running at the end stay in progress.
    #[arg(long, env = "SURGSTREAM_SIM_DURATION", value_parser = positive_duration)]
    pub duration: Option<Duration>,
    /// Live: frames of one procedure within this interval travel in one Kafka record.
    #[arg(long, env = "SURGSTREAM_SIM_BATCH_INTERVAL", default_value = "100ms", value_parser = positive_duration)]
    pub batch_interval: Duration,
    /// Live: send as fast as the broker takes records instead of in wall-clock time (timestamps
    /// are the same either way). A seed run is always sent as fast as the broker takes it.
    #[arg(long, env = "SURGSTREAM_SIM_FAST")]
    pub fast: bool,
    /// How the producer compresses record batches: none, gzip, snappy, lz4 or zstd (the
    /// ingestor reads all five). docs/performance.md compares them end to end.
    #[arg(long, env = "SURGSTREAM_SIM_COMPRESSION", default_value = "lz4")]
    pub compression: surgstream_sim::kafka::Compression,
    /// Start of the run (RFC 3339, e.g. 2026-01-01T08:00:00Z). Default: now (live), the window
    /// ending today (seed). With `--seed`, makes a run reproducible byte for byte.
    #[arg(long, env = "SURGSTREAM_SIM_START_TIME", value_parser = parse_start_time)]
    pub start_time: Option<i64>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Write the run's report (counts, frames per procedure) as JSON to this file.
    #[arg(long, env = "SURGSTREAM_SIM_REPORT")]
    pub report: Option<PathBuf>,
    /// Write the records to this file instead of Kafka (as fast as possible; see
    /// `surgstream_sim::file` for the framing). `--dry-run` is the same with no file kept.
    #[arg(long, env = "SURGSTREAM_SIM_OUTPUT", conflicts_with = "dry_run")]
    pub output: Option<PathBuf>,
    /// Generate everything, send nothing: measures the generator alone.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9465); off when unset.
    #[arg(long, env = "SURGSTREAM_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// Lake and flush settings.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestOpts {
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix (S3 settings from the
    /// usual AWS_* variables: AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_ALLOW_HTTP=true for a plain-HTTP endpoint, AWS_SERVER_SIDE_ENCRYPTION=AES256|aws:kms
    /// and AWS_SSE_KMS_KEY_ID for encryption at rest: docs/security.md).
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// Consumer group (offsets in PostgreSQL are kept per group).
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// Telemetry dead-letter topic.
    #[arg(long, env = "SURGSTREAM_TELEMETRY_DLQ_TOPIC", default_value = topics::TELEMETRY_DLQ)]
    pub telemetry_dlq_topic: String,
    /// Events dead-letter topic.
    #[arg(long, env = "SURGSTREAM_EVENTS_DLQ_TOPIC", default_value = topics::EVENTS_DLQ)]
    pub events_dlq_topic: String,
    /// Flush a partition's buffer at this many frames.
    #[arg(long, env = "SURGSTREAM_MAX_ROWS", default_value_t = 500_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rows: u32,
    /// Flush a partition's buffer when it holds this much, e.g. 64MiB (frames take 176 bytes
    /// each in memory).
    #[arg(long, env = "SURGSTREAM_MAX_BYTES", default_value = "64MiB", value_parser = byte_size)]
    pub max_bytes: u64,
    /// All partition buffers together hold at most this much, e.g. 512MiB: over it, the largest
    /// buffer flushes first.
    #[arg(long, env = "SURGSTREAM_MEMORY_LIMIT", default_value = "512MiB", value_parser = byte_size)]
    pub memory_limit: u64,
    /// Remove orphan lake files (named by no manifest row) this often, e.g. 10m.
    #[arg(long, env = "SURGSTREAM_SWEEP_INTERVAL", default_value = "10m", value_parser = positive_duration)]
    pub sweep_interval: Duration,
    /// A file no manifest row names is an orphan once older than this (it must exceed the
    /// longest flush, retries included), e.g. 10m.
    #[arg(long, env = "SURGSTREAM_SWEEP_GRACE", default_value = "10m", value_parser = positive_duration)]
    pub sweep_grace: Duration,
    /// While the lake's store fails (unreachable, timing out, server errors), keep the buffers,
    /// stop consuming and try again with backoff for this long before giving up, e.g. 3m.
    /// With --pg-retry-timeout it sets the consumer's max.poll.interval.ms (their sum plus a
    /// minute, at least 5 min), so the group never evicts a member that is still flushing.
    #[arg(long, env = "SURGSTREAM_STORE_RETRY_TIMEOUT", default_value = "3m", value_parser = positive_duration)]
    pub store_retry_timeout: Duration,
    /// While PostgreSQL is unreachable, keep the flushed batch and try its transaction again
    /// with backoff for this long before giving up, e.g. 1m. A stop request (SIGTERM) ends the
    /// wait at once; the batch is read again on restart.
    #[arg(long, env = "SURGSTREAM_PG_RETRY_TIMEOUT", default_value = "1m", value_parser = positive_duration)]
    pub pg_retry_timeout: Duration,
    /// Flush a partition's frames this long after their timestamps, e.g. 5s: what the broker's
    /// delay took is not waited again. Frames that arrive later than that wait at least a
    /// quarter of it, and those over twice it late (a backfill, a catch-up) wait all of it
    /// from their arrival, so that files stay large.
    #[arg(long, env = "SURGSTREAM_MAX_AGE", default_value = "5s", value_parser = positive_duration)]
    pub max_age: Duration,
    /// Events per PostgreSQL transaction, at most.
    #[arg(long, env = "SURGSTREAM_EVENT_BATCH", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_batch: u32,
    /// Apply pending events at least this often, e.g. 500ms.
    #[arg(long, env = "SURGSTREAM_EVENT_MAX_AGE", default_value = "500ms", value_parser = positive_duration)]
    pub event_max_age: Duration,
    /// Keep every consumed record of both topics as it came (key, headers, value, Kafka
    /// partition, offset and timestamp; dead-lettered ones too) in the lake's raw archive,
    /// `raw/topic=…/date=…/hour=…/`, committed exactly once with the typed data of the same
    /// offsets (docs/lake.md). `off` keeps only the typed lake and tables.
    #[arg(long, env = "SURGSTREAM_RAW_ARCHIVE", default_value = "on", value_name = "on|off", value_parser = on_off, action = clap::ArgAction::Set)]
    pub raw_archive: bool,
    /// Serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off when unset.
    #[arg(long, env = "SURGSTREAM_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// A librdkafka consumer property, KEY=VALUE, repeatable (e.g. security.protocol=SASL_SSL,
    /// fetch.max.bytes=104857600); it overrides the ingestor's own fetch settings
    /// (fetch.min.bytes, fetch.wait.max.ms, fetch.queue.backoff.ms, queued.max.messages.kbytes:
    /// see docs/performance.md). group.id, bootstrap.servers, enable.auto.commit,
    /// enable.auto.offset.store and auto.offset.reset are refused: surgstream sets them, and the
    /// delivery guarantee rests on them.
    #[arg(long = "consumer-option", value_name = "KEY=VALUE", value_parser = surgstream_ingest::check_consumer_option)]
    pub consumer_options: Vec<(String, String)>,
    /// Do not apply the database migrations at start-up (a role without DDL rights, after
    /// `surgstream migrate` ran as the schema's owner): check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Refresh the warehouse this often, e.g. 5m (`surgstream warehouse` in the background;
    /// with several ingestors one refresh runs at a time). Off when unset.
    #[arg(long, env = "SURGSTREAM_WAREHOUSE_INTERVAL", value_parser = positive_duration)]
    pub warehouse_interval: Option<Duration>,
    /// DataFusion's working memory for a warehouse refresh, e.g. 512MiB; the process peaks up to about 120 MiB above it (docs/warehouse.md).
    #[arg(long, env = "SURGSTREAM_WAREHOUSE_MEMORY_LIMIT", default_value = "512MiB", value_parser = byte_size)]
    pub warehouse_memory_limit: u64,
    /// Archive finished procedures older than this, e.g. 180d (`surgstream archive
    /// --older-than` in the background, every --archive-interval). Off when unset.
    #[arg(long, env = "SURGSTREAM_ARCHIVE_AFTER", value_parser = positive_duration)]
    pub archive_after: Option<Duration>,
    /// How often the ingestor archives with --archive-after.
    #[arg(long, env = "SURGSTREAM_ARCHIVE_INTERVAL", default_value = "1h", value_parser = positive_duration)]
    pub archive_interval: Duration,
    #[command(flatten)]
    pub iceberg: IcebergOpts,
}

/// The Iceberg tables over the lake, as the ingestor keeps them.
#[derive(Debug, Clone, clap::Args)]
pub struct IcebergOpts {
    /// Publish the files the manifest committed to the Iceberg table this often, e.g. 1m (and
    /// once more when the ingestor stops).
    #[arg(long, env = "SURGSTREAM_ICEBERG_INTERVAL", default_value = "1m", value_parser = positive_duration)]
    pub iceberg_interval: Duration,
    /// Do not publish to Iceberg (the lake is then read through the manifest only).
    #[arg(long, env = "SURGSTREAM_NO_ICEBERG")]
    pub no_iceberg: bool,
    /// The Iceberg SQL catalog's name (its `catalog_name` rows): engines must name their
    /// catalog the same to see the tables, e.g. Spark's spark.sql.catalog.surgstream.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Compact the small committed files of hours closed over an hour ago this often, e.g.
    /// 10m (as `surgstream compact` does), then expire old Iceberg snapshots and delete what
    /// only they referenced (as `surgstream iceberg expire` does).
    #[arg(long, env = "SURGSTREAM_COMPACT_INTERVAL", default_value = "10m", value_parser = positive_duration)]
    pub compact_interval: Duration,
    /// Do not compact, nor expire snapshots.
    #[arg(long, env = "SURGSTREAM_NO_COMPACT")]
    pub no_compact: bool,
    #[command(flatten)]
    pub retention: SnapshotRetentionArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub opts: IngestOpts,
    /// Drain and exit once no record arrived for this long and the group has consumed every
    /// partition of both topics to its end (those of other members too: a dead member's are
    /// waited for until its session times out and they move here).
    #[arg(long, env = "SURGSTREAM_UNTIL_IDLE", value_parser = positive_duration)]
    pub until_idle: Option<Duration>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub opts: IngestOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TopicsArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// A Kafka client properties file for every client (TLS, SASL, …), as Kafka's own tools
    /// take with --command-config; SURGSTREAM_KAFKA_CLIENT_<PROPERTY> variables override it.
    /// docs/security.md.
    #[arg(long, env = "SURGSTREAM_KAFKA_CONFIG", value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
    /// Partitions of the telemetry topic (ingest parallelism).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub telemetry_partitions: i32,
    /// Partitions of the events topic.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..))]
    pub events_partitions: i32,
    /// Prefix for every topic name (tests use a fresh prefix each).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// How long to wait for the broker.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Copies of every partition [default: 3, or the number of brokers when fewer]. Fewer
    /// than 3 on a cluster of 3 or more brokers is refused without --force: the records are
    /// patient-linked and a single copy dies with its disk.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// The topics' `min.insync.replicas`: acknowledged writes (acks=all) are on at least this
    /// many replicas [default: 2 with 3 or more replicas, else 1].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub min_insync_replicas: Option<i32>,
    /// Create the topics with fewer replicas than the cluster could hold.
    #[arg(long)]
    pub force: bool,
}

impl TopicsArgs {
    /// The defaults for `brokers` at `brokers` (what bench and the tests create).
    pub fn new(
        brokers: String,
        kafka_config: Option<PathBuf>,
        telemetry_partitions: i32,
        prefix: String,
        timeout: Duration,
    ) -> Self {
        Self {
            brokers,
            kafka_config,
            telemetry_partitions,
            events_partitions: 2,
            prefix,
            timeout,
            replication_factor: None,
            min_insync_replicas: None,
            force: false,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Brokers and timeout (the topic names are the bench's own: `bench-<unix time>-<pid>.<topic>`).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Flush settings, as for `ingest` (the lake gets a fresh `bench-<unix time>-<pid>` subdirectory).
    #[command(flatten)]
    pub opts: IngestOpts,
    /// About this many frames are pre-filled (the seed profile at the matching --scale).
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1_000..), conflicts_with = "live")]
    pub frames: u64,
    /// Measure latency instead of draining a backlog: a live fleet streams at --rate in
    /// wall-clock time for --duration while the ingestor runs.
    #[arg(long)]
    pub live: bool,
    /// Live: frames per second in all (operating rooms = rate / --hz, rounded up).
    #[arg(long, default_value_t = 100_000, requires = "live", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// Live: frames per second of each operating room.
    #[arg(long, default_value_t = 1_000, requires = "live", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub hz: u32,
    /// Live: how long the fleet streams.
    #[arg(long, default_value = "60s", requires = "live", value_parser = positive_duration)]
    pub duration: Duration,
    /// Live: frames stamped in the first part of the run (the consumer group joining, the
    /// first files) are left out of the latency figures.
    #[arg(long, default_value = "10s", requires = "live", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// How the simulator compresses what it sends (see `sim --compression`).
    #[arg(long, default_value = "lz4")]
    pub compression: surgstream_sim::kafka::Compression,
    /// Partitions of the bench's telemetry topic (its events topic has 2).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Where the JSON result goes.
    #[arg(long, default_value = "bench-result.json")]
    pub output: PathBuf,
    /// The backlog to drain: `seed`, the data model's two-year backfill (~150 frames per
    /// partition-hour: the cost is per file), or `dense`, 100 operating rooms at 1 kHz sent as
    /// fast as the broker takes them (what a consumer catching up after an outage meets).
    #[arg(long, value_enum, default_value_t = Workload::Seed, conflicts_with = "live")]
    pub workload: Workload,
    /// The broker's process id on this machine (e.g. `$(cat .services/kafka-1.pid)`): its CPU
    /// seconds during the drain go next to the ingestor's.
    #[arg(long)]
    pub broker_pid: Option<u32>,
}

/// The backlog `bench` pre-fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// The seed profile's two-year backfill.
    Seed,
    /// Live operating rooms at 1 kHz, pre-filled as fast as the broker takes them.
    Dense,
}

#[cfg(test)]
mod tests {
    use super::byte_size;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(byte_size("4096"), Ok(4096));
        assert_eq!(byte_size("256MiB"), Ok(256 << 20));
        assert_eq!(byte_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(byte_size("64MB"), Ok(64_000_000));
        assert!(byte_size("0MiB").is_err());
        assert!(byte_size("12 parsecs").is_err_and(|e| e.contains("parsecs")));
        assert!(byte_size("MiB").is_err());
    }
}
