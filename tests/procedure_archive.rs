//! The procedure archive (`surgstream archive`, `surgstream restore`): a seed backfill's first
//! year leaves PostgreSQL for archive/ — DuckDB reads there exactly the rows PostgreSQL had —
//! the warehouse rebuilt from nothing is what it was before, a case file is the same, a late
//! event for an archived procedure is dead-lettered as `archived`, and a restore gives back the
//! rows as they were. Then an archive killed mid-way (two fault points and a SIGKILL) and run
//! again: every procedure archived once, none lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use surgstream_proto::v1::event::Body;
use surgstream_sim::file::{FramedRecord, Kind};

use common::*;

const TABLES: [&str; 3] = ["surgical_procedures", "procedure_outcomes", "status_audit"];

/// How a table's rows name their procedure.
fn procedure_column(table: &str) -> &'static str {
    if table == "status_audit" {
        "entity_id"
    } else {
        "procedure_id"
    }
}

/// `table`'s rows selected by `filter` (SQL over the table, aliased `x`), each as a JSON object
/// with timestamps as epoch microseconds and numerics, dates and UUIDs as text — the form
/// tests/procedure_archive.py gives DuckDB's rows — ordered by the first column.
async fn rows(env: &TestEnv, table: &str, from: &str, filter: &str) -> Vec<Value> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&env.pool)
    .await
    .expect("columns");
    assert!(!columns.is_empty(), "no columns for {table}");
    let fields: Vec<String> = columns
        .iter()
        .map(|(c, t)| {
            let e = match t.as_str() {
                "timestamp with time zone" => {
                    format!("(extract(epoch FROM x.{c}) * 1000000)::bigint")
                }
                "numeric" | "date" | "uuid" => format!("x.{c}::text"),
                _ => format!("x.{c}"),
            };
            format!("'{c}', {e}")
        })
        .collect();
    let sql = format!(
        "SELECT coalesce(json_agg(json_build_object({}) ORDER BY x.{}), '[]')::text FROM {from} x WHERE {filter}",
        fields.join(", "),
        columns[0].0
    );
    let text: String = sqlx::query_scalar(&sql)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match serde_json::from_str(&text).expect("JSON") {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

/// Sorts one table's rows as [`rows`] sorts them (by its first column).
fn sorted(table: &str, mut rows: Vec<Value>) -> Vec<Value> {
    let key = match table {
        "surgical_procedures" => "procedure_id",
        "procedure_outcomes" => "outcome_id",
        _ => "audit_id",
    };
    rows.sort_by_key(|v| match &v[key] {
        Value::Number(n) => format!("{:020}", n.as_i64().unwrap_or_default()),
        v => v.as_str().unwrap_or_default().to_owned(),
    });
    rows
}

/// The archive as outside readers see it: DuckDB reading archive/ as a Hive-partitioned
/// directory, and pyiceberg reading the archive's Iceberg tables; per table, its rows (without
/// the partition columns), sorted as [`rows`] sorts them.
struct Outside {
    duckdb: BTreeMap<String, Vec<Value>>,
    iceberg: BTreeMap<String, Vec<Value>>,
}

async fn read_outside(env: &TestEnv) -> Outside {
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/procedure_archive.py"
        ))
        .arg(&env.lake)
        .arg(env.database_url())
        .output()
        .await
        .expect("python3 (scripts/setup.sh installs duckdb and pyiceberg)");
    assert!(
        out.status.success(),
        "procedure_archive.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let tables = |v: &Value, month: bool| -> BTreeMap<String, Vec<Value>> {
        TABLES
            .iter()
            .map(|t| {
                let mut rows = v[*t].as_array().cloned().unwrap_or_default();
                if month {
                    for r in &mut rows {
                        let m = r
                            .as_object_mut()
                            .and_then(|o| o.remove("_month"))
                            .expect("a month");
                        assert!(m.as_str().is_some_and(|m| m.len() == 7), "{m}");
                    }
                }
                ((*t).to_owned(), sorted(t, rows))
            })
            .collect()
    };
    Outside {
        duckdb: tables(&all, true),
        iceberg: tables(&all["iceberg"], false),
    }
}

/// Keeps a copy of the three tables (`snap_<table>`), to compare with later.
async fn snapshot(env: &TestEnv) {
    for t in TABLES {
        sqlx::query(&format!("CREATE TABLE snap_{t} AS SELECT * FROM {t}"))
            .execute(&env.pool)
            .await
            .expect("snapshot");
    }
}

/// The filter, over a table aliased `x`, of the rows whose procedure is one of `ids`.
fn of(table: &str, ids: &str) -> String {
    let audit = if table == "status_audit" {
        "x.entity = 'procedure' AND "
    } else {
        ""
    };
    format!(
        "{audit}x.{}::text IN (SELECT {ids})",
        procedure_column(table)
    )
}

/// `args` with this test's database and lake (archive and restore read no consumer group).
fn here(env: &TestEnv, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend([
        "--database-url".into(),
        env.database_url(),
        "--lake".into(),
        env.lake_url.clone(),
    ]);
    all
}

async fn run_ok(env: &TestEnv, args: &[&str], what: &str) -> Value {
    env.run_json(&here(env, args), what).await
}

/// The archive's cut: a year after the backfill's start (finished before it: archived).
fn cutoff() -> chrono::DateTime<chrono::Utc> {
    let start = chrono::DateTime::parse_from_rfc3339(&seed_start())
        .expect("seed start")
        .with_timezone(&chrono::Utc);
    start + chrono::Duration::days(365)
}

fn older_than() -> String {
    format!("{}s", (chrono::Utc::now() - cutoff()).num_seconds())
}

/// The finished procedures due for archiving at [`cutoff`], as a SQL set of ids (text).
fn due() -> String {
    format!(
        "procedure_id::text FROM snap_surgical_procedures
         WHERE status IN ('completed', 'aborted', 'cancelled')
           AND coalesce(end_time, updated_at) < '{}'",
        cutoff().to_rfc3339()
    )
}

fn event_body(r: &FramedRecord) -> Option<Body> {
    (r.kind == Kind::Event)
        .then(|| surgstream_proto::decode_event(&r.value).ok())
        .flatten()
        .and_then(|e| e.body)
}

async fn export(env: &TestEnv, procedure: &str) -> Vec<u8> {
    let out = run_env(
        &env.args_here(&["export", "--procedure", procedure]),
        &env.lake_env,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

async fn rebuild_warehouse(env: &TestEnv) -> Vec<(String, i64, String)> {
    env.rebuild_warehouse().await;
    env.digest(&WAREHOUSE_TABLES).await
}

async fn pg_bytes(env: &TestEnv) -> i64 {
    env.count(
        "SELECT (pg_total_relation_size('surgical_procedures') + pg_total_relation_size('procedure_outcomes')
                 + pg_total_relation_size('status_audit'))::bigint",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_year_archived_leaves_postgresql_and_changes_no_answer() {
    let env = TestEnv::new("archive").await;
    let records = env.simulate(&small_seed(160, 10, 71)).await;
    env.send_records(&records).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    env.warehouse(&[]).await;
    let warehouse_before = env.digest(&WAREHOUSE_TABLES).await;
    assert!(
        warehouse_before.iter().all(|(_, n, _)| *n > 0),
        "an empty warehouse table proves nothing: {warehouse_before:?}"
    );
    snapshot(&env).await;
    let due_n = env
        .count(&format!("SELECT count(*) FROM (SELECT {}) d", due()))
        .await;
    let total = env.count("SELECT count(*) FROM surgical_procedures").await;
    assert!(
        due_n > 20 && due_n < total,
        "the first year holds some procedures and not all: {due_n} of {total}"
    );
    // A completed procedure of the first year with an outcome: its case file before.
    let case_id: String = sqlx::query_scalar(&format!(
        "SELECT p.procedure_id::text FROM surgical_procedures p JOIN procedure_outcomes o USING (procedure_id)
         WHERE p.status = 'completed' AND p.procedure_id::text IN (SELECT {}) ORDER BY 1 LIMIT 1",
        due()
    ))
    .fetch_one(&env.pool)
    .await
    .expect("an archivable completed procedure with an outcome");
    let case_before = export(&env, &case_id).await;
    let bytes_before = pg_bytes(&env).await;

    // Archive.
    let report = run_ok(
        &env,
        &[
            "archive",
            "--older-than",
            &older_than(),
            "--batch",
            "25",
            "--json",
        ],
        "archive",
    )
    .await;
    assert_eq!(report["procedures"], due_n, "{report}");
    assert!(report["batches"].as_u64() > Some(1), "{report}");
    sqlx::query("VACUUM FULL surgical_procedures")
        .execute(&env.pool)
        .await
        .expect("vacuum");
    for t in ["procedure_outcomes", "status_audit"] {
        sqlx::query(&format!("VACUUM FULL {t}"))
            .execute(&env.pool)
            .await
            .expect("vacuum");
    }
    eprintln!(
        "PostgreSQL's procedures, outcomes and audit: {bytes_before} bytes before, {} after archiving {due_n} of {total} procedures",
        pg_bytes(&env).await
    );

    // Gone from PostgreSQL; the rest as it was.
    for t in TABLES {
        let live = rows(&env, t, t, &of(t, &due())).await;
        assert!(
            live.is_empty(),
            "{t}: archived rows still in PostgreSQL: {}",
            live.len()
        );
        let rest_now = rows(&env, t, t, "true").await;
        let rest_then = rows(
            &env,
            t,
            &format!("snap_{t}"),
            &format!("NOT ({})", of(t, &due())),
        )
        .await;
        assert_eq!(rest_now, rest_then, "{t}: the rows left behind changed");
    }
    // In the archive, as DuckDB reads it: exactly the rows PostgreSQL had.
    let archive = read_outside(&env).await;
    for t in TABLES {
        let then = rows(&env, t, &format!("snap_{t}"), &of(t, &due())).await;
        assert!(!then.is_empty(), "{t}: nothing archived");
        assert_eq!(
            archive.iceberg[t], then,
            "{t}: pyiceberg's rows of the archive's Iceberg table differ from PostgreSQL's"
        );
        assert_eq!(
            archive.duckdb[t], then,
            "{t}: DuckDB's archive rows differ from PostgreSQL's"
        );
    }
    assert_eq!(
        env.count("SELECT count(*) FROM archived_procedures").await,
        due_n
    );

    // The warehouse: nothing to rebuild (the digests see the archive), and rebuilt from
    // nothing it is what it was.
    let refresh = env.warehouse(&[]).await;
    assert_eq!(refresh["months"], serde_json::json!([]), "{refresh}");
    assert_eq!(
        rebuild_warehouse(&env).await,
        warehouse_before,
        "the warehouse changed after archiving"
    );
    // The case file, read from the archive.
    assert_eq!(
        String::from_utf8_lossy(&export(&env, &case_id).await),
        String::from_utf8_lossy(&case_before),
        "an archived procedure's case file differs"
    );

    // A late outcome for an archived procedure: dead-lettered as `archived`.
    let outcome = records
        .iter()
        .find_map(|r| match event_body(r) {
            Some(Body::OutcomeRecorded(o))
                if uuid::Uuid::from_slice(&o.procedure_id)
                    .map(|u| u.to_string())
                    .as_deref()
                    == Ok(case_id.as_str()) =>
            {
                Some((r, o))
            }
            _ => None,
        })
        .expect("the archived procedure's outcome event");
    let late_id = uuid::Uuid::from_u128(0x1a7e_0000_4000_8000_0000_0000_0000_0001);
    let late = FramedRecord {
        value: surgstream_proto::encode_event(&surgstream_proto::v1::Event {
            event_id: late_id.as_bytes().to_vec().into(),
            occurred_at: chrono::Utc::now().timestamp_micros(),
            body: Some(Body::OutcomeRecorded(
                surgstream_proto::v1::OutcomeRecorded {
                    surgeon_notes: "corrected months later".to_owned(),
                    ..outcome.1.clone()
                },
            )),
        })
        .to_vec(),
        ..outcome.0.clone()
    };
    env.send_records(&[late]).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    let dead = dead_letters(&env.topic("surgical.events.dlq.v1"), 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "archived", "{:?}", dead[0]);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM processed_events WHERE event_id = '{late_id}' AND outcome = 'rejected'"
        ))
        .await,
        1
    );
    assert!(
        rows(
            &env,
            "procedure_outcomes",
            "procedure_outcomes",
            &format!("x.procedure_id::text = '{case_id}'")
        )
        .await
        .is_empty()
    );

    // Restore one month: its rows back, equal to the originals; the warehouse unchanged.
    let month: String = sqlx::query_scalar(
        "SELECT to_char(to_date(month_key::text, 'YYYYMM'), 'YYYY-MM') FROM archived_procedures
         GROUP BY month_key ORDER BY count(*) DESC, month_key LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .expect("an archived month");
    let key: i32 = month.replace('-', "").parse().expect("yyyymm");
    let ids = format!("procedure_id::text FROM archived_procedures WHERE month_key = {key}");
    let in_month = env
        .count(&format!("SELECT count(*) FROM (SELECT {ids}) m"))
        .await;
    sqlx::query(&format!("CREATE TABLE restored_ids AS SELECT {ids}"))
        .execute(&env.pool)
        .await
        .expect("keep the month's ids");
    let restored = run_ok(&env, &["restore", "--month", &month, "--json"], "restore").await;
    assert_eq!(restored["procedures"], in_month, "{restored}");
    for t in TABLES {
        let back = rows(&env, t, t, &of(t, "procedure_id FROM restored_ids")).await;
        let then = rows(
            &env,
            t,
            &format!("snap_{t}"),
            &of(t, "procedure_id FROM restored_ids"),
        )
        .await;
        assert!(!then.is_empty(), "{t}: nothing to compare");
        assert_eq!(
            back, then,
            "{t}: the restored rows differ from the originals"
        );
    }
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM archived_procedures WHERE month_key = {key}"
        ))
        .await,
        0
    );
    // And one procedure of another month.
    let one: String = sqlx::query_scalar(
        "SELECT procedure_id::text FROM archived_procedures a
         WHERE (SELECT count(*) FROM archived_procedures b
                WHERE b.run = a.run AND b.month_key = a.month_key) > 1
         ORDER BY procedure_id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .expect("a procedure still archived beside others of its batch and month");
    sqlx::query(&format!("INSERT INTO restored_ids VALUES ('{one}')"))
        .execute(&env.pool)
        .await
        .expect("keep its id");
    let restored = run_ok(&env, &["restore", "--procedure", &one, "--json"], "restore").await;
    assert_eq!(restored["procedures"], 1, "{restored}");
    assert!(restored["files_rewritten"].as_u64() > Some(0), "{restored}");
    for t in TABLES {
        let filter = format!("x.{}::text = '{one}'", procedure_column(t));
        assert_eq!(
            rows(&env, t, t, &filter).await,
            rows(&env, t, &format!("snap_{t}"), &filter).await,
            "{t}: the restored procedure's rows differ"
        );
    }
    assert_eq!(
        rebuild_warehouse(&env).await,
        warehouse_before,
        "the warehouse changed after a restore"
    );
    // archive/ now holds exactly what is still archived: DuckDB reads no restored row there.
    let archive = read_outside(&env).await;
    let still = format!(
        "{} AND procedure_id::text NOT IN (SELECT procedure_id FROM restored_ids)",
        due()
    );
    for t in TABLES {
        let then = rows(&env, t, &format!("snap_{t}"), &of(t, &still)).await;
        assert!(!then.is_empty(), "{t}: nothing left archived to compare");
        assert_eq!(archive.duckdb[t], then, "{t}: archive/ after the restores");
        assert_eq!(
            archive.iceberg[t], then,
            "{t}: the archive's Iceberg table after the restores"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_killed_midway_and_run_again_moves_every_procedure_once() {
    let env = TestEnv::new("archive_kill").await;
    env.sim(&small_seed(160, 5, 72)).await;
    env.ingest_until_idle(&["--max-age", "1s"]).await;
    snapshot(&env).await;
    let due_n = env
        .count(&format!("SELECT count(*) FROM (SELECT {}) d", due()))
        .await;
    assert!(due_n > 40, "too few procedures to archive: {due_n}");
    let args = here(
        &env,
        &["archive", "--older-than", &older_than(), "--batch", "10"],
    );

    // Two crashes at the protocol's two windows: objects written, nothing named; rows deleted,
    // not committed. The batches before each are committed, that one is not.
    let mut archived = 0;
    for fault in ["archive_after_write:2", "archive_before_commit:3"] {
        let out = surgstream()
            .args(&args)
            .envs(env.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SURGSTREAM_FAULT", fault)
            .output()
            .await
            .expect("run archive");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let point = fault.split_once(':').expect("point:n").0;
        assert!(
            !out.status.success()
                && stderr.contains(&format!("fault injection: aborting at {point}")),
            "archive did not abort at {fault}: {stderr}"
        );
        let n: usize = fault
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("n");
        archived += 10 * (n as i64 - 1);
        assert_eq!(
            env.count("SELECT count(*) FROM archived_procedures").await,
            archived,
            "{fault}"
        );
    }
    // A SIGKILL at a moment of the OS's choosing.
    let mut child = surgstream()
        .args(&args)
        .envs(env.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn archive");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 | 1);
    let wait = 300 + xorshift(seed)() % 700;
    eprintln!("SIGKILL after {wait} ms");
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    // The rerun finishes the job.
    let report = run_ok(
        &env,
        &["archive", "--older-than", &older_than(), "--json"],
        "archive",
    )
    .await;
    assert_eq!(
        env.count("SELECT count(*) FROM archived_procedures").await,
        due_n,
        "{report}"
    );

    // The crashed batches' objects are named by nothing: swept. Then DuckDB reads every
    // archived row once, as PostgreSQL had it.
    let unnamed = |env: &TestEnv| {
        let named: BTreeSet<String> = std::fs::read_dir(env.lake.join("archive"))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|t| std::fs::read_dir(t.path()).into_iter().flatten().flatten())
            .flat_map(|m| std::fs::read_dir(m.path()).into_iter().flatten().flatten())
            .filter(|f| f.path().extension().is_some_and(|e| e == "parquet"))
            .map(|f| {
                f.path()
                    .strip_prefix(&env.lake)
                    .expect("in the lake")
                    .display()
                    .to_string()
            })
            .collect();
        named
    };
    let on_disk = unnamed(&env);
    let in_manifest: BTreeSet<String> = sqlx::query_scalar("SELECT path FROM archive_files")
        .fetch_all(&env.pool)
        .await
        .expect("archive_files")
        .into_iter()
        .collect();
    let orphans: Vec<&String> = on_disk.difference(&in_manifest).collect();
    assert!(
        !orphans.is_empty(),
        "the aborted batches left no objects: the faults did not hit where they should"
    );
    let swept = env.sweep("1ms", &[]).await;
    assert!(
        swept.status.success(),
        "sweep: {}",
        String::from_utf8_lossy(&swept.stderr)
    );
    assert_eq!(
        unnamed(&env),
        in_manifest,
        "the sweep left orphans, or removed named objects"
    );
    let archive = read_outside(&env).await;
    for t in TABLES {
        let then = rows(&env, t, &format!("snap_{t}"), &of(t, &due())).await;
        assert_eq!(
            archive.iceberg[t], then,
            "{t}: pyiceberg's rows of the archive's Iceberg table differ from PostgreSQL's"
        );
        assert_eq!(
            archive.duckdb[t], then,
            "{t}: DuckDB's archive rows differ from PostgreSQL's originals"
        );
        let live = rows(&env, t, t, &of(t, &due())).await;
        assert!(live.is_empty(), "{t}: archived rows still in PostgreSQL");
    }
}
