//! Every CHECK, foreign key and unique constraint of the relational model, broken on purpose by
//! an event: the event is rejected with a reason and a message that names what was wrong, and no
//! row changes — applied alone, in a batch between good events, and sent through the events topic
//! to the ingestor, which dead-letters each with its reason and source offset.

mod common;

use bytes::Bytes;
use surgstream_proto::v1::{
    Event, MaintenanceLogged, OutcomeRecorded, ProcedureCompleted, ProcedureScheduled,
    ProcedureStarted, RobotRegistered, event::Body,
};
use surgstream_store::{Applied, Outcome, Source, apply_event, apply_events};

use common::*;

const T0: i64 = 1_780_000_000_000_000;
const ROBOT: [u8; 16] = [1; 16];
const PROCEDURE: [u8; 16] = [2; 16];
/// Started, never ended.
const OTHER: [u8; 16] = [3; 16];

fn event(n: u8, body: Body) -> Event {
    Event {
        event_id: Bytes::from(vec![n; 16]),
        occurred_at: T0 + i64::from(n),
        body: Some(body),
    }
}

fn robot(id: [u8; 16], serial: &str) -> Body {
    Body::RobotRegistered(RobotRegistered {
        robot_id: Bytes::copy_from_slice(&id),
        robot_serial_number: serial.into(),
        robot_model: "da Vinci Xi".into(),
        manufacturer: "Intuitive Surgical".into(),
        installation_date: 20_000,
        facility_id: "FAC-001".into(),
        facility_name: "St. Mary's Medical Center".into(),
        status: "operational".into(),
        firmware_version: "10.2.1".into(),
    })
}

fn scheduled(id: [u8; 16], robot: [u8; 16]) -> ProcedureScheduled {
    ProcedureScheduled {
        procedure_id: Bytes::copy_from_slice(&id),
        robot_id: Bytes::copy_from_slice(&robot),
        procedure_type: "Radical Prostatectomy".into(),
        procedure_category: "urological".into(),
        scheduled_start: T0 + 3_600_000_000,
        surgeon_id: "SURG-001-001".into(),
        surgeon_name: "Dr. Amara Okafor".into(),
        patient_id: "PAT-00000001".into(),
        patient_age: 61,
        patient_gender: "male".into(),
        complexity_score: 2.5,
    }
}

fn outcome(id: u8, procedure: [u8; 16]) -> OutcomeRecorded {
    OutcomeRecorded {
        outcome_id: Bytes::from(vec![id; 16]),
        procedure_id: Bytes::copy_from_slice(&procedure),
        robot_id: Bytes::copy_from_slice(&ROBOT),
        success_status: "successful".into(),
        blood_loss_ml: 150,
        complications: String::new(),
        hospital_stay_days: 2,
        readmission_30day: false,
        patient_satisfaction_score: 9,
        surgeon_notes: "ok".into(),
        recovery_score: 90,
        follow_up_required: false,
    }
}

fn maintenance(id: u8) -> MaintenanceLogged {
    MaintenanceLogged {
        maintenance_id: Bytes::from(vec![id; 16]),
        robot_id: Bytes::copy_from_slice(&ROBOT),
        maintenance_date: 20_500,
        maintenance_type: "routine".into(),
        technician_id: "TECH-0001".into(),
        technician_name: "Ben Schmidt".into(),
        issues_found: "none".into(),
        actions_taken: "inspection".into(),
        parts_replaced: String::new(),
        downtime_hours: 4.0,
        next_maintenance_date: 20_590,
        cost: 1_800.0,
        firmware_version: String::new(),
    }
}

/// Every row of the event-written tables: what a rejected event must leave alone.
async fn snapshot(env: &TestEnv) -> Vec<(String, i64, String)> {
    env.digest(&[
        "surgical_robots",
        "surgical_procedures",
        "procedure_outcomes",
        "robot_maintenance_logs",
        "status_audit",
    ])
    .await
}

fn src(offset: i64) -> Source<'static> {
    Source {
        topic: "surgical.events.v1",
        partition: 0,
        offset,
    }
}

/// The world the bad events meet: a robot, a procedure that ran, its outcome, a log, and a
/// procedure that started and has not ended.
fn world() -> Vec<Event> {
    vec![
        event(1, robot(ROBOT, "SK2024-000001")),
        event(2, Body::ProcedureScheduled(scheduled(PROCEDURE, ROBOT))),
        event(
            3,
            Body::ProcedureStarted(ProcedureStarted {
                procedure_id: Bytes::copy_from_slice(&PROCEDURE),
                robot_id: Bytes::copy_from_slice(&ROBOT),
                start_time: T0 + 3_600_000_000,
            }),
        ),
        event(
            4,
            Body::ProcedureCompleted(ProcedureCompleted {
                procedure_id: Bytes::copy_from_slice(&PROCEDURE),
                robot_id: Bytes::copy_from_slice(&ROBOT),
                end_time: T0 + 10_800_000_000,
            }),
        ),
        event(5, Body::OutcomeRecorded(outcome(5, PROCEDURE))),
        event(6, Body::MaintenanceLogged(maintenance(6))),
        event(7, Body::ProcedureScheduled(scheduled(OTHER, ROBOT))),
        event(
            8,
            Body::ProcedureStarted(ProcedureStarted {
                procedure_id: Bytes::copy_from_slice(&OTHER),
                robot_id: Bytes::copy_from_slice(&ROBOT),
                start_time: T0 + 20_000_000_000,
            }),
        ),
    ]
}

/// Applies `events` as one batch in one transaction, at offsets from `first`.
async fn apply_batch(env: &TestEnv, first: i64, events: &[Event]) -> Vec<Outcome> {
    let batch: Vec<(Source<'_>, &Event)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (src(first + i as i64), e))
        .collect();
    let mut tx = env.pool.begin().await.expect("tx");
    let outcomes = apply_events(&mut tx, &batch).await.expect("db");
    tx.commit().await.expect("commit");
    outcomes
}

/// Applies the world in one batch, checking that every event applies.
async fn build_world(env: &TestEnv) {
    let good = world();
    let outcomes = apply_batch(env, 0, &good).await;
    assert_eq!(
        outcomes,
        vec![Ok(Applied::New); good.len()],
        "the world applies"
    );
}

/// (what it breaks, the event body, the reason, words the message must contain)
type Case = (&'static str, Body, &'static str, &'static str);

fn broken() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    cases.push((
        "unique serial number",
        robot([13; 16], "SK2024-000001"),
        "duplicate",
        "robot_serial_number",
    ));
    let mut r = robot([4; 16], "SK2024-000004");
    if let Body::RobotRegistered(x) = &mut r {
        x.status = "broken".into();
    }
    cases.push(("robot status", r, "invalid_value", "broken"));
    let mut p = scheduled([5; 16], [9; 16]);
    cases.push((
        "procedure → robot foreign key",
        Body::ProcedureScheduled(p.clone()),
        "unknown_robot",
        "not registered",
    ));
    p.robot_id = Bytes::copy_from_slice(&ROBOT);
    p.complexity_score = 5.5;
    cases.push((
        "complexity 1.00–5.00",
        Body::ProcedureScheduled(p.clone()),
        "constraint_violation",
        "complexity",
    ));
    p.complexity_score = 2.0;
    p.patient_age = 200;
    cases.push((
        "patient age",
        Body::ProcedureScheduled(p.clone()),
        "constraint_violation",
        "patient_age",
    ));
    cases.push((
        "outcome → procedure foreign key",
        Body::OutcomeRecorded(outcome(10, [9; 16])),
        "unknown_procedure",
        "does not exist",
    ));
    cases.push((
        "one outcome per procedure",
        Body::OutcomeRecorded(outcome(11, PROCEDURE)),
        "duplicate",
        "procedure_id",
    ));
    for (what, field, value) in [
        ("success status", "success_status", -1),
        ("blood loss ≥ 0", "blood_loss", -1),
        ("stay ≥ 0", "stay", -1),
        ("satisfaction 1–10", "satisfaction", 11),
        ("recovery 1–100", "recovery", 0),
    ] {
        // On the procedure that already has an outcome: PostgreSQL checks a row's CHECK
        // constraints before its unique index, so the CHECK is what rejects it.
        let mut o = outcome(12, PROCEDURE);
        match field {
            "success_status" => o.success_status = "meh".into(),
            "blood_loss" => o.blood_loss_ml = value,
            "stay" => o.hospital_stay_days = value,
            "satisfaction" => o.patient_satisfaction_score = value,
            _ => o.recovery_score = value,
        }
        cases.push((
            what,
            Body::OutcomeRecorded(o),
            "constraint_violation",
            field,
        ));
    }
    for (what, field) in [
        ("maintenance type", "type"),
        ("downtime ≥ 0", "downtime"),
        ("cost ≥ 0", "cost"),
    ] {
        let mut m = maintenance(20);
        match field {
            "type" => m.maintenance_type = "bogus".into(),
            "downtime" => m.downtime_hours = -1.0,
            _ => m.cost = -5.0,
        }
        cases.push((
            what,
            Body::MaintenanceLogged(m),
            "constraint_violation",
            field,
        ));
    }
    cases.push((
        "end_time ≥ start_time",
        Body::ProcedureCompleted(ProcedureCompleted {
            procedure_id: Bytes::copy_from_slice(&OTHER),
            robot_id: Bytes::copy_from_slice(&ROBOT),
            end_time: T0 + 19_000_000_000,
        }),
        "constraint_violation",
        "surgical_procedures_",
    ));
    let mut m = maintenance(21);
    m.robot_id = Bytes::from(vec![9u8; 16]);
    cases.push((
        "maintenance → robot foreign key",
        Body::MaintenanceLogged(m),
        "unknown_robot",
        "not registered",
    ));
    cases
}

#[tokio::test]
async fn every_constraint_broken_by_an_event_is_rejected_with_its_reason() {
    let env = TestEnv::new("constraints").await;
    build_world(&env).await;
    let before = snapshot(&env).await;
    for (i, (what, body, reason, words)) in broken().into_iter().enumerate() {
        let e = event(100 + i as u8, body);
        let mut tx = env.pool.begin().await.expect("tx");
        let r = apply_event(&mut tx, src(100 + i as i64), &e)
            .await
            .expect("a broken constraint is a rejection, not a database error");
        tx.commit().await.expect("commit");
        let rejection = r.expect_err(what);
        assert_eq!(rejection.reason, reason, "{what}: {}", rejection.message);
        assert!(
            rejection.message.contains(words),
            "{what}: the message does not say {words:?}: {}",
            rejection.message
        );
        assert_eq!(
            snapshot(&env).await,
            before,
            "{what}: a rejected event changed a row"
        );
    }
}

/// The set-based path: the broken events of every case in ONE batch, each followed by a good
/// event. The batch breaks constraints, so it is applied again event by event: exactly the bad
/// ones are rejected, with the same reasons as alone, and every good one is applied.
#[tokio::test]
async fn a_batch_with_broken_events_applies_the_rest() {
    let env = TestEnv::new("constraints_batch").await;
    build_world(&env).await;
    let cases = broken();
    let mut events = Vec::new();
    for (i, (_, body, _, _)) in cases.iter().enumerate() {
        let n = 100 + 2 * i as u8;
        events.push(event(n, body.clone()));
        events.push(event(n + 1, Body::MaintenanceLogged(maintenance(n + 1))));
    }
    let outcomes = apply_batch(&env, 100, &events).await;
    assert_eq!(outcomes.len(), events.len());
    for (i, (what, _, reason, words)) in cases.iter().enumerate() {
        let rejection = outcomes[2 * i].clone().expect_err(what);
        assert_eq!(rejection.reason, *reason, "{what}: {}", rejection.message);
        assert!(
            rejection.message.contains(words),
            "{what}: {}",
            rejection.message
        );
        assert_eq!(
            outcomes[2 * i + 1],
            Ok(Applied::New),
            "the good event after {what}"
        );
    }
    assert_eq!(
        env.count("SELECT count(*) FROM robot_maintenance_logs")
            .await,
        1 + cases.len() as i64,
        "the world's log and one per case"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM processed_events WHERE outcome = 'rejected'")
            .await,
        cases.len() as i64,
        "every rejection is recorded, so that a replay is recognised"
    );

    // The same batch again: every event is a replay, nothing changes.
    let before = snapshot(&env).await;
    let again = apply_batch(&env, 100, &events).await;
    assert_eq!(again, vec![Ok(Applied::Replay); events.len()]);
    assert_eq!(snapshot(&env).await, before);
}

/// A whole lifecycle in one batch: each event sees what the ones before it did, and the derived
/// columns come out as applied one by one.
#[tokio::test]
async fn a_lifecycle_in_one_batch_keeps_the_derived_columns() {
    let env = TestEnv::new("constraints_lifecycle").await;
    let mut events = world();
    // The same event twice in a batch is applied once.
    events.push(events[0].clone());
    let outcomes = apply_batch(&env, 0, &events).await;
    let mut expected = vec![Ok(Applied::New); events.len() - 1];
    expected.push(Ok(Applied::Replay));
    assert_eq!(outcomes, expected);
    let row: (String, i32, Option<chrono::NaiveDate>, i64) = sqlx::query_as(
        "SELECT status, total_procedures, last_maintenance_date,
                (SELECT count(*) FROM status_audit WHERE entity = 'robot') FROM surgical_robots",
    )
    .fetch_one(&env.pool)
    .await
    .expect("robot");
    assert_eq!(
        row,
        (
            "operational".to_owned(),
            1,
            chrono::NaiveDate::from_num_days_from_ce_opt(20_500 + 719_163),
            1
        )
    );
    // Started at T0 + 1 h, completed at T0 + 3 h: 120 minutes.
    let (status, duration): (String, Option<i32>) = sqlx::query_as(
        "SELECT status, duration_minutes FROM surgical_procedures WHERE procedure_id = $1",
    )
    .bind(uuid::Uuid::from_bytes(PROCEDURE))
    .fetch_one(&env.pool)
    .await
    .expect("procedure");
    assert_eq!((status.as_str(), duration), ("completed", Some(120)));
    assert_eq!(
        env.count("SELECT count(*) FROM status_audit WHERE entity = 'procedure'")
            .await,
        5,
        "scheduled, started, completed; scheduled, started"
    );

    // Rules broken in a batch that breaks no constraint: rejected in memory, no retry needed,
    // and the good event between them applies.
    let before = snapshot(&env).await;
    let again = event(
        30,
        Body::ProcedureStarted(ProcedureStarted {
            procedure_id: Bytes::copy_from_slice(&OTHER),
            robot_id: Bytes::copy_from_slice(&ROBOT),
            start_time: T0,
        }),
    );
    let log = event(31, Body::MaintenanceLogged(maintenance(31)));
    let early = event(32, Body::OutcomeRecorded(outcome(32, OTHER)));
    let outcomes = apply_batch(&env, 30, &[again, log, early]).await;
    let reasons: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map_err(|r| r.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            Err("illegal_transition"),
            Ok(&Applied::New),
            Err("procedure_not_run")
        ]
    );
    assert_ne!(snapshot(&env).await, before, "the log was applied");
    assert_eq!(
        env.count("SELECT count(*) FROM robot_maintenance_logs")
            .await,
        2
    );
}

/// Through the event stream: the world, then every broken event, sent to the events topic and
/// applied by the ingestor. Each broken event is in the dead-letter topic with its reason, a
/// message naming what was wrong, and its source offset; the world is intact.
#[tokio::test(flavor = "multi_thread")]
async fn broken_events_sent_through_the_stream_are_dead_lettered_with_their_reason() {
    let env = TestEnv::new("constraints_stream").await;
    let topic = env.topic("surgical.events.v1");
    let p: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer");
    let cases = broken();
    let mut events = world();
    let first_broken = events.len();
    events.extend(
        cases
            .iter()
            .enumerate()
            .map(|(i, (_, body, _, _))| event(100 + i as u8, body.clone())),
    );
    // One key: one partition, so offsets follow the order sent.
    for e in &events {
        let bytes = surgstream_proto::encode_event(e);
        send(&p, &topic, &ROBOT, &bytes, Some("surgstream.v1.Event")).await;
    }
    env.ingest_until_idle(&[]).await;

    let mut dlq = dead_letters(&env.topic("surgical.events.dlq.v1"), cases.len()).await;
    dlq.sort_by_key(|h| h["source.offset"].parse::<i64>().unwrap_or(-1));
    for (i, ((what, _, reason, words), h)) in cases.iter().zip(&dlq).enumerate() {
        assert_eq!(h["source.topic"], topic, "{what}");
        assert_eq!(
            h["source.offset"],
            (first_broken + i).to_string(),
            "{what}: the dead letter names its source offset"
        );
        assert_eq!(h["reason"], *reason, "{what}: {}", h["error"]);
        assert!(
            h["error"].contains(words),
            "{what}: the error does not say {words:?}: {}",
            h["error"]
        );
    }
    assert_eq!(env.count("SELECT count(*) FROM surgical_robots").await, 1);
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures").await,
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM procedure_outcomes").await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM robot_maintenance_logs")
            .await,
        1
    );
}
