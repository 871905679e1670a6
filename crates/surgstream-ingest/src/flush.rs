//! Flushing: which buffers are due ([`crate::policy::decide`] over rows, bytes, age and the
//! memory limit), and step 1 of the commit protocol — each due partition's frames encoded as
//! Parquet, one file per event hour, stored in the lake under their final names with
//! [`PUTS_IN_FLIGHT`] uploads at once, retried while the store fails transiently. The files
//! become visible only when [`crate::commit`] names them.

use std::time::{Duration, Instant};

use chrono::DateTime;
use surgstream_lake::raw::{EncodedRawHour, RawPath};
use surgstream_lake::{Lake, LakeError, LakePath, encode_parquet, writer_properties};
use surgstream_store::offsets::LakeFile;
use surgstream_store::raw::RawFile;
use tokio_util::sync::CancellationToken;

use crate::error::IngestError;
use crate::metrics;
use crate::policy::{self, FlushCause};
use crate::raw_encoder::{self, RawArchive};
use crate::service::Ingest;

impl Ingest {
    /// Flushes what the flush policy ([`policy::decide`]) says is due now.
    pub(crate) async fn flush_due(&mut self) -> Result<(), IngestError> {
        let buffers: Vec<policy::Buffered<&(String, i32)>> = self
            .parts
            .iter()
            .map(|(k, s)| {
                let telemetry = k.0 == self.cfg.telemetry_topic;
                policy::Buffered {
                    key: k,
                    rows: if telemetry {
                        s.frames.rows()
                    } else {
                        s.events.len()
                    },
                    bytes: s.frames.bytes()
                        + s.event_bytes
                        + s.raw.as_ref().map_or(0, RawArchive::bytes),
                    due: s.due,
                    max_rows: if telemetry {
                        self.cfg.max_rows
                    } else {
                        self.cfg.event_batch
                    },
                }
            })
            .collect();
        ::metrics::gauge!(metrics::BUFFERED_BYTES)
            .set(buffers.iter().map(|b| b.bytes).sum::<usize>() as f64);
        ::metrics::gauge!(metrics::OPEN_BUFFERS)
            .set(buffers.iter().filter(|b| b.due.is_some()).count() as f64);
        let limits = policy::Limits {
            max_bytes: self.cfg.max_bytes,
            memory_limit: self.cfg.memory_limit,
        };
        let due: Vec<((String, i32), FlushCause)> =
            policy::decide(&buffers, limits, Instant::now())
                .into_iter()
                .map(|(k, cause)| (k.clone(), cause))
                .collect();
        self.flush(due).await
    }

    pub(crate) async fn flush_all(&mut self) -> Result<(), IngestError> {
        let due: Vec<_> = self
            .parts
            .iter()
            .filter(|(_, s)| s.pending())
            .map(|(k, _)| (k.clone(), FlushCause::Shutdown))
            .collect();
        self.flush(due).await
    }

    /// Makes everything consumed from these partitions durable, then commits their offsets:
    /// first the lake files (typed and raw) of all of them, under their final names and before
    /// any transaction is open (a store that is down holds no PostgreSQL lock while the
    /// ingestor waits for it), each stored while the next is encoded ([`PUTS_IN_FLIGHT`] at
    /// most); then one transaction per partition, in order. Nothing is consumed meanwhile.
    pub(crate) async fn flush(
        &mut self,
        due: Vec<((String, i32), FlushCause)>,
    ) -> Result<(), IngestError> {
        let started = Instant::now();
        let written = self.write_files(&due).await?;
        for ((key, cause), files) in due.iter().zip(written) {
            self.commit(key, *cause, &files, started).await?;
        }
        Ok(())
    }

    /// The objects of each partition in `due`, in `due`'s order: a telemetry partition's lake
    /// files (none for events, or without frames pending) and, with the raw archive on, every
    /// partition's raw files.
    pub(crate) async fn write_files(
        &mut self,
        due: &[((String, i32), FlushCause)],
    ) -> Result<Vec<Written>, IngestError> {
        // The raw files first: the encoder closes them while the typed ones are encoded here.
        let mut raw: Vec<_> = due
            .iter()
            .map(|(key, _)| {
                let archive = self.parts.get_mut(key)?.raw.as_mut()?;
                let offsets = archive.offsets()?;
                Some((offsets, archive.finish()))
            })
            .collect();
        let this = &*self;
        let mut files: Vec<Written> = due.iter().map(|_| Written::default()).collect();
        let mut running: std::collections::VecDeque<(usize, tokio::task::JoinHandle<_>)> =
            std::collections::VecDeque::new();
        let result =
            async {
                for (i, (key, _)) in due.iter().enumerate() {
                    let Some(state) = this.parts.get(key) else {
                        continue;
                    };
                    let partition = key.1;
                    let mut objects: Vec<(Stored, bytes::Bytes)> = Vec::new();
                    if key.0 == this.cfg.telemetry_topic && !state.frames.is_empty() {
                        let hours = state.frames.to_hour_batches().map_err(|source| {
                            IngestError::Arrow {
                                topic: key.0.clone(),
                                partition,
                                source,
                            }
                        })?;
                        let (first, last) = state
                            .frames
                            .offsets()
                            .unwrap_or((state.position - 1, state.position - 1));
                        for h in &hours {
                            let file = LakePath {
                                hour: h.hour,
                                partition,
                                first_offset: first,
                                last_offset: last,
                            };
                            let (meta, bytes) = encode_file(&file, h)?;
                            objects.push((Stored::Lake(meta), bytes));
                        }
                    }
                    if let Some(((first, last), answer)) = raw[i].take() {
                        let hours = raw_encoder::finished(answer).await.map_err(|e| {
                            IngestError::RawEncoder(format!(
                                "{}/{partition} offsets {first}..={last}: {e}",
                                key.0
                            ))
                        })?;
                        for h in hours {
                            let path = RawPath {
                                topic: &key.0,
                                hour: h.hour,
                                partition,
                                first_offset: first,
                                last_offset: last,
                            };
                            let (meta, bytes) = raw_file(&path, h);
                            objects.push((Stored::Raw(meta), bytes));
                        }
                    }
                    for (meta, bytes) in objects {
                        if running.len() >= PUTS_IN_FLIGHT
                            && let Some((j, task)) = running.pop_front()
                        {
                            files[j].add(finish(task).await?);
                        }
                        let task = tokio::spawn(store_object(
                            this.lake.clone(),
                            meta,
                            bytes,
                            this.shutdown.clone(),
                            this.cfg.store_retry_timeout,
                        ));
                        running.push_back((i, task));
                    }
                }
                while let Some((j, task)) = running.pop_front() {
                    files[j].add(finish(task).await?);
                }
                Ok(())
            }
            .await;
        // On a failure the files still being written are not waited for: they are named by no
        // manifest row, and the sweep removes them (as after a crash).
        for (_, task) in running {
            task.abort();
        }
        result.map(|()| files)
    }
}

/// What one partition's flush stored: its typed lake files and its raw files.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Typed telemetry files (`procedure_telemetry/…`).
    pub(crate) files: Vec<LakeFile>,
    /// Raw archive files (`raw/…`).
    pub(crate) raw: Vec<RawFile>,
}

impl Written {
    fn add(&mut self, stored: Stored) {
        match stored {
            Stored::Lake(f) => self.files.push(f),
            Stored::Raw(f) => self.raw.push(f),
        }
    }

    /// Every object's path.
    pub(crate) fn paths(&self) -> Vec<String> {
        let lake = self.files.iter().map(|f| f.path.clone());
        lake.chain(self.raw.iter().map(|f| f.path.clone()))
            .collect()
    }
}

/// One stored object, by its manifest.
#[derive(Debug)]
pub(crate) enum Stored {
    Lake(LakeFile),
    Raw(RawFile),
}

impl Stored {
    fn path(&self) -> &str {
        match self {
            Self::Lake(f) => &f.path,
            Self::Raw(f) => &f.path,
        }
    }
}

/// Writes one lake object, trying again with backoff (250 ms doubling to 10 s) while the store
/// fails transiently, for up to `give_up_after`. Nothing is consumed meanwhile, so the buffers
/// stay as they are; a shutdown request ends the wait (the records were not committed and are
/// read again on restart).
pub(crate) async fn put_with_retry(
    lake: &Lake,
    path: &str,
    bytes: bytes::Bytes,
    shutdown: &CancellationToken,
    give_up_after: Duration,
) -> Result<(), IngestError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut failures = 0u32;
    loop {
        match lake.put(path, bytes.clone()).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(path, failures, down_for = ?started.elapsed(), "lake store reachable again");
                }
                return Ok(());
            }
            Err(e) if e.is_transient() && started.elapsed() < give_up_after => {
                failures += 1;
                ::metrics::counter!(metrics::STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, retry_in = ?wait, failing_for = ?started.elapsed(),
                    "lake store unavailable: keeping the buffers, not consuming, trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::warn!(path, "stop requested while the lake store is unavailable: leaving the batch uncommitted");
                        return Err(e.into());
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How many lake files a flush keeps being stored at once. A backfill's flush writes hundreds
/// of small files (one per event hour): one PUT after another, an object store's round trip
/// (tens of milliseconds on S3) would be paid once per file.
pub(crate) const PUTS_IN_FLIGHT: usize = 8;

/// Encodes one hour of a partition's frames as Parquet, on the flushing task: encoding on
/// several threads at once bought nothing on two cores shared with the broker, and grew the
/// resident memory by an allocator arena per thread.
pub(crate) fn encode_file(
    file: &LakePath,
    h: &surgstream_lake::HourBatch,
) -> Result<(LakeFile, bytes::Bytes), LakeError> {
    let path = file.to_string();
    let bytes =
        encode_parquet(&h.batch, writer_properties()).map_err(|source| LakeError::Encode {
            path: path.clone(),
            source,
        })?;
    let meta = LakeFile {
        path,
        partition: file.partition,
        first_offset: file.first_offset,
        last_offset: file.last_offset,
        rows: h.batch.num_rows() as i64,
        bytes: bytes.len() as i64,
        min_event_time: DateTime::from_timestamp_micros(h.min_timestamp).unwrap_or_default(),
        max_event_time: DateTime::from_timestamp_micros(h.max_timestamp).unwrap_or_default(),
    };
    Ok((meta, bytes))
}

/// Stores one encoded object ([`put_with_retry`]), as a task of its own.
pub(crate) async fn store_object(
    lake: Lake,
    object: Stored,
    bytes: bytes::Bytes,
    shutdown: CancellationToken,
    give_up_after: Duration,
) -> Result<Stored, IngestError> {
    put_with_retry(&lake, object.path(), bytes, &shutdown, give_up_after).await?;
    Ok(object)
}

/// One hour of a partition's raw records, as the encoder made it, with its manifest row.
pub(crate) fn raw_file(path: &RawPath<'_>, h: EncodedRawHour) -> (RawFile, bytes::Bytes) {
    let time = |ms: i64| DateTime::from_timestamp_millis(ms);
    let meta = RawFile {
        path: path.to_string(),
        partition: path.partition,
        first_offset: path.first_offset,
        last_offset: path.last_offset,
        records: h.records as i64,
        bytes: h.bytes.len() as i64,
        min_timestamp: h.timestamps.and_then(|(lo, _)| time(lo)),
        max_timestamp: h.timestamps.and_then(|(_, hi)| time(hi)),
    };
    (meta, h.bytes)
}

/// The object a [`store_object`] task stored; a panic in it is a panic here.
pub(crate) async fn finish(
    task: tokio::task::JoinHandle<Result<Stored, IngestError>>,
) -> Result<Stored, IngestError> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(IngestError::Interrupted),
    }
}
