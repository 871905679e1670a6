//! The raw archive as Iceberg tables: one per source topic, `raw.<topic>` (the topic's name with
//! every character but letters, digits and `_` made `_`: `raw.surgical_telemetry_v1`), over
//! the raw files already in the lake (`raw/topic=<topic>/…`), with the table's location, its
//! metadata, beside them in [`ROOT`] (`raw_iceberg/<table>/metadata/`): inside `raw/` it would
//! put JSON and Avro files among the Parquet of directory readers (pyarrow's datasets, Spark's
//! `read.parquet`) of the plain layout. Nothing is rewritten: the files carry no field ids and are
//! read through the table's name mapping, `headers` (a list of structs) included;
//! `kafka_timestamp` is stored in milliseconds, which Iceberg readers widen to the table's
//! microsecond `timestamptz`.
//!
//! Partitioned by `kafka_partition` (identity: every file holds one partition's records), in
//! `kafka_offset` order, each file described with bounds on the partition, the offsets of its
//! flushed range and its Kafka timestamps, so that a query for an offset range or a time window
//! opens only the files that can hold it. The table follows `raw_files` as the telemetry table
//! follows `lake_files` ([`crate::Publisher::raw`]).

use std::collections::HashMap;

use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, ListType, Literal,
    NestedField, NullOrder, PrimitiveType, Schema, SortDirection, SortField, SortOrder, Struct,
    StructType, Transform, Type, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};
use surgstream_store::raw::RawFile;

use crate::{IcebergError, Tables, schema};

/// The namespace of the raw tables.
pub const NAMESPACE: &str = "raw";
/// The lake directory the raw tables' locations (their metadata) are in.
pub const ROOT: &str = "raw_iceberg";
/// `surgstream.source` of the raw tables.
pub const SOURCE: &str = "raw_files";
/// The table property naming the topic a raw table holds.
pub const TOPIC_PROPERTY: &str = "surgstream.topic";

const PARTITION_ID: i32 = 1;
const OFFSET_ID: i32 = 2;
const TIMESTAMP_ID: i32 = 3;
/// The id of the table's sort order, `kafka_offset`, which every raw file keeps.
pub const SORT_ORDER_ID: i64 = 1;

/// The table name of `topic`'s raw records: its name, lower-cased, with every character but
/// letters, digits and `_` made `_` (Kafka allows `.` and `-`, which SQL would need quoted).
pub fn table_name(topic: &str) -> String {
    topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `raw.<table_name(topic)>`.
pub fn ident(topic: &str) -> TableIdent {
    TableIdent::new(NamespaceIdent::new(NAMESPACE.to_owned()), table_name(topic))
}

/// The lake directory of `topic`'s raw table, its location: `raw_iceberg/<table>`. Its data
/// files are the raw files, in `raw/topic=<topic>/`.
pub fn dir(topic: &str) -> String {
    format!("{ROOT}/{}", table_name(topic))
}

/// The raw files' columns as an Iceberg schema (crates/surgstream-lake/src/raw.rs,
/// `raw_schema`): `int`, `long`, `timestamptz`, `string`, `binary`, and `headers` as
/// `list<struct<key: string, value: binary>>`, with the files' nullability.
pub fn schema() -> Result<Schema, IcebergError> {
    let header = StructType::new(vec![
        NestedField::required(9, "key", Type::Primitive(PrimitiveType::String)).into(),
        NestedField::optional(10, "value", Type::Primitive(PrimitiveType::Binary)).into(),
    ]);
    let headers = ListType::new(NestedField::list_element(8, Type::Struct(header), true).into());
    let p = |t| Type::Primitive(t);
    Schema::builder()
        .with_schema_id(0)
        .with_fields([
            NestedField::required(PARTITION_ID, "kafka_partition", p(PrimitiveType::Int)).into(),
            NestedField::required(OFFSET_ID, "kafka_offset", p(PrimitiveType::Long)).into(),
            NestedField::optional(
                TIMESTAMP_ID,
                "kafka_timestamp",
                p(PrimitiveType::Timestamptz),
            )
            .into(),
            NestedField::optional(4, "kafka_timestamp_type", p(PrimitiveType::String)).into(),
            NestedField::optional(5, "key", p(PrimitiveType::Binary)).into(),
            NestedField::required(6, "headers", Type::List(headers)).into(),
            NestedField::optional(7, "value", p(PrimitiveType::Binary)).into(),
        ])
        .build()
        .map_err(IcebergError::iceberg("build the raw table schema"))
}

/// The raw table of `topic`, or `None` when nothing has created it yet. It must lie in this
/// lake's `raw_iceberg/<table>` and hold that topic (two topics whose names differ only in
/// punctuation would share a table name).
pub async fn load(tables: &Tables, topic: &str) -> Result<Option<Table>, IcebergError> {
    let ident = ident(topic);
    let Some(table) = tables.load_over_lake(&ident, &dir(topic)).await? else {
        return Ok(None);
    };
    match table.metadata().properties().get(TOPIC_PROPERTY) {
        Some(t) if t == topic => Ok(Some(table)),
        other => Err(IcebergError::Table(format!(
            "{ident} holds the raw records of topic {other:?}, not of {topic:?}: two topics map to one table name"
        ))),
    }
}

/// The raw table of `topic`, created (empty) if the catalog has none yet. Two processes
/// creating it at once: one wins, the other loads it.
pub async fn create(tables: &Tables, topic: &str) -> Result<Table, IcebergError> {
    if let Some(table) = load(tables, topic).await? {
        return Ok(table);
    }
    let ident = ident(topic);
    tables.ensure_namespace(ident.namespace()).await?;
    let schema = schema()?;
    let spec = UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_field(PARTITION_ID, "kafka_partition", Transform::Identity)
        .map_err(IcebergError::iceberg("build the raw partition spec"))?
        .build();
    let order = SortOrder::builder()
        .with_order_id(SORT_ORDER_ID)
        .with_sort_field(
            SortField::builder()
                .source_id(OFFSET_ID)
                .transform(Transform::Identity)
                .direction(SortDirection::Ascending)
                .null_order(NullOrder::First)
                .build(),
        )
        .build(&schema)
        .map_err(IcebergError::iceberg("build the raw sort order"))?;
    let mut properties = schema::table_properties();
    properties.insert(
        "schema.name-mapping.default".to_owned(),
        schema::name_mapping(&schema)?,
    );
    properties.insert("surgstream.source".to_owned(), SOURCE.to_owned());
    properties.insert(TOPIC_PROPERTY.to_owned(), topic.to_owned());
    let location = tables.lake().location(&dir(topic));
    let creation = TableCreation::builder()
        .name(ident.name().to_owned())
        .location(location.clone())
        .partition_spec(spec)
        .sort_order(order)
        .properties(properties)
        .schema(schema)
        .build();
    tables
        .create_or_load(&ident, &location, creation, || load(tables, topic))
        .await
}

/// Every raw table of the catalog that lies over this lake (another lake's, in a catalog two
/// lakes share, is left alone).
pub async fn all(tables: &Tables) -> Result<Vec<Table>, IcebergError> {
    let namespace = NamespaceIdent::new(NAMESPACE.to_owned());
    let catalog = tables.catalog();
    if !catalog
        .namespace_exists(&namespace)
        .await
        .map_err(IcebergError::iceberg(format!(
            "look up namespace {namespace}"
        )))?
    {
        return Ok(Vec::new());
    }
    let idents = catalog
        .list_tables(&namespace)
        .await
        .map_err(IcebergError::iceberg(format!(
            "list the tables of {namespace}"
        )))?;
    let mut out = Vec::new();
    for ident in idents {
        match tables.load_over_lake(&ident, ROOT).await {
            Ok(Some(table)) => out.push(table),
            Ok(None) => {}
            Err(IcebergError::Table(why)) => {
                tracing::debug!(table = %ident, %why, "not this lake's")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The Iceberg entry of a committed raw file: its partition, size and record count, and
/// bounds on the partition, the offsets (its flushed range's, which hold the file's) and the
/// Kafka timestamps.
pub fn data_file(tables: &Tables, file: &RawFile, spec_id: i32) -> Result<DataFile, IcebergError> {
    let mut lower = HashMap::from([
        (PARTITION_ID, Datum::int(file.partition)),
        (OFFSET_ID, Datum::long(file.first_offset)),
    ]);
    let mut upper = HashMap::from([
        (PARTITION_ID, Datum::int(file.partition)),
        (OFFSET_ID, Datum::long(file.last_offset)),
    ]);
    if let (Some(min), Some(max)) = (file.min_timestamp, file.max_timestamp) {
        lower.insert(
            TIMESTAMP_ID,
            Datum::timestamptz_micros(min.timestamp_micros()),
        );
        upper.insert(
            TIMESTAMP_ID,
            Datum::timestamptz_micros(max.timestamp_micros()),
        );
    }
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(tables.lake().location(&file.path))
        .file_format(DataFileFormat::Parquet)
        .partition(Struct::from_iter([Some(Literal::int(file.partition))]))
        .partition_spec_id(spec_id)
        .record_count(u64::try_from(file.records).unwrap_or(0))
        .file_size_in_bytes(u64::try_from(file.bytes).unwrap_or(0))
        .lower_bounds(lower)
        .upper_bounds(upper)
        .sort_order_id(SORT_ORDER_ID as i32)
        .build()
        .map_err(|e| IcebergError::File {
            path: file.path.clone(),
            reason: format!("cannot describe it for Iceberg: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;

    #[test]
    fn topic_names_become_plain_table_names() {
        assert_eq!(table_name("surgical.telemetry.v1"), "surgical_telemetry_v1");
        assert_eq!(table_name("Site-A.events_v2"), "site_a_events_v2");
        assert_eq!(ident("a.b").to_string(), "raw.a_b");
        assert_eq!(dir("a.b"), "raw_iceberg/a_b");
    }

    /// The table's columns are the raw files' (names, order, nullability, nesting), so that
    /// the name mapping finds every one; only the timestamp's unit differs (ms in the files).
    #[test]
    fn the_schema_is_the_raw_files_schema() {
        fn same(ice: &NestedField, file: &Field, element: bool) {
            let name = file.name();
            if !element {
                assert_eq!(&ice.name, name);
            }
            assert_eq!(ice.required, !file.is_nullable(), "{name}'s nullability");
            match (ice.field_type.as_ref(), file.data_type()) {
                (Type::Primitive(PrimitiveType::Int), DataType::Int32)
                | (Type::Primitive(PrimitiveType::Long), DataType::Int64)
                | (Type::Primitive(PrimitiveType::String), DataType::Utf8)
                | (Type::Primitive(PrimitiveType::Binary), DataType::Binary)
                | (
                    Type::Primitive(PrimitiveType::Timestamptz),
                    DataType::Timestamp(TimeUnit::Millisecond, Some(_)),
                ) => {}
                (Type::List(l), DataType::List(f)) => same(&l.element_field, f, true),
                (Type::Struct(s), DataType::Struct(fs)) => {
                    assert_eq!(s.fields().len(), fs.len(), "{name}'s fields");
                    for (i, f) in s.fields().iter().zip(fs) {
                        same(i, f, false);
                    }
                }
                (i, f) => panic!("{name}: {i} in the table, {f} in the files"),
            }
        }
        let table = schema().expect("schema");
        let files = surgstream_lake::raw::raw_schema();
        assert_eq!(table.as_struct().fields().len(), files.fields().len());
        for (i, f) in table.as_struct().fields().iter().zip(files.fields()) {
            same(i, f, false);
        }
    }

    #[test]
    fn the_name_mapping_reaches_the_headers_fields() {
        let mapping: serde_json::Value =
            serde_json::from_str(&schema::name_mapping(&schema().expect("schema")).expect("map"))
                .expect("json");
        let headers = &mapping[5];
        assert_eq!(headers["names"][0], "headers");
        assert_eq!(headers["fields"][0]["field-id"], 8);
        assert_eq!(headers["fields"][0]["names"][1], "item");
        assert_eq!(headers["fields"][0]["fields"][1]["field-id"], 10);
        assert_eq!(headers["fields"][0]["fields"][1]["names"][0], "value");
    }
}
