//! The Iceberg table `surgstream.procedure_telemetry` as an outside reader sees it: pyiceberg
//! (tests/iceberg_read.py, not our code) loads it through the SQL catalog in PostgreSQL after a
//! seed backfill and after a live run, and reads every frame sent exactly once, every column as
//! sent (the shared oracle's values, as tests/lake_values.rs checks the files themselves); the
//! table's files are the manifest's; its snapshots carry the publisher's watermark, and a second
//! publish with nothing new makes no snapshot. Apache Spark (pyspark with Iceberg's Spark
//! runtime, tests/iceberg_spark.py) and DuckDB read the same table, partly compacted (hour and
//! month files, replace snapshots), through its JDBC catalog and its metadata file: every
//! procedure's frames, seq range and force sum as sent.

mod common;
mod sent_rows;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::process::Command;

use common::*;
use sent_rows::{compare_rows, frames_sent};

/// The table's planned files are exactly the manifest's, and its metadata what the issue asks.
async fn check_table(env: &TestEnv, read: &serde_json::Value) {
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
    let files: BTreeSet<String> = read["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a path").to_owned())
        .collect();
    assert!(!files.is_empty(), "the table has files");
    assert_eq!(files, committed, "the table's files are the manifest's");
    assert_eq!(read["format_version"], 2);
    assert!(
        read["partition_spec"]
            .as_str()
            .is_some_and(|s| s.contains("hour") && s.contains("timestamp")),
        "partitioned by hour(timestamp): {}",
        read["partition_spec"]
    );
    for (column, ty) in [
        ("telemetry_id", "uuid"),
        ("procedure_id", "uuid"),
        ("seq", "long"),
        ("timestamp", "timestamptz"),
        ("arm_position_x", "decimal(10, 4)"),
        ("camera_zoom", "decimal(4, 2)"),
        ("tool_type", "string"),
    ] {
        assert_eq!(read["schema"][column], ty, "the type of {column}");
    }
    let summary = &read["snapshot"]["summary"];
    assert_eq!(summary["surgstream.consumer-group"], env.group.as_str());
    assert!(
        summary["surgstream.watermark"]
            .as_str()
            .and_then(|w| w.parse::<i64>().ok())
            .is_some_and(|w| w > 0),
        "the snapshot carries the watermark: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seed_backfill_reads_back_through_pyiceberg_every_frame_once_as_sent() {
    let env = TestEnv::new("ice_seed").await;
    let records = env.simulate(&small_seed(60, 30, 71)).await;
    let sent = frames_sent(&records);
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;

    // The ingestor published once more as it stopped: everything is in the table.
    let read = env.read_iceberg(&[]).await;
    let rows = compare_rows(&read, &sent);
    check_table(&env, &read).await;
    assert_eq!(
        i64::try_from(rows).expect("rows"),
        env.count("SELECT sum(rows)::bigint FROM lake_files").await
    );
    eprintln!(
        "pyiceberg {} read {rows} rows in {} files",
        read["pyiceberg"],
        read["files"].as_array().map_or(0, Vec::len)
    );

    // Nothing new: no new snapshot, the same watermark.
    let again = env.iceberg_publish(&[]).await;
    assert_eq!(again["files"], 0, "{again}");
    let after = env.read_iceberg(&["--no-rows"]).await;
    assert_eq!(
        after["snapshots"], read["snapshots"],
        "no snapshot was made"
    );
    assert_eq!(
        after["snapshot"]["summary"]["surgstream.watermark"],
        read["snapshot"]["summary"]["surgstream.watermark"]
    );

    // Another lake in the same database must not publish into this lake's table.
    let elsewhere = env.lake.with_extension("other-lake");
    let mut args = env.iceberg_publish_args(&[]);
    let at = args.iter().position(|a| a == "--lake").expect("--lake") + 1;
    args[at] = elsewhere.display().to_string();
    let out = run(&args, Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("it is another lake's"),
        "a publish from another lake is refused: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&elsewhere);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_reads_back_through_pyiceberg_every_frame_once_as_sent() {
    let env = TestEnv::new("ice_live").await;
    let records = env
        .simulate(
            &[
                "--profile",
                "live",
                "--robots",
                "4",
                "--procedures",
                "6",
                "--hz",
                "2",
                "--batch-interval",
                "30s",
                "--seed",
                "72",
                "--start-time",
                LIVE_START,
            ]
            .map(str::to_owned),
        )
        .await;
    let sent = frames_sent(&records);
    assert!(
        sent.len() > 1_000,
        "a live run of some size: {}",
        sent.len()
    );
    env.send_records(&records).await;
    // Published every second while it runs, and once more at the end.
    env.ingest_until_idle(&["--max-age", "1s", "--iceberg-interval", "1s"])
        .await;
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    check_table(&env, &read).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_and_duckdb_read_the_compacted_table_as_sent() {
    let env = TestEnv::new("ice_spark").await;
    let records = env.simulate(&small_seed(40, 25, 73)).await;
    let sent = frames_sent(&records);
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    // The backfill's smaller files compacted into month files: the table the engines read has
    // files of two partition specs (hour and month), and a replace snapshot per compaction.
    let compacted = env.compact(&["--small-rows", "10"]).await;
    assert!(
        compacted["iceberg"]["replaced_files"].as_u64() > Some(10),
        "{compacted}"
    );
    assert!(
        env.count("SELECT count(*) FROM lake_files WHERE compaction_id IS NULL")
            .await
            > 0,
        "some hour files are left beside the month files"
    );

    // What Spark must find per procedure: frames, seq range, and the sum of force_feedback_z
    // (DECIMAL(8,4)) as the oracle stores each value.
    let mut want: HashMap<String, (u64, u64, u64, i128)> = HashMap::new();
    for (row, frame) in sent.values() {
        let id = row["procedure_id"].as_str().expect("id").to_owned();
        let e = want.entry(id).or_insert((0, u64::MAX, 0, 0));
        e.0 += 1;
        e.1 = e.1.min(frame.seq);
        e.2 = e.2.max(frame.seq);
        e.3 += sent_rows::oracle::expected_unscaled(frame.force_feedback_z, 4);
    }
    let decimal = |n: i128| {
        let sign = if n < 0 { "-" } else { "" };
        let a = n.unsigned_abs();
        format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
    };

    // The raw tables (the ingestor published them at its end): every record sent, once, its
    // key, value and schema header as sent, per topic (rows, key bytes, value bytes).
    use surgstream_sim::file::Kind;
    let raw_tables = [
        (Kind::Telemetry, env.topic("surgical.telemetry.v1")),
        (Kind::Event, env.topic("surgical.events.v1")),
    ]
    .map(|(kind, topic)| {
        let sent = records.iter().filter(|r| r.kind == kind);
        let want = sent.fold((0u64, 0u64, 0u64), |(n, k, v), r| {
            (n + 1, k + r.key.len() as u64, v + r.value.len() as u64)
        });
        (
            format!("raw.{}", topic.replace(['.', '-'], "_").to_lowercase()),
            want,
        )
    });
    let check_raw = |engine: &str, got: &serde_json::Value, table: &str, want: (u64, u64, u64)| {
        let (n, k, v) = want;
        assert!(n > 10, "{table}: too few records to prove anything");
        let field = |name: &str| got[name].as_u64();
        assert_eq!(
            [
                field("rows"),
                field("distinct_offsets"),
                field("key_bytes"),
                field("value_bytes"),
                field("headers"),
            ],
            [Some(n), Some(n), Some(k), Some(v), Some(n)],
            "{engine}'s read of {table} (rows, distinct offsets, key bytes, value bytes, headers): {got}"
        );
    };

    let jars = spark_jars().await;
    let lake = env.lake.canonicalize().expect("lake");
    let database = env
        .database_url()
        .trim_start_matches("postgres://postgres@")
        .to_owned();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/iceberg_spark.py"
        ))
        .args([&jars, &database, &format!("file://{}", lake.display())])
        .arg("--raw")
        .args(raw_tables.iter().map(|(t, _)| t))
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "Spark could not read the table:\n{}",
        last_lines(&out.stderr, 30)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from Spark");
    eprintln!(
        "Spark {} read {} rows of {} procedures",
        read["spark"], read["rows"], read["procedures"]
    );
    assert_eq!(read["rows"].as_u64(), Some(sent.len() as u64));
    assert_eq!(read["procedures"].as_u64(), Some(want.len() as u64));
    for (id, (frames, lo, hi, force)) in &want {
        let got = &read["frames_per_procedure"][id];
        assert_eq!(
            got,
            &serde_json::json!([frames, lo, hi, decimal(*force)]),
            "procedure {id}: (frames, min seq, max seq, sum of force_feedback_z)"
        );
    }
    for (column, ty) in [
        ("telemetry_id", "string"),
        ("timestamp", "timestamp"),
        ("arm_position_x", "decimal(10,4)"),
        ("tool_type", "string"),
    ] {
        assert_eq!(read["types"][column], ty, "Spark's type of {column}");
    }
    for (table, want) in &raw_tables {
        let got = &read["raw"][table];
        check_raw("Spark", got, table, *want);
        for (column, ty) in [
            ("kafka_timestamp", "timestamp"),
            ("value", "binary"),
            ("headers", "array<struct<key:string,value:binary>>"),
        ] {
            assert_eq!(got["types"][column], ty, "Spark's type of {table}.{column}");
        }
    }
    let committed: i64 = env.count("SELECT count(*) FROM lake_files").await;
    assert_eq!(
        read["files"].as_array().map(Vec::len),
        Some(usize::try_from(committed).expect("count")),
        "Spark's files table lists the manifest's files"
    );

    // DuckDB, from the table's current metadata file.
    let location: String = sqlx::query_scalar(
        "SELECT metadata_location FROM iceberg_tables
          WHERE table_namespace = 'surgstream' AND table_name = 'procedure_telemetry'",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the table's metadata location");
    let mut raw_locations = Vec::new();
    for (table, _) in &raw_tables {
        let name = table.trim_start_matches("raw.");
        let location: String = sqlx::query_scalar(
            "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = 'raw' AND table_name = $1",
        )
        .bind(name)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{table}'s metadata location: {e}"));
        raw_locations.push(location);
    }
    let out = Command::new(duckdb_iceberg_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/iceberg_duckdb.py"
        ))
        .arg(&location)
        .args(&raw_locations)
        .output()
        .await
        .expect("the DuckDB iceberg venv (scripts/setup.sh makes it)");
    assert!(
        out.status.success(),
        "DuckDB could not read the table: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from DuckDB");
    eprintln!(
        "DuckDB {} read {} rows of {} procedures",
        duck["duckdb"], duck["rows"], duck["procedures"]
    );
    assert_eq!(duck["rows"].as_u64(), Some(sent.len() as u64));
    for ((table, want), got) in raw_tables
        .iter()
        .zip(duck["raw"].as_array().into_iter().flatten())
    {
        check_raw("DuckDB", got, table, *want);
        assert_eq!(got["types"]["kafka_timestamp"], "TIMESTAMP WITH TIME ZONE");
    }
    assert_eq!(duck["raw"].as_array().map(Vec::len), Some(2), "{duck}");
    for (id, (frames, lo, hi, force)) in &want {
        assert_eq!(
            &duck["frames_per_procedure"][id],
            &serde_json::json!([frames, lo, hi, decimal(*force)]),
            "DuckDB, procedure {id}: (frames, min seq, max seq, sum of force_feedback_z)"
        );
    }
    for (column, ty) in [
        ("telemetry_id", "UUID"),
        ("timestamp", "TIMESTAMP WITH TIME ZONE"),
        ("arm_position_x", "DECIMAL(10,4)"),
    ] {
        assert_eq!(duck["types"][column], ty, "DuckDB's type of {column}");
    }
}

/// Files the lake wrote before the Iceberg tables existed carry no field ids: published later,
/// they are read through the table's name mapping, column by name, every value as sent.
#[tokio::test(flavor = "multi_thread")]
async fn files_without_field_ids_are_read_through_the_name_mapping() {
    let env = TestEnv::new("ice_names").await;
    let records = env.simulate(&small_seed(20, 20, 74)).await;
    let sent = frames_sent(&records);
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s", "--no-iceberg"])
        .await;
    assert_eq!(
        env.count("SELECT count(*) FROM iceberg_tables").await,
        0,
        "--no-iceberg publishes nothing"
    );

    // The old writer's files: the same rows with no field ids, their new sizes in the manifest.
    let paths: Vec<String> = sqlx::query_scalar("SELECT path FROM lake_files ORDER BY path")
        .fetch_all(&env.pool)
        .await
        .expect("lake_files");
    let files: Vec<String> = paths
        .iter()
        .map(|p| env.lake.join(p).display().to_string())
        .collect();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/strip_field_ids.py"
        ))
        .args(&files)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stripped: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        stripped["field_ids_before"].as_u64(),
        Some(19 * paths.len() as u64),
        "the lake wrote a field id on every column: {stripped}"
    );
    assert_eq!(stripped["field_ids_after"], 0, "{stripped}");
    for (path, file) in paths.iter().zip(&files) {
        let bytes = std::fs::metadata(file).expect("size").len();
        sqlx::query("UPDATE lake_files SET bytes = $1 WHERE path = $2")
            .bind(i64::try_from(bytes).expect("size"))
            .bind(path)
            .execute(&env.pool)
            .await
            .expect("update the size");
    }

    let published = env.iceberg_publish(&[]).await;
    assert_eq!(published["files"].as_u64(), Some(paths.len() as u64));
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    check_table(&env, &read).await;
}

/// Another engine's maintenance on the table — a snapshot of its own on top, then every
/// snapshot but that one expired (Spark's `expire_snapshots(retain_last => 1)`) — leaves no
/// snapshot of the publisher's to read its watermark from: the table properties it sets in the
/// same commits still say how far it got, and the next publish appends only what is new.
#[tokio::test(flavor = "multi_thread")]
async fn another_engine_expiring_the_publishers_snapshots_loses_no_progress() {
    let env = TestEnv::new("ice_foreign").await;
    let records = env.simulate(&small_seed(30, 20, 91)).await;
    let sent = frames_sent(&records);
    let (first, second) = records.split_at(records.len() / 2);
    env.send_records(first).await;
    env.ingest_until_idle(&["--max-age", "1s", "--no-compact"])
        .await;
    let foreign = r#"
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
url = sys.argv[1].replace("postgres://", "postgresql+psycopg2://", 1)
t = SqlCatalog("surgstream", uri=url, init_catalog_tables="false").load_table("surgstream.procedure_telemetry")
ours = [s.snapshot_id for s in t.metadata.snapshots]
t.append(t.scan(limit=0).to_arrow())
t = t.refresh()
t.maintenance.expire_snapshots().by_ids(ours).commit()
t = t.refresh()
json.dump({"ours": len(ours), "snapshots": [dict(s.summary.additional_properties) | {"operation": s.summary.operation.value} for s in t.metadata.snapshots],
           "properties": dict(t.properties)}, sys.stdout)
"#;
    let out = Command::new("python3")
        .args(["-c", foreign, &env.database_url()])
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "pyiceberg's maintenance: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let snapshots = after["snapshots"].as_array().expect("snapshots");
    assert!(after["ours"].as_u64() >= Some(1), "{after}");
    assert_eq!(
        snapshots.len(),
        1,
        "only the other engine's snapshot is left: {after}"
    );
    assert!(
        snapshots[0].get("surgstream.watermark").is_none(),
        "the snapshot left is not the publisher's: {after}"
    );
    assert!(
        after["properties"]["surgstream.watermark"].is_string(),
        "{after}"
    );

    env.send_records(second).await;
    env.ingest_until_idle(&["--max-age", "1s", "--no-compact"])
        .await;
    let read = env.read_iceberg(&[]).await;
    compare_rows(&read, &sent);
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(out.status.success(), "{r}");
}
