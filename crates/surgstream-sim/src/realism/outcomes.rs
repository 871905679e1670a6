//! Outcomes and maintenance: outcomes that follow complexity, age and aborts; maintenance that
//! is plausible and follows aborts.

use super::*;

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
