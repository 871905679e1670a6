//! Readiness, as `/readyz` reports it: the broker, PostgreSQL and the lake's store answer, and
//! the ingestor is making progress (its loop ran recently: a flush stuck retrying a store or
//! database that is down shows here too).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Shared between the ingestor (which records) and the HTTP endpoint (which reports).
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    checks: BTreeMap<&'static str, Check>,
    heartbeat: Option<Instant>,
    stall_after: Duration,
}

/// One dependency's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// Whether it answered at the last probe.
    pub ok: bool,
    /// `ok`, or what failed.
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

    /// The ingestor's loop is alive; it is stalled if no beat comes within `stall_after`.
    pub fn beat(&self, stall_after: Duration) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.heartbeat = Some(Instant::now());
            inner.stall_after = stall_after;
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
        h.beat(Duration::from_secs(60));
        assert!(h.readiness().ready);
        h.set("broker", Err("metadata request timed out".into()));
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.checks["broker"].detail, "metadata request timed out");
        h.set("broker", Ok(()));
        h.beat(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let r = h.readiness();
        assert!(!r.ready);
        assert!(r.checks["progress"].detail.starts_with("stalled"), "{r:?}");
    }
}
