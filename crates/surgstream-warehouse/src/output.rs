//! Where a built table goes: one Parquet object per table and month in the object store
//! (replaced whole: a PUT, or a rename on a local disk), and the `warehouse` schema in
//! PostgreSQL (replaced in one transaction with the part's state row).

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use surgstream_lake::schema::FIELD_ID_KEY;

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

/// Object name of a new data file of the Iceberg table `warehouse.<table>`, for `month_key`
/// (a fact) or none (a dimension): never the name of an earlier one, so that a snapshot's
/// files stay as they were while readers hold it.
pub fn iceberg_name(table: &str, month_key: Option<i32>) -> String {
    let dir = surgstream_iceberg::warehouse::data_dir(table);
    let id = uuid::Uuid::new_v4();
    match month_key {
        Some(k) => format!("{dir}/month_key={k}/{id}.parquet"),
        None => format!("{dir}/{id}.parquet"),
    }
}

/// `batch` with each column's Iceberg field id (`PARQUET:field_id`), which the Parquet writer
/// stores in the file's schema: Iceberg readers match columns by it.
pub fn with_field_ids(
    table: &str,
    batch: &RecordBatch,
    ids: &HashMap<String, i32>,
) -> Result<RecordBatch, WarehouseError> {
    let fields = batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let id = ids.get(f.name()).ok_or_else(|| WarehouseError::Output {
                table: table.to_owned(),
                reason: format!("column {} has no Iceberg field id", f.name()),
            })?;
            let mut metadata = f.metadata().clone();
            metadata.insert(FIELD_ID_KEY.to_owned(), id.to_string());
            Ok(Arc::new(f.as_ref().clone().with_metadata(metadata)))
        })
        .collect::<Result<Vec<_>, WarehouseError>>()?;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec()).map_err(|e| {
        WarehouseError::Output {
            table: table.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// One data file of a warehouse Iceberg table, as written.
#[derive(Debug, Clone)]
pub struct IcebergFile {
    pub table: &'static str,
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
}

/// Records `files` as the current data of `part` (`YYYY-MM` with its key, or the dimensions)
/// inside `tx`, retiring the files that were: the month's rows and its Iceberg files change
/// together.
pub async fn record_iceberg(
    tx: &mut Transaction<'_, Postgres>,
    part: &str,
    month_key: Option<i32>,
    files: &[IcebergFile],
) -> Result<(), WarehouseError> {
    retire_iceberg(tx, part).await?;
    for f in files {
        sqlx::query(
            "INSERT INTO warehouse.iceberg_files (path, tbl, part, month_key, rows, bytes)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&f.path)
        .bind(f.table)
        .bind(part)
        .bind(month_key)
        .bind(f.rows)
        .bind(f.bytes)
        .execute(&mut **tx)
        .await
        .map_err(WarehouseError::query("record a warehouse Iceberg file"))?;
    }
    Ok(())
}

/// Marks the current Iceberg files of `part` retired, inside `tx`.
pub async fn retire_iceberg(
    tx: &mut Transaction<'_, Postgres>,
    part: &str,
) -> Result<(), WarehouseError> {
    sqlx::query(
        "UPDATE warehouse.iceberg_files SET retired_at = now() WHERE part = $1 AND retired_at IS NULL",
    )
    .bind(part)
    .execute(&mut **tx)
    .await
    .map_err(WarehouseError::query("retire a part's warehouse Iceberg files"))?;
    Ok(())
}

/// The current data files of `warehouse.<table>`.
pub async fn current_iceberg(
    pool: &PgPool,
    table: &str,
) -> Result<Vec<surgstream_iceberg::warehouse::WarehouseFile>, WarehouseError> {
    let rows: Vec<(String, i64, i64, Option<i32>)> = sqlx::query_as(
        "SELECT path, rows, bytes, month_key FROM warehouse.iceberg_files
         WHERE tbl = $1 AND retired_at IS NULL ORDER BY path",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query("read the warehouse's Iceberg files"))?;
    Ok(rows
        .into_iter()
        .map(
            |(path, rows, bytes, month_key)| surgstream_iceberg::warehouse::WarehouseFile {
                path,
                rows,
                bytes,
                month_key,
            },
        )
        .collect())
}

/// Retired data files of `warehouse.<table>` retired before `before`.
pub async fn retired_iceberg(
    pool: &PgPool,
    table: &str,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, WarehouseError> {
    sqlx::query_scalar(
        "SELECT path FROM warehouse.iceberg_files WHERE tbl = $1 AND retired_at < $2 ORDER BY path",
    )
    .bind(table)
    .bind(before)
    .fetch_all(pool)
    .await
    .map_err(WarehouseError::query(
        "read the warehouse's retired Iceberg files",
    ))
}

/// Every data file of `warehouse.<table>` recorded, current or retired.
pub async fn known_iceberg(pool: &PgPool, table: &str) -> Result<Vec<String>, WarehouseError> {
    sqlx::query_scalar("SELECT path FROM warehouse.iceberg_files WHERE tbl = $1")
        .bind(table)
        .fetch_all(pool)
        .await
        .map_err(WarehouseError::query("read the warehouse's Iceberg files"))
}

/// Forgets retired files whose objects were deleted.
pub async fn forget_iceberg(pool: &PgPool, paths: &[String]) -> Result<(), WarehouseError> {
    sqlx::query(
        "DELETE FROM warehouse.iceberg_files WHERE path = ANY($1) AND retired_at IS NOT NULL",
    )
    .bind(paths)
    .execute(pool)
    .await
    .map_err(WarehouseError::query(
        "forget deleted warehouse Iceberg files",
    ))?;
    Ok(())
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
