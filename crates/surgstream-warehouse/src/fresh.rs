//! Keeping the warehouse fresh in a long-running process (`ingest --warehouse-interval`,
//! `warehouse --interval`), with its metrics.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};
use tokio_util::sync::CancellationToken;

use crate::{RefreshReport, Warehouse, WarehouseError};

pub const REFRESH_DURATION: &str = "surgstream_warehouse_refresh_duration_seconds";
pub const REFRESHES: &str = "surgstream_warehouse_refreshes_total";
pub const MONTHS_REBUILT: &str = "surgstream_warehouse_months_rebuilt_total";
pub const FRAMES_SCANNED: &str = "surgstream_warehouse_frames_scanned_total";
pub const LAST_SUCCESS: &str = "surgstream_warehouse_last_success_timestamp_seconds";
pub const LAG: &str = "surgstream_warehouse_lag_seconds";
pub const ICEBERG_SNAPSHOTS: &str = "surgstream_warehouse_iceberg_snapshots_total";
pub const ICEBERG_FILES_DELETED: &str = "surgstream_warehouse_iceberg_files_deleted_total";

/// Registers the warehouse's metric descriptions, so that `/metrics` documents them.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        REFRESH_DURATION,
        Unit::Seconds,
        "Warehouse refreshes that completed: how long each took."
    );
    describe_counter!(
        REFRESHES,
        Unit::Count,
        "Warehouse refreshes, by result (ok, error, skipped: another was running)."
    );
    describe_counter!(
        MONTHS_REBUILT,
        Unit::Count,
        "Months of facts rebuilt because their inputs changed."
    );
    describe_counter!(
        FRAMES_SCANNED,
        Unit::Count,
        "Telemetry rows in the lake files the warehouse read."
    );
    describe_counter!(
        ICEBERG_SNAPSHOTS,
        Unit::Count,
        "Snapshots committed to the warehouse's Iceberg tables (one per table a refresh changed)."
    );
    describe_counter!(
        ICEBERG_FILES_DELETED,
        Unit::Count,
        "Data files of the warehouse's Iceberg tables deleted: retired past the retention, or left by a refresh that died."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "When the inputs of the last complete warehouse refresh were read (Unix seconds)."
    );
    describe_gauge!(
        LAG,
        Unit::Seconds,
        "Seconds since the inputs of the last complete warehouse refresh were read (set at each interval)."
    );
}

/// Refreshes the warehouse once and records its metrics ([`describe`]). `wait`: wait for a
/// refresh running elsewhere, else skip (`Ok(None)`).
pub async fn refresh_recorded(
    warehouse: &Warehouse,
    wait: bool,
) -> Result<Option<RefreshReport>, WarehouseError> {
    let started = Instant::now();
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let result = if wait {
        warehouse.refresh().await.map(Some)
    } else {
        warehouse.try_refresh().await
    };
    let outcome = match &result {
        Ok(Some(report)) => {
            histogram!(REFRESH_DURATION).record(started.elapsed().as_secs_f64());
            counter!(MONTHS_REBUILT).increment(report.months.len() as u64);
            counter!(FRAMES_SCANNED).increment(report.frames_scanned);
            counter!(ICEBERG_SNAPSHOTS).increment(report.iceberg.len() as u64);
            counter!(ICEBERG_FILES_DELETED).increment(
                (report.iceberg_retired_deleted + report.iceberg_orphans_deleted) as u64,
            );
            gauge!(LAST_SUCCESS).set(read_at);
            "ok"
        }
        Ok(None) => "skipped",
        Err(_) => "error",
    };
    counter!(REFRESHES, "result" => outcome).increment(1);
    result
}

/// Refreshes every `interval` until `shutdown`; a failed refresh is logged and tried again at
/// the next tick (the previous warehouse stays readable); sets [`LAG`] at each tick.
pub async fn keep_fresh(warehouse: Warehouse, interval: Duration, shutdown: CancellationToken) {
    let mut last_success: Option<Instant> = None;
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval.max(crate::MIN_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let read_at = Instant::now();
        match refresh_recorded(&warehouse, false).await {
            Ok(Some(report)) => {
                last_success = Some(read_at);
                if report.changed() {
                    tracing::info!(
                        months = report.months.len(),
                        dimensions = report.dimensions,
                        frames = report.frames_scanned,
                        seconds = report.seconds,
                        "warehouse refreshed"
                    );
                }
            }
            Ok(None) => tracing::debug!("warehouse refresh skipped: another one is running"),
            Err(e) => {
                tracing::warn!(error = %e, "warehouse refresh failed; trying again at the next interval")
            }
        }
        let since = last_success.unwrap_or(started).elapsed().as_secs_f64();
        gauge!(LAG).set(since);
    }
}
