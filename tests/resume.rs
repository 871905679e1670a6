//! Resuming: the broker must hand back exactly the records from an offset inside a record
//! batch (what an exactly-once consumer asks for on every restart), and the ingestor must
//! neither lose nor duplicate a frame when it is killed mid-stream and restarted.

mod common;

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

#[tokio::test(flavor = "multi_thread")]
async fn ingest_killed_mid_stream_and_restarted_loses_and_duplicates_nothing() {
    let env = TestEnv::new("crash").await;
    let first = env
        .sim(&[
            "--robots",
            "4",
            "--procedures",
            "8",
            "--hz",
            "500",
            "--profile",
            "live",
            "--speed",
            "3600",
            "--fast",
            "--seed",
            "11",
        ])
        .await;

    // Small flushes so that several commits happen before the kill.
    let mut kills = 0;
    for round in 0..3 {
        let before = env.count("SELECT count(*) FROM lake_files").await;
        let mut child = env.spawn_ingest(&[
            "--max-rows",
            "1500",
            "--max-age",
            "300ms",
            "--event-batch",
            "7",
        ]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = env.count("SELECT count(*) FROM lake_files").await;
            if now >= before + 2 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 + 40 * round)).await;
        }
        child.start_kill().expect("kill -9 the ingestor");
        let status = child.wait().await.expect("reap");
        assert!(!status.success(), "the ingestor was killed, not finished");
        kills += 1;
    }
    assert_eq!(kills, 3);
    // Let the killed members' sessions (10 s) expire before the final restart: joining a group
    // whose dead leader is still registered is where Tansu strands a member (README, "Deploying").
    tokio::time::sleep(Duration::from_secs(12)).await;

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
}
