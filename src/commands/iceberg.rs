//! `surgstream iceberg publish`: the manifest's committed files into the Iceberg table, once;
//! `surgstream iceberg expire`: old snapshots and what only they referenced removed.

use anyhow::Result;
use surgstream_iceberg::Publisher;

use crate::cli::{IcebergArgs, IcebergCommand};
use crate::setup::{iceberg_tables, migrated_db, open_lake};

pub async fn run(a: IcebergArgs) -> Result<()> {
    match a.command {
        IcebergCommand::Publish(a) => {
            let lake = open_lake(&a.lake)?;
            let store = migrated_db(&a.db, a.skip_migrate).await?;
            let tables = iceberg_tables(&lake, &store, &a.iceberg_catalog)?;
            let pool = store.pool().clone();
            let publisher =
                Publisher::new(tables.clone(), pool.clone(), &a.group, &a.telemetry_topic);
            // Everything committed so far, waiting up to --wait for transactions that hold the
            // horizon back.
            let (report, caught_up) = publisher.publish_all(a.wait).await?;
            let mut raw = Vec::new();
            let mut all_caught_up = caught_up;
            for topic in [&a.telemetry_topic, &a.events_topic] {
                let publisher = Publisher::raw(tables.clone(), pool.clone(), &a.group, topic);
                let (report, caught_up) = publisher.publish_all(a.wait).await?;
                all_caught_up &= caught_up;
                raw.push((publisher.ident().to_string(), report));
            }
            // Registered in Glue: a push that failed at a commit is made now.
            let glue = match surgstream_iceberg::glue::sync(&pool, &a.iceberg_catalog, None).await {
                Ok(pushed) => pushed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot move the Glue entries to the tables' snapshots");
                    Vec::new()
                }
            };
            if !all_caught_up {
                tracing::warn!(
                    "files committed by transactions the horizon has not passed yet wait for the next publish: a transaction open in PostgreSQL for over {} holds it back",
                    humantime::format_duration(a.wait)
                );
            }
            if a.json {
                // The telemetry table's report, with the raw tables' under "raw".
                let mut out = serde_json::to_value(&report)?;
                out["raw"] = serde_json::to_value(
                    raw.iter()
                        .cloned()
                        .collect::<std::collections::BTreeMap<_, _>>(),
                )?;
                out["glue"] = serde_json::to_value(&glue)?;
                say!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            let tables = std::iter::once((publisher.ident().to_string(), report)).chain(raw);
            for (table, report) in tables {
                if report.files == 0 && report.watermark == 0 {
                    say!("iceberg: {table}: nothing to publish yet");
                } else if report.files == 0 {
                    say!(
                        "iceberg: {table} is up to date (watermark {}), {:.2}s",
                        report.watermark,
                        report.seconds
                    );
                } else {
                    say!(
                        "iceberg: appended {} files ({} rows, {} bytes) to {table} as snapshot {}, watermark {}, {:.2}s",
                        report.files,
                        report.rows,
                        report.bytes,
                        report.snapshot_id.unwrap_or_default(),
                        report.watermark,
                        report.seconds
                    );
                }
            }
            Ok(())
        }
        IcebergCommand::Register(a) => {
            let store = migrated_db(&a.db, a.skip_migrate).await?;
            let pushed = surgstream_iceberg::glue::register(
                store.pool(),
                &a.iceberg_catalog,
                a.glue_database.as_deref(),
                a.glue_catalog_id.as_deref(),
                a.region.as_deref(),
            )
            .await?;
            if a.json {
                say!("{}", serde_json::to_string_pretty(&pushed)?);
            } else {
                for p in &pushed {
                    say!(
                        "glue: {} is {} ({}: {})",
                        p.table,
                        p.glue,
                        p.result,
                        p.metadata_location
                    );
                }
            }
            Ok(())
        }
        IcebergCommand::Expire(a) => {
            let lake = open_lake(&a.lake)?;
            let store = migrated_db(&a.db, a.skip_migrate).await?;
            let tables = iceberg_tables(&lake, &store, &a.iceberg_catalog)?;
            let report = surgstream_iceberg::expire::expire(
                &tables,
                store.pool(),
                &a.group,
                &a.retention.options(),
            )
            .await?;
            if a.json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                say!(
                    "iceberg: {}expired {} snapshots ({} kept), deleted {} metadata files and {} retired lake files ({} still referenced); raw tables: {} merged, {} snapshots expired ({} kept), {} metadata files deleted; {:.2}s",
                    if report.manifests_merged {
                        "merged the manifests, "
                    } else {
                        ""
                    },
                    report.snapshots_expired,
                    report.snapshots_kept,
                    report.metadata_files_deleted,
                    report.retired_deleted,
                    report.retired_kept,
                    report.raw_manifests_merged,
                    report.raw_snapshots_expired,
                    report.raw_snapshots_kept,
                    report.raw_metadata_files_deleted,
                    report.seconds
                );
            }
            Ok(())
        }
    }
}
