//! `surgstream sim`: a simulated fleet of surgical robots.
//!
//! [`Simulation`] is a deterministic generator (same seed and options → the same records, byte for
//! byte): robots across facilities, their maintenance history, procedures that are scheduled,
//! start, stream telemetry and end, and an outcome for every procedure that ran. Records come out
//! in time order; [`kafka::run`] paces them in wall-clock time (or as fast as the broker takes
//! them) and sends them to Kafka with an idempotent producer; [`file::write`] writes the same
//! records to a file instead, so that the generator can be tested and benchmarked alone.

pub mod catalog;
pub mod file;
mod generator;
pub mod kafka;
mod plan;
mod progress;
#[cfg(test)]
mod realism;
mod report;
mod telemetry;

pub use generator::{Payload, Profile, Record, SimConfig, SimError, Simulation};
