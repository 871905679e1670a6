//! One procedure's case file (`surgstream export`): what a clinical reviewer or a regulator asks
//! for — its robot (with the facility), the procedure, its lifecycle as audited, its outcome,
//! and every telemetry frame in order — gathered from where each part lives: PostgreSQL for the
//! relational rows (the lake's `archive/` for a procedure `surgstream archive` moved there,
//! printed by PostgreSQL all the same), the lake's committed files for the frames.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Decimal128Array, FixedSizeBinaryArray, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::DataType;
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::common::ScalarValue;
use datafusion::prelude::{col, lit};
use serde_json::{Map, Value};
use surgstream_lake::schema::telemetry_schema;

use crate::{Warehouse, WarehouseError, sql};

/// A procedure's complete record.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The procedure's row (every column, `patient_id` included: this is the clinical record).
    pub procedure: Map<String, Value>,
    /// Its robot's row, with the facility.
    pub robot: Map<String, Value>,
    /// Its status changes, oldest first (`status_audit`).
    pub lifecycle: Vec<Map<String, Value>>,
    /// Its outcome, when one was recorded.
    pub outcome: Option<Map<String, Value>>,
    /// Its frames, by `seq`, in the lake's schema.
    pub frames: RecordBatch,
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line: `record` says which part (`robot`, `procedure`, `status`,
    /// `outcome`, `frame`).
    Jsonl,
    /// A directory: `case.json` (the relational parts) and `telemetry.parquet` (the frames).
    Parquet,
}

/// Frames of a procedure are stamped between its start and end; the lake files read are those
/// whose event times overlap that window widened by this (clocks, the last flush).
const SLACK: chrono::Duration = chrono::Duration::hours(1);

impl Warehouse {
    /// The case file of `procedure`.
    pub async fn case_file(&self, procedure: uuid::Uuid) -> Result<CaseFile, WarehouseError> {
        let row = |what: &'static str, sql: &'static str| {
            let pool = self.pool.clone();
            async move {
                sqlx::query_scalar::<_, String>(sql)
                    .bind(procedure)
                    .fetch_all(&pool)
                    .await
                    .map_err(WarehouseError::query(what))?
                    .into_iter()
                    .map(|text| {
                        serde_json::from_str::<Map<String, Value>>(&text).map_err(|e| {
                            WarehouseError::Output {
                                table: what.to_owned(),
                                reason: e.to_string(),
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            }
        };
        let live = row(
            "read the procedure",
            "SELECT row_to_json(p)::text FROM surgical_procedures p WHERE procedure_id = $1",
        )
        .await?
        .into_iter()
        .next();
        // Live in PostgreSQL, or moved to the archive (`surgstream archive`).
        let (procedure_row, lifecycle, outcome) = match live {
            Some(p) => {
                let lifecycle = row(
                    "read the procedure's lifecycle",
                    "SELECT row_to_json(a)::text FROM status_audit a
                     WHERE entity = 'procedure' AND entity_id = $1 ORDER BY occurred_at, audit_id",
                )
                .await?;
                let outcome = row(
                    "read the procedure's outcome",
                    "SELECT row_to_json(o)::text FROM procedure_outcomes o WHERE procedure_id = $1",
                )
                .await?
                .into_iter()
                .next();
                (p, lifecycle, outcome)
            }
            None => {
                let [p, outcome, lifecycle] =
                    crate::archive::archived_case(&self.pool, &self.lake, procedure)
                        .await?
                        .ok_or_else(|| WarehouseError::Output {
                            table: "surgical_procedures".into(),
                            reason: format!(
                                "no procedure {procedure} in PostgreSQL or in the archive"
                            ),
                        })?;
                let p = p.into_iter().next().ok_or_else(|| WarehouseError::Output {
                    table: "surgical_procedures".into(),
                    reason: format!("procedure {procedure} is indexed as archived, but its archive object does not hold it"),
                })?;
                (p, lifecycle, outcome.into_iter().next())
            }
        };
        let robot_id = procedure_row
            .get("robot_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok());
        let robot: Map<String, Value> = match robot_id {
            Some(id) => sqlx::query_scalar::<_, String>(
                "SELECT row_to_json(r)::text FROM surgical_robots r WHERE robot_id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(WarehouseError::query("read the procedure's robot"))?
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| WarehouseError::Output {
                table: "surgical_robots".into(),
                reason: e.to_string(),
            })?
            .unwrap_or_default(),
            None => Map::new(),
        };
        let time = |k: &str| {
            procedure_row
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let window = (
            time("start_time").or_else(|| time("scheduled_start")),
            time("end_time").or_else(|| Some(Utc::now())),
        );
        let frames = match window {
            (Some(lo), Some(hi)) => self.frames_of(procedure, lo - SLACK, hi + SLACK).await?,
            _ => RecordBatch::new_empty(telemetry_schema()),
        };
        Ok(CaseFile {
            procedure: procedure_row,
            robot,
            lifecycle,
            outcome,
            frames,
        })
    }

    /// The committed frames of `procedure` stamped within [lo, hi], by `seq`.
    async fn frames_of(
        &self,
        procedure: uuid::Uuid,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Result<RecordBatch, WarehouseError> {
        let files = crate::plan::lake_files(&self.pool, &self.group, (lo, hi)).await?;
        let ctx = self.context()?;
        self.register_telemetry(&ctx, &files).await?;
        let id = ScalarValue::FixedSizeBinary(16, Some(procedure.as_bytes().to_vec()));
        let df = ctx
            .table(sql::TELEMETRY)
            .await?
            .filter(col("procedure_id").eq(lit(id)))?
            .sort(vec![col("seq").sort(true, false)])?;
        let batches = df.collect().await?;
        concat_batches(&telemetry_schema(), &batches).map_err(|e| WarehouseError::Output {
            table: sql::TELEMETRY.to_owned(),
            reason: e.to_string(),
        })
    }
}

impl CaseFile {
    /// Writes the case file as JSON lines to `out`.
    pub fn write_jsonl(&self, out: &mut impl Write) -> Result<(), WarehouseError> {
        let mut line = |record: &str, fields: &Map<String, Value>| {
            let mut m = Map::new();
            m.insert("record".into(), record.into());
            m.extend(fields.clone());
            writeln!(out, "{}", Value::Object(m)).map_err(|e| WarehouseError::Output {
                table: "the case file".into(),
                reason: e.to_string(),
            })
        };
        line("robot", &self.robot)?;
        line("procedure", &self.procedure)?;
        for status in &self.lifecycle {
            line("status", status)?;
        }
        if let Some(outcome) = &self.outcome {
            line("outcome", outcome)?;
        }
        for frame in frame_rows(&self.frames)? {
            line("frame", &frame)?;
        }
        Ok(())
    }

    /// The relational parts as one JSON object (`robot`, `procedure`, `lifecycle`, `outcome`).
    pub fn relational_json(&self) -> Value {
        serde_json::json!({
            "robot": self.robot,
            "procedure": self.procedure,
            "lifecycle": self.lifecycle,
            "outcome": self.outcome,
            "frames": self.frames.num_rows(),
        })
    }
}

/// Each frame as a JSON object: ids as UUID text, `timestamp` in RFC 3339 (UTC, µs), decimals as
/// text at their scale (exact: a JSON number would pass through a double in most readers).
pub fn frame_rows(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, WarehouseError> {
    let bad = |column: &str, what: &str| WarehouseError::Output {
        table: "the case file".into(),
        reason: format!("column {column}: {what}"),
    };
    let schema = batch.schema();
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name();
        let column: &Arc<dyn Array> = column;
        for (i, row) in rows.iter_mut().enumerate() {
            if column.is_null(i) {
                row.insert(name.clone(), Value::Null);
                continue;
            }
            let v = match column.data_type() {
                DataType::FixedSizeBinary(16) => {
                    let a: &FixedSizeBinaryArray = column.as_fixed_size_binary();
                    uuid::Uuid::from_slice(a.value(i))
                        .map_err(|e| bad(name, &e.to_string()))?
                        .to_string()
                        .into()
                }
                DataType::Int64 => {
                    let a: &Int64Array = column.as_primitive();
                    a.value(i).into()
                }
                DataType::Timestamp(..) => {
                    let a: &TimestampMicrosecondArray = column
                        .as_any()
                        .downcast_ref()
                        .ok_or_else(|| bad(name, "not a microsecond timestamp"))?;
                    DateTime::<Utc>::from_timestamp_micros(a.value(i))
                        .ok_or_else(|| bad(name, "out of range"))?
                        .to_rfc3339_opts(SecondsFormat::Micros, true)
                        .into()
                }
                DataType::Decimal128(..) => {
                    let a: &Decimal128Array = column.as_primitive();
                    a.value_as_string(i).into()
                }
                DataType::Utf8 => {
                    let a: &StringArray = column.as_string();
                    a.value(i).into()
                }
                other => return Err(bad(name, &format!("unexpected type {other}"))),
            };
            row.insert(name.clone(), v);
        }
    }
    Ok(rows)
}
