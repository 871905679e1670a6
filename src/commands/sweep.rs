//! `surgstream sweep`: orphan lake files (named by no manifest row) removed.

use anyhow::Result;

use crate::cli::SweepArgs;
use crate::setup::{connect_db, open_lake};

/// Removes (or with --dry-run lists) the orphans older than --grace.
pub async fn run(a: SweepArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = connect_db(&a.db).await?;
    let u = surgstream_ingest::verify::sweep(&lake, &store, a.grace, a.dry_run).await?;
    for f in &u.orphans {
        say!("{} {f}", if a.dry_run { "would remove" } else { "removed" });
    }
    say!(
        "sweep: {} orphan files {}, {} younger than {:?} left alone",
        u.orphans.len(),
        if a.dry_run { "found" } else { "removed" },
        u.in_flight,
        a.grace
    );
    Ok(())
}
