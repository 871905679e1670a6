//! From a Kafka record to what the ingestor keeps of it: telemetry read in place into the
//! partition's frame buffer, an event decoded into the pending batch, or — for anything that
//! fails a check — a dead letter carrying the record byte for byte with its reason. Also the
//! resume seek: PostgreSQL, not Kafka, says where a partition starts.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers, Timestamp};
use rdkafka::topic_partition_list::Offset;
use surgstream_lake::raw::{RawRecord, TimestampType};
use surgstream_proto::headers;
use surgstream_proto::time::now_micros;
use surgstream_store::Source;

use crate::decode::{check_schema, decode_event};
use crate::error::IngestError;
use crate::partition::PendingEvent;
use crate::service::Ingest;
use crate::{metrics, policy};

impl Ingest {
    pub(crate) async fn handle(&mut self, m: &BorrowedMessage<'_>) -> Result<(), IngestError> {
        let key = (m.topic().to_owned(), m.partition());
        let offset = m.offset();
        let Some(state) = self.parts.get_mut(&key) else {
            // A record of a partition we no longer own (fetched before a revoke): ignore it.
            return Ok(());
        };
        if !state.seeked {
            state.seeked = true;
            // PostgreSQL, not Kafka's committed offset, says where a partition resumes: Kafka's
            // may be behind (a crash between the two commits) or ahead (offsets reset in
            // PostgreSQL to replay, a database restored from a backup).
            if state.durable.is_some() && offset != state.position {
                let behind = offset > state.position;
                if behind {
                    tracing::info!(topic = %key.0, partition = key.1, from = state.position, kafka = offset,
                        "resuming at PostgreSQL's offset, behind Kafka's committed one");
                }
                match self.consumer.seek(
                    &key.0,
                    key.1,
                    Offset::Offset(state.position),
                    self.cfg.timeout,
                ) {
                    // librdkafka drops what it fetched before the seek.
                    Ok(()) => return Ok(()),
                    Err(e) if behind => {
                        return Err(IngestError::Kafka {
                            brokers: self.cfg.kafka.brokers().to_owned(),
                            what: format!(
                                "seek {}/{} back to offset {} (refusing to skip records)",
                                key.0, key.1, state.position
                            ),
                            source: Box::new(e),
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, topic = %key.0, partition = key.1, "seek failed; skipping replayed records instead");
                    }
                }
            }
        }
        if offset < state.position {
            // Already durable (or already buffered): a replay after resume.
            return Ok(());
        }
        if offset > state.position {
            tracing::debug!(topic = %key.0, partition = key.1, expected = state.position, got = offset, "offset gap (compaction or control records)");
        }
        state.position = offset + 1;
        let arrived = Instant::now();
        if let Some(raw) = &mut state.raw {
            // Every record the offset moves past, whatever becomes of it below: the archive
            // is of what was consumed, dead letters included.
            let timestamp = match m.timestamp() {
                Timestamp::CreateTime(t) => Some((t, TimestampType::CreateTime)),
                Timestamp::LogAppendTime(t) => Some((t, TimestampType::LogAppendTime)),
                Timestamp::NotAvailable => None,
            };
            let record = RawRecord {
                offset,
                timestamp,
                key: m.key(),
                value: m.payload(),
            };
            let headers = m
                .headers()
                .into_iter()
                .flat_map(|h| h.iter())
                .map(|h| (h.key, h.value));
            raw.push(record, headers, now_micros() / 1000);
        }
        let schema = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == headers::SCHEMA))
            .and_then(|h| h.value);
        let payload = m.payload().unwrap_or_default();
        let src = Source {
            topic: &key.0,
            partition: key.1,
            offset,
        };
        let telemetry = key.0 == self.cfg.telemetry_topic;
        // A record without frames (an event, a dead letter) waits its whole age limit.
        let mut hold = if telemetry {
            self.cfg.max_age
        } else {
            self.cfg.event_max_age
        };
        let now = now_micros();
        if telemetry && let Some(sent_ms) = m.timestamp().to_millis() {
            let seconds = self.record_age.record_age(key.1, sent_ms, now);
            ::metrics::histogram!(metrics::RECORD_AGE).record(seconds);
        }
        let rejected = if telemetry {
            check_schema(schema, headers::SCHEMA_TELEMETRY_BATCH)
                .and_then(|()| {
                    // Read in place, straight into the buffer: no per-frame allocation.
                    let pushed = state
                        .frames
                        .push_encoded(offset, payload, now)
                        .map_err(|e| (e.reason(), e.to_string()))?;
                    ::metrics::counter!(metrics::FRAMES_CONSUMED).increment(pushed.frames as u64);
                    state.note_frames(pushed.newest, pushed.oldest);
                    if pushed.frames > 0 {
                        let delay =
                            Duration::from_micros(now.saturating_sub(pushed.oldest).max(0) as u64);
                        hold = policy::hold(self.cfg.max_age, delay);
                    }
                    Ok(())
                })
                .err()
        } else {
            ::metrics::counter!(metrics::EVENTS_CONSUMED).increment(1);
            decode_event(schema, payload)
                .map(|event| {
                    state.event_bytes += payload.len();
                    state.events.push(PendingEvent {
                        offset,
                        event,
                        key: m.key().map(<[u8]>::to_vec),
                        payload: payload.to_vec(),
                    });
                })
                .err()
        };
        if let Some((reason, message)) = rejected {
            let (dlq, count) = if telemetry {
                state.frames.note_offset(offset);
                (
                    &self.cfg.telemetry_dlq_topic,
                    &mut self.report.telemetry_dead_letters,
                )
            } else {
                (
                    &self.cfg.events_dlq_topic,
                    &mut self.report.event_dead_letters,
                )
            };
            let delivery = self
                .dlq
                .send(dlq, src, m.key(), payload, reason, &message)?;
            state.dead_letters.push(delivery);
            *count += 1;
        }
        let due = arrived + hold;
        state.due = Some(state.due.map_or(due, |d| d.min(due)));
        Ok(())
    }
}
