//! The Iceberg table through crashes of its publishers: under a paced live feed, eight rounds
//! each end a publisher mid-work — the ingestor killed (`kill -9`) at a random moment after the
//! table moved, the ingestor aborting itself just before and just after its own catalog commit
//! (`SURGSTREAM_FAULT`), `surgstream iceberg publish` killed at a random moment and aborting
//! itself before and after its commit — and each time a new ingestor starts where PostgreSQL
//! and the table say. Afterwards pyiceberg reads every committed frame exactly once, and
//! `verify` finds the table equal to the manifest.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use tokio::process::Child;

use common::*;

/// The table's current metadata file: it changes with every commit.
async fn metadata_location(env: &TestEnv) -> Option<String> {
    sqlx::query_scalar(
        "SELECT metadata_location FROM iceberg_tables
          WHERE table_namespace = 'surgstream' AND table_name = 'procedure_telemetry'",
    )
    .fetch_optional(&env.pool)
    .await
    .expect("iceberg_tables")
    .flatten()
}

/// Waits until the table has moved past `from`.
async fn table_moved(env: &TestEnv, from: &Option<String>, round: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while &metadata_location(env).await == from {
        assert!(
            tokio::time::Instant::now() < deadline,
            "round {round}: the Iceberg table did not move within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for `child` to abort itself at `fault` (`point:n`), and checks that it did.
async fn aborted_at(child: &mut Child, log: &std::path::Path, fault: &str, round: usize) {
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .unwrap_or_else(|_| panic!("round {round}: no abort at {fault} within 90 s"))
        .expect("reap");
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    let (point, hit) = fault.split_once(':').expect("point:n");
    assert_eq!(
        status.signal(),
        Some(6), // SIGABRT
        "round {round}: {status}, not the injected abort at {fault}:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("fault injection: aborting at {point} (hit {hit})")),
        "round {round}: aborted, but not at {fault}:\n{stderr}"
    );
}

async fn kill_9(child: &mut Child, what: &str, round: usize) {
    child.start_kill().expect("kill -9");
    let status = child.wait().await.expect("reap");
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: {what} was to be killed, but {status}"
    );
}

/// `surgstream iceberg publish` in the background, its stderr in `log`.
fn spawn_publish(env: &TestEnv, fault: Option<&str>, log: &std::path::Path) -> Child {
    let file = std::fs::File::create(log).expect("log");
    let mut cmd = surgstream();
    cmd.args(env.iceberg_publish_args(&[]))
        .envs(env.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .kill_on_drop(true);
    if let Some(f) = fault {
        cmd.env("SURGSTREAM_FAULT", f);
    }
    cmd.spawn().expect("spawn iceberg publish")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_holds_every_frame_once_through_crashes_of_its_publishers() {
    let env = TestEnv::new("ice_crash").await;
    let sim_report = env.lake.with_extension("ice-crash-sim.json");
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(4, 200, 13, &["--report", &report_arg]);

    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    // Small flushes and a publish every 200 ms: many commits to land among.
    let args = [
        "--max-rows",
        "1500",
        "--max-age",
        "300ms",
        "--iceberg-interval",
        "200ms",
    ];
    let mut ended = Vec::new();
    for round in 0..8 {
        let log = env.lake.with_extension(format!("ice-crash-{round}.log"));
        let before = metadata_location(&env).await;
        match round {
            // The ingestor aborts itself just before / just after its catalog commit.
            1 | 5 => {
                let fault = if round == 1 {
                    "iceberg_before_commit:2"
                } else {
                    "iceberg_after_commit:2"
                };
                let mut ingest =
                    env.spawn_ingest_logged_with_env(&args, &[("SURGSTREAM_FAULT", fault)], &log);
                aborted_at(&mut ingest, &log, fault, round).await;
                ended.push(format!("ingest aborted at {fault}"));
            }
            // `iceberg publish` aborts itself before / after its commit, or is killed at a
            // random moment, while an ingestor commits; then the ingestor is killed too.
            2 | 4 | 6 => {
                let mut ingest = env.spawn_ingest_logged(&args, &log);
                table_moved(&env, &before, round).await;
                let plog = env
                    .lake
                    .with_extension(format!("ice-crash-{round}-publish.log"));
                let fault = match round {
                    2 => Some("iceberg_before_commit:1"),
                    4 => Some("iceberg_after_commit:1"),
                    _ => None,
                };
                if let Some(fault) = fault {
                    // A publish that finds nothing new commits nothing and reaches no fault
                    // point: try again until one does.
                    let mut tries = 0;
                    loop {
                        let mut publish = spawn_publish(&env, Some(fault), &plog);
                        let status = tokio::time::timeout(Duration::from_secs(60), publish.wait())
                            .await
                            .expect("iceberg publish ends")
                            .expect("reap");
                        if status.success() {
                            tries += 1;
                            assert!(tries < 100, "round {round}: no publish reached {fault}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        let stderr = std::fs::read_to_string(&plog).unwrap_or_default();
                        if !stderr.contains("fault injection") {
                            // It lost the race to the ingestor's own publisher (a conflict).
                            assert!(
                                stderr.contains("Iceberg"),
                                "round {round}: iceberg publish failed: {stderr}"
                            );
                            continue;
                        }
                        let mut done = publish;
                        aborted_at(&mut done, &plog, fault, round).await;
                        break;
                    }
                    ended.push(format!("iceberg publish aborted at {fault}"));
                } else {
                    // Killed at a random moment of its run: tried again until a kill lands
                    // before it ends by itself.
                    let mut tries = 0;
                    loop {
                        let mut publish = spawn_publish(&env, None, &plog);
                        tokio::time::sleep(Duration::from_millis(next() % 60)).await;
                        if publish.try_wait().expect("wait").is_none() {
                            kill_9(&mut publish, "iceberg publish", round).await;
                            break;
                        }
                        tries += 1;
                        assert!(
                            tries < 100,
                            "round {round}: every publish ended before its kill"
                        );
                    }
                    ended.push(format!(
                        "iceberg publish killed (after {tries} that ended first)"
                    ));
                }
                let _ = std::fs::remove_file(&plog);
                tokio::time::sleep(Duration::from_millis(next() % 300)).await;
                kill_9(&mut ingest, "the ingestor", round).await;
            }
            // The ingestor killed at a random moment after the table moved.
            _ => {
                let mut ingest = env.spawn_ingest_logged(&args, &log);
                table_moved(&env, &before, round).await;
                tokio::time::sleep(Duration::from_millis(next() % 400)).await;
                kill_9(&mut ingest, "the ingestor", round).await;
                ended.push("ingest killed".into());
            }
        }
        let _ = std::fs::remove_file(&log);
    }
    eprintln!("crashes: {ended:?}");
    stop(&mut sim, "the simulator").await;
    let sent = take_report(&sim_report);

    // A clean run to the end, which publishes once more as it stops.
    let last = env.ingest_until_idle(&[]).await;
    let last_run: String = String::from_utf8_lossy(&last.stderr)
        .lines()
        .filter(|l| l.contains("partitions") || l.contains("drained") || l.contains("resuming"))
        .map(|l| format!("{l}\n"))
        .collect();
    let read = env.read_iceberg(&["--keys"]).await;
    let mut seen: HashMap<([u8; 16], i64), u32> = HashMap::new();
    for row in read["rows"].as_array().expect("rows") {
        let hex = row[0].as_str().expect("procedure_id");
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        *seen.entry((id, row[1].as_i64().expect("seq"))).or_insert(0) += 1;
    }
    eprintln!(
        "pyiceberg read {} frames in {} files, {} snapshots",
        read["rows"].as_array().map_or(0, Vec::len),
        read["files"].as_array().map_or(0, Vec::len),
        read["snapshots"].as_array().map_or(0, Vec::len)
    );
    let committed = env.committed_frames().await;
    let only_lake: Vec<_> = committed
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .collect();
    let only_table: Vec<_> = seen
        .keys()
        .filter(|k| !committed.contains_key(*k))
        .collect();
    assert!(
        only_lake.is_empty() && only_table.is_empty(),
        "the Iceberg table holds what the committed lake holds: {} frames only in the lake (e.g. {:?}), {} only in the table",
        only_lake.len(),
        only_lake.first(),
        only_table.len()
    );
    // What the simulator counted is what it delivered, and nothing was turned away: the
    // report's per-procedure counts are then the contiguous seqs 0..n.
    assert_eq!(
        sent["delivery_errors"], 0,
        "the simulator's deliveries failed"
    );
    let dlq = env.topic("surgical.telemetry.dlq.v1");
    assert_eq!(
        topic_records(&env.brokers, &dlq),
        0,
        "telemetry was dead-lettered to {dlq}"
    );
    // What verify (the topics read from the start against the committed lake) and the group's
    // durable offsets say, shown with a failure below: whether the frames a procedure lacks
    // are in the topic at all, and whether the last ingestor stopped short of the end.
    let diagnosis = {
        let out = env.verify(&["--json", "--require-drained"]).await;
        let offsets: Vec<(String, i32, i64)> = sqlx::query_as(
            "SELECT topic, partition, next_offset FROM ingest_offsets ORDER BY topic, partition",
        )
        .fetch_all(&env.pool)
        .await
        .expect("ingest_offsets");
        format!(
            "the last ingestor:\n{last_run}verify: {}\ndurable offsets: {offsets:?}",
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(4000)
                .collect::<String>()
        )
    };
    for (id, n) in sent["frames_per_procedure"]
        .as_object()
        .expect("per procedure")
    {
        let uuid = *uuid::Uuid::parse_str(id).expect("uuid").as_bytes();
        let n = n.as_i64().expect("count");
        let missing: Vec<i64> = (0..n).filter(|s| !seen.contains_key(&(uuid, *s))).collect();
        let beyond = seen.keys().filter(|(p, s)| *p == uuid && *s >= n).count();
        assert!(
            missing.is_empty() && beyond == 0,
            "procedure {id}: sent {n} frames; {} missing (first {:?}, last {:?}), {beyond} beyond the count\n{diagnosis}",
            missing.len(),
            missing.first(),
            missing.last()
        );
    }
    assert_exactly_once(&[&sent], &seen);

    // The aborts before a commit left metadata files nothing references; verify does not
    // mind them, and finds the table equal to the manifest.
    let out = env.sweep("1ms", &[]).await;
    assert!(out.status.success());
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
