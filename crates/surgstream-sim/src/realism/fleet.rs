//! The fleet and its procedures: the data model's volumes, time order, each robot's maker and
//! history, procedures that fit their robot, patient and facility, log-normal durations, and no
//! robot doing two things at once.

use super::*;

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
