//! Telemetry frames read in place from a record's bytes: the ingestor's hot path.
//!
//! [`decode_batch`](crate::decode_batch) builds prost's owned structs — a `Vec` of frames, an
//! allocation and a copy for each of a frame's three UUIDs and its tool name — only for the
//! ingestor to copy every field once more into its column buffers. [`BatchFrames`] walks the
//! protobuf wire format of a `TelemetryBatch` and yields each frame as a [`FrameView`] whose
//! byte and string fields borrow the record: nothing is allocated. It accepts and refuses
//! exactly the bytes prost does (the tests and the `decode_telemetry` fuzz target compare the
//! two on arbitrary input): unknown fields and groups are skipped, a known field with the wrong
//! wire type, a truncated or over-long varint, a length past the end, a tag of 0, an
//! unmatched end-group, nesting deeper than prost's limit and a tool name that is not UTF-8 are
//! errors; the last occurrence of a field wins.

use crate::codec::CodecError;
use crate::v1::TelemetryFrame;

/// prost's recursion limit: how deeply messages and groups may nest.
const RECURSION_LIMIT: u32 = 100;

/// One telemetry frame, borrowing its UUIDs and tool name from the encoded record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[allow(missing_docs)]
pub struct FrameView<'a> {
    pub telemetry_id: &'a [u8],
    pub procedure_id: &'a [u8],
    pub robot_id: &'a [u8],
    pub seq: u64,
    pub timestamp: i64,
    pub arm_position_x: f64,
    pub arm_position_y: f64,
    pub arm_position_z: f64,
    pub arm_rotation: f64,
    pub tool_type: &'a str,
    pub grip_pressure: f64,
    pub tremor_compensation: f64,
    pub camera_zoom: f64,
    pub camera_angle: f64,
    pub force_feedback_x: f64,
    pub force_feedback_y: f64,
    pub force_feedback_z: f64,
    pub system_temperature: f64,
    pub power_consumption: f64,
}

impl<'a> From<&'a TelemetryFrame> for FrameView<'a> {
    fn from(f: &'a TelemetryFrame) -> Self {
        Self {
            telemetry_id: &f.telemetry_id,
            procedure_id: &f.procedure_id,
            robot_id: &f.robot_id,
            seq: f.seq,
            timestamp: f.timestamp,
            arm_position_x: f.arm_position_x,
            arm_position_y: f.arm_position_y,
            arm_position_z: f.arm_position_z,
            arm_rotation: f.arm_rotation,
            tool_type: &f.tool_type,
            grip_pressure: f.grip_pressure,
            tremor_compensation: f.tremor_compensation,
            camera_zoom: f.camera_zoom,
            camera_angle: f.camera_angle,
            force_feedback_x: f.force_feedback_x,
            force_feedback_y: f.force_feedback_y,
            force_feedback_z: f.force_feedback_z,
            system_temperature: f.system_temperature,
            power_consumption: f.power_consumption,
        }
    }
}

/// The frames of an encoded `TelemetryBatch`, in order; after an error, nothing more. An
/// empty batch yields [`CodecError::EmptyBatch`], as [`decode_batch`](crate::decode_batch)
/// refuses it.
#[derive(Debug, Clone)]
pub struct BatchFrames<'a> {
    r: Reader<'a>,
    yielded: bool,
    done: bool,
}

impl<'a> BatchFrames<'a> {
    /// Frames of `bytes`, a `TelemetryBatch` record value.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            r: Reader {
                buf: bytes,
                pos: 0,
                end: bytes.len(),
            },
            yielded: false,
            done: false,
        }
    }

    fn next_frame(&mut self) -> Result<Option<FrameView<'a>>, Malformed> {
        while self.r.pos < self.r.end {
            let (tag, wire) = self.r.key()?;
            if tag == 1 {
                if wire != LEN {
                    return Err(self.r.err("field 1 (frames) with the wrong wire type"));
                }
                let body = self.r.len_delimited()?;
                return frame(body, self.r.buf).map(Some);
            }
            self.r.skip(tag, wire, RECURSION_LIMIT)?;
        }
        Ok(None)
    }
}

impl<'a> Iterator for BatchFrames<'a> {
    type Item = Result<FrameView<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_frame() {
            Ok(Some(f)) => {
                self.yielded = true;
                Some(Ok(f))
            }
            Ok(None) => {
                self.done = true;
                (!self.yielded).then_some(Err(CodecError::EmptyBatch))
            }
            Err(m) => {
                self.done = true;
                Some(Err(CodecError::Malformed {
                    message: "surgstream.v1.TelemetryBatch",
                    reason: m.reason,
                    at: m.at,
                }))
            }
        }
    }
}

/// What was wrong, and at which byte of the record.
#[derive(Debug)]
struct Malformed {
    reason: &'static str,
    at: usize,
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const I32: u8 = 5;

/// A cursor over `buf[pos..end]` (positions are the record's, for the error messages).
#[derive(Debug, Clone)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> Malformed {
        Malformed {
            reason,
            at: self.pos,
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, Malformed> {
        // Keys, and most lengths, are one byte.
        if let Some(&b) = self.buf[..self.end].get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf[..self.end].get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint longer than 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 64 bits"))
    }

    fn key(&mut self) -> Result<(u32, u8), Malformed> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| self.err("field key past 32 bits"))?;
        let wire = (key & 7) as u8;
        if wire > I32 {
            return Err(self.err("unknown wire type"));
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(self.err("field number 0"));
        }
        Ok((tag, wire))
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, Malformed> {
        if self.end - self.pos < n {
            return Err(self.err("field runs past the end of its message"));
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }

    fn len_delimited(&mut self) -> Result<std::ops::Range<usize>, Malformed> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.err("length past the address space"))?;
        self.take(len)
    }

    fn fixed64(&mut self) -> Result<u64, Malformed> {
        let r = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[r]);
        Ok(u64::from_le_bytes(b))
    }

    /// Skips an unknown field (a whole group for a start-group), as prost does.
    fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), Malformed> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            I32 => self.take(4).map(drop),
            LEN => self.len_delimited().map(drop),
            START_GROUP => {
                if depth == 0 {
                    return Err(self.err("nested deeper than the recursion limit"));
                }
                loop {
                    if self.pos >= self.end {
                        return Err(self.err("group without its end"));
                    }
                    let (t, w) = self.key()?;
                    if w == END_GROUP {
                        if t != tag {
                            return Err(self.err("end of a group that is not open"));
                        }
                        return Ok(());
                    }
                    self.skip(t, w, depth - 1)?;
                }
            }
            _ => Err(self.err("end of a group that is not open")),
        }
    }
}

/// One `TelemetryFrame` from `buf[body]`.
fn frame<'a>(body: std::ops::Range<usize>, buf: &'a [u8]) -> Result<FrameView<'a>, Malformed> {
    let mut r = Reader {
        buf,
        pos: body.start,
        end: body.end,
    };
    let mut f = FrameView::default();
    while r.pos < r.end {
        let (tag, wire) = r.key()?;
        let expected = match tag {
            1..=3 | 10 => LEN,
            4 | 5 => VARINT,
            6..=9 | 11..=19 => I64,
            _ => {
                // Unknown fields sit one level below the batch.
                r.skip(tag, wire, RECURSION_LIMIT - 1)?;
                continue;
            }
        };
        if wire != expected {
            return Err(r.err("a TelemetryFrame field with the wrong wire type"));
        }
        match tag {
            1 => f.telemetry_id = &buf[r.len_delimited()?],
            2 => f.procedure_id = &buf[r.len_delimited()?],
            3 => f.robot_id = &buf[r.len_delimited()?],
            10 => {
                let at = r.pos;
                f.tool_type =
                    std::str::from_utf8(&buf[r.len_delimited()?]).map_err(|_| Malformed {
                        reason: "tool_type is not UTF-8",
                        at,
                    })?;
            }
            4 => f.seq = r.varint()?,
            // int64: the varint's 64 bits, two's complement.
            5 => f.timestamp = r.varint()? as i64,
            _ => {
                let v = f64::from_bits(r.fixed64()?);
                match tag {
                    6 => f.arm_position_x = v,
                    7 => f.arm_position_y = v,
                    8 => f.arm_position_z = v,
                    9 => f.arm_rotation = v,
                    11 => f.grip_pressure = v,
                    12 => f.tremor_compensation = v,
                    13 => f.camera_zoom = v,
                    14 => f.camera_angle = v,
                    15 => f.force_feedback_x = v,
                    16 => f.force_feedback_y = v,
                    17 => f.force_feedback_z = v,
                    18 => f.system_temperature = v,
                    _ => f.power_consumption = v,
                }
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::TelemetryBatch;
    use proptest::prelude::*;

    /// What prost makes of `bytes`: the frames, or that it refuses them.
    fn prost(bytes: &[u8]) -> Option<TelemetryBatch> {
        crate::decode_batch(bytes).ok()
    }

    fn views(bytes: &[u8]) -> Option<Vec<FrameView<'_>>> {
        BatchFrames::new(bytes).collect::<Result<Vec<_>, _>>().ok()
    }

    /// Both decoders accept the same bytes, with the same frames (NaN compared by bits).
    fn same(bytes: &[u8]) -> Result<(), TestCaseError> {
        let (p, v) = (prost(bytes), views(bytes));
        prop_assert_eq!(
            p.is_some(),
            v.is_some(),
            "accept/refuse differs on {:?}",
            bytes
        );
        if let (Some(p), Some(v)) = (p, v) {
            prop_assert_eq!(p.frames.len(), v.len());
            for (a, b) in p.frames.iter().zip(&v) {
                prop_assert_eq!(format!("{:?}", FrameView::from(a)), format!("{b:?}"));
            }
        }
        Ok(())
    }

    fn frame_strategy() -> impl Strategy<Value = TelemetryFrame> {
        (
            proptest::collection::vec(any::<u8>(), 0..20),
            any::<u64>(),
            any::<i64>(),
            proptest::array::uniform13(any::<f64>()),
            "\\PC{0,12}",
        )
            .prop_map(|(id, seq, timestamp, d, tool)| TelemetryFrame {
                telemetry_id: id.clone().into(),
                procedure_id: id.iter().rev().copied().collect::<Vec<_>>().into(),
                robot_id: id.into(),
                seq,
                timestamp,
                arm_position_x: d[0],
                arm_position_y: d[1],
                arm_position_z: d[2],
                arm_rotation: d[3],
                tool_type: tool,
                grip_pressure: d[4],
                tremor_compensation: d[5],
                camera_zoom: d[6],
                camera_angle: d[7],
                force_feedback_x: d[8],
                force_feedback_y: d[9],
                force_feedback_z: d[10],
                system_temperature: d[11],
                power_consumption: d[12],
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn reads_what_prost_writes(frames in proptest::collection::vec(frame_strategy(), 0..8)) {
            let bytes = crate::encode_batch(&TelemetryBatch { frames });
            same(&bytes)?;
        }

        #[test]
        fn agrees_with_prost_on_damaged_records(
            frames in proptest::collection::vec(frame_strategy(), 1..4),
            cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            truncate in any::<prop::sample::Index>(),
        ) {
            let mut bytes = crate::encode_batch(&TelemetryBatch { frames }).to_vec();
            for (at, b) in cuts {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            same(&bytes)?;
            same(&bytes[..truncate.index(bytes.len() + 1)])?;
        }

        #[test]
        fn agrees_with_prost_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            same(&bytes)?;
        }
    }

    /// Hand-made records for the rules random bytes rarely reach.
    #[test]
    fn agrees_with_prost_on_the_edge_cases() {
        let cases: &[&[u8]] = &[
            // One empty frame; then unknown fields of every wire type around it.
            &[0x0a, 0x00],
            &[
                0x10, 0x05, 0x0a, 0x00, 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
            // A group (field 2) skipped at batch level, and one left open.
            &[0x13, 0x08, 0x01, 0x14, 0x0a, 0x00],
            &[0x13, 0x08, 0x01, 0x0a, 0x00],
            // An end-group with no start; one that closes another field's group.
            &[0x14, 0x0a, 0x00],
            &[0x13, 0x1c, 0x0a, 0x00],
            // Field number 0; wire types 6 and 7.
            &[0x02, 0x00],
            &[0x0e],
            &[0x0f],
            // frames as a varint.
            &[0x08, 0x01],
            // A frame: seq twice (the last wins), timestamp negative (10-byte varint).
            &[
                0x0a, 0x10, 0x20, 0x01, 0x20, 0x02, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0x01,
            ],
            // A varint whose 10th byte is over 1, and one with 11 bytes.
            &[
                0x0a, 0x0b, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            &[
                0x0a, 0x0c, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x01,
            ],
            // A field key past 32 bits.
            &[0x80, 0x80, 0x80, 0x80, 0x10, 0x00],
            // tool_type not UTF-8; a double field as a varint; a frame past the end.
            &[0x0a, 0x03, 0x52, 0x01, 0xff],
            &[0x0a, 0x02, 0x30, 0x01],
            &[0x0a, 0x05, 0x00],
        ];
        for bytes in cases {
            same(bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        // Groups (of unknown field 20) nested inside a frame: 50 deep both take, 120 deep both
        // refuse.
        for (depth, ok) in [(50, true), (120, false)] {
            let body: Vec<u8> = [[0xa3, 0x01].repeat(depth), [0xa4, 0x01].repeat(depth)].concat();
            let mut record = vec![0x0a];
            prost::encoding::encode_varint(body.len() as u64, &mut record);
            record.extend(&body);
            same(&record).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(views(&record).is_some(), ok, "{depth} nested groups");
        }
    }

    #[test]
    fn says_where_a_record_is_damaged() {
        let err = BatchFrames::new(&[0x0a, 0x05, 0x00])
            .next()
            .and_then(Result::err)
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "cannot decode surgstream.v1.TelemetryBatch: field runs past the end of its \
                 message at byte 2"
            )
        );
        assert!(matches!(
            BatchFrames::new(&[]).next(),
            Some(Err(CodecError::EmptyBatch))
        ));
    }
}
