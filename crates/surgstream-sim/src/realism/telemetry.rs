//! Telemetry: frames strictly inside their procedure in sequence, continuous kinematics and
//! physically coupled channels.

use super::*;

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
