//! The manifest's side of compaction: which committed files are small, the swap of many for a
//! few in one transaction (recorded in `lake_compactions` for the Iceberg publisher to follow),
//! and the files swapped out (`lake_retired`), kept until no Iceberg snapshot needs them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::StoreError;

/// A file as a compaction sees it, replaced or added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactedFile {
    /// Path relative to the lake root.
    pub path: String,
    /// The transaction that committed it to the manifest (for an added file: the compaction's).
    pub xid: i64,
    /// Rows.
    pub rows: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// Earliest event time.
    pub min_event_time: DateTime<Utc>,
    /// Latest event time.
    pub max_event_time: DateTime<Utc>,
}

/// One swap recorded in `lake_compactions`.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// Its id.
    pub id: i64,
    /// The transaction that made it.
    pub xid: i64,
    /// The files it took out of the manifest.
    pub replaced: Vec<CompactedFile>,
    /// The files it put in (their `xid` is the compaction's).
    pub added: Vec<CompactedFile>,
}

/// The committed files of `group` and `topic` whose frames all lie before `closed_before` and
/// that hold fewer than `small_rows` rows, oldest first: what a compaction may rewrite.
pub async fn candidates(
    pool: &PgPool,
    group: &str,
    topic: &str,
    closed_before: DateTime<Utc>,
    small_rows: i64,
) -> Result<Vec<CompactedFile>, StoreError> {
    type Row = (String, i64, i64, i64, DateTime<Utc>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT path, xid::text::bigint, rows, bytes, min_event_time, max_event_time
           FROM lake_files
          WHERE consumer_group = $1 AND topic = $2 AND max_event_time < $3 AND rows < $4
          ORDER BY min_event_time, path",
    )
    .bind(group)
    .bind(topic)
    .bind(closed_before)
    .bind(small_rows)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list small lake files"))?;
    Ok(rows
        .into_iter()
        .map(|(path, xid, rows, bytes, min, max)| CompactedFile {
            path,
            xid,
            rows,
            bytes,
            min_event_time: min,
            max_event_time: max,
        })
        .collect())
}

fn to_json(files: &[CompactedFile]) -> Result<String, StoreError> {
    serde_json::to_string(files).map_err(|e| StoreError::Invalid(format!("compaction record: {e}")))
}

/// Swaps `replaced` for `added` in the manifest of `group` and `topic` in one transaction that
/// also records the swap, and returns its id; `None` (nothing changed) when one of `replaced`
/// is no longer committed (another compaction took it first). `added`'s `xid` is ignored.
pub async fn swap(
    pool: &PgPool,
    group: &str,
    topic: &str,
    replaced: &[CompactedFile],
    added: &[CompactedFile],
) -> Result<Option<i64>, StoreError> {
    let q = StoreError::query;
    let mut tx = pool.begin().await.map_err(q("begin a compaction"))?;
    let paths: Vec<&str> = replaced.iter().map(|f| f.path.as_str()).collect();
    let gone = sqlx::query(
        "DELETE FROM lake_files WHERE consumer_group = $1 AND topic = $2 AND path = ANY($3)",
    )
    .bind(group)
    .bind(topic)
    .bind(&paths)
    .execute(&mut *tx)
    .await
    .map_err(q("take compacted files out of lake_files"))?;
    if gone.rows_affected() != replaced.len() as u64 {
        // Rolled back on drop.
        return Ok(None);
    }
    let rows: i64 = added.iter().map(|f| f.rows).sum();
    let (id, xid): (i64, i64) = sqlx::query_as(
        "INSERT INTO lake_compactions (consumer_group, topic, replaced, added, rows, bytes_before, bytes_after)
         VALUES ($1, $2, $3::jsonb, '[]'::jsonb, $4, $5, $6)
         RETURNING id, xid::text::bigint",
    )
    .bind(group)
    .bind(topic)
    .bind(to_json(replaced)?)
    .bind(rows)
    .bind(replaced.iter().map(|f| f.bytes).sum::<i64>())
    .bind(added.iter().map(|f| f.bytes).sum::<i64>())
    .fetch_one(&mut *tx)
    .await
    .map_err(q("record a compaction"))?;
    let added: Vec<CompactedFile> = added
        .iter()
        .map(|f| CompactedFile { xid, ..f.clone() })
        .collect();
    sqlx::query("UPDATE lake_compactions SET added = $2::jsonb WHERE id = $1")
        .bind(id)
        .bind(to_json(&added)?)
        .execute(&mut *tx)
        .await
        .map_err(q("record a compaction"))?;
    let col = |f: fn(&CompactedFile) -> i64| added.iter().map(f).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO lake_files (path, consumer_group, topic, rows, bytes, min_event_time, max_event_time, compaction_id)
         SELECT path, $2, $3, rows, bytes, min_event_time, max_event_time, $8
           FROM unnest($1::text[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::timestamptz[])
             AS f(path, rows, bytes, min_event_time, max_event_time)",
    )
    .bind(added.iter().map(|f| f.path.as_str()).collect::<Vec<_>>())
    .bind(group)
    .bind(topic)
    .bind(col(|f| f.rows))
    .bind(col(|f| f.bytes))
    .bind(added.iter().map(|f| f.min_event_time).collect::<Vec<_>>())
    .bind(added.iter().map(|f| f.max_event_time).collect::<Vec<_>>())
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(q("put compacted files in lake_files"))?;
    sqlx::query(
        "INSERT INTO lake_retired (consumer_group, path, compaction_id)
         SELECT $1, path, $3 FROM unnest($2::text[]) AS r(path)",
    )
    .bind(group)
    .bind(&paths)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(q("record retired lake files"))?;
    tx.commit().await.map_err(q("commit a compaction"))?;
    Ok(Some(id))
}

/// The compactions of `group` and `topic` made by transactions with ids in `[from_xid,
/// horizon)`, in transaction order (see [`crate::offsets::manifest_since`]).
pub async fn since(
    pool: &PgPool,
    group: &str,
    topic: &str,
    from_xid: i64,
    horizon: i64,
) -> Result<Vec<Compaction>, StoreError> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT id, xid::text::bigint, replaced::text, added::text FROM lake_compactions
          WHERE consumer_group = $1 AND topic = $2
            AND xid >= $3::bigint::text::xid8 AND xid < $4::bigint::text::xid8
          ORDER BY xid",
    )
    .bind(group)
    .bind(topic)
    .bind(from_xid)
    .bind(horizon)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list compactions"))?;
    rows.into_iter()
        .map(|(id, xid, replaced, added)| {
            let parse = |text: &str| {
                serde_json::from_str::<Vec<CompactedFile>>(text).map_err(|e| {
                    StoreError::Invalid(format!("lake_compactions row {id} is not readable: {e}"))
                })
            };
            Ok(Compaction {
                id,
                xid,
                replaced: parse(&replaced)?,
                added: parse(&added)?,
            })
        })
        .collect()
}

/// A file a compaction retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// Path relative to the lake root.
    pub path: String,
    /// The compaction that retired it.
    pub compaction_id: i64,
    /// That compaction's transaction.
    pub compaction_xid: i64,
    /// When.
    pub retired_at: DateTime<Utc>,
}

/// The files compactions of `group` retired before `before`, oldest first.
pub async fn retired(
    pool: &PgPool,
    group: &str,
    before: DateTime<Utc>,
) -> Result<Vec<Retired>, StoreError> {
    let rows: Vec<(String, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT r.path, r.compaction_id, c.xid::text::bigint, r.retired_at
           FROM lake_retired r JOIN lake_compactions c ON c.id = r.compaction_id
          WHERE r.consumer_group = $1 AND r.retired_at < $2
          ORDER BY r.retired_at, r.path",
    )
    .bind(group)
    .bind(before)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("list retired lake files"))?;
    Ok(rows
        .into_iter()
        .map(
            |(path, compaction_id, compaction_xid, retired_at)| Retired {
                path,
                compaction_id,
                compaction_xid,
                retired_at,
            },
        )
        .collect())
}

/// Forgets retired files once their objects are deleted.
pub async fn forget_retired(pool: &PgPool, group: &str, paths: &[&str]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM lake_retired WHERE consumer_group = $1 AND path = ANY($2)")
        .bind(group)
        .bind(paths)
        .execute(pool)
        .await
        .map_err(StoreError::query("forget retired lake files"))?;
    Ok(())
}
