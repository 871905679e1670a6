//! Publishing in a long-running process (`ingest`, every `--iceberg-interval`), with metrics.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};
use tokio_util::sync::CancellationToken;

use crate::{IcebergError, PublishReport, Publisher};

pub const PUBLISH_DURATION: &str = "surgstream_iceberg_publish_duration_seconds";
pub const PUBLISHES: &str = "surgstream_iceberg_publishes_total";
pub const FILES_PUBLISHED: &str = "surgstream_iceberg_files_published_total";
pub const ROWS_PUBLISHED: &str = "surgstream_iceberg_rows_published_total";
pub const LAST_SUCCESS: &str = "surgstream_iceberg_last_success_timestamp_seconds";
pub const LAG: &str = "surgstream_iceberg_lag_seconds";
pub const COMPACTIONS_FOLLOWED: &str = "surgstream_iceberg_compactions_followed_total";

/// Publishes no more often than this, whatever the interval asked.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Registers the publisher's metric descriptions, so that `/metrics` documents them.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        PUBLISH_DURATION,
        Unit::Seconds,
        "Iceberg publishes that completed, by table: how long each took (reading the table and the manifest, writing the manifest and metadata, the catalog's commit)."
    );
    describe_counter!(
        PUBLISHES,
        Unit::Count,
        "Iceberg publishes, by table and result (appended, replaced: only compactions followed, nothing: no new file, conflict: another publisher committed first, error)."
    );
    describe_counter!(
        FILES_PUBLISHED,
        Unit::Count,
        "Files appended to the Iceberg tables, by table (the telemetry's lake files, the raw archive's files)."
    );
    describe_counter!(
        ROWS_PUBLISHED,
        Unit::Count,
        "Rows in the files appended to the Iceberg tables, by table (telemetry frames, raw records)."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "When the manifest was last read by a publish that succeeded, by table (Unix seconds): everything committed before it is in the Iceberg table."
    );
    describe_counter!(
        COMPACTIONS_FOLLOWED,
        Unit::Count,
        "Compactions followed into the Iceberg table, each as a replace snapshot."
    );
    describe_counter!(
        crate::expire::SNAPSHOTS_EXPIRED,
        Unit::Count,
        "Iceberg snapshots expired (older than --snapshots-older-than)."
    );
    describe_counter!(
        crate::expire::RETIRED_DELETED,
        Unit::Count,
        "Lake files a compaction replaced, deleted once past --retired-grace and listed by no retained Iceberg snapshot."
    );
    describe_gauge!(
        LAG,
        Unit::Seconds,
        "Seconds since the manifest was last read by a publish that succeeded, by table (set at each interval): how stale the Iceberg table may be."
    );
}

/// Publishes once and records its metrics ([`describe`]), labelled with the table.
pub async fn publish_recorded(publisher: &Publisher) -> Result<PublishReport, IcebergError> {
    let table = publisher.ident().to_string();
    let started = Instant::now();
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let result = publisher.publish().await;
    let outcome = match &result {
        Ok(report) => {
            histogram!(PUBLISH_DURATION, "table" => table.clone())
                .record(started.elapsed().as_secs_f64());
            counter!(FILES_PUBLISHED, "table" => table.clone()).increment(report.files as u64);
            counter!(ROWS_PUBLISHED, "table" => table.clone())
                .increment(u64::try_from(report.rows).unwrap_or(0));
            counter!(COMPACTIONS_FOLLOWED, "table" => table.clone())
                .increment(report.compactions as u64);
            gauge!(LAST_SUCCESS, "table" => table.clone()).set(read_at);
            if report.files > 0 {
                "appended"
            } else if report.compactions > 0 {
                "replaced"
            } else {
                "nothing"
            }
        }
        Err(e) if e.is_conflict() => "conflict",
        Err(_) => "error",
    };
    counter!(PUBLISHES, "table" => table, "result" => outcome).increment(1);
    result
}

/// Publishes with each of `publishers` in turn every `interval` (the first one interval after
/// the start) until `shutdown`, then once more (what the last flushes committed is in the
/// tables when the process ends); abort the task instead to stop without it. A failed publish
/// is logged and tried again at the next tick: the table stays readable at its last snapshot.
pub async fn keep_published(
    publishers: Vec<Publisher>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut last_success: Vec<Option<Instant>> = vec![None; publishers.len()];
    // The first publish one interval after the start: a process that fails to start (a broker
    // it cannot reach) never touches the table.
    let interval = interval.max(MIN_INTERVAL);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        if stopping {
            // The last publish: until each table holds every commit of this process (its
            // caller bounds it), again at once after a conflict: there is no next interval.
            for publisher in &publishers {
                for _ in 0..5 {
                    match publisher.publish_all(Duration::from_secs(3600)).await {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => {
                            tracing::debug!(table = %publisher.ident(), error = %e, "another publisher committed first; publishing again")
                        }
                        Err(e) => {
                            tracing::warn!(table = %publisher.ident(), error = %e, "the last publish to the Iceberg table failed; the next start publishes it");
                            break;
                        }
                    }
                }
            }
            return;
        }
        for (publisher, last_success) in publishers.iter().zip(&mut last_success) {
            let read_at = Instant::now();
            match publish_recorded(publisher).await {
                Ok(_) => *last_success = Some(read_at),
                Err(e) if e.is_conflict() => {
                    tracing::debug!(table = %publisher.ident(), error = %e, "another publisher committed first; publishing again at the next interval")
                }
                Err(e) => {
                    tracing::warn!(table = %publisher.ident(), error = %e, "publishing to the Iceberg table failed; trying again at the next interval")
                }
            }
            gauge!(LAG, "table" => publisher.ident().to_string())
                .set(last_success.unwrap_or(started).elapsed().as_secs_f64());
        }
    }
}
