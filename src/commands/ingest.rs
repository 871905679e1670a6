//! `surgstream ingest`: telemetry into the Parquet lake and events into PostgreSQL, exactly once.

use anyhow::Result;

use crate::cli::IngestArgs;
use crate::setup::{flush_causes, prepare_ingest, shutdown_token};

pub async fn run(a: IngestArgs) -> Result<()> {
    let (lake, store, cfg) = prepare_ingest(&a.kafka, &a.db, &a.opts, a.until_idle).await?;
    let report = surgstream_ingest::run(cfg, lake, store, shutdown_token(), None).await?;
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
