//! `surgstream verify`: the source topics against the committed lake and tables.

use anyhow::Result;
use surgstream_ingest::verify::{VerifyConfig, VerifyReport, verify};

use crate::cli::VerifyArgs;
use crate::setup::{connect_db, iceberg_tables, open_lake, verify_config};
use surgstream_iceberg::check::TableCheck;

pub async fn run(a: VerifyArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = connect_db(&a.db).await?;
    let cfg = verify_config(&a.kafka, &a.group, a.grace)?;
    let report = verify(&cfg, &lake, &store).await?;
    // The Iceberg table against the manifest, when there is one.
    let tables = iceberg_tables(&lake, &store, &a.iceberg_catalog)?;
    let iceberg =
        surgstream_iceberg::check::check(&tables, store.pool(), &a.group, &cfg.telemetry_topic)
            .await?;
    // And each topic's raw table against raw_files.
    let mut raw = std::collections::BTreeMap::new();
    for topic in [&cfg.telemetry_topic, &cfg.events_topic] {
        let check =
            surgstream_iceberg::check::check_raw(&tables, store.pool(), &a.group, topic).await?;
        raw.insert(surgstream_iceberg::raw::ident(topic).to_string(), check);
    }
    if a.json {
        // The lake's report as before, with the Iceberg tables' checks beside its fields.
        let mut json = serde_json::to_value(&report)?;
        if let Some(fields) = json.as_object_mut() {
            fields.insert("iceberg".to_owned(), serde_json::to_value(&iceberg)?);
            fields.insert("iceberg_raw".to_owned(), serde_json::to_value(&raw)?);
        }
        say!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&cfg, &report);
        print_iceberg("surgstream.procedure_telemetry", iceberg.as_ref());
        for (table, check) in &raw {
            if check.is_some() {
                print_iceberg(table, check.as_ref());
            }
        }
    }
    let discrepancies = report.discrepancies()
        + iceberg.as_ref().map_or(0, TableCheck::discrepancies)
        + raw
            .values()
            .flatten()
            .map(TableCheck::discrepancies)
            .sum::<u64>();
    if !a.json {
        say!(
            "verdict: {}",
            if discrepancies == 0 {
                "OK — the committed lake and tables hold every record below the committed offsets exactly once"
            } else {
                "DISCREPANCIES"
            }
        );
    }
    let pending = if a.require_drained {
        report.pending_records
    } else {
        0
    };
    let bad = discrepancies + pending;
    anyhow::ensure!(
        bad == 0,
        "verify found {} discrepancies{}",
        discrepancies,
        if pending > 0 {
            format!(" and {pending} records not yet ingested (--require-drained)")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn print_table(cfg: &VerifyConfig, r: &VerifyReport) {
    say!(
        "{:<44} {:>9} {:>9} {:>12} {:>10} {:>11} {:>9} {:>8}",
        "topic",
        "partition",
        "records",
        "committed",
        "high",
        "frames/ev.",
        "invalid",
        "pending"
    );
    for p in &r.partitions {
        say!(
            "{:<44} {:>9} {:>9} {:>12} {:>10} {:>11} {:>9} {:>8}",
            p.topic,
            p.partition,
            p.records,
            p.committed.map_or("-".to_owned(), |c| c.to_string()),
            p.high_watermark,
            p.items,
            p.invalid_records,
            p.pending_records
        );
    }
    say!(
        "lake (group {}): {} files in the manifest, {} missing from the store, {} orphans in the store{}",
        cfg.group,
        r.manifest_files,
        r.missing_files.len(),
        r.orphan_files.len(),
        if r.in_flight_files > 0 {
            format!(
                " ({} newer than the grace period: in flight)",
                r.in_flight_files
            )
        } else {
            String::new()
        }
    );
    say!(
        "frames: {} sent below the committed offsets, {} in the committed lake: {} missing, {} duplicated, {} never sent",
        r.frames_sent,
        r.frames_in_lake,
        r.missing,
        r.duplicated,
        r.unexpected
    );
    say!(
        "events: {} sent below the committed offsets, {} not processed",
        r.events_sent,
        r.events_unprocessed
    );
    if r.raw_checked {
        say!(
            "raw archive: {} files, {} records: {} missing, {} duplicated, {} never consumed, {} altered{}",
            r.raw_files,
            r.raw_records,
            r.raw_missing,
            r.raw_duplicated,
            r.raw_unexpected,
            r.raw_altered,
            if r.raw_before_start > 0 {
                format!(
                    " ({} records consumed before the archive started, not checked)",
                    r.raw_before_start
                )
            } else {
                String::new()
            }
        );
    } else {
        say!(
            "raw archive: none committed by this group (it ran with --raw-archive off): not checked"
        );
    }
    for e in &r.examples {
        say!("  {e}");
    }
    for f in r.missing_files.iter().take(10) {
        say!("  missing file: {f}");
    }
    for f in r.orphan_files.iter().take(10) {
        say!("  orphan file: {f}");
    }
}

fn print_iceberg(table: &str, check: Option<&TableCheck>) {
    let Some(c) = check else {
        say!("iceberg: no table {table} yet (nothing published)");
        return;
    };
    say!(
        "iceberg: {table}: snapshot {} (watermark {}): {} files, {} rows; the manifest has {} files below the watermark, {} after it (not yet published): {} missing from the table, {} unexpected, {} with other row counts, {} listed twice",
        c.snapshot_id.map_or("none".to_owned(), |s| s.to_string()),
        c.watermark,
        c.table_files,
        c.table_rows,
        c.published_files,
        c.unpublished_files,
        c.missing.len(),
        c.unexpected.len(),
        c.rows_differ.len(),
        c.duplicated.len()
    );
    for f in c
        .missing
        .iter()
        .map(|f| format!("missing from the Iceberg table: {f}"))
        .chain(
            c.unexpected
                .iter()
                .map(|f| format!("in the Iceberg table, not in the manifest: {f}")),
        )
        .chain(c.rows_differ.iter().cloned())
        .chain(
            c.duplicated
                .iter()
                .map(|f| format!("twice in the Iceberg table: {f}")),
        )
        .take(10)
    {
        say!("  {f}");
    }
}
