//! The Iceberg table `procedure_telemetry`: its schema (the lake's Arrow schema, with the same
//! field ids), partition spec, sort order, name mapping and properties.

use std::collections::HashMap;

use arrow::datatypes::{DataType, TimeUnit};
use iceberg::spec::{
    MappedField, NameMapping, NestedField, NullOrder, PrimitiveType, Schema, SortDirection,
    SortField, SortOrder, Transform, Type, UnboundPartitionSpec,
};
use surgstream_lake::schema::{FIELD_ID_KEY, telemetry_schema};

use crate::IcebergError;

/// The name of the table's one partition field: the hour of `timestamp`.
pub const HOUR_FIELD: &str = "timestamp_hour";
/// The id of the table's sort order, (`procedure_id`, `timestamp`), which every lake file keeps.
pub const SORT_ORDER_ID: i64 = 1;

/// The Iceberg schema of `procedure_telemetry`, column for column the lake's, with its field
/// ids: `uuid`, `long`, `timestamptz`, `decimal(p,s)`, `string`, every column required.
pub fn telemetry() -> Result<Schema, IcebergError> {
    let mut fields = Vec::new();
    for f in telemetry_schema().fields() {
        let id: i32 = f
            .metadata()
            .get(FIELD_ID_KEY)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| IcebergError::Schema(format!("column {} has no field id", f.name())))?;
        let primitive = match f.data_type() {
            DataType::FixedSizeBinary(16) => PrimitiveType::Uuid,
            DataType::Int64 => PrimitiveType::Long,
            DataType::Utf8 => PrimitiveType::String,
            DataType::Timestamp(TimeUnit::Microsecond, Some(zone)) if zone.as_ref() == "UTC" => {
                PrimitiveType::Timestamptz
            }
            DataType::Decimal128(precision, scale) => PrimitiveType::Decimal {
                precision: u32::from(*precision),
                scale: u32::try_from(*scale).map_err(|_| {
                    IcebergError::Schema(format!("column {} has a negative scale", f.name()))
                })?,
            },
            other => {
                return Err(IcebergError::Schema(format!(
                    "column {} has the Arrow type {other}, which has no Iceberg type here",
                    f.name()
                )));
            }
        };
        fields.push(NestedField::required(id, f.name(), Type::Primitive(primitive)).into());
    }
    Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .build()
        .map_err(IcebergError::iceberg("build the table schema"))
}

/// The field id of a column of the lake's schema.
pub fn field_id(schema: &Schema, name: &str) -> Result<i32, IcebergError> {
    schema
        .field_by_name(name)
        .map(|f| f.id)
        .ok_or_else(|| IcebergError::Schema(format!("no column {name}")))
}

/// `hour(timestamp)`: the event hour, the lake's own `date=/hour=` partitioning.
pub fn partition_spec(schema: &Schema) -> Result<UnboundPartitionSpec, IcebergError> {
    UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_field(field_id(schema, "timestamp")?, HOUR_FIELD, Transform::Hour)
        .map(|b| b.build())
        .map_err(IcebergError::iceberg("build the partition spec"))
}

/// The name of the partition field of compacted history: the month of `timestamp`.
pub const MONTH_FIELD: &str = "timestamp_month";

/// `month(timestamp)`: the partitioning of compacted history (partition evolution: the table's
/// default spec stays `hour(timestamp)` for new files; a compaction's month files are written
/// under this one, which it adds when the table lacks it).
pub fn month_spec(schema: &Schema) -> Result<UnboundPartitionSpec, IcebergError> {
    UnboundPartitionSpec::builder()
        .add_partition_field(
            field_id(schema, "timestamp")?,
            MONTH_FIELD,
            Transform::Month,
        )
        .map(|b| b.build())
        .map_err(IcebergError::iceberg("build the month partition spec"))
}

/// Rows sorted by (`procedure_id`, `timestamp`) inside each file, as the lake writes them.
pub fn sort_order(schema: &Schema) -> Result<SortOrder, IcebergError> {
    let field = |name| -> Result<SortField, IcebergError> {
        Ok(SortField::builder()
            .source_id(field_id(schema, name)?)
            .transform(Transform::Identity)
            .direction(SortDirection::Ascending)
            .null_order(NullOrder::First)
            .build())
    };
    SortOrder::builder()
        .with_order_id(SORT_ORDER_ID)
        .with_sort_field(field("procedure_id")?)
        .with_sort_field(field("timestamp")?)
        .build(schema)
        .map_err(IcebergError::iceberg("build the sort order"))
}

/// The name mapping (`schema.name-mapping.default`): each column's name to its field id, so
/// that readers match the columns of files written without field ids (before the Iceberg
/// tables existed) by name. Nested columns too: a struct's fields by their names, a list's
/// element as `element` (Iceberg's name) or `item` (what Arrow writers call it), a map's `key`
/// and `value`.
pub fn name_mapping(schema: &Schema) -> Result<String, IcebergError> {
    let fields = mapped(schema.as_struct().fields());
    serde_json::to_string(&NameMapping::new(fields))
        .map_err(|e| IcebergError::Schema(format!("cannot write the name mapping: {e}")))
}

fn mapped(fields: &[iceberg::spec::NestedFieldRef]) -> Vec<MappedField> {
    fields
        .iter()
        .map(|f| MappedField::new(Some(f.id), vec![f.name.clone()], nested(&f.field_type)))
        .collect()
}

fn nested(ty: &Type) -> Vec<MappedField> {
    match ty {
        Type::Primitive(_) => vec![],
        Type::Struct(s) => mapped(s.fields()),
        Type::List(l) => {
            let e = &l.element_field;
            vec![MappedField::new(
                Some(e.id),
                vec!["element".to_owned(), "item".to_owned()],
                nested(&e.field_type),
            )]
        }
        Type::Map(m) => [(&m.key_field, "key"), (&m.value_field, "value")]
            .into_iter()
            .map(|(f, name)| {
                MappedField::new(Some(f.id), vec![name.to_owned()], nested(&f.field_type))
            })
            .collect(),
    }
}

/// The table's properties: the name mapping, the writer settings of the lake's files (for
/// engines that write to the table: ZSTD Parquet), and metadata files kept bounded.
pub fn properties(schema: &Schema) -> Result<HashMap<String, String>, IcebergError> {
    let mut p = table_properties();
    p.insert(
        "schema.name-mapping.default".to_owned(),
        name_mapping(schema)?,
    );
    p.insert("surgstream.source".to_owned(), "lake_files".to_owned());
    Ok(p)
}

/// The properties of every table surgstream creates: ZSTD Parquet for engines that write to
/// it, and at most 100 old metadata files kept (deleted by each commit).
pub fn table_properties() -> HashMap<String, String> {
    HashMap::from([
        ("write.format.default".to_owned(), "parquet".to_owned()),
        (
            "write.parquet.compression-codec".to_owned(),
            "zstd".to_owned(),
        ),
        (
            "write.metadata.delete-after-commit.enabled".to_owned(),
            "true".to_owned(),
        ),
        (
            "write.metadata.previous-versions-max".to_owned(),
            "100".to_owned(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_the_data_models_types_and_the_lakes_field_ids() {
        let schema = telemetry().expect("schema");
        let ty = |name: &str| {
            schema
                .field_by_name(name)
                .map(|f| (f.id, f.field_type.to_string(), f.required))
        };
        assert_eq!(ty("telemetry_id"), Some((1, "uuid".into(), true)));
        assert_eq!(ty("seq"), Some((4, "long".into(), true)));
        assert_eq!(ty("timestamp"), Some((5, "timestamptz".into(), true)));
        assert_eq!(
            ty("arm_position_x"),
            Some((6, "decimal(10, 4)".into(), true))
        );
        assert_eq!(ty("tool_type"), Some((10, "string".into(), true)));
        assert_eq!(
            ty("power_consumption"),
            Some((19, "decimal(8, 2)".into(), true))
        );
        assert_eq!(schema.as_struct().fields().len(), 19);
    }

    #[test]
    fn the_name_mapping_names_every_column() {
        let schema = telemetry().expect("schema");
        let mapping: serde_json::Value =
            serde_json::from_str(&name_mapping(&schema).expect("mapping")).expect("json");
        let entries = mapping.as_array().expect("a list");
        assert_eq!(entries.len(), 19);
        assert_eq!(entries[4]["field-id"], 5);
        assert_eq!(entries[4]["names"][0], "timestamp");
    }
}
