//! Runs as a whole: determinism, the live profile's feed, its limits, and bad options.

use super::*;

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
