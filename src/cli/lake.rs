//! The options of the commands that keep the lake's tables rather than stream into them:
//! `iceberg`, `compact`, `warehouse`, `export`, `sweep`, `verify`.

use super::*;

#[derive(Debug, Clone, clap::Args)]
pub struct IcebergArgs {
    #[command(subcommand)]
    pub command: IcebergCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum IcebergCommand {
    /// Append every lake file the manifest committed since the table's watermark to
    /// `surgstream.procedure_telemetry` (created if missing), as one snapshot; and every raw
    /// file of each topic to its raw table (`raw.<topic>`, created by its first file).
    Publish(IcebergPublishArgs),
    /// Merge the telemetry table's and the raw tables' manifests when they pile up
    /// (--merge-manifests-at), expire their snapshots older than --snapshots-older-than
    /// (keeping the newest --retain-last), delete the manifest lists and manifests only they
    /// referenced, and the lake files compactions retired that no retained snapshot lists
    /// (after --retired-grace). `ingest` does this after each periodic compaction.
    Expire(IcebergExpireArgs),
    /// Register every table of the Iceberg catalog in the AWS Glue Data Catalog (--glue), each
    /// under its own name, for Athena, Redshift Spectrum and EMR; from then on every commit
    /// (the ingestor's publishes, `iceberg publish`, compaction, the warehouse) moves the Glue
    /// entry to the new snapshot's metadata file. Registering again is harmless.
    Register(IcebergRegisterArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct IcebergRegisterArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Register in the AWS Glue Data Catalog (credentials and endpoint from the AWS SDK's
    /// chain: AWS_PROFILE, AWS_ENDPOINT_URL_GLUE, …). The only catalog so far, and required.
    #[arg(long, required = true)]
    pub glue: bool,
    /// The Glue database of every table [default: each table's Iceberg namespace:
    /// `surgstream`, `raw`, `warehouse`, `archive`], created if missing.
    #[arg(long, value_name = "NAME")]
    pub glue_database: Option<String>,
    /// The Glue catalog's id (the AWS account that owns it) [default: the caller's].
    #[arg(long, value_name = "ACCOUNT")]
    pub glue_catalog_id: Option<String>,
    /// The Glue Data Catalog's region [default: the SDK's: AWS_REGION, the profile's].
    #[arg(long)]
    pub region: Option<String>,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Print the registrations as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IcebergExpireArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose retired files are deleted.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    #[command(flatten)]
    pub retention: SnapshotRetentionArgs,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How long the Iceberg table keeps its history, and compaction's retired files.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotRetentionArgs {
    /// Snapshots older than this are expired (time travel reaches back this far), e.g. 5d
    /// (Iceberg's own default).
    #[arg(long = "snapshots-older-than", env = "SURGSTREAM_ICEBERG_SNAPSHOT_AGE", default_value = "5d", value_parser = humantime::parse_duration)]
    pub older_than: Duration,
    /// Snapshots kept whatever their age.
    #[arg(long, env = "SURGSTREAM_ICEBERG_RETAIN_LAST", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub retain_last: u32,
    /// Merge the table's manifests (one per publish) into one per partition spec when the
    /// current snapshot lists more than this many.
    #[arg(long, env = "SURGSTREAM_ICEBERG_MERGE_MANIFESTS_AT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub merge_manifests_at: u32,
    /// A file a compaction replaced is deleted no sooner than this after it (readers of the
    /// manifest that listed it before may still be reading it), e.g. 1h.
    #[arg(long, env = "SURGSTREAM_RETIRED_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retired_grace: Duration,
}

impl SnapshotRetentionArgs {
    pub fn options(&self) -> surgstream_iceberg::expire::ExpireOptions {
        surgstream_iceberg::expire::ExpireOptions {
            older_than: self.older_than,
            retain_last: self.retain_last as usize,
            merge_manifests_at: self.merge_manifests_at as usize,
            retired_grace: self.retired_grace,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct IcebergPublishArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix (AWS_* settings as
    /// for ingest).
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed lake files are published.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// The telemetry topic the files were consumed from.
    #[arg(long, env = "SURGSTREAM_TELEMETRY_TOPIC", default_value = topics::TELEMETRY)]
    pub telemetry_topic: String,
    /// The events topic, whose raw archive is published to its raw table.
    #[arg(long, env = "SURGSTREAM_EVENTS_TOPIC", default_value = topics::EVENTS)]
    pub events_topic: String,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Publish again for up to this long, e.g. 30s, while files committed by transactions the
    /// horizon has not passed remain (a transaction open anywhere in the PostgreSQL cluster
    /// holds it back).
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub wait: Duration,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WarehouseArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix (AWS_* settings as
    /// for ingest). The warehouse's Parquet goes under warehouse/ in it.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed lake files are read.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// DataFusion's working memory, e.g. 512MiB; the process peaks up to about 120 MiB above it (docs/warehouse.md).
    #[arg(long, env = "SURGSTREAM_WAREHOUSE_MEMORY_LIMIT", default_value = "512MiB", value_parser = byte_size)]
    pub memory_limit: u64,
    /// Keep refreshing this often, e.g. 5m, until stopped (SIGTERM, Ctrl-C); once when unset.
    #[arg(long, env = "SURGSTREAM_WAREHOUSE_INTERVAL", value_parser = positive_duration)]
    pub interval: Option<Duration>,
    /// With --interval: serve /metrics, /healthz and /readyz on this address (e.g.
    /// 127.0.0.1:9465); off when unset.
    #[arg(long, env = "SURGSTREAM_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Do not publish the star schema as Iceberg tables (`warehouse.fact_procedure`, … in the
    /// catalog below); the plain month files and PostgreSQL's rows are written either way.
    #[arg(long, env = "SURGSTREAM_NO_ICEBERG")]
    pub no_iceberg: bool,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// How long a replaced snapshot of a warehouse Iceberg table, and the files only it lists,
    /// are kept: the longest query a reader may run on it, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub iceberg_retention: Duration,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix (AWS_* settings as
    /// for ingest).
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed lake files are compacted.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// The telemetry topic the files were consumed from.
    #[arg(long, env = "SURGSTREAM_TELEMETRY_TOPIC", default_value = topics::TELEMETRY)]
    pub telemetry_topic: String,
    /// Only files whose frames are all older than this, rounded down to the hour (closed
    /// hours), e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub older_than: Duration,
    /// Files with fewer rows than this are small.
    #[arg(long, default_value_t = surgstream_ingest::compact::DEFAULT_SMALL_ROWS, value_parser = clap::value_parser!(i64).range(2..))]
    pub small_rows: i64,
    /// Rows per compacted file, at most: one merge holds them in memory (peak RSS about 260 MiB
    /// at the default, growing ~4 KiB a row).
    #[arg(long, default_value_t = surgstream_ingest::compact::DEFAULT_TARGET_ROWS, value_parser = clap::value_parser!(i64).range(2..))]
    pub target_rows: i64,
    /// Say what would be merged; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave the Iceberg table alone (`ingest`'s publisher, or `iceberg publish`, follows the
    /// compaction later).
    #[arg(long)]
    pub no_iceberg: bool,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed lake files are read.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// The procedure (its UUID).
    #[arg(long)]
    pub procedure: uuid::Uuid,
    /// jsonl: one JSON object per line (`record`: robot, procedure, status, outcome, frame), to
    /// --output or standard output; parquet: a directory --output with case.json and
    /// telemetry.parquet.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Where to write (a file for jsonl, a directory for parquet); jsonl goes to standard output
    /// without it.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
}

/// Where `archive` and `restore` move procedures between, and how they report.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveStore {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// Do not publish the archive as Iceberg tables (`archive.surgical_procedures`, … in the
    /// catalog below); the objects and PostgreSQL's rows are written either way.
    #[arg(long, env = "SURGSTREAM_NO_ICEBERG")]
    pub no_iceberg: bool,
    /// The Iceberg SQL catalog's name.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub store: ArchiveStore,
    /// Archive the procedures that finished longer ago than this (their end; a cancelled
    /// one's cancellation), e.g. 180d.
    #[arg(long, value_parser = positive_duration)]
    pub older_than: Duration,
    /// Procedures per transaction: what one batch holds in memory.
    #[arg(long, default_value_t = surgstream_warehouse::archive::DEFAULT_BATCH, value_parser = clap::value_parser!(usize))]
    pub batch: usize,
}

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["procedure", "month"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub store: ArchiveStore,
    /// The archived procedure to bring back (its UUID).
    #[arg(long)]
    pub procedure: Option<uuid::Uuid>,
    /// Every archived procedure of a month, YYYY-MM (of its start, or its booked start).
    #[arg(long, value_parser = year_month)]
    pub month: Option<i32>,
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Parquet,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory or file:///abs/path.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// Only files older than this are orphans (younger ones may be a flush in progress), e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = positive_duration)]
    pub grace: Duration,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory or file:///abs/path.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed offsets and manifest are checked.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// Files no manifest row names are orphans once older than this (younger: a flush in
    /// progress), e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    pub grace: Duration,
    /// Records not yet ingested (at or above the committed offsets) count as discrepancies.
    #[arg(long)]
    pub require_drained: bool,
    /// The Iceberg SQL catalog whose telemetry table is checked against the manifest.
    #[arg(long, env = "SURGSTREAM_ICEBERG_CATALOG", default_value = surgstream_iceberg::DEFAULT_CATALOG)]
    pub iceberg_catalog: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Kafka bootstrap servers, host:port[,host:port…].
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// A Kafka client properties file (TLS, SASL, …): docs/security.md.
    #[arg(long, env = "SURGSTREAM_KAFKA_CONFIG", value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
    /// How long to wait for the broker before giving up, e.g. 10s.
    #[arg(long, env = "SURGSTREAM_KAFKA_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub kafka_timeout: Duration,
    /// Lake location: a directory, file:///abs/path, or s3://bucket/prefix.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose raw archive is read.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// Read the raw record archive (the only source there is).
    #[arg(long, required = true)]
    pub from_raw: bool,
    /// The archived topic to replay, as the ingestor consumed it (e.g. surgical.telemetry.v1).
    #[arg(long)]
    pub topic: String,
    /// The topic to produce to; it must exist, and must not be --topic.
    #[arg(long)]
    pub to_topic: String,
    /// Only records with a Kafka timestamp at or after this instant (RFC 3339).
    #[arg(long, value_parser = parse_instant)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records with a Kafka timestamp before this instant (RFC 3339).
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Let the producer place records by key instead of sending each to the partition number it
    /// came from (which needs --to-topic to have at least as many partitions).
    #[arg(long)]
    pub partition_by_key: bool,
    /// Give each record its archived Kafka timestamp instead of the send time. Records older
    /// than the target's retention.ms are then deleted by the broker as soon as they land.
    #[arg(long)]
    pub keep_timestamps: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not apply the database migrations: check that they were applied instead.
    #[arg(long, env = "SURGSTREAM_SKIP_MIGRATE")]
    pub skip_migrate: bool,
}
