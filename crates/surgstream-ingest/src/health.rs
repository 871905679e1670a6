//! Readiness, as `/readyz` reports it: the broker, PostgreSQL and the lake's store answer, and
//! the ingestor is making progress (its loop ran recently: a flush stuck retrying a store or
//! database that is down shows here too). And liveness, as `/healthz` reports it: the loop has
//! run within a much longer time, past which it is stuck rather than waiting out an outage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics;

/// Shared between the ingestor (which records) and the HTTP endpoint (which reports).
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    checks: BTreeMap<&'static str, Check>,
    /// The loop's last beat; None before its first.
    heartbeat: Option<Instant>,
    /// Unready (`progress`) when no beat came for this long.
    stall_after: Duration,
    /// Not alive (`/healthz` 503) when no beat came for this long.
    dead_after: Duration,
}

/// One dependency's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// Whether it answered at the last probe.
    pub ok: bool,
    /// `ok`, or what failed.
    pub detail: String,
}

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    /// The loop has run within the liveness threshold.
    pub alive: bool,
    /// `ok`, or why not.
    pub detail: String,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// All checks passed.
    pub ready: bool,
    /// Each check by name.
    pub checks: BTreeMap<String, Check>,
}

impl Health {
    /// Records the outcome of a probe of `name`.
    pub fn set(&self, name: &'static str, result: Result<(), String>) {
        if let Ok(mut inner) = self.inner.lock() {
            let check = match result {
                Ok(()) => Check {
                    ok: true,
                    detail: "ok".into(),
                },
                Err(detail) => Check { ok: false, detail },
            };
            inner.checks.insert(name, check);
        }
    }

    /// The ingestor's loop is alive: it is stalled (unready) if no beat comes within
    /// `stall_after`, and stuck (not alive) if none comes within `dead_after`.
    pub fn beat(&self, stall_after: Duration, dead_after: Duration) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.heartbeat = Some(Instant::now());
            inner.stall_after = stall_after;
            inner.dead_after = dead_after;
        }
    }

    /// Whether the loop has run at least once (start-up is over).
    pub fn started(&self) -> bool {
        self.inner.lock().is_ok_and(|i| i.heartbeat.is_some())
    }

    /// Whether the loop is alive: it has run, and within the liveness threshold. Before its
    /// first beat the process is starting (connecting, migrating, checking the topics; each step
    /// bounded by its own timeout): not alive yet, so that a startup probe, not the liveness
    /// probe, is what waits for it.
    pub fn liveness(&self) -> Liveness {
        let Ok(inner) = self.inner.lock() else {
            return Liveness {
                alive: false,
                detail: "health state poisoned".into(),
            };
        };
        match inner.heartbeat {
            None => Liveness {
                alive: false,
                detail: "starting: the ingest loop has not run yet".into(),
            },
            Some(at) if at.elapsed() > inner.dead_after => Liveness {
                alive: false,
                detail: format!(
                    "stuck: the ingest loop has not run for {:.0?}, longer than any wait for an outage ({:.0?})",
                    at.elapsed(),
                    inner.dead_after
                ),
            },
            Some(_) => Liveness {
                alive: true,
                detail: "ok".into(),
            },
        }
    }

    /// Sets `surgstream_ready{check}` from the state now: 1 for each passing check, 0 for each
    /// failing one.
    pub fn record(&self) {
        for (name, check) in self.readiness().checks {
            let value = if check.ok { 1.0 } else { 0.0 };
            ::metrics::gauge!(metrics::READY, "check" => name).set(value);
        }
    }

    /// The state now. Not ready before the first probe and the first beat.
    pub fn readiness(&self) -> Readiness {
        let Ok(inner) = self.inner.lock() else {
            return Readiness {
                ready: false,
                checks: BTreeMap::new(),
            };
        };
        let mut checks: BTreeMap<String, Check> = inner
            .checks
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let progress = match inner.heartbeat {
            None => Check {
                ok: false,
                detail: "starting".into(),
            },
            Some(at) if at.elapsed() > inner.stall_after => Check {
                ok: false,
                detail: format!(
                    "stalled: the ingest loop has not run for {:.0?} (a flush waiting for its store or database?)",
                    at.elapsed()
                ),
            },
            Some(_) => Check {
                ok: true,
                detail: "ok".into(),
            },
        };
        checks.insert("progress".into(), progress);
        for name in ["broker", "database", "store"] {
            checks.entry(name.into()).or_insert_with(|| Check {
                ok: false,
                detail: "not probed yet".into(),
            });
        }
        Readiness {
            ready: checks.values().all(|c| c.ok),
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes_and_the_loop_beats() {
        let h = Health::default();
        assert!(!h.readiness().ready, "nothing probed yet");
        h.set("broker", Ok(()));
        h.set("database", Ok(()));
        h.set("store", Ok(()));
        assert_eq!(h.readiness().checks["progress"].detail, "starting");
        h.beat(Duration::from_secs(60), Duration::from_secs(300));
        assert!(h.readiness().ready);
        h.set("broker", Err("metadata request timed out".into()));
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.checks["broker"].detail, "metadata request timed out");
        h.set("broker", Ok(()));
        h.beat(Duration::ZERO, Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(5));
        let r = h.readiness();
        assert!(!r.ready);
        assert!(r.checks["progress"].detail.starts_with("stalled"), "{r:?}");
        assert!(h.liveness().alive, "stalled is unready, not dead");
    }

    #[test]
    fn alive_once_the_loop_runs_and_until_its_beat_is_older_than_the_threshold() {
        let h = Health::default();
        let l = h.liveness();
        assert!(!l.alive && l.detail.starts_with("starting"), "{l:?}");
        assert!(!h.started());
        h.beat(Duration::from_millis(1), Duration::from_millis(50));
        assert!(h.started());
        assert_eq!(
            h.liveness(),
            Liveness {
                alive: true,
                detail: "ok".into()
            }
        );
        std::thread::sleep(Duration::from_millis(80));
        let l = h.liveness();
        assert!(!l.alive, "a beat 80 ms old with a 50 ms threshold: {l:?}");
        assert!(l.detail.starts_with("stuck"), "{l:?}");
        h.beat(Duration::from_millis(1), Duration::from_millis(50));
        assert!(h.liveness().alive, "alive again once the loop beats");
    }

    #[test]
    fn each_check_is_exported_as_a_ready_gauge() {
        let captured = metrics::capture::Captured::default();
        let h = Health::default();
        h.set("broker", Err("down".into()));
        h.set("database", Ok(()));
        h.beat(Duration::from_secs(60), Duration::from_secs(300));
        ::metrics::with_local_recorder(&captured, || h.record());
        let ready = |check: &str| captured.gauge(&format!("surgstream_ready{{check=\"{check}\"}}"));
        assert_eq!(ready("broker"), Some(0.0));
        assert_eq!(ready("database"), Some(1.0));
        assert_eq!(ready("store"), Some(0.0), "not probed yet");
        assert_eq!(ready("progress"), Some(1.0));
        h.set("broker", Ok(()));
        ::metrics::with_local_recorder(&captured, || h.record());
        assert_eq!(ready("broker"), Some(1.0));
    }
}
