//! The Iceberg tables against the manifests (`surgstream verify`): a table's live data files
//! must be exactly the manifest rows below its watermark, with the same row counts (and, for
//! the telemetry table, the files a compaction above it replaced, which the table holds until
//! it follows it); the raw tables likewise against `raw_files`.

use std::collections::BTreeMap;

use iceberg::spec::{DataContentType, ManifestList};
use iceberg::table::Table;
use sqlx::PgPool;
use surgstream_store::{compaction, offsets};

use crate::publish::Progress;
use crate::{IcebergError, Tables};

/// A data file of a table's snapshot: its location and row count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// Its absolute location.
    pub location: String,
    /// Its rows.
    pub rows: u64,
}

/// The data files of `table`'s current snapshot (none before its first), read from its
/// manifest list and manifests.
pub async fn live_files(table: &Table) -> Result<Vec<LiveFile>, IcebergError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let file_io = table.file_io();
    let list = file_io
        .new_input(snapshot.manifest_list())
        .map_err(IcebergError::iceberg("open the manifest list"))?
        .read()
        .await
        .map_err(IcebergError::iceberg(format!(
            "read the manifest list {}",
            snapshot.manifest_list()
        )))?;
    let list = ManifestList::parse_with_version(&list, table.metadata().format_version())
        .map_err(IcebergError::iceberg("parse the manifest list"))?;
    let mut files = Vec::new();
    for manifest in list.entries() {
        let manifest = manifest
            .load_manifest(file_io)
            .await
            .map_err(IcebergError::iceberg(format!(
                "read the manifest {}",
                manifest.manifest_path
            )))?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file();
            if file.content_type() == DataContentType::Data {
                files.push(LiveFile {
                    location: file.file_path().to_owned(),
                    rows: file.record_count(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// What `verify` found in the Iceberg table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableCheck {
    /// The table's current snapshot (None: nothing published yet).
    pub snapshot_id: Option<i64>,
    /// Its watermark.
    pub watermark: i64,
    /// Data files in the current snapshot.
    pub table_files: u64,
    /// Their rows.
    pub table_rows: u64,
    /// Manifest rows committed below the watermark (what the table must hold).
    pub published_files: u64,
    /// Manifest rows committed since (the next publish appends them, or follows the compaction
    /// that added them).
    pub unpublished_files: u64,
    /// Files below the watermark that the table lacks.
    pub missing: Vec<String>,
    /// Files in the table that no manifest row below the watermark names.
    pub unexpected: Vec<String>,
    /// Files in both whose row counts differ.
    pub rows_differ: Vec<String>,
    /// Files the table lists twice.
    pub duplicated: Vec<String>,
}

impl TableCheck {
    /// How many discrepancies: a missing, unexpected, miscounted or doubled file.
    pub fn discrepancies(&self) -> u64 {
        (self.missing.len()
            + self.unexpected.len()
            + self.rows_differ.len()
            + self.duplicated.len()) as u64
    }
}

/// Compares the telemetry table's current snapshot with the manifest rows `group` committed from
/// `topic`; `None` when there is no table (publishing never ran, or `--no-iceberg`).
pub async fn check(
    tables: &Tables,
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Option<TableCheck>, IcebergError> {
    let Some(table) = tables.telemetry_if_exists().await? else {
        return Ok(None);
    };
    let files = offsets::all_files(pool, group, topic).await?;
    let (mut report, mut want) = below_watermark(tables, &table, files)?;
    // A compaction the table has not followed yet took files out of the manifest that the
    // table still holds, rightly.
    let pending = compaction::since(pool, group, topic, report.watermark, i64::MAX).await?;
    for c in &pending {
        for f in c.replaced.iter().filter(|f| f.xid < report.watermark) {
            want.insert(
                tables.lake().location(&f.path),
                u64::try_from(f.rows).unwrap_or(0),
            );
        }
    }
    compare(&table, want, &mut report).await?;
    Ok(Some(report))
}

/// Compares the raw table of `topic` ([`crate::raw`]) with the raw files `group` committed from
/// it; `None` when there is no table (no raw file was published yet).
pub async fn check_raw(
    tables: &Tables,
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Option<TableCheck>, IcebergError> {
    let Some(table) = crate::raw::load(tables, topic).await? else {
        return Ok(None);
    };
    let files = surgstream_store::raw::all_raw_files(pool, group, topic).await?;
    let (mut report, want) = below_watermark(tables, &table, files)?;
    compare(&table, want, &mut report).await?;
    Ok(Some(report))
}

/// The check of `table` begun: its snapshot and watermark, and which of `files` (the id of the
/// transaction that committed each, its path and rows) it must hold — those below the
/// watermark, by location; the others are counted as not yet published.
fn below_watermark(
    tables: &Tables,
    table: &Table,
    files: Vec<(i64, String, i64)>,
) -> Result<(TableCheck, BTreeMap<String, u64>), IcebergError> {
    let watermark = Progress::of(table)?.watermark;
    let mut report = TableCheck {
        snapshot_id: table.metadata().current_snapshot().map(|s| s.snapshot_id()),
        watermark,
        ..TableCheck::default()
    };
    let mut want = BTreeMap::new();
    for (xid, path, rows) in files {
        if xid < watermark {
            want.insert(
                tables.lake().location(&path),
                u64::try_from(rows).unwrap_or(0),
            );
        } else {
            report.unpublished_files += 1;
        }
    }
    Ok((report, want))
}

/// The table's live files against `want` (location → rows), into `report`.
async fn compare(
    table: &Table,
    want: BTreeMap<String, u64>,
    report: &mut TableCheck,
) -> Result<(), IcebergError> {
    report.published_files = want.len() as u64;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for file in live_files(table).await? {
        report.table_files += 1;
        report.table_rows += file.rows;
        if seen.insert(file.location.clone(), file.rows).is_some() {
            report.duplicated.push(file.location.clone());
        }
        match want.get(&file.location) {
            None => report.unexpected.push(file.location),
            Some(rows) if *rows != file.rows => report.rows_differ.push(format!(
                "{}: {} rows in the table, {rows} in the manifest",
                file.location, file.rows
            )),
            Some(_) => {}
        }
    }
    report.missing = want
        .into_keys()
        .filter(|location| !seen.contains_key(location))
        .collect();
    Ok(())
}
