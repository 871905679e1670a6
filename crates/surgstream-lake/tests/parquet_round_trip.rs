//! Property: any valid frames, buffered as Kafka records, split into event-time hours, encoded
//! with the lake's writer settings and read back, give exactly the batches that were written —
//! every row once, sorted by (procedure_id, timestamp), each in its own hour.

use std::collections::HashMap;

use arrow::array::{Array, FixedSizeBinaryArray, Int64Array, TimestampMicrosecondArray};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::serialized_reader::ReadOptionsBuilder;
use proptest::prelude::*;
use surgstream_lake::{FrameBuffer, encode_parquet, writer_properties};
use surgstream_proto::time::MICROS_PER_HOUR;
use surgstream_proto::v1::TelemetryFrame;

const NOW: i64 = 1_795_700_700_000_000; // 2026-11-26T13:45:00Z

fn frame() -> impl Strategy<Value = TelemetryFrame> {
    (
        0u8..4,                                // procedure
        0u64..1_000_000,                       // seq
        -3 * MICROS_PER_HOUR..MICROS_PER_HOUR, // timestamp around NOW, over 4 hours
        prop::array::uniform4(-999.9999f64..999.9999),
        prop::array::uniform4(0.0f64..99.99),
        0usize..4,
    )
        .prop_map(|(p, seq, dt, pos, small, tool)| TelemetryFrame {
            telemetry_id: Bytes::from(seq.to_be_bytes().repeat(2)),
            procedure_id: Bytes::from(vec![p; 16]),
            robot_id: Bytes::from(vec![p + 100; 16]),
            seq,
            timestamp: NOW + dt,
            arm_position_x: pos[0],
            arm_position_y: pos[1],
            arm_position_z: pos[2],
            arm_rotation: pos[3],
            grip_pressure: small[0],
            tremor_compensation: small[1],
            camera_zoom: small[2],
            camera_angle: -small[3],
            force_feedback_x: pos[0] / 10.0,
            force_feedback_y: pos[1] / 10.0,
            force_feedback_z: pos[2] / 10.0,
            system_temperature: small[1],
            power_consumption: small[0] * 100.0,
            tool_type: ["grasper", "scissors", "needle_driver", ""][tool].into(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_to_parquet_and_back(frames in prop::collection::vec(frame(), 1..400)) {
        // One Kafka record per procedure, as the simulator keys them.
        let mut by_procedure: HashMap<u8, Vec<TelemetryFrame>> = HashMap::new();
        for f in &frames {
            by_procedure.entry(f.procedure_id[0]).or_default().push(f.clone());
        }
        let mut buffer = FrameBuffer::new();
        for (offset, record) in by_procedure.values().enumerate() {
            buffer.push_record(offset as i64, record, NOW).expect("valid frames");
        }
        let hours = buffer.to_hour_batches().expect("Arrow batches");
        let mut rows = 0;
        for h in &hours {
            let bytes = encode_parquet(&h.batch, writer_properties()).expect("encode");
            let read: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                .expect("Parquet footer")
                .build()
                .expect("reader")
                .collect::<Result<_, _>>()
                .expect("read back");
            let read = arrow::compute::concat_batches(&h.batch.schema(), &read).expect("concat");
            prop_assert_eq!(read.num_rows(), h.batch.num_rows());
            for (i, (a, b)) in read.columns().iter().zip(h.batch.columns()).enumerate() {
                prop_assert_eq!(a.to_data(), b.to_data(), "column {}", i);
            }
            let ids = read.column_by_name("procedure_id").and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>()).expect("procedure_id");
            // The bloom filter on procedure_id (sized for the file's rows) knows every id in it.
            let reader = SerializedFileReader::new_with_options(
                bytes,
                ReadOptionsBuilder::new().with_reader_properties(
                    ReaderProperties::builder().set_read_bloom_filter(true).build(),
                ).build(),
            ).expect("file reader");
            let column = reader.metadata().file_metadata().schema_descr().columns().iter()
                .position(|c| c.name() == "procedure_id").expect("procedure_id column");
            let row_group = reader.get_row_group(0).expect("row group");
            let bloom = row_group.get_column_bloom_filter(column).expect("a bloom filter on procedure_id");
            for i in 0..ids.len() {
                prop_assert!(bloom.check(ids.value(i)), "bloom filter misses row {}", i);
            }
            let ts = read.column_by_name("timestamp").and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>()).expect("timestamp");
            prop_assert!(read.column_by_name("seq").and_then(|c| c.as_any().downcast_ref::<Int64Array>()).is_some());
            for i in 0..read.num_rows() {
                prop_assert_eq!(ts.value(i).div_euclid(MICROS_PER_HOUR), h.hour.hours_since_epoch());
                if i > 0 {
                    prop_assert!((ids.value(i - 1), ts.value(i - 1)) <= (ids.value(i), ts.value(i)), "sorted by (procedure_id, timestamp)");
                }
            }
            rows += read.num_rows();
        }
        prop_assert_eq!(rows, frames.len());
    }
}
