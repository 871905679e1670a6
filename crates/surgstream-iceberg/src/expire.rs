//! Table maintenance: the appends' manifests merged when they pile up, old snapshots expired
//! (Iceberg's own `expire_snapshots` action, metadata only), then the files nothing retained
//! references any more deleted — the expired
//! snapshots' manifest lists and manifests, and the lake files compactions retired
//! (`lake_retired`), once their grace has passed and no retained snapshot lists them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use iceberg::spec::ManifestList;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use sqlx::PgPool;
use surgstream_store::compaction;

use crate::{IcebergError, Tables};

/// Prometheus: snapshots expired.
pub const SNAPSHOTS_EXPIRED: &str = "surgstream_iceberg_snapshots_expired_total";
/// Prometheus: retired lake files deleted.
pub const RETIRED_DELETED: &str = "surgstream_compaction_retired_files_deleted_total";

/// What to keep.
#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// Snapshots older than this are expired (but the newest `retain_last`).
    pub older_than: Duration,
    /// Snapshots kept whatever their age (at least 1: the current one).
    pub retain_last: usize,
    /// The table's manifests are merged into one per partition spec when its current snapshot
    /// lists more than this many.
    pub merge_manifests_at: usize,
    /// A retired file is deleted no sooner than this after its compaction: a reader of the
    /// PostgreSQL manifest (the warehouse, `verify`) that listed it before the swap may still
    /// be reading it.
    pub retired_grace: Duration,
}

/// What one maintenance run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExpireReport {
    /// Whether the manifests were merged (the current snapshot listed more than
    /// `merge_manifests_at`).
    pub manifests_merged: bool,
    /// Snapshots expired.
    pub snapshots_expired: usize,
    /// Snapshots the table keeps.
    pub snapshots_kept: usize,
    /// Manifest lists and manifests deleted (only the expired snapshots referenced them).
    pub metadata_files_deleted: usize,
    /// The raw tables' (`raw.<topic>`) snapshots expired, summed over the tables.
    pub raw_snapshots_expired: usize,
    /// The snapshots they keep.
    pub raw_snapshots_kept: usize,
    /// Their manifest lists and manifests deleted.
    pub raw_metadata_files_deleted: usize,
    /// How many raw tables had their manifests merged.
    pub raw_manifests_merged: usize,
    /// Retired lake files deleted.
    pub retired_deleted: usize,
    /// Retired lake files kept: younger than the grace, or still in a retained snapshot.
    pub retired_kept: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Every manifest list, manifest and live data file the snapshots of `table` reference.
#[derive(Default)]
struct Referenced {
    lists: HashSet<String>,
    manifests: HashSet<String>,
    data: HashSet<String>,
}

async fn referenced(table: &Table) -> Result<Referenced, IcebergError> {
    let mut r = Referenced::default();
    let file_io = table.file_io();
    for snapshot in table.metadata().snapshots() {
        r.lists.insert(snapshot.manifest_list().to_owned());
        let bytes = file_io
            .new_input(snapshot.manifest_list())
            .map_err(IcebergError::iceberg("open a manifest list"))?
            .read()
            .await
            .map_err(IcebergError::iceberg(format!(
                "read the manifest list {}",
                snapshot.manifest_list()
            )))?;
        let list = ManifestList::parse_with_version(&bytes, table.metadata().format_version())
            .map_err(IcebergError::iceberg("parse a manifest list"))?;
        for manifest in list.entries() {
            if !r.manifests.insert(manifest.manifest_path.clone()) {
                continue;
            }
            let m = manifest
                .load_manifest(file_io)
                .await
                .map_err(IcebergError::iceberg(format!(
                    "read the manifest {}",
                    manifest.manifest_path
                )))?;
            for e in m.entries().iter().filter(|e| e.is_alive()) {
                r.data.insert(e.data_file().file_path().to_owned());
            }
        }
    }
    Ok(r)
}

/// What expiring one table's snapshots did, and what its retained snapshots still reference.
pub(crate) struct Expired {
    pub expired: usize,
    pub kept: usize,
    pub metadata_files_deleted: usize,
    referenced: Referenced,
}

impl Expired {
    /// Every data file a retained snapshot lists.
    pub(crate) fn data(&self) -> &HashSet<String> {
        &self.referenced.data
    }
}

/// Expires the snapshots of `table` older than `cutoff_ms` (but the newest `retain_last`, and
/// the current one) with Iceberg's own action, then deletes the manifest lists and manifests
/// only they referenced.
pub(crate) async fn expire_table(
    tables: &Tables,
    table: Table,
    cutoff_ms: i64,
    retain_last: usize,
) -> Result<Expired, IcebergError> {
    let current = table.metadata().current_snapshot_id();
    let any_old = table
        .metadata()
        .snapshots()
        .any(|s| Some(s.snapshot_id()) != current && s.timestamp_ms() < cutoff_ms);
    if !any_old {
        return Ok(Expired {
            expired: 0,
            kept: table.metadata().snapshots().len(),
            metadata_files_deleted: 0,
            referenced: referenced(&table).await?,
        });
    }
    let before = referenced(&table).await?;
    let count = table.metadata().snapshots().len();
    let tx = Transaction::new(&table);
    let action = tx
        .expire_snapshots()
        .expire_older_than_ms(cutoff_ms)
        .retain_last(retain_last.max(1));
    let table = action
        .apply(tx)
        .map_err(IcebergError::iceberg("stage the snapshot expiry"))?
        .commit(tables.catalog())
        .await
        .map_err(IcebergError::iceberg(format!(
            "expire snapshots of {}",
            table.identifier()
        )))?;
    let kept = table.metadata().snapshots().len();
    let expired = count.saturating_sub(kept);
    metrics::counter!(SNAPSHOTS_EXPIRED).increment(expired as u64);
    let after = referenced(&table).await?;
    let unreferenced = before
        .lists
        .difference(&after.lists)
        .chain(before.manifests.difference(&after.manifests));
    let mut deleted = 0;
    for path in unreferenced {
        table
            .file_io()
            .delete(path)
            .await
            .map_err(IcebergError::iceberg(format!("delete {path}")))?;
        deleted += 1;
    }
    Ok(Expired {
        expired,
        kept,
        metadata_files_deleted: deleted,
        referenced: after,
    })
}

/// Merges `table`'s manifests when more than `opts.merge_manifests_at` pile up (not when a
/// publish commits first: the next run merges), then expires its snapshots older than
/// `cutoff_ms`. Returns whether it merged, and what the expiry did.
async fn maintain(
    tables: &Tables,
    table: Table,
    cutoff_ms: i64,
    opts: &ExpireOptions,
) -> Result<(bool, Expired), IcebergError> {
    let merged =
        crate::replace::merge_manifests(tables, table.clone(), opts.merge_manifests_at).await;
    let (merged, table) = match merged {
        Ok(Some(merged)) => (true, merged),
        Ok(None) => (false, table),
        Err(e) if e.is_conflict() => (false, table),
        Err(e) => return Err(e),
    };
    let expired = expire_table(tables, table, cutoff_ms, opts.retain_last).await?;
    Ok((merged, expired))
}

/// Expires the telemetry table's and the raw tables' old snapshots (merging their manifests
/// first when they pile up) and deletes what only they referenced, then the retired lake files
/// of `group` that no retained snapshot lists.
pub async fn expire(
    tables: &Tables,
    pool: &PgPool,
    group: &str,
    opts: &ExpireOptions,
) -> Result<ExpireReport, IcebergError> {
    let started = Instant::now();
    let mut report = ExpireReport::default();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let cutoff_ms =
        now_ms.saturating_sub(i64::try_from(opts.older_than.as_millis()).unwrap_or(i64::MAX));
    let kept: Option<Referenced> = match tables.telemetry_if_exists().await? {
        None => None,
        Some(table) => {
            let (merged, expired) = maintain(tables, table, cutoff_ms, opts).await?;
            report.manifests_merged = merged;
            report.snapshots_kept = expired.kept;
            report.snapshots_expired = expired.expired;
            report.metadata_files_deleted = expired.metadata_files_deleted;
            Some(expired.referenced)
        }
    };
    // The raw tables: appended to, never compacted, so only their manifests merged and their
    // snapshots expired; the files stay.
    for table in crate::raw::all(tables).await? {
        let (merged, expired) = maintain(tables, table, cutoff_ms, opts).await?;
        report.raw_manifests_merged += usize::from(merged);
        report.raw_snapshots_kept += expired.kept;
        report.raw_snapshots_expired += expired.expired;
        report.raw_metadata_files_deleted += expired.metadata_files_deleted;
    }
    let grace = chrono::Duration::from_std(opts.retired_grace).unwrap_or(chrono::Duration::MAX);
    let before = chrono::Utc::now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let retired = compaction::retired(pool, group, before).await?;
    let mut gone = Vec::new();
    for r in &retired {
        let location = tables.lake().location(&r.path);
        if kept.as_ref().is_some_and(|k| k.data.contains(&location)) {
            report.retired_kept += 1;
            continue;
        }
        tables
            .lake()
            .delete(&r.path)
            .await
            .map_err(|e| IcebergError::File {
                path: r.path.clone(),
                reason: format!("cannot delete the retired file: {e}"),
            })?;
        gone.push(r.path.as_str());
    }
    compaction::forget_retired(pool, group, &gone).await?;
    report.retired_deleted = gone.len();
    metrics::counter!(RETIRED_DELETED).increment(gone.len() as u64);
    report.seconds = started.elapsed().as_secs_f64();
    if report.snapshots_expired + report.raw_snapshots_expired + report.retired_deleted > 0 {
        tracing::info!(
            snapshots_expired = report.snapshots_expired,
            raw_snapshots_expired = report.raw_snapshots_expired,
            metadata_files_deleted = report.metadata_files_deleted,
            retired_deleted = report.retired_deleted,
            retired_kept = report.retired_kept,
            "expired Iceberg snapshots and deleted what they alone referenced"
        );
    }
    Ok(report)
}
