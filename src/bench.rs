//! `surgstream bench`: the end-to-end throughput harness. Pre-fills fresh topics with about
//! `--frames` frames of the seed profile (a child `surgstream sim`, so that this process's peak
//! RSS is the ingestor's alone), then times `ingest` draining them into the lake and PostgreSQL
//! and reports frames/s, MB/s, events/s, files and bytes written, peak RSS and CPU seconds per
//! million frames — as a table, and as JSON in `--output`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use surgstream_proto::topics;

use crate::cli::{
    DbArgs, IngestOpts, KafkaArgs, connect_db, ingest_config, open_lake, shutdown_token,
};

/// Frames the seed profile sends at `--scale 1` (the data model's two-year sample), to within
/// a few hundred whatever the seed.
const SEED_FRAMES_AT_SCALE_1: f64 = 492_400.0;
/// The drain ends this long after the last record.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Brokers and timeout (the topic names are the bench's own: `bench-<unix time>.<topic>`).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Flush settings, as for `ingest` (the lake gets a fresh `bench-<unix time>` subdirectory).
    #[command(flatten)]
    pub opts: IngestOpts,
    /// About this many frames are pre-filled (the seed profile at the matching --scale).
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    pub frames: u64,
    /// Where the JSON result goes.
    #[arg(long, default_value = "bench-result.json")]
    pub output: PathBuf,
}

/// The result, as written to `--output`.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// When (RFC 3339).
    pub date: String,
    /// CPU cores and memory of the machine.
    pub cores: usize,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Topics used (a fresh prefix per run).
    pub topic_prefix: String,
    /// Frames pre-filled.
    pub frames: u64,
    /// Kafka records they travelled in.
    pub telemetry_records: u64,
    /// Events pre-filled.
    pub events: u64,
    /// Seconds the pre-fill took (the simulator into the broker).
    pub prefill_seconds: f64,
    /// Seconds from the ingestor's start to the last commit (the idle tail excluded).
    pub drain_seconds: f64,
    /// Frames committed to the lake.
    pub frames_written: u64,
    /// Events applied to PostgreSQL.
    pub events_applied: u64,
    /// frames_written / drain_seconds.
    pub frames_per_second: f64,
    /// events_applied / drain_seconds.
    pub events_per_second: f64,
    /// Parquet bytes written / drain_seconds, MB/s.
    pub lake_mb_per_second: f64,
    /// Parquet files committed.
    pub files: u64,
    /// Parquet bytes committed.
    pub bytes_written: u64,
    /// Parquet bytes per frame.
    pub bytes_per_frame: f64,
    /// Peak resident set size of the ingesting process, MiB.
    pub peak_rss_mib: f64,
    /// User + system CPU seconds of the ingesting process during the drain.
    pub cpu_seconds: f64,
    /// cpu_seconds per million frames.
    pub cpu_seconds_per_million_frames: f64,
    /// Flushes by cause.
    pub flushes: std::collections::BTreeMap<&'static str, u64>,
    /// Dead letters (0 expected).
    pub dead_letters: u64,
}

pub async fn run(mut a: BenchArgs) -> Result<()> {
    let stamp = chrono::Utc::now();
    let prefix = format!("bench-{}.", stamp.timestamp());
    let topic = |t: &str| format!("{prefix}{t}");
    a.kafka.telemetry_topic = topic(topics::TELEMETRY);
    a.kafka.events_topic = topic(topics::EVENTS);
    a.opts.telemetry_dlq_topic = topic(topics::TELEMETRY_DLQ);
    a.opts.events_dlq_topic = topic(topics::EVENTS_DLQ);
    a.opts.group = format!("bench-{}", stamp.timestamp());
    a.opts.lake = format!(
        "{}/bench-{}",
        a.opts.lake.trim_end_matches('/'),
        stamp.timestamp()
    );
    crate::topics::run(crate::topics::TopicsArgs {
        brokers: a.kafka.brokers.clone(),
        telemetry_partitions: 4,
        events_partitions: 2,
        prefix: prefix.clone(),
        timeout: a.kafka.kafka_timeout.max(Duration::from_secs(15)),
    })
    .await?;

    // Pre-fill, in a child process.
    let scale = a.frames as f64 / SEED_FRAMES_AT_SCALE_1;
    let report_path = std::env::temp_dir().join(format!("surgstream-{prefix}sim.json"));
    say!(
        "bench: pre-filling {prefix}* with ~{} frames (seed profile, --scale {scale:.3})",
        a.frames
    );
    let started = Instant::now();
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .args(["sim", "--brokers", &a.kafka.brokers])
        .args(["--telemetry-topic", &a.kafka.telemetry_topic])
        .args(["--events-topic", &a.kafka.events_topic])
        .args(["--scale", &format!("{scale:.4}")])
        .arg("--report")
        .arg(&report_path)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("cannot run the simulator")?;
    anyhow::ensure!(
        status.success(),
        "the pre-fill (surgstream sim) failed: {status}"
    );
    let prefill_seconds = started.elapsed().as_secs_f64();
    let sim: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path)
            .with_context(|| format!("cannot read {}", report_path.display()))?,
    )?;
    let _ = std::fs::remove_file(&report_path);
    let count = |k: &str| sim[k].as_u64().unwrap_or(0);

    // Drain.
    let lake = open_lake(&a.opts.lake)?;
    let store = connect_db(&a.db).await?;
    store.migrate().await?;
    let cfg = ingest_config(&a.kafka, &a.opts, Some(IDLE));
    say!(
        "bench: draining with `ingest` (group {}, lake {}, PostgreSQL {})",
        cfg.group,
        lake.url(),
        store.target()
    );
    let cpu0 = cpu_seconds();
    let report = surgstream_ingest::run(cfg, lake, store, shutdown_token(), None).await?;
    let cpu = cpu_seconds()
        .zip(cpu0)
        .map(|(b, a)| b - a)
        .unwrap_or(f64::NAN);
    let drain = (report.elapsed_seconds - IDLE.as_secs_f64()).max(1e-9);
    let frames_written = report.frames_written;
    let result = BenchResult {
        date: stamp.to_rfc3339(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_mib: proc_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024,
        topic_prefix: prefix,
        frames: count("frames"),
        telemetry_records: count("telemetry_records"),
        events: count("events"),
        prefill_seconds,
        drain_seconds: drain,
        frames_written,
        events_applied: report.events_applied,
        frames_per_second: frames_written as f64 / drain,
        events_per_second: report.events_applied as f64 / drain,
        lake_mb_per_second: report.bytes_written as f64 / 1e6 / drain,
        files: report.files_written,
        bytes_written: report.bytes_written,
        bytes_per_frame: report.bytes_written as f64 / frames_written.max(1) as f64,
        peak_rss_mib: proc_kib("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0,
        cpu_seconds: cpu,
        cpu_seconds_per_million_frames: cpu / (frames_written.max(1) as f64 / 1e6),
        flushes: report.flushes.clone(),
        dead_letters: report.telemetry_dead_letters + report.event_dead_letters,
    };
    std::fs::write(&a.output, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    print_table(&result);
    say!("bench: result in {}", a.output.display());
    anyhow::ensure!(
        result.frames_written == result.frames && result.dead_letters == 0,
        "the drain wrote {} of {} frames with {} dead letters",
        result.frames_written,
        result.frames,
        result.dead_letters
    );
    Ok(())
}

fn print_table(r: &BenchResult) {
    let rows: [(&str, String); 12] = [
        (
            "machine",
            format!("{} cores, {} MiB", r.cores, r.memory_mib),
        ),
        (
            "pre-filled",
            format!(
                "{} frames in {} records + {} events, in {:.1} s",
                r.frames, r.telemetry_records, r.events, r.prefill_seconds
            ),
        ),
        ("drain", format!("{:.1} s", r.drain_seconds)),
        ("frames/s", format!("{:.0}", r.frames_per_second)),
        ("events/s", format!("{:.0}", r.events_per_second)),
        ("lake MB/s", format!("{:.2}", r.lake_mb_per_second)),
        ("files", r.files.to_string()),
        (
            "bytes written",
            format!("{} ({:.1} B/frame)", r.bytes_written, r.bytes_per_frame),
        ),
        ("peak RSS", format!("{:.0} MiB", r.peak_rss_mib)),
        ("CPU", format!("{:.1} s", r.cpu_seconds)),
        (
            "CPU s / M frames",
            format!("{:.2}", r.cpu_seconds_per_million_frames),
        ),
        ("flushes", crate::cli::flush_causes(&r.flushes)),
    ];
    for (k, v) in rows {
        say!("  {k:<18} {v}");
    }
}

/// User + system CPU seconds of this process so far (Linux: /proc/self/stat, in USER_HZ = 100).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A `Key:   123 kB` line of a /proc file, in KiB.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
