//! The deterministic fleet generator: a time-ordered merge of one timeline per robot.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use surgstream_proto::time::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND, day_of};
use surgstream_proto::v1::{self, Event, TelemetryBatch, event::Body};

use crate::catalog::{FACILITIES, FAMILY_NAMES, GIVEN_NAMES, MODEL_WEIGHTS, MODELS, PROCEDURES};
use crate::plan::{
    Activity, Facility, Fate, LivePlanner, MaintKind, MaintPlan, ProcPlan, RobotSpec, apportion,
    midnight, plan_calendar,
};
use crate::telemetry::{ProcedureSignals, round};

/// Which kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The data model's sample volumes over a past window, as a backfill: 50 robots in 10
    /// facilities, 5,000 procedures over two years, 100 telemetry samples per procedure, 200
    /// maintenance logs (times `scale`).
    Seed,
    /// Operating rooms streaming now, in wall-clock time, at `hz` per procedure.
    Live,
}

/// What to simulate. [`SimConfig::seed`] and [`SimConfig::live`] give each profile's defaults.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Which kind of run.
    pub profile: Profile,
    /// Robots in the fleet.
    pub robots: u32,
    /// Facilities the robots are spread over (round-robin).
    pub facilities: u32,
    /// Seed: procedures in the window. Live: at most this many in the run (None: no limit).
    pub procedures: Option<u32>,
    /// Seed: maintenance logs in the window. Live: unused (each robot brings its history, and
    /// emergencies follow aborted procedures).
    pub maintenance: u32,
    /// Seed: telemetry samples per procedure, evenly spaced, in one record.
    pub samples: u32,
    /// Live: telemetry frames per second of procedure time.
    pub hz: u32,
    /// Live: how much faster than real time procedures, turnovers and repairs run (telemetry
    /// stays at `hz` in wall-clock time).
    pub speed: f64,
    /// Seed of every random choice: the same seed and options give the same records.
    pub seed: u64,
    /// Seed: the window's length (whole days). Live: the run's length (None: until stopped);
    /// procedures still running at its end stay in progress, as when a real feed stops.
    pub duration: Option<Duration>,
    /// Live: frames of one procedure that fall in one such interval travel in one record.
    pub batch_interval: Duration,
    /// Start of the run, microseconds since the Unix epoch (UTC). Seed: the window's first day.
    pub start_micros: i64,
}

impl SimConfig {
    /// Days in the seed profile's default window.
    pub const SEED_DAYS: u64 = 730;

    /// The seed profile with the data model's volumes times `scale`, over the two years before
    /// `start_micros + 730 days`.
    pub fn seed(scale: f64, seed: u64, start_micros: i64) -> Self {
        let times = |n: f64| (n * scale).round().max(1.0) as u32;
        Self {
            profile: Profile::Seed,
            robots: times(50.0),
            facilities: times(10.0),
            procedures: Some(times(5_000.0)),
            maintenance: times(200.0),
            samples: 100,
            hz: 100,
            speed: 1.0,
            seed,
            duration: Some(Duration::from_secs(Self::SEED_DAYS * 86_400)),
            batch_interval: Duration::from_millis(100),
            start_micros,
        }
    }

    /// The live profile: `robots` operating rooms at 100 Hz, in real time, until stopped.
    pub fn live(robots: u32, seed: u64, start_micros: i64) -> Self {
        Self {
            profile: Profile::Live,
            robots,
            facilities: robots.div_ceil(5).max(1),
            procedures: None,
            maintenance: 0,
            samples: 100,
            hz: 100,
            speed: 1.0,
            seed,
            duration: None,
            batch_interval: Duration::from_millis(100),
            start_micros,
        }
    }

    /// A digest of every option, mixed into the seed: the same seed with other options gives
    /// another fleet (other ids, serials), so two runs never collide in one database.
    fn digest(&self) -> u64 {
        let fields = [
            self.profile as u64,
            u64::from(self.robots),
            u64::from(self.facilities),
            self.procedures.map_or(u64::MAX, u64::from),
            u64::from(self.maintenance),
            u64::from(self.samples),
            u64::from(self.hz),
            self.speed.to_bits(),
            self.duration.map_or(u64::MAX, |d| d.as_micros() as u64),
            self.batch_interval.as_micros() as u64,
            self.start_micros as u64,
        ];
        fields
            .iter()
            .fold(splitmix(self.seed), |h, f| splitmix(h ^ f))
    }
}

impl std::fmt::Display for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.profile {
            Profile::Seed => write!(
                f,
                "seed profile: {} robots in {} facilities, {} procedures over {} days with {} telemetry samples each, {} maintenance logs",
                self.robots,
                self.facilities,
                self.procedures.unwrap_or(0),
                window_days(self),
                self.samples,
                self.maintenance
            ),
            Profile::Live => {
                write!(
                    f,
                    "live profile: {} operating rooms in {} facilities at {} Hz, {}x real time",
                    self.robots, self.facilities, self.hz, self.speed
                )?;
                if let Some(n) = self.procedures {
                    write!(f, ", at most {n} procedures")?;
                }
                match self.duration {
                    Some(d) => write!(f, ", for {:.0}s", d.as_secs_f64()),
                    None => write!(f, ", until stopped"),
                }
            }
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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

/// The whole fleet's stream, in time order.
#[derive(Debug)]
pub struct Simulation {
    seed: u64,
    profile: Profile,
    horizon: Option<Duration>,
    /// Start of the run, µs UTC (a live run's records are due this long after the send starts).
    start_micros: i64,
    /// A live run with a duration ends here: later records are not made, and procedures still
    /// running stay in progress (the feed stopped).
    stop_at: Option<i64>,
    timelines: Vec<Timeline>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Simulation {
    /// Sets up the fleet and plans its activities. Fails with the option's name on a value that
    /// makes no sense.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        validate(&cfg)?;
        let digest = cfg.digest();
        let mut fleet_rng = ChaCha8Rng::seed_from_u64(digest);
        let facilities = facilities(&mut fleet_rng, cfg.facilities as usize);
        let mut rngs: Vec<ChaCha8Rng> = (0..cfg.robots as u64)
            .map(|i| ChaCha8Rng::seed_from_u64(splitmix(digest ^ splitmix(i + 1))))
            .collect();
        let robots = robots(&cfg, &mut fleet_rng, &mut rngs);
        // A live run with a duration: no case starts after its end, no record is made after it.
        let stop_at = match cfg.profile {
            Profile::Seed => None,
            Profile::Live => cfg
                .duration
                .map(|d| cfg.start_micros + d.as_micros() as i64),
        };
        let frames = match cfg.profile {
            Profile::Seed => Frames::Samples(cfg.samples),
            Profile::Live => Frames::Rate {
                hz: cfg.hz,
                batch_interval: cfg.batch_interval.as_micros().max(1) as i64,
            },
        };
        let sources: Vec<Source> = match cfg.profile {
            Profile::Seed => {
                let days = window_days(&cfg);
                plan_calendar(
                    &robots,
                    &mut rngs,
                    day_of(cfg.start_micros),
                    days,
                    u64::from(cfg.procedures.unwrap_or(0)),
                    u64::from(cfg.maintenance),
                )
                .map_err(|e| SimError::InvalidOption {
                    option: e.option,
                    reason: e.reason,
                })?
                .into_iter()
                .map(|acts| Source::Calendar(acts.into_iter()))
                .collect()
            }
            Profile::Live => {
                let shares = cfg.procedures.map(|n| {
                    apportion(u64::from(n), &vec![1; robots.len()])
                        .into_iter()
                        .map(|s| s as u32)
                        .collect::<Vec<_>>()
                });
                robots
                    .iter()
                    .zip(rngs.iter_mut())
                    .enumerate()
                    .map(|(i, (r, rng))| {
                        // Every room starts its first case within three seconds: data flows at once.
                        let first = cfg.start_micros + rng.random_range(500_000..3_000_000);
                        let remaining = shares.as_ref().map(|s| s[i]);
                        Source::Live(LivePlanner::new(r, first, stop_at, remaining, cfg.speed))
                    })
                    .collect()
            }
        };
        let facilities: Vec<Arc<Facility>> = facilities.into_iter().map(Arc::new).collect();
        let timelines: Vec<Timeline> = robots
            .into_iter()
            .zip(rngs)
            .zip(sources)
            .map(|((robot, rng), source)| {
                let facility = facilities[robot.facility].clone();
                Timeline::new(robot, facility, rng, source, frames, cfg.profile)
            })
            .collect();
        let heap = timelines
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.peek_at().map(|at| Reverse((at, i))))
            .collect();
        Ok(Self {
            seed: cfg.seed,
            profile: cfg.profile,
            horizon: match cfg.profile {
                Profile::Seed => Some(Duration::from_secs(
                    window_days(&cfg) as u64 * MICROS_PER_DAY as u64 / 1_000_000,
                )),
                Profile::Live => cfg.duration,
            },
            start_micros: cfg.start_micros,
            stop_at,
            timelines,
            heap,
        })
    }

    /// How much simulated time the run covers: the seed window, or a live run's duration (None
    /// when it goes on until stopped).
    pub fn horizon(&self) -> Option<Duration> {
        self.horizon
    }

    /// Start of the run, microseconds UTC.
    pub fn start_micros(&self) -> i64 {
        self.start_micros
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Which profile this run follows.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Frames generated and not yet returned, over the whole fleet.
    #[cfg(test)]
    pub(crate) fn buffered_frames(&self) -> usize {
        self.timelines
            .iter()
            .flat_map(|t| &t.pending)
            .map(|r| match &r.payload {
                Payload::Telemetry(b) => b.frames.len(),
                Payload::Event(_) => 0,
            })
            .sum()
    }
}

impl Iterator for Simulation {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let Reverse((at, i)) = *self.heap.peek()?;
        if self.stop_at.is_some_and(|stop| at >= stop) {
            return None;
        }
        self.heap.pop();
        let timeline = &mut self.timelines[i];
        let record = timeline.pop()?;
        if let Some(at) = timeline.peek_at() {
            self.heap.push(Reverse((at, i)));
        }
        Some(record)
    }
}

fn window_days(cfg: &SimConfig) -> i32 {
    cfg.duration
        .map_or(0, |d| (d.as_secs() / 86_400).min(100_000) as i32)
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |option, reason: &str| {
        Err(SimError::InvalidOption {
            option,
            reason: reason.to_owned(),
        })
    };
    if cfg.robots == 0 || cfg.robots > 1_000_000 {
        return bad("--robots", "must be between 1 and 1000000");
    }
    if cfg.facilities == 0 || cfg.facilities > cfg.robots {
        return bad(
            "--scale",
            "gives no facility, or more facilities than robots",
        );
    }
    if cfg.hz == 0 || cfg.hz > 10_000 {
        return bad("--hz", "must be between 1 and 10000 frames per second");
    }
    if cfg.samples == 0 || cfg.samples > 1_000_000 {
        return bad("--samples", "must be between 1 and 1000000 per procedure");
    }
    if !(cfg.speed.is_finite() && (1.0..=1_000_000.0).contains(&cfg.speed)) {
        return bad("--speed", "must be between 1 and 1000000");
    }
    if cfg.batch_interval.is_zero() {
        return bad("--batch-interval", "must be greater than zero");
    }
    match cfg.profile {
        Profile::Seed => {
            if window_days(cfg) < 7 {
                return bad(
                    "--duration",
                    "the seed profile's window must be at least 7 days",
                );
            }
            if cfg.procedures.is_none() {
                return bad("--procedures", "the seed profile needs a procedure count");
            }
        }
        Profile::Live => {
            if cfg.duration.is_some_and(|d| d < Duration::from_secs(1)) {
                return bad("--duration", "must be at least 1s");
            }
        }
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

/// Facilities and their surgeons (4 to 8 each).
fn facilities(rng: &mut ChaCha8Rng, count: usize) -> Vec<Facility> {
    (0..count)
        .map(|f| {
            let base = FACILITIES[f % FACILITIES.len()];
            let name = match f / FACILITIES.len() {
                0 => base.to_owned(),
                n => format!("{base} — Campus {}", n + 1),
            };
            let surgeons = (0..rng.random_range(4..=8))
                .map(|k| {
                    (
                        format!("SURG-{:03}-{:03}", f + 1, k + 1),
                        person(rng, "Dr. "),
                    )
                })
                .collect();
            Facility {
                id: format!("FAC-{:03}", f + 1),
                name,
                surgeons,
            }
        })
        .collect()
}

/// The fleet: models by market share, installation dates, a few robots installed or retired
/// inside a seed window.
fn robots(cfg: &SimConfig, fleet: &mut ChaCha8Rng, rngs: &mut [ChaCha8Rng]) -> Vec<RobotSpec> {
    let start_day = day_of(cfg.start_micros);
    let days = window_days(cfg);
    let n = cfg.robots as usize;
    // Serial numbers: the robot's index spread over 0..10^6 by a multiplier prime to 10^6, so
    // no two robots of a fleet (at most a million) share one.
    let serial_offset: u64 = fleet.random_range(0..1_000_000);
    let mut specs: Vec<RobotSpec> = (0..n)
        .map(|i| {
            let rng = &mut rngs[i];
            let model = weighted(fleet, MODEL_WEIGHTS);
            let (installed, registered_at) = match cfg.profile {
                Profile::Seed if rng.random_bool(crate::plan::INSTALLED_IN_WINDOW) => {
                    let day = start_day + rng.random_range(0..(days * 3 / 4).max(1));
                    (day, midnight(day) + 9 * MICROS_PER_HOUR + i as i64)
                }
                Profile::Seed => (
                    start_day - rng.random_range(60..2_200),
                    cfg.start_micros + i as i64 * MICROS_PER_SECOND,
                ),
                Profile::Live => (
                    start_day - rng.random_range(60..2_200),
                    cfg.start_micros + i as i64,
                ),
            };
            RobotSpec {
                id: uuid(rng),
                model,
                facility: i % cfg.facilities as usize,
                installed,
                registered_at,
                firmware_patch: rng.random_range(0..4),
                serial: ((i as u64 * 7_919 + serial_offset) % 1_000_000) as u32,
                retired: None,
            }
        })
        .collect();
    if cfg.profile == Profile::Seed {
        // The oldest systems are the ones decommissioned, in the last quarter of the window.
        let retire = (n as f64 * crate::plan::RETIRED_IN_WINDOW).round() as usize;
        let mut by_age: Vec<usize> = (0..n).collect();
        by_age.sort_by_key(|&i| (specs[i].installed, i));
        for &i in by_age.iter().take(retire) {
            let day = start_day + days * 3 / 4 + fleet.random_range(0..(days / 4 - 7).max(1));
            specs[i].retired = Some(day);
        }
    }
    specs
}

/// How a procedure's telemetry is laid out.
#[derive(Debug, Clone, Copy)]
enum Frames {
    /// `hz` frames per second, in records of `batch_interval` µs of procedure time.
    Rate { hz: u32, batch_interval: i64 },
    /// This many samples evenly spaced over the procedure, in one record.
    Samples(u32),
}

/// Where a timeline's activities come from.
#[derive(Debug)]
enum Source {
    Calendar(std::vec::IntoIter<Activity>),
    Live(LivePlanner),
}

/// One robot's records, generated one activity at a time.
#[derive(Debug)]
struct Timeline {
    robot: RobotSpec,
    robot_id: Bytes,
    facility: Arc<Facility>,
    rng: ChaCha8Rng,
    source: Source,
    frames: Frames,
    pending: VecDeque<Record>,
    /// The procedure whose telemetry is being generated, one record at a time (a 4-hour case
    /// at 1 kHz is 14 million frames: never all in memory).
    streaming: Option<Box<Streaming>>,
    firmware_patch: u32,
}

/// A running procedure's telemetry state.
#[derive(Debug)]
struct Streaming {
    plan: ProcPlan,
    procedure_id: [u8; 16],
    pid: Bytes,
    signals: ProcedureSignals,
    /// Frame k is at `start + first + k × step` µs.
    first: f64,
    step: f64,
    count: u64,
    /// Frames within this many µs of procedure time travel in one record.
    per_record: i64,
    next_seq: u64,
    complexity: f64,
    age: i32,
}

impl Timeline {
    fn new(
        robot: RobotSpec,
        facility: Arc<Facility>,
        rng: ChaCha8Rng,
        source: Source,
        frames: Frames,
        profile: Profile,
    ) -> Self {
        let mut t = Self {
            firmware_patch: robot.firmware_patch,
            robot_id: b(robot.id),
            robot,
            facility,
            rng,
            source,
            frames,
            pending: VecDeque::new(),
            streaming: None,
        };
        t.register(profile);
        t
    }

    fn peek_at(&self) -> Option<i64> {
        self.pending.front().map(|r| r.at)
    }

    fn pop(&mut self) -> Option<Record> {
        let record = self.pending.pop_front();
        while self.pending.is_empty() {
            if let Some(mut s) = self.streaming.take() {
                if self.next_batch(&mut s) {
                    self.streaming = Some(s);
                } else {
                    self.end_procedure(&s);
                }
                continue;
            }
            let next = match &mut self.source {
                Source::Calendar(acts) => acts.next(),
                Source::Live(planner) => planner.next(&mut self.rng),
            };
            match next {
                Some(Activity::Procedure(p)) => self.procedure(&p),
                Some(Activity::Maintenance(m)) => self.maintenance(&m),
                Some(Activity::Retire(at)) => self.status(at, "retired", "decommissioned"),
                None => break,
            }
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

    fn status(&mut self, at: i64, status: &str, reason: &str) {
        let body = Body::RobotStatusChanged(v1::RobotStatusChanged {
            robot_id: self.robot_id.clone(),
            status: status.into(),
            reason: reason.into(),
        });
        self.event(at, body);
    }

    fn firmware(&self) -> String {
        format!(
            "{}.{}",
            MODELS[self.robot.model].firmware_line, self.firmware_patch
        )
    }

    /// Registration; a live robot also brings its service history (logs dated before the run).
    fn register(&mut self, profile: Profile) {
        let model = &MODELS[self.robot.model];
        let installed = self.robot.installed;
        let serial = format!(
            "{}{}-{:06}",
            model.serial_prefix,
            1970 + installed.div_euclid(365),
            self.robot.serial
        );
        let at = self.robot.registered_at;
        let body = Body::RobotRegistered(v1::RobotRegistered {
            robot_id: self.robot_id.clone(),
            robot_serial_number: serial,
            robot_model: model.model.to_owned(),
            manufacturer: model.manufacturer.to_owned(),
            installation_date: installed,
            facility_id: self.facility.id.clone(),
            facility_name: self.facility.name.clone(),
            status: "operational".to_owned(),
            firmware_version: self.firmware(),
        });
        self.event(at, body);
        if profile == Profile::Live {
            let today = day_of(at);
            let mut day = installed;
            let history = self.rng.random_range(1..=3);
            for k in 0..history {
                day += self
                    .rng
                    .random_range(30..((today - day) / (history - k + 1)).max(31));
                let kind = [
                    MaintKind::Routine,
                    MaintKind::Calibration,
                    MaintKind::Upgrade,
                    MaintKind::Routine,
                ][self.rng.random_range(0..4)];
                let hours = crate::plan::lognormal(&mut self.rng, 4.0, 0.3, 0.4, 2.2);
                self.maintenance(&MaintPlan {
                    from: at + 1 + k as i64,
                    until: at + 1 + k as i64,
                    downtime_hours: round(hours, 2),
                    kind,
                    day: day.min(today - 1),
                    window: false,
                });
            }
        }
    }

    fn maintenance(&mut self, m: &MaintPlan) {
        let kind = m.kind;
        if m.window {
            let reason = match kind {
                MaintKind::Emergency => "fault reported: emergency service",
                MaintKind::Upgrade => "scheduled firmware upgrade",
                MaintKind::Calibration => "scheduled calibration",
                MaintKind::Routine => "scheduled preventive maintenance",
            };
            self.status(m.from, "maintenance", reason);
        }
        if kind == MaintKind::Upgrade {
            self.firmware_patch += 1;
        }
        let rng = &mut self.rng;
        let (issues, actions, parts) = match kind {
            MaintKind::Routine => [
                ("none", "inspection, lubrication of instrument drives", ""),
                (
                    "worn instrument drive seals",
                    "inspection, seals replaced",
                    "instrument drive seals",
                ),
                (
                    "cooling fan noise",
                    "inspection, cooling fan replaced",
                    "cooling fan",
                ),
            ][rng.random_range(0..3)],
            MaintKind::Calibration => [
                (
                    "arm encoder drift 0.3 mm",
                    "kinematic recalibration of all arms",
                    "",
                ),
                (
                    "camera alignment offset",
                    "endoscope and camera head calibration",
                    "",
                ),
            ][rng.random_range(0..2)],
            MaintKind::Emergency => [
                (
                    "instrument arm fault during procedure",
                    "replaced arm joint motor, functional test",
                    "arm joint motor",
                ),
                (
                    "surgeon console hand controller fault",
                    "replaced hand controller, functional test",
                    "hand controller",
                ),
                (
                    "power supply fault",
                    "replaced power supply unit, safety test",
                    "power supply unit",
                ),
            ][rng.random_range(0..3)],
            MaintKind::Upgrade => (
                "firmware out of date",
                "firmware upgrade, regression test",
                "",
            ),
        };
        let base_cost = match kind {
            MaintKind::Routine => 1_800.0,
            MaintKind::Calibration => 1_200.0,
            MaintKind::Upgrade => 3_500.0,
            MaintKind::Emergency => 9_000.0,
        };
        let parts_cost = if parts.is_empty() {
            0.0
        } else {
            rng.random_range(800.0..12_000.0)
        };
        // Labour follows downtime; parts on top.
        let cost = base_cost * rng.random_range(0.85..1.2) + 180.0 * m.downtime_hours + parts_cost;
        let next = match kind {
            MaintKind::Emergency => 30,
            MaintKind::Calibration => 180,
            _ => 90,
        };
        let tech = rng.random_range(0..8) + 10 * self.robot.model as u32;
        let body = Body::MaintenanceLogged(v1::MaintenanceLogged {
            maintenance_id: b(uuid(rng)),
            robot_id: self.robot_id.clone(),
            maintenance_date: m.day,
            maintenance_type: kind.as_str().to_owned(),
            technician_id: format!("TECH-{tech:04}"),
            // The same technician id always has the same name.
            technician_name: format!(
                "{} {}",
                GIVEN_NAMES[(tech as usize * 7) % GIVEN_NAMES.len()],
                FAMILY_NAMES[(tech as usize * 11 + 3) % FAMILY_NAMES.len()]
            ),
            issues_found: issues.to_owned(),
            actions_taken: actions.to_owned(),
            parts_replaced: parts.to_owned(),
            downtime_hours: m.downtime_hours,
            next_maintenance_date: m.day + next,
            cost: round(cost, 2),
            firmware_version: if kind == MaintKind::Upgrade {
                self.firmware()
            } else {
                String::new()
            },
        });
        let at = if m.window { m.from + 1 } else { m.from };
        self.event(at, body);
        if m.window {
            self.status(m.until, "operational", "service complete");
        }
    }

    fn procedure(&mut self, p: &ProcPlan) {
        let model = &MODELS[self.robot.model];
        let kind = &PROCEDURES[p.kind];
        let procedure_id = uuid(&mut self.rng);
        let (surgeon_id, surgeon_name) =
            self.facility.surgeons[self.rng.random_range(0..self.facility.surgeons.len())].clone();
        let sex = kind.sex.unwrap_or(if self.rng.random_bool(0.5) {
            "female"
        } else {
            "male"
        });
        let age = Normal::new(kind.mean_age, 12.0)
            .map_or(kind.mean_age, |d| d.sample(&mut self.rng))
            .clamp(18.0, 92.0) as i32;
        // Complexity: log-normal around 2.5, a little higher for older patients.
        let complexity = (LogNormal::new(2.5f64.ln(), 0.25)
            .map_or(2.5, |d| d.sample(&mut self.rng))
            + 0.01 * f64::from(age - 60))
        .clamp(1.0, 5.0);
        let complexity = round(complexity, 2);
        let patient_id = format!("PAT-{:08X}", self.rng.random::<u32>());
        self.event(
            p.booked,
            Body::ProcedureScheduled(v1::ProcedureScheduled {
                procedure_id: b(procedure_id),
                robot_id: self.robot_id.clone(),
                procedure_type: kind.procedure_type.to_owned(),
                procedure_category: kind.category.to_owned(),
                scheduled_start: p.scheduled,
                surgeon_id,
                surgeon_name,
                patient_id,
                patient_age: age,
                patient_gender: sex.to_owned(),
                complexity_score: complexity,
            }),
        );
        if p.fate == Fate::Cancelled {
            let reason = [
                "patient not fit for surgery on the day",
                "patient did not attend",
                "no intensive care bed available",
                "instrument set not sterile in time",
            ][self.rng.random_range(0..4)];
            self.event(
                p.start,
                Body::ProcedureCancelled(v1::ProcedureCancelled {
                    procedure_id: b(procedure_id),
                    robot_id: self.robot_id.clone(),
                    reason: reason.into(),
                }),
            );
            return;
        }
        self.event(
            p.start,
            Body::ProcedureStarted(v1::ProcedureStarted {
                procedure_id: b(procedure_id),
                robot_id: self.robot_id.clone(),
                start_time: p.start,
            }),
        );
        self.streaming = Some(self.stream(p, procedure_id, model.tools, complexity, age));
    }

    /// The end of a procedure whose telemetry is all out: completed or aborted, then the outcome.
    fn end_procedure(&mut self, s: &Streaming) {
        let (p, procedure_id) = (&s.plan, s.procedure_id);
        if p.fate == Fate::Aborted {
            let reason = [
                "uncontrolled bleeding, converted to open surgery",
                "instrument arm fault, converted to laparoscopic surgery",
                "patient haemodynamically unstable",
            ][self.rng.random_range(0..3)];
            self.event(
                p.end,
                Body::ProcedureAborted(v1::ProcedureAborted {
                    procedure_id: b(procedure_id),
                    robot_id: self.robot_id.clone(),
                    end_time: p.end,
                    reason: reason.into(),
                }),
            );
        } else {
            self.event(
                p.end,
                Body::ProcedureCompleted(v1::ProcedureCompleted {
                    procedure_id: b(procedure_id),
                    robot_id: self.robot_id.clone(),
                    end_time: p.end,
                }),
            );
        }
        self.outcome(p, procedure_id, s.complexity, s.age);
    }

    /// Telemetry state for frames strictly inside (start, end): at `hz` in records of
    /// `batch_interval`, or `samples` evenly spaced in one record.
    fn stream(
        &mut self,
        p: &ProcPlan,
        procedure_id: [u8; 16],
        tools: &'static [&'static str],
        complexity: f64,
        age: i32,
    ) -> Box<Streaming> {
        let span = (p.end - p.start) as f64;
        let (step, first, count, per_record) = match self.frames {
            Frames::Rate { hz, batch_interval } => {
                let step = MICROS_PER_SECOND as f64 / f64::from(hz);
                let count = ((span / step).ceil() as u64).saturating_sub(1);
                (step, step, count, batch_interval)
            }
            Frames::Samples(n) => {
                let step = span / f64::from(n);
                (step, step / 2.0, u64::from(n), i64::MAX)
            }
        };
        let seconds = MICROS_PER_SECOND as f64;
        let signals = ProcedureSignals::new(
            &mut self.rng,
            tools,
            complexity,
            first / seconds,
            step / seconds,
        );
        Box::new(Streaming {
            plan: p.clone(),
            procedure_id,
            pid: b(procedure_id),
            signals,
            first,
            step,
            count,
            per_record,
            next_seq: 0,
            complexity,
            age,
        })
    }

    /// The procedure's next telemetry record, queued; false when all its frames are out.
    fn next_batch(&mut self, s: &mut Streaming) -> bool {
        let start = s.plan.start;
        let ts_of = |seq: u64| start + (s.first + seq as f64 * s.step) as i64;
        if s.next_seq >= s.count {
            return false;
        }
        let offset = ts_of(s.next_seq) - start;
        let batch_end =
            start.saturating_add((offset / s.per_record + 1).saturating_mul(s.per_record));
        let mut batch = TelemetryBatch::default();
        while s.next_seq < s.count {
            let ts = ts_of(s.next_seq);
            if ts >= batch_end {
                break;
            }
            let t = (ts - start) as f64 / MICROS_PER_SECOND as f64;
            let telemetry_id = uuid(&mut self.rng);
            batch.frames.push(s.signals.frame(
                &mut self.rng,
                t,
                s.next_seq,
                ts,
                telemetry_id,
                s.pid.clone(),
                self.robot_id.clone(),
            ));
            s.next_seq += 1;
        }
        let at = batch.frames.last().map_or(start, |f| f.timestamp);
        self.pending.push_back(Record {
            at,
            key: s.procedure_id,
            payload: Payload::Telemetry(batch),
        });
        true
    }

    /// The outcome: risk grows with complexity, age and a case that ran long; an aborted case
    /// is complicated or failed more often; blood loss, stay and recovery follow.
    fn outcome(&mut self, p: &ProcPlan, procedure_id: [u8; 16], complexity: f64, age: i32) {
        let aborted = p.fate == Fate::Aborted;
        let risk = (0.03
            + 0.04 * (complexity - 1.0)
            + 0.003 * f64::from((age - 50).max(0))
            + 0.15 * (p.overrun - 1.0).max(0.0)
            + if aborted { 0.5 } else { 0.0 })
        .min(0.95);
        let rng = &mut self.rng;
        let roll: f64 = rng.random();
        let status = if roll < risk * 0.15 {
            "failed"
        } else if roll < risk {
            "complicated"
        } else {
            "successful"
        };
        let ok = status == "successful";
        let complications = if ok {
            String::new()
        } else {
            let list = [
                "post-operative ileus",
                "wound infection",
                "bleeding requiring transfusion",
                "urinary retention",
                "pneumonia",
                "deep vein thrombosis",
            ];
            let first = rng.random_range(0..list.len());
            if rng.random_bool(0.25) {
                let second = (first + rng.random_range(1..list.len())) % list.len();
                format!("{},{}", list[first], list[second])
            } else {
                list[first].to_owned()
            }
        };
        let blood = LogNormal::new(
            4.3f64 + 0.25 * complexity + 0.3 * (p.overrun - 1.0) + if ok { 0.0 } else { 0.5 },
            0.45,
        )
        .map_or(150.0, |d| d.sample(rng));
        let stay = (0.5
            + complexity * 0.7
            + 0.03 * f64::from((age - 60).max(0))
            + if ok { 0.0 } else { 3.5 }
            + rng.random_range(0.0..2.0)) as i32;
        let recovery = (97.0 - complexity * 5.0 - 0.2 * f64::from((age - 50).max(0))
            + if ok { 0.0 } else { -25.0 }
            + rng.random_range(-8.0..5.0f64))
        .clamp(1.0, 100.0) as i32;
        let satisfaction = ((f64::from(recovery) / 10.0 + rng.random_range(-1.0..1.0)).round()
            as i32)
            .clamp(1, 10);
        let body = Body::OutcomeRecorded(v1::OutcomeRecorded {
            outcome_id: b(uuid(rng)),
            procedure_id: b(procedure_id),
            robot_id: self.robot_id.clone(),
            success_status: status.to_owned(),
            blood_loss_ml: blood.min(5_000.0) as i32,
            complications,
            hospital_stay_days: stay,
            readmission_30day: rng.random_bool(if ok { 0.03 } else { 0.2 }),
            patient_satisfaction_score: satisfaction,
            surgeon_notes: match status {
                "successful" => "Uneventful procedure, standard port placement.",
                "complicated" => {
                    "Procedure completed with intra-operative difficulties; see complications."
                }
                _ => "Procedure failed to achieve its goal; patient referred for revision.",
            }
            .to_owned(),
            recovery_score: recovery,
            follow_up_required: !ok || rng.random_bool(0.3),
        });
        self.event(p.outcome_at, body);
    }
}
