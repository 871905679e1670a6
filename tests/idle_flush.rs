//! A partition that stops receiving data is flushed on the wall clock, within --max-age + 1 s of
//! its last record (alone in its test binary, so that no other test loads the machine).

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn committed(env: &TestEnv) -> i64 {
    env.count("SELECT COALESCE(sum(rows), 0)::bigint FROM lake_files")
        .await
}

async fn wait_for_rows(env: &TestEnv, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while committed(env).await < rows {
        assert!(
            Instant::now() < deadline,
            "{} of {rows} frames committed after 90 s",
            committed(env).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_partition_flushes_within_max_age_plus_one_second() {
    let env = TestEnv::new("idleflush").await;
    let _ingest = env.spawn_ingest(&["--max-age", "3s", "--max-rows", "10000000"]);
    // Warm-up: the ingestor has joined its group and consumes.
    // Both draws pinned (seed and start), and checked to have frames: a cancelled case would
    // make the warm-up prove nothing and the measurement measure nothing.
    let pinned = |seed| ["--seed", seed, "--start-time", LIVE_START];
    let warm = env.sim_live_fast(1, 1, 50, &pinned("1")).await;
    assert!(
        warm["frames"].as_i64() > Some(0),
        "a warm-up with frames: {warm}"
    );
    wait_for_rows(&env, warm["frames"].as_i64().unwrap_or(-1)).await;

    let report = env.sim_live_fast(1, 1, 50, &pinned("2")).await;
    assert!(
        report["frames"].as_i64() > Some(0),
        "a case with frames: {report}"
    );
    // Every record is delivered (acknowledged by the broker) by now: from here on no partition
    // receives anything.
    let sent = chrono::Utc::now();
    let total = warm["frames"].as_i64().unwrap_or(-1) + report["frames"].as_i64().unwrap_or(-1);
    wait_for_rows(&env, total).await;
    let (last,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT max(committed_at) FROM lake_files")
            .fetch_one(&env.pool)
            .await
            .expect("last commit");
    let after = (last - sent).to_std().unwrap_or_default();
    eprintln!("the last flush came {after:?} after the last record (--max-age 3s)");
    assert!(
        after <= Duration::from_secs(4),
        "the last flush came {after:?} after the last record; --max-age 3s allows 4 s"
    );
    assert_exactly_once(&[&warm, &report], &env.committed_frames().await);
}
