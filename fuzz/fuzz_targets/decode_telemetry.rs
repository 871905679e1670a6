//! Any bytes on the telemetry topic: the decoders and the frame checks either accept them or
//! say why (a dead letter); they never panic. The ingestor's in-place reader
//! (`FrameBuffer::push_encoded`) must accept exactly what prost's decoder followed by
//! `push_record` accepts, with the same frames. What they accept must make a valid Arrow batch
//! and Parquet file, as the ingestor's flush would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surgstream_lake::{FrameBuffer, HourKey, encode_parquet, writer_properties};
use surgstream_proto::{BatchFrames, FrameView};

/// 2026-11-27T00:00:00Z in µs: a fixed "now" keeps runs reproducible.
const NOW: i64 = 1_795_737_600_000_000;

fuzz_target!(|data: &[u8]| {
    let prost = surgstream_proto::decode_batch(data).ok();
    let views: Option<Vec<FrameView<'_>>> = BatchFrames::new(data).collect::<Result<_, _>>().ok();
    assert_eq!(prost.is_some(), views.is_some(), "prost and the in-place reader disagree");
    let mut in_place = FrameBuffer::new();
    let pushed = in_place.push_encoded(0, data, NOW);
    let (Some(batch), Some(views)) = (prost, views) else {
        assert_eq!(
            pushed.map_err(|e| e.reason()),
            Err("undecodable"),
            "push_encoded took, or refused for another reason, what prost refuses"
        );
        return;
    };
    assert_eq!(batch.frames.len(), views.len());
    for (a, b) in batch.frames.iter().zip(&views) {
        // Debug output compares NaNs by their printing, which is what a reader would see.
        assert_eq!(format!("{:?}", FrameView::from(a)), format!("{b:?}"));
    }
    let mut buffer = FrameBuffer::new();
    let owned = buffer.push_record(0, &batch.frames, NOW);
    assert_eq!(
        owned.as_ref().map_err(|e| e.reason()),
        pushed.as_ref().map(|p| &p.frames).map_err(|e| e.reason()),
        "push_record and push_encoded disagree (frames, or the dead letter's reason)"
    );
    if owned.is_err() {
        return;
    }
    let hours = buffer
        .to_hour_batches()
        .expect("validated frames always make an Arrow batch");
    assert_eq!(
        format!("{hours:?}"),
        format!("{:?}", in_place.to_hour_batches().expect("the same frames")),
        "the two paths buffered different rows"
    );
    for h in hours {
        assert!(h.min_timestamp <= h.max_timestamp);
        assert_eq!(h.hour, HourKey::of(h.min_timestamp), "a file holds one hour");
        assert_eq!(h.hour, HourKey::of(h.max_timestamp), "a file holds one hour");
        encode_parquet(&h.batch, writer_properties()).expect("validated frames always encode");
    }
});
