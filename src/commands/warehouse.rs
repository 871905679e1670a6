//! `surgstream warehouse`: refresh the star schema once, or every --interval until stopped.

use anyhow::Result;
use surgstream_warehouse::fresh;

use crate::cli::WarehouseArgs;
use crate::setup::{migrated_db, open_lake, print_warehouse_report, shutdown_token, warehouse};

pub async fn run(a: WarehouseArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = migrated_db(&a.db, a.skip_migrate).await?;
    let warehouse = warehouse(
        &lake,
        &store,
        &a.group,
        a.memory_limit,
        (!a.no_iceberg).then_some((a.iceberg_catalog.as_str(), a.iceberg_retention)),
    )?;
    if let Some(interval) = a.interval {
        say!(
            "warehouse: refreshing every {} until stopped",
            humantime::format_duration(interval)
        );
        fresh::describe();
        crate::http::serve(a.metrics_addr, crate::http::always_ready()).await?;
        fresh::keep_fresh(warehouse, interval, shutdown_token()).await;
        return Ok(());
    }
    let report = fresh::refresh_recorded(&warehouse, true)
        .await?
        .unwrap_or_default();
    if a.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_warehouse_report(&report);
    }
    Ok(())
}
