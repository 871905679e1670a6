//! `surgstream ingest`: telemetry into the Parquet lake and events into PostgreSQL, exactly once.

use anyhow::Result;

use crate::cli::IngestArgs;
use surgstream_warehouse::archive::{ARCHIVE_RUNS, Archiver};
use surgstream_warehouse::fresh;
use tokio_util::sync::CancellationToken;

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
    // Finished procedures past their retention move to the archive.
    let archiving = match a.opts.archive_after {
        None => None,
        Some(after) => Some({
            surgstream_warehouse::archive::describe();
            let archiver = crate::commands::archive::archiver(
                &lake,
                &store,
                a.opts.iceberg.no_iceberg,
                &a.opts.iceberg.iceberg_catalog,
            )?;
            let stop = shutdown.child_token();
            let task = tokio::spawn(keep_archiving(
                archiver,
                after,
                a.opts.archive_interval,
                stop.clone(),
            ));
            (stop, task)
        }),
    };
    // The Iceberg table follows the manifest.
    let publishing = Publishing::start(&lake, &store, &a.opts, &a.kafka)?;
    let result = surgstream_ingest::run(cfg, lake, store, shutdown, None).await;
    for (stop, task) in refreshing.into_iter().chain(archiving) {
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

/// `--archive-after`: archives what finished more than `after` ago, now and every `interval`,
/// until `stop`. A failed run is logged and tried again at the next interval (what it did not
/// commit stays in PostgreSQL; its objects are swept).
async fn keep_archiving(
    archiver: Archiver,
    after: std::time::Duration,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    loop {
        let cutoff = chrono::Utc::now() - after;
        tokio::select! {
            _ = stop.cancelled() => return,
            result = archiver.archive(cutoff) => match result {
                Ok(_) => ::metrics::counter!(ARCHIVE_RUNS, "result" => "ok").increment(1),
                Err(e) => {
                    ::metrics::counter!(ARCHIVE_RUNS, "result" => "error").increment(1);
                    tracing::warn!(error = %e, "archiving failed; trying again at the next interval");
                }
            },
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
