//! Step 4 of applying a batch: writing a [`Plan`] with one multi-row statement per table
//! (`UNNEST` of arrays): robots, procedures, outcomes, maintenance logs and the status audit.
//!
//! Separate because it is all SQL and column binding, and changes with the schema rather than
//! with the rules.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::decode::{NewProcedure, NewRobot};
use super::rules::{Plan, ProcedureRow, RobotRow};
use super::{Ctx, Failure};

pub(super) async fn write_plan(conn: &mut PgConnection, plan: &Plan<'_>) -> Result<(), Failure> {
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
