//! The deterministic fleet generator: a time-ordered merge of one timeline per robot.
//!
//! This file holds the [`Simulation`] iterator and the [`Record`]s it yields: it sets the fleet
//! up and merges the robots' timelines with a heap. What to simulate is in [`config`], building
//! the fleet in [`fleet`], and one robot's records in [`timeline`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use surgstream_proto::time::{MICROS_PER_DAY, day_of};
use surgstream_proto::v1::{Event, TelemetryBatch};

use crate::plan::{Facility, LivePlanner, apportion, plan_calendar};

mod config;
mod fleet;
mod timeline;

pub use config::{Profile, SimConfig, SimError};
use config::{splitmix, validate, window_days};
use fleet::{facilities, robots};
use timeline::{Frames, Source, Timeline};

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
