//! `surgstream sim`: a simulated fleet's telemetry and events to Kafka (or to a file).

use anyhow::{Context, Result};
use surgstream_sim::Simulation;
use surgstream_sim::kafka::SimReport;

use crate::cli::{ProfileArg, SimArgs};
use crate::setup::{print_sim_report, shutdown_token, sim_config, sink_options};

pub async fn run(a: SimArgs) -> Result<()> {
    let cfg = sim_config(
        &a.fleet,
        ProfileArg::Seed,
        chrono::Utc::now().timestamp_micros(),
    )?;
    let simulation = Simulation::new(cfg.clone())?;
    if a.output.is_some() || a.dry_run {
        let seed = simulation.seed();
        let report = match &a.output {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                surgstream_sim::file::write(simulation, &mut out)
                    .with_context(|| format!("cannot write {}", path.display()))?
            }
            None => surgstream_sim::file::write(simulation, &mut std::io::sink())?,
        };
        tracing::info!(seed, "simulation written without Kafka");
        print_sim_report(&report);
        return write_report(a.report.as_deref(), &report);
    }
    let opts = sink_options(&a.kafka, &a.fleet, &cfg)?;
    let producer = surgstream_sim::kafka::connect(&opts).await?;
    crate::http::serve(
        a.metrics_addr,
        crate::http::broker_ready(&producer, opts.kafka.brokers()),
    )
    .await?;
    if opts.paced {
        // An upper bound: every operating room in a procedure at once.
        metrics::gauge!(surgstream_sim::kafka::TARGET_RATE)
            .set(f64::from(cfg.robots) * f64::from(cfg.hz));
    }
    tracing::info!(brokers = %opts.kafka.brokers(), kafka = %opts.kafka.summary(), compression = %opts.compression, paced = opts.paced, seed = simulation.seed(),
        "simulation started: {cfg} (pass --seed to reproduce)");
    let report = surgstream_sim::kafka::run(simulation, &producer, &opts, shutdown_token()).await;
    print_sim_report(&report);
    write_report(a.report.as_deref(), &report)?;
    if report.delivery_errors > 0 {
        anyhow::bail!(
            "{} records could not be delivered to {}",
            report.delivery_errors,
            opts.kafka.brokers()
        );
    }
    Ok(())
}

fn write_report(path: Option<&std::path::Path>, report: &SimReport) -> Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_vec_pretty(report)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report to {}", path.display()))?;
    }
    Ok(())
}
