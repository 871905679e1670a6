//! The warehouse: the data model's third storage leg. A star schema (`dim_robot`,
//! `dim_facility`, `dim_surgeon`, `dim_date`, `fact_procedure`, `fact_maintenance`,
//! `fact_robot_day`) built by Apache DataFusion from the SQL files in `warehouse/` over the
//! lake's committed files and the relational tables, written as month-partitioned Parquet under
//! `warehouse/` in the lake's object store and loaded into PostgreSQL's `warehouse` schema.
//!
//! A refresh is incremental and idempotent: [`plan`] digests each month's inputs and rebuilds
//! only the months whose digest changed; each month is replaced whole (objects overwritten
//! atomically, rows in one transaction with the month's state row), so a crash leaves the last
//! complete version readable and the next refresh finishes the job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Date32Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Serialize;
use sqlx::PgPool;
use surgstream_lake::Lake;
use surgstream_lake::schema::telemetry_schema;

pub mod answers;
pub mod archive;
pub mod export;
pub mod fresh;
pub mod input;
pub mod output;
pub mod plan;
mod publish;
pub mod sql;

pub use plan::{Month, Plan};
use publish::Iceberg;

use crate::input::{
    ARCHIVE_OUTCOMES, ARCHIVE_PROCEDURES, MAINTENANCE, OUTCOMES, PROCEDURES, ROBOTS,
};

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("PostgreSQL: cannot {what}: {source}")]
    Postgres {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{table}.{column}: {reason}")]
    Input {
        table: &'static str,
        column: &'static str,
        reason: String,
    },
    #[error("warehouse/{file}: {source}")]
    Sql {
        file: &'static str,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    #[error("DataFusion: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    #[error("writing warehouse.{table}: {reason}")]
    Output { table: String, reason: String },
    #[error("the lake: {0}")]
    Lake(#[from] surgstream_lake::LakeError),
    #[error("the warehouse's Iceberg tables: {0}")]
    Iceberg(#[from] surgstream_iceberg::IcebergError),
    #[error(
        "warehouse/{file} put month_key {found} in month {month}: the SQL's month and the planner's disagree"
    )]
    WrongMonth {
        file: &'static str,
        month: String,
        found: i32,
    },
}

impl WarehouseError {
    pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Postgres {
            what: what.to_owned(),
            source,
        }
    }
}

/// What one refresh did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RefreshReport {
    /// Months rebuilt (`YYYY-MM`).
    pub months: Vec<String>,
    /// Months removed (no input refers to them any more).
    pub removed: Vec<String>,
    /// Whether the dimension tables were rebuilt.
    pub dimensions: bool,
    /// Rows written, per table, over the rebuilt parts.
    pub rows: Vec<(String, u64)>,
    /// Lake files and telemetry rows read.
    pub files_scanned: u64,
    pub frames_scanned: u64,
    /// The Iceberg tables that changed (files added and removed by their snapshot).
    pub iceberg: Vec<surgstream_iceberg::warehouse::SyncReport>,
    /// Snapshots of the warehouse's Iceberg tables expired, and retired files deleted.
    pub iceberg_snapshots_expired: usize,
    pub iceberg_retired_deleted: usize,
    /// Objects a refresh that died wrote for them, deleted.
    pub iceberg_orphans_deleted: usize,
    pub seconds: f64,
}

impl RefreshReport {
    fn add_rows(&mut self, table: &str, n: usize) {
        match self.rows.iter_mut().find(|(t, _)| t == table) {
            Some((_, r)) => *r += n as u64,
            None => self.rows.push((table.to_owned(), n as u64)),
        }
    }

    /// Whether the refresh changed anything.
    pub fn changed(&self) -> bool {
        !self.months.is_empty() || !self.removed.is_empty() || self.dimensions
    }
}

/// Key of the PostgreSQL advisory lock one refresh at a time holds ("surgstream-warehouse").
const LOCK_KEY: i64 = 0x5375_7267_5748_0001;

/// The warehouse over one lake and one database.
#[derive(Debug, Clone)]
pub struct Warehouse {
    lake: Lake,
    pool: PgPool,
    group: String,
    memory_limit: usize,
    iceberg: Option<Iceberg>,
}

/// How long a warehouse table's snapshot, and the files only it lists, are kept after a newer
/// one replaced it: what a reader's query may take. Older versions are not kept for time
/// travel: the warehouse is rebuilt from its inputs at will.
pub const ICEBERG_RETENTION: Duration = Duration::from_secs(3600);

/// Name the lake's object store is registered under in DataFusion.
const LAKE_URL: &str = "surgstream-lake://lake/";

impl Warehouse {
    /// The warehouse of the lake files `group` committed, built within `memory_limit` bytes
    /// of DataFusion's working memory.
    pub fn new(lake: Lake, pool: PgPool, group: &str, memory_limit: usize) -> Self {
        Self {
            lake,
            pool,
            group: group.to_owned(),
            memory_limit,
            iceberg: None,
        }
    }

    /// Publishes the star schema as Iceberg tables too (`warehouse.fact_procedure`, … in the
    /// catalog of `tables`), each rebuilt part a new snapshot; a replaced snapshot and the
    /// files only it lists are kept `retention` (at least).
    pub fn with_iceberg(mut self, tables: surgstream_iceberg::Tables, retention: Duration) -> Self {
        self.iceberg = Some(Iceberg { tables, retention });
        self
    }

    /// Refreshes the warehouse, waiting for a refresh already running elsewhere to end.
    pub async fn refresh(&self) -> Result<RefreshReport, WarehouseError> {
        self.refresh_locked(true)
            .await
            .map(|r| r.unwrap_or_default())
    }

    /// Refreshes the warehouse unless another refresh holds the lock (then `None`).
    pub async fn try_refresh(&self) -> Result<Option<RefreshReport>, WarehouseError> {
        self.refresh_locked(false).await
    }

    async fn refresh_locked(&self, wait: bool) -> Result<Option<RefreshReport>, WarehouseError> {
        let mut lock = self
            .pool
            .acquire()
            .await
            .map_err(WarehouseError::query("connect"))?;
        if wait {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(LOCK_KEY)
                .execute(&mut *lock)
                .await
                .map_err(WarehouseError::query("take the warehouse lock"))?;
        } else {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut *lock)
                .await
                .map_err(WarehouseError::query("take the warehouse lock"))?;
            if !got {
                return Ok(None);
            }
        }
        let result = self.refresh_inner().await;
        // The lock goes with the connection if this fails.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *lock)
            .await;
        result.map(Some)
    }

    async fn refresh_inner(&self) -> Result<RefreshReport, WarehouseError> {
        let started = Instant::now();
        // Publishing to Iceberg, or starting to, rebuilds every part once: its files must exist.
        let version = match self.iceberg {
            Some(_) => format!("{}+iceberg", sql::version()),
            None => sql::version(),
        };
        let plan = plan::plan(&self.pool, &self.group, &version).await?;
        let mut report = RefreshReport::default();
        for month in &plan.months {
            self.build_month(month, &mut report).await?;
            report.months.push(month.label());
        }
        for label in &plan.stale {
            self.remove_month(label).await?;
            report.removed.push(label.clone());
        }
        if let Some(fingerprint) = &plan.dimensions {
            self.build_dimensions(fingerprint, &mut report).await?;
            report.dimensions = true;
        }
        if let Some(iceberg) = &self.iceberg {
            self.publish_iceberg(iceberg, &mut report).await?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn context(&self) -> Result<SessionContext, WarehouseError> {
        // A fair pool: each sort and aggregation that can spill gets its share, so that no
        // sorter takes the whole pool and leaves its own merge none (the greedy pool failed a
        // 59 M-frame month with "Resources exhausted" in ExternalSorterMerge).
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(self.memory_limit)))
            .build_arc()?;
        let config = SessionConfig::new()
            .with_information_schema(false)
            // Kept for merging what a sort spilled: a few sorted runs at a time.
            .with_sort_spill_reservation_bytes((self.memory_limit / 16).max(4 << 20));
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = url::Url::parse(LAKE_URL).map_err(|e| {
            WarehouseError::Engine(datafusion::error::DataFusionError::External(Box::new(e)))
        })?;
        ctx.register_object_store(&url, self.lake.store().clone());
        Ok(ctx)
    }

    /// Rebuilds the three fact tables of `month` and replaces them.
    async fn build_month(
        &self,
        month: &Month,
        report: &mut RefreshReport,
    ) -> Result<(), WarehouseError> {
        let ctx = self.context()?;
        let in_month = "(extract(year FROM coalesce(start_time, scheduled_start) AT TIME ZONE 'UTC') * 100 \
             + extract(month FROM coalesce(start_time, scheduled_start) AT TIME ZONE 'UTC'))::int = $1";
        let procedures = PROCEDURES
            .read(&self.pool, in_month, Some(month.key))
            .await?;
        let procedures = self
            .with_archived(
                &PROCEDURES,
                &ARCHIVE_PROCEDURES,
                procedures,
                Some(month.key),
            )
            .await?;
        let outcomes = OUTCOMES
            .read(
                &self.pool,
                &format!("procedure_id IN (SELECT procedure_id FROM surgical_procedures WHERE {in_month})"),
                Some(month.key),
            )
            .await?;
        let outcomes = self
            .with_archived(&OUTCOMES, &ARCHIVE_OUTCOMES, outcomes, Some(month.key))
            .await?;
        let maintenance = MAINTENANCE
            .read(
                &self.pool,
                "(extract(year FROM maintenance_date) * 100 + extract(month FROM maintenance_date))::int = $1",
                Some(month.key),
            )
            .await?;
        let robots = ROBOTS.read(&self.pool, "true", None).await?;
        register(&ctx, PROCEDURES.name, procedures)?;
        register(&ctx, OUTCOMES.name, outcomes)?;
        register(&ctx, MAINTENANCE.name, maintenance)?;
        register(&ctx, ROBOTS.name, robots)?;

        let files = match month.window {
            Some(w) => plan::lake_files(&self.pool, &self.group, w).await?,
            None => Vec::new(),
        };
        report.files_scanned += files.len() as u64;
        report.frames_scanned += files.iter().map(|f| f.2.max(0) as u64).sum::<u64>();
        self.register_telemetry(&ctx, &files).await?;

        let label = month.label();
        let agg = run(&ctx, sql::TELEMETRY_AGG).await?;
        register(&ctx, "procedure_telemetry_agg", agg)?;
        let mut built = Vec::new();
        for step in [
            sql::FACT_PROCEDURE,
            sql::FACT_MAINTENANCE,
            sql::FACT_ROBOT_DAY,
        ] {
            let batch = run(&ctx, step).await?;
            check_month(step.file, &batch, month.key, &label)?;
            register(&ctx, step.table, batch.clone())?;
            built.push((step.table, batch));
        }

        let written = self.write(&built, Some(&label), Some(month.key)).await?;
        surgstream_proto::fault::point_at("warehouse_after_write", || label.clone());
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(WarehouseError::query("begin"))?;
        let mut rows = 0;
        for (table, batch) in &built {
            output::replace_rows(&mut tx, table, Some(month.key), batch).await?;
            report.add_rows(table, batch.num_rows());
            rows += batch.num_rows();
        }
        if self.iceberg.is_some() {
            output::record_iceberg(&mut tx, &label, Some(month.key), &written).await?;
        }
        let frames: i64 = files.iter().map(|f| f.2).sum();
        save_state(&mut tx, &label, &month.fingerprint, rows, frames).await?;
        tx.commit()
            .await
            .map_err(WarehouseError::query("commit a month"))?;
        tracing::info!(month = %label, rows, files = files.len(), frames, "warehouse month rebuilt");
        Ok(())
    }

    /// Registers `procedure_telemetry`: the committed files, read through the lake's store.
    async fn register_telemetry(
        &self,
        ctx: &SessionContext,
        files: &[(String, i64, i64)],
    ) -> Result<(), WarehouseError> {
        let schema = telemetry_schema();
        if files.is_empty() {
            let empty = MemTable::try_new(schema, vec![vec![]])?;
            ctx.register_table(sql::TELEMETRY, Arc::new(empty))?;
            return Ok(());
        }
        let urls = files
            .iter()
            .map(|(path, _, _)| ListingTableUrl::parse(format!("{LAKE_URL}{path}")))
            .collect::<Result<Vec<_>, _>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        ctx.register_table(sql::TELEMETRY, Arc::new(ListingTable::try_new(config)?))?;
        Ok(())
    }

    /// Removes a month no input refers to any more: its objects first, then its rows and state
    /// row in one transaction, so that a crash in between leaves the state row, and the next
    /// refresh finds the month stale again and finishes.
    async fn remove_month(&self, label: &str) -> Result<(), WarehouseError> {
        let key = label.replace('-', "").parse::<i32>().unwrap_or(0);
        for step in sql::FACTS {
            self.lake
                .delete(&output::object_name(step.table, Some(label)))
                .await?;
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(WarehouseError::query("begin"))?;
        for step in sql::FACTS {
            sqlx::query(&format!(
                "DELETE FROM warehouse.{} WHERE month_key = $1",
                step.table
            ))
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(WarehouseError::query("delete a month"))?;
        }
        if self.iceberg.is_some() {
            output::retire_iceberg(&mut tx, label).await?;
        }
        sqlx::query("DELETE FROM warehouse.refresh_state WHERE part = $1")
            .bind(label)
            .execute(&mut *tx)
            .await
            .map_err(WarehouseError::query("delete a month's state"))?;
        tx.commit()
            .await
            .map_err(WarehouseError::query("commit a month's removal"))?;
        Ok(())
    }

    /// Rebuilds and replaces the four dimension tables.
    async fn build_dimensions(
        &self,
        fingerprint: &str,
        report: &mut RefreshReport,
    ) -> Result<(), WarehouseError> {
        let ctx = self.context()?;
        register(
            &ctx,
            ROBOTS.name,
            ROBOTS.read(&self.pool, "true", None).await?,
        )?;
        let procedures = PROCEDURES.read(&self.pool, "true", None).await?;
        register(
            &ctx,
            PROCEDURES.name,
            self.with_archived(&PROCEDURES, &ARCHIVE_PROCEDURES, procedures, None)
                .await?,
        )?;
        register(
            &ctx,
            MAINTENANCE.name,
            MAINTENANCE.read(&self.pool, "true", None).await?,
        )?;
        register(&ctx, "calendar", self.calendar().await?)?;
        let mut built = Vec::new();
        for step in sql::DIMENSIONS {
            built.push((step.table, run(&ctx, step).await?));
        }
        let written = self.write(&built, None, None).await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(WarehouseError::query("begin"))?;
        let mut rows = 0;
        for (table, batch) in &built {
            output::replace_rows(&mut tx, table, None, batch).await?;
            report.add_rows(table, batch.num_rows());
            rows += batch.num_rows();
        }
        if self.iceberg.is_some() {
            output::record_iceberg(&mut tx, plan::DIMENSIONS, None, &written).await?;
        }
        save_state(&mut tx, plan::DIMENSIONS, fingerprint, rows, 0).await?;
        tx.commit()
            .await
            .map_err(WarehouseError::query("commit the dimensions"))?;
        Ok(())
    }

    /// Every day from the first to the last any table refers to (UTC).
    async fn calendar(&self) -> Result<RecordBatch, WarehouseError> {
        let (first, last): (Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
            "SELECT min(d), max(d) FROM (
                 SELECT (coalesce(start_time, scheduled_start) AT TIME ZONE 'UTC')::date AS d FROM surgical_procedures
                 UNION ALL SELECT maintenance_date FROM robot_maintenance_logs
                 UNION ALL SELECT next_maintenance_date FROM robot_maintenance_logs
                 UNION ALL SELECT installation_date FROM surgical_robots
             ) days",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(WarehouseError::query("find the calendar's first and last day"))?;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let days: Vec<i32> = match first.zip(last) {
            Some((a, b)) => {
                let a = (a - epoch).num_days() as i32;
                let b = (b - epoch).num_days() as i32;
                (a..=b).collect()
            }
            None => Vec::new(),
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            "day",
            DataType::Date32,
            false,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(Date32Array::from(days))]).map_err(|e| {
            WarehouseError::Output {
                table: "calendar".to_owned(),
                reason: e.to_string(),
            }
        })
    }

    /// The database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn register(ctx: &SessionContext, name: &str, batch: RecordBatch) -> Result<(), WarehouseError> {
    ctx.deregister_table(name)?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

/// Runs one SQL file and gathers its result.
async fn run(ctx: &SessionContext, step: sql::Step) -> Result<RecordBatch, WarehouseError> {
    let failed = |source| WarehouseError::Sql {
        file: step.file,
        source,
    };
    let df = ctx.sql(step.text).await.map_err(failed)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(failed)?;
    concat_batches(&schema, &batches).map_err(|e| WarehouseError::Output {
        table: step.table.to_owned(),
        reason: e.to_string(),
    })
}

/// Every row of a month's fact must carry that month's key.
fn check_month(
    file: &'static str,
    batch: &RecordBatch,
    key: i32,
    label: &str,
) -> Result<(), WarehouseError> {
    let Some(col) = batch.column_by_name("month_key") else {
        return Ok(());
    };
    let Some(keys) = col.as_primitive_opt::<Int32Type>() else {
        return Err(WarehouseError::Output {
            table: file.to_owned(),
            reason: format!("month_key is {}, not INT", col.data_type()),
        });
    };
    match keys.iter().flatten().find(|k| *k != key) {
        Some(found) => Err(WarehouseError::WrongMonth {
            file,
            month: label.to_owned(),
            found,
        }),
        None if keys.null_count() > 0 => Err(WarehouseError::WrongMonth {
            file,
            month: label.to_owned(),
            found: 0,
        }),
        None => Ok(()),
    }
}

async fn save_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    part: &str,
    fingerprint: &str,
    rows: usize,
    frames: i64,
) -> Result<(), WarehouseError> {
    sqlx::query(
        "INSERT INTO warehouse.refresh_state (part, fingerprint, rows, frames, refreshed_at)
         VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (part) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, rows = EXCLUDED.rows,
             frames = EXCLUDED.frames, refreshed_at = EXCLUDED.refreshed_at",
    )
    .bind(part)
    .bind(fingerprint)
    .bind(rows as i64)
    .bind(frames)
    .execute(&mut **tx)
    .await
    .map_err(WarehouseError::query("record a part's state"))?;
    Ok(())
}

/// How long to wait between refreshes in a long-running mode, at least.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
