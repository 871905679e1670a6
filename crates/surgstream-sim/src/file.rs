//! The simulator's output as a file (`surgstream sim --output FILE`): the same records that
//! would go to Kafka, in order, framed so that they can be read back or replayed.
//!
//! Layout: the 8-byte magic `SURGSIM1`, then for each record
//! `kind: u8` (0 = telemetry, 1 = event), `at: i64 LE` (µs UTC), `key: [u8; 16]`,
//! `len: u32 LE`, `value: [u8; len]` (the protobuf record value).

use std::io::{self, Read, Write};

use crate::kafka::body_name;
use crate::report::SimReport;
use crate::{Payload, Simulation};

/// First bytes of every simulator output file.
pub const MAGIC: &[u8; 8] = b"SURGSIM1";

/// Which topic a framed record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The telemetry topic (value: `TelemetryBatch`).
    Telemetry,
    /// The events topic (value: `Event`).
    Event,
}

/// One framed record read back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedRecord {
    /// Topic kind.
    pub kind: Kind,
    /// Record time, µs UTC.
    pub at: i64,
    /// Kafka key.
    pub key: [u8; 16],
    /// Protobuf value.
    pub value: Vec<u8>,
}

/// Writes every record of `sim` to `out` and returns what was written.
pub fn write(sim: Simulation, out: &mut impl Write) -> io::Result<SimReport> {
    let started = std::time::Instant::now();
    let mut report = SimReport::default();
    let start = sim.start_micros();
    let mut last_at = start;
    out.write_all(MAGIC)?;
    for record in sim {
        last_at = last_at.max(record.at);
        let (kind, value) = match &record.payload {
            Payload::Telemetry(batch) => {
                report.telemetry_delivered(record.key, batch.frames.len() as u64);
                (0u8, surgstream_proto::encode_batch(batch))
            }
            Payload::Event(event) => {
                report.event_delivered(body_name(&event.body));
                (1u8, surgstream_proto::encode_event(event))
            }
        };
        let len =
            u32::try_from(value.len()).map_err(|_| io::Error::other("record larger than 4 GiB"))?;
        out.write_all(&[kind])?;
        out.write_all(&record.at.to_le_bytes())?;
        out.write_all(&record.key)?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&value)?;
    }
    out.flush()?;
    report.simulated_seconds = (last_at - start) as f64 / 1e6;
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads a whole file written by [`write`]; a bad magic, a truncated record or an unknown kind
/// is an error that says at which byte.
pub fn read(mut input: impl Read) -> io::Result<Vec<FramedRecord>> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let bad = |at: usize, what: &str| {
        io::Error::new(io::ErrorKind::InvalidData, format!("byte {at}: {what}"))
    };
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(bad(
            0,
            "not a surgstream simulator file (magic SURGSIM1 missing)",
        ));
    }
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let head = bytes
            .get(pos..pos + 29)
            .ok_or_else(|| bad(pos, "truncated record header"))?;
        let kind = match head[0] {
            0 => Kind::Telemetry,
            1 => Kind::Event,
            k => return Err(bad(pos, &format!("unknown record kind {k}"))),
        };
        let mut at = [0u8; 8];
        at.copy_from_slice(&head[1..9]);
        let mut key = [0u8; 16];
        key.copy_from_slice(&head[9..25]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[25..29]);
        let len = u32::from_le_bytes(len) as usize;
        let start = pos + 29;
        let value = bytes
            .get(start..start + len)
            .ok_or_else(|| bad(start, "truncated record value"))?;
        out.push(FramedRecord {
            kind,
            at: i64::from_le_bytes(at),
            key,
            value: value.to_vec(),
        });
        pos = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::SimConfig;

    fn sim(seed: u64) -> Simulation {
        let mut cfg = SimConfig::live(3, seed, 1_790_000_000_000_000);
        cfg.procedures = Some(5);
        cfg.hz = 20;
        cfg.speed = 3_600.0;
        cfg.batch_interval = Duration::from_millis(200);
        Simulation::new(cfg).expect("valid")
    }

    #[test]
    fn writes_reads_back_and_is_byte_identical_for_a_seed() {
        let mut a = Vec::new();
        let report = write(sim(3), &mut a).expect("write");
        let mut b = Vec::new();
        write(sim(3), &mut b).expect("write");
        let mut c = Vec::new();
        write(sim(4), &mut c).expect("write");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let records = read(&a[..]).expect("read");
        assert_eq!(
            records.len() as u64,
            report.telemetry_records + report.events
        );
        let frames: usize = records
            .iter()
            .filter(|r| r.kind == Kind::Telemetry)
            .map(|r| {
                surgstream_proto::decode_batch(&r.value)
                    .map(|b| b.frames.len())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(frames as u64, report.frames);
        assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn bad_files_say_where() {
        assert!(
            read(&b"NOTSURGS"[..])
                .expect_err("magic")
                .to_string()
                .contains("magic")
        );
        let mut a = Vec::new();
        write(sim(1), &mut a).expect("write");
        let cut = read(&a[..a.len() - 3]).expect_err("truncated");
        assert!(cut.to_string().contains("truncated"), "{cut}");
    }
}
