//! `ingest_offsets` (compare-and-set) and the `lake_files` manifest.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// The next offset to consume per partition of `topic` for `group`, as durably recorded.
pub async fn load(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, StoreError> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM ingest_offsets WHERE consumer_group = $1 AND topic = $2")
            .bind(group)
            .bind(topic)
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("load ingest_offsets"))?;
    Ok(rows.into_iter().collect())
}

/// Moves the partition's next offset from `expected` (None: no row yet) to `next`, in the
/// caller's transaction. Fails with [`StoreError::Fenced`] when another consumer moved it.
pub async fn advance(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
    partition: i32,
    expected: Option<i64>,
    next: i64,
) -> Result<(), StoreError> {
    let done = match expected {
        None => sqlx::query(
            "INSERT INTO ingest_offsets (consumer_group, topic, partition, next_offset)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .bind(next),
        Some(prev) => sqlx::query(
            "UPDATE ingest_offsets SET next_offset = $4, updated_at = now()
              WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .bind(next)
        .bind(prev),
    }
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("advance ingest_offsets"))?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            expected,
        })
    }
}

/// One file of the committed lake.
#[derive(Debug, Clone)]
pub struct LakeFile {
    /// Path relative to the lake root.
    pub path: String,
    /// Kafka partition.
    pub partition: i32,
    /// First Kafka offset of the flushed range.
    pub first_offset: i64,
    /// Last Kafka offset of the flushed range.
    pub last_offset: i64,
    /// Rows in the file.
    pub rows: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// Earliest event time in the file.
    pub min_event_time: DateTime<Utc>,
    /// Latest event time in the file.
    pub max_event_time: DateTime<Utc>,
}

/// Records files in the manifest, in the caller's transaction (one statement for all).
pub async fn record_files(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
    files: &[LakeFile],
) -> Result<(), StoreError> {
    if files.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&LakeFile) -> i64| files.iter().map(f).collect::<Vec<i64>>();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let partitions: Vec<i32> = files.iter().map(|f| f.partition).collect();
    let min_times: Vec<DateTime<Utc>> = files.iter().map(|f| f.min_event_time).collect();
    let max_times: Vec<DateTime<Utc>> = files.iter().map(|f| f.max_event_time).collect();
    sqlx::query(
        "INSERT INTO lake_files (path, consumer_group, topic, partition, first_offset, last_offset, rows, bytes, min_event_time, max_event_time)
         SELECT path, $2, $3, partition, first_offset, last_offset, rows, bytes, min_event_time, max_event_time
           FROM unnest($1::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::timestamptz[], $10::timestamptz[])
             AS f(path, partition, first_offset, last_offset, rows, bytes, min_event_time, max_event_time)",
    )
    .bind(&paths)
    .bind(group)
    .bind(topic)
    .bind(&partitions)
    .bind(col(|f| f.first_offset))
    .bind(col(|f| f.last_offset))
    .bind(col(|f| f.rows))
    .bind(col(|f| f.bytes))
    .bind(&min_times)
    .bind(&max_times)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("insert lake_files"))?;
    Ok(())
}

/// Which of `paths` the manifest names (committed by any consumer), or names as retired by a
/// compaction (still referenced by older Iceberg snapshots); raw files by the raw manifest.
pub async fn named(pool: &PgPool, paths: &[&str]) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT path FROM lake_files WHERE path = ANY($1)
         UNION SELECT path FROM lake_retired WHERE path = ANY($1)
         UNION SELECT path FROM raw_files WHERE path = ANY($1) ORDER BY path",
    )
    .bind(paths)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("look up lake_files"))
}

/// Paths, rows and bytes of every committed file, oldest first.
pub async fn committed_files(pool: &PgPool) -> Result<Vec<(String, i64, i64)>, StoreError> {
    sqlx::query_as("SELECT path, rows, bytes FROM lake_files ORDER BY committed_at, path")
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("list lake_files"))
}

/// Path, Kafka partition and commit time (the committing transaction's start, a few
/// statements before its commit) of every file one consumer group's ingestor committed from
/// `topic` (a compaction's files name no partition), oldest first.
pub async fn commit_times(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Vec<(String, i32, DateTime<Utc>)>, StoreError> {
    sqlx::query_as(
        "SELECT path, partition, committed_at FROM lake_files \
         WHERE consumer_group = $1 AND topic = $2 AND compaction_id IS NULL \
         ORDER BY committed_at, path",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list lake_files"))
}

/// Paths the manifest names: of one consumer group and topic, or with `None` of every group,
/// together with the files compactions retired (kept for older Iceberg snapshots until their
/// grace has passed: the sweeper must leave them alone), the committed raw files and the
/// procedure archive's objects.
pub async fn manifest_paths(
    pool: &PgPool,
    scope: Option<(&str, &str)>,
) -> Result<Vec<String>, StoreError> {
    let q = match scope {
        Some((group, topic)) => sqlx::query_scalar(
            "SELECT path FROM lake_files WHERE consumer_group = $1 AND topic = $2 ORDER BY path",
        )
        .bind(group)
        .bind(topic),
        None => sqlx::query_scalar(
            "SELECT path FROM lake_files UNION SELECT path FROM lake_retired \
             UNION SELECT path FROM raw_files UNION SELECT path FROM archive_files ORDER BY path",
        ),
    };
    q.fetch_all(pool)
        .await
        .map_err(StoreError::query("list lake_files"))
}

/// How many of `ids` the event store has processed (applied or rejected).
pub async fn count_processed(pool: &PgPool, ids: &[uuid::Uuid]) -> Result<u64, StoreError> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
            .bind(ids)
            .fetch_one(pool)
            .await
            .map_err(StoreError::query("look up processed events"))?;
    Ok(n.max(0) as u64)
}

/// Manifest rows of one consumer group and topic not yet published to a follower (the Iceberg
/// table), in commit order, and how far they reach.
#[derive(Debug, Clone, Default)]
pub struct ManifestChanges {
    /// Each row with the id of the transaction that committed it, by that id then path.
    pub files: Vec<(i64, LakeFile)>,
    /// The compactions made in the same range, by transaction id: each replaced committed
    /// files (some perhaps in `files`' range) with new ones, which `files` does not list.
    pub compactions: Vec<crate::compaction::Compaction>,
    /// The follower's next watermark: every transaction with a smaller id had ended when the rows
    /// were read, so none can add a row below it later.
    pub horizon: i64,
}

/// The xmin of a snapshot of PostgreSQL: every transaction with a smaller id has ended. Read it
/// before the rows: those below it are then all committed or rolled back, so a later statement,
/// whose snapshot is later, sees every one of them that committed.
pub async fn horizon(pool: &PgPool) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(pool)
        .await
        .map_err(StoreError::query("read the transaction horizon"))
}

/// The manifest rows of `group` and `topic` committed by transactions with ids from `from_xid`
/// (a follower's watermark) up to the current horizon, the xmin of a snapshot of PostgreSQL:
/// ids are handed out in one order and commit in another, but every transaction below the xmin
/// has ended, and every later one gets a larger id. A transaction left open anywhere in the
/// cluster holds the horizon back (the follower lags, it does not skip).
pub async fn manifest_since(
    pool: &PgPool,
    group: &str,
    topic: &str,
    from_xid: i64,
) -> Result<ManifestChanges, StoreError> {
    let horizon = horizon(pool).await?;
    type Row = (
        i64,
        String,
        i32,
        i64,
        i64,
        i64,
        i64,
        DateTime<Utc>,
        DateTime<Utc>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT xid::text::bigint, path, partition, first_offset, last_offset, rows, bytes, min_event_time, max_event_time
           FROM lake_files
          WHERE consumer_group = $1 AND topic = $2 AND compaction_id IS NULL
            AND xid >= $3::bigint::text::xid8 AND xid < $4::bigint::text::xid8
          ORDER BY xid, path",
    )
    .bind(group)
    .bind(topic)
    .bind(from_xid)
    .bind(horizon)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list unpublished lake_files"))?;
    let files = rows
        .into_iter()
        .map(
            |(xid, path, partition, first_offset, last_offset, rows, bytes, min, max)| {
                (
                    xid,
                    LakeFile {
                        path,
                        partition,
                        first_offset,
                        last_offset,
                        rows,
                        bytes,
                        min_event_time: min,
                        max_event_time: max,
                    },
                )
            },
        )
        .collect();
    let horizon = horizon.max(from_xid);
    let compactions = crate::compaction::since(pool, group, topic, from_xid, horizon).await?;
    Ok(ManifestChanges {
        files,
        compactions,
        horizon,
    })
}

/// The largest id of a transaction that committed manifest rows or a compaction of `group` and
/// `topic` (none: neither): a follower whose watermark is above it holds every row.
pub async fn newest_xid(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(
        "SELECT greatest(
            (SELECT max(xid)::text::bigint FROM lake_files WHERE consumer_group = $1 AND topic = $2),
            (SELECT max(xid)::text::bigint FROM lake_compactions WHERE consumer_group = $1 AND topic = $2))",
    )
    .bind(group)
    .bind(topic)
    .fetch_one(pool)
    .await
    .map_err(StoreError::query("read the newest manifest transaction"))
}

/// Every manifest row of `group` and `topic`, the ingestor's and the compactions' alike: the
/// id of the transaction that committed it, its path and rows.
pub async fn all_files(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT xid::text::bigint, path, rows FROM lake_files
          WHERE consumer_group = $1 AND topic = $2 ORDER BY xid, path",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list lake_files"))
}
