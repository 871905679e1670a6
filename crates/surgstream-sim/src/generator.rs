//! The deterministic fleet generator: a time-ordered merge of one timeline per robot.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use surgstream_proto::time::{MICROS_PER_SECOND, day_of};
use surgstream_proto::v1::{self, Event, TelemetryBatch, event::Body};

use crate::catalog::{FACILITIES, FAMILY_NAMES, GIVEN_NAMES, MODEL_WEIGHTS, MODELS, PROCEDURES};
use crate::telemetry::ProcedureSignals;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Robots in the fleet (spread over up to 10 facilities, 5 robots each).
    pub robots: u32,
    /// Procedures in the whole run, shared round-robin among the robots.
    pub procedures: u32,
    /// Telemetry frames per second of procedure time, per procedure.
    pub hz: u32,
    /// Seed of every random choice: the same seed and options give the same records.
    pub seed: u64,
    /// Length of the simulated run; each robot's procedures are laid out inside it.
    pub duration: Duration,
    /// Frames of one procedure that fall in one such interval travel in one Kafka record.
    pub batch_interval: Duration,
    /// Start of the run, microseconds since the Unix epoch (UTC): "now" for a live run.
    pub start_micros: i64,
}

/// Why a simulation cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An option value that makes no sense.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name, as on the command line.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// A record value to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// For the events topic.
    Event(Box<Event>),
    /// For the telemetry topic.
    Telemetry(TelemetryBatch),
}

/// One record of the simulated stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it happens (microseconds UTC): a live run sends it at this wall-clock time.
    pub at: i64,
    /// Kafka key: the robot_id for events, the procedure_id for telemetry.
    pub key: [u8; 16],
    /// The value.
    pub payload: Payload,
}

/// A robot's static facts.
#[derive(Debug, Clone)]
struct Robot {
    id: [u8; 16],
    model: usize,
    facility: usize,
    firmware_patch: u32,
    surgeons: Vec<(String, String)>,
}

/// The whole fleet's stream, in time order.
#[derive(Debug)]
pub struct Simulation {
    seed: u64,
    duration: Duration,
    timelines: Vec<Timeline>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Simulation {
    /// Sets up the fleet. Fails with the option's name on a value that makes no sense.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        validate(&cfg)?;
        let mut fleet_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let facilities = (cfg.robots as usize).div_ceil(5).clamp(1, FACILITIES.len());
        // Surgeons belong to a facility and operate on any of its robots.
        let staff: Vec<Vec<(String, String)>> = (0..facilities)
            .map(|facility| {
                (0..4)
                    .map(|k| {
                        let id = format!("SURG-{:03}-{:03}", facility + 1, k + 1);
                        (id, person(&mut fleet_rng, "Dr. "))
                    })
                    .collect()
            })
            .collect();
        let robots: Vec<Robot> = (0..cfg.robots as usize)
            .map(|i| {
                let model = weighted(&mut fleet_rng, MODEL_WEIGHTS);
                let facility = i % facilities;
                Robot {
                    id: uuid(&mut fleet_rng),
                    model,
                    facility,
                    firmware_patch: fleet_rng.random_range(0..6),
                    surgeons: staff[facility].clone(),
                }
            })
            .collect();

        let per_robot = cfg.procedures.div_ceil(cfg.robots).max(1);
        let slot = cfg.duration.as_micros() as i64 / i64::from(per_robot);
        let mut timelines = Vec::with_capacity(robots.len());
        for (i, robot) in robots.into_iter().enumerate() {
            let count =
                (cfg.procedures / cfg.robots) + u32::from((i as u32) < cfg.procedures % cfg.robots);
            let rng = ChaCha8Rng::seed_from_u64(
                cfg.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1)),
            );
            timelines.push(Timeline::new(robot, count, slot, &cfg, rng));
        }
        let heap = timelines
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.peek_at().map(|at| Reverse((at, i))))
            .collect();
        Ok(Self {
            seed: cfg.seed,
            duration: cfg.duration,
            timelines,
            heap,
        })
    }

    /// The simulated length of the run.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Iterator for Simulation {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let Reverse((_, i)) = self.heap.pop()?;
        let timeline = &mut self.timelines[i];
        let record = timeline.pop()?;
        if let Some(at) = timeline.peek_at() {
            self.heap.push(Reverse((at, i)));
        }
        Some(record)
    }
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |option, reason: &str| {
        Err(SimError::InvalidOption {
            option,
            reason: reason.to_owned(),
        })
    };
    if cfg.robots == 0 {
        return bad("--robots", "must be at least 1");
    }
    if cfg.hz == 0 || cfg.hz > 10_000 {
        return bad("--hz", "must be between 1 and 10000 frames per second");
    }
    if cfg.duration < Duration::from_secs(1) {
        return bad("--duration", "must be at least 1s");
    }
    let per_robot = cfg.procedures.div_ceil(cfg.robots).max(1);
    if cfg.duration.as_micros() / u128::from(per_robot) < 200_000 {
        return bad(
            "--procedures",
            "too many procedures per robot for --duration: each needs at least 200ms",
        );
    }
    if cfg.batch_interval.is_zero() {
        return bad("--batch-interval", "must be greater than zero");
    }
    Ok(())
}

/// Picks an index with probability proportional to its weight.
fn weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn person(rng: &mut impl Rng, title: &str) -> String {
    let given = GIVEN_NAMES[rng.random_range(0..GIVEN_NAMES.len())];
    let family = FAMILY_NAMES[rng.random_range(0..FAMILY_NAMES.len())];
    format!("{title}{given} {family}")
}

fn uuid(rng: &mut impl Rng) -> [u8; 16] {
    *uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .as_bytes()
}

fn b(id: [u8; 16]) -> Bytes {
    Bytes::copy_from_slice(&id)
}

/// One robot's records, generated one procedure at a time.
#[derive(Debug)]
struct Timeline {
    robot: Robot,
    rng: ChaCha8Rng,
    pending: VecDeque<Record>,
    next_procedure: u32,
    procedures: u32,
    slot: i64,
    start: i64,
    hz: u32,
    batch_interval: i64,
    firmware_patch: u32,
}

impl Timeline {
    fn new(robot: Robot, procedures: u32, slot: i64, cfg: &SimConfig, rng: ChaCha8Rng) -> Self {
        let mut t = Self {
            firmware_patch: robot.firmware_patch,
            robot,
            rng,
            pending: VecDeque::new(),
            next_procedure: 0,
            procedures,
            slot,
            start: cfg.start_micros,
            hz: cfg.hz,
            batch_interval: cfg.batch_interval.as_micros().max(1) as i64,
        };
        t.register();
        t
    }

    fn peek_at(&self) -> Option<i64> {
        self.pending.front().map(|r| r.at)
    }

    fn pop(&mut self) -> Option<Record> {
        let record = self.pending.pop_front();
        if self.pending.is_empty() {
            self.refill();
        }
        record
    }

    fn event(&mut self, at: i64, body: Body) {
        let event = Event {
            event_id: b(uuid(&mut self.rng)),
            occurred_at: at,
            body: Some(body),
        };
        self.pending.push_back(Record {
            at,
            key: self.robot.id,
            payload: Payload::Event(Box::new(event)),
        });
    }

    fn firmware(&self) -> String {
        format!(
            "{}.{}",
            MODELS[self.robot.model].firmware_line, self.firmware_patch
        )
    }

    /// Registration and the robot's maintenance history, all before the run starts.
    fn register(&mut self) {
        let model = &MODELS[self.robot.model];
        let today = day_of(self.start);
        let installed = today - self.rng.random_range(400..2_500);
        let serial = format!(
            "{}{}-{:06}",
            model.serial_prefix,
            2_000 + (installed / 365 + 1970 - 2_000),
            self.rng.random_range(0..1_000_000)
        );
        let facility = self.robot.facility;
        let history = self.rng.random_range(1..=4);
        // The firmware at registration is the one before the history's upgrades.
        let upgrades = self.robot.firmware_patch.min(history);
        self.firmware_patch = self.robot.firmware_patch - upgrades;
        self.event(
            self.start,
            Body::RobotRegistered(v1::RobotRegistered {
                robot_id: b(self.robot.id),
                robot_serial_number: serial,
                robot_model: model.model.to_owned(),
                manufacturer: model.manufacturer.to_owned(),
                installation_date: installed,
                facility_id: format!("FAC-{:03}", facility + 1),
                facility_name: FACILITIES[facility].to_owned(),
                status: "operational".to_owned(),
                firmware_version: self.firmware(),
            }),
        );
        let mut day = installed;
        for k in 0..history {
            day += self
                .rng
                .random_range(60..(today - day).max(61) / (history - k + 1) as i32 + 61);
            let day = day.min(today - 1);
            let upgrade = k < upgrades;
            let kind = if upgrade {
                "upgrade"
            } else {
                ["routine", "calibration", "routine", "emergency"][self.rng.random_range(0..4)]
            };
            let at = self.start + k as i64 + 1;
            self.maintenance(at, day, kind);
        }
    }

    fn maintenance(&mut self, at: i64, day: i32, kind: &str) {
        let upgrade = kind == "upgrade";
        if upgrade {
            self.firmware_patch += 1;
        }
        let (issues, actions, parts, hours) = match kind {
            "routine" => (
                "none",
                "inspection, lubrication of instrument drive",
                "",
                4.0,
            ),
            "calibration" => (
                "arm 2 encoder drift 0.3 mm",
                "kinematic recalibration of all arms",
                "",
                3.0,
            ),
            "emergency" => (
                "instrument arm fault during docking",
                "replaced arm joint motor, functional test",
                "arm joint motor",
                18.0,
            ),
            _ => (
                "firmware out of date",
                "firmware upgrade, regression test",
                "",
                6.0,
            ),
        };
        let body = Body::MaintenanceLogged(v1::MaintenanceLogged {
            maintenance_id: b(uuid(&mut self.rng)),
            robot_id: b(self.robot.id),
            maintenance_date: day,
            maintenance_type: kind.to_owned(),
            technician_id: format!("TECH-{:04}", self.rng.random_range(0..10_000)),
            technician_name: person(&mut self.rng, ""),
            issues_found: issues.to_owned(),
            actions_taken: actions.to_owned(),
            parts_replaced: parts.to_owned(),
            downtime_hours: (hours * self.rng.random_range(0.7..1.4f64) * 100.0).round() / 100.0,
            next_maintenance_date: day + 90,
            cost: (match kind {
                "routine" => 1_800.0,
                "calibration" => 1_200.0,
                "emergency" => 14_000.0,
                _ => 3_500.0,
            } * self.rng.random_range(0.8..1.3f64)
                * 100.0)
                .round()
                / 100.0,
            firmware_version: if upgrade {
                self.firmware()
            } else {
                String::new()
            },
        });
        self.event(at, body);
    }

    /// Generates the next procedure's records (or, after the last, an end-of-run service).
    fn refill(&mut self) {
        while self.pending.is_empty() && self.next_procedure < self.procedures {
            let n = self.next_procedure;
            self.next_procedure += 1;
            self.procedure(n);
        }
        if self.pending.is_empty() && self.next_procedure == self.procedures {
            self.next_procedure += 1;
            // A fifth of the fleet goes into service after its last procedure.
            if self.rng.random_bool(0.2) {
                let at = self.start + i64::from(self.procedures) * self.slot - self.slot / 50;
                let reason = "scheduled preventive maintenance";
                self.event(
                    at,
                    Body::RobotStatusChanged(v1::RobotStatusChanged {
                        robot_id: b(self.robot.id),
                        status: "maintenance".into(),
                        reason: reason.into(),
                    }),
                );
                self.maintenance(at + 1, day_of(at), "routine");
                self.event(
                    at + 2,
                    Body::RobotStatusChanged(v1::RobotStatusChanged {
                        robot_id: b(self.robot.id),
                        status: "operational".into(),
                        reason: "service complete".into(),
                    }),
                );
            }
        }
    }

    fn procedure(&mut self, n: u32) {
        let model = &MODELS[self.robot.model];
        let kind = &PROCEDURES[model.procedures[self.rng.random_range(0..model.procedures.len())]];
        let slot_start = self.start + i64::from(n) * self.slot + 10;
        let procedure_id = uuid(&mut self.rng);
        let robot_id = self.robot.id;
        let (surgeon_id, surgeon_name) =
            self.robot.surgeons[self.rng.random_range(0..self.robot.surgeons.len())].clone();
        let sex = kind.sex.unwrap_or(if self.rng.random_bool(0.5) {
            "female"
        } else {
            "male"
        });
        let age = Normal::new(58.0f64, 14.0)
            .map_or(58.0, |d| d.sample(&mut self.rng))
            .clamp(18.0, 95.0) as i32;
        let complexity = LogNormal::new(0.95f64, 0.3)
            .map_or(2.5, |d| d.sample(&mut self.rng))
            .clamp(1.0, 5.0);
        let complexity = (complexity * 100.0).round() / 100.0;
        let start_time = slot_start + self.slot / 20;
        let end_time = slot_start + self.slot * 19 / 20;
        let patient_id = format!("PAT-{:08X}", self.rng.random::<u32>());
        self.event(
            slot_start,
            Body::ProcedureScheduled(v1::ProcedureScheduled {
                procedure_id: b(procedure_id),
                robot_id: b(robot_id),
                procedure_type: kind.procedure_type.to_owned(),
                procedure_category: kind.category.to_owned(),
                scheduled_start: start_time,
                surgeon_id,
                surgeon_name,
                patient_id,
                patient_age: age,
                patient_gender: sex.to_owned(),
                complexity_score: complexity,
            }),
        );
        let roll: f64 = self.rng.random();
        if roll < 0.04 {
            let at = slot_start + self.slot / 40;
            self.event(
                at,
                Body::ProcedureCancelled(v1::ProcedureCancelled {
                    procedure_id: b(procedure_id),
                    robot_id: b(robot_id),
                    reason: "patient not fit for surgery on the day".into(),
                }),
            );
            return;
        }
        let aborted = roll < 0.07;
        let end_time = if aborted {
            start_time + (end_time - start_time) * self.rng.random_range(20..80) / 100
        } else {
            end_time
        };
        self.event(
            start_time,
            Body::ProcedureStarted(v1::ProcedureStarted {
                procedure_id: b(procedure_id),
                robot_id: b(robot_id),
                start_time,
            }),
        );

        // Telemetry: frames at `hz` strictly inside [start_time, end_time).
        let step = MICROS_PER_SECOND as f64 / f64::from(self.hz);
        let frames = (((end_time - start_time) as f64) / step).floor() as u64;
        let mut signals = ProcedureSignals::new(&mut self.rng, model.tools, complexity);
        let mut batch = TelemetryBatch::default();
        let mut batch_end = start_time + self.batch_interval;
        for seq in 0..frames {
            let ts = start_time + (seq as f64 * step) as i64;
            if ts >= batch_end && !batch.frames.is_empty() {
                self.flush_batch(procedure_id, &mut batch);
                batch_end = ts - (ts - start_time) % self.batch_interval + self.batch_interval;
            }
            let t = (ts - start_time) as f64 / MICROS_PER_SECOND as f64;
            let telemetry_id = uuid(&mut self.rng);
            batch.frames.push(signals.frame(
                &mut self.rng,
                t,
                seq,
                ts,
                telemetry_id,
                procedure_id,
                robot_id,
            ));
        }
        if !batch.frames.is_empty() {
            self.flush_batch(procedure_id, &mut batch);
        }

        if aborted {
            self.event(
                end_time,
                Body::ProcedureAborted(v1::ProcedureAborted {
                    procedure_id: b(procedure_id),
                    robot_id: b(robot_id),
                    end_time,
                    reason: "uncontrolled bleeding, converted to open surgery".into(),
                }),
            );
        } else {
            self.event(
                end_time,
                Body::ProcedureCompleted(v1::ProcedureCompleted {
                    procedure_id: b(procedure_id),
                    robot_id: b(robot_id),
                    end_time,
                }),
            );
        }
        self.outcome(end_time + 1, procedure_id, complexity, age, aborted);
    }

    fn flush_batch(&mut self, procedure_id: [u8; 16], batch: &mut TelemetryBatch) {
        let at = batch.frames.last().map_or(self.start, |f| f.timestamp);
        self.pending.push_back(Record {
            at,
            key: procedure_id,
            payload: Payload::Telemetry(std::mem::take(batch)),
        });
    }

    fn outcome(
        &mut self,
        at: i64,
        procedure_id: [u8; 16],
        complexity: f64,
        age: i32,
        aborted: bool,
    ) {
        let risk = 0.04
            + 0.05 * (complexity - 1.0)
            + 0.002 * f64::from((age - 50).max(0))
            + if aborted { 0.5 } else { 0.0 };
        let roll: f64 = self.rng.random();
        let status = if roll < risk * 0.2 {
            "failed"
        } else if roll < risk {
            "complicated"
        } else {
            "successful"
        };
        let complications = match status {
            "successful" => String::new(),
            _ => [
                "post-operative ileus",
                "wound infection",
                "bleeding requiring transfusion",
                "urinary retention",
            ][self.rng.random_range(0..4)]
            .to_owned(),
        };
        let blood = LogNormal::new(4.5f64 + 0.25 * complexity, 0.5)
            .map_or(150.0, |d| d.sample(&mut self.rng));
        let stay = (1.0
            + complexity * 0.8
            + if status == "successful" { 0.0 } else { 3.0 }
            + self.rng.random_range(0.0..2.0)) as i32;
        let recovery = (95.0 - complexity * 6.0 - if status == "successful" { 0.0 } else { 25.0 }
            + self.rng.random_range(-8.0..5.0f64))
        .clamp(1.0, 100.0) as i32;
        let body = Body::OutcomeRecorded(v1::OutcomeRecorded {
            outcome_id: b(uuid(&mut self.rng)),
            procedure_id: b(procedure_id),
            robot_id: b(self.robot.id),
            success_status: status.to_owned(),
            blood_loss_ml: blood.min(5_000.0) as i32,
            complications,
            hospital_stay_days: stay,
            readmission_30day: self.rng.random_bool(if status == "successful" {
                0.03
            } else {
                0.2
            }),
            patient_satisfaction_score: ((f64::from(recovery) / 10.0).round() as i32).clamp(1, 10),
            surgeon_notes: match status {
                "successful" => "Uneventful procedure, standard port placement.",
                "complicated" => {
                    "Procedure completed with intra-operative difficulties; see complications."
                }
                _ => "Procedure failed to achieve its goal; patient referred for revision.",
            }
            .to_owned(),
            recovery_score: recovery,
            follow_up_required: status != "successful" || self.rng.random_bool(0.3),
        });
        self.event(at, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> SimConfig {
        SimConfig {
            robots: 4,
            procedures: 10,
            hz: 50,
            seed,
            duration: Duration::from_secs(20),
            batch_interval: Duration::from_millis(100),
            start_micros: 1_780_000_000_000_000,
        }
    }

    fn events(records: &[Record]) -> Vec<&Event> {
        records
            .iter()
            .filter_map(|r| match &r.payload {
                Payload::Event(e) => Some(e.as_ref()),
                Payload::Telemetry(_) => None,
            })
            .collect()
    }

    #[test]
    fn same_seed_same_records() {
        let a: Vec<Record> = Simulation::new(cfg(7)).expect("valid").collect();
        let b: Vec<Record> = Simulation::new(cfg(7)).expect("valid").collect();
        let c: Vec<Record> = Simulation::new(cfg(8)).expect("valid").collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn records_are_in_time_order_and_frames_inside_their_procedure() {
        let records: Vec<Record> = Simulation::new(cfg(1)).expect("valid").collect();
        assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
        let mut window = std::collections::HashMap::new();
        for e in events(&records) {
            match &e.body {
                Some(Body::ProcedureStarted(s)) => {
                    window.insert(s.procedure_id.clone(), (s.start_time, i64::MAX));
                }
                Some(Body::ProcedureCompleted(c)) => {
                    window.get_mut(&c.procedure_id).expect("started").1 = c.end_time;
                }
                Some(Body::ProcedureAborted(c)) => {
                    window.get_mut(&c.procedure_id).expect("started").1 = c.end_time;
                }
                _ => {}
            }
        }
        let mut frames = 0;
        for r in &records {
            if let Payload::Telemetry(batch) = &r.payload {
                for (i, f) in batch.frames.iter().enumerate() {
                    let (start, end) = window[&f.procedure_id];
                    assert!(
                        f.timestamp >= start && f.timestamp < end,
                        "frame outside its procedure"
                    );
                    assert_eq!(f.procedure_id.as_ref(), r.key.as_slice());
                    if i > 0 {
                        assert_eq!(f.seq, batch.frames[i - 1].seq + 1);
                    }
                    frames += 1;
                }
            }
        }
        assert!(frames > 0);
    }

    #[test]
    fn every_procedure_is_scheduled_and_ran_ones_have_one_outcome() {
        let records: Vec<Record> = Simulation::new(cfg(3)).expect("valid").collect();
        let evs = events(&records);
        let scheduled = evs
            .iter()
            .filter(|e| matches!(e.body, Some(Body::ProcedureScheduled(_))))
            .count();
        let started = evs
            .iter()
            .filter(|e| matches!(e.body, Some(Body::ProcedureStarted(_))))
            .count();
        let outcomes = evs
            .iter()
            .filter(|e| matches!(e.body, Some(Body::OutcomeRecorded(_))))
            .count();
        let robots = evs
            .iter()
            .filter(|e| matches!(e.body, Some(Body::RobotRegistered(_))))
            .count();
        assert_eq!(scheduled, 10);
        assert_eq!(robots, 4);
        assert_eq!(started, outcomes);
    }

    #[test]
    fn surgeons_belong_to_the_robot_s_facility() {
        let mut c = cfg(5);
        c.robots = 12;
        c.procedures = 60;
        c.duration = Duration::from_secs(60);
        c.hz = 1;
        let mut facility_of = std::collections::HashMap::new();
        let mut checked = 0;
        for r in Simulation::new(c).expect("valid") {
            let Payload::Event(e) = r.payload else {
                continue;
            };
            match e.body {
                Some(Body::RobotRegistered(robot)) => {
                    facility_of.insert(robot.robot_id.clone(), robot.facility_id.clone());
                }
                Some(Body::ProcedureScheduled(p)) => {
                    let facility = &facility_of[&p.robot_id];
                    let number = facility.trim_start_matches("FAC-");
                    assert!(
                        p.surgeon_id.starts_with(&format!("SURG-{number}-")),
                        "{} at {facility}",
                        p.surgeon_id
                    );
                    checked += 1;
                }
                _ => {}
            }
        }
        assert_eq!(checked, 60);
        assert!(
            facility_of
                .values()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
    }

    #[test]
    fn sex_matches_the_procedure() {
        let mut c = cfg(11);
        c.robots = 20;
        c.procedures = 200;
        c.duration = Duration::from_secs(60);
        c.hz = 1;
        for r in Simulation::new(c).expect("valid") {
            if let Payload::Event(e) = r.payload
                && let Some(Body::ProcedureScheduled(p)) = e.body
            {
                match p.procedure_type.as_str() {
                    "Radical Prostatectomy" => assert_eq!(p.patient_gender, "male"),
                    "Hysterectomy" | "Myomectomy" => assert_eq!(p.patient_gender, "female"),
                    _ => {}
                }
                assert!((1.0..=5.0).contains(&p.complexity_score));
            }
        }
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut c = cfg(1);
        c.robots = 0;
        let e = Simulation::new(c).expect_err("zero robots");
        assert_eq!(e.to_string(), "invalid option --robots: must be at least 1");
        let mut c = cfg(1);
        c.hz = 0;
        assert!(
            Simulation::new(c)
                .expect_err("zero hz")
                .to_string()
                .starts_with("invalid option --hz")
        );
    }
}
