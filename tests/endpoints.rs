//! The HTTP endpoints of the long-running commands: `/metrics` has the named series and they
//! move during a run; `/healthz` answers; `/readyz` turns unready when the broker stops and
//! ready again when it is back (on a broker of the test's own, so that stopping it disturbs no
//! other test).

mod common;

use std::time::Duration;

use common::*;

async fn readyz(port: u16) -> (u16, String) {
    http_get(port, "/readyz")
        .await
        .unwrap_or((0, String::new()))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_and_readiness_follows_the_broker() {
    let mut broker = Broker::single("endpoints").await;
    let env = TestEnv::new_on("endpoints", &broker.addr()).await;
    let (sim_port, port) = (free_port(), free_port());
    let sim_addr = format!("127.0.0.1:{sim_port}");
    let mut sim = env.spawn_live_sim(4, 100, 41, &["--metrics-addr", &sim_addr]);
    let addr = format!("127.0.0.1:{port}");
    let mut ingest = env.spawn_ingest(&["--max-age", "1s", "--metrics-addr", &addr]);

    wait_for("/readyz 200", Duration::from_secs(60), || async {
        readyz(port).await.0 == 200
    })
    .await;
    let (_, body) = readyz(port).await;
    let r: serde_json::Value = serde_json::from_str(&body).expect("/readyz is JSON");
    for check in ["broker", "database", "store", "progress"] {
        assert_eq!(r["checks"][check]["ok"], true, "{check}: {body}");
    }
    assert_eq!(
        http_get(port, "/healthz").await.expect("GET /healthz").0,
        200
    );
    assert_eq!(http_get(port, "/nope").await.expect("GET /nope").0, 404);

    // The series exist and move.
    wait_for("a first commit", Duration::from_secs(60), || async {
        metric(&scrape(port).await, "surgstream_frames_written_total") > 0.0
    })
    .await;
    let first = scrape(port).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = scrape(port).await;
    for name in [
        "surgstream_frames_consumed_total",
        "surgstream_frames_written_total",
        "surgstream_lake_files_written_total",
        "surgstream_lake_bytes_written_total",
        "surgstream_flushes_total",
    ] {
        assert!(
            metric(&second, name) > metric(&first, name),
            "{name} moves: {} then {}",
            metric(&first, name),
            metric(&second, name)
        );
    }
    for series in [
        "surgstream_flushes_total{cause=\"age\"}",
        "surgstream_consumer_lag_messages{",
        "surgstream_consumer_fetch_queue_messages ",
        "surgstream_write_lag_seconds ",
        "surgstream_end_to_end_latency_seconds_bucket{le=",
        "surgstream_consumer_record_age_seconds_bucket{le=",
        "surgstream_flush_duration_seconds_bucket{le=",
        "surgstream_postgres_transaction_seconds_bucket{le=",
        "surgstream_lake_file_rows_bucket{le=",
        "surgstream_lake_file_bytes_bucket{le=",
        "surgstream_buffered_bytes ",
        "surgstream_events_consumed_total ",
        "surgstream_open_buffers ",
        "process_resident_memory_bytes ",
    ] {
        assert!(second.contains(series), "{series} in /metrics:\n{second}");
    }
    assert!(metric(&second, "process_resident_memory_bytes") > 1e6);
    let sim_page = scrape(sim_port).await;
    assert!(
        metric(&sim_page, "surgstream_sim_frames_sent_total") > 0.0,
        "{sim_page}"
    );
    assert_eq!(
        metric(&sim_page, "surgstream_sim_target_frames_per_second"),
        400.0
    );
    assert!(
        sim_page.contains("surgstream_sim_delivery_seconds_bucket{le="),
        "{sim_page}"
    );
    assert_eq!(
        http_get(sim_port, "/readyz").await.expect("sim /readyz").0,
        200
    );

    // The broker goes away: unready, naming it; back: ready, and data flows again.
    broker.stop().await;
    wait_for(
        "/readyz 503 without the broker",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(port).await;
            status == 503 && body.contains("\"broker\":{\"ok\":false")
        },
    )
    .await;
    assert!(
        ingest.try_wait().expect("poll the ingestor").is_none(),
        "the ingestor waits for the broker"
    );
    broker.restart().await;
    wait_for(
        "/readyz 200 with the broker back",
        Duration::from_secs(60),
        || async { readyz(port).await.0 == 200 },
    )
    .await;
    let written = metric(&scrape(port).await, "surgstream_frames_written_total");
    wait_for("frames written again", Duration::from_secs(120), || async {
        metric(&scrape(port).await, "surgstream_frames_written_total") > written
    })
    .await;

    stop(&mut sim, "the simulator").await;
    stop(&mut ingest, "the ingestor after the broker's outage").await;
}
