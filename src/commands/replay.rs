//! `surgstream replay --from-raw`: the raw archive produced again to a topic.

use anyhow::Result;
use surgstream_ingest::replay::{ReplayConfig, replay_raw};
use surgstream_store::raw::Window;

use crate::cli::ReplayArgs;
use crate::setup::{kafka_settings, migrated_db, open_lake};

pub async fn run(a: ReplayArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = migrated_db(&a.db, a.skip_migrate).await?;
    let cfg = ReplayConfig {
        kafka: kafka_settings(&a.brokers, a.kafka_config.as_deref())?,
        group: a.group.clone(),
        topic: a.topic.clone(),
        to_topic: a.to_topic.clone(),
        window: Window {
            since: a.since,
            until: a.until,
        },
        same_partitions: !a.partition_by_key,
        keep_timestamps: a.keep_timestamps,
        timeout: a.kafka_timeout,
    };
    let report = replay_raw(&cfg, &lake, &store).await?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say!(
            "replay: {} records ({} bytes) from {} raw files of {} (group {}) to {} in {:.1}s{}",
            report.records,
            report.bytes,
            report.files,
            a.topic,
            a.group,
            a.to_topic,
            report.elapsed_seconds,
            if report.outside_window > 0 {
                format!("; {} outside the window left out", report.outside_window)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
