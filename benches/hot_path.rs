//! Hot path: simulated frames → protobuf → validated buffer → sorted Arrow → Parquet bytes, each
//! stage alone and together; the Parquet encoder per codec (the output size of each is printed);
//! the raw archive's copy, Arrow and Parquet per codec; and a whole flush into `memory://` object
//! storage.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::basic::{Compression, ZstdLevel};
use surgstream_lake::raw::{
    RawBuffer, RawRecord, TimestampType, encode_raw_with, raw_writer_properties,
};
use surgstream_lake::{FrameBuffer, Lake, LakePath, encode_parquet, writer_properties};
use surgstream_proto::v1::TelemetryBatch;
use surgstream_sim::{Payload, SimConfig, Simulation};

fn batches() -> Vec<TelemetryBatch> {
    // Ten operating rooms at 1 kHz, a 2-hour case in about 10 s.
    let mut cfg = SimConfig::live(10, 1, START);
    cfg.procedures = Some(10);
    cfg.hz = 1_000;
    cfg.speed = 720.0;
    Simulation::new(cfg)
        .map(|s| {
            s.filter_map(|r| match r.payload {
                Payload::Telemetry(b) => Some(b),
                Payload::Event(_) => None,
            })
            .collect()
        })
        .unwrap_or_default()
}

/// A fixed start (2024-11-26T00:00:00Z), as in benches/generate.rs: the same frames, in the same
/// hours, whichever day the bench runs.
const START: i64 = 1_732_579_200_000_000;

/// Reads and validates every record into a fresh buffer in place, as the ingestor does. Every
/// simulated record is valid: a refusal would mean the bench times the reject path.
fn fill(encoded: &[bytes::Bytes], now: i64) -> FrameBuffer {
    let mut buf = FrameBuffer::new();
    for (i, x) in encoded.iter().enumerate() {
        if let Err(e) = buf.push_encoded(i as i64, x, now) {
            panic!("the bench's record {i} was refused: {e}");
        }
    }
    buf
}

/// The same through prost's owned structs (the ingestor's path until 2026-12-02).
fn fill_prost(encoded: &[bytes::Bytes], now: i64) -> FrameBuffer {
    let mut buf = FrameBuffer::new();
    for (i, x) in encoded.iter().enumerate() {
        let batch = surgstream_proto::decode_batch(x).expect("the bench's records decode");
        if let Err(e) = buf.push_record(i as i64, &batch.frames, now) {
            panic!("the bench's record {i} was refused: {e}");
        }
    }
    buf
}

/// Before anything is timed: every stage takes every frame, so no stage's number is the time of
/// refusing records (the throughput figures count `frames`).
fn accepts_every_frame(encoded: &[bytes::Bytes], frames: u64, now: i64) {
    assert!(frames > 0, "the simulation produced no frames");
    let in_place: usize = encoded
        .iter()
        .map(|x| {
            surgstream_proto::BatchFrames::new(x)
                .filter(Result::is_ok)
                .count()
        })
        .sum();
    assert_eq!(in_place as u64, frames, "in-place decoding lost frames");
    assert_eq!(
        fill(encoded, now).rows() as u64,
        frames,
        "buffer (in place)"
    );
    assert_eq!(
        fill_prost(encoded, now).rows() as u64,
        frames,
        "buffer (prost)"
    );
    let hours = fill(encoded, now)
        .to_hour_batches()
        .expect("the bench's frames make Arrow batches");
    let rows: usize = hours.iter().map(|h| h.batch.num_rows()).sum();
    assert_eq!(rows as u64, frames, "hour batches");
    for h in &hours {
        encode_parquet(&h.batch, writer_properties()).expect("the bench's batches encode");
    }
}

fn hot_path(c: &mut Criterion) {
    let batches = batches();
    let frames: u64 = batches.iter().map(|b| b.frames.len() as u64).sum();
    let encoded: Vec<_> = batches.iter().map(surgstream_proto::encode_batch).collect();
    let bytes: u64 = encoded.iter().map(|b| b.len() as u64).sum();
    // The ingestor's clock two hours after the start: every frame is in its past.
    let now = START + 7_200_000_000;
    accepts_every_frame(&encoded, frames, now);

    let mut g = c.benchmark_group("telemetry");
    g.throughput(Throughput::Elements(frames));
    g.bench_function("encode_protobuf", |b| {
        b.iter(|| {
            batches
                .iter()
                .map(|x| surgstream_proto::encode_batch(black_box(x)).len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("decode_protobuf", |b| {
        b.iter(|| {
            encoded
                .iter()
                .filter_map(|x| surgstream_proto::decode_batch(black_box(x)).ok())
                .count()
        })
    });
    g.bench_function("decode_in_place", |b| {
        b.iter(|| {
            encoded
                .iter()
                .map(|x| surgstream_proto::BatchFrames::new(black_box(x)).count())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(frames));
    g.bench_function("decode_prost_validate_buffer", |b| {
        b.iter(|| fill_prost(&encoded, now).rows())
    });
    g.bench_function("decode_in_place_validate_buffer", |b| {
        b.iter(|| fill(&encoded, now).rows())
    });
    g.bench_function("decode_to_arrow_to_parquet", |b| {
        b.iter(|| {
            let buf = fill(&encoded, now);
            let mut total = 0;
            for h in buf.to_hour_batches().expect("Arrow batches") {
                total += encode_parquet(&h.batch, writer_properties())
                    .expect("Parquet")
                    .len();
            }
            total
        })
    });
    g.bench_function("decode_to_arrow", |b| {
        b.iter(|| {
            let buf = fill(&encoded, now);
            buf.to_hour_batches().expect("Arrow batches").len()
        })
    });

    // Parquet encoding alone, per codec, on the same sorted hour batches.
    let hours = fill(&encoded, now)
        .to_hour_batches()
        .expect("Arrow batches");
    for (name, codec) in [
        (
            "zstd1",
            Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
        ),
        (
            "zstd3",
            Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
        ),
        ("snappy", Compression::SNAPPY),
        ("uncompressed", Compression::UNCOMPRESSED),
    ] {
        let props = writer_properties()
            .into_builder()
            .set_compression(codec)
            .build();
        let size: usize = hours
            .iter()
            .map(|h| {
                encode_parquet(&h.batch, props.clone())
                    .expect("Parquet")
                    .len()
            })
            .sum();
        eprintln!(
            "parquet {name}: {size} bytes for {frames} frames ({:.1} B/frame)",
            size as f64 / frames as f64
        );
        g.bench_function(format!("parquet_encode_{name}"), |b| {
            b.iter(|| {
                hours
                    .iter()
                    .map(|h| {
                        encode_parquet(black_box(&h.batch), props.clone())
                            .expect("Parquet")
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }

    // The raw archive's share of a flush: the records kept as they came (one copy into the
    // partition's arena), turned into Arrow, and encoded per codec.
    g.throughput(Throughput::Elements(frames));
    let keep = |encoded: &[bytes::Bytes]| {
        let mut raw = RawBuffer::new();
        for (i, x) in encoded.iter().enumerate() {
            raw.push(
                RawRecord {
                    offset: i as i64,
                    timestamp: Some((START / 1000, TimestampType::CreateTime)),
                    key: Some(&x[..16.min(x.len())]),
                    value: Some(x),
                },
                [
                    ("content-type", Some(&b"application/x-protobuf"[..])),
                    ("schema", Some(&b"surgstream.v1.TelemetryBatch"[..])),
                ],
                START / 1000,
            );
        }
        raw
    };
    g.bench_function("raw_keep", |b| b.iter(|| keep(black_box(&encoded)).bytes()));
    let raw = keep(&encoded);
    g.bench_function("raw_to_arrow", |b| {
        b.iter(|| raw.to_hour_batches(0).expect("Arrow").len())
    });
    let raw_hours = raw.to_hour_batches(0).expect("Arrow");
    for (name, codec) in [
        (
            "zstd1",
            Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
        ),
        ("lz4_raw", Compression::LZ4_RAW),
        ("snappy", Compression::SNAPPY),
        ("uncompressed", Compression::UNCOMPRESSED),
    ] {
        let props = raw_writer_properties()
            .into_builder()
            .set_compression(codec)
            .build();
        let size: usize = raw_hours
            .iter()
            .map(|h| {
                encode_raw_with(&h.batch, props.clone())
                    .expect("Parquet")
                    .len()
            })
            .sum();
        eprintln!(
            "raw {name}: {size} bytes for {frames} frames in {} records of {bytes} bytes ({:.1} B/frame)",
            encoded.len(),
            size as f64 / frames as f64
        );
        g.bench_function(format!("raw_encode_{name}"), |b| {
            b.iter(|| {
                raw_hours
                    .iter()
                    .map(|h| {
                        encode_raw_with(black_box(&h.batch), props.clone())
                            .expect("Parquet")
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }

    // A whole flush: protobuf → Arrow → Parquet → object store (memory://), one file per hour.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let lake = Lake::open("memory://").expect("memory lake");
    g.bench_function("flush_to_memory_store", |b| {
        b.iter(|| {
            let buf = fill(&encoded, now);
            let (first, last) = buf.offsets().unwrap_or_default();
            rt.block_on(async {
                let mut written = 0;
                for h in buf.to_hour_batches().expect("Arrow batches") {
                    let path = LakePath {
                        hour: h.hour,
                        partition: 0,
                        first_offset: first,
                        last_offset: last,
                    };
                    written += lake
                        .write(&path, &h.batch)
                        .await
                        .expect("memory store")
                        .bytes;
                }
                written
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = hot_path
}
criterion_main!(benches);
