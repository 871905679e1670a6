//! Fault injection for the crash and fencing tests. With `SURGSTREAM_FAULT=<point>:<n>` in the
//! environment the process aborts (no cleanup, like `kill -9`) the n-th time it reaches
//! `point`; with `SURGSTREAM_FAULT=<point>:<n>:stop` it stops itself there instead (SIGSTOP, as
//! a GC pause or a frozen VM would), to be continued by the test with SIGCONT. Either way it
//! first says where on stderr. Unset — as in every real deployment — a point costs one check of
//! a value read once.
//!
//! Points of the ingestor: `after_write` (lake files written under their final names,
//! PostgreSQL not yet committed), `after_commit` (PostgreSQL committed, Kafka offset not yet
//! committed), `before_first_commit` and `before_next_commit` (files written, the offsets'
//! compare-and-set not yet tried; for a partition this consumer has never committed, and for
//! one it has). Of the Iceberg publisher: `iceberg_before_commit` (a snapshot's manifests and
//! metadata file written, the catalog's compare-and-set not yet tried) and
//! `iceberg_after_commit` (the catalog moved to the new snapshot, nothing else done yet). Of the
//! warehouse: `warehouse_after_write` (a month's objects written, PostgreSQL not yet committed)
//! and `warehouse_before_iceberg` (every part committed, the Iceberg tables not yet synced).
//!
//! Here, at the bottom of the crates, so that every process that commits can be stopped at
//! its commit points; it reads one environment variable and touches nothing else.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The plan: the point, the hit that triggers, and whether to stop rather than abort.
static PLAN: OnceLock<Option<(String, u64, bool)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Option<(String, u64, bool)> {
    PLAN.get_or_init(|| {
        let v = std::env::var("SURGSTREAM_FAULT").ok()?;
        let mut parts = v.split(':');
        let point = parts.next()?.to_owned();
        let n = parts.next()?.parse().ok()?;
        let stop = parts.next() == Some("stop");
        Some((point, n, stop))
    })
}

/// Aborts (or stops) here if the fault plan says so.
pub fn point(name: &str) {
    point_at(name, String::new);
}

/// [`point`], naming what the process was doing (`detail`) in its message.
pub fn point_at(name: &str, detail: impl FnOnce() -> String) {
    let Some((p, n, stop)) = plan() else {
        return;
    };
    if p != name || HITS.fetch_add(1, Ordering::Relaxed) + 1 != *n {
        return;
    }
    let detail = detail();
    if *stop {
        eprintln!("fault injection: stopping at {name} (hit {n}) {detail}");
        // The whole process stops, librdkafka's threads included: no heartbeat reaches the
        // group until the test continues it.
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &std::process::id().to_string()])
            .status();
        eprintln!("fault injection: continued after {name}");
    } else {
        eprintln!("fault injection: aborting at {name} (hit {n}) {detail}");
        std::process::abort();
    }
}
