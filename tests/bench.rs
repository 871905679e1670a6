//! `surgstream bench` end to end on a small pre-fill: it drains everything it sent, prints its
//! table and writes a JSON result whose counts agree with the lake and tables.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn bench_drains_what_it_prefilled_and_reports_it() {
    let env = TestEnv::new("bench").await;
    let json = env.lake.with_extension("bench.json");
    let out = run(
        &[
            "bench".to_owned(),
            "--brokers".into(),
            brokers(),
            "--database-url".into(),
            env.database_url(),
            "--lake".into(),
            env.lake.display().to_string(),
            "--frames".into(),
            "5000".into(),
            "--output".into(),
            json.display().to_string(),
        ],
        Duration::from_secs(300),
    )
    .await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "frames/s",
        "events/s",
        "files",
        "peak RSS",
        "CPU s / M frames",
    ] {
        assert!(table.contains(row), "no {row} row: {table}");
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("result")).expect("JSON");
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
