//! What a refresh has to do: each month's inputs, digested, against the digest the month was
//! last built from (`warehouse.refresh_state`). A month whose procedures, outcomes, maintenance
//! entries, robots' facilities or committed lake files changed since is rebuilt whole; the
//! others are left alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::WarehouseError;

/// The state row of the dimension tables.
pub const DIMENSIONS: &str = "dimensions";

/// One month of facts: its key (yyyymm), the digest of its inputs, and the event-time window
/// that holds its procedures' frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    pub key: i32,
    pub fingerprint: String,
    /// Frames of the month's procedures lie within [lo, hi] (None: no procedure started).
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Month {
    /// `YYYY-MM`.
    pub fn label(&self) -> String {
        label(self.key)
    }
}

/// `YYYY-MM` of a yyyymm key.
pub fn label(key: i32) -> String {
    format!("{:04}-{:02}", key / 100, key % 100)
}

/// The parts to rebuild and to remove.
#[derive(Debug, Default)]
pub struct Plan {
    pub months: Vec<Month>,
    /// Months the warehouse holds that no input refers to any more (a procedure moved).
    pub stale: Vec<String>,
    /// The dimensions' digest, when they must be rebuilt.
    pub dimensions: Option<String>,
}

/// A month's frames are read from the lake files whose event times overlap its procedures'
/// [first start − SLACK, last end + SLACK]: frames are stamped between a procedure's start and
/// end, the slack covers clocks and the last flush.
const SLACK: &str = "interval '1 hour'";

/// Digests every month's inputs, and the dimensions', and compares them with the state.
/// `version` (a digest of the SQL files) is part of every digest: new SQL rebuilds everything.
pub async fn plan(pool: &PgPool, group: &str, version: &str) -> Result<Plan, WarehouseError> {
    type Row = (i32, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let months: Vec<Row> =
        sqlx::query_as(&format!(
            r#"
WITH robots AS (
    SELECT md5(string_agg(robot_id::text || ':' || facility_id, ',' ORDER BY robot_id)) AS fp
    FROM surgical_robots
),
procs AS (
    SELECT
        (extract(year FROM coalesce(p.start_time, p.scheduled_start) AT TIME ZONE 'UTC') * 100
         + extract(month FROM coalesce(p.start_time, p.scheduled_start) AT TIME ZONE 'UTC'))::int AS month_key,
        p.procedure_id,
        p.updated_at,
        o.updated_at AS outcome_updated_at,
        p.start_time,
        CASE WHEN p.end_time IS NOT NULL THEN p.end_time
             WHEN p.start_time IS NOT NULL THEN greatest(now(), p.start_time)
        END AS until
    FROM surgical_procedures p
    LEFT JOIN procedure_outcomes o ON o.procedure_id = p.procedure_id
    UNION ALL
    -- archived procedures (`surgstream archive`) digest as they did before they moved
    SELECT a.month_key, a.procedure_id, a.updated_at, a.outcome_updated_at, a.start_time,
        CASE WHEN a.end_time IS NOT NULL THEN a.end_time
             WHEN a.start_time IS NOT NULL THEN greatest(now(), a.start_time)
        END
    FROM archived_procedures a
),
pm AS (
    SELECT
        month_key,
        md5(string_agg(procedure_id::text || '@' || updated_at::text || '/' || coalesce(outcome_updated_at::text, '-'),
                       ',' ORDER BY procedure_id)) AS fp,
        min(start_time) - {SLACK} AS lo,
        max(until) + {SLACK} AS hi
    FROM procs
    GROUP BY month_key
),
mm AS (
    SELECT
        (extract(year FROM maintenance_date) * 100 + extract(month FROM maintenance_date))::int AS month_key,
        md5(string_agg(maintenance_id::text || '@' || created_at::text, ',' ORDER BY maintenance_id)) AS fp
    FROM robot_maintenance_logs
    GROUP BY 1
),
months AS (
    SELECT month_key, pm.fp AS pfp, mm.fp AS mfp, pm.lo, pm.hi
    FROM pm FULL JOIN mm USING (month_key)
)
SELECT
    m.month_key,
    md5($2 || '|' || (SELECT coalesce(fp, '') FROM robots) || '|' || coalesce(m.pfp, '') || '|'
        || coalesce(m.mfp, '') || '|' || coalesce(f.fp, '')),
    m.lo,
    m.hi
FROM months m
LEFT JOIN LATERAL (
    SELECT md5(string_agg(path, ',' ORDER BY path)) AS fp
    FROM lake_files l
    WHERE l.consumer_group = $1 AND m.lo IS NOT NULL
      AND l.max_event_time >= m.lo AND l.min_event_time <= m.hi
      -- a file holds one event hour, or one month once compacted: the bound
      -- lake_files_event_time_idx can use
      AND l.min_event_time > m.lo - interval '32 days'
) f ON true
ORDER BY m.month_key
"#
        ))
        .bind(group)
        .bind(version)
        .fetch_all(pool)
        .await
        .map_err(WarehouseError::query("digest each month's inputs"))?;

    let dimensions: String = sqlx::query_scalar(
        r#"
SELECT md5($1
    || (SELECT coalesce(string_agg(robot_id::text || '@' || updated_at::text, ',' ORDER BY robot_id), '') FROM surgical_robots)
    || '|' || (SELECT count(*) || '@' || coalesce(max(updated_at)::text, '')
               FROM (SELECT updated_at FROM surgical_procedures
                     UNION ALL SELECT updated_at FROM archived_procedures) p)
    || '|' || (SELECT count(*) || '@' || coalesce(max(created_at)::text, '') FROM robot_maintenance_logs))
"#,
    )
    .bind(version)
    .fetch_one(pool)
    .await
    .map_err(WarehouseError::query("digest the dimensions' inputs"))?;

    let built: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT part, fingerprint FROM warehouse.refresh_state",
    )
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query("read warehouse.refresh_state"))?
    .into_iter()
    .collect();

    let current: Vec<Month> = months
        .into_iter()
        .map(|(key, fingerprint, lo, hi)| Month {
            key,
            fingerprint,
            window: lo.zip(hi),
        })
        .collect();
    let stale = built
        .keys()
        .filter(|part| part.as_str() != DIMENSIONS && !current.iter().any(|m| &m.label() == *part))
        .cloned()
        .collect();
    Ok(Plan {
        months: current
            .into_iter()
            .filter(|m| built.get(&m.label()) != Some(&m.fingerprint))
            .collect(),
        stale,
        dimensions: (built.get(DIMENSIONS) != Some(&dimensions)).then_some(dimensions),
    })
}

/// The committed lake files (path, bytes, rows) whose event times overlap `window`.
pub async fn lake_files(
    pool: &PgPool,
    group: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<(String, i64, i64)>, WarehouseError> {
    sqlx::query_as(
        "SELECT path, bytes, rows FROM lake_files
         WHERE consumer_group = $1 AND max_event_time >= $2 AND min_event_time <= $3
           AND min_event_time > $2 - interval '32 days'
         ORDER BY path",
    )
    .bind(group)
    .bind(window.0)
    .bind(window.1)
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query("list the month's lake files"))
}
