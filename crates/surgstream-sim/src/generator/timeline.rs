//! One robot's timeline: its queue of records, filled one planned activity at a time from its
//! [`Source`] (a seed calendar or a live planner), and the telemetry of a running procedure,
//! streamed one record at a time so that a long case is never all in memory. Separate from the
//! [`Simulation`](super::Simulation) that merges the timelines in time order, and from
//! [`events`], which says what each activity's records contain.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use surgstream_proto::time::MICROS_PER_SECOND;
use surgstream_proto::v1::{self, Event, TelemetryBatch, event::Body};

use super::config::Profile;
use super::fleet::{b, uuid};
use super::{Payload, Record};
use crate::catalog::MODELS;
use crate::plan::{Activity, Facility, LivePlanner, ProcPlan, RobotSpec};
use crate::telemetry::ProcedureSignals;

mod events;

/// How a procedure's telemetry is laid out.
#[derive(Debug, Clone, Copy)]
pub(super) enum Frames {
    /// `hz` frames per second, in records of `batch_interval` µs of procedure time.
    Rate { hz: u32, batch_interval: i64 },
    /// This many samples evenly spaced over the procedure, in one record.
    Samples(u32),
}

/// Where a timeline's activities come from.
#[derive(Debug)]
pub(super) enum Source {
    Calendar(std::vec::IntoIter<Activity>),
    Live(LivePlanner),
}

/// One robot's records, generated one activity at a time.
#[derive(Debug)]
pub(super) struct Timeline {
    robot: RobotSpec,
    robot_id: Bytes,
    facility: Arc<Facility>,
    rng: ChaCha8Rng,
    source: Source,
    frames: Frames,
    pub(super) pending: VecDeque<Record>,
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
    pub(super) fn new(
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

    pub(super) fn peek_at(&self) -> Option<i64> {
        self.pending.front().map(|r| r.at)
    }

    pub(super) fn pop(&mut self) -> Option<Record> {
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
}
