//! sim → Kafka → ingest → Parquet lake + PostgreSQL, on the real broker and PostgreSQL.

mod common;

use arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, TimeUnit as PqTimeUnit};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_frame_once_typed_columns_and_one_row_per_entity() {
    let env = TestEnv::new("e2e").await;
    let report = env
        .sim(&[
            "--robots",
            "5",
            "--procedures",
            "15",
            "--hz",
            "200",
            "--profile",
            "live",
            "--speed",
            "3600",
            "--fast",
            "--seed",
            "7",
        ])
        .await;
    assert_eq!(report["delivery_errors"], 0);
    env.ingest_until_idle(&["--max-age", "1s"]).await;

    // Telemetry: every frame sent is in the committed lake exactly once.
    let seen = env.committed_frames().await;
    assert_exactly_once(&[&report], &seen);
    let orphans = count_files(&env.lake.join("procedure_telemetry"))
        - env.count("SELECT count(*) FROM lake_files").await as usize;
    assert_eq!(
        orphans, 0,
        "files in the lake that the manifest does not name"
    );
    let raw_orphans = count_files(&env.lake.join("raw"))
        - env.count("SELECT count(*) FROM raw_files").await as usize;
    assert_eq!(
        raw_orphans, 0,
        "raw files that the raw manifest does not name"
    );

    // The Parquet schema: the data model's names and logical types.
    let path: String = sqlx::query_scalar("SELECT path FROM lake_files LIMIT 1")
        .fetch_one(&env.pool)
        .await
        .expect("a file");
    assert!(
        regex_like(&path),
        "path {path} does not follow procedure_telemetry/date=YYYY-MM-DD/hour=HH/part-P-F-L.parquet"
    );
    let file = std::fs::File::open(env.lake.join(&path)).expect("open file");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let schema = builder.schema().clone();
    let expected: Vec<(&str, DataType)> = vec![
        ("telemetry_id", DataType::FixedSizeBinary(16)),
        ("procedure_id", DataType::FixedSizeBinary(16)),
        ("robot_id", DataType::FixedSizeBinary(16)),
        ("seq", DataType::Int64),
        (
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        ("arm_position_x", DataType::Decimal128(10, 4)),
        ("arm_position_y", DataType::Decimal128(10, 4)),
        ("arm_position_z", DataType::Decimal128(10, 4)),
        ("arm_rotation", DataType::Decimal128(6, 2)),
        ("tool_type", DataType::Utf8),
        ("grip_pressure", DataType::Decimal128(6, 2)),
        ("tremor_compensation", DataType::Decimal128(5, 2)),
        ("camera_zoom", DataType::Decimal128(4, 2)),
        ("camera_angle", DataType::Decimal128(6, 2)),
        ("force_feedback_x", DataType::Decimal128(8, 4)),
        ("force_feedback_y", DataType::Decimal128(8, 4)),
        ("force_feedback_z", DataType::Decimal128(8, 4)),
        ("system_temperature", DataType::Decimal128(5, 2)),
        ("power_consumption", DataType::Decimal128(8, 2)),
    ];
    let got: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(got, expected);
    let pq_schema = builder.parquet_schema();
    let logical = |name: &str| {
        pq_schema
            .columns()
            .iter()
            .find(|c| c.name() == name)
            .and_then(|c| c.logical_type_ref().cloned())
    };
    assert_eq!(logical("procedure_id"), Some(LogicalType::Uuid));
    assert_eq!(
        logical("timestamp"),
        Some(LogicalType::Timestamp(parquet::basic::TimestampType {
            is_adjusted_to_u_t_c: true,
            unit: PqTimeUnit::MICROS
        }))
    );
    assert_eq!(
        logical("camera_zoom"),
        Some(LogicalType::Decimal(parquet::basic::DecimalType {
            scale: 2,
            precision: 4
        }))
    );

    // PostgreSQL: one row per entity sent, with the statuses the events led to.
    assert_eq!(report["events_by_type"]["ProcedureScheduled"], 15);
    assert_store_holds_every_event(&env, &report).await;

    // An outside reader (pyarrow) sees the same columns and types.
    let py = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_lake.py"))
        .arg(env.lake.join(&path))
        .output()
        .await
        .expect("python3 must be installed (scripts/test.sh installs pyarrow)");
    assert!(
        py.status.success(),
        "pyarrow check failed:\n{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
}

/// Every event the simulator sent is applied: one row per entity, the statuses the events led
/// to, every status change audited, and the derived columns consistent.
async fn assert_store_holds_every_event(env: &TestEnv, report: &serde_json::Value) {
    let by_type = |t: &str| report["events_by_type"][t].as_i64().unwrap_or(0);
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_robots").await,
        by_type("RobotRegistered")
    );
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures").await,
        by_type("ProcedureScheduled")
    );
    assert_eq!(
        env.count("SELECT count(*) FROM procedure_outcomes").await,
        by_type("OutcomeRecorded")
    );
    assert_eq!(
        env.count("SELECT count(*) FROM robot_maintenance_logs")
            .await,
        by_type("MaintenanceLogged")
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM status_audit WHERE entity = 'robot' AND from_status IS NOT NULL"
        )
        .await,
        by_type("RobotStatusChanged"),
        "every robot status change applied"
    );
    for (status, event) in [
        ("completed", "ProcedureCompleted"),
        ("aborted", "ProcedureAborted"),
        ("cancelled", "ProcedureCancelled"),
    ] {
        let n = env
            .count(&format!(
                "SELECT count(*) FROM surgical_procedures WHERE status = '{status}'"
            ))
            .await;
        assert_eq!(n, by_type(event), "procedures {status}");
    }
    assert_eq!(
        env.count(
            "SELECT count(*) FROM surgical_procedures WHERE status IN ('scheduled', 'in_progress')"
        )
        .await,
        0
    );
    assert_eq!(
        env.count("SELECT COALESCE(sum(total_procedures), 0) FROM surgical_robots")
            .await,
        by_type("ProcedureCompleted"),
        "total_procedures counts completed procedures"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures WHERE status IN ('completed','aborted') AND (duration_minutes IS NULL OR end_time < start_time)").await,
        0
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM surgical_robots r WHERE last_maintenance_date IS DISTINCT FROM
                (SELECT max(maintenance_date) FROM robot_maintenance_logs m WHERE m.robot_id = r.robot_id)"
        )
        .await,
        0,
        "last_maintenance_date is the latest log's date"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM surgical_procedures a JOIN surgical_procedures b
                ON a.robot_id = b.robot_id AND a.procedure_id < b.procedure_id
               AND a.start_time < b.end_time AND b.start_time < a.end_time"
        )
        .await,
        0,
        "no robot has overlapping procedures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_profile_backfill_applies_without_a_dead_letter() {
    let env = TestEnv::new("seed").await;
    // The data model's full two-year sample of events — 50 robots, 5,000 procedures, their
    // outcomes and maintenance — with 2 telemetry samples per procedure: the calendar's events
    // (installations, Saturday service, emergencies after aborts) against the real lifecycle.
    let report = env
        .sim(&["--scale", "1", "--samples", "2", "--seed", "3"])
        .await;
    assert_eq!(report["delivery_errors"], 0);
    assert_eq!(report["events_by_type"]["RobotRegistered"], 50);
    assert_eq!(report["events_by_type"]["ProcedureScheduled"], 5_000);
    let ingest = env.ingest_until_idle(&["--max-age", "1s"]).await;
    let summary = String::from_utf8_lossy(&ingest.stdout);
    assert!(
        summary.contains(" 0 telemetry and 0 event dead letters"),
        "{summary}"
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);
    assert_store_holds_every_event(&env, &report).await;
    assert!(
        env.count("SELECT count(*) FROM robot_maintenance_logs WHERE maintenance_type = 'upgrade'")
            .await
            > 0
    );

    // The example queries docs/schema.md shows run on the backfill and agree with the tables
    // they summarise.
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md"))
        .expect("docs/schema.md");
    for (file, column, total) in [
        (
            "utilisation_per_robot_per_month.sql",
            "cases",
            "SELECT count(*) FROM surgical_procedures WHERE status IN ('completed', 'aborted')",
        ),
        (
            "complication_rate_per_procedure_type.sql",
            "outcomes",
            "SELECT count(*) FROM procedure_outcomes",
        ),
        (
            "maintenance_cost_per_facility.sql",
            "logs",
            "SELECT count(*) FROM robot_maintenance_logs",
        ),
    ] {
        let path = format!("{}/docs/queries/{file}", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let body = sql.trim().trim_end_matches(';');
        assert!(
            page.contains(sql.trim()),
            "docs/schema.md does not show {file} as it is"
        );
        let rows = env.count(&format!("SELECT count(*) FROM ({body}) q")).await;
        assert!(rows > 1, "{file}: {rows} rows");
        let summed = env
            .count(&format!("SELECT sum({column})::bigint FROM ({body}) q"))
            .await;
        assert_eq!(summed, env.count(total).await, "{file}");
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

/// procedure_telemetry/date=YYYY-MM-DD/hour=HH/part-PPPPP-<20 digits>-<20 digits>.parquet
fn regex_like(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 4
        && parts[0] == "procedure_telemetry"
        && parts[1]
            .strip_prefix("date=")
            .is_some_and(|d| d.len() == 10 && &d[4..5] == "-" && &d[7..8] == "-")
        && parts[2].strip_prefix("hour=").is_some_and(|h| digits(h, 2))
        && parts[3]
            .strip_prefix("part-")
            .and_then(|r| r.strip_suffix(".parquet"))
            .is_some_and(|r| {
                let f: Vec<&str> = r.split('-').collect();
                f.len() == 3 && digits(f[0], 5) && digits(f[1], 20) && digits(f[2], 20)
            })
}
