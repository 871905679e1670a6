//! The warehouse's outputs beside PostgreSQL's rows: each built table as a plain Parquet object
//! (replaced in place, for readers of the directory), and with Iceberg a new object of the
//! table's, which [`Warehouse::publish_iceberg`] makes the table list once PostgreSQL recorded
//! it.

use std::time::Duration;

use arrow::record_batch::RecordBatch;

use crate::{RefreshReport, Warehouse, WarehouseError, output, sql};

/// The Iceberg tables the warehouse publishes to.
#[derive(Debug, Clone)]
pub(crate) struct Iceberg {
    pub(crate) tables: surgstream_iceberg::Tables,
    pub(crate) retention: Duration,
}

impl Warehouse {
    /// Writes each built table: its plain object (replaced in place), and with Iceberg a new
    /// object of the table's (the same bytes, with the table's field ids), not yet recorded.
    pub(crate) async fn write(
        &self,
        built: &[(&'static str, RecordBatch)],
        label: Option<&str>,
        month_key: Option<i32>,
    ) -> Result<Vec<output::IcebergFile>, WarehouseError> {
        let mut files = Vec::new();
        for (table, batch) in built {
            let Some(iceberg) = &self.iceberg else {
                let bytes = output::parquet(table, batch)?;
                self.lake
                    .put(&output::object_name(table, label), bytes)
                    .await?;
                continue;
            };
            let ids = surgstream_iceberg::warehouse::prepare(
                &iceberg.tables,
                table,
                &batch.schema(),
                month_key.is_some(),
            )
            .await?;
            let batch = output::with_field_ids(table, batch, &ids)?;
            let bytes = output::parquet(table, &batch)?;
            let size = bytes.len();
            self.lake
                .put(&output::object_name(table, label), bytes.clone())
                .await?;
            let path = output::iceberg_name(table, month_key);
            self.lake.put(&path, bytes).await?;
            files.push(output::IcebergFile {
                table,
                path,
                rows: batch.num_rows() as i64,
                bytes: size as i64,
            });
        }
        Ok(files)
    }

    /// Makes each Iceberg table list the files PostgreSQL records as current (one snapshot per
    /// table that changed; nothing when equal, so an interrupted refresh is finished here),
    /// expires its snapshots older than the retention and deletes the retired files past it
    /// that no retained snapshot lists.
    pub(crate) async fn publish_iceberg(
        &self,
        iceberg: &Iceberg,
        report: &mut RefreshReport,
    ) -> Result<(), WarehouseError> {
        surgstream_proto::fault::point("warehouse_before_iceberg");
        let before = chrono::Utc::now()
            .checked_sub_signed(
                chrono::Duration::from_std(iceberg.retention).unwrap_or(chrono::Duration::MAX),
            )
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        for step in sql::FACTS.iter().chain(sql::DIMENSIONS.iter()) {
            let files = output::current_iceberg(&self.pool, step.table).await?;
            let (synced, table) =
                surgstream_iceberg::warehouse::sync(&iceberg.tables, step.table, &files).await?;
            if synced.added + synced.removed > 0 {
                report.iceberg.push(synced);
            }
            let (expired, listed) =
                surgstream_iceberg::warehouse::expire(&iceberg.tables, table, iceberg.retention)
                    .await?;
            report.iceberg_snapshots_expired += expired;
            let mut gone = Vec::new();
            for path in output::retired_iceberg(&self.pool, step.table, before).await? {
                if listed.contains(&self.lake.location(&path)) {
                    continue;
                }
                self.lake.delete(&path).await?;
                gone.push(path);
            }
            output::forget_iceberg(&self.pool, &gone).await?;
            report.iceberg_retired_deleted += gone.len();
            // Objects a refresh wrote but never recorded (it died first). Refreshes hold the
            // warehouse lock, and this one recorded all it wrote: none is in progress.
            let known: std::collections::HashSet<String> =
                output::known_iceberg(&self.pool, step.table)
                    .await?
                    .into_iter()
                    .collect();
            for (path, _) in self
                .lake
                .list(&surgstream_iceberg::warehouse::data_dir(step.table))
                .await?
            {
                if !known.contains(&path) {
                    self.lake.delete(&path).await?;
                    report.iceberg_orphans_deleted += 1;
                }
            }
        }
        Ok(())
    }
}
