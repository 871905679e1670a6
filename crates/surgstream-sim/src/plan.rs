//! What each robot does and when, before any record is made: the fleet (facilities, robots,
//! surgeons) and each robot's activities in time order — registration, procedures, maintenance
//! windows, retirement.
//!
//! Two planners share the activity types. [`plan_calendar`] (the seed profile) lays a whole
//! window out at once: procedures on weekdays in facility hours, routine service on Saturdays,
//! emergency service after aborted procedures, a few installations and retirements inside the
//! window. [`LivePlanner`] (the live profile) makes one activity at a time, back to back in each
//! operating room, for as long as the run lasts.
//!
//! Activities of one robot never overlap, and every record of an activity happens after every
//! record of the one before it: each robot's records are therefore in time order by
//! construction, which is what lets [`crate::Simulation`] merge the fleet with a heap.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use surgstream_proto::time::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND, day_of};

use crate::catalog::{MODELS, PROCEDURES};
use crate::telemetry::round;

/// Microseconds in one minute.
pub(crate) const MINUTE: i64 = 60 * MICROS_PER_SECOND;
/// At most this many procedures on one robot on one day.
pub(crate) const MAX_PER_DAY: u32 = 3;
/// Probability that a scheduled procedure is cancelled on the day.
pub(crate) const CANCEL_RATE: f64 = 0.015;
/// Probability that a procedure that starts is aborted (converted, or stopped for safety).
pub(crate) const ABORT_RATE: f64 = 0.015;
/// Probability that an aborted procedure is followed by emergency service of the robot.
pub(crate) const EMERGENCY_AFTER_ABORT: f64 = 0.7;
/// Share of the fleet installed during a seed window (the rest was installed before it).
pub(crate) const INSTALLED_IN_WINDOW: f64 = 0.2;
/// Share of the fleet retired near the end of a seed window.
pub(crate) const RETIRED_IN_WINDOW: f64 = 0.02;

/// How a procedure ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Ran to its end.
    Completed,
    /// Started, stopped early.
    Aborted,
    /// Never started.
    Cancelled,
}

/// One procedure's times and kind; the patient is drawn when its records are made.
#[derive(Debug, Clone)]
pub(crate) struct ProcPlan {
    /// When it is booked (`ProcedureScheduled`).
    pub booked: i64,
    /// The booked start.
    pub scheduled: i64,
    /// The actual start (for a cancelled procedure: when the cancellation is recorded).
    pub start: i64,
    /// The actual end.
    pub end: i64,
    /// When the outcome is recorded.
    pub outcome_at: i64,
    /// Index into [`PROCEDURES`].
    pub kind: usize,
    /// How it ends.
    pub fate: Fate,
    /// Actual duration over the type's median (a long case carries more risk).
    pub overrun: f64,
}

/// Maintenance types of the data model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaintKind {
    /// Preventive service.
    Routine,
    /// Kinematic recalibration.
    Calibration,
    /// Firmware upgrade: the firmware version advances.
    Upgrade,
    /// Unplanned repair, most often after a fault during a procedure.
    Emergency,
}

impl MaintKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Routine => "routine",
            Self::Calibration => "calibration",
            Self::Upgrade => "upgrade",
            Self::Emergency => "emergency",
        }
    }

    /// Typical downtime in hours (log-normal around it).
    fn median_hours(self) -> f64 {
        match self {
            Self::Routine => 4.0,
            Self::Calibration => 2.5,
            Self::Upgrade => 5.0,
            Self::Emergency => 9.0,
        }
    }
}

/// A maintenance window: status → maintenance at `from`, the log, status → operational at
/// `until`. Before registration (a live robot's history) only the log is sent.
#[derive(Debug, Clone)]
pub(crate) struct MaintPlan {
    /// Start of the window.
    pub from: i64,
    /// End of the window (wall-clock; compressed by `--speed` in a live run).
    pub until: i64,
    /// Downtime as recorded in the log, in hours (not compressed).
    pub downtime_hours: f64,
    /// Type.
    pub kind: MaintKind,
    /// `maintenance_date` (days since 1970-01-01).
    pub day: i32,
    /// Whether the robot's status changes around it (false for history before registration).
    pub window: bool,
}

/// What a robot does next.
#[derive(Debug, Clone)]
pub(crate) enum Activity {
    /// A procedure.
    Procedure(ProcPlan),
    /// A maintenance window.
    Maintenance(MaintPlan),
    /// The robot is taken out of service for good.
    Retire(i64),
}

impl Activity {
    /// The time of its first record.
    pub(crate) fn first_at(&self) -> i64 {
        match self {
            Self::Procedure(p) => p.booked,
            Self::Maintenance(m) => m.from,
            Self::Retire(at) => *at,
        }
    }

    /// The time of its last record.
    fn last_at(&self) -> i64 {
        match self {
            Self::Procedure(p) => match p.fate {
                Fate::Cancelled => p.start,
                _ => p.outcome_at,
            },
            Self::Maintenance(m) => m.until,
            Self::Retire(at) => *at,
        }
    }
}

/// A hospital and its surgeons.
#[derive(Debug, Clone)]
pub(crate) struct Facility {
    /// `facility_id`.
    pub id: String,
    /// `facility_name`.
    pub name: String,
    /// (surgeon_id, surgeon_name) of the surgeons who operate there.
    pub surgeons: Vec<(String, String)>,
}

/// A robot's static facts.
#[derive(Debug, Clone)]
pub(crate) struct RobotSpec {
    pub id: [u8; 16],
    pub model: usize,
    pub facility: usize,
    /// Installation day (days since 1970-01-01).
    pub installed: i32,
    /// When `RobotRegistered` is sent.
    pub registered_at: i64,
    /// Firmware patch level at registration (`<line>.<patch>`).
    pub firmware_patch: u32,
    /// Serial number within the fleet, unique, below 10^6.
    pub serial: u32,
    /// The day it is retired, if it is.
    pub retired: Option<i32>,
}

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub(crate) fn weekday(day: i32) -> i32 {
    (day + 3).rem_euclid(7)
}

/// Microseconds at the start of a day.
pub(crate) fn midnight(day: i32) -> i64 {
    i64::from(day) * MICROS_PER_DAY
}

/// A log-normal sample around `median` with shape `sigma`, clamped to `[lo, hi] × median`.
pub(crate) fn lognormal(rng: &mut impl Rng, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .map_or(median, |d| d.sample(rng))
        .clamp(lo * median, hi * median)
}

/// Splits `total` over `weights` in proportion, exactly (largest remainder).
pub(crate) fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<u64> = weights
        .iter()
        .map(|w| (u128::from(total) * u128::from(*w) / u128::from(sum)) as u64)
        .collect();
    let mut left = total - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; ties by index, so the result is deterministic.
    order.sort_by_key(|&i| {
        let rem = u128::from(total) * u128::from(weights[i]) % u128::from(sum);
        (std::cmp::Reverse(rem), i)
    });
    for i in order {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

/// A procedure's fate, drawn once per procedure.
fn fate(rng: &mut impl Rng) -> Fate {
    let roll: f64 = rng.random();
    if roll < CANCEL_RATE {
        Fate::Cancelled
    } else if roll < CANCEL_RATE + ABORT_RATE {
        Fate::Aborted
    } else {
        Fate::Completed
    }
}

/// How long a procedure of this kind takes (minutes, log-normal around the type's median), and
/// how much of that runs before an abort.
fn duration_minutes(rng: &mut impl Rng, kind: usize, fate: Fate) -> (f64, f64) {
    let median = PROCEDURES[kind].median_minutes;
    let full = lognormal(rng, median, 0.25, 0.5, 2.5);
    let ran = if fate == Fate::Aborted {
        full * rng.random_range(0.2..0.8)
    } else {
        full
    };
    (ran, full / median)
}

/// Scheduled starts fall before this hour (UTC) of a weekday.
pub(crate) const LAST_START_HOUR: i64 = 17;

/// One case booked to start at `scheduled`, of a type the robot performs.
fn procedure_on(rng: &mut ChaCha8Rng, kinds: &[usize], scheduled: i64) -> ProcPlan {
    let kind = kinds[rng.random_range(0..kinds.len())];
    let fate = fate(rng);
    let (ran, overrun) = duration_minutes(rng, kind, fate);
    let late = rng.random_range(0..15) * MINUTE;
    let (start, end, outcome_at) = if fate == Fate::Cancelled {
        let at = scheduled - rng.random_range(30..180) * MINUTE;
        (at, at, at)
    } else {
        let start = scheduled + late;
        let end = start + (ran * MINUTE as f64) as i64;
        (start, end, end + rng.random_range(5..20) * MINUTE)
    };
    ProcPlan {
        booked: scheduled - rng.random_range(1..21) * MICROS_PER_DAY,
        scheduled,
        start,
        end,
        outcome_at,
        kind,
        fate,
        overrun,
    }
}

/// Why a seed calendar cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanError {
    pub option: &'static str,
    pub reason: String,
}

/// The seed profile's whole window: per robot, its activities in time order.
///
/// `window_start` is the first day, `days` its length. Procedures go on weekdays between the
/// robot's installation (or the window start) and its retirement (or the window end), in
/// proportion to each robot's days in service; `maintenance` logs in all, of which emergencies
/// follow aborted procedures and the rest fall on Saturdays.
pub(crate) fn plan_calendar(
    robots: &[RobotSpec],
    rngs: &mut [ChaCha8Rng],
    window_start: i32,
    days: i32,
    procedures: u64,
    maintenance: u64,
) -> Result<Vec<Vec<Activity>>, PlanError> {
    let window_end = window_start + days;
    // Weekdays each robot is in service: after the day it is registered, before retirement.
    let service: Vec<(i32, i32)> = robots
        .iter()
        .map(|r| {
            let from = r.installed.max(window_start) + 1;
            let until = r.retired.unwrap_or(window_end).min(window_end);
            (from, until.max(from))
        })
        .collect();
    let weekdays: Vec<Vec<i32>> = service
        .iter()
        .map(|&(from, until)| (from..until).filter(|d| weekday(*d) < 5).collect())
        .collect();
    let capacity: Vec<u64> = weekdays.iter().map(|d| d.len() as u64).collect();
    let max = capacity.iter().sum::<u64>() * u64::from(MAX_PER_DAY);
    if procedures > max {
        return Err(PlanError {
            option: "--procedures",
            reason: format!(
                "{procedures} do not fit: the fleet has room for at most {max} in the window ({MAX_PER_DAY} per robot per weekday); add robots or lengthen --duration"
            ),
        });
    }
    let per_robot = apportion(procedures, &capacity);

    let mut plans: Vec<Vec<Activity>> = Vec::with_capacity(robots.len());
    for (i, robot) in robots.iter().enumerate() {
        let rng = &mut rngs[i];
        let model = &MODELS[robot.model];
        let days = &weekdays[i];
        let mut per_day = vec![0u32; days.len()];
        for _ in 0..per_robot[i] {
            loop {
                let d = rng.random_range(0..days.len());
                if per_day[d] < MAX_PER_DAY {
                    per_day[d] += 1;
                    break;
                }
            }
        }
        // Cases start in facility hours; what does not fit before the last start moves to the
        // next weekday (and, past the last one, back to the first days with room).
        let mut acts = Vec::new();
        let mut carry = 0u32;
        let mut placed = vec![0u32; days.len()];
        for pass in 0.. {
            for (d, &count) in per_day.iter().enumerate() {
                // The first pass takes each day's cases and what the day before left over;
                // later passes give one left-over case to each day that has none.
                let want = if pass == 0 {
                    count + std::mem::take(&mut carry)
                } else if placed[d] == 0 && carry > 0 {
                    carry -= 1;
                    1
                } else {
                    0
                };
                if want == 0 {
                    continue;
                }
                let mut left = want;
                let mut t =
                    midnight(days[d]) + 7 * MICROS_PER_HOUR + rng.random_range(30..90) * MINUTE;
                while left > 0 && t < midnight(days[d]) + LAST_START_HOUR * MICROS_PER_HOUR {
                    let p = procedure_on(rng, model.procedures, t);
                    // Turnover before the next case in the same room.
                    t = p.end.max(p.scheduled) + rng.random_range(25..60) * MINUTE;
                    acts.push(Activity::Procedure(p));
                    placed[d] += 1;
                    left -= 1;
                }
                carry += left;
            }
            if carry == 0 || pass > 3 {
                break;
            }
        }
        acts.sort_by_key(busy_from);
        plans.push(acts);
    }

    // Emergency service after aborted procedures, when the robot is free long enough.
    let mut emergencies = 0u64;
    for (i, acts) in plans.iter_mut().enumerate() {
        let rng = &mut rngs[i];
        let mut added = Vec::new();
        for k in 0..acts.len() {
            let Activity::Procedure(p) = &acts[k] else {
                continue;
            };
            if p.fate != Fate::Aborted
                || emergencies >= maintenance
                || !rng.random_bool(EMERGENCY_AFTER_ABORT)
            {
                continue;
            }
            let from = p.outcome_at + rng.random_range(10..40) * MINUTE;
            let next = acts.get(k + 1).map_or(midnight(service[i].1), busy_from);
            let hours = lognormal(rng, MaintKind::Emergency.median_hours(), 0.4, 0.3, 3.0)
                .min((next - from - MICROS_PER_HOUR) as f64 / MICROS_PER_HOUR as f64);
            if hours < 1.0 {
                continue;
            }
            let hours = round(hours, 2);
            added.push(Activity::Maintenance(MaintPlan {
                from,
                until: from + (hours * MICROS_PER_HOUR as f64) as i64,
                downtime_hours: hours,
                kind: MaintKind::Emergency,
                day: day_of(from),
                window: true,
            }));
            emergencies += 1;
        }
        acts.extend(added);
        acts.sort_by_key(busy_from);
    }

    // The rest of the logs: Saturday service, in proportion to days in service.
    let service_days: Vec<u64> = service
        .iter()
        .map(|&(from, until)| (until - from).max(0) as u64)
        .collect();
    let per_robot = apportion(maintenance - emergencies, &service_days);
    for (i, acts) in plans.iter_mut().enumerate() {
        let rng = &mut rngs[i];
        let (from, until) = service[i];
        let mut saturdays: Vec<i32> = (from..until).filter(|d| weekday(*d) == 5).collect();
        // Keep Saturdays with nothing else on them (an emergency can run into one).
        saturdays.retain(|&d| {
            !acts
                .iter()
                .any(|a| busy_from(a) < midnight(d + 1) && a.last_at() >= midnight(d))
        });
        let wanted = (per_robot[i] as usize).min(saturdays.len());
        let mut chosen: Vec<i32> = rand::seq::index::sample(rng, saturdays.len(), wanted)
            .into_iter()
            .map(|k| saturdays[k])
            .collect();
        chosen.sort_unstable();
        for day in chosen {
            let roll: f64 = rng.random();
            let kind = if roll < 0.5 {
                MaintKind::Routine
            } else if roll < 0.75 {
                MaintKind::Calibration
            } else if roll < 0.92 {
                MaintKind::Upgrade
            } else {
                MaintKind::Emergency
            };
            let hours = lognormal(rng, kind.median_hours(), 0.3, 0.4, 2.2);
            let hours = round(hours, 2);
            let from = midnight(day) + 8 * MICROS_PER_HOUR + rng.random_range(0..120) * MINUTE;
            acts.push(Activity::Maintenance(MaintPlan {
                from,
                until: from + (hours * MICROS_PER_HOUR as f64) as i64,
                downtime_hours: hours,
                kind,
                day,
                window: true,
            }));
        }
        acts.sort_by_key(busy_from);
        if let Some(day) = robots[i].retired {
            let last = acts.last().map_or(i64::MIN, Activity::last_at);
            acts.push(Activity::Retire(
                (midnight(day) + 17 * MICROS_PER_HOUR).max(last + MINUTE),
            ));
        }
        book(acts, robots[i].registered_at);
    }
    Ok(plans)
}

/// When an activity starts to occupy the robot: a procedure's start (or its cancellation) or
/// booked start, whichever is first; its booking comes earlier and is placed by [`book`].
fn busy_from(a: &Activity) -> i64 {
    match a {
        Activity::Procedure(p) => p.start.min(p.scheduled),
        other => other.first_at(),
    }
}

/// Books each procedure after everything before it on the robot (so that each robot's records
/// stay in time order), never earlier than its lead time before the start; a cancellation comes
/// after the previous case's outcome.
fn book(acts: &mut [Activity], registered_at: i64) {
    let mut last = registered_at;
    for a in acts.iter_mut() {
        if let Activity::Procedure(p) = a {
            if p.fate == Fate::Cancelled {
                let at = p.start.max(last + 2 * MINUTE).min(p.scheduled - 1);
                (p.start, p.end, p.outcome_at) = (at, at, at);
            }
            p.booked = p.booked.max(last + MINUTE).min(p.start - 1);
        }
        last = a.last_at();
    }
}

/// The live profile's planner: back-to-back procedures in one operating room, times compressed
/// by `speed`, until `until` (no procedure starts after it) or `remaining` procedures are done.
#[derive(Debug, Clone)]
pub(crate) struct LivePlanner {
    /// End of the previous activity's last record.
    last: i64,
    /// The earliest next start.
    next_start: i64,
    /// No procedure starts at or after this time.
    until: Option<i64>,
    /// Procedures this robot still does (None: no limit).
    remaining: Option<u32>,
    speed: f64,
    model: usize,
    /// An activity planned after the previous one (emergency service after an abort).
    queued: Option<Activity>,
}

impl LivePlanner {
    pub(crate) fn new(
        robot: &RobotSpec,
        first_start: i64,
        until: Option<i64>,
        remaining: Option<u32>,
        speed: f64,
    ) -> Self {
        Self {
            last: robot.registered_at,
            next_start: first_start,
            until,
            remaining,
            speed,
            model: robot.model,
            queued: None,
        }
    }

    /// A span of simulated minutes as wall-clock microseconds, compressed by the speed, never
    /// shorter than `floor` µs.
    fn wall(&self, minutes: f64, floor: i64) -> i64 {
        ((minutes * MINUTE as f64 / self.speed) as i64).max(floor)
    }

    /// The next activity, or None when the room is done.
    pub(crate) fn next(&mut self, rng: &mut ChaCha8Rng) -> Option<Activity> {
        if let Some(a) = self.queued.take() {
            self.last = a.last_at();
            self.next_start = self.last + self.wall(rng.random_range(25.0..60.0), 1);
            return Some(a);
        }
        if self.remaining == Some(0) || self.until.is_some_and(|u| self.next_start >= u) {
            return None;
        }
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        let model = &MODELS[self.model];
        let kind = model.procedures[rng.random_range(0..model.procedures.len())];
        let fate = fate(rng);
        let (ran, overrun) = duration_minutes(rng, kind, fate);
        let scheduled = self.next_start.max(self.last + 2);
        let booked = self.last + 1 + (scheduled - self.last - 1) / 2;
        let plan = if fate == Fate::Cancelled {
            let at = booked + (scheduled - booked) / 2;
            ProcPlan {
                booked,
                scheduled,
                start: at.max(booked + 1),
                end: at.max(booked + 1),
                outcome_at: at.max(booked + 1),
                kind,
                fate,
                overrun,
            }
        } else {
            let end = scheduled + self.wall(ran, MICROS_PER_SECOND);
            ProcPlan {
                booked,
                scheduled,
                start: scheduled,
                end,
                outcome_at: end + self.wall(rng.random_range(5.0..20.0), 1),
                kind,
                fate,
                overrun,
            }
        };
        let act = Activity::Procedure(plan);
        self.last = act.last_at().max(scheduled);
        self.next_start = self.last + self.wall(rng.random_range(25.0..60.0), 1);
        if let Activity::Procedure(p) = &act
            && p.fate == Fate::Aborted
            && rng.random_bool(EMERGENCY_AFTER_ABORT)
        {
            let hours = lognormal(rng, MaintKind::Emergency.median_hours(), 0.4, 0.3, 3.0);
            let hours = round(hours, 2);
            let from = self.last + self.wall(rng.random_range(10.0..40.0), 1);
            self.queued = Some(Activity::Maintenance(MaintPlan {
                from,
                until: from + self.wall(hours * 60.0, 2),
                downtime_hours: hours,
                kind: MaintKind::Emergency,
                day: day_of(from),
                window: true,
            }));
        }
        Some(act)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(
            apportion(5000, &[100, 300, 0, 100]),
            vec![1000, 3000, 0, 1000]
        );
        assert_eq!(apportion(7, &[0, 0]), vec![0, 0]);
        let shares = apportion(12_345, &[17, 3, 99, 1, 250]);
        assert_eq!(shares.iter().sum::<u64>(), 12_345);
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(0), 3); // 1970-01-01, a Thursday
        assert_eq!(weekday(20_454), 3); // 2026-01-01, a Thursday
        assert_eq!(weekday(20_456), 5); // 2026-01-03, a Saturday
    }
}
