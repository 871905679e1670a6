//! SIGTERM while PostgreSQL is down: the ingestor, retrying a flush's transaction with a give-up
//! time far away (`--pg-retry-timeout 10m`), stops at once instead of sleeping through the
//! stop request, leaves the batch uncommitted, and a restart (PostgreSQL back) commits every
//! frame exactly once. Its own test binary: it stops the shared PostgreSQL.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_postgres_outage_stops_at_once_and_loses_nothing() {
    let env = TestEnv::new("pgsigterm").await;
    let report_path = std::env::temp_dir().join(format!("{}-sim.json", env.group));
    let report_arg = report_path.display().to_string();
    let mut sim = env.spawn_live_sim(3, 100, 51, &["--report", &report_arg]);
    let log = std::env::temp_dir().join(format!("{}-ingest.log", env.group));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut ingest = env.spawn_ingest_logged(
        &[
            "--max-age",
            "1s",
            "--pg-retry-timeout",
            "10m",
            "--metrics-addr",
            &addr,
        ],
        &log,
    );
    env.commits_grow(3, Duration::from_secs(120), "before the outage")
        .await;

    pg_ctl("stop").await;
    // The fault happened: the ingestor is retrying a transaction.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = http_get(port, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        if metric(&page, "surgstream_postgres_retries_total") >= 2.0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            pg_ctl("start").await;
            panic!("no PostgreSQL retry counted within 60 s of the stop:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    signal(&ingest, "-TERM");
    let exited = tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await;
    pg_ctl("start").await;
    let status = exited
        .expect("the ingestor stops within 10 s of SIGTERM while PostgreSQL is down")
        .expect("reap the ingestor");
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        said.contains("stop requested while PostgreSQL is unavailable"),
        "the ingestor says why it left the batch:\n{said}"
    );
    assert!(
        !status.success() && status.code().is_some(),
        "the ingestor reports the unavailable database with an error exit, not a crash: {status}"
    );

    // PostgreSQL is back: the feed ends, a new run commits everything, once.
    stop(&mut sim, "the simulator").await;
    let report = take_report(&report_path);
    let pg_up = tokio::time::Instant::now() + Duration::from_secs(30);
    while sqlx::query("SELECT 1").execute(&env.pool).await.is_err() {
        assert!(
            tokio::time::Instant::now() < pg_up,
            "PostgreSQL did not come back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    let swept = env.sweep("1s", &[]).await;
    assert!(
        swept.status.success(),
        "{}",
        String::from_utf8_lossy(&swept.stderr)
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
    let _ = std::fs::remove_file(&log);
}
