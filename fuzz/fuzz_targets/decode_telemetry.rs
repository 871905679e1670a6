//! Any bytes on the telemetry topic: the decoder and the frame checks either accept them or
//! say why (a dead letter); they never panic. What they accept must make a valid Arrow batch
//! and Parquet file, as the ingestor's flush would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surgstream_lake::{FrameBuffer, HourKey, encode_parquet, writer_properties};

/// 2026-11-27T00:00:00Z in µs: a fixed "now" keeps runs reproducible.
const NOW: i64 = 1_795_737_600_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = surgstream_proto::decode_batch(data) else {
        return;
    };
    let mut buffer = FrameBuffer::new();
    if buffer.push_record(0, &batch.frames, NOW).is_err() {
        return;
    }
    let hours = buffer
        .to_hour_batches()
        .expect("validated frames always make an Arrow batch");
    for h in hours {
        assert!(h.min_timestamp <= h.max_timestamp);
        assert_eq!(h.hour, HourKey::of(h.min_timestamp), "a file holds one hour");
        assert_eq!(h.hour, HourKey::of(h.max_timestamp), "a file holds one hour");
        encode_parquet(&h.batch, writer_properties()).expect("validated frames always encode");
    }
});
