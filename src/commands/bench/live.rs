//! `bench --live`: a paced fleet at `--rate` while the ingestor runs, and each committed frame's
//! latency from its timestamp to its lake file's commit, read back from the lake afterwards.

use super::machine::*;
use super::*;

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
    /// The broker's CPU seconds during the run (with --broker-pid; null otherwise).
    pub broker_cpu_seconds: Option<f64>,
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

pub(super) async fn live(
    a: BenchArgs,
    prefix: String,
    stamp: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
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
    let broker0 = process_cpu_seconds(a.broker_pid);
    let publishing = Publishing::start(&lake, &store, &a.opts, &a.kafka)?;
    let ingest = tokio::spawn(surgstream_ingest::run(
        cfg,
        lake.clone(),
        store.clone(),
        shutdown.clone(),
        Some(sim_done.clone()),
    ));

    let start = chrono::Utc::now();
    let report_path = sim_report_path(&prefix);
    let mut child = sim_command(&a)?
        .args(["--profile", "live"])
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
    publishing.finish(Publishing::last_publish(true)).await;
    let (cpu, sim_cpu) = (
        diff(cpu_seconds(), cpu0),
        diff(children_cpu_seconds(), children0),
    );
    let broker_cpu = process_cpu_since(a.broker_pid, broker0);
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
        broker_cpu_seconds: broker_cpu,
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
            "simulator / broker / machine",
            format!(
                "{:.1} CPU-s / {} / all cores {:.0} % busy",
                r.sim_cpu_seconds,
                r.broker_cpu_seconds.map_or_else(
                    || "(no --broker-pid)".to_owned(),
                    |c| format!("{c:.1} CPU-s")
                ),
                r.machine_busy_percent
            ),
        ),
        ("flushes", flush_causes(&r.flushes)),
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
