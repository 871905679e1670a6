//! The relational inputs, read from PostgreSQL into Arrow with the data model's types, so that
//! the SQL files see the same column types on every engine.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sqlx::{PgPool, Row};

use crate::WarehouseError;

/// How a column is read and typed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// VARCHAR / TEXT, and UUIDs as their canonical text.
    Text,
    /// The 16 bytes of the UUID column named here (the lake's `procedure_id` type).
    UuidKey(&'static str),
    Int,
    /// BIGINT / BIGSERIAL.
    BigInt,
    Bool,
    /// DECIMAL(p, s).
    Decimal(u8, i8),
    /// TIMESTAMPTZ, as microseconds UTC.
    Timestamp,
    Date,
}

/// One input table: its name in the SQL files, its columns, and where they come from.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub source: &'static str,
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::*;

pub(crate) const ROBOTS: Table = Table {
    name: "surgical_robots",
    source: "surgical_robots",
    columns: &[
        ("robot_id", Text),
        ("robot_serial_number", Text),
        ("robot_model", Text),
        ("manufacturer", Text),
        ("installation_date", Date),
        ("facility_id", Text),
        ("facility_name", Text),
        ("status", Text),
        ("last_maintenance_date", Date),
        ("total_procedures", Int),
        ("firmware_version", Text),
    ],
};

/// Every column but `patient_id`: no patient identifier enters the warehouse.
pub(crate) const PROCEDURES: Table = Table {
    name: "surgical_procedures",
    source: "surgical_procedures",
    columns: &[
        ("procedure_id", Text),
        ("procedure_key", UuidKey("procedure_id")),
        ("robot_id", Text),
        ("procedure_type", Text),
        ("procedure_category", Text),
        ("scheduled_start", Timestamp),
        ("start_time", Timestamp),
        ("end_time", Timestamp),
        ("duration_minutes", Int),
        ("surgeon_id", Text),
        ("surgeon_name", Text),
        ("patient_age", Int),
        ("patient_gender", Text),
        ("complexity_score", Decimal(3, 2)),
        ("status", Text),
    ],
};

pub(crate) const OUTCOMES: Table = Table {
    name: "procedure_outcomes",
    source: "procedure_outcomes",
    columns: &[
        ("outcome_id", Text),
        ("procedure_id", Text),
        ("success_status", Text),
        ("blood_loss_ml", Int),
        ("complications", Text),
        ("hospital_stay_days", Int),
        ("readmission_30day", Bool),
        ("patient_satisfaction_score", Int),
        ("recovery_score", Int),
        ("follow_up_required", Bool),
    ],
};

pub(crate) const MAINTENANCE: Table = Table {
    name: "robot_maintenance_logs",
    source: "robot_maintenance_logs",
    columns: &[
        ("maintenance_id", Text),
        ("robot_id", Text),
        ("maintenance_date", Date),
        ("maintenance_type", Text),
        ("technician_id", Text),
        ("technician_name", Text),
        ("parts_replaced", Text),
        ("downtime_hours", Decimal(6, 2)),
        ("next_maintenance_date", Date),
        ("cost", Decimal(10, 2)),
    ],
};

/// The archive's tables (`surgstream archive`): every column, as PostgreSQL has it — the
/// clinical record, `patient_id` included. UUIDs are their canonical text.
pub(crate) const ARCHIVE_PROCEDURES: Table = Table {
    name: "surgical_procedures",
    source: "surgical_procedures",
    columns: &[
        ("procedure_id", Text),
        ("robot_id", Text),
        ("procedure_type", Text),
        ("procedure_category", Text),
        ("scheduled_start", Timestamp),
        ("start_time", Timestamp),
        ("end_time", Timestamp),
        ("duration_minutes", Int),
        ("surgeon_id", Text),
        ("surgeon_name", Text),
        ("patient_id", Text),
        ("patient_age", Int),
        ("patient_gender", Text),
        ("complexity_score", Decimal(3, 2)),
        ("status", Text),
        ("created_at", Timestamp),
        ("updated_at", Timestamp),
    ],
};

pub(crate) const ARCHIVE_OUTCOMES: Table = Table {
    name: "procedure_outcomes",
    source: "procedure_outcomes",
    columns: &[
        ("outcome_id", Text),
        ("procedure_id", Text),
        ("success_status", Text),
        ("blood_loss_ml", Int),
        ("complications", Text),
        ("hospital_stay_days", Int),
        ("readmission_30day", Bool),
        ("patient_satisfaction_score", Int),
        ("surgeon_notes", Text),
        ("recovery_score", Int),
        ("follow_up_required", Bool),
        ("created_at", Timestamp),
        ("updated_at", Timestamp),
    ],
};

/// A procedure's status changes (`entity = 'procedure'`).
pub(crate) const ARCHIVE_AUDIT: Table = Table {
    name: "status_audit",
    source: "status_audit",
    columns: &[
        ("audit_id", BigInt),
        ("entity", Text),
        ("entity_id", Text),
        ("from_status", Text),
        ("to_status", Text),
        ("event_id", Text),
        ("occurred_at", Timestamp),
        ("source_topic", Text),
        ("source_partition", Int),
        ("source_offset", BigInt),
        ("recorded_at", Timestamp),
    ],
};

/// The archive's three tables, in the order they are written (and restored).
pub(crate) const ARCHIVE: [&Table; 3] = [&ARCHIVE_PROCEDURES, &ARCHIVE_OUTCOMES, &ARCHIVE_AUDIT];

impl Table {
    /// The Arrow schema the SQL files see.
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, kind)| Field::new(*name, arrow_type(*kind), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// An archive batch (every column of the source) as this table's input: its columns, by
    /// name, in its types; a [`Kind::UuidKey`] made from its UUID column.
    pub(crate) fn project_archived(
        &self,
        batch: &RecordBatch,
    ) -> Result<RecordBatch, WarehouseError> {
        let bad = |column: &'static str, reason: String| WarehouseError::Input {
            table: self.source,
            column,
            reason,
        };
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (name, kind) in self.columns {
            let array: ArrayRef = match kind {
                UuidKey(of) => {
                    let text = batch
                        .column_by_name(of)
                        .ok_or_else(|| bad(name, format!("the archive has no {of}")))?;
                    let text = text
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .ok_or_else(|| bad(name, format!("the archive's {of} is not text")))?;
                    let mut b = FixedSizeBinaryBuilder::new(16);
                    for v in text {
                        match v {
                            Some(s) => {
                                let u = uuid::Uuid::parse_str(s)
                                    .map_err(|e| bad(name, e.to_string()))?;
                                b.append_value(u.as_bytes())
                                    .map_err(|e| bad(name, e.to_string()))?;
                            }
                            None => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                _ => {
                    let a = batch
                        .column_by_name(name)
                        .ok_or_else(|| bad(name, "not in the archive".into()))?;
                    cast(a, &arrow_type(*kind)).map_err(|e| bad(name, e.to_string()))?
                }
            };
            arrays.push(array);
        }
        RecordBatch::try_new(self.schema(), arrays).map_err(|e| bad("*", e.to_string()))
    }

    /// `SELECT … FROM source WHERE filter`, each column cast to what [`read`] decodes.
    fn select(&self, filter: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(name, kind)| match kind {
                Text => format!("{name}::text"),
                UuidKey(of) => format!("{of}::text AS {name}"),
                Int | BigInt | Bool => (*name).to_owned(),
                Decimal(..) => format!("{name}::text"),
                Timestamp => {
                    format!("(extract(epoch FROM {name}) * 1000000)::bigint AS {name}")
                }
                Date => format!("({name} - DATE '1970-01-01') AS {name}"),
            })
            .collect();
        format!(
            "SELECT {} FROM {} WHERE {filter}",
            cols.join(", "),
            self.source
        )
    }

    /// Reads the rows `filter` selects (SQL over the source table; `$1` is `arg`).
    pub(crate) async fn read(
        &self,
        pool: &PgPool,
        filter: &str,
        arg: Option<i32>,
    ) -> Result<RecordBatch, WarehouseError> {
        let sql = self.select(filter);
        let query = sqlx::query(&sql);
        let query = match arg {
            Some(a) => query.bind(a),
            None => query,
        };
        let rows = query
            .fetch_all(pool)
            .await
            .map_err(|source| WarehouseError::Postgres {
                what: format!("read {}", self.source),
                source,
            })?;
        self.decode(&rows)
    }

    /// Reads, in `conn`'s transaction, the rows `filter` selects (`$1`: `ids`), by their first
    /// column.
    pub(crate) async fn read_ids(
        &self,
        conn: &mut sqlx::PgConnection,
        filter: &str,
        ids: &[uuid::Uuid],
    ) -> Result<RecordBatch, WarehouseError> {
        let sql = self.select(&format!("{filter} ORDER BY 1"));
        let rows = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(conn)
            .await
            .map_err(|source| WarehouseError::Postgres {
                what: format!("read {}", self.source),
                source,
            })?;
        self.decode(&rows)
    }

    fn decode(&self, rows: &[sqlx::postgres::PgRow]) -> Result<RecordBatch, WarehouseError> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (i, (name, kind)) in self.columns.iter().enumerate() {
            let bad = |e: String| WarehouseError::Input {
                table: self.source,
                column: name,
                reason: e,
            };
            let get = |e: sqlx::Error| bad(e.to_string());
            let array: ArrayRef = match kind {
                Text => {
                    let mut b = StringBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<String>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
                UuidKey(_) => {
                    let mut b = FixedSizeBinaryBuilder::new(16);
                    for r in rows {
                        match r.try_get::<Option<String>, _>(i).map_err(get)? {
                            Some(s) => {
                                let u =
                                    uuid::Uuid::parse_str(&s).map_err(|e| bad(e.to_string()))?;
                                b.append_value(u.as_bytes())
                                    .map_err(|e| bad(e.to_string()))?;
                            }
                            None => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                Int => {
                    let mut b = Int32Builder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<i32>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
                BigInt => {
                    let mut b = Int64Builder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<i64>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
                Bool => {
                    let mut b = BooleanBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<bool>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
                Decimal(..) => {
                    let mut b = StringBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<String>, _>(i).map_err(get)?);
                    }
                    cast(&b.finish(), &arrow_type(*kind)).map_err(|e| bad(e.to_string()))?
                }
                Timestamp => {
                    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                    for r in rows {
                        b.append_option(r.try_get::<Option<i64>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
                Date => {
                    let mut b = Date32Builder::new();
                    for r in rows {
                        b.append_option(r.try_get::<Option<i32>, _>(i).map_err(get)?);
                    }
                    Arc::new(b.finish())
                }
            };
            arrays.push(array);
        }
        RecordBatch::try_new(self.schema(), arrays).map_err(|e| WarehouseError::Input {
            table: self.source,
            column: "*",
            reason: e.to_string(),
        })
    }
}

pub(crate) fn arrow_type(kind: Kind) -> DataType {
    match kind {
        Text => DataType::Utf8,
        UuidKey(_) => DataType::FixedSizeBinary(16),
        Int => DataType::Int32,
        BigInt => DataType::Int64,
        Bool => DataType::Boolean,
        Decimal(p, s) => DataType::Decimal128(p, s),
        Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Date => DataType::Date32,
    }
}
