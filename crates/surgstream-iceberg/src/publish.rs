//! The publisher: the manifest rows one consumer group committed, copied into the Iceberg table
//! as fast-append snapshots, each carrying its watermark.
//!
//! The watermark is a PostgreSQL transaction id: every manifest row committed by a transaction
//! below it is in the table, none above it is (`offsets::manifest_since`). It lives only in the
//! table, in each snapshot's summary (`surgstream.watermark`), and is read back from there before
//! every publish: a crash between the Iceberg commit and anything else publishes nothing twice
//! and skips nothing, and two publishers at once (two ingest members) meet at the catalog's
//! compare-and-set, where the loser reloads and finds the rows already published.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat, Datum, Literal, Struct};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use sqlx::PgPool;
use surgstream_store::compaction::Compaction;
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
    /// The snapshot made last, if any.
    pub snapshot_id: Option<i64>,
    /// Compactions followed (each a replace snapshot).
    pub compactions: usize,
    /// Files they marked deleted in the table.
    pub replaced_files: usize,
    /// Files they added.
    pub compacted_files: usize,
    /// How long it took.
    pub seconds: f64,
}

/// Publishes one consumer group's telemetry manifest to `surgstream.procedure_telemetry`, or
/// its raw archive of one topic (`raw_files`) to `raw.<topic>` ([`Publisher::raw`]).
#[derive(Debug, Clone)]
pub struct Publisher {
    tables: Tables,
    pool: PgPool,
    group: String,
    topic: String,
    raw: bool,
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
        // No snapshot of the publisher's left in the current ancestry, though the table has
        // data: another engine committed on top and expired the publisher's snapshots (Spark's
        // expire_snapshots with retain_last 1). The table properties, set in each of the
        // publisher's commits, still say how far it got.
        let properties = metadata.properties();
        match (metadata.current_snapshot(), properties.get(WATERMARK)) {
            (Some(_), Some(w)) => Ok(Self {
                watermark: w.parse().map_err(|_| {
                    IcebergError::Table(format!(
                        "table property {WATERMARK} is not a number: {w:?}"
                    ))
                })?,
                offsets: parse_offsets(properties.get(OFFSETS).map_or("", String::as_str))
                    .map_err(|e| IcebergError::Table(format!("table property {OFFSETS}: {e}")))?,
            }),
            _ => Ok(Self::default()),
        }
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
    /// A publisher of the telemetry files `group` committed from `topic`.
    pub fn new(tables: Tables, pool: PgPool, group: &str, topic: &str) -> Self {
        Self {
            tables,
            pool,
            group: group.to_owned(),
            topic: topic.to_owned(),
            raw: false,
        }
    }

    /// A publisher of the raw files `group` committed from `topic` (any source topic) to
    /// `raw.<topic>` ([`crate::raw`]). The table is created by the first publish that has a
    /// file for it.
    pub fn raw(tables: Tables, pool: PgPool, group: &str, topic: &str) -> Self {
        Self {
            raw: true,
            ..Self::new(tables, pool, group, topic)
        }
    }

    /// The tables it publishes to.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The table it publishes to.
    pub fn ident(&self) -> iceberg::TableIdent {
        if self.raw {
            crate::raw::ident(&self.topic)
        } else {
            self.tables.telemetry_ident().clone()
        }
    }

    /// Appends every manifest row committed since the table's watermark as one snapshot (none
    /// when there is nothing new), and follows the compactions made since, each as a replace
    /// snapshot in its place in transaction order: the rows committed before a compaction are
    /// appended first (a snapshot whose watermark is the compaction's id), then the compaction
    /// (watermark one past it), then the rest. A conflict with another publisher is an error
    /// ([`IcebergError::is_conflict`]); the next call starts from the winner's snapshot.
    pub async fn publish(&self) -> Result<PublishReport, IcebergError> {
        if self.raw {
            return self.publish_raw().await;
        }
        let started = Instant::now();
        let mut table = self.tables.telemetry().await?;
        let progress = Progress::of(&table)?;
        let changes =
            offsets::manifest_since(&self.pool, &self.group, &self.topic, progress.watermark)
                .await?;
        let mut report = PublishReport {
            watermark: progress.watermark,
            ..PublishReport::default()
        };
        let mut offsets = progress.offsets.clone();
        let mut files = changes.files.as_slice();
        for (count, compaction) in merge_runs(&changes.compactions, files) {
            let compaction = &compaction;
            let before = files.partition_point(|(xid, _)| *xid < compaction.xid);
            let (now, rest) = files.split_at(before);
            files = rest;
            if !now.is_empty() {
                table = self
                    .append(table, now, compaction.xid, &mut offsets, &mut report)
                    .await?;
            }
            let (next, done) = crate::replace::replace(
                &self.tables,
                table,
                compaction,
                progress.watermark,
                self.summary(compaction.xid + 1, &offsets),
                |file, timestamp_id, spec| {
                    let month = month_of(file.min_event_time.timestamp_micros());
                    if month_of(file.max_event_time.timestamp_micros()) != month {
                        return Err(IcebergError::File {
                            path: file.path.clone(),
                            reason: "a compacted file spans more than one month".into(),
                        });
                    }
                    self.data_file(
                        &file.path,
                        file.rows,
                        file.bytes,
                        (file.min_event_time, file.max_event_time),
                        Literal::int(month),
                        timestamp_id,
                        spec.spec_id(),
                    )
                },
            )
            .await?;
            table = next;
            report.watermark = compaction.xid + 1;
            report.compactions += count;
            report.replaced_files += done.deleted;
            report.compacted_files += done.added;
            report.snapshot_id = table.metadata().current_snapshot().map(|s| s.snapshot_id());
            tracing::info!(
                compactions = count,
                last = compaction.id,
                replaced = done.deleted,
                added = done.added,
                watermark = report.watermark,
                "followed a compaction into the Iceberg table"
            );
        }
        if !files.is_empty() {
            self.append(table, files, changes.horizon, &mut offsets, &mut report)
                .await?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// [`Self::publish`] of a raw table: the raw files committed since its watermark as one
    /// fast append (raw files are never compacted nor removed).
    async fn publish_raw(&self) -> Result<PublishReport, IcebergError> {
        let started = Instant::now();
        let existing = crate::raw::load(&self.tables, &self.topic).await?;
        let progress = match &existing {
            Some(table) => Progress::of(table)?,
            None => Progress::default(),
        };
        let changes = surgstream_store::raw::raw_since(
            &self.pool,
            &self.group,
            &self.topic,
            progress.watermark,
        )
        .await?;
        let mut report = PublishReport {
            watermark: progress.watermark,
            ..PublishReport::default()
        };
        if !changes.files.is_empty() {
            let table = match existing {
                Some(table) => table,
                None => crate::raw::create(&self.tables, &self.topic).await?,
            };
            let spec_id = table.metadata().default_partition_spec_id();
            let files = changes
                .files
                .iter()
                .map(|(_, f)| {
                    let entry = crate::raw::data_file(&self.tables, f, spec_id)?;
                    Ok((entry, f.partition, f.last_offset))
                })
                .collect::<Result<Vec<_>, IcebergError>>()?;
            let mut offsets = progress.offsets;
            self.commit(&table, files, changes.horizon, &mut offsets, &mut report)
                .await?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn summary(&self, watermark: i64, offsets: &BTreeMap<i32, i64>) -> HashMap<String, String> {
        HashMap::from([
            (WATERMARK.to_owned(), watermark.to_string()),
            (GROUP.to_owned(), self.group.clone()),
            (TOPIC.to_owned(), self.topic.clone()),
            (OFFSETS.to_owned(), format_offsets(offsets)),
        ])
    }

    /// Appends `files` (manifest rows, by transaction id) as one snapshot whose watermark is
    /// `watermark`.
    async fn append(
        &self,
        table: Table,
        files: &[(i64, LakeFile)],
        watermark: i64,
        offsets: &mut BTreeMap<i32, i64>,
        report: &mut PublishReport,
    ) -> Result<Table, IcebergError> {
        let schema = table.metadata().current_schema();
        let timestamp_id = schema::field_id(schema, "timestamp")?;
        let spec_id = table.metadata().default_partition_spec_id();
        let mut data_files = Vec::with_capacity(files.len());
        for (_, file) in files {
            let (min, max) = (
                file.min_event_time.timestamp_micros(),
                file.max_event_time.timestamp_micros(),
            );
            let hour = min.div_euclid(MICROS_PER_HOUR);
            if max.div_euclid(MICROS_PER_HOUR) != hour {
                return Err(IcebergError::File {
                    path: file.path.clone(),
                    reason: format!(
                        "its frames span more than one hour ({} to {}), the table is partitioned by hour",
                        file.min_event_time, file.max_event_time
                    ),
                });
            }
            let hour = i32::try_from(hour).map_err(|_| IcebergError::File {
                path: file.path.clone(),
                reason: format!("hour {hour} out of range"),
            })?;
            let entry = self.data_file(
                &file.path,
                file.rows,
                file.bytes,
                (file.min_event_time, file.max_event_time),
                Literal::int(hour),
                timestamp_id,
                spec_id,
            )?;
            data_files.push((entry, file.partition, file.last_offset));
        }
        self.commit(&table, data_files, watermark, offsets, report)
            .await
    }

    /// Commits `files` (each entry with the Kafka partition and the last offset of its range)
    /// to `table` as one fast append, moving `offsets` past them; the snapshot's summary, and
    /// the table's properties, carry `watermark` and those offsets.
    async fn commit(
        &self,
        table: &Table,
        files: Vec<(iceberg::spec::DataFile, i32, i64)>,
        watermark: i64,
        offsets: &mut BTreeMap<i32, i64>,
        report: &mut PublishReport,
    ) -> Result<Table, IcebergError> {
        let (mut rows, mut bytes) = (0i64, 0i64);
        let mut data_files = Vec::with_capacity(files.len());
        for (entry, partition, last_offset) in files {
            let next = offsets.entry(partition).or_default();
            *next = (*next).max(last_offset + 1);
            rows += i64::try_from(entry.record_count()).unwrap_or(i64::MAX);
            bytes += i64::try_from(entry.file_size_in_bytes()).unwrap_or(i64::MAX);
            data_files.push(entry);
        }
        let offsets = &*offsets;
        let n = data_files.len();
        let tx = Transaction::new(table);
        let append = tx
            .fast_append()
            .set_snapshot_properties(self.summary(watermark, offsets))
            .add_data_files(data_files);
        let tx = append
            .apply(tx)
            .map_err(IcebergError::iceberg("stage the append"))?;
        // The same progress as table properties, in the same commit: they outlive the
        // snapshot if another engine's maintenance expires it ([`Progress::of`]).
        let tx = tx
            .update_table_properties()
            .set(WATERMARK.to_owned(), watermark.to_string())
            .set(OFFSETS.to_owned(), format_offsets(offsets))
            .apply(tx)
            .map_err(IcebergError::iceberg("stage the progress properties"))?;
        let ident = self.ident();
        let committed = tx
            .commit(self.tables.catalog())
            .await
            .map_err(IcebergError::iceberg(format!(
                "commit {n} files to {ident}"
            )))?;
        report.files += n;
        report.rows += rows;
        report.bytes += bytes;
        report.watermark = watermark;
        report.snapshot_id = committed
            .metadata()
            .current_snapshot()
            .map(|s| s.snapshot_id());
        tracing::info!(
            table = %ident,
            files = n,
            rows,
            watermark,
            snapshot = ?report.snapshot_id,
            "published to the Iceberg table"
        );
        Ok(committed)
    }

    /// Publishes until every manifest row committed so far is in the table, or `within` has
    /// passed (a conflict with another publisher is published again from its snapshot): a publish takes only rows below the horizon, and a transaction open anywhere in
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
            let report = match crate::keep::publish_recorded(self).await {
                Ok(report) => report,
                // Another publisher (the ingestor, a second `iceberg publish`) committed first:
                // the next round starts from its snapshot.
                Err(e) if e.is_conflict() && Instant::now() < deadline => {
                    tracing::info!(table = %self.ident(), "another publisher committed first; publishing again from its snapshot");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            total.files += report.files;
            total.rows += report.rows;
            total.bytes += report.bytes;
            total.seconds += report.seconds;
            total.watermark = report.watermark;
            total.snapshot_id = report.snapshot_id.or(total.snapshot_id);
            total.compactions += report.compactions;
            total.replaced_files += report.replaced_files;
            total.compacted_files += report.compacted_files;
            let newest = if self.raw {
                surgstream_store::raw::newest_raw_xid(&self.pool, &self.group, &self.topic).await?
            } else {
                offsets::newest_xid(&self.pool, &self.group, &self.topic).await?
            };
            let caught_up = newest.is_none_or(|x| x < report.watermark);
            if caught_up || Instant::now() >= deadline {
                return Ok((total, caught_up));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The Iceberg entry of a lake file: where it is, its partition, its size, row count and
    /// event-time bounds (what engines prune by), in the lake's sort order.
    #[allow(clippy::too_many_arguments)]
    fn data_file(
        &self,
        path: &str,
        rows: i64,
        bytes: i64,
        (min, max): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
        partition: Literal,
        timestamp_id: i32,
        spec_id: i32,
    ) -> Result<iceberg::spec::DataFile, IcebergError> {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(self.tables.lake().location(path))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::from_iter([Some(partition)]))
            .partition_spec_id(spec_id)
            .record_count(u64::try_from(rows).unwrap_or(0))
            .file_size_in_bytes(u64::try_from(bytes).unwrap_or(0))
            .lower_bounds(HashMap::from([(
                timestamp_id,
                Datum::timestamptz_micros(min.timestamp_micros()),
            )]))
            .upper_bounds(HashMap::from([(
                timestamp_id,
                Datum::timestamptz_micros(max.timestamp_micros()),
            )]))
            .sort_order_id(schema::SORT_ORDER_ID as i32)
            .build()
            .map_err(|e| IcebergError::File {
                path: path.to_owned(),
                reason: format!("cannot describe it for Iceberg: {e}"),
            })
    }
}

/// The compactions in runs that no ingested file falls between (one `compact` run's swaps),
/// each run as one compaction: the union of what they replaced and added, less the files one
/// added and a later one replaced (never in the table), with the last one's id and
/// transaction. One replace snapshot per run instead of one per swap: each rewrites the
/// table's manifests. Returns (how many compactions, the merged one).
fn merge_runs(compactions: &[Compaction], files: &[(i64, LakeFile)]) -> Vec<(usize, Compaction)> {
    let mut out: Vec<(usize, Compaction)> = Vec::new();
    for c in compactions {
        if let Some((n, run)) = out.last_mut()
            && !files.iter().any(|(xid, _)| *xid > run.xid && *xid < c.xid)
        {
            let replaced: HashSet<&str> = c.replaced.iter().map(|f| f.path.as_str()).collect();
            run.added.retain(|f| !replaced.contains(f.path.as_str()));
            run.replaced.extend(c.replaced.iter().cloned());
            run.added.extend(c.added.iter().cloned());
            run.id = c.id;
            run.xid = c.xid;
            *n += 1;
            continue;
        }
        out.push((1, c.clone()));
    }
    out
}

/// Months since 1970-01 of an instant (microseconds since the epoch, UTC): Iceberg's
/// `month` transform.
fn month_of(micros: i64) -> i32 {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    (t.year() - 1970) * 12 + t.month0() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, xid: i64) -> surgstream_store::compaction::CompactedFile {
        surgstream_store::compaction::CompactedFile {
            path: path.into(),
            xid,
            rows: 1,
            bytes: 1,
            min_event_time: chrono::DateTime::UNIX_EPOCH,
            max_event_time: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn lake_file(path: &str) -> LakeFile {
        LakeFile {
            path: path.into(),
            partition: 0,
            first_offset: 0,
            last_offset: 0,
            rows: 1,
            bytes: 1,
            min_event_time: chrono::DateTime::UNIX_EPOCH,
            max_event_time: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn consecutive_compactions_are_followed_as_one_and_an_ingested_file_splits_them() {
        let c = |id, xid, replaced: &[(&str, i64)], added: &str| Compaction {
            id,
            xid,
            replaced: replaced.iter().map(|(p, x)| file(p, *x)).collect(),
            added: vec![file(added, xid)],
        };
        let compactions = [
            c(1, 10, &[("a", 1), ("b", 2)], "m1"),
            c(2, 11, &[("m1", 10), ("c", 3)], "m2"),
            c(3, 13, &[("d", 4), ("e", 5)], "m3"),
        ];
        // A file ingested at 12, between the second and the third.
        let runs = merge_runs(&compactions, &[(12, lake_file("f"))]);
        assert_eq!(runs.len(), 2);
        let (n, first) = &runs[0];
        assert_eq!((*n, first.id, first.xid), (2, 2, 11));
        let paths = |f: &[surgstream_store::compaction::CompactedFile]| {
            f.iter().map(|f| f.path.clone()).collect::<Vec<_>>()
        };
        assert_eq!(paths(&first.replaced), ["a", "b", "m1", "c"]);
        assert_eq!(paths(&first.added), ["m2"], "m1 was added, then replaced");
        assert_eq!(runs[1].0, 1);
        // Nothing between them: one run.
        assert_eq!(merge_runs(&compactions, &[]).len(), 1);
    }

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
