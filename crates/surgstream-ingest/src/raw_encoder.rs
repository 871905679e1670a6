//! The raw archive's encoder: one thread beside the consuming loop that turns every partition's
//! consumed records into compressed Parquet pages as they arrive, so that the loop only copies
//! each record once ([`RawArchive::push`]) and a flush only closes files that are already
//! written ([`RawArchive::finish`]).
//!
//! Encoding at the flush instead (as the first version did) stopped consumption for the whole
//! encode of every due partition's records and held them uncompressed until then (208 B per
//! dense frame against 99 B encoded), so the memory limit flushed twice as often: the dense
//! drain lost a third of its rate to the archive (docs/performance.md).
//!
//! Jobs run in the order they were sent (one channel): a partition's pieces are written in
//! offset order and its `finish` sees all of them. The channel is unbounded, but whatever waits
//! in it is counted in [`RawArchive::bytes`] and so against `--max-bytes` and
//! `--memory-limit`: a loop that outruns the encoder flushes, and the flush waits for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use surgstream_lake::raw::{EncodedRawHour, RawBuffer, RawRecord, RawWriter};
use tokio::sync::{mpsc, oneshot};

use crate::error::IngestError;

/// How many bytes of records a partition gathers before they go to the encoder: large enough
/// that a piece's fixed costs (an Arrow batch per hour, a writer call per column) do not
/// count, small enough that little waits uncompressed.
const PIECE_BYTES: usize = 1 << 20;

/// What one flush of a partition's raw archive yields: its hours' files, or why it has none.
pub(crate) type Finished = Result<Vec<EncodedRawHour>, String>;

enum Job {
    Write {
        id: u64,
        partition: i32,
        buffer: RawBuffer,
        held: Arc<Held>,
    },
    Finish {
        id: u64,
        reply: oneshot::Sender<Finished>,
    },
    Discard {
        id: u64,
    },
}

/// What a partition's records take while they are with the encoder.
#[derive(Debug, Default)]
struct Held {
    /// Sent, not yet encoded.
    queued: AtomicUsize,
    /// Encoded, waiting for the flush.
    encoded: AtomicUsize,
}

/// The encoder thread's handle; cheap to clone. The thread ends when the last handle is gone.
#[derive(Debug, Clone)]
pub(crate) struct RawEncoder {
    jobs: mpsc::UnboundedSender<Job>,
    ids: Arc<AtomicU64>,
}

impl RawEncoder {
    /// Starts the thread.
    pub(crate) fn start() -> Result<Self, IngestError> {
        let (jobs, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("raw-encoder".into())
            .spawn(move || run(rx))
            .map_err(|e| IngestError::RawEncoder(format!("cannot start its thread: {e}")))?;
        Ok(Self {
            jobs,
            ids: Arc::new(AtomicU64::new(0)),
        })
    }

    fn send(&self, job: Job) -> Result<(), IngestError> {
        self.jobs
            .send(job)
            .map_err(|_| IngestError::RawEncoder("its thread has stopped".into()))
    }
}

struct Part {
    writer: RawWriter,
    held: Arc<Held>,
    /// The first error; the partition's flush reports it.
    error: Option<String>,
}

fn run(mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut parts: HashMap<u64, Part> = HashMap::new();
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Write {
                id,
                partition,
                buffer,
                held,
            } => {
                let part = parts.entry(id).or_insert_with(|| Part {
                    writer: RawWriter::new(),
                    held: held.clone(),
                    error: None,
                });
                if part.error.is_none()
                    && let Err(e) = part.writer.write(&buffer, partition)
                {
                    part.error = Some(e.to_string());
                }
                held.encoded
                    .store(part.writer.memory_size(), Ordering::Relaxed);
                held.queued.fetch_sub(buffer.bytes(), Ordering::Relaxed);
            }
            Job::Finish { id, reply } => {
                let result = match parts.remove(&id) {
                    None => Ok(Vec::new()),
                    Some(mut part) => {
                        part.held.encoded.store(0, Ordering::Relaxed);
                        match part.error {
                            Some(e) => Err(e),
                            None => part.writer.finish().map_err(|e| e.to_string()),
                        }
                    }
                };
                // A flush that gave up waiting has dropped its receiver: nothing to tell.
                let _ = reply.send(result);
            }
            Job::Discard { id } => {
                parts.remove(&id);
            }
        }
    }
}

/// One partition's raw archive between two commits: the records not yet sent to the encoder,
/// and where the encoder's share stands.
#[derive(Debug)]
pub(crate) struct RawArchive {
    encoder: RawEncoder,
    /// This buffer's name with the encoder: a new one for every partition state, so that a
    /// state dropped (revoked, fenced) and one made anew never share an encoder's writer.
    id: u64,
    partition: i32,
    buffer: RawBuffer,
    offsets: Option<(i64, i64)>,
    held: Arc<Held>,
    /// Why the encoder cannot be reached, once it could not: the flush reports it.
    lost: Option<String>,
}

impl RawArchive {
    pub(crate) fn new(encoder: &RawEncoder, partition: i32) -> Self {
        Self {
            encoder: encoder.clone(),
            id: encoder.ids.fetch_add(1, Ordering::Relaxed),
            partition,
            buffer: RawBuffer::new(),
            offsets: None,
            held: Arc::default(),
            lost: None,
        }
    }

    /// Keeps one consumed record (see [`RawBuffer::push`]); sends a full piece to the encoder.
    pub(crate) fn push<'h>(
        &mut self,
        record: RawRecord<'_>,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        now_ms: i64,
    ) {
        let offset = record.offset;
        self.buffer.push(record, headers, now_ms);
        self.offsets = Some(self.offsets.map_or((offset, offset), |(f, _)| (f, offset)));
        if self.buffer.bytes() >= PIECE_BYTES {
            self.hand_off();
        }
    }

    fn hand_off(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let buffer = std::mem::take(&mut self.buffer);
        self.held
            .queued
            .fetch_add(buffer.bytes(), Ordering::Relaxed);
        let job = Job::Write {
            id: self.id,
            partition: self.partition,
            buffer,
            held: self.held.clone(),
        };
        if let Err(e) = self.encoder.send(job) {
            self.lost.get_or_insert(e.to_string());
        }
    }

    /// Bytes held: the records not yet sent, those waiting for the encoder, and the encoded
    /// pages.
    pub(crate) fn bytes(&self) -> usize {
        self.buffer.bytes()
            + self.held.queued.load(Ordering::Relaxed)
            + self.held.encoded.load(Ordering::Relaxed)
    }

    /// The first and last offset held.
    pub(crate) fn offsets(&self) -> Option<(i64, i64)> {
        self.offsets
    }

    /// Sends what is left and asks for every hour's file; the encoder forgets them once it
    /// answers. Await the answer with [`finished`].
    pub(crate) fn finish(&mut self) -> oneshot::Receiver<Finished> {
        self.hand_off();
        let (reply, answer) = oneshot::channel();
        if let Some(lost) = &self.lost {
            let _ = reply.send(Err(lost.clone()));
        } else if let Err(e) = self.encoder.send(Job::Finish { id: self.id, reply }) {
            // The reply went with the job: the answer says the thread is gone.
            self.lost.get_or_insert(e.to_string());
        }
        answer
    }

    /// Forgets the records after a durable flush.
    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
        self.offsets = None;
    }
}

impl Drop for RawArchive {
    fn drop(&mut self) {
        // A revoked or fenced partition's records: the encoder drops its writer.
        let _ = self.encoder.send(Job::Discard { id: self.id });
    }
}

/// The answer to [`RawArchive::finish`].
pub(crate) async fn finished(answer: oneshot::Receiver<Finished>) -> Finished {
    answer
        .await
        .unwrap_or_else(|_| Err("the raw encoder's thread has stopped".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use surgstream_lake::raw::{TimestampType, read_raw_records};

    fn push(a: &mut RawArchive, offset: i64, value: &[u8]) {
        a.push(
            RawRecord {
                offset,
                timestamp: Some((1_795_700_700_000, TimestampType::CreateTime)),
                key: None,
                value: Some(value),
            },
            [],
            0,
        );
    }

    #[tokio::test]
    async fn pieces_sent_along_the_way_and_the_rest_make_one_file_per_hour() {
        let encoder = RawEncoder::start().expect("test value");
        let mut a = RawArchive::new(&encoder, 4);
        // 3 MiB of records: at least two pieces go to the encoder before the flush.
        let value = vec![7u8; 64 * 1024];
        for offset in 0..48 {
            push(&mut a, offset, &value);
        }
        assert_eq!(a.offsets(), Some((0, 47)));
        assert!(a.bytes() > 0);
        let hours = finished(a.finish()).await.expect("test value");
        assert_eq!(hours.len(), 1);
        assert_eq!(a.bytes(), 0, "the flush's files are no longer held");
        let back = read_raw_records("x", hours[0].bytes.clone()).expect("test value");
        let offsets: Vec<i64> = back.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..48).collect::<Vec<_>>());
        assert!(
            back.iter()
                .all(|r| r.partition == 4 && r.value.as_deref() == Some(&value[..]))
        );
        a.clear();
        // After the flush the next records start a new file.
        push(&mut a, 48, b"x");
        let hours = finished(a.finish()).await.expect("test value");
        assert_eq!(hours[0].records, 1);
    }

    #[tokio::test]
    async fn a_dropped_partition_takes_nothing_into_a_new_ones_files() {
        let encoder = RawEncoder::start().expect("test value");
        let mut old = RawArchive::new(&encoder, 0);
        for offset in 0..20 {
            push(&mut old, offset, &vec![1u8; 128 * 1024]);
        }
        drop(old);
        let mut new = RawArchive::new(&encoder, 0);
        push(&mut new, 5, b"again");
        let hours = finished(new.finish()).await.expect("test value");
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].records, 1);
    }
}
