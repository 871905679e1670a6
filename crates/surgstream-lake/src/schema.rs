//! The Arrow schema of `procedure_telemetry`: the data model's columns with their logical types
//! (UUID → FixedSizeBinary(16) annotated `arrow.uuid`, DECIMAL(p,s) → Decimal128(p,s),
//! TIMESTAMP → microseconds UTC), plus `robot_id` and `seq`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use surgstream_proto::decimal::DecimalType;

/// Arrow's error type, re-exported for callers that build batches.
pub use arrow::error::ArrowError;

/// DECIMAL columns in schema order, with their types.
pub const DECIMALS: [(&str, DecimalType); 13] = [
    ("arm_position_x", DecimalType::new(10, 4)),
    ("arm_position_y", DecimalType::new(10, 4)),
    ("arm_position_z", DecimalType::new(10, 4)),
    ("arm_rotation", DecimalType::new(6, 2)),
    ("grip_pressure", DecimalType::new(6, 2)),
    ("tremor_compensation", DecimalType::new(5, 2)),
    ("camera_zoom", DecimalType::new(4, 2)),
    ("camera_angle", DecimalType::new(6, 2)),
    ("force_feedback_x", DecimalType::new(8, 4)),
    ("force_feedback_y", DecimalType::new(8, 4)),
    ("force_feedback_z", DecimalType::new(8, 4)),
    ("system_temperature", DecimalType::new(5, 2)),
    ("power_consumption", DecimalType::new(8, 2)),
];

/// Longest `tool_type` the column takes (VARCHAR(50)).
pub const TOOL_TYPE_MAX: usize = 50;

/// The Parquet field id of each column: its position in the schema, from 1. The Iceberg table
/// over the lake gives its columns the same ids, so that readers match columns by id (the
/// Iceberg way) in every file written with them, and by name (the table's name mapping) in the
/// files written before they were.
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";

fn uuid_field(name: &str) -> Field {
    Field::new(name, DataType::FixedSizeBinary(16), false).with_metadata(HashMap::from([(
        "ARROW:extension:name".to_owned(),
        "arrow.uuid".to_owned(),
    )]))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        uuid_field("telemetry_id"),
        uuid_field("procedure_id"),
        uuid_field("robot_id"),
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ];
    for (name, d) in &DECIMALS[..4] {
        fields.push(Field::new(
            *name,
            DataType::Decimal128(d.precision, d.scale),
            false,
        ));
    }
    fields.push(Field::new("tool_type", DataType::Utf8, false));
    for (name, d) in &DECIMALS[4..] {
        fields.push(Field::new(
            *name,
            DataType::Decimal128(d.precision, d.scale),
            false,
        ));
    }
    let fields = fields.into_iter().enumerate().map(|(i, f)| {
        let mut metadata = f.metadata().clone();
        metadata.insert(FIELD_ID_KEY.to_owned(), (i + 1).to_string());
        f.with_metadata(metadata)
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
});

/// The schema every telemetry file is written with.
pub fn telemetry_schema() -> SchemaRef {
    SCHEMA.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_its_position_as_field_id() {
        for (i, f) in telemetry_schema().fields().iter().enumerate() {
            assert_eq!(
                f.metadata().get(FIELD_ID_KEY).map(String::as_str),
                Some((i + 1).to_string().as_str()),
                "{}",
                f.name()
            );
        }
    }

    #[test]
    fn has_every_data_model_column_in_order() {
        let names: Vec<_> = telemetry_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "telemetry_id",
                "procedure_id",
                "robot_id",
                "seq",
                "timestamp",
                "arm_position_x",
                "arm_position_y",
                "arm_position_z",
                "arm_rotation",
                "tool_type",
                "grip_pressure",
                "tremor_compensation",
                "camera_zoom",
                "camera_angle",
                "force_feedback_x",
                "force_feedback_y",
                "force_feedback_z",
                "system_temperature",
                "power_consumption"
            ]
        );
        let s = telemetry_schema();
        assert_eq!(
            s.field_with_name("camera_zoom")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Decimal128(4, 2))
        );
    }
}
