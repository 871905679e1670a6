//! The lake as Apache Iceberg tables, for the engines users read it with (Spark, Trino, Athena
//! and Redshift through Glue, Snowflake, DuckDB, pyiceberg).
//!
//! A follower of the commit point: the PostgreSQL manifest (`lake_files`) stays the one truth of
//! exactly-once; the [`publish::Publisher`] copies what it committed into Iceberg snapshots
//! (fast appends) and records in each snapshot's summary how far it got, so it can be killed
//! anywhere and resumed with no bookkeeping of its own. The catalog is Iceberg's SQL catalog in
//! the same PostgreSQL (the Java JdbcCatalog's tables, [`catalog::PgCatalog`]), the storage the
//! lake's own object store ([`storage::LakeStorage`]).

pub mod catalog;
pub mod check;
pub mod expire;
pub mod glue;
pub mod keep;
pub mod publish;
pub mod raw;
mod replace;
pub mod schema;
pub mod storage;
pub mod warehouse;

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use sqlx::PgPool;
use surgstream_lake::Lake;

use catalog::PgCatalog;

pub use publish::{PublishReport, Publisher};

/// The catalog name the tables are registered under (the JDBC catalog's `catalog_name`): an
/// engine's catalog must carry the same name to see them, e.g. Spark's
/// `spark.sql.catalog.surgstream`.
pub const DEFAULT_CATALOG: &str = "surgstream";
/// The namespace (database) of the telemetry table (the warehouse's are in [`warehouse::NAMESPACE`]).
pub const NAMESPACE: &str = "surgstream";
/// The telemetry table's name, the lake directory it lies over.
pub const TELEMETRY_TABLE: &str = surgstream_lake::TABLE;

/// Why the Iceberg side could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    /// The table's schema could not be derived from the lake's.
    #[error("Iceberg schema: {0}")]
    Schema(String),
    /// The table in the catalog is not one this lake can publish to.
    #[error("Iceberg table: {0}")]
    Table(String),
    /// The Iceberg library or the catalog failed.
    #[error("Iceberg: cannot {what}: {}", shortened(source))]
    Iceberg {
        /// What was being done.
        what: String,
        /// Its error.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// The manifest could not be read.
    #[error(transparent)]
    Store(#[from] surgstream_store::StoreError),
    /// A manifest row cannot be published as it is.
    #[error("lake file {path}: {reason}")]
    File {
        /// The lake file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// An Iceberg error's text, cut at 600 characters: some name every file of a commit.
fn shortened(e: &iceberg::Error) -> String {
    const MAX: usize = 600;
    let text = e.to_string();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!(
            "{}… ({} characters in all)",
            &text[..at],
            text.chars().count()
        ),
        None => text,
    }
}

impl IcebergError {
    fn iceberg(what: impl Into<String>) -> impl FnOnce(iceberg::Error) -> Self {
        let what = what.into();
        move |source| Self::Iceberg {
            what,
            source: Box::new(source),
        }
    }

    /// Whether another publisher committed first: the catalog's compare-and-set failed, or the
    /// library's retry of it found the files already published (its duplicate check, which
    /// only says so in its message). The next attempt starts from the winner's snapshot.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Iceberg { source, .. }
            if source.kind() == ErrorKind::CatalogCommitConflicts
                || (source.kind() == ErrorKind::DataInvalid
                    && source.message().contains("already referenced by table")))
    }
}

/// The SQL catalog in PostgreSQL over the lake's storage, and the telemetry table in it.
#[derive(Debug, Clone)]
pub struct Tables {
    catalog: Arc<PgCatalog>,
    lake: Lake,
    telemetry: TableIdent,
}

impl Tables {
    /// The SQL catalog named `catalog_name` in the database of `pool` (its tables are made by
    /// the project's migrations), with the lake's object store as storage.
    pub fn open(lake: Lake, pool: PgPool, catalog_name: &str) -> Result<Self, IcebergError> {
        let catalog = PgCatalog::new(catalog_name, pool, lake.clone())
            .map_err(IcebergError::iceberg("set up the Iceberg catalog"))?;
        let namespace = NamespaceIdent::new(NAMESPACE.to_owned());
        Ok(Self {
            catalog: Arc::new(catalog),
            lake,
            telemetry: TableIdent::new(namespace, TELEMETRY_TABLE.to_owned()),
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &PgCatalog {
        &self.catalog
    }

    /// The lake the tables lie in.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// `surgstream.procedure_telemetry`.
    pub fn telemetry_ident(&self) -> &TableIdent {
        &self.telemetry
    }

    /// The telemetry table, created (empty, over the lake's `procedure_telemetry/` directory)
    /// if the catalog has none yet. Two processes creating it at once: one wins, the other
    /// loads it.
    pub async fn telemetry(&self) -> Result<Table, IcebergError> {
        if let Some(table) = self.telemetry_if_exists().await? {
            return Ok(table);
        }
        let ident = &self.telemetry;
        self.ensure_namespace(ident.namespace()).await?;
        let schema = schema::telemetry()?;
        let location = self.lake.location(TELEMETRY_TABLE);
        let creation = TableCreation::builder()
            .name(TELEMETRY_TABLE.to_owned())
            .location(location.clone())
            .partition_spec(schema::partition_spec(&schema)?)
            .sort_order(schema::sort_order(&schema)?)
            .properties(schema::properties(&schema)?)
            .schema(schema)
            .build();
        self.create_or_load(ident, &location, creation, || self.telemetry_if_exists())
            .await
    }

    /// The telemetry table, or `None` when nothing has created it yet. It must lie over this
    /// lake: a catalog shared by two lakes (one database, two consumer groups) would otherwise
    /// mix their files. One look-up of the catalog's row, then its metadata file.
    pub async fn telemetry_if_exists(&self) -> Result<Option<Table>, IcebergError> {
        self.load_over_lake(&self.telemetry, TELEMETRY_TABLE).await
    }

    /// The table `ident`, or `None` when the catalog has none; it must lie in `dir` of this
    /// lake.
    pub(crate) async fn load_over_lake(
        &self,
        ident: &TableIdent,
        dir: &str,
    ) -> Result<Option<Table>, IcebergError> {
        let Some(location) = self
            .catalog
            .metadata_location(ident)
            .await
            .map_err(IcebergError::iceberg(format!("look up {ident}")))?
        else {
            return Ok(None);
        };
        let here = self.lake.location(dir);
        if !location.starts_with(&format!("{here}/")) {
            return Err(IcebergError::Table(format!(
                "{ident} of catalog {} lies over {location}, not over this lake ({here}): it is another lake's; give this one a catalog of its own (--iceberg-catalog)",
                self.catalog.name()
            )));
        }
        self.catalog
            .load_table_at(ident, location)
            .await
            .map(Some)
            .map_err(IcebergError::iceberg(format!("load {ident}")))
    }

    /// Creates the table `ident` as `creation` says (at `location`); when that fails because
    /// another process created it first, the table `load` finds instead.
    pub(crate) async fn create_or_load<F>(
        &self,
        ident: &TableIdent,
        location: &str,
        creation: TableCreation,
        load: impl FnOnce() -> F,
    ) -> Result<Table, IcebergError>
    where
        F: Future<Output = Result<Option<Table>, IcebergError>>,
    {
        match self.catalog.create_table(ident.namespace(), creation).await {
            Ok(table) => {
                tracing::info!(table = %ident, %location, "created the Iceberg table");
                Ok(table)
            }
            Err(e) => match load().await {
                Ok(Some(table)) => Ok(table),
                _ => Err(IcebergError::iceberg(format!("create {ident}"))(e)),
            },
        }
    }

    /// Creates `namespace` unless the catalog has it (two processes creating it at once: the
    /// loser finds it made).
    pub(crate) async fn ensure_namespace(
        &self,
        namespace: &NamespaceIdent,
    ) -> Result<(), IcebergError> {
        let catalog = self.catalog.as_ref();
        let exists = catalog
            .namespace_exists(namespace)
            .await
            .map_err(IcebergError::iceberg(format!(
                "look up namespace {namespace}"
            )))?;
        if !exists
            && let Err(e) = catalog.create_namespace(namespace, HashMap::new()).await
            && !catalog.namespace_exists(namespace).await.unwrap_or(false)
        {
            return Err(IcebergError::iceberg(format!(
                "create namespace {namespace}"
            ))(e));
        }
        Ok(())
    }
}
