//! Where a built table goes: one Parquet object per table and month in the object store
//! (replaced whole: a PUT, or a rename on a local disk), and the `warehouse` schema in
//! PostgreSQL (replaced in one transaction with the part's state row).

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::WarehouseError;

/// The warehouse's directory in the object store.
pub const ROOT: &str = "warehouse";

/// Object name of `table`'s data for `month` (`YYYY-MM`), or of a dimension table.
pub fn object_name(table: &str, month: Option<&str>) -> String {
    match month {
        Some(m) => format!("{ROOT}/{table}/month={m}/part-0.parquet"),
        None => format!("{ROOT}/{table}/part-0.parquet"),
    }
}

/// `batch` as one Parquet file (ZSTD, statistics on every column).
pub fn parquet(table: &str, batch: &RecordBatch) -> Result<Bytes, WarehouseError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!(
            "surgstream warehouse {}",
            env!("CARGO_PKG_VERSION")
        ))
        .build();
    let encode = || -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
        w.write(batch)?;
        w.close()?;
        Ok(out)
    };
    encode()
        .map(Bytes::from)
        .map_err(|e| WarehouseError::Output {
            table: table.to_owned(),
            reason: e.to_string(),
        })
}

/// Replaces the rows of `warehouse.<table>` that `scope` selects (`month_key = …`, or every
/// row) with `batch`, inside `tx`.
pub async fn replace_rows(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    month_key: Option<i32>,
    batch: &RecordBatch,
) -> Result<(), WarehouseError> {
    let q = |what: &'static str| WarehouseError::query(what);
    match month_key {
        Some(m) => {
            sqlx::query(&format!(
                "DELETE FROM warehouse.{table} WHERE month_key = $1"
            ))
            .bind(m)
            .execute(&mut **tx)
            .await
            .map_err(q("delete a month of the warehouse"))?;
        }
        None => {
            sqlx::query(&format!("DELETE FROM warehouse.{table}"))
                .execute(&mut **tx)
                .await
                .map_err(q("delete a dimension table"))?;
        }
    }
    copy_in(&mut *tx, table, batch).await
}

/// `COPY warehouse.<table> (columns…) FROM STDIN` with `batch`'s rows in text format.
async fn copy_in(
    conn: &mut PgConnection,
    table: &str,
    batch: &RecordBatch,
) -> Result<(), WarehouseError> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let columns: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let text = copy_text(table, batch)?;
    let statement = format!("COPY warehouse.{table} ({}) FROM STDIN", columns.join(", "));
    let mut copy =
        conn.copy_in_raw(&statement)
            .await
            .map_err(|source| WarehouseError::Postgres {
                what: format!("load warehouse.{table}"),
                source,
            })?;
    copy.send(text.into_bytes())
        .await
        .map_err(|source| WarehouseError::Postgres {
            what: format!("load warehouse.{table}"),
            source,
        })?;
    copy.finish()
        .await
        .map_err(|source| WarehouseError::Postgres {
            what: format!("load warehouse.{table}"),
            source,
        })?;
    Ok(())
}

/// PostgreSQL's COPY text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_text(table: &str, batch: &RecordBatch) -> Result<String, WarehouseError> {
    let options = FormatOptions::new().with_null("\\N");
    let bad = |e: arrow::error::ArrowError| WarehouseError::Output {
        table: table.to_owned(),
        reason: e.to_string(),
    };
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let texts: Vec<bool> = batch
        .columns()
        .iter()
        .map(|c| {
            matches!(
                c.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        })
        .collect();
    let mut out = String::new();
    for row in 0..batch.num_rows() {
        for (i, f) in formatters.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            let value = f.value(row).to_string();
            if texts[i] && !batch.column(i).is_null(row) {
                for ch in value.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            } else {
                out.push_str(&value);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn copy_text_escapes_and_marks_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("x\ty\\z\n"), None, Some("")])),
                Arc::new(Int32Array::from(vec![None, Some(2), Some(3)])),
            ],
        )
        .expect("batch");
        assert_eq!(
            copy_text("t", &batch).expect("text"),
            "x\\ty\\\\z\\n\t\\N\n\\N\t2\n\t3\n"
        );
    }
}
