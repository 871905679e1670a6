//! Iceberg's SQL catalog in the project's PostgreSQL, over the store's own connection pool.
//!
//! The rows are those of Apache Iceberg's Java `JdbcCatalog` (schema version V1: the tables
//! `iceberg_tables` and `iceberg_namespace_properties`, made by the project's migrations),
//! which pyiceberg's and iceberg-rust's SQL catalogs share: Spark, Trino, Flink and pyiceberg
//! pointed at the same database with the same catalog name see the same tables. A commit is the
//! JDBC catalog's: the new metadata file is written, then the row's `metadata_location` is moved
//! from the one the commit was based on, in one compare-and-set `UPDATE`; a writer that lost
//! the race gets `CatalogCommitConflicts` and nothing of its commit is visible.
//!
//! Why not the `iceberg-catalog-sql` crate, which speaks the same layout: it issues
//! `CREATE TABLE IF NOT EXISTS` at every connect, which PostgreSQL refuses to a role without
//! CREATE on the schema even when the tables exist (the ingestor runs without DDL rights:
//! docs/security.md), and it opens its own pool from a URL, so it could not take a fresh RDS
//! IAM token per connection as the store's pool does.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, Runtime,
    TableCommit, TableCreation, TableIdent, TableUpdate,
};
use sqlx::PgPool;
use surgstream_lake::Lake;

use crate::storage::LakeStorageFactory;

/// The `iceberg_type` of a table row (views, which this catalog does not serve, say `VIEW`).
const TABLE_RECORD: &str = "TABLE";
/// The namespace property the Java catalog writes for every namespace it creates.
const EXISTS_PROPERTY: &str = "exists";

/// The JDBC-layout catalog named `name` in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    name: String,
    pool: PgPool,
    file_io: FileIO,
    runtime: Runtime,
}

fn db_error(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Unexpected, format!("cannot {what}")).with_source(e)
}

/// The table property that lets a commit delete the metadata files its log no longer keeps.
const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";

/// The metadata files a table at `location` with `metadata` knows of: its log, and itself.
fn previous_files(metadata: &TableMetadata, location: &str) -> Vec<String> {
    metadata
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.clone())
        .chain([location.to_owned()])
        .collect()
}

fn namespace_key(namespace: &NamespaceIdent) -> String {
    namespace.join(".")
}

impl PgCatalog {
    /// The catalog `name` in the database of `pool`, its files in `lake`'s object store. Must
    /// be created inside a tokio runtime.
    pub fn new(name: &str, pool: PgPool, lake: Lake) -> Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            pool,
            file_io: FileIOBuilder::new(Arc::new(LakeStorageFactory::new(lake))).build(),
            runtime: Runtime::try_current()?,
        })
    }

    /// The catalog's name (its rows' `catalog_name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file IO its tables read and write with.
    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    fn table(
        &self,
        ident: &TableIdent,
        location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        Table::builder()
            .file_io(self.file_io.clone())
            .identifier(ident.clone())
            .metadata_location(location)
            .metadata(metadata)
            .runtime(self.runtime.clone())
            .build()
    }

    /// The table's current metadata location, if the table exists.
    pub async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT metadata_location FROM iceberg_tables
              WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3
                AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        )
        .bind(&self.name)
        .bind(namespace_key(ident.namespace()))
        .bind(ident.name())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error("look up an Iceberg table"))
        .map(Option::flatten)
    }

    /// The table whose current metadata file is `location` (what [`Self::metadata_location`]
    /// read): [`Catalog::load_table`] without a second look-up of the row.
    pub async fn load_table_at(&self, ident: &TableIdent, location: String) -> Result<Table> {
        let metadata = TableMetadata::read_from(&self.file_io, &location).await?;
        self.table(ident, location, metadata)
    }

    /// Commits `updates` on top of `base`, which must still be the table's current metadata
    /// (`CatalogCommitConflicts` otherwise: nothing is retried here, the caller decides what a
    /// lost race means). For the commits the library has no action for (a compaction's replace
    /// snapshot).
    pub async fn commit_on(&self, base: &Table, updates: Vec<TableUpdate>) -> Result<Table> {
        let ident = base.identifier().clone();
        let location = base.metadata_location_result()?.to_owned();
        let mut builder = base.metadata().clone().into_builder(Some(location.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let at = MetadataLocation::from_str(&location)?
            .with_next_version()
            .with_new_metadata(&metadata)
            .to_string();
        let previous = previous_files(base.metadata(), &location);
        self.swap_metadata(&ident, &location, at, metadata, previous)
            .await
    }

    /// Writes `metadata` at `at`, then moves the table's row from `base` to it in one
    /// compare-and-set; a lost race deletes the file again and is `CatalogCommitConflicts`.
    /// After the move, with `write.metadata.delete-after-commit.enabled`, deletes the metadata
    /// files of `previous` (the base's log and the base) that the new log no longer keeps
    /// (`write.metadata.previous-versions-max`, 100 by default): one file per commit otherwise
    /// piles up for ever.
    async fn swap_metadata(
        &self,
        ident: &TableIdent,
        base: &str,
        at: String,
        metadata: TableMetadata,
        previous: Vec<String>,
    ) -> Result<Table> {
        let location = MetadataLocation::from_str(&at)?;
        metadata.write_to(&self.file_io, &location).await?;
        surgstream_proto::fault::point_at("iceberg_before_commit", || format!("({at})"));
        let moved = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = $5, previous_metadata_location = $4
              WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3
                AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
                AND metadata_location = $4",
        )
        .bind(&self.name)
        .bind(namespace_key(ident.namespace()))
        .bind(ident.name())
        .bind(base)
        .bind(&at)
        .execute(&self.pool)
        .await
        .map_err(db_error("commit to an Iceberg table"))?;
        if moved.rows_affected() == 0 {
            // The metadata file written for the lost commit is referenced by nothing.
            let _ = self.file_io.delete(&at).await;
            return Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("another writer committed to {ident} first"),
            )
            .with_retryable(true));
        }
        surgstream_proto::fault::point_at("iceberg_after_commit", || format!("({at})"));
        crate::glue::sync_after_commit(
            &self.pool,
            &self.name,
            &namespace_key(ident.namespace()),
            ident.name(),
        )
        .await;
        let delete_old = metadata
            .properties()
            .get(DELETE_AFTER_COMMIT)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if delete_old {
            let kept: std::collections::HashSet<&str> = metadata
                .metadata_log()
                .iter()
                .map(|l| l.metadata_file.as_str())
                .chain([at.as_str()])
                .collect();
            for old in previous.iter().filter(|p| !kept.contains(p.as_str())) {
                if let Err(e) = self.file_io.delete(old).await {
                    tracing::warn!(file = %old, error = %e, "cannot delete an old Iceberg metadata file; it stays");
                }
            }
        }
        self.table(ident, at, metadata)
    }

    async fn insert_table(&self, ident: &TableIdent, location: &str) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO iceberg_tables
                    (catalog_name, table_namespace, table_name, metadata_location, iceberg_type)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .bind(namespace_key(ident.namespace()))
        .bind(ident.name())
        .bind(location)
        .bind(TABLE_RECORD)
        .execute(&self.pool)
        .await
        .map_err(db_error("register an Iceberg table"))?;
        if inserted.rows_affected() == 0 {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists"),
            ));
        }
        Ok(())
    }

    async fn require_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        if self.namespace_exists(namespace).await? {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {} does not exist", namespace_key(namespace)),
            ))
        }
    }
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = $1
             UNION SELECT table_namespace FROM iceberg_tables WHERE catalog_name = $1
             ORDER BY 1",
        )
        .bind(&self.name)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("list Iceberg namespaces"))?;
        let parent = parent.map(|p| p.iter().cloned().collect::<Vec<_>>());
        names
            .into_iter()
            .map(|n| NamespaceIdent::from_strs(n.split('.')))
            .filter(|n| match (&parent, n) {
                (None, _) => true,
                (Some(p), Ok(n)) => n.len() > p.len() && n.iter().zip(p).all(|(a, b)| a == b),
                (Some(_), Err(_)) => true,
            })
            .collect()
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        if self.namespace_exists(namespace).await? {
            return Err(Error::new(
                ErrorKind::NamespaceAlreadyExists,
                format!("namespace {} already exists", namespace_key(namespace)),
            ));
        }
        let mut rows = properties.clone();
        rows.insert(EXISTS_PROPERTY.to_owned(), "true".to_owned());
        let (keys, values): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        sqlx::query(
            "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS p(k, v)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .bind(&keys)
        .bind(&values)
        .execute(&self.pool)
        .await
        .map_err(db_error("create an Iceberg namespace"))?;
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.require_namespace(namespace).await?;
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT property_key, property_value FROM iceberg_namespace_properties
              WHERE catalog_name = $1 AND namespace = $2",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("read an Iceberg namespace"))?;
        let properties = rows
            .into_iter()
            .filter_map(|(k, v)| Some((k?, v.unwrap_or_default())))
            .filter(|(k, _)| k != EXISTS_PROPERTY)
            .collect();
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2)
                 OR EXISTS (SELECT 1 FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2)",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error("look up an Iceberg namespace"))
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.require_namespace(namespace).await?;
        let (keys, values): (Vec<String>, Vec<String>) = properties.into_iter().unzip();
        sqlx::query(
            "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS p(k, v)
             ON CONFLICT (catalog_name, namespace, property_key) DO UPDATE SET property_value = EXCLUDED.property_value",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .bind(&keys)
        .bind(&values)
        .execute(&self.pool)
        .await
        .map_err(db_error("update an Iceberg namespace"))?;
        Ok(())
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.require_namespace(namespace).await?;
        if !self.list_tables(namespace).await?.is_empty() {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!("namespace {} still holds tables", namespace_key(namespace)),
            ));
        }
        sqlx::query(
            "DELETE FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .execute(&self.pool)
        .await
        .map_err(db_error("drop an Iceberg namespace"))?;
        Ok(())
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name FROM iceberg_tables
              WHERE catalog_name = $1 AND table_namespace = $2
                AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
              ORDER BY table_name",
        )
        .bind(&self.name)
        .bind(namespace_key(namespace))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("list Iceberg tables"))?;
        Ok(names
            .into_iter()
            .map(|n| TableIdent::new(namespace.clone(), n))
            .collect())
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.require_namespace(namespace).await?;
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let location = creation.location.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("table {ident} needs a location"),
            )
        })?;
        if self.metadata_location(&ident).await?.is_some() {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists"),
            ));
        }
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        let at = MetadataLocation::new_with_metadata(location, &metadata);
        metadata.write_to(&self.file_io, &at).await?;
        let at = at.to_string();
        self.insert_table(&ident, &at).await?;
        self.table(&ident, at, metadata)
    }

    async fn load_table(&self, ident: &TableIdent) -> Result<Table> {
        let Some(at) = self.metadata_location(ident).await? else {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {ident} does not exist"),
            ));
        };
        self.load_table_at(ident, at).await
    }

    async fn drop_table(&self, ident: &TableIdent) -> Result<()> {
        let dropped = sqlx::query(
            "DELETE FROM iceberg_tables
              WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3
                AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        )
        .bind(&self.name)
        .bind(namespace_key(ident.namespace()))
        .bind(ident.name())
        .execute(&self.pool)
        .await
        .map_err(db_error("drop an Iceberg table"))?;
        if dropped.rows_affected() == 0 {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {ident} does not exist"),
            ));
        }
        Ok(())
    }

    async fn purge_table(&self, ident: &TableIdent) -> Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!(
                "purging {ident} would delete the lake's own files: drop the table (the lake and its manifest stay)"
            ),
        ))
    }

    async fn table_exists(&self, ident: &TableIdent) -> Result<bool> {
        Ok(self.metadata_location(ident).await?.is_some())
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        if src == dest {
            return Ok(());
        }
        self.require_namespace(dest.namespace()).await?;
        if self.table_exists(dest).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {dest} already exists"),
            ));
        }
        let renamed = sqlx::query(
            "UPDATE iceberg_tables SET table_namespace = $4, table_name = $5
              WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3
                AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        )
        .bind(&self.name)
        .bind(namespace_key(src.namespace()))
        .bind(src.name())
        .bind(namespace_key(dest.namespace()))
        .bind(dest.name())
        .execute(&self.pool)
        .await
        .map_err(db_error("rename an Iceberg table"))?;
        if renamed.rows_affected() == 0 {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {src} does not exist"),
            ));
        }
        Ok(())
    }

    async fn register_table(&self, ident: &TableIdent, metadata_location: String) -> Result<Table> {
        self.require_namespace(ident.namespace()).await?;
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        self.insert_table(ident, &metadata_location).await?;
        self.table(ident, metadata_location, metadata)
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let current = self.load_table(&ident).await?;
        let base = current.metadata_location_result()?.to_owned();
        let previous = previous_files(current.metadata(), &base);
        let staged = commit.apply(current)?;
        let at = staged.metadata_location_result()?.to_owned();
        self.swap_metadata(&ident, &base, at, staged.metadata().clone(), previous)
            .await
    }
}
