//! Rebuilding from the raw archive: a seed backfill (with undecodable records on both topics) is
//! ingested; `surgstream replay --from-raw` produces the archive of each topic into fresh
//! topics, and a second ingestor reads them into a fresh lake and database. pyarrow
//! (tests/replay_raw.py) finds every column of every frame equal to the original lake's, and the
//! second raw archive equal to the first record for record (partition, offset, key, headers,
//! value); every table the events write is equal row for row, the events' Kafka positions
//! included.

mod common;

use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use common::*;

/// The tables the events write, without the clocks nor the source topic's name (the rebuilt
/// tables were fed from another topic): their Kafka partitions and offsets stay in.
const EVENT_TABLES: [&str; 6] = [
    "surgical_robots",
    "surgical_procedures",
    "procedure_outcomes",
    "robot_maintenance_logs",
    "status_audit",
    "processed_events",
];

async fn tables(pool: &PgPool) -> Vec<(String, i64, String)> {
    digest_without(pool, &EVENT_TABLES, &["source_topic"]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lake_rebuilt_from_the_raw_archive_equals_the_original() {
    let a = TestEnv::new("replay_raw_a").await;
    let sent = a.sim(&small_seed(40, 60, 41)).await;
    assert_eq!(sent["delivery_errors"], 0);
    // Records the ingestor dead-letters: archived too, and replayed.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .create()
        .expect("producer");
    for i in 0..3u8 {
        send(
            &producer,
            &a.topic("surgical.telemetry.v1"),
            b"bad",
            &[0xFF, i],
            Some("surgstream.v1.TelemetryBatch"),
        )
        .await;
        send(
            &producer,
            &a.topic("surgical.events.v1"),
            b"bad",
            &[0xFE, i],
            None,
        )
        .await;
    }
    a.ingest_until_idle(&[]).await;

    let b = TestEnv::new("replay_raw_b").await;
    for t in ["surgical.telemetry.v1", "surgical.events.v1"] {
        let out = run(
            &[
                "replay".to_owned(),
                "--from-raw".to_owned(),
                "--json".to_owned(),
                "--brokers".to_owned(),
                a.brokers.clone(),
                "--database-url".to_owned(),
                a.database_url(),
                "--lake".to_owned(),
                a.lake_url.clone(),
                "--group".to_owned(),
                a.group.clone(),
                "--topic".to_owned(),
                a.topic(t),
                "--to-topic".to_owned(),
                b.topic(t),
            ],
            std::time::Duration::from_secs(120),
        )
        .await;
        assert!(
            out.status.success(),
            "replay of {t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            report["records"].as_i64(),
            Some(topic_records(&a.brokers, &a.topic(t))),
            "every record of {t}: {report}"
        );
    }
    b.ingest_until_idle(&[]).await;
    let out = b.verify(&["--json", "--require-drained"]).await;
    let r = verify_json(&out);
    assert!(out.status.success(), "{r}");

    let pair = |t: &str| format!("{}:{}", a.topic(t), b.topic(t));
    let out = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/replay_raw.py"))
        .arg(&a.lake)
        .arg(&b.lake)
        .arg(pair("surgical.telemetry.v1"))
        .arg(pair("surgical.events.v1"))
        .output()
        .await
        .expect("python3 (scripts/setup.sh installs pyarrow)");
    assert!(
        out.status.success(),
        "replay_raw.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let frames = &check["frames"];
    assert_eq!(frames["a"], sent["frames"], "{check}");
    assert!(sent["frames"].as_u64().unwrap_or(0) > 1_000, "{sent}");
    assert_eq!(
        frames["equal"], true,
        "every column of every frame: {check}"
    );
    for t in ["surgical.telemetry.v1", "surgical.events.v1"] {
        let raw = &check[a.topic(t)];
        assert!(raw["a"].as_u64().unwrap_or(0) > 3, "{check}");
        assert_eq!(raw["equal"], true, "the raw archives of {t}: {check}");
    }
    assert_eq!(tables(&a.pool).await, tables(&b.pool).await);
    // The undecodable records were dead-lettered again, not lost.
    let invalid: u64 = r["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["invalid_records"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(invalid, 6, "{r}");
}
