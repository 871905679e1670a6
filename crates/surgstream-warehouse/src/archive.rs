//! The procedure archive (`surgstream archive`, `surgstream restore`): finished procedures older
//! than the retention leave PostgreSQL — their row, their outcome and their status audit — for
//! the lake's `archive/`, as month-partitioned Parquet with every relational column:
//!
//! ```text
//! archive/surgical_procedures/month=2025-03/part-<run>.parquet
//! archive/procedure_outcomes/month=2025-03/part-<run>.parquet
//! archive/status_audit/month=2025-03/part-<run>.parquet
//! ```
//!
//! One batch (`--batch` procedures, so memory is bounded however many move) is one
//! transaction: the procedures are locked (`FOR UPDATE SKIP LOCKED`: an event for one of them
//! waits for the batch, and a second archiver takes others), their rows read, the objects
//! written, then — still in that transaction — the objects named in `archive_files`, each
//! procedure's index row written to `archived_procedures`, and the rows deleted. A crash before
//! the commit leaves objects that nothing names (swept, like the ingestor's orphans) and the rows
//! where they were; a rerun archives them again under a new run. Nothing is in both places.
//!
//! `archived_procedures` keeps, per procedure, where it went and what the warehouse's planner and
//! the event store need without opening the archive (times, status, `updated_at`s). `archive/`
//! holds exactly the archived rows: a restore inserts the rows back, deletes their index rows,
//! and replaces each object they were in by one without them (or drops it), in one transaction —
//! the new objects written first, the replaced ones deleted after the commit. Our readers still
//! take an object's rows only where the index names its run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int32Type, Int64Type};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use surgstream_lake::Lake;
use uuid::Uuid;

use crate::WarehouseError;
#[cfg(test)]
use crate::input::ARCHIVE_PROCEDURES;
use crate::input::{ARCHIVE, ARCHIVE_AUDIT, Kind, Table};

/// The archive's directory in the lake.
pub const ARCHIVE_DIR: &str = "archive";

/// Procedures per batch (one transaction, one object per table and month).
pub const DEFAULT_BATCH: usize = 2_000;

/// The statuses a procedure ends in: only these are archived.
pub const FINISHED: [&str; 3] = ["completed", "aborted", "cancelled"];

/// Each archived table, with how its rows name their procedure.
fn procedure_filter(table: &Table) -> &'static str {
    if table.source == ARCHIVE_AUDIT.source {
        "entity = 'procedure' AND entity_id = ANY($1)"
    } else {
        "procedure_id = ANY($1)"
    }
}

/// The column of an archived table that holds its procedure's id.
fn procedure_column(table: &Table) -> &'static str {
    if table.source == ARCHIVE_AUDIT.source {
        "entity_id"
    } else {
        "procedure_id"
    }
}

/// The name of an object that replaces one of `run`'s after a restore took rows out of it.
fn rewritten_path(table: &str, month_key: i32, run: Uuid) -> String {
    object_path(table, month_key, run)
        .replace(".parquet", &format!("-{}.parquet", Uuid::new_v4().simple()))
}

/// An archive object's name.
pub fn object_path(table: &str, month_key: i32, run: Uuid) -> String {
    format!(
        "{ARCHIVE_DIR}/{table}/month={:04}-{:02}/part-{}.parquet",
        month_key / 100,
        month_key % 100,
        run.simple()
    )
}

/// What `surgstream archive` did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ArchiveReport {
    /// Procedures moved out of PostgreSQL, with their outcomes and status audit rows.
    pub procedures: u64,
    pub outcomes: u64,
    pub audit_rows: u64,
    /// Batches committed, objects written and their bytes.
    pub batches: u64,
    pub files: u64,
    pub bytes: u64,
    /// Months the moved procedures belong to (`YYYY-MM`).
    pub months: BTreeSet<String>,
    /// Everything finished before this was due.
    pub cutoff: Option<DateTime<Utc>>,
    /// The archive's Iceberg tables that changed.
    pub iceberg: Vec<surgstream_iceberg::warehouse::SyncReport>,
    pub seconds: f64,
}

/// What `surgstream restore` brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// One procedure.
    Procedure(Uuid),
    /// Every archived procedure of a month (yyyymm).
    Month(i32),
}

/// What `surgstream restore` did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RestoreReport {
    pub procedures: u64,
    pub outcomes: u64,
    pub audit_rows: u64,
    /// Archive objects read; rewritten without the restored rows; deleted because nothing in
    /// them is archived any more.
    pub files_read: u64,
    pub files_rewritten: u64,
    pub files_deleted: Vec<String>,
    /// The archive's Iceberg tables that changed.
    pub iceberg: Vec<surgstream_iceberg::warehouse::SyncReport>,
    pub seconds: f64,
}

/// Moves procedures between PostgreSQL and the archive.
#[derive(Clone)]
pub struct Archiver {
    lake: Lake,
    pool: PgPool,
    batch: usize,
    /// The archive's Iceberg tables (`archive.surgical_procedures`, …) and how long their
    /// replaced snapshots are kept.
    iceberg: Option<(Arc<surgstream_iceberg::Tables>, std::time::Duration)>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver")
            .field("lake", &self.lake.url())
            .field("batch", &self.batch)
            .field("iceberg", &self.iceberg.is_some())
            .finish()
    }
}

impl Archiver {
    pub fn new(lake: Lake, pool: PgPool) -> Self {
        Self {
            lake,
            pool,
            batch: DEFAULT_BATCH,
            iceberg: None,
        }
    }

    /// Publishes the archive as Iceberg tables in `tables`' catalog after each run; replaced
    /// snapshots are kept for `retention`.
    pub fn with_iceberg(
        mut self,
        tables: surgstream_iceberg::Tables,
        retention: std::time::Duration,
    ) -> Self {
        self.iceberg = Some((Arc::new(tables), retention));
        self
    }

    /// Makes each Iceberg table of the archive list exactly the objects `archive_files` names
    /// (one snapshot per table that changed: an `append` after an archive, an `overwrite` after
    /// a restore; nothing when equal, so an interrupted run is finished here), and expires its
    /// snapshots older than the retention. The objects carry no field ids: the tables' name
    /// mapping matches their columns by name.
    pub async fn publish(
        &self,
    ) -> Result<Vec<surgstream_iceberg::warehouse::SyncReport>, WarehouseError> {
        use surgstream_iceberg::warehouse::{self as tables, ARCHIVE as FAMILY, WarehouseFile};
        let Some((iceberg, retention)) = &self.iceberg else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for table in ARCHIVE {
            let schema = object_schema(table);
            tables::prepare_in(&FAMILY, iceberg, table.source, &schema, true).await?;
            let files: Vec<WarehouseFile> = sqlx::query_as::<_, (String, i64, i64, i32)>(
                "SELECT path, rows, bytes, month_key FROM archive_files
                 WHERE table_name = $1 ORDER BY path",
            )
            .bind(table.source)
            .fetch_all(&self.pool)
            .await
            .map_err(WarehouseError::query("list the archive's objects"))?
            .into_iter()
            .map(|(path, rows, bytes, month)| WarehouseFile {
                path,
                rows,
                bytes,
                month_key: Some(month),
            })
            .collect();
            let (report, current) = tables::sync_in(&FAMILY, iceberg, table.source, &files).await?;
            tables::expire(iceberg, current, *retention).await?;
            if report.added + report.removed > 0 {
                out.push(report);
            }
        }
        Ok(out)
    }

    /// Procedures per transaction (at least 1).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Archives every procedure that finished (completed, aborted or cancelled) before
    /// `cutoff`: its end, or for one cancelled before it began, its last change.
    pub async fn archive(&self, cutoff: DateTime<Utc>) -> Result<ArchiveReport, WarehouseError> {
        let started = Instant::now();
        let mut report = ArchiveReport {
            cutoff: Some(cutoff),
            ..ArchiveReport::default()
        };
        while self.archive_batch(cutoff, &mut report).await? {}
        report.iceberg = self.publish().await?;
        report.seconds = started.elapsed().as_secs_f64();
        if report.procedures > 0 {
            tracing::info!(procedures = report.procedures, files = report.files, bytes = report.bytes,
                months = report.months.len(), %cutoff, "procedures archived");
        }
        Ok(report)
    }

    /// One batch; false when nothing was left to archive.
    async fn archive_batch(
        &self,
        cutoff: DateTime<Utc>,
        report: &mut ArchiveReport,
    ) -> Result<bool, WarehouseError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(WarehouseError::query("begin an archive batch"))?;
        let picked: Vec<(Uuid, i32)> = sqlx::query_as(
            "SELECT procedure_id,
                    (extract(year FROM coalesce(start_time, scheduled_start) AT TIME ZONE 'UTC') * 100
                     + extract(month FROM coalesce(start_time, scheduled_start) AT TIME ZONE 'UTC'))::int
             FROM surgical_procedures
             WHERE status = ANY($1) AND coalesce(end_time, updated_at) < $2
             ORDER BY procedure_id
             LIMIT $3
             FOR UPDATE SKIP LOCKED",
        )
        .bind(&FINISHED[..])
        .bind(cutoff)
        .bind(self.batch as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(WarehouseError::query("pick procedures to archive"))?;
        if picked.is_empty() {
            return Ok(false);
        }
        let ids: Vec<Uuid> = picked.iter().map(|(id, _)| *id).collect();
        let month_of: HashMap<String, i32> =
            picked.iter().map(|(id, m)| (id.to_string(), *m)).collect();
        let run = Uuid::new_v4();

        // The objects, one per table and month, written before anything is deleted.
        let mut files: Vec<(String, &'static str, i32, i64, i64)> = Vec::new();
        let mut counts = [0u64; 3];
        for (t, table) in ARCHIVE.iter().enumerate() {
            let batch = table
                .read_ids(&mut tx, procedure_filter(table), &ids)
                .await?;
            counts[t] = batch.num_rows() as u64;
            for (month, rows) in split_by_month(table, &batch, &month_of)? {
                let path = object_path(table.source, month, run);
                let bytes = encode(&path, &with_month_key(table, &rows, month)?)?;
                let len = bytes.len() as i64;
                self.lake.put(&path, bytes).await?;
                files.push((path, table.source, month, rows.num_rows() as i64, len));
            }
        }
        surgstream_proto::fault::point_at("archive_after_write", || run.to_string());

        for (path, table, month, rows, bytes) in &files {
            sqlx::query(
                "INSERT INTO archive_files (path, table_name, month_key, run, rows, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(path)
            .bind(table)
            .bind(month)
            .bind(run)
            .bind(rows)
            .bind(bytes)
            .execute(&mut *tx)
            .await
            .map_err(WarehouseError::query("name an archive object"))?;
        }
        let months: Vec<i32> = picked.iter().map(|(_, m)| *m).collect();
        sqlx::query(
            "INSERT INTO archived_procedures (procedure_id, robot_id, status, month_key, run,
                 start_time, end_time, updated_at, outcome_updated_at)
             SELECT p.procedure_id, p.robot_id, p.status, m.month_key, $3,
                    p.start_time, p.end_time, p.updated_at, o.updated_at
             FROM unnest($1::uuid[], $2::int[]) AS m(procedure_id, month_key)
             JOIN surgical_procedures p USING (procedure_id)
             LEFT JOIN procedure_outcomes o USING (procedure_id)",
        )
        .bind(&ids)
        .bind(&months)
        .bind(run)
        .execute(&mut *tx)
        .await
        .map_err(WarehouseError::query("index the archived procedures"))?;
        for table in ARCHIVE.iter().rev() {
            sqlx::query(&format!(
                "DELETE FROM {} WHERE {}",
                table.source,
                procedure_filter(table)
            ))
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(|source| WarehouseError::Postgres {
                what: format!("delete the archived rows of {}", table.source),
                source,
            })?;
        }
        surgstream_proto::fault::point_at("archive_before_commit", || run.to_string());
        tx.commit()
            .await
            .map_err(WarehouseError::query("commit an archive batch"))?;

        let bytes: i64 = files.iter().map(|f| f.4).sum();
        report.procedures += counts[0];
        report.outcomes += counts[1];
        report.audit_rows += counts[2];
        report.batches += 1;
        report.files += files.len() as u64;
        report.bytes += bytes as u64;
        report
            .months
            .extend(picked.iter().map(|(_, m)| crate::plan::label(*m)));
        ::metrics::counter!(ARCHIVED_PROCEDURES).increment(counts[0]);
        ::metrics::counter!(ARCHIVE_FILES_WRITTEN).increment(files.len() as u64);
        ::metrics::counter!(ARCHIVE_BYTES_WRITTEN).increment(bytes as u64);
        tracing::debug!(%run, procedures = counts[0], files = files.len(), "archive batch committed");
        Ok(true)
    }

    /// Brings archived procedures back into PostgreSQL, with their outcomes and status audit,
    /// in one transaction; each archive object that held them is replaced by one without them,
    /// or dropped when they were all it held.
    pub async fn restore(&self, what: Selection) -> Result<RestoreReport, WarehouseError> {
        let started = Instant::now();
        let mut report = RestoreReport::default();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(WarehouseError::query("begin a restore"))?;
        let index: Vec<(Uuid, i32, Uuid)> = match what {
            Selection::Procedure(id) => sqlx::query_as(
                "SELECT procedure_id, month_key, run FROM archived_procedures
                 WHERE procedure_id = $1 FOR UPDATE",
            )
            .bind(id),
            Selection::Month(m) => sqlx::query_as(
                "SELECT procedure_id, month_key, run FROM archived_procedures
                 WHERE month_key = $1 ORDER BY procedure_id FOR UPDATE",
            )
            .bind(m),
        }
        .fetch_all(&mut *tx)
        .await
        .map_err(WarehouseError::query("read archived_procedures"))?;
        if index.is_empty() {
            return Err(WarehouseError::Output {
                table: "archived_procedures".into(),
                reason: match what {
                    Selection::Procedure(id) => format!("procedure {id} is not archived"),
                    Selection::Month(m) => {
                        format!("no procedure of {} is archived", crate::plan::label(m))
                    }
                },
            });
        }
        let ids: Vec<Uuid> = index.iter().map(|(id, _, _)| *id).collect();
        let restoring: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
        let parts: BTreeSet<(Uuid, i32)> = index.iter().map(|(_, m, run)| (*run, *m)).collect();
        // Each object that held a restored procedure is replaced by one without it (or
        // dropped when nothing is left), so that archive/ holds exactly what is archived —
        // for a reader of the directory as for ours.
        let mut replaced: Vec<String> = Vec::new();
        for table in ARCHIVE {
            let mut rows = Vec::new();
            for (run, month) in &parts {
                let Some((path, batch)) = self.read_part(&mut tx, table, *run, *month).await?
                else {
                    continue;
                };
                report.files_read += 1;
                let ids = procedure_ids(table, &batch)?;
                let back: BooleanArray = ids
                    .iter()
                    .map(|id| Some(id.is_some_and(|id| restoring.contains(id))))
                    .collect();
                let stay = arrow::compute::not(&back).map_err(|e| WarehouseError::Input {
                    table: table.source,
                    column: "*",
                    reason: e.to_string(),
                })?;
                let filter = |mask: &BooleanArray| {
                    filter_record_batch(&batch, mask).map_err(|e| WarehouseError::Input {
                        table: table.source,
                        column: "*",
                        reason: e.to_string(),
                    })
                };
                rows.push(filter(&back)?);
                let rest = filter(&stay)?;
                if rest.num_rows() == 0 {
                    sqlx::query("DELETE FROM archive_files WHERE path = $1")
                        .bind(&path)
                        .execute(&mut *tx)
                        .await
                        .map_err(WarehouseError::query("drop an emptied archive object"))?;
                    report.files_deleted.push(path.clone());
                } else if rest.num_rows() < batch.num_rows() {
                    let new = rewritten_path(table.source, *month, *run);
                    let bytes = encode(&new, &rest)?;
                    let len = bytes.len() as i64;
                    self.lake.put(&new, bytes).await?;
                    sqlx::query(
                        "UPDATE archive_files SET path = $2, rows = $3, bytes = $4 WHERE path = $1",
                    )
                    .bind(&path)
                    .bind(&new)
                    .bind(rest.num_rows() as i64)
                    .bind(len)
                    .execute(&mut *tx)
                    .await
                    .map_err(WarehouseError::query("name a rewritten archive object"))?;
                    report.files_rewritten += 1;
                } else {
                    continue;
                }
                replaced.push(path);
            }
            let n = insert_rows(&mut tx, table, &rows).await?;
            match table.source {
                "surgical_procedures" => report.procedures += n,
                "procedure_outcomes" => report.outcomes += n,
                _ => report.audit_rows += n,
            }
        }
        if report.procedures != ids.len() as u64 {
            return Err(WarehouseError::Output {
                table: "surgical_procedures".into(),
                reason: format!(
                    "the archive holds {} of the {} procedures to restore: an archive object is missing",
                    report.procedures,
                    ids.len()
                ),
            });
        }
        sqlx::query("DELETE FROM archived_procedures WHERE procedure_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(WarehouseError::query("unindex the restored procedures"))?;
        surgstream_proto::fault::point("restore_before_commit");
        tx.commit()
            .await
            .map_err(WarehouseError::query("commit a restore"))?;
        // After the commit: a crash here leaves objects nothing names, which the sweep removes.
        report.iceberg = self.publish().await?;
        for path in &replaced {
            self.lake.delete(path).await?;
        }
        ::metrics::counter!(RESTORED_PROCEDURES).increment(report.procedures);
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            procedures = report.procedures,
            files_deleted = report.files_deleted.len(),
            "procedures restored"
        );
        Ok(report)
    }

    /// The object of `table` that archive `run` wrote for `month`, and its rows; None when
    /// there is none (a month without outcomes, say).
    async fn read_part(
        &self,
        conn: &mut sqlx::PgConnection,
        table: &Table,
        run: Uuid,
        month: i32,
    ) -> Result<Option<(String, RecordBatch)>, WarehouseError> {
        let Some(path) = part_path(conn, table, run, month).await? else {
            return Ok(None);
        };
        let batch = decode(&path, self.lake.get(&path).await?)?;
        Ok(Some((path, batch)))
    }
}

/// The object that holds `table`'s rows of archive `run` for `month`, if any.
async fn part_path(
    conn: &mut sqlx::PgConnection,
    table: &Table,
    run: Uuid,
    month: i32,
) -> Result<Option<String>, WarehouseError> {
    sqlx::query_scalar(
        "SELECT path FROM archive_files WHERE table_name = $1 AND run = $2 AND month_key = $3",
    )
    .bind(table.source)
    .bind(run)
    .bind(month)
    .fetch_optional(conn)
    .await
    .map_err(WarehouseError::query("look up an archive object"))
}

impl crate::Warehouse {
    /// `live` (PostgreSQL's rows of an input table) and the archived rows of the same scope
    /// (`month`, or every month): the warehouse sees a procedure wherever it lives.
    pub(crate) async fn with_archived(
        &self,
        input: &Table,
        archived: &Table,
        live: RecordBatch,
        month: Option<i32>,
    ) -> Result<RecordBatch, WarehouseError> {
        let old = archived_input(&self.pool, &self.lake, archived, input, month).await?;
        if old.num_rows() == 0 {
            return Ok(live);
        }
        concat_batches(&input.schema(), [&live, &old]).map_err(|e| WarehouseError::Input {
            table: input.source,
            column: "*",
            reason: e.to_string(),
        })
    }
}

/// The archived rows of `table` that are live (their procedure's index row names this run), read
/// from every object of `month` (None: every month) and projected to `input` (the warehouse's
/// view of the table). Empty when nothing is archived.
pub(crate) async fn archived_input(
    pool: &PgPool,
    lake: &Lake,
    table: &Table,
    input: &Table,
    month: Option<i32>,
) -> Result<RecordBatch, WarehouseError> {
    let files: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT f.path, f.run FROM archive_files f
         WHERE f.table_name = $1 AND ($2::int IS NULL OR f.month_key = $2)
           AND EXISTS (SELECT 1 FROM archived_procedures a
                       WHERE a.run = f.run AND a.month_key = f.month_key)
         ORDER BY f.path",
    )
    .bind(table.source)
    .bind(month)
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query("list the archive's objects"))?;
    if files.is_empty() {
        return Ok(RecordBatch::new_empty(input.schema()));
    }
    let live: HashSet<(String, Uuid)> = sqlx::query_as::<_, (String, Uuid)>(
        "SELECT procedure_id::text, run FROM archived_procedures
         WHERE ($1::int IS NULL OR month_key = $1)",
    )
    .bind(month)
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query("read archived_procedures"))?
    .into_iter()
    .collect();
    let mut out = Vec::with_capacity(files.len());
    for (path, run) in files {
        let batch = decode(&path, lake.get(&path).await?)?;
        out.push(input.project_archived(&keep_live(table, &batch, run, &live)?)?);
    }
    concat_batches(&input.schema(), &out).map_err(|e| WarehouseError::Input {
        table: input.source,
        column: "*",
        reason: e.to_string(),
    })
}

/// One archived procedure's rows, as PostgreSQL would print them (`row_to_json`): its
/// procedure, outcome (if any) and status audit, oldest first. None when it is not archived.
pub(crate) async fn archived_case(
    pool: &PgPool,
    lake: &Lake,
    procedure: Uuid,
) -> Result<Option<[Vec<Map<String, Value>>; 3]>, WarehouseError> {
    let Some((month, run)): Option<(i32, Uuid)> =
        sqlx::query_as("SELECT month_key, run FROM archived_procedures WHERE procedure_id = $1")
            .bind(procedure)
            .fetch_optional(pool)
            .await
            .map_err(WarehouseError::query("read archived_procedures"))?
    else {
        return Ok(None);
    };
    let live = HashSet::from([(procedure.to_string(), run)]);
    let mut out: [Vec<Map<String, Value>>; 3] = Default::default();
    let mut conn = pool
        .acquire()
        .await
        .map_err(WarehouseError::query("connect"))?;
    for (t, table) in ARCHIVE.iter().enumerate() {
        let Some(path) = part_path(&mut conn, table, run, month).await? else {
            continue;
        };
        let batch = decode(&path, lake.get(&path).await?)?;
        let rows = keep_live(table, &batch, run, &live)?;
        let order = if table.source == ARCHIVE_AUDIT.source {
            " ORDER BY occurred_at, audit_id"
        } else {
            ""
        };
        let text: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(r)::text FROM jsonb_populate_recordset(NULL::{}, $1) r{order}",
            table.source
        ))
        .bind(to_json(table, &rows)?)
        .fetch_all(pool)
        .await
        .map_err(WarehouseError::query("print an archived row"))?;
        out[t] = text
            .iter()
            .map(|s| {
                serde_json::from_str(s).map_err(|e| WarehouseError::Output {
                    table: table.source.into(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(Some(out))
}

/// The rows of `batch` whose procedure is archived in `run`.
fn keep_live(
    table: &Table,
    batch: &RecordBatch,
    run: Uuid,
    live: &HashSet<(String, Uuid)>,
) -> Result<RecordBatch, WarehouseError> {
    let ids = procedure_ids(table, batch)?;
    let mask: BooleanArray = ids
        .iter()
        .map(|id| Some(id.is_some_and(|id| live.contains(&(id.to_owned(), run)))))
        .collect();
    filter_record_batch(batch, &mask).map_err(|e| WarehouseError::Input {
        table: table.source,
        column: "*",
        reason: e.to_string(),
    })
}

fn procedure_ids<'b>(
    table: &Table,
    batch: &'b RecordBatch,
) -> Result<&'b StringArray, WarehouseError> {
    let column = procedure_column(table);
    batch
        .column_by_name(column)
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| WarehouseError::Input {
            table: table.source,
            column: procedure_column(table),
            reason: "missing, or not text".into(),
        })
}

/// The Arrow schema of an archive object: the table's columns, then `month_key` (yyyymm, the
/// Iceberg tables' partition; the directory says it too, as `month=YYYY-MM`).
fn object_schema(table: &Table) -> arrow::datatypes::Schema {
    let mut fields: Vec<arrow::datatypes::FieldRef> = table.schema().fields().to_vec();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        MONTH_KEY,
        arrow::datatypes::DataType::Int32,
        false,
    )));
    arrow::datatypes::Schema::new(fields)
}

/// The partition column of the archive's objects.
const MONTH_KEY: &str = "month_key";

/// `rows` (of one month) with their `month_key` column: an archive object's rows.
fn with_month_key(
    table: &Table,
    rows: &RecordBatch,
    month: i32,
) -> Result<RecordBatch, WarehouseError> {
    let mut columns = rows.columns().to_vec();
    columns.push(Arc::new(arrow::array::Int32Array::from(vec![
        month;
        rows.num_rows(
        )
    ])));
    RecordBatch::try_new(Arc::new(object_schema(table)), columns).map_err(|e| {
        WarehouseError::Input {
            table: table.source,
            column: MONTH_KEY,
            reason: e.to_string(),
        }
    })
}

/// `batch`'s rows by their procedure's month.
fn split_by_month(
    table: &Table,
    batch: &RecordBatch,
    month_of: &HashMap<String, i32>,
) -> Result<BTreeMap<i32, RecordBatch>, WarehouseError> {
    let ids = procedure_ids(table, batch)?;
    let months: Vec<Option<i32>> = ids
        .iter()
        .map(|id| id.and_then(|id| month_of.get(id).copied()))
        .collect();
    let distinct: BTreeSet<i32> = months.iter().flatten().copied().collect();
    let mut out = BTreeMap::new();
    for month in distinct {
        let mask: BooleanArray = months.iter().map(|m| Some(*m == Some(month))).collect();
        let rows = filter_record_batch(batch, &mask).map_err(|e| WarehouseError::Input {
            table: table.source,
            column: "*",
            reason: e.to_string(),
        })?;
        out.insert(month, rows);
    }
    Ok(out)
}

/// The writer settings of archive objects: cold, read rarely and whole — ZSTD.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("surgstream {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .build()
}

fn encode(path: &str, batch: &RecordBatch) -> Result<Bytes, WarehouseError> {
    let err = |source| surgstream_lake::LakeError::Encode {
        path: path.to_owned(),
        source,
    };
    let mut buf = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(writer_properties())).map_err(err)?;
    writer.write(batch).map_err(err)?;
    writer.close().map_err(err)?;
    Ok(Bytes::from(buf))
}

fn decode(path: &str, bytes: Bytes) -> Result<RecordBatch, WarehouseError> {
    let err = |e: String| WarehouseError::Input {
        table: "archive",
        column: "*",
        reason: format!("{path}: {e}"),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| err(e.to_string()))?
        .build()
        .map_err(|e| err(e.to_string()))?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    concat_batches(&schema, &batches).map_err(|e| err(e.to_string()))
}

/// Inserts archived rows back into their table (`jsonb_populate_recordset`: PostgreSQL's own
/// input functions parse every value); returns how many.
async fn insert_rows(
    conn: &mut sqlx::PgConnection,
    table: &Table,
    batches: &[RecordBatch],
) -> Result<u64, WarehouseError> {
    let mut n = 0;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let list = columns.join(", ");
        let done = sqlx::query(&format!(
            "INSERT INTO {t} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{t}, $1)",
            t = table.source
        ))
        .bind(to_json(table, batch)?)
        .execute(&mut *conn)
        .await
        .map_err(|source| WarehouseError::Postgres {
            what: format!("restore rows of {}", table.source),
            source,
        })?;
        n += done.rows_affected();
    }
    Ok(n)
}

/// The rows as a JSON array of objects, each value in a form PostgreSQL's input functions read
/// back exactly (timestamps RFC 3339 to the microsecond, decimals as text).
fn to_json(table: &Table, batch: &RecordBatch) -> Result<Value, WarehouseError> {
    let mut rows: Vec<Map<String, Value>> = vec![Map::new(); batch.num_rows()];
    for (name, kind) in table.columns {
        let bad = |reason: String| WarehouseError::Input {
            table: table.source,
            column: name,
            reason,
        };
        let a = batch
            .column_by_name(name)
            .ok_or_else(|| bad("not in the archive".into()))?;
        let a: Arc<dyn Array> = arrow::compute::cast(a, &crate::input::arrow_type(*kind))
            .map_err(|e| bad(e.to_string()))?;
        for (i, row) in rows.iter_mut().enumerate() {
            let v = if a.is_null(i) {
                Value::Null
            } else {
                match kind {
                    Kind::Text | Kind::UuidKey(_) => Value::from(a.as_string::<i32>().value(i)),
                    Kind::Int => Value::from(a.as_primitive::<Int32Type>().value(i)),
                    Kind::BigInt => Value::from(a.as_primitive::<Int64Type>().value(i)),
                    Kind::Bool => Value::from(a.as_boolean().value(i)),
                    Kind::Decimal(..) => {
                        Value::from(a.as_primitive::<Decimal128Type>().value_as_string(i))
                    }
                    Kind::Timestamp => {
                        let t = a
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .map(|t| t.value(i))
                            .ok_or_else(|| bad("not a timestamp".into()))?;
                        let t = DateTime::from_timestamp_micros(t)
                            .ok_or_else(|| bad(format!("timestamp {t} out of range")))?;
                        Value::from(t.to_rfc3339_opts(SecondsFormat::Micros, true))
                    }
                    Kind::Date => {
                        let d = a
                            .as_primitive::<Date32Type>()
                            .value_as_date(i)
                            .ok_or_else(|| bad("date out of range".into()))?;
                        Value::from(d.to_string())
                    }
                }
            };
            row.insert((*name).to_owned(), v);
        }
    }
    Ok(Value::Array(rows.into_iter().map(Value::Object).collect()))
}

/// Metric names.
pub const ARCHIVED_PROCEDURES: &str = "surgstream_archive_procedures_total";
pub const ARCHIVE_FILES_WRITTEN: &str = "surgstream_archive_files_written_total";
pub const ARCHIVE_BYTES_WRITTEN: &str = "surgstream_archive_bytes_written_total";
pub const RESTORED_PROCEDURES: &str = "surgstream_archive_procedures_restored_total";
/// Runs of `ingest --archive-after`, by result (ok, error).
pub const ARCHIVE_RUNS: &str = "surgstream_archive_runs_total";

/// Describes the archive's metrics to the Prometheus exporter.
pub fn describe() {
    use metrics::{Unit, describe_counter};
    describe_counter!(
        ARCHIVED_PROCEDURES,
        Unit::Count,
        "Procedures moved from PostgreSQL to archive/ (with their outcomes and status audit)."
    );
    describe_counter!(
        ARCHIVE_FILES_WRITTEN,
        Unit::Count,
        "Archive objects committed (one per table and month of each batch)."
    );
    describe_counter!(
        ARCHIVE_BYTES_WRITTEN,
        Unit::Bytes,
        "Bytes of the archive objects committed."
    );
    describe_counter!(
        RESTORED_PROCEDURES,
        Unit::Count,
        "Archived procedures brought back into PostgreSQL by `surgstream restore`."
    );
    describe_counter!(
        ARCHIVE_RUNS,
        Unit::Count,
        "Runs of ingest --archive-after, by result (ok, error: tried again at the next interval)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_by_table_month_and_run() {
        let run = Uuid::from_u128(0xabc);
        assert_eq!(
            object_path("surgical_procedures", 202503, run),
            "archive/surgical_procedures/month=2025-03/part-00000000000000000000000000000abc.parquet"
        );
    }

    #[test]
    fn the_ids_of_a_table_are_split_by_their_procedures_month() {
        let batch = RecordBatch::try_from_iter([(
            "procedure_id",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                Some("a"),
                None,
            ])) as Arc<dyn Array>,
        )])
        .expect("test value");
        let months = HashMap::from([("a".to_owned(), 202501), ("b".to_owned(), 202502)]);
        let split = split_by_month(&ARCHIVE_PROCEDURES, &batch, &months).expect("test value");
        let sizes: Vec<(i32, usize)> = split.iter().map(|(m, b)| (*m, b.num_rows())).collect();
        assert_eq!(sizes, vec![(202501, 2), (202502, 1)]);
    }
}
