//! The lake on a real S3-compatible server (s3s-fs, which checks request signatures): objects
//! round trip, large ones in parts; errors say what failed and whether trying again can help;
//! and an ingestor whose store goes away for 30 s mid-run stops consuming, keeps its buffers
//! within the memory limit, and resumes without losing or duplicating a frame; a backfill's
//! flush stores its many hour files several at a time, each named once.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use surgstream_lake::Lake;

#[tokio::test(flavor = "multi_thread")]
async fn s3_lake_round_trips_large_objects_in_parts_and_classifies_errors() {
    let mut s3 = S3Server::start("s3-round-trip").await;
    let url = format!("s3://{S3_BUCKET}/round-trip");
    // Parts of 8 MiB above 1 MiB: a 20 MB object goes up in three parts.
    let lake = Lake::open_with_env(&url, s3.env())
        .expect("open the S3 lake")
        .with_multipart_threshold(1 << 20);
    let big: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    lake.put("dir/big.bin", Bytes::from(big.clone()))
        .await
        .expect("multipart upload");
    lake.put("dir/small.bin", Bytes::from_static(b"small"))
        .await
        .expect("single PUT");
    assert!(
        lake.get("dir/big.bin").await.expect("read back") == big,
        "the multipart object reads back byte for byte"
    );
    // The server keeps it as one file under the bucket and prefix.
    let on_disk = s3.root.join(S3_BUCKET).join("round-trip/dir/big.bin");
    assert_eq!(
        std::fs::metadata(&on_disk).expect("object on disk").len(),
        20_000_000
    );
    let names: Vec<String> = lake
        .list("dir")
        .await
        .expect("list")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["dir/big.bin", "dir/small.bin"]);
    lake.delete("dir/small.bin").await.expect("delete");
    lake.delete("dir/small.bin")
        .await
        .expect("deleting a missing object is fine");
    assert!(
        !s3.root
            .join(S3_BUCKET)
            .join("round-trip/dir/small.bin")
            .exists()
    );

    // A wrong secret: refused, and not worth retrying.
    let mut bad_env = s3.env();
    for (k, v) in &mut bad_env {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "wrong".into();
        }
    }
    let bad = Lake::open_with_env(&url, bad_env).expect("open with a wrong secret");
    let e = bad
        .put("dir/x.bin", Bytes::from_static(b"x"))
        .await
        .expect_err("a wrong secret is refused");
    assert!(!e.is_transient(), "a refused signature is permanent: {e}");
    assert!(
        e.to_string().contains(&url) && e.to_string().contains("dir/x.bin"),
        "{e}"
    );

    // The server down: transient, and the message names the store and the object.
    s3.stop().await;
    let e = lake
        .put("dir/y.bin", Bytes::from_static(b"y"))
        .await
        .expect_err("nothing listens");
    assert!(e.is_transient(), "an unreachable store is transient: {e}");
    assert!(e.to_string().contains("cannot write dir/y.bin"), "{e}");
    s3.restart().await;
    lake.put("dir/y.bin", Bytes::from_static(b"y"))
        .await
        .expect("the store is back");
}

/// The resident memory of a process, from /proc (bytes).
fn rss_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmRSS")
        * 1024.0
}

/// A paced live feed; the ingestor writes to S3; the S3 server is killed for 30 s and started
/// again, and a backlog many times the ingestor's memory bound is sent meanwhile. The ingestor
/// stays up, consumes nothing (its resident memory stays within the bound), and retries;
/// afterwards `verify` finds every frame once.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_survives_a_30s_s3_outage_without_loss_or_duplicates() {
    let mut s3 = S3Server::start("s3-outage").await;
    let env = TestEnv::new_s3("s3_outage", &s3).await;
    let sim_report = std::env::temp_dir().join(format!("{}-sim.json", env.group));
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(4, 100, 21, &["--report", &report_arg]);

    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    const LIMIT: f64 = 4.0 * 1024.0 * 1024.0;
    // librdkafka's pre-fetch queue per partition, outside --memory-limit.
    const PREFETCH: f64 = 1024.0 * 1024.0;
    let mut ingest = env.spawn_ingest(&[
        "--max-age",
        "1s",
        "--memory-limit",
        "4MiB",
        "--consumer-option",
        "queued.max.messages.kbytes=1024",
        "--metrics-addr",
        &metrics_addr,
    ]);
    // Running and committing to S3 first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while env.count("SELECT count(*) FROM lake_files").await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no commit to S3 within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    s3.stop().await;
    let files_at_outage = env.count("SELECT count(*) FROM lake_files").await;
    // Within a few seconds a flush fails and the ingestor stops consuming.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let page = scrape(metrics_port).await;
    let consumed = metric(&page, "surgstream_frames_consumed_total");
    assert!(
        metric(&page, "surgstream_lake_store_retries_total") >= 1.0,
        "the failing writes are retried:\n{page}"
    );
    // The memory bound is the process's own resident memory while a backlog many times the
    // bound arrives during the outage (a gauge the blocked flush does not update could not
    // show it): the buffers stay within --memory-limit because nothing is consumed, and what
    // librdkafka pre-fetches is capped per partition (`queued.max.messages.kbytes`, 1 MiB here).
    let pid = ingest.id().expect("the ingestor's pid");
    let rss_at_outage = rss_bytes(pid);
    // A backfill of 250 procedures with 2,000 samples each (one record per procedure, under the
    // broker's 1 MB record limit): half a million frames in a few hundred hour files (more,
    // smaller files would only make the checks slow).
    let backlog = env
        .sim(&["--scale", "0.05", "--samples", "2000", "--seed", "23"])
        .await;
    let backlog_bytes = backlog["frames"].as_f64().unwrap_or(0.0) * 150.0;
    const BOUND: f64 = LIMIT + 6.0 * PREFETCH + 8.0 * 1024.0 * 1024.0;
    assert!(
        backlog_bytes > 3.0 * BOUND,
        "the backlog ({backlog_bytes} bytes) must dwarf the bound ({BOUND}) for the check to mean anything"
    );
    let mut max_rss = rss_bytes(pid);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        max_rss = max_rss.max(rss_bytes(pid));
    }
    let page = scrape(metrics_port).await;
    assert_eq!(
        metric(&page, "surgstream_frames_consumed_total"),
        consumed,
        "nothing is consumed while the store is down"
    );
    eprintln!(
        "outage: RSS {:.1} -> {:.1} MiB while {:.1} MiB arrived",
        rss_at_outage / 1048576.0,
        max_rss / 1048576.0,
        backlog_bytes / 1048576.0
    );
    assert!(
        max_rss - rss_at_outage <= BOUND,
        "resident memory grew by {} MiB during the outage (bound {} MiB: --memory-limit, 1 MiB \
         pre-fetch per partition, 8 MiB slack) while {} MiB arrived",
        (max_rss - rss_at_outage) / 1048576.0,
        BOUND / 1048576.0,
        backlog_bytes / 1048576.0
    );
    assert!(
        metric(&page, "surgstream_buffered_bytes") <= LIMIT,
        "buffers within --memory-limit"
    );
    assert!(
        ingest.try_wait().expect("poll the ingestor").is_none(),
        "the ingestor waits for the store instead of exiting"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM lake_files").await,
        files_at_outage,
        "nothing commits while the store is down"
    );

    // 30 s after it went down, the store comes back: the ingestor carries on.
    s3.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while env.count("SELECT count(*) FROM lake_files").await <= files_at_outage {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no commit within 60 s of the store's return"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The retried flush commits first; consuming resumes right after it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metric(
        &scrape(metrics_port).await,
        "surgstream_frames_consumed_total",
    ) <= consumed
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not consuming again within 30 s of the first commit after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stop the feed, let the ingestor drain it, stop it (it flushes), then check everything.
    stop(&mut sim, "the simulator").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop(&mut ingest, "the ingestor").await;
    env.ingest_until_idle(&[]).await;

    let report = take_report(&sim_report);
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
    assert_eq!(v["missing"], 0);
    assert_eq!(v["duplicated"], 0);
    assert_eq!(
        v["frames_in_lake"].as_u64(),
        Some(report["frames"].as_u64().unwrap_or(0) + backlog["frames"].as_u64().unwrap_or(0))
    );
    assert_exactly_once(&[&report, &backlog], &env.committed_frames().await);
}

/// A backfill's flush writes one file per event hour, hundreds of them, several stored at once
/// while the next is encoded: every file is in S3 under the name the manifest gives it, with the
/// rows the manifest says, and every frame is there once.
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_flush_stores_its_many_hour_files_concurrently_and_exactly_once() {
    let s3 = S3Server::start("s3-backfill").await;
    let env = TestEnv::new_s3("s3_backfill", &s3).await;
    let report = env
        .sim(&["--scale", "0.2", "--samples", "2", "--seed", "5"])
        .await;
    assert_eq!(report["delivery_errors"], 0);
    // A long age: each partition flushes once or twice, each time with many hours.
    let ingest = env.ingest_until_idle(&["--max-age", "30s"]).await;
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    let widest = env
        .count(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM lake_files \
             GROUP BY partition, first_offset, last_offset) f",
        )
        .await;
    assert!(
        widest > 8,
        "one flush wrote more files than are stored at once (8): {widest}"
    );
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
    assert_eq!(v["missing"], 0);
    assert_eq!(v["duplicated"], 0);
    // Every file stored is named, and every file named is stored.
    assert_eq!(
        v["missing_files"].as_array().map(Vec::len),
        Some(0),
        "{v:#}"
    );
    assert_eq!(v["orphan_files"].as_array().map(Vec::len), Some(0), "{v:#}");
    assert_eq!(v["in_flight_files"], 0, "{v:#}");
    assert_eq!(
        v["manifest_files"],
        env.count("SELECT count(*) FROM lake_files").await
    );
    assert_eq!(v["frames_in_lake"], report["frames"]);
    assert_exactly_once(&[&report], &env.committed_frames().await);
}
