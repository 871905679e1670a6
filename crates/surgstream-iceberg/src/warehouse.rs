//! The warehouse's star schema as Iceberg tables (`warehouse.fact_procedure`, …, in the same
//! catalog as the telemetry table), so that Spark, Trino, Athena and Snowflake read it in
//! place with snapshot isolation. The warehouse writes each rebuilt month (or the dimensions)
//! as a new, never overwritten object under [`ROOT`] and records it in PostgreSQL
//! (`warehouse.iceberg_files`) in the same transaction as the month's rows; [`sync`] then makes
//! the table's live files equal to the recorded ones in one snapshot. The database is the
//! truth, the table follows it: a sync interrupted anywhere is finished by the next one.
//!
//! The namespace is `warehouse`, as PostgreSQL's schema, so that `warehouse/queries/*.sql`
//! (which name `warehouse.fact_robot_day`, …) run unchanged on an engine whose current catalog
//! is this one.

use std::collections::{HashMap, HashSet};

use arrow::datatypes::{DataType, Schema as ArrowSchema, TimeUnit};
use iceberg::spec::{
    DataContentType, DataFileBuilder, DataFileFormat, Literal, NestedField, Operation,
    PrimitiveType, Schema, Struct, Transform, Type, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent, TableUpdate};

use crate::replace::{Change, rewrite};
use crate::{IcebergError, Tables};

/// The namespace of the warehouse's tables.
pub const NAMESPACE: &str = "warehouse";
/// The lake directory the tables lie in (`warehouse_iceberg/<table>/data/…`, `…/metadata/`):
/// beside, not inside, the warehouse's plain month files (`warehouse/<table>/month=…/`), which
/// are replaced in place for readers that list a directory.
pub const ROOT: &str = "warehouse_iceberg";
/// The partition column of the fact tables (`yyyymm`).
pub const MONTH_KEY: &str = "month_key";

/// A set of tables kept this way: the warehouse's star schema, or the procedure archive's
/// tables (`archive.surgical_procedures`, …, over the objects of `archive/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The tables' namespace.
    pub namespace: &'static str,
    /// The lake directory each table's location is in (`<root>/<table>`).
    pub root: &'static str,
    /// `surgstream.source` of its tables and snapshots.
    pub source: &'static str,
    /// Whether its files are written without field ids, read through the table's name mapping.
    pub by_name: bool,
}

/// The warehouse's tables (`warehouse.fact_procedure`, …).
pub const WAREHOUSE: Family = Family {
    namespace: NAMESPACE,
    root: ROOT,
    source: "warehouse",
    by_name: false,
};

/// The procedure archive's tables (`archive.surgical_procedures`, `archive.procedure_outcomes`,
/// `archive.status_audit`), over `archive/<table>/month=…/` (their metadata beside, in
/// `archive/<table>/metadata/`).
pub const ARCHIVE: Family = Family {
    namespace: "archive",
    root: "archive",
    source: "archive",
    by_name: true,
};

/// One data file the warehouse recorded for a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseFile {
    /// Lake-relative path.
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    /// The month it holds (fact tables); `None` for a dimension table.
    pub month_key: Option<i32>,
}

/// What one sync of one table did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    pub table: String,
    /// Files added and removed by the snapshot (0 and 0: the table was already equal).
    pub added: usize,
    pub removed: usize,
}

/// The directory of `table`'s data files: `warehouse_iceberg/<table>/data`.
pub fn data_dir(table: &str) -> String {
    format!("{ROOT}/{table}/data")
}

fn ident(family: &Family, table: &str) -> TableIdent {
    TableIdent::new(
        NamespaceIdent::new(family.namespace.to_owned()),
        table.to_owned(),
    )
}

/// The Iceberg type of a column the warehouse's SQL produces.
fn primitive(name: &str, ty: &DataType) -> Result<PrimitiveType, IcebergError> {
    Ok(match ty {
        DataType::Boolean => PrimitiveType::Boolean,
        DataType::Int32 => PrimitiveType::Int,
        DataType::Int64 => PrimitiveType::Long,
        DataType::Float32 => PrimitiveType::Float,
        DataType::Float64 => PrimitiveType::Double,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PrimitiveType::String,
        DataType::Date32 => PrimitiveType::Date,
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => PrimitiveType::Timestamptz,
        DataType::Timestamp(TimeUnit::Microsecond, None) => PrimitiveType::Timestamp,
        DataType::Decimal128(precision, scale) if *scale >= 0 => PrimitiveType::Decimal {
            precision: u32::from(*precision),
            scale: u32::try_from(*scale).unwrap_or(0),
        },
        DataType::FixedSizeBinary(n) => PrimitiveType::Fixed(u64::try_from(*n).unwrap_or(0)),
        DataType::Binary | DataType::LargeBinary => PrimitiveType::Binary,
        other => {
            return Err(IcebergError::Schema(format!(
                "column {name} is {other}, which has no Iceberg type here (cast it in the SQL: \
                 INT, BIGINT, DOUBLE, DECIMAL, VARCHAR, DATE, TIMESTAMP, BOOLEAN)"
            )));
        }
    })
}

/// The table schema for `arrow`'s columns, in their order: a column the table has under the
/// same name and type keeps its field id, any other gets a new one above `last_id`. Every
/// column is optional (a SQL's nullability differs from month to month).
fn schema_for(
    arrow: &ArrowSchema,
    current: Option<&Schema>,
    last_id: i32,
) -> Result<(Vec<NestedField>, bool), IcebergError> {
    let mut next = last_id;
    let mut changed = current.is_none_or(|c| c.as_struct().fields().len() != arrow.fields().len());
    let mut fields = Vec::new();
    for f in arrow.fields() {
        let ty = Type::Primitive(primitive(f.name(), f.data_type())?);
        let id = match current.and_then(|c| c.field_by_name(f.name())) {
            Some(old) if *old.field_type == ty => old.id,
            _ => {
                changed = true;
                next += 1;
                next
            }
        };
        fields.push(NestedField::optional(id, f.name(), ty));
    }
    Ok((fields, changed))
}

/// The table `warehouse.<name>` with columns for `arrow`, created (a fact table partitioned by
/// its `month_key`, with `by_month`) or given a new current schema when its columns changed; and each column's
/// field id, which the Parquet files written for it must carry.
pub async fn prepare(
    tables: &Tables,
    name: &str,
    arrow: &ArrowSchema,
    by_month: bool,
) -> Result<HashMap<String, i32>, IcebergError> {
    prepare_in(&WAREHOUSE, tables, name, arrow, by_month).await
}

/// [`prepare`] for a table of `family`.
pub async fn prepare_in(
    family: &Family,
    tables: &Tables,
    name: &str,
    arrow: &ArrowSchema,
    by_month: bool,
) -> Result<HashMap<String, i32>, IcebergError> {
    let ids = |t: &Table| -> HashMap<String, i32> {
        t.metadata()
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.id))
            .collect()
    };
    let table = match load_in(family, tables, name).await? {
        Some(table) => table,
        None => create(family, tables, name, arrow, by_month).await?,
    };
    let metadata = table.metadata();
    let (fields, changed) = schema_for(
        arrow,
        Some(metadata.current_schema()),
        metadata.last_column_id(),
    )?;
    if !changed {
        return Ok(ids(&table));
    }
    let schema = Schema::builder()
        .with_schema_id(metadata.current_schema_id() + 1)
        .with_fields(fields.into_iter().map(Into::into))
        .build()
        .map_err(IcebergError::iceberg(format!(
            "build the new schema of {}.{name}",
            family.namespace
        )))?;
    let mut updates = vec![
        TableUpdate::AddSchema {
            schema: schema.clone(),
        },
        TableUpdate::SetCurrentSchema { schema_id: -1 },
    ];
    if family.by_name {
        updates.push(TableUpdate::SetProperties {
            updates: HashMap::from([(
                "schema.name-mapping.default".to_owned(),
                crate::schema::name_mapping(&schema)?,
            )]),
        });
    }
    let table =
        tables
            .catalog()
            .commit_on(&table, updates)
            .await
            .map_err(IcebergError::iceberg(format!(
                "change the schema of {}.{name}",
                family.namespace
            )))?;
    tracing::info!(table = %ident(family, name), "the table's columns changed: new current schema");
    Ok(ids(&table))
}

/// `warehouse.<name>`, or `None` when nothing created it yet; it must lie over this lake.
pub async fn load(tables: &Tables, name: &str) -> Result<Option<Table>, IcebergError> {
    load_in(&WAREHOUSE, tables, name).await
}

/// [`load`] for a table of `family`.
pub async fn load_in(
    family: &Family,
    tables: &Tables,
    name: &str,
) -> Result<Option<Table>, IcebergError> {
    tables
        .load_over_lake(&ident(family, name), &format!("{}/{name}", family.root))
        .await
}

async fn create(
    family: &Family,
    tables: &Tables,
    name: &str,
    arrow: &ArrowSchema,
    by_month: bool,
) -> Result<Table, IcebergError> {
    let ident = ident(family, name);
    tables.ensure_namespace(ident.namespace()).await?;
    let (fields, _) = schema_for(arrow, None, 0)?;
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields(fields.into_iter().map(Into::into))
        .build()
        .map_err(IcebergError::iceberg(format!(
            "build the schema of {ident}"
        )))?;
    let mut spec = UnboundPartitionSpec::builder().with_spec_id(0);
    if by_month {
        let month = schema.field_by_name(MONTH_KEY).ok_or_else(|| {
            IcebergError::Schema(format!(
                "{ident} is partitioned by {MONTH_KEY}, which it lacks"
            ))
        })?;
        spec = spec
            .add_partition_field(month.id, MONTH_KEY, Transform::Identity)
            .map_err(IcebergError::iceberg(format!(
                "build the partition spec of {ident}"
            )))?;
    }
    let mut properties = crate::schema::table_properties();
    properties.insert("surgstream.source".to_owned(), family.source.to_owned());
    if family.by_name {
        properties.insert(
            "schema.name-mapping.default".to_owned(),
            crate::schema::name_mapping(&schema)?,
        );
    }
    let location = tables.lake().location(&format!("{}/{name}", family.root));
    let creation = TableCreation::builder()
        .name(name.to_owned())
        .location(location.clone())
        .partition_spec(spec.build())
        .properties(properties)
        .schema(schema)
        .build();
    // Two processes creating it at once: the loser loads the winner's.
    tables
        .create_or_load(&ident, &location, creation, || {
            load_in(family, tables, name)
        })
        .await
}

/// Makes the live files of `warehouse.<name>` equal to `files` (what PostgreSQL recorded as
/// current) in one snapshot: an `append` the first time, an `overwrite` for each rebuild. The
/// table must exist ([`prepare`] made it before its files were written). Returns the table as
/// it now is (`None`: there is none, nor any file for it).
pub async fn sync(
    tables: &Tables,
    name: &str,
    files: &[WarehouseFile],
) -> Result<(SyncReport, Option<Table>), IcebergError> {
    sync_in(&WAREHOUSE, tables, name, files).await
}

/// [`sync`] for a table of `family`.
pub async fn sync_in(
    family: &Family,
    tables: &Tables,
    name: &str,
    files: &[WarehouseFile],
) -> Result<(SyncReport, Option<Table>), IcebergError> {
    let mut report = SyncReport {
        table: format!("{}.{name}", family.namespace),
        ..SyncReport::default()
    };
    let Some(table) = load_in(family, tables, name).await? else {
        if files.is_empty() {
            return Ok((report, None));
        }
        return Err(IcebergError::Table(format!(
            "{} has files recorded but no Iceberg table",
            report.table
        )));
    };
    let live: HashSet<String> = crate::check::live_files(&table)
        .await?
        .into_iter()
        .map(|f| f.location)
        .collect();
    let lake = tables.lake();
    let wanted: HashMap<String, &WarehouseFile> =
        files.iter().map(|f| (lake.location(&f.path), f)).collect();
    let gone: HashSet<String> = live
        .iter()
        .filter(|l| !wanted.contains_key(*l))
        .cloned()
        .collect();
    let spec = table.metadata().default_partition_spec().clone();
    let partitioned = !spec.fields().is_empty();
    let mut added = Vec::new();
    for (location, f) in &wanted {
        if live.contains(location) {
            continue;
        }
        let partition = match (partitioned, f.month_key) {
            (true, Some(key)) => Struct::from_iter([Some(Literal::int(key))]),
            (false, None) => Struct::empty(),
            _ => {
                return Err(IcebergError::File {
                    path: f.path.clone(),
                    reason: format!(
                        "its month ({:?}) does not fit {}'s partitioning",
                        f.month_key, report.table
                    ),
                });
            }
        };
        added.push(
            DataFileBuilder::default()
                .content(DataContentType::Data)
                .file_path(location.clone())
                .file_format(DataFileFormat::Parquet)
                .partition(partition)
                .partition_spec_id(spec.spec_id())
                .record_count(u64::try_from(f.rows).unwrap_or(0))
                .file_size_in_bytes(u64::try_from(f.bytes).unwrap_or(0))
                .build()
                .map_err(|e| IcebergError::File {
                    path: f.path.clone(),
                    reason: format!("cannot describe it for Iceberg: {e}"),
                })?,
        );
    }
    if gone.is_empty() && added.is_empty() {
        return Ok((report, Some(table)));
    }
    report.added = added.len();
    // Rebuilt rows are new data, however many: never a `replace` (same data, other files).
    let operation = if gone.is_empty() {
        Operation::Append
    } else {
        Operation::Overwrite
    };
    let change = Change {
        gone,
        added,
        spec,
        properties: HashMap::from([("surgstream.source".to_owned(), family.source.to_owned())]),
        what: format!("the changed months of {}", report.table),
        operation: Some(operation),
    };
    let (table, done) = rewrite(tables, table, change, |_| Ok(())).await?;
    report.removed = done.deleted;
    Ok((report, Some(table)))
}

/// Expires the snapshots of a warehouse table ([`sync`]'s) older than `older_than` (the
/// current one stays) and deletes the metadata only they referenced. Returns how many went,
/// and every data file a retained snapshot still lists: a retired file is deleted only when
/// none does.
pub async fn expire(
    tables: &Tables,
    table: Option<Table>,
    older_than: std::time::Duration,
) -> Result<(usize, HashSet<String>), IcebergError> {
    let Some(table) = table else {
        return Ok((0, HashSet::new()));
    };
    let cutoff_ms = chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let expired = crate::expire::expire_table(tables, table, cutoff_ms, 1).await?;
    Ok((expired.expired, expired.data().clone()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    fn arrow(fields: &[(&str, DataType)]) -> ArrowSchema {
        ArrowSchema::new(
            fields
                .iter()
                .map(|(n, t)| Arc::new(Field::new(*n, t.clone(), false)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn columns_keep_their_ids_by_name_and_type() {
        let first = arrow(&[
            ("month_key", DataType::Int32),
            ("cost", DataType::Decimal128(10, 2)),
            (
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
        ]);
        let (fields, changed) = schema_for(&first, None, 0).expect("schema");
        assert!(changed);
        let schema = Schema::builder()
            .with_fields(fields.into_iter().map(Into::into))
            .build()
            .expect("schema");
        assert_eq!(schema.field_by_name("at").map(|f| f.id), Some(3));
        assert!(!schema.field_by_name("cost").is_some_and(|f| f.required));
        let (_, changed) = schema_for(&first, Some(&schema), 3).expect("same");
        assert!(!changed, "the same columns are the same schema");
        // A column's type changed and one was added: new ids above the last, the rest kept.
        let second = arrow(&[
            ("month_key", DataType::Int32),
            ("cost", DataType::Float64),
            (
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            ("n", DataType::Int64),
        ]);
        let (fields, changed) = schema_for(&second, Some(&schema), 3).expect("evolved");
        assert!(changed);
        let ids: Vec<(String, i32)> = fields.iter().map(|f| (f.name.clone(), f.id)).collect();
        assert_eq!(
            ids,
            [("month_key", 1), ("cost", 4), ("at", 3), ("n", 5)]
                .map(|(n, i)| (n.to_owned(), i))
                .to_vec()
        );
    }

    #[test]
    fn an_unmapped_type_is_named() {
        let bad = arrow(&[("x", DataType::Timestamp(TimeUnit::Nanosecond, None))]);
        let e = schema_for(&bad, None, 0).expect_err("nanoseconds");
        assert!(e.to_string().contains("column x"), "{e}");
    }
}
