//! Validated frames of one Kafka partition, waiting to be flushed.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, FixedSizeBinaryArray, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use surgstream_proto::decimal::DecimalError;
use surgstream_proto::v1::TelemetryFrame;
use surgstream_proto::{BatchFrames, CodecError, FrameView, uuid16};

use crate::path::HourKey;
use crate::schema::{DECIMALS, TOOL_TYPE_MAX, telemetry_schema};

/// Earliest frame timestamp accepted: 2000-01-01T00:00:00Z.
pub const MIN_SANE_TIMESTAMP: i64 = 946_684_800_000_000;
/// How far in the future (relative to the ingestor's clock) a frame may be: one day.
pub const MAX_FUTURE_MICROS: i64 = 86_400_000_000;

/// Why a frame cannot go into the lake. The whole Kafka record holding it goes to the dead-letter
/// topic with this message, so nothing is lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FrameError {
    /// A UUID field without 16 bytes.
    #[error("frame seq {seq}: {source}")]
    Uuid {
        /// The frame's sequence number.
        seq: u64,
        /// What was wrong.
        #[source]
        source: Arc<CodecError>,
    },
    /// A value that does not fit its DECIMAL column.
    #[error("frame seq {seq}: column {column}: {source}")]
    Decimal {
        /// The frame's sequence number.
        seq: u64,
        /// The column.
        column: &'static str,
        /// What was wrong.
        #[source]
        source: DecimalError,
    },
    /// A timestamp outside [2000-01-01, now + 1 day].
    #[error(
        "frame seq {seq}: timestamp {timestamp} µs is outside the sane window [2000-01-01, now + 1 day]"
    )]
    Timestamp {
        /// The frame's sequence number.
        seq: u64,
        /// The timestamp found.
        timestamp: i64,
    },
    /// A tool name longer than VARCHAR(50).
    #[error(
        "frame seq {seq}: tool_type is {len} bytes long, the column takes at most {TOOL_TYPE_MAX}"
    )]
    ToolType {
        /// The frame's sequence number.
        seq: u64,
        /// Its length.
        len: usize,
    },
    /// A sequence number past i64::MAX.
    #[error("frame seq {seq}: seq does not fit a signed 64-bit integer")]
    Seq {
        /// The frame's sequence number.
        seq: u64,
    },
    /// Frames of a record that do not all belong to the record's procedure.
    #[error("frame seq {seq}: procedure_id differs from the first frame's")]
    MixedProcedures {
        /// The frame's sequence number.
        seq: u64,
    },
    /// A record that is not a valid `TelemetryBatch` (or holds no frames).
    #[error("{0}")]
    Undecodable(Arc<CodecError>),
}

impl FrameError {
    /// A short, low-cardinality reason: the `reason` label of the dead-letter counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Uuid { .. } => "bad_uuid",
            Self::Decimal {
                source: DecimalError::NotFinite { .. },
                ..
            } => "non_finite_value",
            Self::Decimal { .. } => "decimal_overflow",
            Self::Timestamp { .. } => "timestamp_out_of_range",
            Self::ToolType { .. } => "tool_type_too_long",
            Self::Seq { .. } => "bad_seq",
            Self::MixedProcedures { .. } => "mixed_procedures",
            Self::Undecodable(_) => "undecodable",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Row {
    telemetry_id: [u8; 16],
    procedure_id: [u8; 16],
    robot_id: [u8; 16],
    seq: i64,
    timestamp: i64,
    decimals: [i64; 13],
    tool: u32,
}

const _: () = assert!(size_of::<Row>() == 176);

/// Rows of one event-time hour, sorted by (procedure_id, timestamp), ready to encode.
#[derive(Debug)]
pub struct HourBatch {
    /// The hour every row belongs to.
    pub hour: HourKey,
    /// The rows.
    pub batch: RecordBatch,
    /// Earliest timestamp in the batch (µs UTC).
    pub min_timestamp: i64,
    /// Latest timestamp in the batch (µs UTC).
    pub max_timestamp: i64,
}

/// What [`FrameBuffer::push_encoded`] buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Frames.
    pub frames: usize,
    /// The newest frame's timestamp (µs UTC); `i64::MIN` when no frame was buffered.
    pub newest: i64,
    /// The oldest frame's timestamp (µs UTC); `i64::MAX` when no frame was buffered.
    pub oldest: i64,
}

/// Frames of one Kafka partition, from its first buffered offset to its last.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    rows: Vec<Row>,
    tools: Vec<String>,
    tool_ids: HashMap<String, u32>,
    first_offset: Option<i64>,
    last_offset: i64,
}

fn row_of(f: &FrameView<'_>, now_micros: i64) -> Result<Row, FrameError> {
    let seq = f.seq;
    let uuid = |name, b: &[u8]| {
        uuid16(name, b).map_err(|e| FrameError::Uuid {
            seq,
            source: Arc::new(e),
        })
    };
    let telemetry_id = uuid("telemetry_id", f.telemetry_id)?;
    let procedure_id = uuid("procedure_id", f.procedure_id)?;
    let robot_id = uuid("robot_id", f.robot_id)?;
    if f.timestamp < MIN_SANE_TIMESTAMP
        || f.timestamp > now_micros.saturating_add(MAX_FUTURE_MICROS)
    {
        return Err(FrameError::Timestamp {
            seq,
            timestamp: f.timestamp,
        });
    }
    if f.tool_type.len() > TOOL_TYPE_MAX {
        return Err(FrameError::ToolType {
            seq,
            len: f.tool_type.len(),
        });
    }
    let values = [
        f.arm_position_x,
        f.arm_position_y,
        f.arm_position_z,
        f.arm_rotation,
        f.grip_pressure,
        f.tremor_compensation,
        f.camera_zoom,
        f.camera_angle,
        f.force_feedback_x,
        f.force_feedback_y,
        f.force_feedback_z,
        f.system_temperature,
        f.power_consumption,
    ];
    let mut decimals = [0i64; 13];
    for (i, ((column, ty), v)) in DECIMALS.iter().zip(values).enumerate() {
        // Every column has precision ≤ 18, so the scaled value fits an i64.
        decimals[i] = ty.to_scaled(v).map_err(|source| FrameError::Decimal {
            seq,
            column,
            source,
        })? as i64;
    }
    Ok(Row {
        telemetry_id,
        procedure_id,
        robot_id,
        seq: i64::try_from(seq).map_err(|_| FrameError::Seq { seq })?,
        timestamp: f.timestamp,
        decimals,
        tool: 0,
    })
}

impl FrameBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates every frame of the Kafka record at `offset`, then buffers them all; on the
    /// first invalid frame nothing of the record is buffered (it belongs in the dead-letter
    /// topic) and the error says which frame and why. Either way the offset is covered.
    pub fn push_record(
        &mut self,
        offset: i64,
        frames: &[TelemetryFrame],
        now_micros: i64,
    ) -> Result<usize, FrameError> {
        self.push_views(offset, frames.iter().map(|f| Ok(f.into())), now_micros)
            .map(|p| p.frames)
    }

    /// [`FrameBuffer::push_record`] straight from the record's bytes (a `TelemetryBatch`): the
    /// frames are read in place ([`BatchFrames`]), with no allocation per frame. Bytes that are
    /// not a valid batch are [`FrameError::Undecodable`], and nothing of the record is buffered.
    pub fn push_encoded(
        &mut self,
        offset: i64,
        value: &[u8],
        now_micros: i64,
    ) -> Result<Pushed, FrameError> {
        self.push_views(offset, BatchFrames::new(value), now_micros)
    }

    fn push_views<'a>(
        &mut self,
        offset: i64,
        mut frames: impl Iterator<Item = Result<FrameView<'a>, CodecError>>,
        now_micros: i64,
    ) -> Result<Pushed, FrameError> {
        self.note_offset(offset);
        let start = self.rows.len();
        let mut procedure = None;
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for f in frames.by_ref() {
            let row = f
                .map_err(|e| FrameError::Undecodable(Arc::new(e)))
                .and_then(|f| {
                    let mut row = row_of(&f, now_micros)?;
                    if *procedure.get_or_insert(row.procedure_id) != row.procedure_id {
                        return Err(FrameError::MixedProcedures { seq: f.seq });
                    }
                    row.tool = self.intern(f.tool_type);
                    Ok(row)
                });
            match row {
                Ok(row) => {
                    newest = newest.max(row.timestamp);
                    oldest = oldest.min(row.timestamp);
                    self.rows.push(row);
                }
                Err(e) => {
                    self.rows.truncate(start);
                    // A record that does not decode is undecodable, whatever its first frames
                    // hold: the rest is read for a decoding error, so that the dead letter's
                    // reason is the one prost's decode-then-check would give.
                    if !matches!(e, FrameError::Undecodable(_))
                        && let Some(Err(bad)) = frames.find(Result::is_err)
                    {
                        return Err(FrameError::Undecodable(Arc::new(bad)));
                    }
                    return Err(e);
                }
            }
        }
        Ok(Pushed {
            frames: self.rows.len() - start,
            newest,
            oldest,
        })
    }

    /// Records that the offset was consumed (e.g. a record sent to the dead-letter topic).
    pub fn note_offset(&mut self, offset: i64) {
        self.first_offset.get_or_insert(offset);
        self.last_offset = self.last_offset.max(offset);
    }

    fn intern(&mut self, tool: &str) -> u32 {
        if let Some(id) = self.tool_ids.get(tool) {
            return *id;
        }
        let id = self.tools.len() as u32;
        self.tools.push(tool.to_owned());
        self.tool_ids.insert(tool.to_owned(), id);
        id
    }

    /// Buffered rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Bytes held by the buffered rows (fixed-width: 176 bytes a frame, checked at compile time).
    pub fn bytes(&self) -> usize {
        self.rows.len() * size_of::<Row>()
    }

    /// The offset range consumed since the last flush, if any.
    pub fn offsets(&self) -> Option<(i64, i64)> {
        self.first_offset.map(|first| (first, self.last_offset))
    }

    /// Whether nothing was consumed since the last flush.
    pub fn is_empty(&self) -> bool {
        self.first_offset.is_none()
    }

    /// Builds one sorted Arrow batch per event-time hour. The buffer is left as it is: call
    /// [`FrameBuffer::clear`] once the flush is durable.
    pub fn to_hour_batches(&self) -> Result<Vec<HourBatch>, ArrowError> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        let rows = &self.rows;
        order.sort_unstable_by_key(|&i| {
            let r = &rows[i as usize];
            (HourKey::of(r.timestamp), r.procedure_id, r.timestamp, r.seq)
        });
        let mut out = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let hour = HourKey::of(rows[order[start] as usize].timestamp);
            let end = start
                + order[start..]
                    .partition_point(|&i| HourKey::of(rows[i as usize].timestamp) == hour);
            out.push(self.build(hour, &order[start..end])?);
            start = end;
        }
        Ok(out)
    }

    fn build(&self, hour: HourKey, idx: &[u32]) -> Result<HourBatch, ArrowError> {
        let rows: Vec<&Row> = idx.iter().map(|&i| &self.rows[i as usize]).collect();
        let uuids = |get: fn(&Row) -> &[u8; 16]| -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(FixedSizeBinaryArray::try_from_iter(
                rows.iter().map(|r| get(r)),
            )?))
        };
        let decimal = |i: usize| -> Result<ArrayRef, ArrowError> {
            let ty = DECIMALS[i].1;
            Ok(Arc::new(
                Decimal128Array::from_iter_values(rows.iter().map(|r| i128::from(r.decimals[i])))
                    .with_precision_and_scale(ty.precision, ty.scale)?,
            ))
        };
        let mut columns: Vec<ArrayRef> = vec![
            uuids(|r| &r.telemetry_id)?,
            uuids(|r| &r.procedure_id)?,
            uuids(|r| &r.robot_id)?,
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.seq))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.timestamp))
                    .with_timezone("UTC"),
            ),
        ];
        for i in 0..4 {
            columns.push(decimal(i)?);
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| self.tools[r.tool as usize].as_str()),
        )));
        for i in 4..13 {
            columns.push(decimal(i)?);
        }
        let batch = RecordBatch::try_new(telemetry_schema(), columns)?;
        let min_timestamp = rows.iter().map(|r| r.timestamp).min().unwrap_or_default();
        let max_timestamp = rows.iter().map(|r| r.timestamp).max().unwrap_or_default();
        Ok(HourBatch {
            hour,
            batch,
            min_timestamp,
            max_timestamp,
        })
    }

    /// Empties the buffer after a durable flush (keeps its allocations for the next one).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.first_offset = None;
        self.last_offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use bytes::Bytes;
    use surgstream_proto::time::MICROS_PER_HOUR;

    const NOW: i64 = 1_795_700_700_000_000; // 2026-11-26T13:45:00Z

    fn frame(proc_byte: u8, seq: u64, ts: i64) -> TelemetryFrame {
        TelemetryFrame {
            telemetry_id: Bytes::from(vec![seq as u8; 16]),
            procedure_id: Bytes::from(vec![proc_byte; 16]),
            robot_id: Bytes::from(vec![1u8; 16]),
            seq,
            timestamp: ts,
            arm_position_x: 12.34567,
            tool_type: "needle_driver".into(),
            camera_zoom: 2.5,
            ..Default::default()
        }
    }

    #[test]
    fn push_encoded_buffers_what_push_record_does_and_names_undecodable_records_so() {
        use surgstream_proto::v1::TelemetryBatch;
        let h = NOW - NOW % MICROS_PER_HOUR;
        let batch = TelemetryBatch {
            frames: vec![frame(3, 0, h + 1), frame(3, 1, h + 2)],
        };
        let bytes = surgstream_proto::encode_batch(&batch);
        let (mut a, mut b) = (FrameBuffer::new(), FrameBuffer::new());
        a.push_record(5, &batch.frames, NOW).expect("valid");
        let pushed = b.push_encoded(5, &bytes, NOW).expect("valid");
        assert_eq!(
            pushed,
            Pushed {
                frames: 2,
                newest: h + 2,
                oldest: h + 1,
            }
        );
        assert_eq!(
            format!("{:?}", a.to_hour_batches().expect("batches")),
            format!("{:?}", b.to_hour_batches().expect("batches"))
        );

        // A first frame that fails its checks, then bytes that do not decode: prost refuses the
        // whole record as undecodable before any check, and so does the in-place reader.
        let mut bad = frame(3, 2, h + 3);
        bad.robot_id = Bytes::from(vec![1u8; 5]);
        let mut damaged =
            surgstream_proto::encode_batch(&TelemetryBatch { frames: vec![bad] }).to_vec();
        damaged.extend([0x0a, 0x09, 0x01]);
        let e = b.push_encoded(6, &damaged, NOW).expect_err("undecodable");
        assert_eq!(e.reason(), "undecodable", "{e}");
        assert_eq!(b.rows(), 2, "nothing of a refused record is buffered");
        assert_eq!(b.offsets(), Some((5, 6)), "its offset is covered");
        // Without the damage the frame's own check names the reason.
        damaged.truncate(damaged.len() - 3);
        let e = b.push_encoded(7, &damaged, NOW).expect_err("bad uuid");
        assert_eq!(e.reason(), "bad_uuid", "{e}");
    }

    #[test]
    fn splits_by_hour_and_sorts_by_procedure_then_time() {
        let mut b = FrameBuffer::new();
        let h = NOW - NOW % MICROS_PER_HOUR;
        b.push_record(10, &[frame(2, 1, h + 5), frame(2, 0, h - 5)], NOW)
            .expect("valid");
        b.push_record(11, &[frame(1, 7, h + 9), frame(1, 6, h + 1)], NOW)
            .expect("valid");
        assert_eq!(b.rows(), 4);
        assert_eq!(b.offsets(), Some((10, 11)));
        let hours = b.to_hour_batches().expect("builds");
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].batch.num_rows(), 1);
        assert_eq!(hours[0].max_timestamp, h - 5);
        let later = &hours[1].batch;
        let seq = later
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("seq");
        assert_eq!(seq.values().to_vec(), vec![6, 7, 1]);
        let x = later
            .column(5)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .expect("x");
        assert_eq!(x.value_as_string(0), "12.3457");
        assert_eq!(hours[1].min_timestamp, h + 1);
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn an_invalid_frame_rejects_the_whole_record_and_keeps_its_offset() {
        let mut b = FrameBuffer::new();
        let mut bad = frame(1, 3, NOW);
        bad.force_feedback_z = f64::NAN;
        let err = b
            .push_record(5, &[frame(1, 2, NOW), bad], NOW)
            .expect_err("NaN rejected");
        assert_eq!(err.reason(), "non_finite_value");
        assert_eq!(
            err.to_string(),
            "frame seq 3: column force_feedback_z: NaN is not a finite number"
        );
        assert_eq!(b.rows(), 0);
        assert_eq!(b.offsets(), Some((5, 5)));
    }

    #[test]
    fn rejects_what_the_columns_cannot_hold() {
        let mut b = FrameBuffer::new();
        let mut f = frame(1, 0, NOW);
        f.camera_zoom = 100.0;
        assert_eq!(
            b.push_record(0, &[f], NOW).expect_err("overflow").reason(),
            "decimal_overflow"
        );
        let f = frame(1, 0, NOW + 2 * MAX_FUTURE_MICROS);
        assert_eq!(
            b.push_record(1, &[f], NOW).expect_err("future").reason(),
            "timestamp_out_of_range"
        );
        let f = frame(1, 0, 0);
        assert_eq!(
            b.push_record(2, &[f], NOW).expect_err("1970").reason(),
            "timestamp_out_of_range"
        );
        let mut f = frame(1, 0, NOW);
        f.robot_id = Bytes::from_static(b"short");
        let e = b.push_record(3, &[f], NOW).expect_err("uuid");
        assert_eq!(
            e.to_string(),
            "frame seq 0: field robot_id must be a 16-byte UUID, got 5 bytes"
        );
        let mut f = frame(1, 0, NOW);
        f.tool_type = "x".repeat(51);
        assert_eq!(
            b.push_record(4, &[f], NOW).expect_err("tool").reason(),
            "tool_type_too_long"
        );
        let e = b
            .push_record(5, &[frame(1, 0, NOW), frame(2, 1, NOW)], NOW)
            .expect_err("mixed");
        assert_eq!(e.reason(), "mixed_procedures");
        assert_eq!(b.offsets(), Some((0, 5)));
        assert_eq!(b.rows(), 0);
        assert!(b.to_hour_batches().expect("empty").is_empty());
    }

    #[test]
    fn values_at_the_edge_of_each_limit_are_accepted_and_one_past_it_refused() {
        let mut b = FrameBuffer::new();
        // The sane window includes both its ends, to the microsecond.
        b.push_record(0, &[frame(1, 0, MIN_SANE_TIMESTAMP)], NOW)
            .expect("2000-01-01T00:00:00Z itself");
        b.push_record(1, &[frame(1, 1, NOW + MAX_FUTURE_MICROS)], NOW)
            .expect("now + 1 day itself");
        for (offset, ts) in [
            (2, MIN_SANE_TIMESTAMP - 1),
            (3, NOW + MAX_FUTURE_MICROS + 1),
        ] {
            let e = b
                .push_record(offset, &[frame(1, 2, ts)], NOW)
                .expect_err("one µs outside");
            assert_eq!(e.reason(), "timestamp_out_of_range", "{e}");
        }
        // VARCHAR(50) takes 50 bytes.
        let mut f = frame(1, 3, NOW);
        f.tool_type = "x".repeat(TOOL_TYPE_MAX);
        b.push_record(4, &[f], NOW)
            .expect("a tool name of 50 bytes");
        assert_eq!(b.rows(), 3);
    }

    #[test]
    fn a_record_counts_its_own_frames_and_the_buffer_its_bytes() {
        let h = NOW - NOW % MICROS_PER_HOUR;
        let mut b = FrameBuffer::new();
        assert_eq!(b.bytes(), 0);
        let n = b
            .push_record(0, &[frame(1, 0, h + 1), frame(1, 1, h + 2)], NOW)
            .expect("valid");
        assert_eq!(n, 2);
        // A second record on a buffer that already holds frames: its own three, not five.
        let batch = surgstream_proto::v1::TelemetryBatch {
            frames: vec![frame(2, 0, h + 3), frame(2, 1, h + 5), frame(2, 2, h + 4)],
        };
        let pushed = b
            .push_encoded(1, &surgstream_proto::encode_batch(&batch), NOW)
            .expect("valid");
        assert_eq!(
            pushed,
            Pushed {
                frames: 3,
                newest: h + 5,
                oldest: h + 3,
            }
        );
        assert_eq!(b.rows(), 5);
        // Fixed width: 176 bytes a frame (what the memory limit is counted in).
        assert_eq!(b.bytes(), 5 * 176);
    }

    #[test]
    fn a_buffer_with_only_a_dead_lettered_record_still_has_an_offset_to_commit() {
        let mut b = FrameBuffer::new();
        assert!(b.is_empty());
        assert_eq!(b.offsets(), None);
        b.note_offset(7);
        assert!(!b.is_empty(), "offset 7 must still be committed");
        assert_eq!(b.rows(), 0);
        assert_eq!(b.offsets(), Some((7, 7)));
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.offsets(), None);
    }
}
