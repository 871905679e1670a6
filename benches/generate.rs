//! The simulator alone: plan, generate and encode records, as `surgstream sim --dry-run` does
//! (written to a sink, no broker). Issue target: at least 2 million frames/s per core.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use surgstream_sim::{SimConfig, Simulation};

/// 2024-11-26T00:00:00Z.
const START: i64 = 1_732_579_200_000_000;

fn seed_profile() -> SimConfig {
    // A fifth of the data model's volumes: 1,000 procedures × 100 samples.
    SimConfig::seed(0.2, 7, START)
}

fn live_1khz() -> SimConfig {
    // Ten operating rooms at 1 kHz, ten procedures of about 10 s each.
    let mut cfg = SimConfig::live(10, 7, START);
    cfg.hz = 1_000;
    cfg.speed = 720.0;
    cfg.procedures = Some(10);
    cfg
}

fn dry_run(cfg: &SimConfig) -> u64 {
    let sim = Simulation::new(cfg.clone()).expect("valid bench config");
    surgstream_sim::file::write(sim, &mut std::io::sink())
        .expect("a sink never fails")
        .frames
}

fn generate(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_dry_run");
    for (name, cfg) in [("seed_profile", seed_profile()), ("live_1khz", live_1khz())] {
        g.throughput(Throughput::Elements(dry_run(&cfg)));
        g.bench_function(name, |b| b.iter(|| dry_run(black_box(&cfg))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(8));
    targets = generate
}
criterion_main!(benches);
