//! `surgstream compact`: small closed lake files merged into month files, then the Iceberg
//! table brought up to date (each compaction a replace snapshot).

use anyhow::Result;
use surgstream_iceberg::Publisher;
use surgstream_ingest::compact::{CompactOptions, compact};

use crate::cli::CompactArgs;
use crate::setup::{iceberg_tables, migrated_db, open_lake};

pub async fn run(a: CompactArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = migrated_db(&a.db, a.skip_migrate).await?;
    let opts = CompactOptions {
        group: a.group.clone(),
        topic: a.telemetry_topic.clone(),
        older_than: a.older_than,
        small_rows: a.small_rows,
        target_rows: a.target_rows,
        dry_run: a.dry_run,
    };
    let report = compact(&lake, &store, &opts).await?;
    let publish = if a.dry_run || a.no_iceberg {
        None
    } else {
        let tables = iceberg_tables(&lake, &store, &a.iceberg_catalog)?;
        let publisher = Publisher::new(tables, store.pool().clone(), &a.group, &a.telemetry_topic);
        Some(
            publisher
                .publish_all(std::time::Duration::from_secs(30))
                .await?
                .0,
        )
    };
    if a.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "compaction": report,
                "iceberg": publish,
            }))?
        );
        return Ok(());
    }
    let verb = if a.dry_run { "would merge" } else { "merged" };
    say!(
        "compact: {verb} {} files ({} rows, {} bytes) into {}{}, {:.2}s",
        report.files_replaced,
        report.rows,
        report.bytes_before,
        report.files_written,
        if a.dry_run {
            String::new()
        } else {
            format!(
                " ({} bytes, {:.1} B/row)",
                report.bytes_after,
                report.bytes_after as f64 / report.rows.max(1) as f64
            )
        },
        report.seconds
    );
    if let Some(p) = publish {
        say!(
            "iceberg: followed {} compactions ({} files replaced by {}), appended {} files, watermark {}",
            p.compactions,
            p.replaced_files,
            p.compacted_files,
            p.files,
            p.watermark
        );
    }
    Ok(())
}
