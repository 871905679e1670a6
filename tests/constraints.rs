//! Every CHECK, foreign key and unique constraint of the relational model, broken on purpose by
//! an event: the event is rejected (so the ingestor dead-letters it, see tests/dead_letters.rs)
//! with a reason and a message that names what was wrong, and no row changes.

mod common;

use bytes::Bytes;
use surgstream_proto::v1::{
    Event, MaintenanceLogged, OutcomeRecorded, ProcedureCompleted, ProcedureScheduled,
    ProcedureStarted, RobotRegistered, event::Body,
};
use surgstream_store::{Applied, Source, apply_event};

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

#[tokio::test]
async fn every_constraint_broken_by_an_event_is_rejected_with_its_reason() {
    let env = TestEnv::new("constraints").await;
    let src = |offset| Source {
        topic: "surgical.events.v1",
        partition: 0,
        offset,
    };
    // The world the bad events meet: a robot, a procedure that ran, its outcome, a log.
    let mut tx = env.pool.begin().await.expect("tx");
    let good = [
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
    ];
    for (i, e) in good.iter().enumerate() {
        let r = apply_event(&mut tx, src(i as i64), e).await.expect("db");
        assert_eq!(r, Ok(Applied::New), "setup event {i}");
    }
    tx.commit().await.expect("commit");
    let before = snapshot(&env).await;

    // (what it breaks, the event, the reason, words the message must contain)
    let mut cases: Vec<(&str, Body, &str, &str)> = Vec::new();
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

    for (i, (what, body, reason, words)) in cases.into_iter().enumerate() {
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
