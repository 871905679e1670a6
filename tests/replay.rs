//! Replaying the events topic from offset 0 into the same database changes nothing: every table
//! has the same checksum before and after, and no event is dead-lettered a second time.

mod common;

use bytes::Bytes;
use surgstream_proto::v1::{Event, OutcomeRecorded, event::Body};

use common::*;

/// A digest of every row of every table the events write (ingest bookkeeping aside).
async fn checksum(env: &TestEnv) -> Vec<(String, i64, String)> {
    env.digest(&[
        "surgical_robots",
        "surgical_procedures",
        "procedure_outcomes",
        "robot_maintenance_logs",
        "status_audit",
        "processed_events",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_the_events_topic_changes_nothing() {
    let env = TestEnv::new("replay").await;
    // A tenth of the seed profile's fleet and procedures, 2 samples each: ~2,000 events.
    let report = env
        .sim(&["--scale", "0.1", "--samples", "2", "--seed", "31"])
        .await;
    let events = report["events"].as_i64().expect("events");
    let first = env.ingest_until_idle(&["--max-age", "1s"]).await;
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.contains(&format!(
            " {events} events applied, 0 replayed, 0 telemetry and 0 event dead letters"
        )),
        "{first}"
    );
    let before = checksum(&env).await;
    assert_eq!(
        before
            .iter()
            .find(|t| t.0 == "processed_events")
            .map(|t| t.1),
        Some(events)
    );

    // Replay: a second consumer group reads the events topic from offset 0 into the same
    // database (its telemetry topic is an empty one: only the events are replayed here).
    let args: Vec<String> = [
        "ingest",
        "--brokers",
        &brokers(),
        "--events-topic",
        &env.topic("surgical.events.v1"),
        "--telemetry-topic",
        &env.topic("surgical.telemetry.dlq.v1"),
        "--telemetry-dlq-topic",
        &env.topic("surgical.telemetry.dlq.v1"),
        "--events-dlq-topic",
        &env.topic("surgical.events.dlq.v1"),
        "--database-url",
        &env.database_url(),
        "--lake",
        &env.lake.display().to_string(),
        "--group",
        &format!("{}-replay", env.group),
        "--until-idle",
        "3s",
        "--max-age",
        "1s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let second = run(&args, std::time::Duration::from_secs(300)).await;
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let second = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(
        second.contains(&format!(
            " 0 events applied, {} replayed, 0 telemetry and 0 event dead letters",
            events
        )),
        "{second}"
    );
    assert_eq!(checksum(&env).await, before, "the replay changed a table");
}

#[tokio::test]
async fn a_rejected_event_is_rejected_once_and_its_replay_is_recognised() {
    use surgstream_store::{Applied, Source, apply_event};
    let env = TestEnv::new("replay_rejected").await;
    let bad = Event {
        event_id: Bytes::from(vec![7u8; 16]),
        occurred_at: 1_700_000_000_000_000,
        body: Some(Body::OutcomeRecorded(OutcomeRecorded {
            outcome_id: Bytes::from(vec![8u8; 16]),
            procedure_id: Bytes::from(vec![9u8; 16]),
            robot_id: Bytes::from(vec![6u8; 16]),
            success_status: "successful".into(),
            patient_satisfaction_score: 9,
            recovery_score: 90,
            ..Default::default()
        })),
    };
    let src = Source {
        topic: "surgical.events.v1",
        partition: 0,
        offset: 41,
    };
    let mut tx = env.pool.begin().await.expect("tx");
    let first = apply_event(&mut tx, src, &bad)
        .await
        .expect("no database error");
    assert_eq!(first.expect_err("rejected").reason, "unknown_procedure");
    let again = apply_event(&mut tx, src, &bad)
        .await
        .expect("no database error");
    assert_eq!(
        again,
        Ok(Applied::Replay),
        "a replayed rejection is not dead-lettered again"
    );
    tx.commit().await.expect("commit");
    assert_eq!(
        env.count("SELECT count(*) FROM processed_events WHERE outcome = 'rejected'")
            .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM procedure_outcomes").await,
        0
    );
}
