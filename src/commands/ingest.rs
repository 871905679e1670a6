//! `surgstream ingest`: telemetry into the Parquet lake and events into PostgreSQL, exactly once.

use anyhow::Result;

use crate::cli::IngestArgs;
use surgstream_warehouse::fresh;

use crate::setup::{Publishing, flush_causes, ingest_warehouse, prepare_ingest, shutdown_token};

pub async fn run(a: IngestArgs) -> Result<()> {
    let (lake, store, cfg) = prepare_ingest(&a.kafka, &a.db, &a.opts, a.until_idle).await?;
    let shutdown = shutdown_token();
    // The warehouse refreshes beside the ingest, until the ingest ends.
    let refreshing = match a.opts.warehouse_interval {
        None => None,
        Some(interval) => {
            fresh::describe();
            let wh = ingest_warehouse(&lake, &store, &a.opts)?;
            let stop = shutdown.child_token();
            Some((
                stop.clone(),
                tokio::spawn(fresh::keep_fresh(wh, interval, stop)),
            ))
        }
    };
    // The Iceberg table follows the manifest.
    let publishing = Publishing::start(&lake, &store, &a.opts, &a.kafka)?;
    let result = surgstream_ingest::run(cfg, lake, store, shutdown, None).await;
    if let Some((stop, task)) = refreshing {
        stop.cancel();
        let _ = task.await;
    }
    publishing
        .finish(Publishing::last_publish(result.is_ok()))
        .await;
    let report = result?;
    say!(
        "ingest: {} frames in {} files ({} bytes), {} events applied, {} replayed, {} telemetry and {} event dead letters, {:.1}s; flushes by cause: {}",
        report.frames_written,
        report.files_written,
        report.bytes_written,
        report.events_applied,
        report.events_replayed,
        report.telemetry_dead_letters,
        report.event_dead_letters,
        report.elapsed_seconds,
        flush_causes(&report.flushes)
    );
    Ok(())
}
