//! Stopping the ingestor: SIGTERM commits every buffer before the process exits (checked with no
//! second ingestor to drain after it); SIGTERM while the object store is down ends the retrying
//! at once and a restart resumes exactly; a store that refuses the credentials or has no such
//! bucket stops the ingestor with the store's own message instead of retrying.

mod common;

use std::time::Duration;

use common::*;

/// Everything consumed, nothing flushed yet (the policy's limits far away), then SIGTERM: the
/// process flushes and commits every buffer, then exits 0; the lake and the tables are
/// complete with no other ingestor run.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_every_buffer_before_the_process_exits() {
    let env = TestEnv::new("sigterm_flush").await;
    let report = env
        .sim(&["--scale", "0.05", "--samples", "20", "--seed", "61"])
        .await;
    let (frames, events) = (
        report["frames"].as_f64().expect("frames"),
        report["events"].as_f64().expect("events"),
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = env.lake.with_extension("ingest.log");
    let mut ingest = env.spawn_ingest_logged(
        &[
            "--max-age",
            "1h",
            "--event-max-age",
            "1h",
            "--max-rows",
            "10000000",
            "--event-batch",
            "1000000",
            "--max-bytes",
            "1GiB",
            "--memory-limit",
            "1GiB",
            "--metrics-addr",
            &addr,
        ],
        &log,
    );
    let consumed = || async {
        let page = http_get(port, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        (
            metric(&page, "surgstream_frames_consumed_total"),
            metric(&page, "surgstream_events_consumed_total"),
        )
    };
    wait_for(
        "every frame and event consumed",
        Duration::from_secs(120),
        || async { consumed().await == (frames, events) },
    )
    .await;
    assert_eq!(
        (
            env.count("SELECT count(*) FROM lake_files").await,
            env.count("SELECT count(*) FROM processed_events").await
        ),
        (0, 0),
        "all of it is still buffered when the stop comes"
    );

    signal(&ingest, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(60), ingest.wait())
        .await
        .expect("the ingestor exits within 60 s of SIGTERM")
        .expect("reap");
    assert!(
        status.success(),
        "{status}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);
    assert_eq!(
        env.count("SELECT count(*) FROM processed_events").await as f64,
        events,
        "every event applied by the stopped ingestor itself"
    );
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
}

/// The object store down, a flush retrying it with a give-up time far away: SIGTERM ends the
/// wait at once (the batch stays uncommitted, the process says so and exits with an error), and
/// a restart with the store back commits every frame once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_store_outage_exits_at_once_and_a_restart_resumes_exactly() {
    let mut s3 = S3Server::start("s3-sigterm").await;
    let env = TestEnv::new_s3("s3_sigterm", &s3).await;
    let sim_report = env.lake.with_extension("sim.json");
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(3, 100, 62, &["--report", &report_arg]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = env.lake.with_extension("ingest.log");
    let mut ingest = env.spawn_ingest_logged(
        &[
            "--max-age",
            "1s",
            "--store-retry-timeout",
            "10m",
            "--metrics-addr",
            &addr,
        ],
        &log,
    );
    env.commits_grow(3, Duration::from_secs(120), "before the outage")
        .await;

    s3.stop().await;
    wait_for(
        "a flush retrying the stopped store",
        Duration::from_secs(60),
        || async {
            let page = http_get(port, "/metrics")
                .await
                .map(|r| r.1)
                .unwrap_or_default();
            metric(&page, "surgstream_lake_store_retries_total") >= 1.0
        },
    )
    .await;
    signal(&ingest, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), ingest.wait())
        .await
        .expect("the ingestor stops within 10 s of SIGTERM while the store is down")
        .expect("reap");
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        said.contains("stop requested while the lake store is unavailable"),
        "the ingestor says why it left the batch:\n{said}"
    );
    assert!(
        !status.success() && status.code().is_some(),
        "an error exit, not a crash: {status}"
    );

    s3.restart().await;
    stop(&mut sim, "the simulator").await;
    let report = take_report(&sim_report);
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    assert_exactly_once(&[&report], &env.committed_frames().await);
    let swept = env.sweep("1ms", &[]).await;
    assert!(swept.status.success());
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
}

/// A wrong secret and a bucket that does not exist are not outages: the ingestor stops at start,
/// before it consumes anything, with the store's own message (not after minutes of retrying),
/// and commits nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_credential_or_a_missing_bucket_stops_the_ingestor_with_the_stores_message() {
    let s3 = S3Server::start("s3-refused").await;
    let env = TestEnv::new_s3("s3_refused", &s3).await;
    env.sim(&["--scale", "0.02", "--samples", "5", "--seed", "63"])
        .await;

    let wrong_secret: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "AWS_SECRET_ACCESS_KEY" {
                "wrong".to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    let missing_bucket = format!("s3://no-such-bucket-{}/lake", std::process::id());
    for (what, lake, store_env, says) in [
        (
            "a wrong secret",
            env.lake_url.clone(),
            wrong_secret,
            "SignatureDoesNotMatch",
        ),
        ("a missing bucket", missing_bucket, s3.env(), "NoSuchBucket"),
    ] {
        let mut args = env.ingest_args(&["--until-idle", "3s", "--max-age", "1s"]);
        let i = args.iter().position(|a| a == "--lake").expect("--lake") + 1;
        args[i] = lake;
        let started = std::time::Instant::now();
        let out = run_env(&args, &store_env, Duration::from_secs(120)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{what}: the ingestor must stop:\n{stderr}"
        );
        assert!(
            stderr.contains(says),
            "{what}: the store's own message ({says}) is in the error:\n{stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: refused at once, not retried ({:?})",
            started.elapsed()
        );
        assert_eq!(env.count("SELECT count(*) FROM lake_files").await, 0);
        assert_eq!(env.count("SELECT count(*) FROM processed_events").await, 0);
    }
}
