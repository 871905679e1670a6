//! What the ingestor holds per assigned partition between two commits: where it is (the
//! durable offset PostgreSQL has, the next offset Kafka should give), the buffered frames or
//! pending events, the raw records, the dead letters awaiting their broker's acknowledgement,
//! and when the buffer is due.

use std::time::Instant;

use surgstream_lake::FrameBuffer;
use surgstream_proto::v1::Event;

use crate::dlq;
use crate::raw_encoder::RawArchive;

/// An event waiting for its batch transaction, with the record as it came (key and value) so
/// that a rejected event is dead-lettered byte for byte, unknown fields included.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub(crate) offset: i64,
    pub(crate) event: Event,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
}

/// Per assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// The next offset that is not yet durable (PostgreSQL's view); None: never committed.
    pub(crate) durable: Option<i64>,
    /// The next offset expected from Kafka.
    pub(crate) position: i64,
    /// Whether a seek to `position` was already attempted after assignment.
    pub(crate) seeked: bool,
    /// When the buffer is due for its age: the earliest deadline of its records.
    pub(crate) due: Option<Instant>,
    /// Telemetry buffer (telemetry topic only).
    pub(crate) frames: FrameBuffer,
    /// Pending events (events topic only).
    pub(crate) events: Vec<PendingEvent>,
    /// Bytes of the pending events' payloads.
    pub(crate) event_bytes: usize,
    /// Every record consumed since the last commit, as it came (`--raw-archive`; None when
    /// off).
    pub(crate) raw: Option<RawArchive>,
    /// Dead letters handed to the producer, to be acknowledged before the offset moves on.
    pub(crate) dead_letters: Vec<dlq::PendingDelivery>,
    /// Newest frame timestamp buffered (µs), for latency; `i64::MIN`: none.
    pub(crate) newest_frame: i64,
    /// Oldest frame timestamp buffered (µs), for latency; `i64::MAX`: none. The flush's
    /// latency is this frame's: every other frame of the buffer waited less.
    pub(crate) oldest_frame: i64,
}

/// A flush's end-to-end latency: its frames' timestamps → committed, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FrameLatency {
    /// Of its oldest frame: the most any of its frames waited.
    pub(crate) oldest: f64,
    /// Of its newest frame: the least any of its frames waited.
    pub(crate) newest: f64,
}

impl PartitionState {
    pub(crate) fn new(durable: Option<i64>, raw: Option<RawArchive>) -> Self {
        Self {
            durable,
            position: durable.unwrap_or(0),
            seeked: false,
            due: None,
            frames: FrameBuffer::new(),
            events: Vec::new(),
            event_bytes: 0,
            raw,
            dead_letters: Vec::new(),
            newest_frame: i64::MIN,
            oldest_frame: i64::MAX,
        }
    }

    /// Notes the frames one record buffered, by their newest and oldest timestamps (µs).
    pub(crate) fn note_frames(&mut self, newest: i64, oldest: i64) {
        self.newest_frame = self.newest_frame.max(newest);
        self.oldest_frame = self.oldest_frame.min(oldest);
    }

    /// The buffered frames' latency if committed at `now` (µs); None without frames.
    pub(crate) fn frame_latency(&self, now: i64) -> Option<FrameLatency> {
        if self.newest_frame == i64::MIN || self.oldest_frame == i64::MAX {
            return None;
        }
        let seconds = |ts: i64| (now.saturating_sub(ts) as f64 / 1e6).max(0.0);
        Some(FrameLatency {
            oldest: seconds(self.oldest_frame),
            newest: seconds(self.newest_frame),
        })
    }

    pub(crate) fn pending(&self) -> bool {
        self.position > self.durable.unwrap_or(0)
            || !self.frames.is_empty()
            || !self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flushs_latency_is_its_oldest_frames_and_its_newest_frames() {
        let mut s = PartitionState::new(None, None);
        assert_eq!(s.frame_latency(10_000_000), None, "no frame buffered");
        // Two records: frames stamped 1.0–2.0 s, then 1.5–4.0 s; an empty record changes nothing.
        s.note_frames(2_000_000, 1_000_000);
        s.note_frames(4_000_000, 1_500_000);
        s.note_frames(i64::MIN, i64::MAX);
        assert_eq!(
            s.frame_latency(6_000_000),
            Some(FrameLatency {
                oldest: 5.0,
                newest: 2.0
            })
        );
    }
}
