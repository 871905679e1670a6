//! `surgstream archive` and `surgstream restore`: procedures between PostgreSQL and the lake's
//! `archive/` (surgstream_warehouse::archive).

use anyhow::{Context, Result};
use surgstream_warehouse::archive::{Archiver, Selection};

use crate::cli::{ArchiveArgs, ArchiveStore, RestoreArgs};
use crate::setup::{iceberg_tables, migrated_db, open_lake};

/// The archiver `archive` and `restore` run: over their lake and database (migrated unless
/// `--skip-migrate`), published to Iceberg unless `--no-iceberg`.
async fn open(o: &ArchiveStore) -> Result<Archiver> {
    let lake = open_lake(&o.lake)?;
    let store = migrated_db(&o.db, o.skip_migrate).await?;
    archiver(&lake, &store, o.no_iceberg, &o.iceberg_catalog)
}

/// The archiver the options describe: published to Iceberg unless `--no-iceberg`.
pub fn archiver(
    lake: &surgstream_lake::Lake,
    store: &surgstream_store::Store,
    no_iceberg: bool,
    catalog: &str,
) -> Result<Archiver> {
    let archiver = Archiver::new(lake.clone(), store.pool().clone());
    Ok(if no_iceberg {
        archiver
    } else {
        archiver.with_iceberg(
            iceberg_tables(lake, store, catalog)?,
            surgstream_warehouse::ICEBERG_RETENTION,
        )
    })
}

pub async fn run(a: ArchiveArgs) -> Result<()> {
    let older_than = chrono::Duration::from_std(a.older_than)
        .with_context(|| format!("--older-than {:?} is too long", a.older_than))?;
    let cutoff = chrono::Utc::now() - older_than;
    let archiver = open(&a.store).await?.with_batch(a.batch);
    let report = archiver.archive(cutoff).await?;
    if a.store.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "archive: {} procedures finished before {} moved to archive/ ({} outcomes, {} status changes; {} objects, {} bytes, {} months, {} batches) in {:.1} s",
            report.procedures,
            cutoff.format("%Y-%m-%dT%H:%M:%SZ"),
            report.outcomes,
            report.audit_rows,
            report.files,
            report.bytes,
            report.months.len(),
            report.batches,
            report.seconds
        );
    }
    Ok(())
}

pub async fn restore(a: RestoreArgs) -> Result<()> {
    let what = match (a.procedure, a.month) {
        (Some(p), _) => Selection::Procedure(p),
        (None, Some(m)) => Selection::Month(m),
        (None, None) => anyhow::bail!("give --procedure ID or --month YYYY-MM"),
    };
    let report = open(&a.store).await?.restore(what).await?;
    if a.store.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restore: {} procedures back in PostgreSQL ({} outcomes, {} status changes; {} archive objects read, {} emptied and deleted) in {:.1} s",
            report.procedures,
            report.outcomes,
            report.audit_rows,
            report.files_read,
            report.files_deleted.len(),
            report.seconds
        );
    }
    Ok(())
}
