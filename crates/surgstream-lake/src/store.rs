//! Parquet encoding and object storage behind a URL.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::path::LakePath;

/// Why the lake could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake URL is malformed or names a scheme this build does not support.
    #[error("invalid lake URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The local lake directory cannot be created.
    #[error("cannot create lake directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Arrow or Parquet refused the batch.
    #[error("cannot encode {path} as Parquet: {source}")]
    Encode {
        /// The file being written.
        path: String,
        /// The encoder's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The object store failed.
    #[error("object store {store}: cannot {op} {path}: {source}")]
    Store {
        /// The lake URL.
        store: String,
        /// What was being done.
        op: &'static str,
        /// The object path.
        path: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A lake file is not the Parquet this lake writes.
    #[error("cannot read lake file {path}: {reason}")]
    Read {
        /// The object path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl LakeError {
    /// Whether trying again later may succeed: the store was unreachable, timed out or answered
    /// with a server error. Refused credentials or permissions, a missing bucket and a bad
    /// configuration are not transient: retrying would only hide them.
    pub fn is_transient(&self) -> bool {
        use object_store::Error as E;
        match self {
            LakeError::Store { source, .. } => match **source {
                E::NotFound { .. }
                | E::InvalidPath { .. }
                | E::NotSupported { .. }
                | E::NotImplemented { .. }
                | E::PermissionDenied { .. }
                | E::Unauthenticated { .. }
                | E::UnknownConfigurationKey { .. }
                | E::AlreadyExists { .. }
                | E::Precondition { .. } => false,
                // object_store maps a refused PUT or GET to the variants above, but a refused
                // LIST (a wrong secret, a bucket that does not exist) arrives as a generic
                // error whose status it keeps private: only its message says "403 Forbidden"
                // or "404 Not Found".
                E::Generic { .. } => client_error_status(&source.to_string()).is_none(),
                _ => true,
            },
            LakeError::Url { .. }
            | LakeError::Dir { .. }
            | LakeError::Encode { .. }
            | LakeError::Read { .. } => false,
        }
    }
}

/// The HTTP status of a generic object-store error that the server answered with a client
/// error (4xx), except those worth retrying (408 Request Timeout, 429 Too Many Requests).
fn client_error_status(message: &str) -> Option<u16> {
    const MARK: &str = "status code: ";
    let at = message.find(MARK)? + MARK.len();
    let status: u16 = message.get(at..at + 3)?.parse().ok()?;
    ((400..500).contains(&status) && status != 408 && status != 429).then_some(status)
}

/// Objects larger than this are uploaded in parts (S3 takes at most 5 GiB in one PUT, and a
/// part that fails is retried alone).
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Size of each part of a multipart upload (S3's minimum is 5 MiB, but for the last part).
pub const MULTIPART_PART: usize = 8 * 1024 * 1024;

/// The writer settings of every telemetry file: ZSTD level 1, page statistics, dictionary
/// encoding only where cardinality is low (`tool_type`), delta encoding on the timestamp, and the
/// sort order recorded in the footer.
pub fn writer_properties() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_created_by(format!("surgstream {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("tool_type"), true)
        .set_column_encoding(ColumnPath::from("timestamp"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("seq"), Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 4,
                descending: false,
                nulls_first: false,
            },
        ]));
    // Bloom filters on the UUID keys make point look-ups by procedure cheap for readers.
    b = b.set_column_bloom_filter_enabled(ColumnPath::from("procedure_id"), true);
    b.build()
}

/// Files with fewer rows than this are compressed with Snappy instead of ZSTD. zstd builds its
/// Huffman and FSE tables again for every column chunk, which on a backfill's files (~315 rows
/// each) was 29 % of the drain's instructions: with Snappy, 3.0–3.4 CPU-s per million frames
/// instead of 5.0–6.7 (seed drain 194k–215k frames/s instead of 119k–167k), for 89 B/frame
/// instead of 70 on those files. Live and catch-up files (thousands of rows and up) keep ZSTD.
pub const SMALL_FILE_ROWS: u64 = 4096;

/// Encodes one batch as a complete Parquet file.
///
/// A column's bloom filter is sized for at most as many distinct values as the batch has rows:
/// left to parquet's default (a row group's million rows), every file zeroes and then folds a
/// 1 MiB filter, which took 60 % of a backfill's instructions (its files hold ~300 rows).
/// Files under [`SMALL_FILE_ROWS`] rows are compressed with Snappy.
pub fn encode_parquet(
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<Bytes, parquet::errors::ParquetError> {
    let rows = batch.num_rows().max(1) as u64;
    let mut sized = None;
    for field in batch.schema().fields() {
        let col = ColumnPath::from(field.name().as_str());
        if let Some(bloom) = props.bloom_filter_properties(&col)
            && bloom.ndv() > rows
        {
            let b = sized.take().unwrap_or_else(|| props.clone().into_builder());
            sized = Some(b.set_column_bloom_filter_max_ndv(col, rows));
        }
    }
    if rows < SMALL_FILE_ROWS {
        let b = sized.take().unwrap_or_else(|| props.clone().into_builder());
        sized = Some(b.set_compression(Compression::SNAPPY));
    }
    let props = sized.map_or(props, |b| b.build());
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buf))
}

/// A file written to the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Path relative to the lake's root.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The lake: an object store and where it points.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: String,
    multipart_threshold: usize,
}

impl fmt::Debug for Lake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lake").field("url", &self.url).finish()
    }
}

impl Lake {
    /// Opens the lake at `url`: `file:///abs/path`, a plain directory path (created if missing),
    /// `s3://bucket[/prefix]` (AWS, MinIO or any S3-compatible endpoint, configured by the
    /// usual `AWS_*` variables: `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …), or `memory://` (tests).
    pub fn open(url: &str) -> Result<Self, LakeError> {
        Self::open_with_env(url, std::env::vars())
    }

    /// [`Self::open`], with the `AWS_*` settings taken from `vars` instead of the process
    /// environment (several S3 endpoints in one process: tests).
    pub fn open_with_env(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LakeError> {
        let bad = |reason: &str| LakeError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (store, shown): (Arc<dyn ObjectStore>, String) = if url == "memory://"
            || url == "memory:///"
        {
            (Arc::new(InMemory::new()), "memory://".to_owned())
        } else if let Some(rest) = url.strip_prefix("s3://") {
            (s3(url, rest, vars)?, url.trim_end_matches('/').to_owned())
        } else if let Some((scheme, _)) = url.split_once("://") {
            if scheme != "file" {
                return Err(bad(&format!(
                    "scheme {scheme}:// is not supported (supported: file://, s3://, memory://, or a directory path)"
                )));
            }
            let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            let path = parsed.to_file_path().map_err(|()| {
                bad("file:// URLs need an absolute path, e.g. file:///var/lib/surgstream/lake")
            })?;
            local(path)?
        } else if url.is_empty() {
            return Err(bad("empty"));
        } else {
            local(PathBuf::from(url))?
        };
        Ok(Self {
            store,
            url: shown,
            multipart_threshold: MULTIPART_THRESHOLD,
        })
    }

    /// The same lake, uploading objects larger than `bytes` in parts of [`MULTIPART_PART`]
    /// (tests lower it to exercise multipart uploads with small files).
    pub fn with_multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// The lake's URL, as shown in logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The absolute location of the object `name` (relative to the lake's root), as table
    /// formats record it: `file:///abs/lake/name`, `s3://bucket/prefix/name`, `memory:///name`.
    pub fn location(&self, name: &str) -> String {
        let root = self.url.trim_end_matches('/');
        let name = name.trim_start_matches('/');
        if root == "memory:/" || root == "memory:" {
            format!("memory:///{name}")
        } else {
            format!("{root}/{name}")
        }
    }

    /// The object name (relative to the lake's root) of an absolute `location` inside the lake,
    /// or `None` for a location elsewhere. The inverse of [`Self::location`].
    pub fn name_of<'a>(&self, location: &'a str) -> Option<&'a str> {
        let root = self.location("");
        let rest = location.strip_prefix(root.as_str())?;
        (!rest.is_empty()).then_some(rest)
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Encodes `batch` and writes it under `path`, its final name. Local files appear atomically
    /// (written to a temporary name, then renamed).
    pub async fn write(
        &self,
        path: &LakePath,
        batch: &RecordBatch,
    ) -> Result<WrittenFile, LakeError> {
        let name = path.to_string();
        let bytes =
            encode_parquet(batch, writer_properties()).map_err(|source| LakeError::Encode {
                path: name.clone(),
                source,
            })?;
        let size = bytes.len() as u64;
        self.put(&name, bytes).await?;
        Ok(WrittenFile {
            path: name,
            bytes: size,
        })
    }

    /// Writes raw bytes under `name`: one PUT, or a multipart upload above the threshold. The
    /// object appears whole or not at all; a failed multipart upload is aborted.
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<(), LakeError> {
        let path = ObjectPath::from(name);
        if bytes.len() <= self.multipart_threshold {
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|source| self.err("write", name, source))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|source| self.err("start multipart upload of", name, source))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
        let mut rest = bytes;
        while !rest.is_empty() {
            // At most two parts in flight: memory stays near the file's own size.
            if let Err(source) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(self.err("upload a part of", name, source));
            }
            writer.put(rest.split_to(rest.len().min(MULTIPART_PART)));
        }
        writer
            .finish()
            .await
            .map_err(|source| self.err("complete multipart upload of", name, source))?;
        Ok(())
    }

    /// Reads a whole object.
    pub async fn get(&self, name: &str) -> Result<Bytes, LakeError> {
        let r = self
            .store
            .get(&ObjectPath::from(name))
            .await
            .map_err(|source| self.err("read", name, source))?;
        r.bytes()
            .await
            .map_err(|source| self.err("read", name, source))
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), LakeError> {
        match self.store.delete(&ObjectPath::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.err("delete", name, source)),
        }
    }

    /// Every object under `prefix` with its last modification, sorted by name.
    pub async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, LakeError> {
        use futures::TryStreamExt;
        let mut names: Vec<(String, chrono::DateTime<chrono::Utc>)> = self
            .store
            .list(Some(&ObjectPath::from(prefix)))
            .map_ok(|m| (m.location.to_string(), m.last_modified))
            .try_collect()
            .await
            .map_err(|source| self.err("list", prefix, source))?;
        names.sort();
        Ok(names)
    }

    fn err(&self, op: &'static str, path: &str, source: object_store::Error) -> LakeError {
        LakeError::Store {
            store: self.url.clone(),
            op,
            path: path.to_owned(),
            source: Box::new(source),
        }
    }
}

/// The batches of a lake file, reading only `columns`.
fn read_columns(name: &str, bytes: Bytes, columns: &[&str]) -> Result<Vec<RecordBatch>, LakeError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |reason: String| LakeError::Read {
        path: name.to_owned(),
        reason,
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(e.to_string()))?;
    let roots: Vec<usize> = columns
        .iter()
        .map(|c| {
            builder
                .schema()
                .index_of(c)
                .map_err(|_| bad(format!("no column {c}")))
        })
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .build()
        .map_err(|e| bad(e.to_string()))?
        .map(|batch| batch.map_err(|e| bad(e.to_string())))
        .collect()
}

/// The (procedure_id, seq) of every row of a lake file: what `surgstream verify` compares with
/// the source topic. Reads only those two columns.
pub fn read_keys(name: &str, bytes: Bytes) -> Result<Vec<([u8; 16], i64)>, LakeError> {
    use arrow::array::{Array, FixedSizeBinaryArray, Int64Array};
    let bad = |reason: &str| LakeError::Read {
        path: name.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = Vec::new();
    for batch in read_columns(name, bytes, &["procedure_id", "seq"])? {
        let ids = batch
            .column_by_name("procedure_id")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>())
            .ok_or_else(|| bad("procedure_id is not FixedSizeBinary(16)"))?;
        let seqs = batch
            .column_by_name("seq")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| bad("seq is not Int64"))?;
        if ids.null_count() > 0 || seqs.null_count() > 0 {
            return Err(bad("null procedure_id or seq"));
        }
        for i in 0..batch.num_rows() {
            let id: [u8; 16] = ids
                .value(i)
                .try_into()
                .map_err(|_| bad("procedure_id is not 16 bytes"))?;
            out.push((id, seqs.value(i)));
        }
    }
    Ok(out)
}

/// The `timestamp` of every row of a lake file, µs since the epoch (UTC): what `surgstream bench
/// --live` measures each frame's latency from. Reads only that column.
pub fn read_timestamps(name: &str, bytes: Bytes) -> Result<Vec<i64>, LakeError> {
    use arrow::array::{Array, TimestampMicrosecondArray};
    let mut out = Vec::new();
    for batch in read_columns(name, bytes, &["timestamp"])? {
        let ts = batch
            .column_by_name("timestamp")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .filter(|c| c.null_count() == 0)
            .ok_or_else(|| LakeError::Read {
                path: name.to_owned(),
                reason: "timestamp is not a non-null Timestamp(µs)".to_owned(),
            })?;
        out.extend_from_slice(ts.values());
    }
    Ok(out)
}

#[cfg(feature = "s3")]
/// An S3 store for `s3://bucket[/prefix]`, configured from the environment. The client's own
/// retries are kept short: the ingestor retries a failed flush itself, with backoff, visibly.
fn s3(
    url: &str,
    rest: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>, LakeError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};
    use std::time::Duration;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(LakeError::Url {
            url: url.to_owned(),
            reason: "no bucket (expected s3://bucket or s3://bucket/prefix)".to_owned(),
        });
    }
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    };
    let options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60));
    // Our defaults first: the AWS_* settings (AWS_ALLOW_HTTP, timeouts, …) override them.
    let mut builder = AmazonS3Builder::new()
        .with_retry(retry)
        .with_client_options(options);
    let (mut endpoint, mut allow_http) = (None, false);
    for (key, value) in vars {
        match key.as_str() {
            "AWS_ENDPOINT" | "AWS_ENDPOINT_URL" => endpoint = Some(value.clone()),
            "AWS_ALLOW_HTTP" => allow_http = value.eq_ignore_ascii_case("true"),
            _ => {}
        }
        if key.starts_with("AWS_")
            && let Ok(k) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(k, value);
        }
    }
    // object_store refuses plain HTTP too, but only at the first request and as "builder
    // error": say it now, and why.
    if let Some(endpoint) = endpoint.filter(|e| e.starts_with("http://") && !allow_http) {
        return Err(LakeError::Url {
            url: url.to_owned(),
            reason: format!(
                "AWS_ENDPOINT {endpoint} is plain HTTP: the lake's objects (patient-linked) \
                 would cross the network unencrypted. Use https://, or set AWS_ALLOW_HTTP=true \
                 for a local endpoint"
            ),
        });
    }
    let store = builder
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| LakeError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

#[cfg(not(feature = "s3"))]
fn s3(
    url: &str,
    _rest: &str,
    _vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>, LakeError> {
    Err(LakeError::Url {
        url: url.to_owned(),
        reason: "this build has no S3 support (the lake crate's feature `s3`)".to_owned(),
    })
}

fn local(path: PathBuf) -> Result<(Arc<dyn ObjectStore>, String), LakeError> {
    let dir_err = |source| LakeError::Dir {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&path).map_err(dir_err)?;
    let abs = std::fs::canonicalize(&path).map_err(dir_err)?;
    let fs = LocalFileSystem::new_with_prefix(&abs).map_err(|source| LakeError::Store {
        store: abs.display().to_string(),
        op: "open",
        path: String::new(),
        source: Box::new(source),
    })?;
    Ok((Arc::new(fs), format!("file://{}", abs.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_absolute_and_map_back_to_names() {
        let dir = std::env::temp_dir().join(format!("surgstream-location-{}", std::process::id()));
        let lake = Lake::open(&dir.display().to_string()).expect("a local lake");
        let abs = std::fs::canonicalize(&dir).expect("canonical");
        let name = "procedure_telemetry/date=2026-01-01/hour=00/part-0-1-2.parquet";
        assert_eq!(
            lake.location(name),
            format!("file://{}/{name}", abs.display())
        );
        assert_eq!(lake.name_of(&lake.location(name)), Some(name));
        assert_eq!(lake.name_of("file:///elsewhere/x.parquet"), None);
        let memory = Lake::open("memory://").expect("memory");
        assert_eq!(memory.location("a/b"), "memory:///a/b");
        assert_eq!(memory.name_of("memory:///a/b"), Some("a/b"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_list_is_permanent_a_throttled_or_failing_server_is_not() {
        let generic = |m: &str| LakeError::Store {
            store: "s3://b/p".into(),
            op: "list",
            path: "x".into(),
            source: Box::new(object_store::Error::Generic {
                store: "S3",
                source: m.into(),
            }),
        };
        let said = |status: &str| {
            format!(
                "Error performing GET http://h/b?list-type=2 in 3ms - Server returned non-2xx \
                 status code: {status}: <Error><Code>X</Code></Error>"
            )
        };
        assert!(!generic(&said("404 Not Found")).is_transient());
        assert!(!generic(&said("403 Forbidden")).is_transient());
        assert!(generic(&said("429 Too Many Requests")).is_transient());
        assert!(generic(&said("408 Request Timeout")).is_transient());
        assert!(generic(&said("503 Service Unavailable")).is_transient());
        assert!(generic("error sending request: connection refused").is_transient());
    }

    #[cfg(feature = "s3")]
    #[test]
    fn plain_http_needs_allow_http_and_encryption_settings_are_checked_at_open() {
        let vars = |extra: &[(&str, &str)]| {
            [
                ("AWS_ENDPOINT", "http://127.0.0.1:9"),
                ("AWS_ACCESS_KEY_ID", "k"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_REGION", "us-east-1"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
        };
        let e = Lake::open_with_env("s3://b/p", vars(&[]))
            .expect_err("plain HTTP refused")
            .to_string();
        assert!(
            e.contains("AWS_ALLOW_HTTP=true") && e.contains("plain HTTP"),
            "{e}"
        );
        assert!(Lake::open_with_env("s3://b/p", vars(&[("AWS_ALLOW_HTTP", "true")])).is_ok());
        let sse = |v: &str| {
            Lake::open_with_env(
                "s3://b/p",
                vars(&[
                    ("AWS_ALLOW_HTTP", "true"),
                    ("AWS_SERVER_SIDE_ENCRYPTION", v),
                ]),
            )
        };
        assert!(sse("AES256").is_ok());
        assert!(sse("aws:kms").is_ok());
        let e = sse("AES-256").expect_err("a bad value").to_string();
        assert!(e.contains("AES-256"), "{e}");
    }

    /// The codec of every column chunk of an encoded batch of `rows` rows.
    fn codecs(rows: usize) -> Vec<Compression> {
        use arrow::array::{ArrayRef, Int64Array};
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        let batch = RecordBatch::try_from_iter((0..5).map(|i| (format!("c{i}"), col.clone())))
            .expect("batch");
        let bytes = encode_parquet(&batch, writer_properties()).expect("encode");
        let reader = SerializedFileReader::new(bytes).expect("read back");
        let meta = reader.metadata();
        (0..meta.num_row_groups())
            .flat_map(|g| {
                meta.row_group(g)
                    .columns()
                    .iter()
                    .map(|c| c.compression())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn small_files_are_snappy_and_the_rest_zstd() {
        let small = codecs(SMALL_FILE_ROWS as usize - 1);
        assert!(!small.is_empty());
        assert!(small.iter().all(|c| *c == Compression::SNAPPY), "{small:?}");
        let large = codecs(SMALL_FILE_ROWS as usize);
        assert!(
            large.iter().all(|c| matches!(c, Compression::ZSTD(_))),
            "{large:?}"
        );
    }

    #[test]
    fn rejects_unknown_schemes_with_the_url() {
        let e = Lake::open("ftp://x/y").expect_err("ftp");
        assert!(
            e.to_string()
                .starts_with("invalid lake URL \"ftp://x/y\": scheme ftp:// is not supported"),
            "{e}"
        );
        assert!(Lake::open("file://relative/path").is_err());
        assert!(Lake::open("").is_err());
    }

    #[tokio::test]
    async fn memory_store_round_trips() {
        let lake = Lake::open("memory://").expect("memory");
        lake.put("a/b.parquet", Bytes::from_static(b"xyz"))
            .await
            .expect("put");
        assert_eq!(
            lake.get("a/b.parquet").await.expect("get"),
            Bytes::from_static(b"xyz")
        );
        lake.delete("a/b.parquet").await.expect("delete");
        lake.delete("a/b.parquet")
            .await
            .expect("delete of a missing object is fine");
        assert!(lake.get("a/b.parquet").await.is_err());
    }
}
