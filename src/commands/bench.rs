//! `surgstream bench`: the end-to-end throughput harness. Pre-fills fresh topics with about
//! `--frames` frames of a `--workload` (the seed backfill or a dense fleet; a child
//! `surgstream sim`, so that this process's peak
//! RSS is the ingestor's alone), then times `ingest` draining them into the lake and PostgreSQL
//! and reports frames/s, MB/s, events/s, files and bytes written, peak RSS and CPU seconds per
//! million frames — as a table, and as JSON in `--output`.
//!
//! With `--live`, a simulated fleet streams at `--rate` frames/s in wall-clock time (a child
//! `surgstream sim --profile live`) while the ingestor runs, and afterwards each committed
//! frame's latency — from its timestamp to the commit of the lake file holding it
//! (`lake_files.committed_at`) — is read back from the lake: p50, p90, p99, p99.9 and max. The
//! measurement is made after the run, from what was committed, so it adds nothing to the path
//! it measures (`live.rs`). What it reads of the machine is in `machine.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use surgstream_proto::latency::{LatencySummary, PartitionLatencies};
use surgstream_proto::topics;

use crate::cli::{BenchArgs, TopicsArgs, Workload};
use crate::setup::{Publishing, create_topics, flush_causes, prepare_ingest, shutdown_token};

mod live;
mod machine;

use machine::*;

/// Frames the seed profile sends at `--scale 1` (the data model's two-year sample), to within
/// a few hundred whatever the seed.
const SEED_FRAMES_AT_SCALE_1: f64 = 492_400.0;
/// The drain ends this long after the last record.
const IDLE: Duration = Duration::from_secs(5);

/// Rooms and rate of the dense workload.
const DENSE_ROOMS: u64 = 100;
const DENSE_HZ: u64 = 1_000;

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
    /// Raw archive: records committed (every telemetry record and event).
    pub raw_records: u64,
    /// Raw archive: bytes committed.
    pub raw_bytes_written: u64,
    /// Raw archive: bytes per record committed.
    pub raw_bytes_per_record: f64,
    /// Raw archive: bytes per frame (per frame drained).
    pub raw_bytes_per_frame: f64,
    /// Peak resident set size of the ingesting process, MiB.
    pub peak_rss_mib: f64,
    /// User + system CPU seconds of the ingesting process during the drain.
    pub cpu_seconds: f64,
    /// cpu_seconds per million frames.
    pub cpu_seconds_per_million_frames: f64,
    /// The workload drained.
    pub workload: Workload,
    /// The producer's compression codec (what the ingestor decompressed).
    pub compression: String,
    /// The broker's CPU seconds during the drain (with --broker-pid; null otherwise).
    pub broker_cpu_seconds: Option<f64>,
    /// Flushes by cause.
    pub flushes: BTreeMap<&'static str, u64>,
    /// Dead letters (0 expected).
    pub dead_letters: u64,
}

/// Where the seed workload's two years start (they end on 2025-12-31).
const SEED_WINDOW_START: &str = "2024-01-01T00:00:00Z";

pub async fn run(mut a: BenchArgs) -> Result<()> {
    let stamp = chrono::Utc::now();
    // Unique per run, even for two runs started in the same second.
    let run_id = format!("bench-{}-{}", stamp.timestamp(), std::process::id());
    let prefix = format!("{run_id}.");
    let topic = |t: &str| format!("{prefix}{t}");
    a.kafka.telemetry_topic = topic(topics::TELEMETRY);
    a.kafka.events_topic = topic(topics::EVENTS);
    a.opts.telemetry_dlq_topic = topic(topics::TELEMETRY_DLQ);
    a.opts.events_dlq_topic = topic(topics::EVENTS_DLQ);
    a.opts.group.clone_from(&run_id);
    a.opts.lake = format!("{}/{run_id}", a.opts.lake.trim_end_matches('/'));
    // Each run's lake gets its Iceberg table in a catalog of its own (same database).
    a.opts.iceberg.iceberg_catalog.clone_from(&run_id);
    create_topics(TopicsArgs::new(
        a.kafka.brokers.clone(),
        a.kafka.kafka_config.clone(),
        a.partitions,
        prefix.clone(),
        a.kafka.kafka_timeout.max(Duration::from_secs(15)),
    ))
    .await?;
    if a.live {
        return live::live(a, prefix, stamp).await;
    }

    // Pre-fill, in a child process.
    let report_path = sim_report_path(&prefix);
    let workload: Vec<String> = match a.workload {
        Workload::Seed => {
            let scale = a.frames as f64 / SEED_FRAMES_AT_SCALE_1;
            say!(
                "bench: pre-filling {prefix}* with ~{} frames (seed profile, --scale {scale:.3})",
                a.frames
            );
            // A fixed two-year window that has ended: the calendar does not move the workload
            // (the profile's default window ends today).
            vec![
                "--scale".into(),
                format!("{scale:.4}"),
                "--start-time".into(),
                SEED_WINDOW_START.into(),
            ]
        }
        Workload::Dense => {
            let seconds = a.frames.div_ceil(DENSE_ROOMS * DENSE_HZ);
            say!(
                "bench: pre-filling {prefix}* with ~{} frames ({DENSE_ROOMS} operating rooms at {DENSE_HZ} Hz for {seconds} s, sent as fast as the broker takes them)",
                a.frames
            );
            vec![
                "--profile".into(),
                "live".into(),
                "--fast".into(),
                "--robots".into(),
                DENSE_ROOMS.to_string(),
                "--hz".into(),
                DENSE_HZ.to_string(),
                "--duration".into(),
                format!("{seconds}s"),
            ]
        }
    };
    let started = Instant::now();
    let status = sim_command(&a)?
        .args(&workload)
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
    let sim = take_sim_report(&report_path)?;
    let count = |k: &str| sim[k].as_u64().unwrap_or(0);

    // Drain.
    let (lake, store, cfg) = prepare_ingest(&a.kafka, &a.db, &a.opts, Some(IDLE)).await?;
    say!(
        "bench: draining with `ingest` (group {}, lake {}, PostgreSQL {})",
        cfg.group,
        lake.url(),
        store.target()
    );
    let (cpu0, broker0) = (cpu_seconds(), process_cpu_seconds(a.broker_pid));
    let publishing = Publishing::start(&lake, &store, &a.opts, &a.kafka)?;
    let report = surgstream_ingest::run(cfg, lake, store, shutdown_token(), None).await;
    publishing
        .finish(Publishing::last_publish(report.is_ok()))
        .await;
    let report = report?;
    let cpu = diff(cpu_seconds(), cpu0);
    let broker_cpu = process_cpu_since(a.broker_pid, broker0);
    let drain = (report.elapsed_seconds - IDLE.as_secs_f64()).max(1e-9);
    let frames_written = report.frames_written;
    let result = BenchResult {
        date: stamp.to_rfc3339(),
        cores: cores(),
        memory_mib: memory_mib(),
        topic_prefix: prefix,
        compression: a.compression.name().to_owned(),
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
        raw_records: report.raw_records_written,
        raw_bytes_written: report.raw_bytes_written,
        raw_bytes_per_record: report.raw_bytes_written as f64
            / report.raw_records_written.max(1) as f64,
        raw_bytes_per_frame: report.raw_bytes_written as f64 / frames_written.max(1) as f64,
        peak_rss_mib: peak_rss_mib(),
        cpu_seconds: cpu,
        cpu_seconds_per_million_frames: cpu / (frames_written.max(1) as f64 / 1e6),
        workload: a.workload,
        broker_cpu_seconds: broker_cpu,
        flushes: report.flushes.clone(),
        dead_letters: report.telemetry_dead_letters + report.event_dead_letters,
    };
    write_result(&a.output, &result)?;
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
    let rows: [(&str, String); 15] = [
        ("workload", format!("{:?}", r.workload).to_lowercase()),
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
        (
            "raw archive",
            if r.raw_records == 0 {
                "off".to_owned()
            } else {
                format!(
                    "{} records, {} bytes ({:.0} B/record, {:.1} B/frame)",
                    r.raw_records,
                    r.raw_bytes_written,
                    r.raw_bytes_per_record,
                    r.raw_bytes_per_frame
                )
            },
        ),
        ("peak RSS", format!("{:.0} MiB", r.peak_rss_mib)),
        ("CPU", format!("{:.1} s", r.cpu_seconds)),
        (
            "broker CPU",
            r.broker_cpu_seconds
                .map_or_else(|| "(no --broker-pid)".to_owned(), |c| format!("{c:.1} s")),
        ),
        (
            "CPU s / M frames",
            format!("{:.2}", r.cpu_seconds_per_million_frames),
        ),
        ("flushes", flush_causes(&r.flushes)),
    ];
    for (k, v) in rows {
        say!("  {k:<18} {v}");
    }
}

/// Where the child simulator writes its `--report`.
fn sim_report_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("surgstream-{prefix}sim.json"))
}

/// The child simulator's report, read and then removed.
fn take_sim_report(path: &std::path::Path) -> Result<serde_json::Value> {
    let sim = serde_json::from_str(
        &std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let _ = std::fs::remove_file(path);
    Ok(sim)
}

/// The JSON result, to `--output`.
fn write_result(path: &std::path::Path, result: &impl Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(result)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `surgstream sim` as a child process, sending to the bench's topics over the bench's
/// connection settings (the `SURGSTREAM_KAFKA_CLIENT_*` variables it inherits) and codec.
fn sim_command(a: &BenchArgs) -> Result<tokio::process::Command> {
    let mut sim = tokio::process::Command::new(std::env::current_exe()?);
    sim.args(["sim", "--brokers", &a.kafka.brokers])
        .args(["--telemetry-topic", &a.kafka.telemetry_topic])
        .args(["--events-topic", &a.kafka.events_topic])
        .args(["--compression", a.compression.name()]);
    if let Some(file) = &a.kafka.kafka_config {
        sim.arg("--kafka-config").arg(file);
    }
    Ok(sim)
}
