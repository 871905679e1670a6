//! Applying events inside the caller's transaction, a batch at a time and set-based.
//!
//! A batch is applied in four steps, about a dozen statements whatever its size:
//!
//! 1. every event is decoded and its values checked (ids, instants, decimals);
//! 2. the batch's event ids are claimed in `processed_events` (one multi-row insert; an id already
//!    there is a replay and changes nothing), and the robots and procedures the batch refers to
//!    are read and locked (one statement each);
//! 3. the lifecycle rules run in memory, event by event in offset order, against that state, so an
//!    event sees what the events before it in the batch did;
//! 4. the result is written with one multi-row statement per table (`UNNEST` of arrays).
//!
//! PostgreSQL's constraints stay the authority. When one of those statements breaks a constraint,
//! the batch is rolled back to a savepoint and applied again one event at a time, each in its own
//! savepoint, so that exactly the offending event is rejected, with PostgreSQL's message.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use surgstream_proto::decimal::{DecimalType, scaled_to_string};
use surgstream_proto::v1::{Event, event::Body};
use uuid::Uuid;

use crate::StoreError;
use crate::lifecycle::{ProcedureStep, SCHEDULED, has_run, robot_transition_allowed};

/// Where an event came from: recorded in the audit trail and in dead-letter headers.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Kafka topic.
    pub topic: &'a str,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
}

/// An event that was not applied, and why. Nothing of it reached the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Low-cardinality reason, the `reason` label of the dead-letter counter.
    pub reason: &'static str,
    /// What exactly was wrong.
    pub message: String,
}

impl Rejection {
    fn new(reason: &'static str, message: String) -> Self {
        Self { reason, message }
    }
}

/// What became of an event that was not rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    New,
    /// Processed before (same event id, applied or rejected): a replay, and nothing changes.
    Replay,
}

/// The outcome of one event.
pub type Outcome = Result<Applied, Rejection>;

/// Turns a database error caused by the event's data (integrity or data exception) into a
/// rejection; any other error (connection lost, …) stays an error.
fn classify(e: sqlx::Error, what: &'static str) -> Result<Rejection, StoreError> {
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        if code.starts_with("23") || code.starts_with("22") {
            let reason = match code.as_str() {
                "23505" => "duplicate",
                "23503" => "unknown_reference",
                _ => "constraint_violation",
            };
            let constraint = db
                .constraint()
                .map(|c| format!(" (constraint {c})"))
                .unwrap_or_default();
            return Ok(Rejection::new(
                reason,
                format!("{what}: {}{constraint}", db.message()),
            ));
        }
    }
    Err(StoreError::Query { what, source: e })
}

/// Applies `events`, in order, in the caller's transaction: one outcome per event, in the same
/// order. Rejected events leave no row behind (the caller dead-letters them) and the transaction
/// stays usable. Every event id, applied or rejected, is recorded in `processed_events`, so that
/// a replay of the topic is recognised and changes nothing.
pub async fn apply_events(
    conn: &mut PgConnection,
    events: &[(Source<'_>, &Event)],
) -> Result<Vec<Outcome>, StoreError> {
    if events.len() > 1 {
        savepoint(conn, "SAVEPOINT surgstream_batch").await?;
        match write_batch(conn, events).await {
            Ok(outcomes) => {
                savepoint(conn, "RELEASE SAVEPOINT surgstream_batch").await?;
                return Ok(outcomes);
            }
            Err(Failure(e, what)) => {
                // Data that breaks a constraint: find which event, one at a time.
                let rejection = classify(e, what)?;
                tracing::debug!(
                    events = events.len(),
                    %rejection.message,
                    "a batch broke a constraint; applying it event by event"
                );
                savepoint(conn, "ROLLBACK TO SAVEPOINT surgstream_batch").await?;
            }
        }
    }
    let mut out = Vec::with_capacity(events.len());
    for &(source, event) in events {
        out.push(apply_event(conn, source, event).await?);
    }
    Ok(out)
}

/// Applies one event in the caller's transaction, in its own savepoint: a rejected event is
/// rolled back and the transaction stays usable for the rest of the batch.
pub async fn apply_event(
    conn: &mut PgConnection,
    source: Source<'_>,
    event: &Event,
) -> Result<Outcome, StoreError> {
    savepoint(conn, "SAVEPOINT surgstream_event").await?;
    match write_batch(conn, &[(source, event)]).await {
        Ok(mut outcomes) => {
            savepoint(conn, "RELEASE SAVEPOINT surgstream_event").await?;
            Ok(outcomes.pop().unwrap_or(Ok(Applied::Replay)))
        }
        Err(Failure(e, what)) => {
            let rejection = classify(e, what)?;
            savepoint(conn, "ROLLBACK TO SAVEPOINT surgstream_event").await?;
            // The id was valid (the claim ran): record it, so a replay is recognised.
            if let Ok(id) = Uuid::from_slice(&event.event_id) {
                record_processed(conn, id, "rejected", source).await?;
            }
            Ok(Err(rejection))
        }
    }
}

async fn savepoint(conn: &mut PgConnection, stmt: &'static str) -> Result<(), StoreError> {
    sqlx::query(stmt)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("savepoint"))?;
    Ok(())
}

/// Records an event id as processed; false when it already was (a replay).
async fn record_processed(
    conn: &mut PgConnection,
    event_id: Uuid,
    outcome: &str,
    source: Source<'_>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (event_id, outcome, source_topic, source_partition, source_offset)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(outcome)
    .bind(source.topic)
    .bind(source.partition)
    .bind(source.offset)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("record processed event"))?
    .rows_affected();
    Ok(inserted == 1)
}

/// A statement failed; what was being done.
struct Failure(sqlx::Error, &'static str);

trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, Failure>;
}
impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure(e, what))
    }
}

// ---------------------------------------------------------------------------------------------
// Step 1: decoding and checking values.

fn uuid(field: &'static str, b: &[u8]) -> Result<Uuid, Rejection> {
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
struct Parsed<'a> {
    event_id: Uuid,
    at: DateTime<Utc>,
    op: Op<'a>,
}

enum Op<'a> {
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

struct NewRobot<'a> {
    id: Uuid,
    serial: &'a str,
    model: &'a str,
    manufacturer: &'a str,
    installed: NaiveDate,
    facility_id: &'a str,
    facility_name: &'a str,
    status: &'a str,
    firmware: &'a str,
}

struct NewProcedure<'a> {
    id: Uuid,
    robot: Uuid,
    procedure_type: &'a str,
    category: &'a str,
    scheduled_start: DateTime<Utc>,
    surgeon_id: &'a str,
    surgeon_name: &'a str,
    patient_id: &'a str,
    patient_age: i32,
    patient_gender: &'a str,
    complexity: String,
}

struct NewOutcome<'a> {
    id: Uuid,
    procedure: Uuid,
    o: &'a surgstream_proto::v1::OutcomeRecorded,
}

struct NewMaintenance<'a> {
    id: Uuid,
    robot: Uuid,
    day: NaiveDate,
    next: NaiveDate,
    downtime: String,
    cost: String,
    m: &'a surgstream_proto::v1::MaintenanceLogged,
}

/// Checks an event whose id (already checked) is `event_id`.
fn parse(event_id: Uuid, event: &Event) -> Result<Parsed<'_>, Rejection> {
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

// ---------------------------------------------------------------------------------------------
// Step 3: the rules, in memory.

/// A robot as the batch leaves it.
struct RobotRow<'a> {
    status: String,
    /// Registered by this batch (and when): inserted with its final values.
    new: Option<(&'a NewRobot<'a>, DateTime<Utc>)>,
    /// Changed by this batch (an existing robot is updated).
    touched: bool,
    completed: i32,
    last_maintenance: Option<NaiveDate>,
    firmware: Option<&'a str>,
    updated_at: Option<DateTime<Utc>>,
}

impl RobotRow<'_> {
    fn stored(status: String) -> Self {
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
struct ProcedureRow<'a> {
    robot: Uuid,
    status: String,
    /// The start time it has (stored or set by this batch), for the duration.
    start: Option<DateTime<Utc>>,
    /// Scheduled by this batch (and when): inserted with its final values.
    new: Option<(&'a NewProcedure<'a>, DateTime<Utc>)>,
    touched: bool,
    set_start: Option<DateTime<Utc>>,
    set_end: Option<DateTime<Utc>>,
    duration: Option<i64>,
    updated_at: Option<DateTime<Utc>>,
}

impl ProcedureRow<'_> {
    fn stored(robot: Uuid, status: String, start: Option<DateTime<Utc>>) -> Self {
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

struct AuditRow<'a> {
    entity: &'static str,
    id: Uuid,
    from: Option<String>,
    to: &'a str,
    event_id: Uuid,
    at: DateTime<Utc>,
    source: Source<'a>,
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

#[derive(Default)]
struct Plan<'a> {
    robots: HashMap<Uuid, RobotRow<'a>>,
    procedures: HashMap<Uuid, ProcedureRow<'a>>,
    outcomes: Vec<(DateTime<Utc>, &'a NewOutcome<'a>)>,
    maintenance: Vec<(DateTime<Utc>, &'a NewMaintenance<'a>)>,
    audit: Vec<AuditRow<'a>>,
}

impl<'a> Plan<'a> {
    /// Applies one event to the in-memory state, or says why it must not be applied (and then
    /// changes nothing).
    fn apply(&mut self, source: Source<'a>, p: &'a Parsed<'a>) -> Result<(), Rejection> {
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

// ---------------------------------------------------------------------------------------------
// Steps 2 and 4: reading and writing, set-based.

/// Applies a batch with a dozen statements. A statement error is returned as it is: the caller
/// decides whether the data broke a constraint (and retries event by event) or the database
/// failed.
async fn write_batch<'a>(
    conn: &mut PgConnection,
    events: &[(Source<'a>, &'a Event)],
) -> Result<Vec<Outcome>, Failure> {
    let ids: Vec<Result<Uuid, Rejection>> = events
        .iter()
        .map(|(_, e)| uuid("event_id", &e.event_id))
        .collect();
    // Until decided otherwise, an event is a replay (so is an id seen earlier in the batch).
    let mut outcomes: Vec<Outcome> = vec![Ok(Applied::Replay); events.len()];

    // Claim every id: those already processed (by an earlier run, or by another transaction
    // that committed first) are replays. Rejections found in memory are marked afterwards.
    let mut first = HashSet::new();
    let mut claim: Vec<(usize, Uuid)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match id {
            // Rejected, with no id to record.
            Err(r) => outcomes[i] = Err(r.clone()),
            Ok(id) if first.insert(*id) => claim.push((i, *id)),
            Ok(_) => {}
        }
    }
    let claimed: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (event_id, outcome, source_topic, source_partition, source_offset)
         SELECT id, 'applied', t, p, o FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[]) AS u(id, t, p, o)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(claim.iter().map(|&(_, id)| id).collect::<Vec<_>>())
    .bind(claim.iter().map(|&(i, _)| events[i].0.topic).collect::<Vec<_>>())
    .bind(claim.iter().map(|&(i, _)| events[i].0.partition).collect::<Vec<_>>())
    .bind(claim.iter().map(|&(i, _)| events[i].0.offset).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .ctx("record processed events")?
    .into_iter()
    .collect();
    let mut rejected_ids = Vec::new();
    let mut live: Vec<(usize, Parsed<'a>)> = Vec::new();
    for (i, id) in claim {
        if !claimed.contains(&id) {
            continue;
        }
        match parse(id, events[i].1) {
            Ok(p) => live.push((i, p)),
            Err(r) => {
                outcomes[i] = Err(r);
                rejected_ids.push(id);
            }
        }
    }

    // Read and lock what the live events refer to.
    let mut robot_ids = HashSet::new();
    let mut procedure_ids = HashSet::new();
    for (_, p) in &live {
        match &p.op {
            Op::Register(r) => robot_ids.insert(r.id),
            Op::RobotStatus { robot, .. } => robot_ids.insert(*robot),
            Op::Schedule(s) => procedure_ids.insert(s.id) | robot_ids.insert(s.robot),
            Op::Step {
                procedure, robot, ..
            } => procedure_ids.insert(*procedure) | robot_ids.insert(*robot),
            Op::Outcome(o) => procedure_ids.insert(o.procedure),
            Op::Maintenance(m) => robot_ids.insert(m.robot),
        };
    }
    let mut plan = Plan::default();
    if !robot_ids.is_empty() {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT robot_id, status FROM surgical_robots WHERE robot_id = ANY($1)
             ORDER BY robot_id FOR UPDATE",
        )
        .bind(robot_ids.into_iter().collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await
        .ctx("read robots")?;
        for (id, status) in rows {
            plan.robots.insert(id, RobotRow::stored(status));
        }
    }
    if !procedure_ids.is_empty() {
        let rows: Vec<(Uuid, String, Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT procedure_id, status, robot_id, start_time FROM surgical_procedures
              WHERE procedure_id = ANY($1) ORDER BY procedure_id FOR UPDATE",
        )
        .bind(procedure_ids.into_iter().collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await
        .ctx("read procedures")?;
        for (id, status, robot, start) in rows {
            plan.procedures
                .insert(id, ProcedureRow::stored(robot, status, start));
        }
    }

    for (i, p) in &live {
        let i = *i;
        outcomes[i] = plan.apply(events[i].0, p).map(|()| Applied::New);
        if outcomes[i].is_err() {
            rejected_ids.push(p.event_id);
        }
    }

    write_plan(conn, &plan).await?;
    if !rejected_ids.is_empty() {
        sqlx::query("UPDATE processed_events SET outcome = 'rejected' WHERE event_id = ANY($1)")
            .bind(&rejected_ids)
            .execute(&mut *conn)
            .await
            .ctx("record rejected events")?;
    }
    Ok(outcomes)
}

async fn write_plan(conn: &mut PgConnection, plan: &Plan<'_>) -> Result<(), Failure> {
    // One array per column: `col!(rows, |pattern| value)`.
    macro_rules! col {
        ($rows:expr, |$x:pat_param| $e:expr) => {
            $rows.iter().map(|$x| $e).collect::<Vec<_>>()
        };
    }

    // Robots registered by this batch, inserted with their final values.
    let rows: Vec<(&NewRobot<'_>, DateTime<Utc>, &RobotRow<'_>)> = plan
        .robots
        .values()
        .filter_map(|r| r.new.map(|(n, created)| (n, created, r)))
        .collect();
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO surgical_robots (robot_id, robot_serial_number, robot_model, manufacturer, installation_date,
                facility_id, facility_name, status, last_maintenance_date, total_procedures, firmware_version,
                created_at, updated_at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[],
                $7::text[], $8::text[], $9::date[], $10::int[], $11::text[], $12::timestamptz[], $13::timestamptz[])",
        )
        .bind(col!(rows, |(n, _, _)| n.id))
        .bind(col!(rows, |(n, _, _)| n.serial))
        .bind(col!(rows, |(n, _, _)| n.model))
        .bind(col!(rows, |(n, _, _)| n.manufacturer))
        .bind(col!(rows, |(n, _, _)| n.installed))
        .bind(col!(rows, |(n, _, _)| n.facility_id))
        .bind(col!(rows, |(n, _, _)| n.facility_name))
        .bind(col!(rows, |(_, _, r)| r.status.as_str()))
        .bind(col!(rows, |(_, _, r)| r.last_maintenance))
        .bind(col!(rows, |(_, _, r)| r.completed))
        .bind(col!(rows, |(n, _, r)| r.firmware.unwrap_or(n.firmware)))
        .bind(col!(rows, |(_, created, _)| *created))
        .bind(col!(rows, |(_, _, r)| r.updated_at))
        .execute(&mut *conn)
        .await
        .ctx("insert surgical_robots")?;
    }

    let rows: Vec<(&Uuid, &RobotRow<'_>)> = plan
        .robots
        .iter()
        .filter(|(_, r)| r.new.is_none() && r.touched)
        .collect();
    if !rows.is_empty() {
        sqlx::query(
            "UPDATE surgical_robots r
                SET status = u.status,
                    total_procedures = r.total_procedures + u.completed,
                    last_maintenance_date = GREATEST(r.last_maintenance_date, u.last_maintenance),
                    firmware_version = COALESCE(u.firmware, r.firmware_version),
                    updated_at = u.updated_at
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::date[], $5::text[], $6::timestamptz[])
                    AS u(id, status, completed, last_maintenance, firmware, updated_at)
              WHERE r.robot_id = u.id",
        )
        .bind(col!(rows, |(id, _)| **id))
        .bind(col!(rows, |(_, r)| r.status.as_str()))
        .bind(col!(rows, |(_, r)| r.completed))
        .bind(col!(rows, |(_, r)| r.last_maintenance))
        .bind(col!(rows, |(_, r)| r.firmware))
        .bind(col!(rows, |(_, r)| r.updated_at))
        .execute(&mut *conn)
        .await
        .ctx("update surgical_robots")?;
    }

    // Procedures scheduled by this batch, inserted with their final values.
    let rows: Vec<(&NewProcedure<'_>, DateTime<Utc>, &ProcedureRow<'_>)> = plan
        .procedures
        .values()
        .filter_map(|p| p.new.map(|(n, created)| (n, created, p)))
        .collect();
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO surgical_procedures (procedure_id, robot_id, procedure_type, procedure_category, scheduled_start,
                start_time, end_time, duration_minutes, surgeon_id, surgeon_name, patient_id, patient_age,
                patient_gender, complexity_score, status, created_at, updated_at)
             SELECT id, robot, ty, cat, sched, st, et, dur::integer, sid, sname, pid, age, gender, score::numeric,
                    status, created, updated
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                    $7::timestamptz[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[],
                    $14::text[], $15::text[], $16::timestamptz[], $17::timestamptz[])
                 AS u(id, robot, ty, cat, sched, st, et, dur, sid, sname, pid, age, gender, score, status,
                      created, updated)",
        )
        .bind(col!(rows, |(n, _, _)| n.id))
        .bind(col!(rows, |(n, _, _)| n.robot))
        .bind(col!(rows, |(n, _, _)| n.procedure_type))
        .bind(col!(rows, |(n, _, _)| n.category))
        .bind(col!(rows, |(n, _, _)| n.scheduled_start))
        .bind(col!(rows, |(_, _, p)| p.set_start))
        .bind(col!(rows, |(_, _, p)| p.set_end))
        .bind(col!(rows, |(_, _, p)| p.duration))
        .bind(col!(rows, |(n, _, _)| n.surgeon_id))
        .bind(col!(rows, |(n, _, _)| n.surgeon_name))
        .bind(col!(rows, |(n, _, _)| n.patient_id))
        .bind(col!(rows, |(n, _, _)| n.patient_age))
        .bind(col!(rows, |(n, _, _)| n.patient_gender))
        .bind(col!(rows, |(n, _, _)| n.complexity.as_str()))
        .bind(col!(rows, |(_, _, p)| p.status.as_str()))
        .bind(col!(rows, |(_, created, _)| *created))
        .bind(col!(rows, |(_, _, p)| p.updated_at))
        .execute(&mut *conn)
        .await
        .ctx("insert surgical_procedures")?;
    }

    let rows: Vec<(&Uuid, &ProcedureRow<'_>)> = plan
        .procedures
        .iter()
        .filter(|(_, p)| p.new.is_none() && p.touched)
        .collect();
    if !rows.is_empty() {
        sqlx::query(
            "UPDATE surgical_procedures p
                SET status = u.status,
                    start_time = COALESCE(u.start_time, p.start_time),
                    end_time = COALESCE(u.end_time, p.end_time),
                    duration_minutes = COALESCE(u.duration::integer, p.duration_minutes),
                    updated_at = u.updated_at
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[],
                    $6::timestamptz[]) AS u(id, status, start_time, end_time, duration, updated_at)
              WHERE p.procedure_id = u.id",
        )
        .bind(col!(rows, |(id, _)| **id))
        .bind(col!(rows, |(_, p)| p.status.as_str()))
        .bind(col!(rows, |(_, p)| p.set_start))
        .bind(col!(rows, |(_, p)| p.set_end))
        .bind(col!(rows, |(_, p)| p.duration))
        .bind(col!(rows, |(_, p)| p.updated_at))
        .execute(&mut *conn)
        .await
        .ctx("update surgical_procedures")?;
    }

    let rows = &plan.outcomes;
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO procedure_outcomes (outcome_id, procedure_id, success_status, blood_loss_ml, complications,
                hospital_stay_days, readmission_30day, patient_satisfaction_score, surgeon_notes, recovery_score,
                follow_up_required, created_at, updated_at)
             SELECT id, proc, status, blood, comp, stay, readm, sat, notes, rec, follow, at, at
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[], $7::bool[],
                    $8::int[], $9::text[], $10::int[], $11::bool[], $12::timestamptz[])
                 AS u(id, proc, status, blood, comp, stay, readm, sat, notes, rec, follow, at)",
        )
        .bind(col!(rows, |(_, n)| n.id))
        .bind(col!(rows, |(_, n)| n.procedure))
        .bind(col!(rows, |(_, n)| n.o.success_status.as_str()))
        .bind(col!(rows, |(_, n)| n.o.blood_loss_ml))
        .bind(col!(rows, |(_, n)| n.o.complications.as_str()))
        .bind(col!(rows, |(_, n)| n.o.hospital_stay_days))
        .bind(col!(rows, |(_, n)| n.o.readmission_30day))
        .bind(col!(rows, |(_, n)| n.o.patient_satisfaction_score))
        .bind(col!(rows, |(_, n)| n.o.surgeon_notes.as_str()))
        .bind(col!(rows, |(_, n)| n.o.recovery_score))
        .bind(col!(rows, |(_, n)| n.o.follow_up_required))
        .bind(col!(rows, |(at, _)| *at))
        .execute(&mut *conn)
        .await
        .ctx("insert procedure_outcomes")?;
    }

    let rows = &plan.maintenance;
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO robot_maintenance_logs (maintenance_id, robot_id, maintenance_date, maintenance_type,
                technician_id, technician_name, issues_found, actions_taken, parts_replaced, downtime_hours,
                next_maintenance_date, cost, created_at)
             SELECT id, robot, day, ty, tid, tname, issues, actions, parts, downtime::numeric, next, cost::numeric, at
               FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::text[], $9::text[], $10::text[], $11::date[], $12::text[], $13::timestamptz[])
                 AS u(id, robot, day, ty, tid, tname, issues, actions, parts, downtime, next, cost, at)",
        )
        .bind(col!(rows, |(_, n)| n.id))
        .bind(col!(rows, |(_, n)| n.robot))
        .bind(col!(rows, |(_, n)| n.day))
        .bind(col!(rows, |(_, n)| n.m.maintenance_type.as_str()))
        .bind(col!(rows, |(_, n)| n.m.technician_id.as_str()))
        .bind(col!(rows, |(_, n)| n.m.technician_name.as_str()))
        .bind(col!(rows, |(_, n)| n.m.issues_found.as_str()))
        .bind(col!(rows, |(_, n)| n.m.actions_taken.as_str()))
        .bind(col!(rows, |(_, n)| n.m.parts_replaced.as_str()))
        .bind(col!(rows, |(_, n)| n.downtime.as_str()))
        .bind(col!(rows, |(_, n)| n.next))
        .bind(col!(rows, |(_, n)| n.cost.as_str()))
        .bind(col!(rows, |(at, _)| *at))
        .execute(&mut *conn)
        .await
        .ctx("insert robot_maintenance_logs")?;
    }

    let rows = &plan.audit;
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO status_audit (entity, entity_id, from_status, to_status, event_id, occurred_at,
                source_topic, source_partition, source_offset)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[],
                $7::text[], $8::int[], $9::bigint[])",
        )
        .bind(col!(rows, |r| r.entity))
        .bind(col!(rows, |r| r.id))
        .bind(col!(rows, |r| r.from.as_deref()))
        .bind(col!(rows, |r| r.to))
        .bind(col!(rows, |r| r.event_id))
        .bind(col!(rows, |r| r.at))
        .bind(col!(rows, |r| r.source.topic))
        .bind(col!(rows, |r| r.source.partition))
        .bind(col!(rows, |r| r.source.offset))
        .execute(&mut *conn)
        .await
        .ctx("insert status_audit")?;
    }
    Ok(())
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
