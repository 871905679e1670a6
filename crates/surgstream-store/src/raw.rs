//! The raw archive's manifest, `raw_files`: which raw files (crates/surgstream-lake/src/raw.rs)
//! are committed, named in the same transaction as the offsets they cover.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// One committed raw file.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RawFile {
    /// Path relative to the lake root.
    pub path: String,
    /// Kafka partition.
    pub partition: i32,
    /// First offset of the flushed range.
    pub first_offset: i64,
    /// Last offset of the flushed range.
    pub last_offset: i64,
    /// Records in the file.
    pub records: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// Earliest Kafka timestamp of its records, if any had one.
    pub min_timestamp: Option<DateTime<Utc>>,
    /// Latest Kafka timestamp of its records, if any had one.
    pub max_timestamp: Option<DateTime<Utc>>,
}

/// Names raw files in the manifest, in the caller's transaction (one statement for all).
pub async fn record_raw_files(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
    files: &[RawFile],
) -> Result<(), StoreError> {
    if files.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&RawFile) -> i64| files.iter().map(f).collect::<Vec<i64>>();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let partitions: Vec<i32> = files.iter().map(|f| f.partition).collect();
    let min: Vec<Option<DateTime<Utc>>> = files.iter().map(|f| f.min_timestamp).collect();
    let max: Vec<Option<DateTime<Utc>>> = files.iter().map(|f| f.max_timestamp).collect();
    sqlx::query(
        "INSERT INTO raw_files (path, consumer_group, topic, partition, first_offset, last_offset, records, bytes, min_timestamp, max_timestamp)
         SELECT path, $2, $3, partition, first_offset, last_offset, records, bytes, min_timestamp, max_timestamp
           FROM unnest($1::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::timestamptz[], $10::timestamptz[])
             AS f(path, partition, first_offset, last_offset, records, bytes, min_timestamp, max_timestamp)",
    )
    .bind(&paths)
    .bind(group)
    .bind(topic)
    .bind(&partitions)
    .bind(col(|f| f.first_offset))
    .bind(col(|f| f.last_offset))
    .bind(col(|f| f.records))
    .bind(col(|f| f.bytes))
    .bind(&min)
    .bind(&max)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("insert raw_files"))?;
    Ok(())
}

/// A span of Kafka timestamps, `[since, until)`; either end open when None.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Inclusive start.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub until: Option<DateTime<Utc>>,
}

/// One consumer group's committed raw files of `topic`, in (partition, first offset) order,
/// of those whose records' Kafka timestamps may fall in `window` (files of records without a
/// timestamp are always included).
pub async fn raw_files(
    pool: &PgPool,
    group: &str,
    topic: &str,
    window: Window,
) -> Result<Vec<RawFile>, StoreError> {
    let Window { since, until } = window;
    sqlx::query_as(
        "SELECT path, partition, first_offset, last_offset, records, bytes, min_timestamp, max_timestamp
           FROM raw_files
          WHERE consumer_group = $1 AND topic = $2
            AND ($3::timestamptz IS NULL OR max_timestamp IS NULL OR max_timestamp >= $3)
            AND ($4::timestamptz IS NULL OR min_timestamp IS NULL OR min_timestamp < $4)
          ORDER BY partition, first_offset, path",
    )
    .bind(group)
    .bind(topic)
    .bind(since)
    .bind(until)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list raw_files"))
}

/// Raw files of one consumer group and topic committed since a follower's watermark (the raw
/// Iceberg table's), by transaction id, and how far they reach: as
/// [`crate::offsets::manifest_since`] for the telemetry manifest.
#[derive(Debug, Clone, Default)]
pub struct RawChanges {
    /// Each file with the id of the transaction that committed it, by that id then path.
    pub files: Vec<(i64, RawFile)>,
    /// The follower's next watermark: every transaction with a smaller id had ended when the
    /// rows were read.
    pub horizon: i64,
}

/// The raw files of `group` and `topic` committed by transactions with ids from `from_xid` up
/// to the current horizon (the xmin of a snapshot of PostgreSQL, read first).
pub async fn raw_since(
    pool: &PgPool,
    group: &str,
    topic: &str,
    from_xid: i64,
) -> Result<RawChanges, StoreError> {
    let horizon = crate::offsets::horizon(pool).await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        xid: i64,
        #[sqlx(flatten)]
        file: RawFile,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT xid::text::bigint AS xid, path, partition, first_offset, last_offset, records, bytes, min_timestamp, max_timestamp
           FROM raw_files
          WHERE consumer_group = $1 AND topic = $2
            AND xid >= $3::bigint::text::xid8 AND xid < $4::bigint::text::xid8
          ORDER BY xid, path",
    )
    .bind(group)
    .bind(topic)
    .bind(from_xid)
    .bind(horizon)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list unpublished raw_files"))?;
    Ok(RawChanges {
        files: rows.into_iter().map(|r| (r.xid, r.file)).collect(),
        horizon: horizon.max(from_xid),
    })
}

/// The largest id of a transaction that committed raw files of `group` and `topic` (none: no
/// file): a follower whose watermark is above it holds every one.
pub async fn newest_raw_xid(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(
        "SELECT max(xid)::text::bigint FROM raw_files WHERE consumer_group = $1 AND topic = $2",
    )
    .bind(group)
    .bind(topic)
    .fetch_one(pool)
    .await
    .map_err(StoreError::query("read the newest raw_files transaction"))
}

/// Every raw file of `group` and `topic`: the id of the transaction that committed it, its
/// path and records.
pub async fn all_raw_files(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT xid::text::bigint, path, records FROM raw_files
          WHERE consumer_group = $1 AND topic = $2 ORDER BY xid, path",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list raw_files"))
}
