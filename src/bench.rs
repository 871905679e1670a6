//! `surgstream bench`: the end-to-end throughput harness. Pre-fills fresh topics with about
//! `--frames` frames of the seed profile (a child `surgstream sim`, so that this process's peak
//! RSS is the ingestor's alone), then times `ingest` draining them into the lake and PostgreSQL
//! and reports frames/s, MB/s, events/s, files and bytes written, peak RSS and CPU seconds per
//! million frames — as a table, and as JSON in `--output`.
//!
//! With `--live`, a simulated fleet streams at `--rate` frames/s in wall-clock time (a child
//! `surgstream sim --profile live`) while the ingestor runs, and afterwards each committed
//! frame's latency — from its timestamp to the commit of the lake file holding it
//! (`lake_files.committed_at`) — is read back from the lake: p50, p90, p99, p99.9 and max. The
//! measurement is made after the run, from what was committed, so it adds nothing to the path
//! it measures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use surgstream_proto::latency::{LatencySummary, PartitionLatencies};
use surgstream_proto::topics;

use crate::cli::{DbArgs, IngestOpts, KafkaArgs, prepare_ingest, shutdown_token};

/// Frames the seed profile sends at `--scale 1` (the data model's two-year sample), to within
/// a few hundred whatever the seed.
const SEED_FRAMES_AT_SCALE_1: f64 = 492_400.0;
/// The drain ends this long after the last record.
const IDLE: Duration = Duration::from_secs(5);

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
    #[arg(long, default_value = "60s", requires = "live", value_parser = crate::cli::positive_duration)]
    pub duration: Duration,
    /// Live: frames stamped in the first part of the run (the consumer group joining, the
    /// first files) are left out of the latency figures.
    #[arg(long, default_value = "10s", requires = "live", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Partitions of the bench's telemetry topic (its events topic has 2).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
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
    pub flushes: BTreeMap<&'static str, u64>,
    /// Dead letters (0 expected).
    pub dead_letters: u64,
}

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
    crate::topics::run(crate::topics::TopicsArgs {
        brokers: a.kafka.brokers.clone(),
        telemetry_partitions: a.partitions,
        events_partitions: 2,
        prefix: prefix.clone(),
        timeout: a.kafka.kafka_timeout.max(Duration::from_secs(15)),
    })
    .await?;
    if a.live {
        return live(a, prefix, stamp).await;
    }

    // Pre-fill, in a child process.
    let scale = a.frames as f64 / SEED_FRAMES_AT_SCALE_1;
    let report_path = sim_report_path(&prefix);
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
    let cpu0 = cpu_seconds();
    let report = surgstream_ingest::run(cfg, lake, store, shutdown_token(), None).await?;
    let cpu = diff(cpu_seconds(), cpu0);
    let drain = (report.elapsed_seconds - IDLE.as_secs_f64()).max(1e-9);
    let frames_written = report.frames_written;
    let result = BenchResult {
        date: stamp.to_rfc3339(),
        cores: cores(),
        memory_mib: memory_mib(),
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
        peak_rss_mib: peak_rss_mib(),
        cpu_seconds: cpu,
        cpu_seconds_per_million_frames: cpu / (frames_written.max(1) as f64 / 1e6),
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

/// User + system CPU seconds of this process so far (Linux: /proc/self/stat, in USER_HZ = 100).
fn cpu_seconds() -> Option<f64> {
    proc_self_stat(11)
}

/// User + system CPU seconds of the children this process has waited for.
fn children_cpu_seconds() -> Option<f64> {
    proc_self_stat(13)
}

/// Fields `at` and `at + 1` of /proc/self/stat (counted from the state, field 3), added, in
/// seconds of USER_HZ = 100.
fn proc_self_stat(at: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let a: f64 = f.get(at)?.parse().ok()?;
    let b: f64 = f.get(at + 1)?.parse().ok()?;
    Some((a + b) / 100.0)
}

/// Busy and total jiffies of the whole machine (every core) so far, from /proc/stat.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal …
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn memory_mib() -> u64 {
    proc_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024
}

fn peak_rss_mib() -> f64 {
    proc_kib("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
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

/// The result of `bench --live`, as written to `--output`.
#[derive(Debug, Serialize)]
pub struct LiveResult {
    /// When (RFC 3339).
    pub date: String,
    /// CPU cores of the machine.
    pub cores: usize,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Topics used (a fresh prefix per run).
    pub topic_prefix: String,
    /// Operating rooms streaming.
    pub rooms: u32,
    /// Frames per second of each room.
    pub hz: u32,
    /// Frames per second asked for (rooms × hz).
    pub rate: u64,
    /// Seconds the fleet streamed.
    pub duration_seconds: f64,
    /// Frames the simulator delivered to the broker.
    pub frames_sent: u64,
    /// frames_sent over the simulated time they cover.
    pub frames_per_second_sent: f64,
    /// Largest delay of a send behind its due time (the broker not keeping up), seconds.
    pub sim_max_behind_seconds: f64,
    /// Frames committed to the lake.
    pub frames_written: u64,
    /// Parquet files committed.
    pub files: u64,
    /// Parquet bytes committed.
    pub bytes_written: u64,
    /// The ingestor's `--max-age`, seconds.
    pub max_age_seconds: f64,
    /// Frames left out of the latency figures (stamped within --warmup of the start).
    pub warmup_frames: u64,
    /// Frames the latency figures cover.
    pub measured_frames: u64,
    /// Frame timestamp → commit of its lake file, seconds.
    pub latency_p50_seconds: f64,
    pub latency_p90_seconds: f64,
    pub latency_p99_seconds: f64,
    pub latency_p999_seconds: f64,
    pub latency_max_seconds: f64,
    /// Issue 6's target: p99 no more than --max-age + 1 s.
    pub p99_target_seconds: f64,
    pub p99_target_met: bool,
    /// Peak resident set size of the ingesting process, MiB.
    pub ingest_peak_rss_mib: f64,
    /// CPU seconds of the ingestor, and of the simulator (a child process), over the run.
    pub ingest_cpu_seconds: f64,
    pub sim_cpu_seconds: f64,
    /// The ingestor's CPU seconds per million frames.
    pub ingest_cpu_seconds_per_million_frames: f64,
    /// Share of all cores busy over the run (ingestor, simulator, broker, PostgreSQL, the rest).
    pub machine_busy_percent: f64,
    /// Flushes by cause.
    pub flushes: BTreeMap<&'static str, u64>,
    /// Dead letters (0 expected).
    pub dead_letters: u64,
    /// Where each telemetry partition's latency goes.
    pub partitions: BTreeMap<i32, PartitionLatency>,
}

/// One telemetry partition's latency, split where it can be measured without adding to the
/// path: the producer's send → the broker's acknowledgement (the simulator's delivery reports),
/// send → received by the ingestor (the record's Kafka timestamp against the ingestor's
/// clock), and each frame's own timestamp → its file committed (the lake and the manifest).
#[derive(Debug, Serialize)]
pub struct PartitionLatency {
    /// Frames committed from this partition (after the warm-up).
    pub measured_frames: u64,
    /// Send → acknowledged by the broker (records).
    pub acknowledged: LatencySummary,
    /// Send → received by the ingestor (records).
    pub received: LatencySummary,
    /// Frame timestamp → committed in the lake (frames, after the warm-up).
    pub committed: LatencySummary,
}

async fn live(a: BenchArgs, prefix: String, stamp: chrono::DateTime<chrono::Utc>) -> Result<()> {
    let rooms = a.rate.div_ceil(a.hz);
    let rate = u64::from(rooms) * u64::from(a.hz);
    // The idle exit must not come before the last partial buffers flush for age.
    let idle = a.opts.max_age + Duration::from_secs(2);
    let (lake, store, cfg) = prepare_ingest(&a.kafka, &a.db, &a.opts, Some(idle)).await?;
    let group = cfg.group.clone();
    let shutdown = shutdown_token();
    let sim_done = tokio_util::sync::CancellationToken::new();
    say!(
        "bench: live, {rooms} rooms × {} Hz = {} frames/s for {}, ingest group {group}, lake {}, PostgreSQL {}",
        a.hz,
        rate,
        humantime::format_duration(a.duration),
        lake.url(),
        store.target()
    );
    let (cpu0, children0, jiffies0) = (cpu_seconds(), children_cpu_seconds(), machine_jiffies());
    let ingest = tokio::spawn(surgstream_ingest::run(
        cfg,
        lake.clone(),
        store.clone(),
        shutdown.clone(),
        Some(sim_done.clone()),
    ));

    let start = chrono::Utc::now();
    let report_path = sim_report_path(&prefix);
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["sim", "--profile", "live", "--brokers", &a.kafka.brokers])
        .args(["--telemetry-topic", &a.kafka.telemetry_topic])
        .args(["--events-topic", &a.kafka.events_topic])
        .args(["--robots", &rooms.to_string(), "--hz", &a.hz.to_string()])
        .args(["--speed", "1", "--seed", &stamp.timestamp().to_string()])
        .args([
            "--duration",
            &humantime::format_duration(a.duration).to_string(),
        ])
        .args([
            "--start-time",
            &start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ])
        .arg("--report")
        .arg(&report_path)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run the simulator")?;
    let status = tokio::select! {
        status = child.wait() => status.context("the simulator")?,
        () = shutdown.cancelled() => {
            let _ = child.kill().await;
            anyhow::bail!("interrupted");
        }
    };
    sim_done.cancel();
    let report = ingest.await.context("ingest task panicked")??;
    let (cpu, sim_cpu) = (
        diff(cpu_seconds(), cpu0),
        diff(children_cpu_seconds(), children0),
    );
    let busy = machine_jiffies()
        .zip(jiffies0)
        .map_or(f64::NAN, |((b1, t1), (b0, t0))| {
            100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64
        });
    let rss = peak_rss_mib();
    anyhow::ensure!(
        status.success(),
        "the live feed (surgstream sim) failed: {status}"
    );
    let sim = take_sim_report(&report_path)?;

    // Each committed frame's latency, from the lake and the manifest.
    say!("bench: reading the committed frames' timestamps back from the lake");
    let measured_from = start.timestamp_micros() + i64::try_from(a.warmup.as_micros())?;
    let mut latencies: Vec<i64> = Vec::new();
    let mut committed_by_partition = PartitionLatencies::default();
    let mut warmup_frames = 0u64;
    let files =
        surgstream_store::offsets::commit_times(store.pool(), &group, &a.kafka.telemetry_topic)
            .await?;
    for (path, partition, committed) in &files {
        let committed = committed.timestamp_micros();
        for ts in surgstream_lake::read_timestamps(path, lake.get(path).await?)? {
            if ts < measured_from {
                warmup_frames += 1;
            } else {
                latencies.push(committed - ts);
                committed_by_partition.record(*partition, committed - ts);
            }
        }
    }
    let acknowledged: BTreeMap<i32, LatencySummary> =
        serde_json::from_value(sim["delivery_latency"].clone())
            .context("the simulator's report has no delivery_latency")?;
    let partitions = committed_by_partition
        .by_partition()
        .into_iter()
        .map(|(p, committed)| {
            let latency = PartitionLatency {
                measured_frames: committed.records,
                acknowledged: acknowledged.get(&p).copied().unwrap_or_default(),
                received: report.record_age.get(&p).copied().unwrap_or_default(),
                committed,
            };
            (p, latency)
        })
        .collect();
    latencies.sort_unstable();
    let q = |p: f64| percentile(&latencies, p) as f64 / 1e6;
    let frames_sent = sim["frames"].as_u64().unwrap_or(0);
    let simulated = sim["simulated_seconds"].as_f64().unwrap_or(f64::NAN);
    let target = a.opts.max_age.as_secs_f64() + 1.0;
    let p99 = q(0.99);
    let result = LiveResult {
        date: stamp.to_rfc3339(),
        cores: cores(),
        memory_mib: memory_mib(),
        topic_prefix: prefix,
        rooms,
        hz: a.hz,
        rate,
        duration_seconds: a.duration.as_secs_f64(),
        frames_sent,
        frames_per_second_sent: frames_sent as f64 / simulated,
        sim_max_behind_seconds: sim["max_behind_seconds"].as_f64().unwrap_or(f64::NAN),
        frames_written: report.frames_written,
        files: files.len() as u64,
        bytes_written: report.bytes_written,
        max_age_seconds: a.opts.max_age.as_secs_f64(),
        warmup_frames,
        measured_frames: latencies.len() as u64,
        latency_p50_seconds: q(0.50),
        latency_p90_seconds: q(0.90),
        latency_p99_seconds: p99,
        latency_p999_seconds: q(0.999),
        latency_max_seconds: q(1.0),
        p99_target_seconds: target,
        p99_target_met: !latencies.is_empty() && p99 <= target,
        ingest_peak_rss_mib: rss,
        ingest_cpu_seconds: cpu,
        sim_cpu_seconds: sim_cpu,
        ingest_cpu_seconds_per_million_frames: cpu / (report.frames_written.max(1) as f64 / 1e6),
        machine_busy_percent: busy,
        flushes: report.flushes.clone(),
        dead_letters: report.telemetry_dead_letters + report.event_dead_letters,
        partitions,
    };
    write_result(&a.output, &result)?;
    print_live_table(&result);
    say!("bench: result in {}", a.output.display());
    anyhow::ensure!(
        result.frames_written == result.frames_sent && result.dead_letters == 0,
        "the live run committed {} of {} frames sent, with {} dead letters",
        result.frames_written,
        result.frames_sent,
        result.dead_letters
    );
    anyhow::ensure!(
        result.measured_frames > 0,
        "no frame was stamped after the {} warm-up",
        humantime::format_duration(a.warmup)
    );
    Ok(())
}

fn diff(after: Option<f64>, before: Option<f64>) -> f64 {
    after.zip(before).map_or(f64::NAN, |(b, a)| b - a)
}

/// The value at quantile `p` (0–1) of sorted `v` (nearest rank); 0 when empty.
fn percentile(v: &[i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn print_live_table(r: &LiveResult) {
    let rows: [(&str, String); 12] = [
        (
            "machine",
            format!("{} cores, {} MiB", r.cores, r.memory_mib),
        ),
        (
            "fleet",
            format!(
                "{} rooms × {} Hz = {} frames/s asked, for {:.0} s",
                r.rooms, r.hz, r.rate, r.duration_seconds
            ),
        ),
        (
            "sent",
            format!(
                "{} frames, {:.0} frames/s, at most {:.2} s behind schedule",
                r.frames_sent, r.frames_per_second_sent, r.sim_max_behind_seconds
            ),
        ),
        (
            "committed",
            format!(
                "{} frames in {} files, {} bytes",
                r.frames_written, r.files, r.bytes_written
            ),
        ),
        (
            "measured",
            format!(
                "{} frames ({} in the warm-up left out)",
                r.measured_frames, r.warmup_frames
            ),
        ),
        (
            "latency p50 / p90",
            format!(
                "{:.3} s / {:.3} s",
                r.latency_p50_seconds, r.latency_p90_seconds
            ),
        ),
        (
            "latency p99 / p99.9",
            format!(
                "{:.3} s / {:.3} s",
                r.latency_p99_seconds, r.latency_p999_seconds
            ),
        ),
        ("latency max", format!("{:.3} s", r.latency_max_seconds)),
        (
            "p99 target",
            format!(
                "≤ {:.1} s (--max-age {:.1} s + 1 s): {}",
                r.p99_target_seconds,
                r.max_age_seconds,
                if r.p99_target_met { "met" } else { "NOT met" }
            ),
        ),
        (
            "ingest",
            format!(
                "peak RSS {:.0} MiB, {:.1} CPU-s ({:.2} per M frames)",
                r.ingest_peak_rss_mib,
                r.ingest_cpu_seconds,
                r.ingest_cpu_seconds_per_million_frames
            ),
        ),
        (
            "simulator / machine",
            format!(
                "{:.1} CPU-s / all cores {:.0} % busy",
                r.sim_cpu_seconds, r.machine_busy_percent
            ),
        ),
        ("flushes", crate::cli::flush_causes(&r.flushes)),
    ];
    for (k, v) in rows {
        say!("  {k:<20} {v}");
    }
    say!(
        "  {:<9} {:>9}  {:>22}  {:>22}  {:>22}",
        "partition",
        "frames",
        "send→acked p50/p99/max",
        "send→received",
        "frame→committed"
    );
    let q = |l: &LatencySummary| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            l.p50_seconds, l.p99_seconds, l.max_seconds
        )
    };
    for (p, l) in &r.partitions {
        say!(
            "  {p:<9} {:>9}  {:>22}  {:>22}  {:>22}",
            l.measured_frames,
            q(&l.acknowledged),
            q(&l.received),
            q(&l.committed)
        );
    }
}
