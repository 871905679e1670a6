//! `surgstream verify`: the source topics against the committed lake and tables.

use anyhow::Result;
use surgstream_ingest::verify::{VerifyConfig, VerifyReport, verify};

use crate::cli::VerifyArgs;
use crate::setup::{connect_db, open_lake, verify_config};

pub async fn run(a: VerifyArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = connect_db(&a.db).await?;
    let cfg = verify_config(&a.kafka, &a.group, a.grace)?;
    let report = verify(&cfg, &lake, &store).await?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&cfg, &report);
    }
    let pending = if a.require_drained {
        report.pending_records
    } else {
        0
    };
    let bad = report.discrepancies() + pending;
    anyhow::ensure!(
        bad == 0,
        "verify found {} discrepancies{}",
        report.discrepancies(),
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
    for e in &r.examples {
        say!("  {e}");
    }
    for f in r.missing_files.iter().take(10) {
        say!("  missing file: {f}");
    }
    for f in r.orphan_files.iter().take(10) {
        say!("  orphan file: {f}");
    }
    say!(
        "verdict: {}",
        if r.discrepancies() == 0 {
            "OK — the committed lake and tables hold every record below the committed offsets exactly once"
        } else {
            "DISCREPANCIES"
        }
    );
}
