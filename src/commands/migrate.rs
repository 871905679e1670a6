//! `surgstream migrate`: the PostgreSQL migrations applied (safe to run any number of times).

use anyhow::Result;

use crate::cli::DbArgs;
use crate::setup::connect_db;

pub async fn run(a: DbArgs) -> Result<()> {
    let store = connect_db(&a).await?;
    store.migrate().await?;
    say!("migrations applied to {}", store.target());
    Ok(())
}
