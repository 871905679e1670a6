//! What each activity of a timeline says: a robot's registration (and a live robot's service
//! history), a maintenance log, a procedure's events from booking to its end, and its outcome,
//! with the distributions and texts behind them. Separate from the timeline's mechanics (queue,
//! dispatch, telemetry streaming) because this is the data model's content, and it changes for
//! other reasons.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use surgstream_proto::time::day_of;
use surgstream_proto::v1::{self, event::Body};

use super::{Streaming, Timeline};
use crate::catalog::{FAMILY_NAMES, GIVEN_NAMES, MODELS, PROCEDURES};
use crate::generator::config::Profile;
use crate::generator::fleet::{b, uuid};
use crate::plan::{Fate, MaintKind, MaintPlan, ProcPlan};
use crate::telemetry::round;

impl Timeline {
    /// Registration; a live robot also brings its service history (logs dated before the run).
    pub(super) fn register(&mut self, profile: Profile) {
        let model = &MODELS[self.robot.model];
        let installed = self.robot.installed;
        let serial = format!(
            "{}{}-{:06}",
            model.serial_prefix,
            surgstream_proto::time::year_of_day(installed),
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

    pub(super) fn maintenance(&mut self, m: &MaintPlan) {
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

    pub(super) fn procedure(&mut self, p: &ProcPlan) {
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
    pub(super) fn end_procedure(&mut self, s: &Streaming) {
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
