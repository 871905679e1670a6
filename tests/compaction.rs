//! Compaction, judged by pyiceberg (tests/iceberg_read.py, not our code): a seed backfill's
//! small files merged into month files read back as the same rows, every column as sent, from
//! fewer files; the compaction's snapshot is a `replace`; the snapshot before it still reads
//! its old files (time travel) after the sweeper ran; `verify` finds the lake and the table
//! equal to the topic and the manifest. (Spark and DuckDB read a compacted table in
//! tests/iceberg.rs.)

mod common;
mod sent_rows;

use std::collections::BTreeSet;

use common::*;
use sent_rows::{compare_rows, frames_sent};

fn files_of(read: &serde_json::Value) -> BTreeSet<String> {
    read["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a path").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_backfill_reads_the_same_rows_from_fewer_files() {
    let env = TestEnv::new("compact_seed").await;
    let records = env.simulate(&small_seed(60, 30, 81)).await;
    let sent = frames_sent(&records);
    // Sent and ingested in six parts: six publishes, a manifest each.
    for part in records.chunks(records.len().div_ceil(6)) {
        env.send_records(part).await;
        env.ingest_until_idle(&["--max-age", "1s"]).await;
    }
    let before = env.read_iceberg(&[]).await;
    compare_rows(&before, &sent);
    let files_before = files_of(&before);
    let bytes_before = env.count("SELECT sum(bytes)::bigint FROM lake_files").await;

    // A dry run changes nothing.
    let dry = env.compact(&["--dry-run"]).await;
    assert!(
        dry["compaction"]["files_replaced"].as_u64() > Some(1),
        "{dry}"
    );
    assert_eq!(dry["iceberg"], serde_json::Value::Null, "{dry}");
    assert_eq!(
        env.count("SELECT count(*) FROM lake_compactions").await,
        0,
        "a dry run compacts nothing"
    );

    let report = env.compact(&[]).await;
    let c = &report["compaction"];
    let (replaced, written) = (
        c["files_replaced"].as_u64().expect("replaced"),
        c["files_written"].as_u64().expect("written"),
    );
    assert!(written > 0 && replaced > written, "{report}");
    assert_eq!(
        c["rows"].as_u64(),
        Some(sent.len() as u64 - leftover_rows(&env).await),
        "{report}"
    );
    assert_eq!(
        report["iceberg"]["compactions"], c["compactions"],
        "{report}"
    );
    assert_eq!(
        report["iceberg"]["replaced_files"], c["files_replaced"],
        "{report}"
    );

    // The same rows, every column as sent, from fewer files: the manifest's.
    let after = env.read_iceberg(&[]).await;
    compare_rows(&after, &sent);
    let files_after = files_of(&after);
    let committed: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT path FROM lake_files")
            .fetch_all(&env.pool)
            .await
            .expect("lake_files")
            .into_iter()
            .map(|p| {
                format!(
                    "file://{}/{p}",
                    env.lake.canonicalize().expect("lake").display()
                )
            })
            .collect();
    assert_eq!(
        files_after, committed,
        "the table's files are the manifest's"
    );
    assert_eq!(
        files_after.len() as u64,
        files_before.len() as u64 - replaced + written
    );
    assert!(
        files_after.iter().any(|f| f.contains("/month=")),
        "month files: {files_after:?}"
    );
    assert_eq!(
        after["snapshot"]["operation"], "Operation.REPLACE",
        "{}",
        after["snapshot"]
    );
    // The appends' manifests are merged: one per partition spec.
    assert!(
        before["manifests"].as_u64() >= Some(6) && after["manifests"].as_u64() <= Some(2),
        "manifests: {} before, {} after",
        before["manifests"],
        after["manifests"]
    );
    eprintln!(
        "manifests: {} before, {} after",
        before["manifests"], after["manifests"]
    );
    let bytes_after = env.count("SELECT sum(bytes)::bigint FROM lake_files").await;
    eprintln!(
        "compaction: {} files ({bytes_before} B, {:.1} B/frame) → {} files ({bytes_after} B, {:.1} B/frame), {} rows",
        files_before.len(),
        bytes_before as f64 / sent.len() as f64,
        files_after.len(),
        bytes_after as f64 / sent.len() as f64,
        sent.len()
    );
    assert!(bytes_after < bytes_before, "compacted files are smaller");

    // Nothing small and closed is left to merge: a second run does nothing.
    let again = env.compact(&[]).await;
    assert_eq!(again["compaction"]["compactions"], 0, "{again}");

    // The retired files outlive the sweeper: the snapshot before the compaction still reads.
    let out = env.sweep("1ms", &[]).await;
    assert!(out.status.success());
    let id = before["snapshot"]["id"]
        .as_i64()
        .expect("snapshot id")
        .to_string();
    let old = env.read_iceberg(&["--snapshot", &id]).await;
    compare_rows(&old, &sent);
    assert_eq!(
        files_of(&old),
        files_before,
        "time travel reads the old files"
    );

    // Expiry: a retired file is kept while its grace runs and while a retained snapshot lists
    // it; once the snapshots before the compaction are expired, it is deleted, with the
    // manifest lists and manifests only they referenced.
    let expire = |older: &'static str, grace: &'static str| {
        let env = &env;
        async move {
            env.run_json_here(
                &[
                    "iceberg",
                    "expire",
                    "--snapshots-older-than",
                    older,
                    "--retired-grace",
                    grace,
                    "--json",
                ],
                "iceberg expire",
            )
            .await
        }
    };
    // Old metadata files go with the commit that drops them from the log: pyiceberg (another
    // writer of the same catalog) keeps two previous versions from now on.
    let metadata_files = || {
        std::fs::read_dir(env.lake.join("procedure_telemetry/metadata"))
            .expect("metadata dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".metadata.json"))
            .count()
    };
    let many = metadata_files();
    assert!(many > 5, "{many} metadata files");
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from pyiceberg.catalog.sql import SqlCatalog\n\
             c = SqlCatalog('surgstream', uri=sys.argv[1].replace('postgres://', 'postgresql+psycopg2://', 1), init_catalog_tables='false')\n\
             t = c.load_table('surgstream.procedure_telemetry')\n\
             with t.transaction() as tx:\n    tx.set_properties({'write.metadata.previous-versions-max': '2'})\n",
            &env.database_url(),
        ])
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "pyiceberg set a property: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retired = env.count("SELECT count(*) FROM lake_retired").await;
    assert_eq!(retired as u64, replaced);
    let r = expire("1d", "1h").await;
    assert_eq!(
        (
            r["snapshots_expired"].as_u64(),
            r["retired_deleted"].as_u64(),
            r["retired_kept"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "in their grace: {r}"
    );
    let r = expire("1d", "0s").await;
    assert_eq!(
        (r["retired_deleted"].as_u64(), r["retired_kept"].as_u64()),
        (Some(0), Some(replaced)),
        "older snapshots still list them: {r}"
    );
    let r = expire("0s", "0s").await;
    assert!(r["snapshots_expired"].as_u64() > Some(0), "{r}");
    assert_eq!(r["snapshots_kept"], 1, "{r}");
    assert_eq!(r["retired_deleted"].as_u64(), Some(replaced), "{r}");
    assert!(r["metadata_files_deleted"].as_u64() > Some(0), "{r}");
    assert_eq!(env.count("SELECT count(*) FROM lake_retired").await, 0);
    assert!(
        metadata_files() <= 3,
        "{} metadata files after a commit with previous-versions-max 2 (from {many})",
        metadata_files()
    );
    for f in &files_before {
        let path = f.trim_start_matches("file://");
        assert_eq!(
            std::path::Path::new(path).exists(),
            files_after.contains(f),
            "{f}: a retired file is deleted, a kept one stays"
        );
    }
    let last = env.read_iceberg(&[]).await;
    compare_rows(&last, &sent);
    assert_eq!(last["snapshots"].as_array().map(Vec::len), Some(1));

    // verify: the lake (now compacted) against the topic, the table against the manifest.
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(out.status.success(), "{r}");
    assert_eq!(r["iceberg"]["unpublished_files"], 0, "{r}");
    assert_eq!(
        r["iceberg"]["table_files"],
        env.count("SELECT count(*) FROM lake_files").await,
        "{r}"
    );
}

/// Rows in files the compaction left alone (the only small file of its month).
async fn leftover_rows(env: &TestEnv) -> u64 {
    env.count("SELECT coalesce(sum(rows), 0)::bigint FROM lake_files WHERE compaction_id IS NULL")
        .await as u64
}

/// The ingestor compacts on its own (`--compact-interval`) while it commits, its publisher
/// follows both kinds of commit in transaction order, and the table ends with every frame
/// once: the first half of a backfill is compacted while the second half is ingested.
#[tokio::test(flavor = "multi_thread")]
async fn the_ingestor_compacts_while_it_commits_and_the_table_follows() {
    let env = TestEnv::new("compact_live").await;
    let records = env.simulate(&small_seed(80, 30, 83)).await;
    let sent = frames_sent(&records);
    let (first, second) = records.split_at(records.len() / 2);
    env.send_records(first).await;
    let log = env.lake.with_extension("compact-live.log");
    let mut ingest = env.spawn_ingest_logged(
        &[
            "--max-age",
            "200ms",
            "--iceberg-interval",
            "300ms",
            "--compact-interval",
            "500ms",
        ],
        &log,
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while env.count("SELECT count(*) FROM lake_compactions").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no compaction within 120 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.send_records(second).await;
    let total = sent.len() as i64;
    while env
        .count("SELECT coalesce(sum(rows), 0)::bigint FROM lake_files")
        .await
        < total
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second half was not committed within 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Long enough for another compaction to take the second half's files.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    stop(&mut ingest, "the ingestor").await;
    let _ = std::fs::remove_file(&log);

    let compactions = env.count("SELECT count(*) FROM lake_compactions").await;
    assert!(compactions >= 2, "{compactions} compactions");
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(out.status.success(), "{r}");
    assert_eq!(r["iceberg"]["unpublished_files"], 0, "{r}");
    assert_eq!(
        r["iceberg"]["table_files"],
        env.count("SELECT count(*) FROM lake_files").await,
        "{r}"
    );
    eprintln!(
        "{compactions} compactions inside the ingestor; the table holds {} files, {} frames",
        r["iceberg"]["table_files"],
        sent.len()
    );
}

/// A compaction killed between writing a merged file and swapping it in leaves an orphan (the
/// sweeper's) and nothing half-done; one killed after its swap, before the Iceberg commit, is
/// followed by the next publish; one killed after the catalog's commit is not followed twice.
/// Every run of `compact` after a crash finishes the work, and the table ends with every frame
/// once, equal to the manifest.
#[tokio::test(flavor = "multi_thread")]
async fn compaction_survives_aborts_before_and_after_its_swap_and_its_commit() {
    let env = TestEnv::new("compact_crash").await;
    let records = env.simulate(&small_seed(60, 30, 84)).await;
    let sent = frames_sent(&records);
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    let before = env.count("SELECT count(*) FROM lake_files").await;

    let mut args = vec![
        "compact".to_owned(),
        "--database-url".into(),
        env.database_url(),
        "--lake".into(),
        env.lake_url.clone(),
        "--group".into(),
        env.group.clone(),
        "--telemetry-topic".into(),
        env.topic("surgical.telemetry.v1"),
        "--json".into(),
    ];
    // Small merges, so that a run has many swaps to die between.
    args.extend(["--target-rows".into(), "40".into()]);
    // (fault, swaps the aborted run must have committed; None: not counted)
    for (fault, committed_before) in [
        ("compaction_before_swap:3", Some(2)),
        // The first commit adds the month spec; the second is the run's replace snapshot.
        ("iceberg_before_commit:2", None),
        // The spec exists now: the first commit is the replace.
        ("iceberg_after_commit:1", None),
    ] {
        let swaps_before = env.count("SELECT count(*) FROM lake_compactions").await;
        let mut cmd = surgstream();
        cmd.args(&args)
            .envs(env.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SURGSTREAM_FAULT", fault);
        let out = cmd.output().await.expect("run compact");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let point = fault.split_once(':').expect("point:n").0;
        assert!(
            !out.status.success()
                && stderr.contains(&format!("fault injection: aborting at {point}")),
            "compact did not abort at {fault}: {stderr}"
        );
        let swaps = env.count("SELECT count(*) FROM lake_compactions").await - swaps_before;
        if let Some(n) = committed_before {
            assert_eq!(swaps, n, "the swaps before the abort, and no more");
        }
        // The table is readable and whole whatever the moment of the crash.
        let read = env.read_iceberg(&["--keys"]).await;
        assert_eq!(
            read["rows"].as_array().map(Vec::len),
            Some(sent.len()),
            "after an abort at {fault}"
        );
    }
    // The next run finishes the work and the publish follows every swap.
    let report = env.compact(&["--target-rows", "40"]).await;
    assert_eq!(report["iceberg"]["files"], 0, "{report}");
    let out = env.sweep("1ms", &[]).await;
    assert!(out.status.success());
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(out.status.success(), "{r}");
    assert_eq!(r["orphan_files"], serde_json::json!([]), "{r}");
    assert_eq!(
        r["iceberg"]["table_files"],
        env.count("SELECT count(*) FROM lake_files").await,
        "{r}"
    );
    assert!(env.count("SELECT count(*) FROM lake_files").await < before);
}

/// A fleet whose files are never small has nothing to compact, but each publish still appends
/// a manifest: `iceberg expire` merges them past `--merge-manifests-at` into one per spec, in a
/// snapshot that changes no row and keeps the publisher's watermark, so the next publish goes
/// on from it.
#[tokio::test(flavor = "multi_thread")]
async fn piled_up_manifests_are_merged_and_publishing_goes_on() {
    let env = TestEnv::new("merge_manifests").await;
    let records = env.simulate(&small_seed(40, 20, 85)).await;
    let sent = frames_sent(&records);
    let parts: Vec<_> = records.chunks(records.len().div_ceil(5)).collect();
    for part in &parts[..4] {
        env.send_records(part).await;
        env.ingest_until_idle(&["--max-age", "1s", "--no-compact"])
            .await;
    }
    let before = env.read_iceberg(&["--no-rows"]).await;
    assert!(
        before["manifests"].as_u64() >= Some(4),
        "{}",
        before["manifests"]
    );
    let r = env
        .run_json_here(
            &["iceberg", "expire", "--merge-manifests-at", "2", "--json"],
            "iceberg expire",
        )
        .await;
    assert_eq!(r["manifests_merged"], true, "{r}");
    // The raw tables (one append per run too) are merged the same way.
    assert_eq!(r["raw_manifests_merged"], 2, "{r}");
    let merged = env.read_iceberg(&["--no-rows"]).await;
    assert_eq!(merged["manifests"], 1, "one spec, one manifest");
    assert_eq!(merged["snapshot"]["operation"], "Operation.REPLACE");
    assert_eq!(
        merged["snapshot"]["summary"]["surgstream.watermark"],
        before["snapshot"]["summary"]["surgstream.watermark"],
        "the watermark is kept"
    );
    assert_eq!(merged["files"], before["files"], "the same files");
    // Under the threshold: nothing to merge.
    let r = env
        .run_json_here(
            &["iceberg", "expire", "--merge-manifests-at", "2", "--json"],
            "iceberg expire",
        )
        .await;
    assert_eq!(r["manifests_merged"], false, "{r}");
    // The publisher goes on from the kept watermark: the last part appended once.
    env.send_records(parts[4]).await;
    env.ingest_until_idle(&["--max-age", "1s", "--no-compact"])
        .await;
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    assert_eq!(read["manifests"], 2);
    // And the merged raw tables took the last run's files, every raw file once.
    let out = env.verify(&["--json"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "{v}");
    assert_raw_tables_published(&v);
}
