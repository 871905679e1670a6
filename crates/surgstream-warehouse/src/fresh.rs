//! Keeping the warehouse fresh in a long-running process (`ingest --warehouse-interval`,
//! `warehouse --interval`), with its metrics.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};
use tokio_util::sync::CancellationToken;

use crate::{RefreshReport, Warehouse, WarehouseError};

/// Refreshes the warehouse once and records the metrics:
/// `surgstream_warehouse_refresh_duration_seconds`, `surgstream_warehouse_refreshes_total`
/// by result, `surgstream_warehouse_months_rebuilt_total`,
/// `surgstream_warehouse_frames_scanned_total`, and
/// `surgstream_warehouse_last_success_timestamp_seconds` (when the inputs of the last complete
/// refresh were read; the lag is `time()` minus it). `wait`: wait for a refresh running
/// elsewhere, else skip (`Ok(None)`).
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
            histogram!("surgstream_warehouse_refresh_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            counter!("surgstream_warehouse_months_rebuilt_total")
                .increment(report.months.len() as u64);
            counter!("surgstream_warehouse_frames_scanned_total").increment(report.frames_scanned);
            gauge!("surgstream_warehouse_last_success_timestamp_seconds").set(read_at);
            "ok"
        }
        Ok(None) => "skipped",
        Err(_) => "error",
    };
    counter!("surgstream_warehouse_refreshes_total", "result" => outcome).increment(1);
    result
}

/// Refreshes every `interval` until `shutdown`; a failed refresh is logged and tried again at
/// the next tick (the previous warehouse stays readable). Also sets
/// `surgstream_warehouse_lag_seconds` at each tick: seconds since the inputs of the last
/// complete refresh were read.
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
        gauge!("surgstream_warehouse_lag_seconds").set(since);
    }
}
