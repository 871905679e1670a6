//! The telemetry lake.
//!
//! - [`schema`] — the Arrow schema of `procedure_telemetry`, with the data model's names and types.
//! - [`FrameBuffer`] — validated frames of one Kafka partition, turned into one sorted Arrow batch
//!   per event-time hour.
//! - [`LakePath`] — `procedure_telemetry/date=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet`.
//! - [`Lake`] — Parquet encoding and object storage behind a URL.
//! - [`compact`] — small files merged into one sorted month file.
//! - [`raw`] — the raw record archive: every consumed record as it came, by Kafka hour.

mod buffer;
pub mod compact;
mod path;
pub mod raw;
pub mod schema;
mod store;

pub use buffer::{FrameBuffer, FrameError, HourBatch, Pushed};
pub use path::{HourKey, LakePath, TABLE};
pub use store::{
    Lake, LakeError, WrittenFile, encode_parquet, read_keys, read_timestamps, writer_properties,
};
