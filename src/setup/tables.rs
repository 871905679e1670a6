//! The lake's tables beside the commands that write it: the Iceberg tables (their publisher
//! and maintenance kept running beside an ingestor) and the warehouse, with its report.

use std::time::Duration;

use anyhow::Result;
use surgstream_iceberg::{Publisher, Tables};
use surgstream_lake::Lake;
use surgstream_store::Store;
use surgstream_warehouse::{RefreshReport, Warehouse};
use tokio_util::sync::CancellationToken;

use super::shutdown_token;
use crate::cli::{IngestOpts, KafkaArgs};

/// The Iceberg tables of `lake`, their SQL catalog `catalog` in the database of `store`.
pub fn iceberg_tables(lake: &Lake, store: &Store, catalog: &str) -> Result<Tables> {
    Ok(Tables::open(lake.clone(), store.pool().clone(), catalog)?)
}

/// The Iceberg publisher beside an ingestor (`ingest`, `demo`, `bench`): it publishes every
/// `--iceberg-interval` and, at [`Publishing::finish`], once more after the ingestor's last
/// commit. Nothing runs with `--no-iceberg`.
#[derive(Debug)]
pub struct Publishing(
    Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    Option<tokio::task::JoinHandle<()>>,
);

/// Every `interval` (the first one interval after the start), compacts the small closed files
/// the ingestor committed, then expires old snapshots and deletes what only they referenced.
/// A failure is logged and tried again at the next interval (a role without DELETE on
/// `lake_files` cannot compact: docs/security.md).
async fn keep_compacted(
    lake: Lake,
    store: Store,
    tables: Tables,
    compact: surgstream_ingest::compact::CompactOptions,
    expire: surgstream_iceberg::expire::ExpireOptions,
    interval: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = surgstream_ingest::compact::compact(&lake, &store, &compact).await;
        metrics::counter!(surgstream_ingest::compact::RUNS, "result" => if result.is_ok() { "ok" } else { "error" })
            .increment(1);
        match result {
            Ok(r) if r.compactions > 0 => tracing::info!(
                files = r.files_replaced,
                into = r.files_written,
                rows = r.rows,
                bytes_before = r.bytes_before,
                bytes_after = r.bytes_after,
                "compacted small closed lake files"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "compaction failed; trying again at the next interval")
            }
        }
        if let Err(e) =
            surgstream_iceberg::expire::expire(&tables, store.pool(), &compact.group, &expire).await
        {
            tracing::warn!(error = %e, "expiring Iceberg snapshots failed; trying again at the next interval");
        }
    }
}

impl Publishing {
    /// Starts publishing the telemetry files the ingestor of `o` and `k` commits (its group,
    /// its telemetry topic) to the table in `o`'s catalog, and its raw archive of both topics
    /// to the raw tables (unless `--raw-archive off`).
    pub fn start(lake: &Lake, store: &Store, o: &IngestOpts, k: &KafkaArgs) -> Result<Self> {
        let tables = iceberg_tables(lake, store, &o.iceberg.iceberg_catalog)?;
        let maintenance = (!o.iceberg.no_compact).then(|| {
            surgstream_ingest::compact::describe();
            surgstream_iceberg::keep::describe();
            tokio::spawn(keep_compacted(
                lake.clone(),
                store.clone(),
                tables.clone(),
                surgstream_ingest::compact::CompactOptions {
                    group: o.group.clone(),
                    topic: k.telemetry_topic.clone(),
                    older_than: surgstream_ingest::compact::DEFAULT_OLDER_THAN,
                    small_rows: surgstream_ingest::compact::DEFAULT_SMALL_ROWS,
                    target_rows: surgstream_ingest::compact::DEFAULT_TARGET_ROWS,
                    dry_run: false,
                },
                o.iceberg.retention.options(),
                o.iceberg.compact_interval,
            ))
        });
        if o.iceberg.no_iceberg {
            return Ok(Self(None, maintenance));
        }
        let pool = store.pool().clone();
        let mut publishers = vec![Publisher::new(
            tables.clone(),
            pool.clone(),
            &o.group,
            &k.telemetry_topic,
        )];
        if o.raw_archive {
            for topic in [&k.telemetry_topic, &k.events_topic] {
                publishers.push(Publisher::raw(
                    tables.clone(),
                    pool.clone(),
                    &o.group,
                    topic,
                ));
            }
        }
        surgstream_iceberg::keep::describe();
        // Its own token, not a child of the process's: the last publish must follow the
        // ingestor's last commit, which comes after the stop signal.
        let stop = CancellationToken::new();
        let task = tokio::spawn(surgstream_iceberg::keep::keep_published(
            publishers,
            o.iceberg.iceberg_interval,
            stop.clone(),
        ));
        Ok(Self(Some((stop, task)), maintenance))
    }

    /// Stops publishing when the ingestor has returned: with `last_publish`, after one more
    /// publish given at most that long (the next start publishes what it could not); with
    /// `None` (the ingestor failed), at once.
    pub async fn finish(self, last_publish: Option<Duration>) {
        // A compaction cut short is one that never happened (its objects, unnamed, are swept).
        if let Some(maintenance) = self.1 {
            maintenance.abort();
        }
        let Some((stop, mut task)) = self.0 else {
            return;
        };
        let Some(deadline) = last_publish else {
            task.abort();
            return;
        };
        stop.cancel();
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            tracing::warn!(
                "the last Iceberg publish did not finish within {}; the next start publishes what it would have",
                humantime::format_duration(deadline)
            );
            task.abort();
        }
    }

    /// How long the last publish may take after an ingestor returned `ok`: a moment after a stop
    /// signal (the process must end promptly, PostgreSQL may be down), longer after a drain.
    pub fn last_publish(ok: bool) -> Option<Duration> {
        match (ok, shutdown_token().is_cancelled()) {
            (false, _) => None,
            (true, true) => Some(Duration::from_secs(3)),
            (true, false) => Some(Duration::from_secs(120)),
        }
    }
}

/// The warehouse over `lake`'s files committed by `group`; with `iceberg` (a catalog name and
/// a retention), published as Iceberg tables in that catalog too.
pub fn warehouse(
    lake: &Lake,
    store: &Store,
    group: &str,
    memory_limit: u64,
    iceberg: Option<(&str, Duration)>,
) -> Result<Warehouse> {
    let wh = Warehouse::new(
        lake.clone(),
        store.pool().clone(),
        group,
        usize::try_from(memory_limit).unwrap_or(usize::MAX),
    );
    Ok(match iceberg {
        Some((catalog, retention)) => {
            wh.with_iceberg(iceberg_tables(lake, store, catalog)?, retention)
        }
        None => wh,
    })
}

/// The warehouse an ingestor's options describe (`ingest --warehouse-interval`, `demo`): its
/// group and memory limit, published to Iceberg in its catalog unless `--no-iceberg`.
pub fn ingest_warehouse(lake: &Lake, store: &Store, o: &IngestOpts) -> Result<Warehouse> {
    warehouse(
        lake,
        store,
        &o.group,
        o.warehouse_memory_limit,
        (!o.iceberg.no_iceberg).then_some((
            o.iceberg.iceberg_catalog.as_str(),
            surgstream_warehouse::ICEBERG_RETENTION,
        )),
    )
}

/// What a warehouse refresh rebuilt and read, in a few lines.
pub fn print_warehouse_report(r: &RefreshReport) {
    if !r.changed() {
        say!(
            "warehouse: up to date (no input changed since the last refresh), {:.2}s",
            r.seconds
        );
        print_iceberg(r);
        return;
    }
    let months = match (r.months.first(), r.months.last()) {
        (Some(a), Some(b)) if a != b => format!("{} months ({a} … {b})", r.months.len()),
        (Some(a), _) => format!("1 month ({a})"),
        _ => "no month".to_owned(),
    };
    say!(
        "warehouse: rebuilt {months}{}{}; read {} lake files ({} frames) in {:.2}s",
        if r.dimensions {
            " and the dimensions"
        } else {
            ""
        },
        if r.removed.is_empty() {
            String::new()
        } else {
            format!(", removed {}", r.removed.join(", "))
        },
        r.files_scanned,
        r.frames_scanned,
        r.seconds
    );
    for (table, rows) in &r.rows {
        say!("  {table:<20} {rows:>10} rows written");
    }
    print_iceberg(r);
}

/// The warehouse's Iceberg tables a refresh changed (files added, removed).
fn print_iceberg(r: &RefreshReport) {
    if !r.iceberg.is_empty() {
        let tables: Vec<String> = r
            .iceberg
            .iter()
            .map(|t| format!("{} (+{} −{})", t.table, t.added, t.removed))
            .collect();
        say!("  Iceberg snapshots: {}", tables.join(", "));
    }
}
