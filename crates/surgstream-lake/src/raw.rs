//! The raw record archive (`raw/`): every record the ingestor consumed, byte for byte, with
//! where and when Kafka had it — the seed's "raw sensor logs", kept for incident review and for
//! rebuilding the lake long after Kafka's retention (`surgstream replay --from-raw`).
//!
//! A [`RawBuffer`] holds one partition's records between two commits, in one arena; at the
//! flush it becomes one Arrow batch per hour of the records' Kafka timestamps ([`RawBuffer::to_hour_batches`]),
//! each stored as `raw/topic=<topic>/date=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet`
//! ([`RawPath`]) and named in the `raw_files` manifest in the same PostgreSQL transaction as the
//! typed files or applied events of the same range. Columns ([`raw_schema`]): `kafka_partition`,
//! `kafka_offset`, `kafka_timestamp` (ms, UTC, as the broker has it), `kafka_timestamp_type`
//! (`CreateTime` or `LogAppendTime`), `key`, `headers` (list of key/value), `value` — the record
//! as it was, undecoded: a record the ingestor dead-lettered is here too.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, ListBuilder, RecordBatch, StringBuilder,
    StructBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::path::HourKey;
use crate::store::LakeError;

/// The raw archive's directory.
pub const RAW: &str = "raw";

/// How Kafka stamped a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's clock (Kafka's default).
    CreateTime,
    /// The broker's clock at append (`message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's own name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        }
    }

    /// The type Kafka names `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CreateTime" => Some(Self::CreateTime),
            "LogAppendTime" => Some(Self::LogAppendTime),
            _ => None,
        }
    }
}

/// One consumed record, borrowed from the consumer's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its Kafka timestamp (ms since the epoch) and how it was stamped; None: the record has
    /// none (a pre-0.10 message format).
    pub timestamp: Option<(i64, TimestampType)>,
    /// The key, None for a record without one.
    pub key: Option<&'a [u8]>,
    /// The value, None for a tombstone.
    pub value: Option<&'a [u8]>,
}

/// The Arrow schema of every raw file.
pub fn raw_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("kafka_partition", DataType::Int32, false),
                Field::new("kafka_offset", DataType::Int64, false),
                Field::new(
                    "kafka_timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    true,
                ),
                Field::new("kafka_timestamp_type", DataType::Utf8, true),
                Field::new("key", DataType::Binary, true),
                Field::new(
                    "headers",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(header_fields()),
                        false,
                    ))),
                    false,
                ),
                Field::new("value", DataType::Binary, true),
            ]))
        })
        .clone()
}

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// Where one raw file lives, relative to the lake's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPath<'a> {
    /// The source topic.
    pub topic: &'a str,
    /// The hour of every record's Kafka timestamp in the file.
    pub hour: HourKey,
    /// The Kafka partition.
    pub partition: i32,
    /// The first offset of the flushed range (of every hour's file of the flush).
    pub first_offset: i64,
    /// Its last offset.
    pub last_offset: i64,
}

impl fmt::Display for RawPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{RAW}/topic={}/{}/part-{:05}-{:020}-{:020}.parquet",
            self.topic,
            self.hour.partition_dir(),
            self.partition,
            self.first_offset,
            self.last_offset
        )
    }
}

#[derive(Debug, Clone)]
struct Entry {
    offset: i64,
    /// The Kafka timestamp (ms) or, for a record without one, when it was consumed: the hour
    /// it is filed under.
    filed_ms: i64,
    /// The Kafka timestamp type; None: no timestamp.
    stamped: Option<TimestampType>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// Its headers in `RawBuffer::headers`.
    headers: Range<usize>,
}

/// One hour of a partition's raw records, in offset order, ready to encode.
#[derive(Debug)]
pub struct RawHour {
    /// The hour of their Kafka timestamps.
    pub hour: HourKey,
    /// The records.
    pub batch: RecordBatch,
    /// Earliest and latest Kafka timestamp (ms), of the records that have one.
    pub timestamps: Option<(i64, i64)>,
}

/// One Kafka partition's consumed records since its last commit.
#[derive(Debug, Default)]
pub struct RawBuffer {
    entries: Vec<Entry>,
    /// (key, value) of every record's headers, as ranges of `data`.
    headers: Vec<(Range<usize>, Option<Range<usize>>)>,
    data: Vec<u8>,
}

/// Per record, besides its bytes: what [`RawBuffer::bytes`] counts for its entry.
const ENTRY_BYTES: usize = size_of::<Entry>();

impl RawBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    fn keep(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    /// Keeps one record, with its headers (key, value) in order. `now_ms` files a record
    /// without a timestamp under the hour it was consumed in.
    pub fn push<'h>(
        &mut self,
        record: RawRecord<'_>,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        now_ms: i64,
    ) {
        let first_header = self.headers.len();
        for (k, v) in headers {
            let k = self.keep(k.as_bytes());
            let v = v.map(|v| self.keep(v));
            self.headers.push((k, v));
        }
        let key = record.key.map(|k| self.keep(k));
        let value = record.value.map(|v| self.keep(v));
        self.entries.push(Entry {
            offset: record.offset,
            filed_ms: record.timestamp.map_or(now_ms, |(t, _)| t),
            stamped: record.timestamp.map(|(_, ty)| ty),
            key,
            value,
            headers: first_header..self.headers.len(),
        });
    }

    /// Records held.
    pub fn records(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held: the records' keys, values and headers, and a fixed cost per record and
    /// header.
    pub fn bytes(&self) -> usize {
        self.data.len()
            + self.entries.len() * ENTRY_BYTES
            + self.headers.len() * size_of::<(Range<usize>, Option<Range<usize>>)>()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first and last offset held.
    pub fn offsets(&self) -> Option<(i64, i64)> {
        Some((self.entries.first()?.offset, self.entries.last()?.offset))
    }

    /// One batch per hour of the records' Kafka timestamps, each in offset order. The buffer
    /// is left as it is: [`RawBuffer::clear`] it once the flush is durable.
    pub fn to_hour_batches(&self, partition: i32) -> Result<Vec<RawHour>, ArrowError> {
        let mut hours: BTreeMap<HourKey, Vec<&Entry>> = BTreeMap::new();
        for e in &self.entries {
            hours
                .entry(HourKey::of(e.filed_ms.saturating_mul(1000)))
                .or_default()
                .push(e);
        }
        hours
            .into_iter()
            .map(|(hour, entries)| self.build(hour, partition, &entries))
            .collect()
    }

    fn build(
        &self,
        hour: HourKey,
        partition: i32,
        entries: &[&Entry],
    ) -> Result<RawHour, ArrowError> {
        let n = entries.len();
        let bytes = |r: &Option<Range<usize>>| r.as_ref().map(|r| &self.data[r.clone()]);
        let binary = |get: fn(&Entry) -> &Option<Range<usize>>| -> ArrayRef {
            let size = entries
                .iter()
                .map(|e| get(e).as_ref().map_or(0, |r| r.len()))
                .sum();
            let mut b = BinaryBuilder::with_capacity(n, size);
            for e in entries {
                b.append_option(bytes(get(e)));
            }
            Arc::new(b.finish())
        };
        let mut headers =
            ListBuilder::new(StructBuilder::from_fields(header_fields(), 0)).with_field(Arc::new(
                Field::new("item", DataType::Struct(header_fields()), false),
            ));
        for e in entries {
            let list = headers.values();
            for (k, v) in &self.headers[e.headers.clone()] {
                // Kept from a `&str`: always UTF-8, so the conversion never replaces anything.
                let key = String::from_utf8_lossy(&self.data[k.clone()]);
                list.field_builder::<StringBuilder>(0)
                    .ok_or_else(|| ArrowError::SchemaError("header key builder".into()))?
                    .append_value(key);
                list.field_builder::<BinaryBuilder>(1)
                    .ok_or_else(|| ArrowError::SchemaError("header value builder".into()))?
                    .append_option(bytes(v));
                list.append(true);
            }
            headers.append(true);
        }
        let stamped: Vec<Option<i64>> = entries
            .iter()
            .map(|e| e.stamped.map(|_| e.filed_ms))
            .collect();
        let timestamps = stamped
            .iter()
            .flatten()
            .fold(None, |acc: Option<(i64, i64)>, &t| {
                Some(acc.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
            });
        let mut types = StringBuilder::with_capacity(n, n * 10);
        for e in entries {
            types.append_option(e.stamped.map(TimestampType::as_str));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![partition; n])),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.offset),
            )),
            Arc::new(TimestampMillisecondArray::from(stamped).with_timezone("UTC")),
            Arc::new(types.finish()),
            binary(|e| &e.key),
            Arc::new(headers.finish()),
            binary(|e| &e.value),
        ];
        Ok(RawHour {
            hour,
            batch: RecordBatch::try_new(raw_schema(), columns)?,
            timestamps,
        })
    }

    /// Empties the buffer after a durable flush (keeps its allocations).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.headers.clear();
        self.data.clear();
    }
}

/// The writer settings of raw files: the values are opaque bytes (no statistics, no
/// dictionary), compressed with Snappy; offsets and timestamps delta-encoded.
///
/// Snappy, not ZSTD: the raw archive is compressed on the ingestor's one loop, inside every
/// flush, and its values are the bulk of what a flush writes. On the hot-path benchmark (98,171
/// frames of ten 1 kHz rooms in 986 records, 2026-12-07) ZSTD level 1 made 85.8 B/frame at
/// 1.34 M frames/s, Snappy 99.4 B/frame at 1.91 M frames/s (LZ4_RAW 100.3 at 2.04 M, which
/// fewer engines read); in the dense drain ZSTD cost 0.5 CPU-s per million frames and took it to
/// 351,000–413,000 frames/s (docs/performance.md). Every engine reads Snappy.
pub fn raw_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("surgstream {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("kafka_timestamp_type"), true)
        .set_column_dictionary_enabled(
            ColumnPath::from(vec![
                "headers".into(),
                "list".into(),
                "item".into(),
                "key".into(),
            ]),
            true,
        )
        .set_column_encoding(
            ColumnPath::from("kafka_offset"),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_encoding(
            ColumnPath::from("kafka_timestamp"),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from("key"), EnabledStatistics::None)
        .set_column_statistics_enabled(ColumnPath::from("value"), EnabledStatistics::None)
        .build()
}

/// Encodes one hour of raw records as a complete Parquet file ([`raw_writer_properties`]).
pub fn encode_raw(batch: &RecordBatch) -> Result<Bytes, ParquetError> {
    encode_raw_with(batch, raw_writer_properties())
}

/// [`encode_raw`] with other writer settings (the benchmark's codecs).
pub fn encode_raw_with(
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<Bytes, ParquetError> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 2);
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buf))
}

/// One hour of a partition's raw records, encoded: a complete Parquet file.
#[derive(Debug)]
pub struct EncodedRawHour {
    /// The hour of their Kafka timestamps.
    pub hour: HourKey,
    /// The file.
    pub bytes: Bytes,
    /// Records in it.
    pub records: usize,
    /// Earliest and latest Kafka timestamp (ms), of the records that have one.
    pub timestamps: Option<(i64, i64)>,
}

/// One partition's raw records encoded as they come, a [`RawBuffer`] at a time: one Parquet
/// writer per hour of their Kafka timestamps, holding compressed pages rather than the records.
/// [`RawWriter::finish`] closes every hour's file. The files equal, row for row, what
/// [`encode_raw`] makes of the same records in one batch (tested), so an ingestor that
/// encodes along the way (on a thread of its own, while it consumes) and one that encodes at the
/// flush archive the same rows.
#[derive(Default)]
pub struct RawWriter {
    hours: BTreeMap<HourKey, HourWriter>,
}

struct HourWriter {
    writer: ArrowWriter<Vec<u8>>,
    records: usize,
    timestamps: Option<(i64, i64)>,
}

impl fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawWriter")
            .field("hours", &self.hours.len())
            .field("records", &self.records())
            .field("memory_size", &self.memory_size())
            .finish()
    }
}

impl RawWriter {
    /// A writer with nothing written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes the buffer's records (of `partition`), each into its hour's file.
    pub fn write(&mut self, buffer: &RawBuffer, partition: i32) -> Result<(), ParquetError> {
        for h in buffer.to_hour_batches(partition)? {
            let w = match self.hours.entry(h.hour) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(HourWriter {
                    writer: ArrowWriter::try_new(
                        Vec::new(),
                        raw_schema(),
                        Some(raw_writer_properties()),
                    )?,
                    records: 0,
                    timestamps: None,
                }),
            };
            w.writer.write(&h.batch)?;
            w.records += h.batch.num_rows();
            w.timestamps = match (w.timestamps, h.timestamps) {
                (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                (t, None) | (None, t) => t,
            };
        }
        Ok(())
    }

    /// Records written since the last [`RawWriter::finish`].
    pub fn records(&self) -> usize {
        self.hours.values().map(|h| h.records).sum()
    }

    /// Bytes held: the encoded pages of every open row group and what was already written out.
    pub fn memory_size(&self) -> usize {
        self.hours
            .values()
            .map(|h| h.writer.memory_size() + h.writer.inner().capacity())
            .sum()
    }

    /// Closes every hour's file, in hour order, and leaves the writer empty.
    pub fn finish(&mut self) -> Result<Vec<EncodedRawHour>, ParquetError> {
        std::mem::take(&mut self.hours)
            .into_iter()
            .map(|(hour, h)| {
                // `into_inner` writes the footer (after `finish` it would write it twice).
                Ok(EncodedRawHour {
                    hour,
                    bytes: Bytes::from(h.writer.into_inner()?),
                    records: h.records,
                    timestamps: h.timestamps,
                })
            })
            .collect()
    }
}

/// The hour a Kafka timestamp (ms) is filed under; exposed for readers that select by time.
pub fn hour_of_millis(ms: i64) -> HourKey {
    HourKey::of(ms.saturating_mul(1000))
}

/// A record's fingerprint — its key, headers and value — for comparing the archive with a topic
/// (`surgstream verify`): equal records have equal digests within one process.
pub fn record_digest<'h>(
    key: Option<&[u8]>,
    headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    value: Option<&[u8]>,
) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    for (k, v) in headers {
        (k, v).hash(&mut h);
    }
    value.hash(&mut h);
    h.finish()
}

/// One record of a raw file, borrowed from the decoded batch.
struct RawView<'a> {
    partition: i32,
    offset: i64,
    /// The Kafka timestamp (ms), and the type column as written.
    timestamp: Option<(i64, Option<&'a str>)>,
    key: Option<&'a [u8]>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
    value: Option<&'a [u8]>,
}

/// Calls `each` for every record of one raw file, in the file's order.
fn for_each_raw(
    name: &str,
    bytes: Bytes,
    mut each: impl FnMut(RawView<'_>) -> Result<(), LakeError>,
) -> Result<(), LakeError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |what: String| LakeError::Read {
        path: name.to_owned(),
        reason: what,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| bad(format!("no column {name}")))
        };
        let not = |what: &str| bad(format!("{what} has another type than raw files have"));
        let partitions = column("kafka_partition")?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| not("kafka_partition"))?;
        let offsets = column("kafka_offset")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| not("kafka_offset"))?;
        let times = column("kafka_timestamp")?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| not("kafka_timestamp"))?;
        let types = column("kafka_timestamp_type")?
            .as_string_opt::<i32>()
            .ok_or_else(|| not("kafka_timestamp_type"))?;
        let keys = column("key")?
            .as_binary_opt::<i32>()
            .ok_or_else(|| not("key"))?;
        let values = column("value")?
            .as_binary_opt::<i32>()
            .ok_or_else(|| not("value"))?;
        let headers = column("headers")?
            .as_list_opt::<i32>()
            .ok_or_else(|| not("headers"))?;
        for i in 0..batch.num_rows() {
            let list = headers.value(i);
            let list = list.as_struct_opt().ok_or_else(|| not("headers' items"))?;
            let hk = list
                .column(0)
                .as_string_opt::<i32>()
                .ok_or_else(|| not("a header key"))?;
            let hv = list
                .column(1)
                .as_binary_opt::<i32>()
                .ok_or_else(|| not("a header value"))?;
            each(RawView {
                partition: partitions.value(i),
                offset: offsets.value(i),
                timestamp: times
                    .is_valid(i)
                    .then(|| (times.value(i), types.is_valid(i).then(|| types.value(i)))),
                key: keys.is_valid(i).then(|| keys.value(i)),
                headers: (0..list.len())
                    .map(|j| (hk.value(j), hv.is_valid(j).then(|| hv.value(j))))
                    .collect(),
                value: values.is_valid(i).then(|| values.value(i)),
            })?;
        }
    }
    Ok(())
}

/// What one raw file holds, record by record: (Kafka partition, offset, [`record_digest`]).
pub fn read_raw_digests(name: &str, bytes: Bytes) -> Result<Vec<(i32, i64, u64)>, LakeError> {
    let mut out = Vec::new();
    for_each_raw(name, bytes, |r| {
        let digest = record_digest(r.key, r.headers.iter().copied(), r.value);
        out.push((r.partition, r.offset, digest));
        Ok(())
    })?;
    Ok(out)
}

/// One archived record, as read back from a raw file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedRecord {
    /// Its Kafka partition.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its Kafka timestamp (ms) and how it was stamped, if it had one.
    pub timestamp: Option<(i64, TimestampType)>,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Its value.
    pub value: Option<Bytes>,
}

/// Every record of one raw file, in the file's order (offsets ascending).
pub fn read_raw_records(name: &str, bytes: Bytes) -> Result<Vec<ArchivedRecord>, LakeError> {
    let owned = |b: Option<&[u8]>| b.map(Bytes::copy_from_slice);
    let mut out = Vec::new();
    for_each_raw(name, bytes, |r| {
        let timestamp = match r.timestamp {
            Some((t, kind)) => {
                let kind = kind
                    .and_then(TimestampType::parse)
                    .ok_or_else(|| LakeError::Read {
                        path: name.to_owned(),
                        reason: format!(
                            "offset {}: a timestamp without a known kafka_timestamp_type",
                            r.offset
                        ),
                    })?;
                Some((t, kind))
            }
            None => None,
        };
        out.push(ArchivedRecord {
            partition: r.partition,
            offset: r.offset,
            timestamp,
            key: owned(r.key),
            headers: r
                .headers
                .iter()
                .map(|&(k, v)| (k.to_owned(), owned(v)))
                .collect(),
            value: owned(r.value),
        });
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, BinaryArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    const T: i64 = 1_795_700_700_000; // 2026-11-26T13:45:00Z, ms

    #[test]
    fn records_round_trip_byte_for_byte_filed_by_their_kafka_hour() {
        let mut b = RawBuffer::new();
        b.push(
            RawRecord {
                offset: 7,
                timestamp: Some((T, TimestampType::CreateTime)),
                key: Some(b"robot-1"),
                value: Some(&[0, 1, 2, 255]),
            },
            [
                ("schema", Some(&b"surgstream.v1.Event"[..])),
                ("empty", None),
            ],
            0,
        );
        // The next hour, no key, a tombstone, stamped by the broker.
        b.push(
            RawRecord {
                offset: 8,
                timestamp: Some((T + 3_600_000, TimestampType::LogAppendTime)),
                key: None,
                value: None,
            },
            [],
            0,
        );
        // No timestamp: filed under the hour it was consumed in (T's).
        b.push(
            RawRecord {
                offset: 10,
                timestamp: None,
                key: Some(b""),
                value: Some(b"x"),
            },
            [],
            T + 60_000,
        );
        assert_eq!((b.records(), b.offsets()), (3, Some((7, 10))));
        let hours = b.to_hour_batches(3).expect("test value");
        assert_eq!(hours.len(), 2);
        let path = RawPath {
            topic: "surgstream.telemetry.v1",
            hour: hours[0].hour,
            partition: 3,
            first_offset: 7,
            last_offset: 10,
        };
        assert_eq!(
            path.to_string(),
            "raw/topic=surgstream.telemetry.v1/date=2026-11-26/hour=13/part-00003-00000000000000000007-00000000000000000010.parquet"
        );
        assert_eq!(
            hours[0].timestamps,
            Some((T, T)),
            "the unstamped one does not count"
        );
        let bytes = encode_raw(&hours[0].batch).expect("test value");
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .expect("test value")
            .build()
            .expect("test value")
            .next()
            .expect("test value")
            .expect("test value");
        assert_eq!(batch.schema(), raw_schema());
        let offsets = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(offsets.values(), &[7, 10]);
        let ts = batch.column(2);
        assert!(ts.is_valid(0) && ts.is_null(1));
        let types = batch.column(3).as_string::<i32>();
        assert_eq!((types.value(0), types.is_null(1)), ("CreateTime", true));
        let keys: &BinaryArray = batch.column(4).as_binary();
        assert_eq!((keys.value(0), keys.value(1)), (&b"robot-1"[..], &b""[..]));
        let values: &BinaryArray = batch.column(6).as_binary();
        assert_eq!(
            (values.value(0), values.value(1)),
            (&[0, 1, 2, 255][..], &b"x"[..])
        );
        let headers = batch.column(5).as_list::<i32>();
        let first = headers.value(0);
        let first = first.as_struct();
        assert_eq!(first.len(), 2);
        assert_eq!(first.column(0).as_string::<i32>().value(1), "empty");
        assert!(first.column(1).is_null(1));
        assert_eq!(
            first.column(1).as_binary::<i32>().value(0),
            b"surgstream.v1.Event"
        );
        assert_eq!(headers.value(1).len(), 0);
        let next = &hours[1];
        assert_eq!(next.batch.num_rows(), 1);
        assert!(next.batch.column(6).is_null(0), "a tombstone stays null");
        assert_eq!(
            next.batch.column(3).as_string::<i32>().value(0),
            "LogAppendTime"
        );
        let back = read_raw_records("x", encode_raw(&next.batch).expect("test value"))
            .expect("test value");
        assert_eq!(
            back,
            vec![ArchivedRecord {
                partition: 3,
                offset: 8,
                timestamp: Some((T + 3_600_000, TimestampType::LogAppendTime)),
                key: None,
                headers: vec![],
                value: None,
            }]
        );
        let first = read_raw_records("x", bytes.clone()).expect("test value");
        assert_eq!(first[0].key.as_deref(), Some(&b"robot-1"[..]));
        assert_eq!(
            first[0].headers,
            vec![
                (
                    "schema".to_owned(),
                    Some(Bytes::from_static(b"surgstream.v1.Event"))
                ),
                ("empty".to_owned(), None)
            ]
        );
        assert_eq!(first[1].timestamp, None);
        b.clear();
        assert!(b.is_empty() && b.bytes() == 0);
    }

    #[test]
    fn a_writer_fed_in_pieces_archives_what_one_batch_would() {
        // 300 records 40 s apart from 13:45 (13:00–17:00: five hours), a header on every third,
        // fed in pieces of 70.
        let record = |i: i64| {
            let value = format!("frame-{i}").repeat((i % 5 + 1) as usize);
            (i, T + i * 40_000, value)
        };
        let push = |b: &mut RawBuffer, (i, t, value): (i64, i64, String)| {
            let headers: Vec<(&str, Option<&[u8]>)> = if i % 3 == 0 {
                vec![("schema", Some(&b"surgstream.v1.TelemetryBatch"[..]))]
            } else {
                vec![]
            };
            b.push(
                RawRecord {
                    offset: 100 + i,
                    timestamp: Some((t, TimestampType::CreateTime)),
                    key: Some(b"r"),
                    value: Some(value.as_bytes()),
                },
                headers,
                0,
            );
        };
        let mut whole = RawBuffer::new();
        let mut writer = RawWriter::new();
        let mut piece = RawBuffer::new();
        for i in 0..300 {
            push(&mut whole, record(i));
            push(&mut piece, record(i));
            if piece.records() == 70 {
                writer.write(&piece, 2).expect("test value");
                piece.clear();
            }
        }
        writer.write(&piece, 2).expect("test value");
        assert_eq!(writer.records(), 300);
        assert!(writer.memory_size() > 0);
        let pieces = writer.finish().expect("test value");
        assert_eq!(writer.records(), 0, "finish leaves the writer empty");
        let hours = whole.to_hour_batches(2).expect("test value");
        assert_eq!(pieces.len(), 5);
        assert_eq!(pieces.len(), hours.len());
        for (p, h) in pieces.iter().zip(&hours) {
            assert_eq!(
                (p.hour, p.records, p.timestamps),
                (h.hour, h.batch.num_rows(), h.timestamps)
            );
            let read = |bytes: Bytes| read_raw_records("x", bytes).expect("test value");
            let one = read(encode_raw(&h.batch).expect("test value"));
            assert_eq!(read(p.bytes.clone()), one);
            assert_eq!(one.len(), h.batch.num_rows());
        }
    }
}
