//! The flush policy in a real run: a memory limit far below what the backfill buffers makes the
//! largest buffers flush early, and nothing is lost or duplicated.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn over_the_memory_limit_the_largest_buffers_flush_and_nothing_is_lost() {
    let env = TestEnv::new("memlimit").await;
    let report = env
        .sim(&["--scale", "0.2", "--samples", "10", "--seed", "5"])
        .await;
    // 64 KiB holds ~370 frames or ~500 events; every other limit is out of reach, so each flush
    // before the end is the memory limit's.
    let out = env
        .ingest_until_idle(&[
            "--memory-limit",
            "64KiB",
            "--max-age",
            "10m",
            "--event-max-age",
            "10m",
            "--max-rows",
            "10000000",
            "--event-batch",
            "1000000",
        ])
        .await;
    let summary = String::from_utf8_lossy(&out.stdout);
    let causes = summary
        .split("flushes by cause: ")
        .nth(1)
        .unwrap_or_default()
        .trim();
    let memory: u32 = causes
        .split(", ")
        .find_map(|c| c.strip_prefix("memory "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(memory >= 10, "flushes by cause: {causes}");
    assert!(
        !causes.contains("rows") && !causes.contains("age") && !causes.contains("bytes"),
        "only the memory limit and the final shutdown flush: {causes}"
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);
    env.assert_events_as_an_undisturbed_run().await;
    assert_eq!(
        env.count("SELECT count(*) FROM processed_events").await,
        report["events"].as_i64().unwrap_or(-1)
    );
}
