//! The signals an operator alerts on, from a running ingestor: `/healthz` answers 200 once its
//! loop runs; `/metrics` has readiness per check, the process's start time, the lake's newest
//! frame timestamp, both end-to-end latency histograms (each flush's oldest frame waited at
//! least as long as its newest), and a lag series for each assigned partition only.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// The value of the one series `selector` (name and labels, exactly as rendered).
fn series(page: &str, selector: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(selector)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_ingestor_exports_what_its_alerts_need() {
    let env = TestEnv::new("signals").await;
    let mut sim = env.spawn_live_sim(2, 50, 71, &[]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut ingest = env.spawn_ingest(&["--max-age", "1s", "--metrics-addr", &addr]);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();

    wait_for("frames committed", Duration::from_secs(60), || async {
        http_get(port, "/metrics")
            .await
            .is_ok_and(|(_, page)| metric(&page, "surgstream_frames_written_total") > 0.0)
    })
    .await;
    // A probe round (every 5 s) after the assignment and the first commit.
    wait_for(
        "readiness gauges and lag",
        Duration::from_secs(30),
        || async {
            let page = scrape(port).await;
            ["broker", "database", "store", "progress"]
                .iter()
                .all(|c| series(&page, &format!("surgstream_ready{{check=\"{c}\"}}")) == Some(1.0))
                && page.contains("surgstream_lake_newest_frame_timestamp_seconds ")
                && page.contains("surgstream_consumer_lag_messages{")
        },
    )
    .await;
    assert_eq!(
        http_get(port, "/healthz").await.expect("GET /healthz"),
        (200, "ok\n".to_owned())
    );

    let page = scrape(port).await;
    let start = metric(&page, "process_start_time_seconds");
    assert!(
        (started - 60.0..=started + 1.0).contains(&start),
        "process_start_time_seconds {start} vs the spawn at {started}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let newest = metric(&page, "surgstream_lake_newest_frame_timestamp_seconds");
    assert!(
        (now - 30.0..=now).contains(&newest),
        "the lake's newest frame {newest}, now {now}"
    );
    let mean = |name: &str| {
        metric(&page, &format!("{name}_sum")) / metric(&page, &format!("{name}_count"))
    };
    let (oldest, newest_frame) = (
        mean("surgstream_end_to_end_latency_seconds"),
        mean("surgstream_end_to_end_latency_newest_frame_seconds"),
    );
    assert!(
        oldest >= newest_frame && oldest >= 1.0,
        "a flush's oldest frame waited --max-age (1 s) and at least as long as its newest: \
         oldest {oldest} s, newest {newest_frame} s"
    );
    // The test's topics: 4 telemetry and 2 event partitions, all assigned to this one member.
    let lag_series: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("surgstream_consumer_lag_messages{"))
        .collect();
    assert_eq!(
        lag_series.len(),
        6,
        "one per assigned partition: {lag_series:?}"
    );
    assert_eq!(
        metric(&page, "surgstream_consumer_assigned_partitions"),
        6.0
    );

    stop(&mut sim, "the simulator").await;
    stop(&mut ingest, "the ingestor").await;
}
