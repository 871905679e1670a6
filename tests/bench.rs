//! `surgstream bench` end to end on a small pre-fill: it drains everything it sent, prints its
//! table and writes a JSON result whose counts agree with the lake and tables; and `bench
//! --live` on a short paced feed.

mod common;

use std::time::Duration;

use common::*;

/// Runs `surgstream bench` with `extra` options on the test's database and lake; its table
/// (stdout) and JSON result.
async fn bench(env: &TestEnv, extra: &[&str]) -> (String, serde_json::Value) {
    let json = env.lake.with_extension("bench.json");
    let mut args = vec![
        "bench".to_owned(),
        "--brokers".into(),
        brokers(),
        "--database-url".into(),
        env.database_url(),
        "--lake".into(),
        env.lake.display().to_string(),
        "--output".into(),
        json.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = run(&args, Duration::from_secs(300)).await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = serde_json::from_str(&std::fs::read_to_string(&json).expect("result")).expect("JSON");
    (table, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_drains_what_it_prefilled_and_reports_it() {
    let env = TestEnv::new("bench").await;
    let (table, r) = bench(&env, &["--frames", "5000"]).await;
    for row in [
        "frames/s",
        "events/s",
        "files",
        "peak RSS",
        "CPU s / M frames",
    ] {
        assert!(table.contains(row), "no {row} row: {table}");
    }
    let frames = r["frames"].as_i64().expect("frames");
    assert!(frames > 4_000, "about --frames were pre-filled: {r}");
    assert_eq!(r["frames_written"], r["frames"]);
    assert_eq!(r["events_applied"], r["events"]);
    assert_eq!(
        env.count("SELECT COALESCE(sum(rows), 0)::bigint FROM lake_files")
            .await,
        frames
    );
    assert_eq!(
        env.count("SELECT count(*) FROM lake_files").await,
        r["files"].as_i64().expect("files")
    );
    assert!(r["peak_rss_mib"].as_f64().is_some_and(|m| m > 1.0), "{r}");
    assert!(r["cpu_seconds"].as_f64().is_some_and(|c| c > 0.0), "{r}");
}

/// `bench --live`: a short paced feed; everything sent is committed, every committed frame is
/// counted once (measured or warm-up), and each latency is positive (a file is never committed
/// before the frames in it were stamped) and ordered p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max. No bound on
/// the latency itself: that is a benchmark's figure, not a test's.
#[tokio::test(flavor = "multi_thread")]
async fn bench_live_measures_every_committed_frame() {
    let env = TestEnv::new("bench_live").await;
    let (table, r) = bench(
        &env,
        &[
            "--live",
            "--rate",
            "2000",
            "--hz",
            "500",
            "--duration",
            "8s",
            "--warmup",
            "2s",
            "--max-age",
            "1s",
        ],
    )
    .await;
    for row in ["latency p50 / p90", "latency p99 / p99.9", "p99 target"] {
        assert!(table.contains(row), "no {row} row: {table}");
    }
    assert_eq!(r["rooms"], 4, "2000 frames/s at 500 Hz: {r}");
    let sent = r["frames_sent"].as_u64().expect("frames_sent");
    assert!(sent > 0, "{r}");
    assert_eq!(r["frames_written"].as_u64(), Some(sent), "{r}");
    assert_eq!(
        r["measured_frames"]
            .as_u64()
            .zip(r["warmup_frames"].as_u64())
            .map(|(m, w)| m + w),
        Some(sent),
        "every committed frame is measured or left out as warm-up: {r}"
    );
    assert!(r["measured_frames"].as_u64().is_some_and(|m| m > 0), "{r}");
    assert_eq!(
        env.count("SELECT COALESCE(sum(rows), 0)::bigint FROM lake_files")
            .await,
        sent as i64
    );
    let q: Vec<f64> = [
        "latency_p50_seconds",
        "latency_p90_seconds",
        "latency_p99_seconds",
        "latency_p999_seconds",
        "latency_max_seconds",
    ]
    .iter()
    .map(|k| r[*k].as_f64().unwrap_or_else(|| panic!("{k}: {r}")))
    .collect();
    assert!(q[0] > 0.0, "a frame committed before it was stamped: {r}");
    assert!(
        q.windows(2).all(|w| w[0] <= w[1]),
        "quantiles out of order: {q:?}"
    );
    assert_eq!(r["dead_letters"], 0);

    // The per-partition split: every measured frame in one partition's row, each stage's
    // quantiles in order, and the stages nested (a record is acknowledged and received before
    // the frames it carries are committed; a buffer's oldest frame is committed --max-age
    // after its stamp at the soonest, as at this rate no buffer fills first).
    assert!(
        table.contains("send→received"),
        "no partition table: {table}"
    );
    let parts = r["partitions"].as_object().expect("partitions");
    assert!(!parts.is_empty(), "{r}");
    let measured: u64 = parts
        .values()
        .map(|p| p["measured_frames"].as_u64().expect("measured_frames"))
        .sum();
    assert_eq!(Some(measured), r["measured_frames"].as_u64(), "{r}");
    for (partition, p) in parts {
        for stage in ["acknowledged", "received", "committed"] {
            let s = &p[stage];
            assert!(
                s["records"].as_u64().is_some_and(|n| n > 0),
                "partition {partition}: nothing in {stage}: {p}"
            );
            let q: Vec<f64> = ["p50_seconds", "p90_seconds", "p99_seconds", "max_seconds"]
                .iter()
                .map(|k| s[*k].as_f64().unwrap_or_else(|| panic!("{k}: {p}")))
                .collect();
            assert!(
                q.windows(2).all(|w| w[0] <= w[1]),
                "partition {partition} {stage}: quantiles out of order: {q:?}"
            );
        }
        let median = |stage: &str| p[stage]["p50_seconds"].as_f64().unwrap_or(f64::NAN);
        assert!(
            median("acknowledged") <= median("committed")
                && median("received") <= median("committed"),
            "partition {partition}: frames committed before their records arrived: {p}"
        );
        assert!(
            p["committed"]["max_seconds"]
                .as_f64()
                .is_some_and(|c| c >= 1.0),
            "partition {partition}: no frame waited --max-age 1s: {p}"
        );
    }
}
