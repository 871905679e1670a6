//! `surgstream demo`: the simulator and the ingestor together, then a summary.

use std::time::Instant;

use anyhow::{Context, Result};
use surgstream_sim::Simulation;
use surgstream_store::offsets;
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, ProfileArg};
use surgstream_warehouse::{answers, fresh};

use crate::setup::{
    Publishing, iceberg_tables, ingest_config, ingest_warehouse, migrated_db, open_lake,
    print_sim_report, print_warehouse_report, shutdown_token, sim_config, sink_options,
    verify_config,
};

pub async fn run(a: DemoArgs) -> Result<()> {
    let lake = open_lake(&a.opts.lake)?;
    let store = migrated_db(&a.db, a.opts.skip_migrate).await?;
    let mut fleet = a.fleet.clone();
    if fleet.profile.unwrap_or(ProfileArg::Live) == ProfileArg::Live {
        // A live demo is short: procedures start for 30 s and a 2-hour case takes 15 s.
        fleet.duration = fleet.duration.or(Some(std::time::Duration::from_secs(30)));
        fleet.speed = fleet.speed.or(Some(480.0));
    }
    let cfg = sim_config(
        &fleet,
        ProfileArg::Live,
        chrono::Utc::now().timestamp_micros(),
    )?;
    let simulation = Simulation::new(cfg.clone())?;
    let sink = sink_options(&a.kafka, &fleet, &cfg)?;
    let producer = surgstream_sim::kafka::connect(&sink).await?;
    let shutdown = shutdown_token();
    let sim_done = CancellationToken::new();

    say!(
        "demo: {cfg}{}, seed {} → Kafka {} → lake {} + PostgreSQL {}",
        if sink.paced {
            ""
        } else {
            ", sent as fast as the broker takes it"
        },
        simulation.seed(),
        a.kafka.brokers,
        lake.url(),
        store.target()
    );
    let t0 = Instant::now();
    let ingest_cfg = ingest_config(&a.kafka, &a.opts, Some(std::time::Duration::from_secs(2)))?;
    crate::http::serve(
        a.opts.metrics_addr,
        crate::http::ingest_ready(ingest_cfg.health.clone()),
    )
    .await?;
    let publishing = Publishing::start(&lake, &store, &a.opts, &a.kafka)?;
    let ingest = tokio::spawn(surgstream_ingest::run(
        ingest_cfg,
        lake.clone(),
        store.clone(),
        shutdown.clone(),
        Some(sim_done.clone()),
    ));
    let sim_report =
        surgstream_sim::kafka::run(simulation, &producer, &sink, shutdown.clone()).await;
    sim_done.cancel();
    print_sim_report(&sim_report);
    let ingest_report = ingest.await.context("ingest task panicked")??;
    publishing.finish(Publishing::last_publish(true)).await;
    let elapsed = t0.elapsed().as_secs_f64();

    let files = offsets::committed_files(store.pool()).await?;
    let lake_rows: i64 = files.iter().map(|f| f.1).sum();
    let lake_bytes: i64 = files.iter().map(|f| f.2).sum();
    say!();
    say!("summary");
    say!("  frames sent                 {:>12}", sim_report.frames);
    say!(
        "  frames written (this run)   {:>12}",
        ingest_report.frames_written
    );
    say!(
        "  events sent / applied       {:>12} / {}",
        sim_report.events,
        ingest_report.events_applied
    );
    say!(
        "  dead letters                {:>12}",
        ingest_report.telemetry_dead_letters + ingest_report.event_dead_letters
    );
    say!(
        "  lake files (all runs)       {:>12}  ({} rows, {:.1} MiB) in {}",
        files.len(),
        lake_rows,
        lake_bytes as f64 / 1048576.0,
        lake.url()
    );
    say!(
        "  bytes per frame on disk     {:>12.1}",
        lake_bytes as f64 / (lake_rows.max(1) as f64)
    );
    for (table, n) in store.table_counts().await? {
        say!("  {table:<28}{n:>12}");
    }
    say!("  wall time                   {:>11.1}s", elapsed);
    say!(
        "  throughput                  {:>12.0} frames/s end to end",
        ingest_report.frames_written as f64 / elapsed.max(1e-9)
    );
    if sim_report.delivery_errors > 0 {
        anyhow::bail!(
            "{} records could not be delivered",
            sim_report.delivery_errors
        );
    }

    // The proof: the topics read back from the start against the committed lake and tables.
    let check = verify_config(&a.kafka, &a.opts.group, std::time::Duration::from_secs(60))?;
    let v = surgstream_ingest::verify::verify(&check, &lake, &store).await?;
    say!(
        "  verify (all runs)           {:>12} frames sent, {} in the committed lake: {} missing, {} duplicated; {} events unprocessed; {} orphan files",
        v.frames_sent,
        v.frames_in_lake,
        v.missing,
        v.duplicated,
        v.events_unprocessed,
        v.orphan_files.len()
    );
    if !v.orphan_files.is_empty() {
        say!(
            "  (orphan files are left by a crash between writing and committing, or by a database \
             recreated under an old lake; nothing reads them: `surgstream sweep` removes them)"
        );
    }
    anyhow::ensure!(
        v.data_discrepancies() == 0,
        "verify found {} discrepancies in the committed lake and tables (run `surgstream verify` for the details)",
        v.data_discrepancies()
    );
    // The Iceberg table the ingestor published, against the manifest.
    if !a.opts.iceberg.no_iceberg {
        let tables = iceberg_tables(&lake, &store, &a.opts.iceberg.iceberg_catalog)?;
        let check = surgstream_iceberg::check::check(
            &tables,
            store.pool(),
            &a.opts.group,
            &a.kafka.telemetry_topic,
        )
        .await?;
        if let Some(c) = check {
            say!(
                "  iceberg table               {:>12} files, {} rows in {} (snapshot {}); {} files not yet published, {} discrepancies",
                c.table_files,
                c.table_rows,
                tables.telemetry_ident(),
                c.snapshot_id.map_or("none".to_owned(), |s| s.to_string()),
                c.unpublished_files,
                c.discrepancies()
            );
            anyhow::ensure!(
                c.discrepancies() == 0,
                "the Iceberg table differs from the manifest (run `surgstream verify` for the details)"
            );
        }
    }

    // The warehouse: the star schema over what just landed, and three of its answers.
    say!();
    let wh = ingest_warehouse(&lake, &store, &a.opts)?;
    let report = fresh::refresh_recorded(&wh, true)
        .await?
        .unwrap_or_default();
    print_warehouse_report(&report);
    for q in &answers::QUERIES {
        say!();
        say!("{} (warehouse/{}):", q.title, q.file);
        say!("{}", answers::ask(store.pool(), q).await?);
    }
    say!(
        "the warehouse is in PostgreSQL's `warehouse` schema and under {}/{}/ (psql: \\dt warehouse.*)",
        lake.url(),
        surgstream_warehouse::output::ROOT
    );
    if !a.opts.iceberg.no_iceberg {
        say!(
            "and the Iceberg tables surgstream.procedure_telemetry and warehouse.* in the SQL catalog \
             (Spark: scripts/spark.sh sql warehouse/queries/by_facility.sql)"
        );
    }
    Ok(())
}
