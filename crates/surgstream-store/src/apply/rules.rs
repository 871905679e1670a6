//! Step 3 of applying a batch: the procedure and robot lifecycle rules, run in memory event by
//! event against the rows the batch read and locked, building the [`Plan`] of what to write.
//!
//! Separate because it is pure: it neither reads nor writes the database, so the rules can be
//! read (and tested) apart from the SQL.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::decode::{NewMaintenance, NewOutcome, NewProcedure, NewRobot, Op, Parsed};
use super::{Rejection, Source};
use crate::lifecycle::{ProcedureStep, SCHEDULED, has_run, robot_transition_allowed};

/// A robot as the batch leaves it.
pub(super) struct RobotRow<'a> {
    pub(super) status: String,
    /// Registered by this batch (and when): inserted with its final values.
    pub(super) new: Option<(&'a NewRobot<'a>, DateTime<Utc>)>,
    /// Changed by this batch (an existing robot is updated).
    pub(super) touched: bool,
    pub(super) completed: i32,
    pub(super) last_maintenance: Option<NaiveDate>,
    pub(super) firmware: Option<&'a str>,
    pub(super) updated_at: Option<DateTime<Utc>>,
}

impl RobotRow<'_> {
    pub(super) fn stored(status: String) -> Self {
        Self {
            status,
            new: None,
            touched: false,
            completed: 0,
            last_maintenance: None,
            firmware: None,
            updated_at: None,
        }
    }
}

/// A procedure as the batch leaves it.
pub(super) struct ProcedureRow<'a> {
    robot: Uuid,
    pub(super) status: String,
    /// The start time it has (stored or set by this batch), for the duration.
    start: Option<DateTime<Utc>>,
    /// Scheduled by this batch (and when): inserted with its final values.
    pub(super) new: Option<(&'a NewProcedure<'a>, DateTime<Utc>)>,
    pub(super) touched: bool,
    pub(super) set_start: Option<DateTime<Utc>>,
    pub(super) set_end: Option<DateTime<Utc>>,
    pub(super) duration: Option<i64>,
    pub(super) updated_at: Option<DateTime<Utc>>,
}

impl ProcedureRow<'_> {
    pub(super) fn stored(robot: Uuid, status: String, start: Option<DateTime<Utc>>) -> Self {
        Self {
            robot,
            status,
            start,
            new: None,
            touched: false,
            set_start: None,
            set_end: None,
            duration: None,
            updated_at: None,
        }
    }
}

pub(super) struct AuditRow<'a> {
    pub(super) entity: &'static str,
    pub(super) id: Uuid,
    pub(super) from: Option<String>,
    pub(super) to: &'a str,
    pub(super) event_id: Uuid,
    pub(super) at: DateTime<Utc>,
    pub(super) source: Source<'a>,
}

/// Whole minutes between two instants, rounded half away from zero (what
/// `round(extract(epoch FROM end - start) / 60)` gives).
fn minutes_between(start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    const MINUTE: i64 = 60_000_000;
    let us = end.timestamp_micros() - start.timestamp_micros();
    if us >= 0 {
        (us + MINUTE / 2) / MINUTE
    } else {
        -((-us + MINUTE / 2) / MINUTE)
    }
}

/// The fate of a late event for an archived procedure (an outcome correction months later, a
/// status change): dead-lettered, never applied to a procedure PostgreSQL no longer holds nor
/// dropped. `surgstream restore --procedure` brings it back; the dead letter can then be
/// produced again to the events topic.
fn archived(procedure: Uuid) -> Rejection {
    Rejection::new(
        "archived",
        format!(
            "procedure {procedure} is archived (surgstream restore --procedure {procedure} brings it back; then send this event again)"
        ),
    )
}

#[derive(Default)]
pub(super) struct Plan<'a> {
    pub(super) robots: HashMap<Uuid, RobotRow<'a>>,
    pub(super) procedures: HashMap<Uuid, ProcedureRow<'a>>,
    pub(super) outcomes: Vec<(DateTime<Utc>, &'a NewOutcome<'a>)>,
    pub(super) maintenance: Vec<(DateTime<Utc>, &'a NewMaintenance<'a>)>,
    pub(super) audit: Vec<AuditRow<'a>>,
    /// Procedures the batch refers to that `surgstream archive` moved out of PostgreSQL.
    pub(super) archived: std::collections::HashSet<Uuid>,
}

impl<'a> Plan<'a> {
    /// Applies one event to the in-memory state, or says why it must not be applied (and then
    /// changes nothing).
    pub(super) fn apply(&mut self, source: Source<'a>, p: &'a Parsed<'a>) -> Result<(), Rejection> {
        let at = p.at;
        let audit = |entity, id, from: Option<String>, to: &'a str| AuditRow {
            entity,
            id,
            from,
            to,
            event_id: p.event_id,
            at,
            source,
        };
        match &p.op {
            Op::Register(r) => {
                if self.robots.contains_key(&r.id) {
                    return Err(Rejection::new(
                        "duplicate",
                        format!("robot {} is already registered", r.id),
                    ));
                }
                self.robots.insert(
                    r.id,
                    RobotRow {
                        new: Some((r, at)),
                        touched: true,
                        updated_at: Some(at),
                        ..RobotRow::stored(r.status.to_owned())
                    },
                );
                self.audit.push(audit("robot", r.id, None, r.status));
            }
            Op::RobotStatus { robot, status } => {
                let Some(row) = self.robots.get_mut(robot) else {
                    return Err(Rejection::new(
                        "unknown_robot",
                        format!("robot {robot} is not registered"),
                    ));
                };
                if !robot_transition_allowed(&row.status, status) {
                    return Err(Rejection::new(
                        "illegal_transition",
                        format!(
                            "robot {robot}: illegal status change {} → {status}",
                            row.status
                        ),
                    ));
                }
                let from = std::mem::replace(&mut row.status, (*status).to_owned());
                row.touched = true;
                row.updated_at = Some(at);
                self.audit.push(audit("robot", *robot, Some(from), status));
            }
            Op::Schedule(s) => {
                match self.robots.get(&s.robot).map(|r| r.status.as_str()) {
                    None => {
                        return Err(Rejection::new(
                            "unknown_robot",
                            format!("procedure {}: robot {} is not registered", s.id, s.robot),
                        ));
                    }
                    Some("retired") => {
                        return Err(Rejection::new(
                            "illegal_transition",
                            format!("procedure {}: robot {} is retired", s.id, s.robot),
                        ));
                    }
                    Some(_) => {}
                }
                if self.procedures.contains_key(&s.id) {
                    return Err(Rejection::new(
                        "duplicate",
                        format!("procedure {} already exists", s.id),
                    ));
                }
                if self.archived.contains(&s.id) {
                    return Err(archived(s.id));
                }
                self.procedures.insert(
                    s.id,
                    ProcedureRow {
                        new: Some((s, at)),
                        touched: true,
                        updated_at: Some(at),
                        ..ProcedureRow::stored(s.robot, SCHEDULED.to_owned(), None)
                    },
                );
                self.audit.push(audit("procedure", s.id, None, SCHEDULED));
            }
            Op::Step {
                procedure,
                robot,
                step,
                start,
                end,
            } => {
                let Some(row) = self.procedures.get_mut(procedure) else {
                    if self.archived.contains(procedure) {
                        return Err(archived(*procedure));
                    }
                    return Err(Rejection::new(
                        "unknown_procedure",
                        format!("procedure {procedure} does not exist"),
                    ));
                };
                if row.robot != *robot {
                    return Err(Rejection::new(
                        "robot_mismatch",
                        format!(
                            "procedure {procedure} belongs to robot {}, not {robot}",
                            row.robot
                        ),
                    ));
                }
                let Some(to) = step.apply(&row.status) else {
                    return Err(Rejection::new(
                        "illegal_transition",
                        format!(
                            "procedure {procedure}: illegal transition {} → {}",
                            row.status,
                            step.target()
                        ),
                    ));
                };
                let from = std::mem::replace(&mut row.status, to.to_owned());
                if let Some(s) = start {
                    row.start = Some(*s);
                    row.set_start = Some(*s);
                }
                if let Some(e) = end {
                    row.set_end = Some(*e);
                    row.duration = row.start.map(|s| minutes_between(s, *e));
                }
                row.touched = true;
                row.updated_at = Some(at);
                if *step == ProcedureStep::Complete
                    && let Some(r) = self.robots.get_mut(robot)
                {
                    r.completed += 1;
                    r.touched = true;
                    r.updated_at = Some(at);
                }
                self.audit
                    .push(audit("procedure", *procedure, Some(from), to));
            }
            Op::Outcome(o) => {
                match self.procedures.get(&o.procedure).map(|p| p.status.as_str()) {
                    None if self.archived.contains(&o.procedure) => {
                        return Err(archived(o.procedure));
                    }
                    None => {
                        return Err(Rejection::new(
                            "unknown_procedure",
                            format!("outcome {}: procedure {} does not exist", o.id, o.procedure),
                        ));
                    }
                    Some(s) if !has_run(s) => {
                        return Err(Rejection::new(
                            "procedure_not_run",
                            format!(
                                "outcome {}: procedure {} has not run (status {s})",
                                o.id, o.procedure
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                self.outcomes.push((at, o));
            }
            Op::Maintenance(m) => {
                let Some(r) = self.robots.get_mut(&m.robot) else {
                    return Err(Rejection::new(
                        "unknown_robot",
                        format!("maintenance {}: robot {} is not registered", m.id, m.robot),
                    ));
                };
                r.last_maintenance = r.last_maintenance.max(Some(m.day));
                if !m.m.firmware_version.is_empty() {
                    r.firmware = Some(&m.m.firmware_version);
                }
                r.touched = true;
                r.updated_at = Some(at);
                self.maintenance.push((at, m));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).expect("in range")
    }

    #[test]
    fn minutes_round_half_away_from_zero_like_postgres() {
        let t0 = 1_780_000_000_000_000;
        assert_eq!(minutes_between(at(t0), at(t0)), 0);
        assert_eq!(minutes_between(at(t0), at(t0 + 29_999_999)), 0);
        assert_eq!(minutes_between(at(t0), at(t0 + 30_000_000)), 1);
        assert_eq!(minutes_between(at(t0), at(t0 + 7_200_000_000)), 120);
        assert_eq!(minutes_between(at(t0), at(t0 - 30_000_000)), -1);
        assert_eq!(minutes_between(at(t0), at(t0 - 29_999_999)), 0);
    }
}
