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

#[test]
fn seed_profile_has_the_data_model_volumes() {
    let run = seed_run();
    assert_eq!(count(run, |b| matches!(b, Body::RobotRegistered(_))), 50);
    assert_eq!(
        count(run, |b| matches!(b, Body::ProcedureScheduled(_))),
        5_000
    );
    let logs = count(run, |b| matches!(b, Body::MaintenanceLogged(_)));
    assert!(within(logs, 200, 0.02), "{logs} maintenance logs");
    let ran = count(run, |b| matches!(b, Body::ProcedureStarted(_)));
    let outcomes = count(run, |b| matches!(b, Body::OutcomeRecorded(_)));
    assert_eq!(outcomes, ran, "an outcome for each procedure that ran");
    assert!(within(outcomes, 5_000, 0.02), "{outcomes} outcomes");
    let frames = frames(run).count();
    assert_eq!(frames, ran * 100, "100 samples per procedure that ran");
    assert!(within(frames, 500_000, 0.02), "{frames} frames");
    let facilities: HashSet<String> = events(run)
        .filter_map(|(_, e)| match &e.body {
            Some(Body::RobotRegistered(r)) => Some(r.facility_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(facilities.len(), 10);
}

#[test]
fn scale_multiplies_fleet_procedures_and_maintenance() {
    let cfg = SimConfig::seed(10.0, 1, WINDOW_START);
    assert_eq!(
        (cfg.robots, cfg.facilities, cfg.procedures, cfg.maintenance),
        (500, 100, Some(50_000), 2_000)
    );
}

#[test]
fn records_are_in_time_order_inside_the_window() {
    let run = seed_run();
    assert!(run.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(run.first().is_some_and(|r| r.at >= WINDOW_START));
    assert!(
        run.last()
            .is_some_and(|r| r.at < WINDOW_START + 731 * MICROS_PER_DAY)
    );
    let live = live_run();
    assert!(live.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn robots_are_consistent_with_their_makers_and_their_history() {
    let makers: HashMap<&str, &str> = [
        ("da Vinci Xi", "Intuitive Surgical"),
        ("da Vinci X", "Intuitive Surgical"),
        ("da Vinci SP", "Intuitive Surgical"),
        ("Versius", "CMR Surgical"),
        ("Hugo RAS", "Medtronic"),
        ("Mako", "Stryker"),
        ("ROSA Knee", "Zimmer Biomet"),
        ("ROSA ONE Brain", "Zimmer Biomet"),
    ]
    .into();
    let run = seed_run();
    let mut serials = HashSet::new();
    // robot → (installation day, status, firmware)
    type Firmware = (u32, u32, u32);
    let mut robots: HashMap<Vec<u8>, (i32, String, Firmware)> = HashMap::new();
    let parse = |v: &str| -> (u32, u32, u32) {
        let p: Vec<u32> = v
            .split('.')
            .map(|x| x.parse().expect("numeric firmware"))
            .collect();
        assert_eq!(p.len(), 3, "firmware {v}");
        (p[0], p[1], p[2])
    };
    let mut upgrades = 0;
    let mut retired = 0;
    let mut installed_in_window = 0;
    for (at, e) in events(run) {
        let robot_of = |id: &[u8]| id.to_vec();
        match &e.body {
            Some(Body::RobotRegistered(r)) => {
                assert_eq!(
                    makers.get(r.robot_model.as_str()),
                    Some(&r.manufacturer.as_str())
                );
                assert!(
                    serials.insert(r.robot_serial_number.clone()),
                    "serial {} twice",
                    r.robot_serial_number
                );
                assert!(
                    r.installation_date <= day_of(at),
                    "installed after registration"
                );
                installed_in_window += usize::from(r.installation_date >= day_of(WINDOW_START));
                robots.insert(
                    robot_of(&r.robot_id),
                    (
                        r.installation_date,
                        r.status.clone(),
                        parse(&r.firmware_version),
                    ),
                );
            }
            Some(Body::RobotStatusChanged(s)) => {
                let robot = robots.get_mut(&s.robot_id[..]).expect("registered first");
                let legal = matches!(
                    (robot.1.as_str(), s.status.as_str()),
                    ("operational", "maintenance")
                        | ("maintenance", "operational")
                        | ("operational", "retired")
                );
                assert!(legal, "{} → {}", robot.1, s.status);
                retired += usize::from(s.status == "retired");
                robot.1 = s.status.clone();
            }
            Some(Body::MaintenanceLogged(m)) => {
                let robot = robots.get_mut(&m.robot_id[..]).expect("registered first");
                assert_eq!(
                    robot.1, "maintenance",
                    "a log is written while the robot is in service"
                );
                assert!(
                    m.maintenance_date >= robot.0,
                    "maintenance before installation"
                );
                assert_eq!(m.maintenance_date, day_of(at));
                if m.maintenance_type == "upgrade" {
                    let next = parse(&m.firmware_version);
                    assert!(
                        next > robot.2,
                        "firmware {:?} → {next:?} does not advance",
                        robot.2
                    );
                    robot.2 = next;
                    upgrades += 1;
                } else {
                    assert!(m.firmware_version.is_empty());
                }
            }
            Some(Body::ProcedureStarted(p)) => {
                let robot = &robots[&p.robot_id[..]];
                assert_eq!(
                    robot.1, "operational",
                    "a procedure on a robot in {}",
                    robot.1
                );
                assert!(
                    day_of(p.start_time) > robot.0,
                    "a procedure before installation"
                );
            }
            Some(Body::ProcedureScheduled(p)) => {
                assert_ne!(robots[&p.robot_id[..]].1, "retired");
            }
            _ => {}
        }
    }
    assert!(upgrades > 0);
    assert_eq!(retired, 1, "2 % of 50 robots are retired in the window");
    assert!(
        (4..=20).contains(&installed_in_window),
        "{installed_in_window} installed in the window"
    );
    // Nothing happens to a retired robot.
    let retired_at: HashMap<Vec<u8>, i64> = events(run)
        .filter_map(|(at, e)| match &e.body {
            Some(Body::RobotStatusChanged(s)) if s.status == "retired" => {
                Some((s.robot_id.to_vec(), at))
            }
            _ => None,
        })
        .collect();
    for (at, e) in events(run) {
        let robot = match &e.body {
            Some(Body::ProcedureScheduled(p)) => &p.robot_id,
            Some(Body::MaintenanceLogged(m)) => &m.robot_id,
            _ => continue,
        };
        assert!(retired_at.get(&robot[..]).is_none_or(|r| at < *r));
    }
}

#[test]
fn procedures_fit_their_robot_patient_facility_and_hours() {
    let run = seed_run();
    let mut model_of = HashMap::new();
    let mut facility_of = HashMap::new();
    for (_, e) in events(run) {
        if let Some(Body::RobotRegistered(r)) = &e.body {
            model_of.insert(r.robot_id.to_vec(), r.robot_model.clone());
            facility_of.insert(r.robot_id.to_vec(), r.facility_id.clone());
        }
    }
    let procs = procedures(run);
    for p in procs.values() {
        let model = model_of[&p.robot].as_str();
        let allowed: &[&str] = match model {
            "Mako" | "ROSA Knee" => &["orthopedic"],
            "ROSA ONE Brain" => &["neurological"],
            _ => &[
                "urological",
                "gynecological",
                "general",
                "colorectal",
                "thoracic",
                "cardiac",
            ],
        };
        assert!(
            allowed.contains(&p.category.as_str()),
            "{} ({}) on a {model}",
            p.kind,
            p.category
        );
        let category = match p.kind.as_str() {
            "Radical Prostatectomy" | "Partial Nephrectomy" => "urological",
            "Hysterectomy" | "Myomectomy" => "gynecological",
            "Total Knee Arthroplasty" | "Total Hip Arthroplasty" => "orthopedic",
            _ => p.category.as_str(),
        };
        assert_eq!(p.category, category, "{}", p.kind);
        match p.kind.as_str() {
            "Radical Prostatectomy" => assert_eq!(p.sex, "male"),
            "Hysterectomy" | "Myomectomy" => assert_eq!(p.sex, "female"),
            _ => assert!(matches!(p.sex.as_str(), "male" | "female")),
        }
        assert!((18..=95).contains(&p.age));
        assert!((1.0..=5.0).contains(&p.complexity));
        assert_eq!(
            (p.complexity * 100.0).round() / 100.0,
            p.complexity,
            "DECIMAL(3,2)"
        );
        let number = facility_of[&p.robot].trim_start_matches("FAC-").to_owned();
        assert!(
            p.surgeon.starts_with(&format!("SURG-{number}-")),
            "{} at FAC-{number}",
            p.surgeon
        );
        // Booked in facility hours, on a weekday (times are UTC).
        let weekday = (day_of(p.scheduled) + 3).rem_euclid(7);
        let hour = p.scheduled.rem_euclid(MICROS_PER_DAY) / MICROS_PER_HOUR;
        assert!(weekday < 5, "a case on a weekend");
        assert!((7..17).contains(&hour), "a case booked at {hour}h");
        if let (Some(start), Some(end)) = (p.start, p.end) {
            assert!(end > start);
        }
    }
    // Ages follow the procedure: knee replacements on older patients than myomectomies.
    let age = |kind: &str| {
        mean(
            procs
                .values()
                .filter(|p| p.kind == kind)
                .map(|p| f64::from(p.age)),
        )
    };
    assert!(age("Total Knee Arthroplasty") > age("Myomectomy") + 15.0);
    // Statuses in plausible proportions.
    let share =
        |s: &str| procs.values().filter(|p| p.status == s).count() as f64 / procs.len() as f64;
    assert!(
        (0.005..0.03).contains(&share("cancelled")),
        "cancelled {}",
        share("cancelled")
    );
    assert!(
        (0.005..0.03).contains(&share("aborted")),
        "aborted {}",
        share("aborted")
    );
    assert!(share("completed") > 0.95);
}

#[test]
fn durations_are_log_normal_per_type() {
    let procs = procedures(seed_run());
    let minutes = |kind: &str| -> Vec<f64> {
        procs
            .values()
            .filter(|p| p.kind == kind && p.status == "completed")
            .filter_map(|p| Some((p.end? - p.start?) as f64 / 60e6))
            .collect()
    };
    let prostatectomy = minutes("Radical Prostatectomy");
    let m = median(prostatectomy.clone());
    assert!((105.0..135.0).contains(&m), "prostatectomy median {m} min");
    let hysterectomy = median(minutes("Hysterectomy"));
    assert!(
        (90.0..180.0).contains(&hysterectomy),
        "hysterectomy median {hysterectomy} min"
    );
    // Right-skewed: the mean is above the median, and there is a spread.
    assert!(mean(prostatectomy.iter().copied()) > m);
    let short = prostatectomy.iter().filter(|d| **d < m * 0.8).count();
    let long = prostatectomy.iter().filter(|d| **d > m * 1.25).count();
    assert!(short > 0 && long > short / 2, "{short} short, {long} long");
}

#[test]
fn no_robot_does_two_things_at_once() {
    for run in [seed_run(), live_run()] {
        let procs = procedures(run);
        let mut by_robot: HashMap<Vec<u8>, Vec<(i64, i64)>> = HashMap::new();
        for p in procs.values() {
            if let (Some(s), Some(e)) = (p.start, p.end) {
                by_robot.entry(p.robot.clone()).or_default().push((s, e));
            }
        }
        // Maintenance windows are busy time too.
        let mut opened: HashMap<Vec<u8>, i64> = HashMap::new();
        for (at, e) in events(run) {
            if let Some(Body::RobotStatusChanged(s)) = &e.body {
                match s.status.as_str() {
                    "maintenance" => {
                        opened.insert(s.robot_id.to_vec(), at);
                    }
                    "operational" => {
                        let from = opened.remove(&s.robot_id[..]).expect("opened");
                        by_robot
                            .entry(s.robot_id.to_vec())
                            .or_default()
                            .push((from, at));
                    }
                    _ => {}
                }
            }
        }
        for spans in by_robot.values_mut() {
            spans.sort_unstable();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "overlap {:?} {:?}", w[0], w[1]);
            }
        }
    }
}

#[test]
fn frames_are_inside_their_procedure_in_sequence() {
    for (run, per_procedure) in [(seed_run(), Some(100)), (live_run(), None)] {
        let procs = procedures(run);
        let mut seqs: HashMap<&[u8], Vec<u64>> = HashMap::new();
        for f in frames(run) {
            let p = &procs[&f.procedure_id[..]];
            // A live run's last cases are still running when the feed stops.
            let (start, end) = (p.start.expect("started"), p.end.unwrap_or(i64::MAX));
            assert!(
                f.timestamp > start && f.timestamp < end,
                "frame outside its procedure"
            );
            assert_eq!(f.robot_id, p.robot);
            seqs.entry(&f.procedure_id).or_default().push(f.seq);
        }
        for s in seqs.values() {
            assert!(
                s.iter().enumerate().all(|(i, q)| *q == i as u64),
                "seq runs 0, 1, 2, …"
            );
            if let Some(n) = per_procedure {
                assert_eq!(s.len(), n);
            }
        }
        assert_eq!(
            seqs.len(),
            procs.values().filter(|p| p.start.is_some()).count()
        );
    }
}

#[test]
fn telemetry_is_continuous_and_physically_coupled() {
    let run = live_run();
    let mut by_procedure: HashMap<&[u8], Vec<&TelemetryFrame>> = HashMap::new();
    for f in frames(run) {
        by_procedure.entry(&f.procedure_id).or_default().push(f);
    }
    assert!(by_procedure.len() >= 6);
    let mut grip: HashMap<&str, Vec<f64>> = HashMap::new();
    let (mut speed, mut power) = (Vec::new(), Vec::new());
    let mut contact_force = 0;
    for fs in by_procedure.values() {
        let mut tool_runs = 1;
        for w in fs.windows(2) {
            let (a, b) = (w[0], w[1]);
            let step = ((b.arm_position_x - a.arm_position_x).powi(2)
                + (b.arm_position_y - a.arm_position_y).powi(2)
                + (b.arm_position_z - a.arm_position_z).powi(2))
            .sqrt();
            // 100 Hz: a smooth arm moves millimetres between frames, not centimetres.
            assert!(step < 5.0, "arm jumped {step} mm in one frame");
            speed.push(step);
            power.push(b.power_consumption);
            tool_runs += usize::from(a.tool_type != b.tool_type);
        }
        assert!(
            tool_runs * 200 < fs.len().max(200) + 200,
            "{tool_runs} tool segments in {} frames",
            fs.len()
        );
        for f in fs.iter() {
            assert!(f.arm_position_x.abs() <= 200.0 && f.arm_position_y.abs() <= 200.0);
            assert!((50.0..=250.0).contains(&f.arm_position_z));
            assert!((-180.0..=180.0).contains(&f.arm_rotation));
            assert!((0.0..=100.0).contains(&f.tremor_compensation));
            assert!((1.0..=10.0).contains(&f.camera_zoom));
            assert!((0.0..=90.0).contains(&f.camera_angle));
            // Force only in tissue contact (the arm below the contact depth, at most 130 mm).
            if f.arm_position_z > 131.0 {
                assert!(
                    f.force_feedback_z.abs() < 0.1,
                    "force {} out of contact",
                    f.force_feedback_z
                );
            } else if f.force_feedback_z > 5.0 {
                contact_force += 1;
            }
            grip.entry(&f.tool_type).or_default().push(f.grip_pressure);
        }
        // Temperature rises with use.
        let tenth = fs.len() / 10;
        if tenth > 10 {
            let early = mean(fs[..tenth].iter().map(|f| f.system_temperature));
            let late = mean(fs[fs.len() - tenth..].iter().map(|f| f.system_temperature));
            assert!(late > early, "temperature {early} → {late}");
        }
    }
    assert!(contact_force > 0, "no force spike at tissue contact");
    // Grip pressure follows the tool: a stapler clamps harder than scissors.
    let mean_grip = |t: &str| grip.get(t).map(|g| mean(g.iter().copied()));
    if let (Some(stapler), Some(scissors)) =
        (mean_grip("stapler"), mean_grip("monopolar_curved_scissors"))
    {
        assert!(stapler > 3.0 * scissors);
    }
    assert!(grip.len() > 1, "more than one tool in use");
    // Power follows motion.
    let (ms, mp) = (mean(speed.iter().copied()), mean(power.iter().copied()));
    let cov: f64 = speed
        .iter()
        .zip(&power)
        .map(|(s, p)| (s - ms) * (p - mp))
        .sum();
    let sd = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    let r = cov / (sd(&speed, ms) * sd(&power, mp));
    assert!(r > 0.3, "power and motion correlate at {r}");
}

#[test]
fn outcomes_follow_complexity_age_and_abort() {
    let procs = procedures(seed_run());
    let ran: Vec<&Proc> = procs.values().filter(|p| p.outcome.is_some()).collect();
    let outcome = |p: &Proc| p.outcome.clone().expect("ran");
    for p in &ran {
        let o = outcome(p);
        assert!(matches!(
            o.success_status.as_str(),
            "successful" | "complicated" | "failed"
        ));
        assert!((1..=10).contains(&o.patient_satisfaction_score));
        assert!((1..=100).contains(&o.recovery_score));
        assert!(o.blood_loss_ml >= 0 && o.hospital_stay_days >= 0);
        assert_eq!(o.complications.is_empty(), o.success_status == "successful");
    }
    let rate = |ps: &[&&Proc]| {
        ps.iter()
            .filter(|p| outcome(p).success_status != "successful")
            .count() as f64
            / ps.len().max(1) as f64
    };
    let aborted: Vec<&&Proc> = ran.iter().filter(|p| p.status == "aborted").collect();
    let completed: Vec<&&Proc> = ran.iter().filter(|p| p.status == "completed").collect();
    assert!(
        rate(&aborted) > 2.0 * rate(&completed),
        "aborted {} vs completed {}",
        rate(&aborted),
        rate(&completed)
    );
    let simple: Vec<&&Proc> = ran.iter().filter(|p| p.complexity < 2.2).collect();
    let complex: Vec<&&Proc> = ran.iter().filter(|p| p.complexity > 3.0).collect();
    assert!(rate(&complex) > rate(&simple));
    let blood = |ps: &[&&Proc]| mean(ps.iter().map(|p| f64::from(outcome(p).blood_loss_ml)));
    assert!(blood(&complex) > blood(&simple) * 1.2);
    let young: Vec<&&Proc> = ran.iter().filter(|p| p.age < 45).collect();
    let old: Vec<&&Proc> = ran.iter().filter(|p| p.age > 75).collect();
    let stay = |ps: &[&&Proc]| mean(ps.iter().map(|p| f64::from(outcome(p).hospital_stay_days)));
    let recovery = |ps: &[&&Proc]| mean(ps.iter().map(|p| f64::from(outcome(p).recovery_score)));
    assert!(stay(&old) > stay(&young));
    assert!(recovery(&old) < recovery(&young));
}

#[test]
fn maintenance_is_plausible_and_follows_aborts() {
    let run = seed_run();
    let mut cost: HashMap<String, Vec<f64>> = HashMap::new();
    let mut emergencies: HashMap<Vec<u8>, Vec<i64>> = HashMap::new();
    for (at, e) in events(run) {
        if let Some(Body::MaintenanceLogged(m)) = &e.body {
            assert!(matches!(
                m.maintenance_type.as_str(),
                "routine" | "emergency" | "upgrade" | "calibration"
            ));
            assert!(
                m.downtime_hours > 0.0 && m.downtime_hours < 10_000.0,
                "DECIMAL(6,2)"
            );
            assert!(m.cost > 0.0 && m.cost < 1e8, "DECIMAL(10,2)");
            assert!(m.next_maintenance_date > m.maintenance_date);
            assert!(m.technician_id.starts_with("TECH-") && !m.technician_name.is_empty());
            cost.entry(m.maintenance_type.clone())
                .or_default()
                .push(m.cost);
            if m.maintenance_type == "emergency" {
                emergencies.entry(m.robot_id.to_vec()).or_default().push(at);
            }
        }
    }
    let avg = |t: &str| mean(cost[t].iter().copied());
    assert!(avg("emergency") > avg("routine") && avg("routine") > avg("calibration"));
    // Emergency service follows an aborted procedure far more often than a completed one.
    let procs = procedures(run);
    let followed = |status: &str| {
        let ps: Vec<&Proc> = procs.values().filter(|p| p.status == status).collect();
        let hit = ps
            .iter()
            .filter(|p| {
                let end = p.end.expect("ended");
                emergencies
                    .get(&p.robot)
                    .is_some_and(|ts| ts.iter().any(|t| *t > end && *t < end + MICROS_PER_DAY))
            })
            .count();
        hit as f64 / ps.len() as f64
    };
    let (after_abort, after_completion) = (followed("aborted"), followed("completed"));
    assert!(after_abort > 0.4, "{after_abort}");
    assert!(
        after_abort > 10.0 * after_completion,
        "{after_abort} vs {after_completion}"
    );
}

#[test]
fn same_seed_and_options_same_records_any_change_another_fleet() {
    let a: Vec<Record> = Simulation::new(live_config(9)).expect("valid").collect();
    let b: Vec<Record> = Simulation::new(live_config(9)).expect("valid").collect();
    assert_eq!(a, b);
    let c: Vec<Record> = Simulation::new(live_config(10)).expect("valid").collect();
    assert_ne!(a, c);
    // The same seed with a different fleet size must not reuse robot ids.
    let mut bigger = live_config(9);
    bigger.robots = 7;
    let robots = |rs: &[Record]| -> HashSet<[u8; 16]> {
        rs.iter()
            .filter(|r| matches!(&r.payload, Payload::Event(e) if matches!(e.body, Some(Body::RobotRegistered(_)))))
            .map(|r| r.key)
            .collect()
    };
    let d: Vec<Record> = Simulation::new(bigger).expect("valid").collect();
    assert!(robots(&a).is_disjoint(&robots(&d)));
}

#[test]
fn live_telemetry_is_generated_a_record_at_a_time() {
    // Ten rooms at 1 kHz in real time: cases of hours, millions of frames each.
    let mut cfg = live_config(4);
    cfg.robots = 10;
    cfg.hz = 1_000;
    cfg.speed = 1.0;
    cfg.duration = None;
    let mut sim = Simulation::new(cfg).expect("valid");
    let mut most = 0;
    for _ in 0..5_000 {
        assert!(sim.next().is_some(), "a live run without a limit goes on");
        most = most.max(sim.buffered_frames());
    }
    // At most one 100 ms record (100 frames) per room waits in memory.
    assert!(most <= 10 * 100, "{most} frames buffered");
}

#[test]
fn live_duration_ends_the_feed_with_cases_in_progress() {
    let mut cfg = live_config(8);
    cfg.speed = 1.0;
    cfg.duration = Some(Duration::from_secs(20));
    let run: Vec<Record> = Simulation::new(cfg.clone()).expect("valid").collect();
    let stop = cfg.start_micros + 20_000_000;
    assert!(run.iter().all(|r| r.at < stop));
    let started = count(&run, |b| matches!(b, Body::ProcedureStarted(_)));
    let ended = count(&run, |b| {
        matches!(b, Body::ProcedureCompleted(_) | Body::ProcedureAborted(_))
    });
    assert_eq!(ended, 0, "two-hour cases are still running after 20 s");
    assert!(
        started >= 5,
        "the rooms started their first cases ({started})"
    );
}

#[test]
fn live_rooms_stop_at_the_procedure_limit() {
    let mut cfg = live_config(3);
    cfg.duration = None;
    cfg.procedures = Some(13);
    cfg.speed = 3_600.0;
    let run: Vec<Record> = Simulation::new(cfg).expect("valid").collect();
    assert_eq!(
        count(&run, |b| matches!(b, Body::ProcedureScheduled(_))),
        13
    );
}

#[test]
fn bad_options_name_the_option() {
    let mut c = live_config(1);
    c.robots = 0;
    let e = Simulation::new(c).expect_err("zero robots");
    assert_eq!(
        e.to_string(),
        "invalid option --robots: must be between 1 and 1000000"
    );
    let mut c = live_config(1);
    c.hz = 0;
    assert!(
        Simulation::new(c)
            .expect_err("zero hz")
            .to_string()
            .starts_with("invalid option --hz")
    );
    let mut c = live_config(1);
    c.speed = 0.5;
    assert!(
        Simulation::new(c)
            .expect_err("slow")
            .to_string()
            .starts_with("invalid option --speed")
    );
    let mut c = SimConfig::seed(1.0, 1, WINDOW_START);
    c.procedures = Some(1_000_000);
    let e = Simulation::new(c).expect_err("too many");
    assert!(
        e.to_string()
            .starts_with("invalid option --procedures: 1000000 do not fit"),
        "{e}"
    );
}
