//! The data half of compaction: many small lake files merged into one batch sorted by
//! (`procedure_id`, `timestamp`, `seq`), written under the month it belongs to.

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::DataType;
use bytes::Bytes;
use chrono::{DateTime, Datelike};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::schema::types::ColumnPath;

use crate::path::TABLE;
use crate::schema::telemetry_schema;
use crate::store::{LakeError, encode_parquet, writer_properties};

/// The ZSTD level of compacted files: written once, read for years. Level 9 saves 0.3 B/frame
/// more on the seed's history (41.3 against 41.6), not worth its cost (docs/performance.md).
pub const COMPACTED_ZSTD_LEVEL: i32 = 3;

/// Where a compacted file of the month containing `micros` goes:
/// `procedure_telemetry/month=YYYY-MM/compacted-<id>.parquet`.
pub fn compacted_path(micros: i64, id: &str) -> String {
    let t = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    format!(
        "{TABLE}/month={:04}-{:02}/compacted-{id}.parquet",
        t.year(),
        t.month()
    )
}

/// Reads lake files whole, as the lake's schema (with its field ids, which files written
/// before the schema carried them lack), and returns one batch of all their rows sorted by
/// (`procedure_id`, `timestamp`, `seq`), with its smallest and largest timestamp.
pub fn merge_sorted(files: Vec<(String, Bytes)>) -> Result<(RecordBatch, i64, i64), LakeError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let schema = telemetry_schema();
    let mut batches = Vec::new();
    for (name, bytes) in files {
        let bad = |reason: String| LakeError::Read {
            path: name.clone(),
            reason,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| bad(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(|e| bad(format!("not the lake's schema: {e}")))?;
            batches.push(batch);
        }
    }
    let whole = concat_batches(&schema, &batches).map_err(|e| LakeError::Read {
        path: "(compaction)".into(),
        reason: e.to_string(),
    })?;
    drop(batches);
    let column = |name: &str| -> Result<SortColumn, LakeError> {
        Ok(SortColumn {
            values: whole
                .column_by_name(name)
                .ok_or_else(|| LakeError::Read {
                    path: "(compaction)".into(),
                    reason: format!("no column {name}"),
                })?
                .clone(),
            options: Some(SortOptions::default()),
        })
    };
    let sorted = lexsort_to_indices(
        &[
            column("procedure_id")?,
            column("timestamp")?,
            column("seq")?,
        ],
        None,
    )
    .and_then(|order| take_record_batch(&whole, &order))
    .map_err(|e| LakeError::Read {
        path: "(compaction)".into(),
        reason: format!("cannot sort: {e}"),
    })?;
    let ts = sorted
        .column_by_name("timestamp")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .filter(|c| c.null_count() == 0 && !c.is_empty())
        .ok_or_else(|| LakeError::Read {
            path: "(compaction)".into(),
            reason: "no timestamps".into(),
        })?;
    let (min, max) = ts
        .values()
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    Ok((sorted, min, max))
}

/// Encodes a compacted batch: the lake's writer settings at [`COMPACTED_ZSTD_LEVEL`], with the
/// decimal columns delta-encoded.
pub fn encode_compacted(path: &str, batch: &RecordBatch) -> Result<Bytes, LakeError> {
    let mut b = writer_properties()
        .into_builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(COMPACTED_ZSTD_LEVEL).unwrap_or_default(),
        ));
    // The decimals are integers in Parquet (INT32/INT64 for these precisions): delta-encoded,
    // a month of the seed's sparse samples takes 41.6 instead of 46.6 B/frame.
    for f in batch.schema().fields() {
        if matches!(f.data_type(), DataType::Decimal128(..)) {
            b = b.set_column_encoding(
                ColumnPath::from(f.name().as_str()),
                Encoding::DELTA_BINARY_PACKED,
            );
        }
    }
    let props = b.build();
    encode_parquet(batch, props).map_err(|source| LakeError::Encode {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_files_go_under_their_month() {
        // 2024-02-29T23:59:59Z
        let t = 1_709_251_199_000_000;
        assert_eq!(
            compacted_path(t, "x"),
            "procedure_telemetry/month=2024-02/compacted-x.parquet"
        );
    }
}
