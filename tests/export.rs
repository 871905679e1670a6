//! `surgstream export`: one procedure's case file against what the simulator sent for it — every
//! frame once, in `seq` order, every column as sent (the JSON lines read here; the Parquet read by
//! pyarrow), and its lifecycle made of the events sent for it.

mod common;
mod sent_rows;

use std::collections::{HashMap, HashSet};

use surgstream_proto::v1::event::Body;
use surgstream_sim::file::Kind;
use tokio::process::Command;

use common::*;
use sent_rows::{Row, compare_rows, frames_sent};

fn export_args(env: &TestEnv, procedure: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["export", "--procedure", procedure];
    a.extend_from_slice(extra);
    env.args_here(&a)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_procedures_case_file_holds_what_was_sent_for_it() {
    let env = TestEnv::new("export").await;
    let records = env.simulate(&small_seed(20, 40, 67)).await;
    let sent = frames_sent(&records);
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;

    // A completed procedure with an outcome and frames.
    let procedure: uuid::Uuid = sqlx::query_scalar(
        "SELECT p.procedure_id FROM surgical_procedures p JOIN procedure_outcomes o USING (procedure_id)
         WHERE p.status = 'completed' ORDER BY p.procedure_id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .expect("a completed procedure with an outcome");
    let hex = procedure.simple().to_string();
    let mine: HashMap<String, (Row, _)> = sent
        .iter()
        .filter(|(_, (row, _))| row["procedure_id"] == hex.as_str())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(mine.len() > 10, "the procedure has frames: {}", mine.len());
    let event_ids: HashSet<String> = records
        .iter()
        .filter(|r| r.kind == Kind::Event)
        .filter_map(|r| surgstream_proto::decode_event(&r.value).ok())
        .map(|e| {
            uuid::Uuid::from_slice(&e.event_id)
                .expect("uuid")
                .to_string()
        })
        .collect();
    let lifecycle_sent = records
        .iter()
        .filter(|r| r.kind == Kind::Event)
        .filter_map(|r| surgstream_proto::decode_event(&r.value).ok())
        .filter(|e| {
            let id = match &e.body {
                Some(Body::ProcedureScheduled(b)) => &b.procedure_id,
                Some(Body::ProcedureStarted(b)) => &b.procedure_id,
                Some(Body::ProcedureCompleted(b)) => &b.procedure_id,
                Some(Body::ProcedureAborted(b)) => &b.procedure_id,
                Some(Body::ProcedureCancelled(b)) => &b.procedure_id,
                _ => return false,
            };
            AsRef::<[u8]>::as_ref(id) == procedure.as_bytes()
        })
        .count();

    // JSON lines.
    let out = run_env(
        &export_args(&env, &procedure.to_string(), &[]),
        &env.lake_env,
        std::time::Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["record"] == kind).collect()
    };
    let (robot, proc_row) = (of("robot"), of("procedure"));
    assert_eq!(
        (robot.len(), proc_row.len()),
        (1, 1),
        "one robot, one procedure"
    );
    assert_eq!(proc_row[0]["procedure_id"], procedure.to_string());
    assert_eq!(robot[0]["robot_id"], proc_row[0]["robot_id"]);
    assert!(robot[0]["facility_name"].is_string(), "{}", robot[0]);
    assert_eq!(of("outcome").len(), 1);
    assert_eq!(of("outcome")[0]["procedure_id"], procedure.to_string());
    let statuses = of("status");
    assert_eq!(
        statuses.len(),
        lifecycle_sent,
        "one status change per lifecycle event sent: {statuses:?}"
    );
    for s in &statuses {
        assert!(
            event_ids.contains(s["event_id"].as_str().expect("event_id")),
            "{s}"
        );
    }
    assert_eq!(
        statuses.last().map(|s| &s["to_status"]),
        Some(&proc_row[0]["status"])
    );
    // The frames, as the oracle says each sent frame must read, in seq order.
    let frames = of("frame");
    let seqs: Vec<i64> = frames
        .iter()
        .map(|f| f["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "frames in seq order");
    let rows: Vec<serde_json::Value> = frames
        .iter()
        .map(|f| {
            let mut row = f.as_object().expect("an object").clone();
            row.remove("record");
            for id in ["telemetry_id", "procedure_id", "robot_id"] {
                let text = row[id].as_str().expect("uuid text").replace('-', "");
                row.insert(id.into(), text.into());
            }
            let ts = chrono::DateTime::parse_from_rfc3339(row["timestamp"].as_str().expect("ts"))
                .expect("RFC 3339")
                .timestamp_micros();
            row.insert("timestamp".into(), ts.into());
            serde_json::Value::Object(row)
        })
        .collect();
    let compared = compare_rows(&serde_json::json!({ "rows": rows }), &mine);
    eprintln!(
        "export: procedure {procedure}: {compared} frames as sent, {} status changes",
        statuses.len()
    );

    // Parquet, read by pyarrow.
    let dir = env.lake.with_extension("case");
    let out = run_env(
        &export_args(
            &env,
            &procedure.to_string(),
            &[
                "--format",
                "parquet",
                "--output",
                &dir.display().to_string(),
            ],
        ),
        &env.lake_env,
        std::time::Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = Command::new("python3")
        .args([
            "-c",
            r#"
import json, sys
sys.path.insert(0, sys.argv[2])
import pyarrow.parquet as pq
from lake_values import value
t = pq.read_table(sys.argv[1] + "/telemetry.parquet")
types = {f.name: f.type for f in t.schema}
json.dump({"rows": [{k: value(k, types[k], v) for k, v in r.items()} for r in t.to_pylist()],
           "case": json.load(open(sys.argv[1] + "/case.json"))}, sys.stdout)
"#,
            &dir.display().to_string(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests"),
        ])
        .output()
        .await
        .expect("python3");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&read.stdout).expect("JSON");
    compare_rows(&read, &mine);
    assert_eq!(read["case"]["frames"].as_u64(), Some(mine.len() as u64));
    assert_eq!(
        read["case"]["procedure"]["procedure_id"],
        procedure.to_string()
    );
    assert_eq!(
        read["case"]["lifecycle"].as_array().map(Vec::len),
        Some(lifecycle_sent)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // An unknown procedure: one line naming it.
    let unknown = uuid::Uuid::nil().to_string();
    let out = run_env(
        &export_args(&env, &unknown, &[]),
        &env.lake_env,
        std::time::Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("no procedure {unknown}")),
        "{stderr}"
    );
}
