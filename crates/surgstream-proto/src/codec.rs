//! Encoding and decoding of record values, with errors that say what was wrong.

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::v1::{Event, TelemetryBatch};

/// Why bytes from the wire could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("cannot decode {message}: {source}")]
    Decode {
        /// Which message was expected.
        message: &'static str,
        /// prost's description of the failure.
        #[source]
        source: prost::DecodeError,
    },
    /// The bytes are not a valid protobuf encoding of the expected message (found by the
    /// in-place reader, which says where).
    #[error("cannot decode {message}: {reason} at byte {at}")]
    Malformed {
        /// Which message was expected.
        message: &'static str,
        /// What was wrong.
        reason: &'static str,
        /// Byte offset in the record value.
        at: usize,
    },
    /// A UUID field did not hold exactly 16 bytes.
    #[error("field {field} must be a 16-byte UUID, got {len} bytes")]
    BadUuid {
        /// The field's name.
        field: &'static str,
        /// The length found.
        len: usize,
    },
    /// A telemetry batch with no frames.
    #[error("telemetry batch holds no frames")]
    EmptyBatch,
    /// An event without a body.
    #[error("event has no body")]
    NoBody,
}

/// Encodes a telemetry batch into a fresh buffer.
pub fn encode_batch(batch: &TelemetryBatch) -> Bytes {
    let mut buf = BytesMut::with_capacity(batch.encoded_len());
    // Encoding into a buffer with enough capacity cannot fail.
    batch.encode_raw(&mut buf);
    buf.freeze()
}

/// Encodes an event into a fresh buffer.
pub fn encode_event(event: &Event) -> Bytes {
    let mut buf = BytesMut::with_capacity(event.encoded_len());
    event.encode_raw(&mut buf);
    buf.freeze()
}

/// Decodes a telemetry record value. An empty batch is an error: a producer never sends one.
pub fn decode_batch(bytes: &[u8]) -> Result<TelemetryBatch, CodecError> {
    let batch = TelemetryBatch::decode(bytes).map_err(|source| CodecError::Decode {
        message: "surgstream.v1.TelemetryBatch",
        source,
    })?;
    if batch.frames.is_empty() {
        return Err(CodecError::EmptyBatch);
    }
    Ok(batch)
}

/// Decodes an event record value. An event without a body is an error.
pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    let event = Event::decode(bytes).map_err(|source| CodecError::Decode {
        message: "surgstream.v1.Event",
        source,
    })?;
    if event.body.is_none() {
        return Err(CodecError::NoBody);
    }
    Ok(event)
}

/// Reads a UUID field, which must hold exactly 16 bytes.
pub fn uuid16(field: &'static str, bytes: &[u8]) -> Result<[u8; 16], CodecError> {
    bytes.try_into().map_err(|_| CodecError::BadUuid {
        field,
        len: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{TelemetryFrame, event};
    use proptest::prelude::*;

    fn frame(seq: u64, x: f64, tool: String) -> TelemetryFrame {
        TelemetryFrame {
            telemetry_id: Bytes::from(vec![seq as u8; 16]),
            procedure_id: Bytes::from(vec![7u8; 16]),
            robot_id: Bytes::from(vec![9u8; 16]),
            seq,
            timestamp: 1_700_000_000_000_000i64.wrapping_add(seq as i64),
            arm_position_x: x,
            tool_type: tool,
            ..Default::default()
        }
    }

    proptest! {
        #[test]
        fn batch_round_trips(seqs in proptest::collection::vec(any::<u64>(), 1..50),
                             x in -1.0e6f64..1.0e6, tool in "[a-z_]{0,20}") {
            let batch = TelemetryBatch { frames: seqs.iter().map(|s| frame(*s, x, tool.clone())).collect() };
            let bytes = encode_batch(&batch);
            let back = decode_batch(&bytes).expect("decodes");
            prop_assert_eq!(back, batch);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batch(&bytes);
            let _ = decode_event(&bytes);
        }
    }

    #[test]
    fn event_round_trips() {
        let ev = Event {
            event_id: Bytes::from(vec![1u8; 16]),
            occurred_at: 42,
            body: Some(event::Body::ProcedureStarted(crate::v1::ProcedureStarted {
                procedure_id: Bytes::from(vec![2u8; 16]),
                robot_id: Bytes::from(vec![3u8; 16]),
                start_time: 43,
            })),
        };
        assert_eq!(decode_event(&encode_event(&ev)).expect("decodes"), ev);
    }

    #[test]
    fn empty_and_garbage_are_errors_with_a_reason() {
        let empty = decode_batch(&[]).expect_err("empty batch is rejected");
        assert_eq!(empty.to_string(), "telemetry batch holds no frames");
        let garbage = decode_batch(&[0xff, 0xff, 0xff]).expect_err("garbage is rejected");
        assert!(
            garbage
                .to_string()
                .starts_with("cannot decode surgstream.v1.TelemetryBatch")
        );
        let no_body = decode_event(&encode_event(&Event::default())).expect_err("no body");
        assert_eq!(no_body.to_string(), "event has no body");
    }

    #[test]
    fn uuid16_checks_length() {
        assert!(uuid16("robot_id", &[0u8; 16]).is_ok());
        let e = uuid16("robot_id", &[0u8; 3]).expect_err("short");
        assert_eq!(
            e.to_string(),
            "field robot_id must be a 16-byte UUID, got 3 bytes"
        );
    }
}
