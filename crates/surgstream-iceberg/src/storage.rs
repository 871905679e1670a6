//! Iceberg's storage trait over the lake's own object store: the table's metadata, manifests
//! and data files are read and written through the same `object_store` client, URL and `AWS_*`
//! settings (encryption at rest included) as the lake itself, not through a second S3 stack.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use surgstream_lake::Lake;

/// The lake as Iceberg storage. Locations are absolute ([`Lake::location`]); one outside the
/// lake is refused. Serialisable only by its URL (iceberg's storage trait asks for serde): an
/// instance built by deserialising is not connected and refuses every operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LakeStorage {
    url: String,
    #[serde(skip)]
    lake: Option<Lake>,
}

impl LakeStorage {
    /// Storage over `lake`.
    pub fn new(lake: Lake) -> Self {
        Self {
            url: lake.url().to_owned(),
            lake: Some(lake),
        }
    }

    fn lake(&self) -> Result<&Lake> {
        self.lake.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("the storage of lake {} is not connected", self.url),
            )
        })
    }

    /// The object name of `location`, which must be inside the lake.
    fn name<'a>(&self, location: &'a str) -> Result<&'a str> {
        self.lake()?.name_of(location).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("{location} is not inside the lake {}", self.url),
            )
        })
    }

    fn object(&self, location: &str) -> Result<ObjectPath> {
        Ok(ObjectPath::from(self.name(location)?))
    }
}

fn store_error(
    op: &str,
    location: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(ErrorKind::Unexpected, format!("cannot {op} {location}")).with_source(e)
}

#[async_trait]
#[typetag::serde]
impl Storage for LakeStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        match self.lake()?.store().head(&self.object(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("look up", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let meta = self
            .lake()?
            .store()
            .head(&self.object(path)?)
            .await
            .map_err(|e| store_error("look up", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        self.lake()?
            .get(self.name(path)?)
            .await
            .map_err(|e| store_error("read", path, e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        Ok(Box::new(RangeReader {
            lake: self.lake()?.clone(),
            object: self.object(path)?,
            location: path.to_owned(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        self.lake()?
            .put(self.name(path)?, bs)
            .await
            .map_err(|e| store_error("write", path, e))
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        Ok(Box::new(BufferedWriter {
            lake: self.lake()?.clone(),
            name: self.name(path)?.to_owned(),
            location: path.to_owned(),
            buffer: Vec::new(),
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.lake()?
            .delete(self.name(path)?)
            .await
            .map_err(|e| store_error("delete", path, e))
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let lake = self.lake()?;
        let prefix = self.object(path)?;
        let mut listed = lake.store().list(Some(&prefix));
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(|e| store_error("list", path, e))?;
            lake.delete(meta.location.as_ref())
                .await
                .map_err(|e| store_error("delete", meta.location.as_ref(), e))?;
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_owned()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_owned()))
    }
}

/// Ranged reads of one object (Parquet footers, Avro manifests).
struct RangeReader {
    lake: Lake,
    object: ObjectPath,
    location: String,
}

#[async_trait]
impl FileRead for RangeReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.lake
            .store()
            .get_range(&self.object, range)
            .await
            .map_err(|e| store_error("read", &self.location, e))
    }
}

/// A writer of the small objects Iceberg writes (metadata JSON, Avro manifests and manifest
/// lists): buffered, then stored whole on close, so that an object appears complete or not
/// at all.
struct BufferedWriter {
    lake: Lake,
    name: String,
    location: String,
    buffer: Vec<u8>,
}

#[async_trait]
impl FileWrite for BufferedWriter {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        self.buffer.extend_from_slice(&bs);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let bytes = Bytes::from(std::mem::take(&mut self.buffer));
        self.lake
            .put(&self.name, bytes)
            .await
            .map_err(|e| store_error("write", &self.location, e))
    }
}

/// Builds [`LakeStorage`] for the catalog. Like the storage, it serialises by URL only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LakeStorageFactory {
    url: String,
    #[serde(skip)]
    lake: Option<Lake>,
}

impl LakeStorageFactory {
    /// A factory of storage over `lake`.
    pub fn new(lake: Lake) -> Self {
        Self {
            url: lake.url().to_owned(),
            lake: Some(lake),
        }
    }
}

#[typetag::serde]
impl StorageFactory for LakeStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        let lake = self.lake.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("the storage factory of lake {} is not connected", self.url),
            )
        })?;
        Ok(Arc::new(LakeStorage::new(lake)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_writes_and_deletes_inside_the_lake_only() {
        let lake = Lake::open("memory://").expect("memory lake");
        let storage = LakeStorage::new(lake.clone());
        let at = lake.location("t/metadata/v1.metadata.json");
        assert!(!storage.exists(&at).await.expect("exists"));
        storage
            .write(&at, Bytes::from_static(b"{}"))
            .await
            .expect("write");
        assert!(storage.exists(&at).await.expect("exists"));
        assert_eq!(storage.metadata(&at).await.expect("metadata").size, 2);
        assert_eq!(
            storage.read(&at).await.expect("read"),
            Bytes::from_static(b"{}")
        );
        let reader = storage.reader(&at).await.expect("reader");
        assert_eq!(
            reader.read(1..2).await.expect("range"),
            Bytes::from_static(b"}")
        );

        let mut writer = storage
            .writer(&lake.location("t/metadata/m.avro"))
            .await
            .expect("writer");
        writer
            .write(Bytes::from_static(b"ab"))
            .await
            .expect("write");
        writer
            .write(Bytes::from_static(b"cd"))
            .await
            .expect("write");
        assert!(
            !storage
                .exists(&lake.location("t/metadata/m.avro"))
                .await
                .expect("exists")
        );
        writer.close().await.expect("close");
        assert_eq!(
            storage
                .read(&lake.location("t/metadata/m.avro"))
                .await
                .expect("read"),
            Bytes::from_static(b"abcd")
        );

        storage
            .delete_prefix(&lake.location("t/metadata"))
            .await
            .expect("delete prefix");
        assert!(!storage.exists(&at).await.expect("exists"));
        let outside = storage
            .read("s3://elsewhere/x")
            .await
            .expect_err("outside the lake");
        assert!(
            outside.to_string().contains("is not inside the lake"),
            "{outside}"
        );
    }
}
