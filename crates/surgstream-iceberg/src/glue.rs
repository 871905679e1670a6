//! The Iceberg tables in the AWS Glue Data Catalog, where Athena, Redshift Spectrum, EMR and
//! Glue's jobs find them. `surgstream iceberg register --glue` records each table of the catalog
//! in `iceberg_glue_tables` and creates its Glue entry; from then on every commit to a
//! registered table (the ingestor's publishes, `iceberg publish`, compaction, expiry, the
//! warehouse) moves the Glue entry to the new metadata file ([`sync`]), with no flag: the
//! registration is remembered in PostgreSQL.
//!
//! Ordering: [`sync`] takes the registration row's lock, reads the table's current metadata
//! file and pushes that one, in one transaction; two publishers that commit one after the other
//! push in turn, the second finds Glue already current or moves it further — never back. Glue's
//! own `VersionId` check (surgstream_aws::glue::point_at) guards against writers outside
//! surgstream.
//!
//! A failed push does not undo the commit (the PostgreSQL catalog is the source of truth): it
//! is logged, counted (`surgstream_iceberg_glue_updates_total{result="error"}`), and the next
//! commit or `iceberg publish` pushes the then current file.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sqlx::{PgPool, Row};
use surgstream_aws::glue::{GlueTable, Updated};
use surgstream_aws::{Aws, AwsError};

/// Counter of Glue pushes, by `result`: `moved`, `created`, `unchanged`, `error`.
pub const GLUE_UPDATES: &str = "surgstream_iceberg_glue_updates_total";

/// Why a Glue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// PostgreSQL.
    #[error("cannot {what}: {source}")]
    Db {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Glue, or the credentials.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// What the user asked for cannot be done.
    #[error("{0}")]
    Invalid(String),
}

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> GlueError {
    move |source| GlueError::Db { what, source }
}

/// One registered table and what its push did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// `namespace.table` in the Iceberg catalog.
    pub table: String,
    /// `glue:[catalog:]database.table`.
    pub glue: String,
    /// The metadata file Glue names now.
    pub metadata_location: String,
    /// `created`, `moved`, `unchanged`.
    pub result: &'static str,
}

/// The AWS configuration of a region, loaded once per process.
async fn aws(region: &str) -> Aws {
    static LOADED: OnceLock<Mutex<HashMap<String, Aws>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(aws) = loaded.lock().ok().and_then(|m| m.get(region).cloned()) {
        return aws;
    }
    let aws = Aws::load(Some(region.to_owned()), None).await;
    if let Ok(mut m) = loaded.lock() {
        m.insert(region.to_owned(), aws.clone());
    }
    aws
}

/// The table's location: its metadata file's directory's parent (`…/<table>/metadata/x.json`).
fn table_location(metadata_location: &str) -> String {
    metadata_location
        .rsplit_once("/metadata/")
        .map(|(table, _)| table.to_owned())
        .unwrap_or_else(|| metadata_location.to_owned())
}

/// Glue database names: lower case letters, digits and `_` (Athena's rule).
fn glue_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Registers every table of catalog `catalog` in Glue: each under its own name, in `database`
/// (default: the table's Iceberg namespace) of Glue catalog `catalog_id` (default: the
/// account's), in `region` (default: the SDK's); then pushes each table's current metadata
/// file. Registering again is harmless (and moves a registration to the new database).
pub async fn register(
    pool: &PgPool,
    catalog: &str,
    database: Option<&str>,
    catalog_id: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<Pushed>, GlueError> {
    let aws = Aws::load(region.map(str::to_owned), None).await;
    let region = aws
        .require_region("the Glue Data Catalog (--region)")
        .map_err(GlueError::Aws)?;
    let tables: Vec<(String, String)> = sqlx::query(
        "SELECT table_namespace, table_name FROM iceberg_tables
          WHERE catalog_name = $1 AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
          ORDER BY 1, 2",
    )
    .bind(catalog)
    .fetch_all(pool)
    .await
    .map_err(db("list the Iceberg tables"))?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    if tables.is_empty() {
        return Err(GlueError::Invalid(format!(
            "the Iceberg catalog {catalog} has no table yet: publish first (surgstream iceberg \
             publish, or run the ingestor), then register"
        )));
    }
    let mut names: HashMap<(String, String), String> = HashMap::new();
    for (namespace, table) in &tables {
        let glue_db = glue_name(database.unwrap_or(namespace));
        let glue_table = glue_name(table);
        if let Some(other) = names.insert(
            (glue_db.clone(), glue_table.clone()),
            format!("{namespace}.{table}"),
        ) {
            return Err(GlueError::Invalid(format!(
                "{other} and {namespace}.{table} would both be {glue_db}.{glue_table} in Glue: \
                 register without --glue-database (each namespace its own database)"
            )));
        }
    }
    let glue = surgstream_aws::glue::client(&aws);
    for glue_db in names
        .keys()
        .map(|(d, _)| d.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        surgstream_aws::glue::ensure_database(&glue, catalog_id.map(str::to_owned), &glue_db)
            .await?;
    }
    for (namespace, table) in &tables {
        sqlx::query(
            "INSERT INTO iceberg_glue_tables
                    (catalog_name, table_namespace, table_name, glue_catalog_id, glue_database,
                     glue_table, region)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (catalog_name, table_namespace, table_name) DO UPDATE
                SET glue_catalog_id = EXCLUDED.glue_catalog_id,
                    glue_database = EXCLUDED.glue_database, glue_table = EXCLUDED.glue_table,
                    region = EXCLUDED.region, pushed_location = NULL, pushed_at = NULL",
        )
        .bind(catalog)
        .bind(namespace)
        .bind(table)
        .bind(catalog_id)
        .bind(glue_name(database.unwrap_or(namespace)))
        .bind(glue_name(table))
        .bind(&region)
        .execute(pool)
        .await
        .map_err(db("record a Glue registration"))?;
    }
    sync(pool, catalog, None).await
}

/// Pushes the current metadata file of each registered table of `catalog` (or only of
/// `namespace.table`) to Glue. Nothing registered: nothing to do, one cheap query.
pub async fn sync(
    pool: &PgPool,
    catalog: &str,
    only: Option<(&str, &str)>,
) -> Result<Vec<Pushed>, GlueError> {
    let registered: Vec<(String, String)> = sqlx::query(
        "SELECT table_namespace, table_name FROM iceberg_glue_tables
          WHERE catalog_name = $1 AND ($2::text IS NULL OR (table_namespace = $2 AND table_name = $3))
          ORDER BY 1, 2",
    )
    .bind(catalog)
    .bind(only.map(|(n, _)| n))
    .bind(only.map(|(_, t)| t))
    .fetch_all(pool)
    .await
    .map_err(db("read the Glue registrations"))?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let mut out = Vec::new();
    for (namespace, table) in registered {
        match push_one(pool, catalog, &namespace, &table).await {
            Ok(p) => {
                metrics::counter!(GLUE_UPDATES, "result" => p.result).increment(1);
                out.push(p);
            }
            Err(e) => {
                metrics::counter!(GLUE_UPDATES, "result" => "error").increment(1);
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// [`sync`] after a commit: a failure is logged and counted, not returned (the commit stands;
/// the next one pushes again).
pub async fn sync_after_commit(pool: &PgPool, catalog: &str, namespace: &str, table: &str) {
    if let Err(e) = sync(pool, catalog, Some((namespace, table))).await {
        tracing::warn!(table = %format!("{namespace}.{table}"), error = %e, "cannot move the table's Glue entry to its new snapshot; the next commit tries again");
    }
}

async fn push_one(
    pool: &PgPool,
    catalog: &str,
    namespace: &str,
    table: &str,
) -> Result<Pushed, GlueError> {
    let mut tx = pool.begin().await.map_err(db("begin a Glue push"))?;
    let row = sqlx::query(
        "SELECT g.glue_catalog_id, g.glue_database, g.glue_table, g.region, g.pushed_location,
                t.metadata_location
           FROM iceberg_glue_tables g
           JOIN iceberg_tables t USING (catalog_name, table_namespace, table_name)
          WHERE g.catalog_name = $1 AND g.table_namespace = $2 AND g.table_name = $3
            FOR UPDATE OF g",
    )
    .bind(catalog)
    .bind(namespace)
    .bind(table)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db("lock a Glue registration"))?;
    let Some(row) = row else {
        return Err(GlueError::Invalid(format!(
            "{namespace}.{table} is registered in Glue but no longer in the Iceberg catalog"
        )));
    };
    let target = GlueTable {
        catalog_id: row.get(0),
        database: row.get(1),
        table: row.get(2),
    };
    let region: String = row.get(3);
    let pushed: Option<String> = row.get(4);
    let current: Option<String> = row.get(5);
    let Some(current) = current else {
        return Err(GlueError::Invalid(format!(
            "{namespace}.{table} has no metadata file"
        )));
    };
    let result = if pushed.as_deref() == Some(current.as_str()) {
        "unchanged"
    } else {
        let glue = surgstream_aws::glue::client(&aws(&region).await);
        let updated =
            surgstream_aws::glue::point_at(&glue, &target, &table_location(&current), &current)
                .await?;
        sqlx::query(
            "UPDATE iceberg_glue_tables SET pushed_location = $4, pushed_at = now()
              WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3",
        )
        .bind(catalog)
        .bind(namespace)
        .bind(table)
        .bind(&current)
        .execute(&mut *tx)
        .await
        .map_err(db("record a Glue push"))?;
        match updated {
            Updated::Created => "created",
            Updated::Moved { .. } => "moved",
            Updated::Unchanged => "unchanged",
        }
    };
    tx.commit().await.map_err(db("commit a Glue push"))?;
    Ok(Pushed {
        table: format!("{namespace}.{table}"),
        glue: target.to_string(),
        metadata_location: current,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_locations() {
        assert_eq!(
            glue_name("Raw.Surgical-Telemetry"),
            "raw_surgical_telemetry"
        );
        assert_eq!(
            table_location(
                "s3://lake/iceberg/surgstream/procedure_telemetry/metadata/00003-x.metadata.json"
            ),
            "s3://lake/iceberg/surgstream/procedure_telemetry"
        );
    }
}
