//! Applying one event inside the caller's transaction.

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
            return Ok(Rejection {
                reason,
                message: format!("{what}: {}{constraint}", db.message()),
            });
        }
    }
    Err(StoreError::Query { what, source: e })
}

fn uuid(field: &'static str, b: &[u8]) -> Result<Uuid, Rejection> {
    Uuid::from_slice(b).map_err(|_| Rejection {
        reason: "invalid_value",
        message: format!("{field} must be a 16-byte UUID, got {} bytes", b.len()),
    })
}

fn instant(field: &'static str, micros: i64) -> Result<DateTime<Utc>, Rejection> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| Rejection {
        reason: "invalid_value",
        message: format!("{field} {micros} µs is out of range"),
    })
}

fn date(field: &'static str, days: i32) -> Result<NaiveDate, Rejection> {
    NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)).ok_or_else(|| Rejection {
        reason: "invalid_value",
        message: format!("{field} {days} days since 1970-01-01 is out of range"),
    })
}

fn decimal(field: &'static str, ty: DecimalType, v: f64) -> Result<String, Rejection> {
    ty.to_scaled(v)
        .map(|s| scaled_to_string(s, ty.scale))
        .map_err(|e| Rejection {
            reason: "invalid_value",
            message: format!("{field}: {e}"),
        })
}

/// What became of an event that was not rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    New,
    /// Processed before (same event id, applied or rejected): a replay, and nothing changes.
    Replay,
}

/// Applies `event` in the caller's transaction. A rejected event is rolled back to a savepoint,
/// so the transaction stays usable for the rest of the batch; either way its id is recorded in
/// `processed_events`, so that a replay of the topic is recognised and changes nothing.
pub async fn apply_event(
    conn: &mut PgConnection,
    source: Source<'_>,
    event: &Event,
) -> Result<Result<Applied, Rejection>, StoreError> {
    let event_id = match uuid("event_id", &event.event_id) {
        Ok(id) => id,
        Err(r) => return Ok(Err(r)),
    };
    sqlx::query("SAVEPOINT surgstream_event")
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("savepoint"))?;
    let fresh = record_processed(conn, event_id, "applied", source).await?;
    let outcome = if !fresh {
        Ok(Applied::Replay)
    } else {
        match apply_inner(conn, source, event).await {
            Ok(Ok(())) => Ok(Applied::New),
            Ok(Err(r)) => Err(r),
            Err(Failure::Db(e, what)) => Err(classify(e, what)?),
        }
    };
    let stmt = if outcome.is_ok() {
        "RELEASE SAVEPOINT surgstream_event"
    } else {
        "ROLLBACK TO SAVEPOINT surgstream_event"
    };
    sqlx::query(stmt)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("savepoint"))?;
    if outcome.is_err() {
        record_processed(conn, event_id, "rejected", source).await?;
    }
    Ok(outcome)
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

enum Failure {
    Db(sqlx::Error, &'static str),
}

trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, Failure>;
}
impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Db(e, what))
    }
}

macro_rules! tryr {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        }
    };
}

async fn audit(
    conn: &mut PgConnection,
    src: Source<'_>,
    event: &Event,
    entity: &str,
    id: Uuid,
    from: Option<&str>,
    to: &str,
) -> Result<Result<(), Rejection>, Failure> {
    let event_id = tryr!(uuid("event_id", &event.event_id));
    let at = tryr!(instant("occurred_at", event.occurred_at));
    sqlx::query(
        "INSERT INTO status_audit (entity, entity_id, from_status, to_status, event_id, occurred_at, source_topic, source_partition, source_offset)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entity)
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(event_id)
    .bind(at)
    .bind(src.topic)
    .bind(src.partition)
    .bind(src.offset)
    .execute(&mut *conn)
    .await
    .ctx("insert status_audit")?;
    Ok(Ok(()))
}

async fn robot_status(conn: &mut PgConnection, robot: Uuid) -> Result<Option<String>, Failure> {
    sqlx::query_scalar("SELECT status FROM surgical_robots WHERE robot_id = $1 FOR UPDATE")
        .bind(robot)
        .fetch_optional(&mut *conn)
        .await
        .ctx("read robot")
}

async fn apply_inner(
    conn: &mut PgConnection,
    src: Source<'_>,
    event: &Event,
) -> Result<Result<(), Rejection>, Failure> {
    let Some(body) = &event.body else {
        return Ok(Err(Rejection {
            reason: "invalid_value",
            message: "event has no body".into(),
        }));
    };
    match body {
        Body::RobotRegistered(r) => {
            let id = tryr!(uuid("robot_id", &r.robot_id));
            if !matches!(r.status.as_str(), "operational" | "maintenance") {
                return Ok(Err(Rejection {
                    reason: "invalid_value",
                    message: format!("robot {id}: cannot register with status {:?}", r.status),
                }));
            }
            let installed = tryr!(date("installation_date", r.installation_date));
            let at = tryr!(instant("occurred_at", event.occurred_at));
            sqlx::query(
                "INSERT INTO surgical_robots (robot_id, robot_serial_number, robot_model, manufacturer, installation_date,
                    facility_id, facility_name, status, firmware_version, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(id)
            .bind(&r.robot_serial_number)
            .bind(&r.robot_model)
            .bind(&r.manufacturer)
            .bind(installed)
            .bind(&r.facility_id)
            .bind(&r.facility_name)
            .bind(&r.status)
            .bind(&r.firmware_version)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("insert surgical_robots")?;
            audit(conn, src, event, "robot", id, None, &r.status).await
        }
        Body::RobotStatusChanged(s) => {
            let id = tryr!(uuid("robot_id", &s.robot_id));
            let Some(from) = robot_status(conn, id).await? else {
                return Ok(Err(Rejection {
                    reason: "unknown_robot",
                    message: format!("robot {id} is not registered"),
                }));
            };
            if !robot_transition_allowed(&from, &s.status) {
                return Ok(Err(Rejection {
                    reason: "illegal_transition",
                    message: format!("robot {id}: illegal status change {from} → {}", s.status),
                }));
            }
            let at = tryr!(instant("occurred_at", event.occurred_at));
            sqlx::query(
                "UPDATE surgical_robots SET status = $2, updated_at = $3 WHERE robot_id = $1",
            )
            .bind(id)
            .bind(&s.status)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("update robot status")?;
            audit(conn, src, event, "robot", id, Some(&from), &s.status).await
        }
        Body::ProcedureScheduled(p) => {
            let id = tryr!(uuid("procedure_id", &p.procedure_id));
            let robot = tryr!(uuid("robot_id", &p.robot_id));
            match robot_status(conn, robot).await?.as_deref() {
                None => {
                    return Ok(Err(Rejection {
                        reason: "unknown_robot",
                        message: format!("procedure {id}: robot {robot} is not registered"),
                    }));
                }
                Some("retired") => {
                    return Ok(Err(Rejection {
                        reason: "illegal_transition",
                        message: format!("procedure {id}: robot {robot} is retired"),
                    }));
                }
                Some(_) => {}
            }
            let score = tryr!(decimal(
                "complexity_score",
                DecimalType::new(3, 2),
                p.complexity_score
            ));
            let start = tryr!(instant("scheduled_start", p.scheduled_start));
            let at = tryr!(instant("occurred_at", event.occurred_at));
            sqlx::query(
                "INSERT INTO surgical_procedures (procedure_id, robot_id, procedure_type, procedure_category, scheduled_start,
                    surgeon_id, surgeon_name, patient_id, patient_age, patient_gender, complexity_score, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::numeric, 'scheduled', $12, $12)",
            )
            .bind(id)
            .bind(robot)
            .bind(&p.procedure_type)
            .bind(&p.procedure_category)
            .bind(start)
            .bind(&p.surgeon_id)
            .bind(&p.surgeon_name)
            .bind(&p.patient_id)
            .bind(p.patient_age)
            .bind(&p.patient_gender)
            .bind(score)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("insert surgical_procedures")?;
            audit(conn, src, event, "procedure", id, None, SCHEDULED).await
        }
        Body::ProcedureStarted(p) => {
            step(
                conn,
                src,
                event,
                &p.procedure_id,
                &p.robot_id,
                ProcedureStep::Start,
                Some(p.start_time),
                None,
            )
            .await
        }
        Body::ProcedureCompleted(p) => {
            step(
                conn,
                src,
                event,
                &p.procedure_id,
                &p.robot_id,
                ProcedureStep::Complete,
                None,
                Some(p.end_time),
            )
            .await
        }
        Body::ProcedureAborted(p) => {
            step(
                conn,
                src,
                event,
                &p.procedure_id,
                &p.robot_id,
                ProcedureStep::Abort,
                None,
                Some(p.end_time),
            )
            .await
        }
        Body::ProcedureCancelled(p) => {
            step(
                conn,
                src,
                event,
                &p.procedure_id,
                &p.robot_id,
                ProcedureStep::Cancel,
                None,
                None,
            )
            .await
        }
        Body::OutcomeRecorded(o) => {
            let id = tryr!(uuid("outcome_id", &o.outcome_id));
            let procedure = tryr!(uuid("procedure_id", &o.procedure_id));
            let status: Option<String> = sqlx::query_scalar(
                "SELECT status FROM surgical_procedures WHERE procedure_id = $1",
            )
            .bind(procedure)
            .fetch_optional(&mut *conn)
            .await
            .ctx("read procedure")?;
            match status.as_deref() {
                None => {
                    return Ok(Err(Rejection {
                        reason: "unknown_procedure",
                        message: format!("outcome {id}: procedure {procedure} does not exist"),
                    }));
                }
                Some(s) if !has_run(s) => {
                    return Ok(Err(Rejection {
                        reason: "procedure_not_run",
                        message: format!(
                            "outcome {id}: procedure {procedure} has not run (status {s})"
                        ),
                    }));
                }
                Some(_) => {}
            }
            let at = tryr!(instant("occurred_at", event.occurred_at));
            sqlx::query(
                "INSERT INTO procedure_outcomes (outcome_id, procedure_id, success_status, blood_loss_ml, complications,
                    hospital_stay_days, readmission_30day, patient_satisfaction_score, surgeon_notes, recovery_score,
                    follow_up_required, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(id)
            .bind(procedure)
            .bind(&o.success_status)
            .bind(o.blood_loss_ml)
            .bind(&o.complications)
            .bind(o.hospital_stay_days)
            .bind(o.readmission_30day)
            .bind(o.patient_satisfaction_score)
            .bind(&o.surgeon_notes)
            .bind(o.recovery_score)
            .bind(o.follow_up_required)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("insert procedure_outcomes")?;
            Ok(Ok(()))
        }
        Body::MaintenanceLogged(m) => {
            let id = tryr!(uuid("maintenance_id", &m.maintenance_id));
            let robot = tryr!(uuid("robot_id", &m.robot_id));
            if robot_status(conn, robot).await?.is_none() {
                return Ok(Err(Rejection {
                    reason: "unknown_robot",
                    message: format!("maintenance {id}: robot {robot} is not registered"),
                }));
            }
            let day = tryr!(date("maintenance_date", m.maintenance_date));
            let next = tryr!(date("next_maintenance_date", m.next_maintenance_date));
            let downtime = tryr!(decimal(
                "downtime_hours",
                DecimalType::new(6, 2),
                m.downtime_hours
            ));
            let cost = tryr!(decimal("cost", DecimalType::new(10, 2), m.cost));
            let at = tryr!(instant("occurred_at", event.occurred_at));
            sqlx::query(
                "INSERT INTO robot_maintenance_logs (maintenance_id, robot_id, maintenance_date, maintenance_type, technician_id,
                    technician_name, issues_found, actions_taken, parts_replaced, downtime_hours, next_maintenance_date, cost, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12::numeric, $13)",
            )
            .bind(id)
            .bind(robot)
            .bind(day)
            .bind(&m.maintenance_type)
            .bind(&m.technician_id)
            .bind(&m.technician_name)
            .bind(&m.issues_found)
            .bind(&m.actions_taken)
            .bind(&m.parts_replaced)
            .bind(downtime)
            .bind(next)
            .bind(cost)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("insert robot_maintenance_logs")?;
            sqlx::query(
                "UPDATE surgical_robots
                    SET last_maintenance_date = GREATEST(last_maintenance_date, $2),
                        firmware_version = COALESCE(NULLIF($3, ''), firmware_version),
                        updated_at = $4
                  WHERE robot_id = $1",
            )
            .bind(robot)
            .bind(day)
            .bind(&m.firmware_version)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("update robot after maintenance")?;
            Ok(Ok(()))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn step(
    conn: &mut PgConnection,
    src: Source<'_>,
    event: &Event,
    procedure_id: &[u8],
    robot_id: &[u8],
    step: ProcedureStep,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Result<(), Rejection>, Failure> {
    let id = tryr!(uuid("procedure_id", procedure_id));
    let robot = tryr!(uuid("robot_id", robot_id));
    let start = match start {
        Some(t) => Some(tryr!(instant("start_time", t))),
        None => None,
    };
    let end = match end {
        Some(t) => Some(tryr!(instant("end_time", t))),
        None => None,
    };
    let at = tryr!(instant("occurred_at", event.occurred_at));
    let row: Option<(String, Uuid)> = sqlx::query_as(
        "SELECT status, robot_id FROM surgical_procedures WHERE procedure_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .ctx("read procedure")?;
    let Some((from, owner)) = row else {
        return Ok(Err(Rejection {
            reason: "unknown_procedure",
            message: format!("procedure {id} does not exist"),
        }));
    };
    if owner != robot {
        return Ok(Err(Rejection {
            reason: "robot_mismatch",
            message: format!("procedure {id} belongs to robot {owner}, not {robot}"),
        }));
    }
    let Some(to) = step.apply(&from) else {
        return Ok(Err(Rejection {
            reason: "illegal_transition",
            message: format!(
                "procedure {id}: illegal transition {from} → {}",
                step.target()
            ),
        }));
    };
    sqlx::query(
        "UPDATE surgical_procedures
            SET status = $2,
                start_time = COALESCE($3, start_time),
                end_time = COALESCE($4, end_time),
                duration_minutes = CASE WHEN $4::timestamptz IS NULL THEN duration_minutes
                                        ELSE round(extract(epoch FROM ($4::timestamptz - start_time)) / 60)::integer END,
                updated_at = $5
          WHERE procedure_id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(start)
    .bind(end)
    .bind(at)
    .execute(&mut *conn)
    .await
    .ctx("update procedure status")?;
    if step == ProcedureStep::Complete {
        sqlx::query("UPDATE surgical_robots SET total_procedures = total_procedures + 1, updated_at = $2 WHERE robot_id = $1")
            .bind(robot)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("count robot procedure")?;
    }
    audit(conn, src, event, "procedure", id, Some(&from), to).await
}
