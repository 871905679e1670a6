//! Step 1 of applying a batch: decoding an event and checking its values (ids, instants, dates,
//! decimals) into a [`Parsed`] operation, or a [`Rejection`] saying which field is wrong.
//!
//! Separate because it is pure: no database and no lifecycle state, only the message itself.

use chrono::{DateTime, NaiveDate, Utc};
use surgstream_proto::decimal::{DecimalType, scaled_to_string};
use surgstream_proto::v1::{Event, event::Body};
use uuid::Uuid;

use super::Rejection;
use crate::lifecycle::ProcedureStep;

pub(super) fn uuid(field: &'static str, b: &[u8]) -> Result<Uuid, Rejection> {
    Uuid::from_slice(b).map_err(|_| {
        Rejection::new(
            "invalid_value",
            format!("{field} must be a 16-byte UUID, got {} bytes", b.len()),
        )
    })
}

fn instant(field: &'static str, micros: i64) -> Result<DateTime<Utc>, Rejection> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        Rejection::new(
            "invalid_value",
            format!("{field} {micros} µs is out of range"),
        )
    })
}

fn date(field: &'static str, days: i32) -> Result<NaiveDate, Rejection> {
    NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)).ok_or_else(|| {
        Rejection::new(
            "invalid_value",
            format!("{field} {days} days since 1970-01-01 is out of range"),
        )
    })
}

fn decimal(field: &'static str, ty: DecimalType, v: f64) -> Result<String, Rejection> {
    ty.to_scaled(v)
        .map(|s| scaled_to_string(s, ty.scale))
        .map_err(|e| Rejection::new("invalid_value", format!("{field}: {e}")))
}

/// An event whose values are all storable, borrowing its strings from the decoded message.
pub(super) struct Parsed<'a> {
    pub(super) event_id: Uuid,
    pub(super) at: DateTime<Utc>,
    pub(super) op: Op<'a>,
}

pub(super) enum Op<'a> {
    Register(NewRobot<'a>),
    RobotStatus {
        robot: Uuid,
        status: &'a str,
    },
    Schedule(NewProcedure<'a>),
    Step {
        procedure: Uuid,
        robot: Uuid,
        step: ProcedureStep,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    },
    Outcome(NewOutcome<'a>),
    Maintenance(NewMaintenance<'a>),
}

pub(super) struct NewRobot<'a> {
    pub(super) id: Uuid,
    pub(super) serial: &'a str,
    pub(super) model: &'a str,
    pub(super) manufacturer: &'a str,
    pub(super) installed: NaiveDate,
    pub(super) facility_id: &'a str,
    pub(super) facility_name: &'a str,
    pub(super) status: &'a str,
    pub(super) firmware: &'a str,
}

pub(super) struct NewProcedure<'a> {
    pub(super) id: Uuid,
    pub(super) robot: Uuid,
    pub(super) procedure_type: &'a str,
    pub(super) category: &'a str,
    pub(super) scheduled_start: DateTime<Utc>,
    pub(super) surgeon_id: &'a str,
    pub(super) surgeon_name: &'a str,
    pub(super) patient_id: &'a str,
    pub(super) patient_age: i32,
    pub(super) patient_gender: &'a str,
    pub(super) complexity: String,
}

pub(super) struct NewOutcome<'a> {
    pub(super) id: Uuid,
    pub(super) procedure: Uuid,
    pub(super) o: &'a surgstream_proto::v1::OutcomeRecorded,
}

pub(super) struct NewMaintenance<'a> {
    pub(super) id: Uuid,
    pub(super) robot: Uuid,
    pub(super) day: NaiveDate,
    pub(super) next: NaiveDate,
    pub(super) downtime: String,
    pub(super) cost: String,
    pub(super) m: &'a surgstream_proto::v1::MaintenanceLogged,
}

/// Checks an event whose id (already checked) is `event_id`.
pub(super) fn parse(event_id: Uuid, event: &Event) -> Result<Parsed<'_>, Rejection> {
    let at = instant("occurred_at", event.occurred_at)?;
    let step = |procedure: &[u8], robot: &[u8], step, start: Option<i64>, end: Option<i64>| {
        Ok::<_, Rejection>(Op::Step {
            procedure: uuid("procedure_id", procedure)?,
            robot: uuid("robot_id", robot)?,
            step,
            start: start.map(|t| instant("start_time", t)).transpose()?,
            end: end.map(|t| instant("end_time", t)).transpose()?,
        })
    };
    let op = match &event.body {
        None => return Err(Rejection::new("invalid_value", "event has no body".into())),
        Some(Body::RobotRegistered(r)) => {
            let id = uuid("robot_id", &r.robot_id)?;
            if !matches!(r.status.as_str(), "operational" | "maintenance") {
                return Err(Rejection::new(
                    "invalid_value",
                    format!("robot {id}: cannot register with status {:?}", r.status),
                ));
            }
            Op::Register(NewRobot {
                id,
                serial: &r.robot_serial_number,
                model: &r.robot_model,
                manufacturer: &r.manufacturer,
                installed: date("installation_date", r.installation_date)?,
                facility_id: &r.facility_id,
                facility_name: &r.facility_name,
                status: &r.status,
                firmware: &r.firmware_version,
            })
        }
        Some(Body::RobotStatusChanged(s)) => Op::RobotStatus {
            robot: uuid("robot_id", &s.robot_id)?,
            status: &s.status,
        },
        Some(Body::ProcedureScheduled(p)) => Op::Schedule(NewProcedure {
            id: uuid("procedure_id", &p.procedure_id)?,
            robot: uuid("robot_id", &p.robot_id)?,
            procedure_type: &p.procedure_type,
            category: &p.procedure_category,
            scheduled_start: instant("scheduled_start", p.scheduled_start)?,
            surgeon_id: &p.surgeon_id,
            surgeon_name: &p.surgeon_name,
            patient_id: &p.patient_id,
            patient_age: p.patient_age,
            patient_gender: &p.patient_gender,
            complexity: decimal(
                "complexity_score",
                DecimalType::new(3, 2),
                p.complexity_score,
            )?,
        }),
        Some(Body::ProcedureStarted(p)) => step(
            &p.procedure_id,
            &p.robot_id,
            ProcedureStep::Start,
            Some(p.start_time),
            None,
        )?,
        Some(Body::ProcedureCompleted(p)) => step(
            &p.procedure_id,
            &p.robot_id,
            ProcedureStep::Complete,
            None,
            Some(p.end_time),
        )?,
        Some(Body::ProcedureAborted(p)) => step(
            &p.procedure_id,
            &p.robot_id,
            ProcedureStep::Abort,
            None,
            Some(p.end_time),
        )?,
        Some(Body::ProcedureCancelled(p)) => step(
            &p.procedure_id,
            &p.robot_id,
            ProcedureStep::Cancel,
            None,
            None,
        )?,
        Some(Body::OutcomeRecorded(o)) => Op::Outcome(NewOutcome {
            id: uuid("outcome_id", &o.outcome_id)?,
            procedure: uuid("procedure_id", &o.procedure_id)?,
            o,
        }),
        Some(Body::MaintenanceLogged(m)) => Op::Maintenance(NewMaintenance {
            id: uuid("maintenance_id", &m.maintenance_id)?,
            robot: uuid("robot_id", &m.robot_id)?,
            day: date("maintenance_date", m.maintenance_date)?,
            next: date("next_maintenance_date", m.next_maintenance_date)?,
            downtime: decimal("downtime_hours", DecimalType::new(6, 2), m.downtime_hours)?,
            cost: decimal("cost", DecimalType::new(10, 2), m.cost)?,
            m,
        }),
    };
    Ok(Parsed { event_id, at, op })
}
