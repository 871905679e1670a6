//! The publisher: the manifest rows one consumer group committed, copied into the Iceberg table
//! as fast-append snapshots, each carrying its watermark.
//!
//! The watermark is a PostgreSQL transaction id: every manifest row committed by a transaction
//! below it is in the table, none above it is (`offsets::manifest_since`). It lives only in the
//! table, in each snapshot's summary (`surgstream.watermark`), and is read back from there before
//! every publish: a crash between the Iceberg commit and anything else publishes nothing twice
//! and skips nothing, and two publishers at once (two ingest members) meet at the catalog's
//! compare-and-set, where the loser reloads and finds the rows already published.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat, Datum, Literal, Struct};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use sqlx::PgPool;
use surgstream_store::offsets::{self, LakeFile};

use crate::{IcebergError, Tables, schema};

/// Summary key: the publisher's watermark (a PostgreSQL transaction id).
pub const WATERMARK: &str = "surgstream.watermark";
/// Summary key: the consumer group whose manifest the table follows.
pub const GROUP: &str = "surgstream.consumer-group";
/// Summary key: the Kafka topic the files came from.
pub const TOPIC: &str = "surgstream.topic";
/// Summary key: per Kafka partition, the offset after the last one published (`p:offset,…`).
pub const OFFSETS: &str = "surgstream.offsets";

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// What one publish did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishReport {
    /// Files appended (0: nothing new was committed).
    pub files: usize,
    /// Their rows.
    pub rows: i64,
    /// Their bytes.
    pub bytes: i64,
    /// The watermark now in the table.
    pub watermark: i64,
    /// The snapshot made, if any.
    pub snapshot_id: Option<i64>,
    /// How long it took.
    pub seconds: f64,
}

/// Publishes one consumer group's telemetry manifest to `surgstream.procedure_telemetry`.
#[derive(Debug, Clone)]
pub struct Publisher {
    tables: Tables,
    pool: PgPool,
    group: String,
    topic: String,
}

/// Where the table stands: its watermark and published offsets, from the newest snapshot of
/// its current ancestry that the publisher made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The watermark (0: nothing published yet).
    pub watermark: i64,
    /// Per Kafka partition, the offset after the last one published.
    pub offsets: BTreeMap<i32, i64>,
}

impl Progress {
    /// The progress recorded in `table`'s current snapshot or, when another writer made that
    /// one (an engine's own maintenance), in its nearest ancestor the publisher made.
    pub fn of(table: &Table) -> Result<Self, IcebergError> {
        let metadata = table.metadata();
        let mut next = metadata.current_snapshot();
        while let Some(snapshot) = next {
            let summary = &snapshot.summary().additional_properties;
            if let Some(w) = summary.get(WATERMARK) {
                let watermark = w.parse().map_err(|_| {
                    IcebergError::Table(format!(
                        "snapshot {} has a watermark that is not a number: {w:?}",
                        snapshot.snapshot_id()
                    ))
                })?;
                let offsets = parse_offsets(summary.get(OFFSETS).map_or("", String::as_str))
                    .map_err(|e| {
                        IcebergError::Table(format!("snapshot {}: {e}", snapshot.snapshot_id()))
                    })?;
                return Ok(Self { watermark, offsets });
            }
            next = snapshot
                .parent_snapshot_id()
                .and_then(|id| metadata.snapshot_by_id(id));
        }
        Ok(Self::default())
    }
}

fn parse_offsets(text: &str) -> Result<BTreeMap<i32, i64>, String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (partition, offset) = p
                .split_once(':')
                .ok_or_else(|| format!("bad offsets entry {p:?}"))?;
            Ok((
                partition
                    .parse()
                    .map_err(|_| format!("bad partition in {p:?}"))?,
                offset.parse().map_err(|_| format!("bad offset in {p:?}"))?,
            ))
        })
        .collect()
}

fn format_offsets(offsets: &BTreeMap<i32, i64>) -> String {
    offsets
        .iter()
        .map(|(p, o)| format!("{p}:{o}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Publisher {
    /// A publisher of the files `group` committed from `topic`.
    pub fn new(tables: Tables, pool: PgPool, group: &str, topic: &str) -> Self {
        Self {
            tables,
            pool,
            group: group.to_owned(),
            topic: topic.to_owned(),
        }
    }

    /// The tables it publishes to.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Appends every manifest row committed since the table's watermark as one snapshot (none
    /// when there is nothing new). A conflict with another publisher is an error
    /// ([`IcebergError::is_conflict`]); the next call starts from the winner's snapshot.
    pub async fn publish(&self) -> Result<PublishReport, IcebergError> {
        let started = Instant::now();
        let table = self.tables.telemetry().await?;
        let progress = Progress::of(&table)?;
        let changes =
            offsets::manifest_since(&self.pool, &self.group, &self.topic, progress.watermark)
                .await?;
        let mut report = PublishReport {
            watermark: progress.watermark,
            ..PublishReport::default()
        };
        if changes.files.is_empty() {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        let schema = table.metadata().current_schema();
        let timestamp_id = schema::field_id(schema, "timestamp")?;
        let spec_id = table.metadata().default_partition_spec_id();
        let mut offsets = progress.offsets.clone();
        let mut data_files = Vec::with_capacity(changes.files.len());
        for (_, file) in &changes.files {
            data_files.push(self.data_file(file, timestamp_id, spec_id)?);
            let next = offsets.entry(file.partition).or_default();
            *next = (*next).max(file.last_offset + 1);
            report.rows += file.rows;
            report.bytes += file.bytes;
        }
        report.files = data_files.len();
        let summary = HashMap::from([
            (WATERMARK.to_owned(), changes.horizon.to_string()),
            (GROUP.to_owned(), self.group.clone()),
            (TOPIC.to_owned(), self.topic.clone()),
            (OFFSETS.to_owned(), format_offsets(&offsets)),
        ]);
        let tx = Transaction::new(&table);
        let append = tx
            .fast_append()
            .set_snapshot_properties(summary)
            .add_data_files(data_files);
        let tx = append
            .apply(tx)
            .map_err(IcebergError::iceberg("stage the append"))?;
        let ident = self.tables.telemetry_ident().clone();
        let committed = tx
            .commit(self.tables.catalog())
            .await
            .map_err(IcebergError::iceberg(format!(
                "commit {} files to {ident}",
                report.files
            )))?;
        report.watermark = changes.horizon;
        report.snapshot_id = committed
            .metadata()
            .current_snapshot()
            .map(|s| s.snapshot_id());
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            files = report.files,
            rows = report.rows,
            watermark = report.watermark,
            snapshot = ?report.snapshot_id,
            "published to the Iceberg table"
        );
        Ok(report)
    }

    /// Publishes until every manifest row committed so far is in the table, or `within` has
    /// passed: a publish takes only rows below the horizon, and a transaction open anywhere in
    /// the PostgreSQL cluster (another database's included) holds the horizon back for as long
    /// as it runs. Returns the publishes' report (files, rows and bytes summed; the last
    /// watermark) and whether the table caught up.
    pub async fn publish_all(
        &self,
        within: std::time::Duration,
    ) -> Result<(PublishReport, bool), IcebergError> {
        let deadline = Instant::now() + within;
        let mut total = PublishReport::default();
        loop {
            let report = crate::keep::publish_recorded(self).await?;
            total.files += report.files;
            total.rows += report.rows;
            total.bytes += report.bytes;
            total.seconds += report.seconds;
            total.watermark = report.watermark;
            total.snapshot_id = report.snapshot_id.or(total.snapshot_id);
            let newest = offsets::newest_xid(&self.pool, &self.group, &self.topic).await?;
            let caught_up = newest.is_none_or(|x| x < report.watermark);
            if caught_up || Instant::now() >= deadline {
                return Ok((total, caught_up));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The Iceberg entry of a lake file: where it is, its hour partition, its size, row count
    /// and event-time bounds (what engines prune by), in the lake's sort order.
    fn data_file(
        &self,
        file: &LakeFile,
        timestamp_id: i32,
        spec_id: i32,
    ) -> Result<iceberg::spec::DataFile, IcebergError> {
        let bad = |reason: String| IcebergError::File {
            path: file.path.clone(),
            reason,
        };
        let (min, max) = (
            file.min_event_time.timestamp_micros(),
            file.max_event_time.timestamp_micros(),
        );
        let hour = min.div_euclid(MICROS_PER_HOUR);
        if max.div_euclid(MICROS_PER_HOUR) != hour {
            return Err(bad(format!(
                "its frames span more than one hour ({} to {}), the table is partitioned by hour",
                file.min_event_time, file.max_event_time
            )));
        }
        let hour = i32::try_from(hour).map_err(|_| bad(format!("hour {hour} out of range")))?;
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(self.tables.lake().location(&file.path))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::from_iter([Some(Literal::int(hour))]))
            .partition_spec_id(spec_id)
            .record_count(u64::try_from(file.rows).unwrap_or(0))
            .file_size_in_bytes(u64::try_from(file.bytes).unwrap_or(0))
            .lower_bounds(HashMap::from([(
                timestamp_id,
                Datum::timestamptz_micros(min),
            )]))
            .upper_bounds(HashMap::from([(
                timestamp_id,
                Datum::timestamptz_micros(max),
            )]))
            .sort_order_id(schema::SORT_ORDER_ID as i32)
            .build()
            .map_err(|e| bad(format!("cannot describe it for Iceberg: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_bad_ones_are_named() {
        let offsets = BTreeMap::from([(0, 10), (3, 7)]);
        assert_eq!(format_offsets(&offsets), "0:10,3:7");
        assert_eq!(parse_offsets("0:10,3:7"), Ok(offsets));
        assert_eq!(parse_offsets(""), Ok(BTreeMap::new()));
        assert!(parse_offsets("0-10").is_err());
        assert!(parse_offsets("x:10").is_err());
    }
}
