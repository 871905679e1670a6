//! Event application to the local PostgreSQL: the seed profile's full event volume (the data
//! model's two-year sample: every robot, procedure, lifecycle step, outcome and maintenance log),
//! applied in set-based batches of 1,000, one transaction each, as the ingestor does, into a fresh
//! database (`surgstream_bench_apply`, recreated per run; set DATABASE_ADMIN_URL to point
//! elsewhere). Issue 5's target is 20,000 events/s on this 2-core machine.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::{Connection, PgConnection};
use surgstream_proto::v1::Event;
use surgstream_sim::{Payload, SimConfig, Simulation};
use surgstream_store::{Applied, Source, Store, apply_events};

const DB: &str = "surgstream_bench_apply";

fn admin_url() -> String {
    std::env::var("DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn events() -> Vec<Event> {
    let cfg = SimConfig::seed(1.0, 11, 1_732_579_200_000_000);
    Simulation::new(cfg)
        .expect("valid")
        .filter_map(|r| match r.payload {
            Payload::Event(e) => Some(*e),
            Payload::Telemetry(_) => None,
        })
        .collect()
}

async fn fresh_store() -> Store {
    let mut admin = PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL (scripts/services.sh up)");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {DB}"))
        .execute(&mut admin)
        .await
        .expect("create");
    let url = admin_url().rsplit_once('/').map_or_else(
        || format!("postgres://postgres@127.0.0.1:5432/{DB}"),
        |(base, _)| format!("{base}/{DB}"),
    );
    let store = Store::connect(&url, 2, Duration::from_secs(10))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

const TABLES: &str = "surgical_robots, surgical_procedures, procedure_outcomes, robot_maintenance_logs, status_audit, processed_events";

async fn apply_all(store: &Store, events: &[Event]) {
    sqlx::query(&format!("TRUNCATE {TABLES} CASCADE"))
        .execute(store.pool())
        .await
        .expect("truncate");
    for (batch, chunk) in events.chunks(1_000).enumerate() {
        let mut tx = store.pool().begin().await.expect("begin");
        let events: Vec<(Source<'_>, &Event)> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let src = Source {
                    topic: "surgical.events.v1",
                    partition: 0,
                    offset: (batch * 1_000 + i) as i64,
                };
                (src, e)
            })
            .collect();
        let outcomes = apply_events(&mut tx, &events)
            .await
            .expect("no database error");
        for outcome in outcomes {
            assert_eq!(
                outcome,
                Ok(Applied::New),
                "the simulator's events all apply"
            );
        }
        tx.commit().await.expect("commit");
    }
}

fn apply(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let events = events();
    let store = rt.block_on(fresh_store());
    let mut g = c.benchmark_group("postgres");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("apply_events_1000_per_tx", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                rt.block_on(apply_all(&store, &events));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(20));
    targets = apply
}
criterion_main!(benches);
