//! Command-line options (every one with an environment variable) and subcommand dispatch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use surgstream_ingest::IngestConfig;
use surgstream_lake::Lake;
use surgstream_proto::time::MICROS_PER_DAY;
use surgstream_proto::topics;
use surgstream_sim::kafka::{SimReport, SinkOptions};
use surgstream_sim::{Profile, SimConfig, Simulation};
use surgstream_store::Store;
use tokio_util::sync::CancellationToken;

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
    CreateTopics(crate::topics::TopicsArgs),
    /// The end-to-end throughput harness: pre-fill fresh topics with --frames frames, time
    /// `ingest` draining them; a table and a JSON result.
    Bench(crate::bench::BenchArgs),
    /// Remove lake files that no manifest row names, older than --grace (what a crash between
    /// writing a file and committing it leaves). `ingest` does this every --sweep-interval.
    Sweep(crate::verify::SweepArgs),
    /// Compare the source topics with the committed lake and tables: missing and duplicated
    /// frames, unprocessed events, orphan files. Exit code 1 on any discrepancy.
    Verify(crate::verify::VerifyArgs),
}

/// Kafka connection and topic names.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port…].
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
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
    /// AWS_ALLOW_HTTP=true for a plain-HTTP endpoint).
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
    /// stop consuming and try again with backoff for this long before giving up, e.g. 10m.
    #[arg(long, env = "SURGSTREAM_STORE_RETRY_TIMEOUT", default_value = "10m", value_parser = positive_duration)]
    pub store_retry_timeout: Duration,
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
    /// Serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off when unset.
    #[arg(long, env = "SURGSTREAM_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// A librdkafka consumer property, KEY=VALUE, repeatable (e.g. security.protocol=SASL_SSL,
    /// fetch.max.bytes=104857600). group.id, bootstrap.servers, enable.auto.commit,
    /// enable.auto.offset.store and auto.offset.reset are refused: surgstream sets them.
    #[arg(long = "consumer-option", value_name = "KEY=VALUE", value_parser = surgstream_ingest::check_consumer_option)]
    pub consumer_options: Vec<(String, String)>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub opts: IngestOpts,
    /// Drain and exit once no record arrived for this long and every partition is caught up.
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

/// An RFC 3339 instant, as microseconds since the epoch.
pub fn parse_start_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-01T08:00:00Z)"))
}

/// A duration such as `500ms`, `5s`, `2m`, greater than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

/// A size such as `512MiB`, `64MB`, `1GiB`, `4096` (bytes); greater than zero.
pub fn byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use B, KB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 512MiB"))?;
    let bytes = value * unit_bytes as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?} must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=off,rdkafka::client=off,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancelled on Ctrl-C or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("signal received: stopping");
        t.cancel();
    });
    token
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Sim(a) => sim(a).await,
        Command::Ingest(a) => ingest(a).await,
        Command::Demo(a) => crate::demo::run(a).await,
        Command::Migrate(a) => {
            let store = connect_db(&a).await?;
            store.migrate().await?;
            say!("migrations applied to {}", store.target());
            Ok(())
        }
        Command::CreateTopics(a) => crate::topics::run(a).await,
        Command::Verify(a) => crate::verify::run(a).await,
        Command::Sweep(a) => crate::verify::sweep(a).await,
        Command::Bench(a) => crate::bench::run(a).await,
    }
}

/// The simulation the fleet options describe; `default_profile` when none is given, `now` in
/// µs UTC. An option of the other profile is refused rather than silently ignored.
pub fn sim_config(f: &FleetArgs, default_profile: ProfileArg, now: i64) -> Result<SimConfig> {
    let profile = f.profile.unwrap_or(default_profile);
    let misplaced = match profile {
        ProfileArg::Seed => vec![("--hz", f.hz.is_some()), ("--speed", f.speed.is_some())],
        ProfileArg::Live => vec![
            ("--samples", f.samples.is_some()),
            ("--scale", f.scale != 1.0),
        ],
    };
    if let Some((option, _)) = misplaced.iter().find(|(_, given)| *given) {
        let (this, other) = match profile {
            ProfileArg::Seed => ("seed", "live"),
            ProfileArg::Live => ("live", "seed"),
        };
        anyhow::bail!(
            "invalid option {option}: it applies to --profile {other}, and this is a {this} run"
        );
    }
    let seed = f.seed.unwrap_or_else(|| {
        // A fresh fleet each run: robots registered by an earlier run are not registered again.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    // Zero stays zero, and is refused by name when the simulation is set up.
    let times = |n: u32| (f64::from(n) * f.scale).round().min(f64::from(u32::MAX)) as u32;
    Ok(match profile {
        ProfileArg::Seed => {
            let window = f
                .duration
                .unwrap_or(Duration::from_secs(SimConfig::SEED_DAYS * 86_400));
            let days = (window.as_secs() / 86_400) as i64;
            // The window ends at today's midnight (UTC) unless a start is given.
            let start = f
                .start_time
                .unwrap_or_else(|| (now.div_euclid(MICROS_PER_DAY) - days) * MICROS_PER_DAY);
            let mut cfg = SimConfig::seed(f.scale, seed, start);
            if let Some(r) = f.robots {
                cfg.robots = times(r);
                cfg.facilities = cfg.robots.div_ceil(5).min(times(10)).max(1);
            }
            if let Some(p) = f.procedures {
                cfg.procedures = Some(times(p));
            }
            // Four logs per robot over two years, as in the data model.
            cfg.maintenance =
                ((f64::from(cfg.robots) * 4.0 * days as f64 / 730.0).round() as u32).max(1);
            cfg.samples = f.samples.unwrap_or(cfg.samples);
            cfg.duration = Some(window);
            cfg
        }
        ProfileArg::Live => {
            let mut cfg =
                SimConfig::live(f.robots.unwrap_or(10), seed, f.start_time.unwrap_or(now));
            cfg.procedures = f.procedures;
            cfg.hz = f.hz.unwrap_or(cfg.hz);
            cfg.speed = f.speed.unwrap_or(cfg.speed);
            cfg.duration = f.duration;
            cfg.batch_interval = f.batch_interval;
            cfg
        }
    })
}

/// A scale factor: a positive number, at most 10000.
pub fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err("expected a number greater than 0 and at most 10000, e.g. 10".into()),
    }
}

/// Where and how to send a simulation: a live run is paced in wall-clock time unless `--fast`;
/// a seed run is a backfill, sent as fast as the broker takes it.
pub fn sink_options(k: &KafkaArgs, f: &FleetArgs, cfg: &SimConfig) -> SinkOptions {
    SinkOptions {
        brokers: k.brokers.clone(),
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        paced: !f.fast && cfg.profile == Profile::Live,
        timeout: k.kafka_timeout,
    }
}

/// Opens the lake for a long-running command. `memory://` is refused: the manifest in
/// PostgreSQL would name files that vanish when the process exits.
pub fn open_lake(url: &str) -> Result<Lake> {
    if url.starts_with("memory:") {
        anyhow::bail!(
            "invalid lake URL {url:?}: memory:// lives only inside one process (tests, benches); committed offsets would point at files that vanish on exit"
        );
    }
    Ok(Lake::open(url)?)
}

impl DbArgs {
    /// The URL: from --database-url, or read from --database-url-file (its content is never
    /// printed: it holds the password), or the local default.
    pub fn url(&self) -> Result<String> {
        if let Some(path) = &self.database_url_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read --database-url-file {}: {e}", path.display())
            })?;
            let url = text.trim();
            anyhow::ensure!(
                !url.is_empty(),
                "--database-url-file {} is empty: it must hold a PostgreSQL URL",
                path.display()
            );
            return Ok(url.to_owned());
        }
        Ok(self
            .database_url
            .clone()
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/surgstream".to_owned()))
    }
}

pub async fn connect_db(db: &DbArgs) -> Result<Store> {
    Ok(Store::connect(&db.url()?, 8, db.db_timeout).await?)
}

pub fn ingest_config(k: &KafkaArgs, o: &IngestOpts, until_idle: Option<Duration>) -> IngestConfig {
    IngestConfig {
        brokers: k.brokers.clone(),
        group: o.group.clone(),
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        telemetry_dlq_topic: o.telemetry_dlq_topic.clone(),
        events_dlq_topic: o.events_dlq_topic.clone(),
        max_rows: o.max_rows as usize,
        sweep_interval: o.sweep_interval,
        sweep_grace: o.sweep_grace,
        store_retry_timeout: o.store_retry_timeout,
        max_bytes: usize::try_from(o.max_bytes).unwrap_or(usize::MAX),
        memory_limit: usize::try_from(o.memory_limit).unwrap_or(usize::MAX),
        max_age: o.max_age,
        event_batch: o.event_batch as usize,
        event_max_age: o.event_max_age,
        until_idle,
        timeout: k.kafka_timeout,
        health: surgstream_ingest::health::Health::default(),
        consumer_options: o.consumer_options.clone(),
    }
}

async fn sim(a: SimArgs) -> Result<()> {
    let cfg = sim_config(
        &a.fleet,
        ProfileArg::Seed,
        chrono::Utc::now().timestamp_micros(),
    )?;
    let simulation = Simulation::new(cfg.clone())?;
    if a.output.is_some() || a.dry_run {
        let seed = simulation.seed();
        let report = match &a.output {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                surgstream_sim::file::write(simulation, &mut out)
                    .with_context(|| format!("cannot write {}", path.display()))?
            }
            None => surgstream_sim::file::write(simulation, &mut std::io::sink())?,
        };
        tracing::info!(seed, "simulation written without Kafka");
        print_sim_report(&report);
        return write_report(a.report.as_deref(), &report);
    }
    let opts = sink_options(&a.kafka, &a.fleet, &cfg);
    let producer = surgstream_sim::kafka::connect(&opts).await?;
    crate::http::serve(
        a.metrics_addr,
        crate::http::broker_ready(&producer, &opts.brokers),
    )
    .await?;
    if opts.paced {
        // An upper bound: every operating room in a procedure at once.
        metrics::gauge!(surgstream_sim::kafka::TARGET_RATE)
            .set(f64::from(cfg.robots) * f64::from(cfg.hz));
    }
    tracing::info!(brokers = %opts.brokers, paced = opts.paced, seed = simulation.seed(),
        "simulation started: {cfg} (pass --seed to reproduce)");
    let report = surgstream_sim::kafka::run(simulation, &producer, &opts, shutdown_token()).await;
    print_sim_report(&report);
    write_report(a.report.as_deref(), &report)?;
    if report.delivery_errors > 0 {
        anyhow::bail!(
            "{} records could not be delivered to {}",
            report.delivery_errors,
            opts.brokers
        );
    }
    Ok(())
}

fn write_report(path: Option<&std::path::Path>, report: &SimReport) -> Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_vec_pretty(report)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report to {}", path.display()))?;
    }
    Ok(())
}

pub fn print_sim_report(r: &SimReport) {
    let achieved = r.frames as f64 / r.elapsed_seconds.max(1e-9);
    let pace = if r.paced {
        let planned = r.frames as f64 / r.simulated_seconds.max(1e-9);
        format!(
            "{achieved:.0} frames/s achieved vs {planned:.0} planned ({:.1}%), at most {:.2}s behind schedule",
            100.0 * achieved / planned.max(1e-9),
            r.max_behind_seconds
        )
    } else {
        let span = if r.simulated_seconds >= 86_400.0 {
            format!("{:.1} days", r.simulated_seconds / 86_400.0)
        } else {
            format!("{:.1}s", r.simulated_seconds)
        };
        format!("{achieved:.0} frames/s, {span} of simulated time")
    };
    let open = match r.in_progress() {
        0 => String::new(),
        n => format!(", {n} procedures still in progress"),
    };
    say!(
        "sim: {} frames in {} telemetry records, {} events, {} delivery errors in {:.1}s: {pace}{open}{}",
        r.frames,
        r.telemetry_records,
        r.events,
        r.delivery_errors,
        r.elapsed_seconds,
        if r.interrupted {
            " — interrupted"
        } else {
            ""
        }
    );
}

/// What an ingestor needs before it runs: the lake, the migrated database, its configuration,
/// and `/metrics`, `/healthz`, `/readyz` served when --metrics-addr is set.
pub async fn prepare_ingest(
    k: &KafkaArgs,
    db: &DbArgs,
    o: &IngestOpts,
    until_idle: Option<Duration>,
) -> Result<(Lake, Store, IngestConfig)> {
    let lake = open_lake(&o.lake)?;
    let store = connect_db(db).await?;
    store.migrate().await?;
    let cfg = ingest_config(k, o, until_idle);
    crate::http::serve(
        o.metrics_addr,
        crate::http::ingest_ready(cfg.health.clone()),
    )
    .await?;
    Ok((lake, store, cfg))
}

async fn ingest(a: IngestArgs) -> Result<()> {
    let (lake, store, cfg) = prepare_ingest(&a.kafka, &a.db, &a.opts, a.until_idle).await?;
    let report = surgstream_ingest::run(cfg, lake, store, shutdown_token(), None).await?;
    say!(
        "ingest: {} frames in {} files ({} bytes), {} events applied, {} replayed, {} telemetry and {} event dead letters, {:.1}s; flushes by cause: {}",
        report.frames_written,
        report.files_written,
        report.bytes_written,
        report.events_applied,
        report.events_replayed,
        report.telemetry_dead_letters,
        report.event_dead_letters,
        report.elapsed_seconds,
        flush_causes(&report.flushes)
    );
    Ok(())
}

/// `age 3, rows 2, shutdown 4`, or `none`.
pub fn flush_causes(flushes: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if flushes.is_empty() {
        return "none".to_owned();
    }
    flushes
        .iter()
        .map(|(cause, n)| format!("{cause} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
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
