//! `surgstream verify` agrees with a clean run, and finds each kind of damage: an orphan file,
//! a file committed twice, a committed file gone from the store, records not yet ingested.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_a_clean_run_and_names_each_discrepancy() {
    let env = TestEnv::new("verify").await;
    let report = env.sim_live_fast(3, 3, 50, &[]).await;
    env.ingest_until_idle(&[]).await;

    // Clean: exit 0, the table's verdict, and the JSON's counts.
    let out = env.verify(&[]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("verdict: OK"), "{table}");
    let r = verify_json(&env.verify(&["--json", "--require-drained"]).await);
    assert_eq!(r["frames_sent"], report["frames"]);
    assert_eq!(r["frames_in_lake"], report["frames"]);
    assert_eq!(r["events_sent"], report["events"]);
    for k in [
        "missing",
        "duplicated",
        "unexpected",
        "events_unprocessed",
        "pending_records",
    ] {
        assert_eq!(r[k], 0, "{k}");
    }

    // An orphan: a copy of a committed file under a name no manifest row has.
    let (path, rows): (String, i64) =
        sqlx::query_as("SELECT path, rows FROM lake_files ORDER BY path LIMIT 1")
            .fetch_one(&env.pool)
            .await
            .expect("a committed file");
    let copy = path.replace(".parquet", "-copy.parquet");
    std::fs::copy(env.lake.join(&path), env.lake.join(&copy)).expect("copy");
    let out = env.verify(&["--json", "--grace", "1ms"]).await;
    assert_eq!(out.status.code(), Some(1));
    let r = verify_json(&out);
    assert_eq!(r["orphan_files"], serde_json::json!([copy]));
    // Within the grace period it is a flush in progress, not an orphan.
    let r = verify_json(&env.verify(&["--json", "--grace", "1h"]).await);
    assert_eq!(r["in_flight_files"], 1);
    assert_eq!(r["orphan_files"], serde_json::json!([]));

    // The copy committed too: its rows are in the lake twice.
    sqlx::query(
        "INSERT INTO lake_files (path, consumer_group, topic, partition, first_offset, last_offset, rows, bytes,
            min_event_time, max_event_time)
         SELECT $2, consumer_group, topic, partition, first_offset, last_offset, rows, bytes, min_event_time,
            max_event_time FROM lake_files WHERE path = $1",
    )
    .bind(&path)
    .bind(&copy)
    .execute(&env.pool)
    .await
    .expect("manifest row");
    let out = env.verify(&["--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let r = verify_json(&out);
    assert_eq!(r["duplicated"], rows);
    assert_eq!(r["missing"], 0);

    // Both gone from the store: the manifest names files that are not there, their rows missing.
    std::fs::remove_file(env.lake.join(&path)).expect("remove");
    std::fs::remove_file(env.lake.join(&copy)).expect("remove");
    let out = env.verify(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("missing file: {path}")), "{table}");
    assert!(table.contains(&format!("{rows} missing")), "{table}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("discrepancies"),
        "the error line says why it failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_not_yet_ingested_are_pending_not_missing() {
    let env = TestEnv::new("verify_pending").await;
    let report = env.sim_live_fast(2, 2, 20, &[]).await;
    // Nothing ingested: nothing is committed, so nothing is missing; all of it is pending.
    let r = verify_json(&env.verify(&["--json"]).await);
    assert_eq!(r["frames_sent"], 0);
    assert_eq!(r["missing"], 0);
    let records =
        report["telemetry_records"].as_u64().unwrap_or(0) + report["events"].as_u64().unwrap_or(0);
    assert_eq!(r["pending_records"], records);
    let out = env.verify(&["--require-drained"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not yet ingested"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sweeper: orphans older than the grace period go, younger files and committed ones stay —
/// by `surgstream sweep`, and by the ingestor every --sweep-interval.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_removes_old_orphans_and_nothing_else() {
    let env = TestEnv::new("sweep").await;
    env.sim_live_fast(2, 2, 20, &[]).await;
    env.ingest_until_idle(&[]).await;
    let (path,): (String,) = sqlx::query_as("SELECT path FROM lake_files ORDER BY path LIMIT 1")
        .fetch_one(&env.pool)
        .await
        .expect("a committed file");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let orphan = |name: &str, old: bool| {
        let p = env
            .lake
            .join(path.replace(".parquet", &format!("-{name}.parquet")));
        std::fs::copy(env.lake.join(&path), &p).expect("copy");
        if old {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .and_then(|f| f.set_modified(hour_ago))
                .expect("set mtime");
        }
        p
    };
    let old = orphan("old", true);
    let young = orphan("young", false);

    let out = env.sweep("10m", &["--dry-run"]).await;
    assert!(out.status.success());
    assert!(old.exists(), "a dry run removes nothing");
    let out = env.sweep("10m", &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("sweep: 1 orphan files removed, 1 younger than 600s left alone"),
        "{text}"
    );
    assert!(!old.exists() && young.exists());
    assert!(env.lake.join(&path).exists(), "committed files stay");

    // The ingestor sweeps too.
    std::fs::File::options()
        .write(true)
        .open(&young)
        .and_then(|f| f.set_modified(hour_ago))
        .expect("set mtime");
    env.ingest_until_idle(&["--sweep-interval", "500ms"]).await;
    assert!(!young.exists(), "the ingestor's sweeper removed it");
    let out = env.verify(&["--grace", "1ms"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
