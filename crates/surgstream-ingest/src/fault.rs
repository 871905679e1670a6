//! Fault injection for the crash tests: with `SURGSTREAM_FAULT=<point>:<n>` in the environment
//! the process aborts (no cleanup, like `kill -9`) the n-th time it reaches `point`. Unset — as
//! in every real deployment — a point costs one check of a value read once.
//!
//! Points: `after_write` (lake files written under their final names, PostgreSQL not yet
//! committed), `after_commit` (PostgreSQL committed, Kafka offset not yet committed).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Option<(String, u64)> {
    PLAN.get_or_init(|| {
        let v = std::env::var("SURGSTREAM_FAULT").ok()?;
        let (point, n) = v.split_once(':')?;
        Some((point.to_owned(), n.parse().ok()?))
    })
}

/// Aborts here if the fault plan says so.
pub fn point(name: &str) {
    if let Some((p, n)) = plan()
        && p == name
        && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        eprintln!("fault injection: aborting at {name} (hit {n})");
        std::process::abort();
    }
}
