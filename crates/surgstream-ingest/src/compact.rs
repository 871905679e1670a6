//! Compaction: the small committed files of closed hours (a backfill's ~300-row files, a quiet
//! fleet's file per `--max-age`) rewritten into large month files sorted by (`procedure_id`,
//! `timestamp`), ZSTD, and swapped into the manifest in one PostgreSQL transaction that records
//! the swap for the Iceberg publisher (`surgstream_store::compaction`).
//!
//! Crash-safe as a flush is: the new objects are written first and are orphans (swept after the
//! grace) until the swap commits; the swap deletes the replaced rows only if every one of them
//! is still committed, so two compactions at once cannot both take a file. Replaced objects
//! stay (`lake_retired`, which the sweeper leaves alone) for the Iceberg snapshots that still
//! reference them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use surgstream_lake::Lake;
use surgstream_lake::compact::{compacted_path, encode_compacted, merge_sorted};
use surgstream_store::Store;
use surgstream_store::compaction::{self, CompactedFile};

use crate::IngestError;

/// Prometheus: compaction runs of `ingest --compact-interval`, by result (ok, error).
pub const RUNS: &str = "surgstream_compaction_runs_total";
/// Prometheus: compactions committed.
pub const COMPACTIONS: &str = "surgstream_compactions_total";
/// Prometheus: files compactions took out of the manifest.
pub const FILES_REPLACED: &str = "surgstream_compaction_files_replaced_total";
/// Prometheus: files compactions wrote.
pub const FILES_COMPACTED: &str = "surgstream_compaction_files_written_total";
/// Prometheus: rows compactions rewrote.
pub const ROWS_COMPACTED: &str = "surgstream_compaction_rows_total";
/// Prometheus: bytes of the files compactions replaced.
pub const BYTES_BEFORE: &str = "surgstream_compaction_bytes_replaced_total";
/// Prometheus: bytes of the files compactions wrote.
pub const BYTES_AFTER: &str = "surgstream_compaction_bytes_written_total";

/// Registers the compaction's metric descriptions, so that `/metrics` documents them.
pub fn describe() {
    use metrics::{Unit, describe_counter};
    describe_counter!(
        RUNS,
        Unit::Count,
        "Periodic compaction runs (ingest --compact-interval), by result: ok, error (the log says why; a role without DELETE on lake_files cannot compact)."
    );
    describe_counter!(
        COMPACTIONS,
        Unit::Count,
        "Compactions committed (one per file written)."
    );
    describe_counter!(
        FILES_REPLACED,
        Unit::Count,
        "Small lake files compactions took out of the manifest."
    );
    describe_counter!(
        FILES_COMPACTED,
        Unit::Count,
        "Lake files compactions wrote."
    );
    describe_counter!(
        ROWS_COMPACTED,
        Unit::Count,
        "Telemetry rows compactions rewrote."
    );
    describe_counter!(
        BYTES_BEFORE,
        Unit::Bytes,
        "Bytes of the lake files compactions replaced."
    );
    describe_counter!(
        BYTES_AFTER,
        Unit::Bytes,
        "Bytes of the lake files compactions wrote."
    );
}

/// Files whose frames are all older than this (rounded down to the hour) are closed: the
/// default of `--older-than`.
pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(3600);
/// A file with fewer rows is small: the default of `--small-rows`.
pub const DEFAULT_SMALL_ROWS: i64 = 100_000;
/// Rows per compacted file, at most: the default of `--target-rows`. A merge's peak RSS grows
/// with it, ~3–4 KiB a row with the allocator's fragmentation (a seed backfill's 205,000-row
/// months peaked at 750–900 MiB, 50,000-row merges at 260 MiB); the bytes per frame hardly
/// move (41.3 against 41.5 B/frame).
pub const DEFAULT_TARGET_ROWS: i64 = 50_000;

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Consumer group whose manifest is compacted.
    pub group: String,
    /// Its telemetry topic.
    pub topic: String,
    /// Only files whose every frame is older than this (rounded down to the hour): closed
    /// hours, which a live ingestor no longer writes to but for late frames.
    pub older_than: Duration,
    /// A file with fewer rows is small.
    pub small_rows: i64,
    /// Rows per compacted file, at most (what one merge holds in memory: [`DEFAULT_TARGET_ROWS`]).
    pub target_rows: i64,
    /// Plan only: say what would be merged.
    pub dry_run: bool,
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompactReport {
    /// Swaps committed (one per written file).
    pub compactions: usize,
    /// Small files replaced.
    pub files_replaced: usize,
    /// Files written.
    pub files_written: usize,
    /// Rows rewritten.
    pub rows: i64,
    /// Bytes of the replaced files.
    pub bytes_before: i64,
    /// Bytes of the written files.
    pub bytes_after: i64,
    /// Merges lost to another compaction (their files were taken first).
    pub lost: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The months of small closed files, each cut into merges of at most `target_rows` rows; a
/// month with one small file has nothing to merge.
fn plan(files: Vec<CompactedFile>, target_rows: i64) -> Vec<Vec<CompactedFile>> {
    let mut months: BTreeMap<(i32, u32), Vec<CompactedFile>> = BTreeMap::new();
    for f in files {
        let t = f.min_event_time;
        months.entry((t.year(), t.month())).or_default().push(f);
    }
    let mut merges = Vec::new();
    for (_, files) in months {
        let mut current: Vec<CompactedFile> = Vec::new();
        let mut rows = 0;
        for f in files {
            if !current.is_empty() && rows + f.rows > target_rows {
                merges.push(std::mem::take(&mut current));
                rows = 0;
            }
            rows += f.rows;
            current.push(f);
        }
        merges.push(current);
    }
    merges.retain(|m| m.len() > 1);
    merges
}

/// Compacts the small closed files of one consumer group's manifest.
pub async fn compact(
    lake: &Lake,
    store: &Store,
    opts: &CompactOptions,
) -> Result<CompactReport, IngestError> {
    let started = Instant::now();
    let older = chrono::Duration::from_std(opts.older_than).unwrap_or(chrono::Duration::MAX);
    let cutoff = Utc::now()
        .checked_sub_signed(older)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let cutoff =
        DateTime::from_timestamp(cutoff.timestamp() - cutoff.timestamp().rem_euclid(3600), 0)
            .unwrap_or(cutoff);
    let candidates = compaction::candidates(
        store.pool(),
        &opts.group,
        &opts.topic,
        cutoff,
        opts.small_rows,
    )
    .await?;
    let mut report = CompactReport::default();
    for merge in plan(candidates, opts.target_rows) {
        let rows: i64 = merge.iter().map(|f| f.rows).sum();
        let bytes: i64 = merge.iter().map(|f| f.bytes).sum();
        if opts.dry_run {
            report.compactions += 1;
            report.files_replaced += merge.len();
            report.files_written += 1;
            report.rows += rows;
            report.bytes_before += bytes;
            continue;
        }
        let mut inputs = Vec::with_capacity(merge.len());
        for f in &merge {
            inputs.push((f.path.clone(), lake.get(&f.path).await?));
        }
        // Merged and encoded on one blocking thread: split across two, each kept its own
        // allocator arena at the merge's peak (peak RSS 750 MiB for a 205,000-row merge).
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (path, encoded, min, max, merged) = tokio::task::spawn_blocking(move || {
            let (batch, min, max) = merge_sorted(inputs)?;
            let path = compacted_path(min, &id);
            let encoded = encode_compacted(&path, &batch)?;
            Ok::<_, surgstream_lake::LakeError>((path, encoded, min, max, batch.num_rows()))
        })
        .await
        .map_err(|_| IngestError::Interrupted)??;
        if merged as i64 != rows {
            return Err(IngestError::Lake(surgstream_lake::LakeError::Read {
                path: merge[0].path.clone(),
                reason: format!(
                    "the manifest says {} files hold {rows} rows, they hold {merged}",
                    merge.len(),
                ),
            }));
        }
        let written = encoded.len() as i64;
        lake.put(&path, encoded).await?;
        let added = CompactedFile {
            path: path.clone(),
            xid: 0,
            rows,
            bytes: written,
            min_event_time: DateTime::from_timestamp_micros(min).unwrap_or_default(),
            max_event_time: DateTime::from_timestamp_micros(max).unwrap_or_default(),
        };
        surgstream_proto::fault::point_at("compaction_before_swap", || format!("({path})"));
        match compaction::swap(store.pool(), &opts.group, &opts.topic, &merge, &[added]).await? {
            Some(id) => {
                tracing::info!(compaction = id, files = merge.len(), rows, bytes_before = bytes, bytes_after = written, file = %path, "compacted");
                metrics::counter!(COMPACTIONS).increment(1);
                metrics::counter!(FILES_REPLACED).increment(merge.len() as u64);
                metrics::counter!(FILES_COMPACTED).increment(1);
                metrics::counter!(ROWS_COMPACTED).increment(rows.max(0) as u64);
                metrics::counter!(BYTES_BEFORE).increment(bytes.max(0) as u64);
                metrics::counter!(BYTES_AFTER).increment(written.max(0) as u64);
                report.compactions += 1;
                report.files_replaced += merge.len();
                report.files_written += 1;
                report.rows += rows;
                report.bytes_before += bytes;
                report.bytes_after += written;
            }
            None => {
                tracing::warn!(file = %path, "another compaction took these files first; removing the merge");
                lake.delete(&path).await?;
                report.lost += 1;
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, at: &str, rows: i64) -> CompactedFile {
        let t: DateTime<Utc> = at.parse().expect("time");
        CompactedFile {
            path: path.into(),
            xid: 1,
            rows,
            bytes: rows * 80,
            min_event_time: t,
            max_event_time: t,
        }
    }

    #[test]
    fn merges_stay_in_their_month_and_under_the_target() {
        let files = vec![
            file("a", "2024-01-01T00:10:00Z", 300),
            file("b", "2024-01-31T23:10:00Z", 300),
            file("c", "2024-02-01T00:10:00Z", 300),
            file("d", "2024-03-01T00:10:00Z", 300),
            file("e", "2024-03-02T00:10:00Z", 300),
            file("f", "2024-03-03T00:10:00Z", 300),
        ];
        let merges = plan(files, 700);
        let names: Vec<Vec<&str>> = merges
            .iter()
            .map(|m| m.iter().map(|f| f.path.as_str()).collect())
            .collect();
        // February has one file: nothing to merge; March's third file would pass 700 rows.
        assert_eq!(names, vec![vec!["a", "b"], vec!["d", "e"]]);
    }
}
