//! `surgstream verify`: the source topics against the committed lake and tables; and
//! `surgstream sweep`: orphan lake files removed.

use std::time::Duration;

use anyhow::Result;
use surgstream_ingest::verify::{VerifyConfig, VerifyReport, verify};

use crate::cli::{DbArgs, KafkaArgs, connect_db, open_lake, positive_duration};

#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory or file:///abs/path.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// Only files older than this are orphans (younger ones may be a flush in progress), e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = positive_duration)]
    pub grace: Duration,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn sweep(a: SweepArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = connect_db(&a.db).await?;
    let u = surgstream_ingest::verify::sweep(&lake, &store, a.grace, a.dry_run).await?;
    for f in &u.orphans {
        say!("{} {f}", if a.dry_run { "would remove" } else { "removed" });
    }
    say!(
        "sweep: {} orphan files {}, {} younger than {:?} left alone",
        u.orphans.len(),
        if a.dry_run { "found" } else { "removed" },
        u.in_flight,
        a.grace
    );
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Lake location: a directory or file:///abs/path.
    #[arg(long, env = "SURGSTREAM_LAKE", default_value = "./data/lake")]
    pub lake: String,
    /// The consumer group whose committed offsets and manifest are checked.
    #[arg(long, env = "SURGSTREAM_GROUP", default_value = "surgstream-ingest")]
    pub group: String,
    /// Files no manifest row names are orphans once older than this (younger: a flush in
    /// progress), e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    pub grace: Duration,
    /// Records not yet ingested (at or above the committed offsets) count as discrepancies.
    #[arg(long)]
    pub require_drained: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What to verify: the topics of `k`, the committed offsets and manifest of `group`.
pub fn config(k: &KafkaArgs, group: &str, grace: Duration) -> VerifyConfig {
    VerifyConfig {
        brokers: k.brokers.clone(),
        group: group.to_owned(),
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        timeout: k.kafka_timeout,
        grace,
    }
}

pub async fn run(a: VerifyArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = connect_db(&a.db).await?;
    let cfg = config(&a.kafka, &a.group, a.grace);
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
