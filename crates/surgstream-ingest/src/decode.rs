//! Decoding a record's bytes, shared by the ingestor and `verify`: the `schema` header check,
//! and the prost decoders of a telemetry batch and an event, each failing with the reason a
//! dead letter carries.

use surgstream_proto::{headers, v1::Event};

/// `Err((reason, message))` when a `schema` header is present and names another message; a
/// record without the header is accepted if it decodes.
pub(crate) fn check_schema(
    found: Option<&[u8]>,
    expected: &str,
) -> Result<(), (&'static str, String)> {
    match found {
        Some(s) if s != expected.as_bytes() => Err((
            "unknown_schema",
            format!(
                "schema header {:?} is not {expected}",
                String::from_utf8_lossy(s)
            ),
        )),
        _ => Ok(()),
    }
}

/// A telemetry record decoded by prost, or why it is dead-lettered (before the frames' own
/// checks, which the buffer makes). `verify` reads the source topic with this decoder, not the
/// ingestor's in-place one, so that a fault in either shows as a discrepancy.
pub(crate) fn decode_telemetry(
    schema: Option<&[u8]>,
    payload: &[u8],
) -> Result<surgstream_proto::v1::TelemetryBatch, (&'static str, String)> {
    check_schema(schema, headers::SCHEMA_TELEMETRY_BATCH)?;
    surgstream_proto::decode_batch(payload).map_err(|e| ("undecodable", e.to_string()))
}

/// An event record as the ingestor reads it: the event, or why it is dead-lettered.
pub(crate) fn decode_event(
    schema: Option<&[u8]>,
    payload: &[u8],
) -> Result<Event, (&'static str, String)> {
    check_schema(schema, headers::SCHEMA_EVENT)?;
    surgstream_proto::decode_event(payload).map_err(|e| ("undecodable", e.to_string()))
}
