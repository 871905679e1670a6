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
//!
//! Step 1 lives in `decode`, step 3 in `rules` and step 4 in `write`; this module holds the public
//! types, the entry points with their savepoints, and step 2 wiring the steps together.

mod decode;
mod rules;
mod write;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use surgstream_proto::v1::Event;
use uuid::Uuid;

use self::decode::{Op, Parsed, parse, uuid};
use self::rules::{Plan, ProcedureRow, RobotRow};
use self::write::write_plan;
use crate::StoreError;

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
// Step 2, and the steps wired together: claiming ids, reading and locking, set-based.

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
        .bind(procedure_ids.iter().copied().collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await
        .ctx("read procedures")?;
        for (id, status, robot, start) in rows {
            plan.procedures
                .insert(id, ProcedureRow::stored(robot, status, start));
        }
        let missing: Vec<Uuid> = procedure_ids
            .iter()
            .filter(|id| !plan.procedures.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            // Locked too: an archive batch moving one of them waits, and one that committed
            // first is seen here.
            plan.archived = sqlx::query_scalar(
                "SELECT procedure_id FROM archived_procedures WHERE procedure_id = ANY($1) FOR SHARE",
            )
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await
            .ctx("read archived procedures")?
            .into_iter()
            .collect();
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
