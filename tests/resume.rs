//! Resuming: the broker must hand back exactly the records from an offset inside a record
//! batch (what an exactly-once consumer asks for on every restart), and the ingestor must
//! neither lose nor duplicate a frame when it is killed mid-stream and restarted.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use common::*;

async fn produce_one_batch(topic: &str, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "200")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    // Enqueued together within linger.ms, so they travel in one record batch.
    let sends = (0..n).map(|i| {
        let p = producer.clone();
        let topic = topic.to_owned();
        async move {
            let payload = format!("m{i}");
            p.send(
                FutureRecord::to(&topic)
                    .key("k")
                    .payload(&payload)
                    .partition(0),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
        }
    });
    for r in join_all(sends).await {
        r.expect("delivered");
    }
}

async fn read(c: &StreamConsumer, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("a record within 20s")
            .expect("no consumer error");
        out.push((
            m.offset(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_resumes_exactly_from_an_offset_inside_a_batch() {
    let env = TestEnv::new("midbatch").await;
    let topic = env.topic("surgical.telemetry.dlq.v1"); // one partition
    produce_one_batch(&topic, 60).await;

    // Assigned at an offset in the middle of the batch.
    let c = consumer(&format!("{}-assign", env.group));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(23))
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let got = read(&c, 37).await;
    let want: Vec<(i64, String)> = (23..60).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, want, "records after a mid-batch assign");

    // Resumed by a group from a committed offset in the middle of the batch.
    let group = format!("{}-commit", env.group);
    let c = consumer(&group);
    c.subscribe(&[&topic]).expect("subscribe");
    let first = read(&c, 41).await;
    assert_eq!(first.last().map(|r| r.0), Some(40));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(41))
        .expect("tpl");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    let c = consumer(&group);
    c.subscribe(&[&topic]).expect("subscribe");
    let rest = read(&c, 19).await;
    let want: Vec<(i64, String)> = (41..60).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(
        rest, want,
        "records after resuming from a committed mid-batch offset"
    );
}

/// 20 crashes: 14 `kill -9` at pseudo-random moments (after at least one new commit, plus a
/// random delay) and 6 aborts injected exactly between writing a flush's files and committing
/// them to PostgreSQL (4) or between the PostgreSQL and the Kafka commits (2); each time a new
/// ingestor starts where PostgreSQL says. Then `verify`: nothing missing, nothing duplicated.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_crashed_twenty_times_and_restarted_loses_and_duplicates_nothing() {
    const CRASHES: usize = 20;
    let env = TestEnv::new("crash").await;
    // A live feed (4 operating rooms at 200 Hz, paced) runs through all the crashes, so that
    // every ingestor finds data to commit; stopped with SIGTERM afterwards, it reports what it
    // sent.
    let sim_report = env.lake.with_extension("crash-sim.json");
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(4, 200, 11, &["--report", &report_arg]);

    let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
    // Small flushes so that several commits happen before each crash.
    let args = [
        "--max-rows",
        "1500",
        "--max-age",
        "300ms",
        "--event-batch",
        "7",
    ];
    let (mut killed, mut aborted) = (0, 0);
    for round in 0..CRASHES {
        let before = env.count("SELECT count(*) FROM lake_files").await;
        let fault = match round % 10 {
            3 | 6 => Some(format!("after_write:{}", 1 + next() % 3)),
            8 => Some(format!("after_commit:{}", 1 + next() % 3)),
            _ => None,
        };
        let fault_env: Vec<(&str, &str)> = fault
            .as_deref()
            .map(|f| vec![("SURGSTREAM_FAULT", f)])
            .unwrap_or_default();
        let log = env.lake.with_extension(format!("crash-{round}.log"));
        let mut child = env.spawn_ingest_logged_with_env(&args, &fault_env, &log);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        if let Some(fault) = &fault {
            // It aborts itself at the fault point: SIGABRT, after saying where (any other way
            // to die — a panic, an error exit — is a failure of the test, not the fault).
            let status = tokio::time::timeout_at(deadline, child.wait())
                .await
                .expect("the ingestor reached its fault point within 90 s")
                .expect("reap");
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
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
            aborted += 1;
        } else {
            // Killed only once it has committed something new, at a random moment after that.
            loop {
                let now = env.count("SELECT count(*) FROM lake_files").await;
                if now > before {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: no new commit within 90 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(next() % 400)).await;
            child.start_kill().expect("kill -9 the ingestor");
            let status = child.wait().await.expect("reap");
            assert_eq!(
                status.signal(),
                Some(9), // SIGKILL
                "round {round}: the ingestor was to be killed, but {status}"
            );
            killed += 1;
        }
        let _ = std::fs::remove_file(&log);
    }
    assert_eq!((killed, aborted), (14, 6));
    stop(&mut sim, "the simulator").await;
    let first = take_report(&sim_report);
    assert!(
        env.count("SELECT count(*) FROM lake_files").await >= CRASHES as i64,
        "the crashes interrupted a run that was committing"
    );
    // No pause before the final run: Kafka's coordinator holds the new member's join until
    // the killed members' sessions (10 s) expire, then gives it every partition.

    // More data while nothing consumes, then a clean run to the end.
    let second = env
        .sim(&[
            "--robots",
            "3",
            "--procedures",
            "3",
            "--hz",
            "200",
            "--profile",
            "live",
            "--speed",
            "3600",
            "--fast",
            "--seed",
            "12",
        ])
        .await;
    env.ingest_until_idle(&["--max-rows", "5000"]).await;

    let seen = env.committed_frames().await;
    assert_exactly_once(&[&first, &second], &seen);
    env.assert_events_as_an_undisturbed_run().await;
    let scheduled = first["events_by_type"]["ProcedureScheduled"]
        .as_i64()
        .unwrap_or(0)
        + second["events_by_type"]["ProcedureScheduled"]
            .as_i64()
            .unwrap_or(0);
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures").await,
        scheduled
    );
    let outcomes = first["events_by_type"]["OutcomeRecorded"]
        .as_i64()
        .unwrap_or(0)
        + second["events_by_type"]["OutcomeRecorded"]
            .as_i64()
            .unwrap_or(0);
    assert_eq!(
        env.count("SELECT count(*) FROM procedure_outcomes").await,
        outcomes
    );
    let audits = env.count("SELECT count(*) FROM status_audit").await;
    let distinct = env
        .count("SELECT count(DISTINCT event_id) FROM status_audit")
        .await;
    assert_eq!(audits, distinct, "an event was applied twice");

    // The crashes between writing and committing left orphans; after the sweeper (no ingestor
    // runs now, so any grace is safe), verify finds nothing wrong.
    let out = env.sweep("1ms", &[]).await;
    assert!(out.status.success());
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(out.status.success(), "{r}");
    assert_eq!(
        (r["missing"].as_u64(), r["duplicated"].as_u64()),
        (Some(0), Some(0))
    );
}
