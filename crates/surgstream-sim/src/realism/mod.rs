//! Tests of what the simulator promises: the data model's volumes, every constraint of the
//! data model, plausible distributions and correlations, time order and determinism. The
//! expectations are written out here (model → manufacturer, what each kind of robot may do),
//! not read back from the catalog the generator uses.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use surgstream_proto::time::{MICROS_PER_DAY, MICROS_PER_HOUR, day_of};
use surgstream_proto::v1::{Event, TelemetryFrame, event::Body};

use crate::{Payload, Record, SimConfig, Simulation};

mod fleet;
mod outcomes;
mod runs;
mod telemetry;

/// 2024-11-26T00:00:00Z: the seed window is the two years after it.
const WINDOW_START: i64 = 1_732_579_200_000_000;

fn seed_run() -> &'static [Record] {
    static RUN: OnceLock<Vec<Record>> = OnceLock::new();
    RUN.get_or_init(|| {
        Simulation::new(SimConfig::seed(1.0, 42, WINDOW_START))
            .expect("valid")
            .collect()
    })
}

fn live_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::live(6, seed, 1_790_000_000_000_000);
    cfg.speed = 240.0; // a 2-hour case in 30 s
    cfg.duration = Some(Duration::from_secs(60));
    cfg
}

fn live_run() -> &'static [Record] {
    static RUN: OnceLock<Vec<Record>> = OnceLock::new();
    RUN.get_or_init(|| Simulation::new(live_config(5)).expect("valid").collect())
}

fn events(records: &[Record]) -> impl Iterator<Item = (i64, &Event)> {
    records.iter().filter_map(|r| match &r.payload {
        Payload::Event(e) => Some((r.at, e.as_ref())),
        Payload::Telemetry(_) => None,
    })
}

fn frames(records: &[Record]) -> impl Iterator<Item = &TelemetryFrame> {
    records.iter().flat_map(|r| match &r.payload {
        Payload::Telemetry(b) => b.frames.iter(),
        Payload::Event(_) => [].iter(),
    })
}

fn count(records: &[Record], pred: impl Fn(&Body) -> bool) -> usize {
    events(records)
        .filter(|(_, e)| e.body.as_ref().is_some_and(&pred))
        .count()
}

fn within(actual: usize, expected: usize, tolerance: f64) -> bool {
    (actual as f64 - expected as f64).abs() <= expected as f64 * tolerance
}

/// Everything known about one procedure, from its events.
#[derive(Debug, Default, Clone)]
struct Proc {
    robot: Vec<u8>,
    kind: String,
    category: String,
    sex: String,
    age: i32,
    complexity: f64,
    surgeon: String,
    scheduled: i64,
    start: Option<i64>,
    end: Option<i64>,
    status: &'static str,
    outcome: Option<surgstream_proto::v1::OutcomeRecorded>,
}

fn procedures(records: &[Record]) -> HashMap<Vec<u8>, Proc> {
    let mut out: HashMap<Vec<u8>, Proc> = HashMap::new();
    for (_, e) in events(records) {
        match &e.body {
            Some(Body::ProcedureScheduled(p)) => {
                let fresh = out.insert(
                    p.procedure_id.to_vec(),
                    Proc {
                        robot: p.robot_id.to_vec(),
                        kind: p.procedure_type.clone(),
                        category: p.procedure_category.clone(),
                        sex: p.patient_gender.clone(),
                        age: p.patient_age,
                        complexity: p.complexity_score,
                        surgeon: p.surgeon_id.clone(),
                        scheduled: p.scheduled_start,
                        status: "scheduled",
                        ..Proc::default()
                    },
                );
                assert!(fresh.is_none(), "procedure scheduled twice");
            }
            Some(Body::ProcedureStarted(s)) => {
                let p = out
                    .get_mut(&s.procedure_id[..])
                    .expect("started after scheduled");
                assert_eq!(p.status, "scheduled");
                p.start = Some(s.start_time);
                p.status = "in_progress";
            }
            Some(Body::ProcedureCompleted(c)) => {
                let p = out.get_mut(&c.procedure_id[..]).expect("known");
                assert_eq!(p.status, "in_progress");
                p.end = Some(c.end_time);
                p.status = "completed";
            }
            Some(Body::ProcedureAborted(c)) => {
                let p = out.get_mut(&c.procedure_id[..]).expect("known");
                assert_eq!(p.status, "in_progress");
                p.end = Some(c.end_time);
                p.status = "aborted";
            }
            Some(Body::ProcedureCancelled(c)) => {
                let p = out.get_mut(&c.procedure_id[..]).expect("known");
                assert_eq!(p.status, "scheduled");
                p.status = "cancelled";
            }
            Some(Body::OutcomeRecorded(o)) => {
                let p = out.get_mut(&o.procedure_id[..]).expect("known");
                assert!(
                    matches!(p.status, "completed" | "aborted"),
                    "outcome of a procedure that did not run"
                );
                assert!(p.outcome.replace(o.clone()).is_none(), "two outcomes");
            }
            _ => {}
        }
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
