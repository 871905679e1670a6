//! The dead-letter producer: a rejected record goes, as it came, to a `*.dlq.v1` topic with
//! headers saying why and where from; the send is awaited so nothing is lost.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use surgstream_proto::headers;
use surgstream_store::Source;

use crate::IngestError;

/// Sends rejected records to dead-letter topics.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    timeout: Duration,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// An idempotent producer for dead letters.
    pub fn connect(brokers: &str, timeout: Duration) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("client.id", "surgstream-ingest-dlq")
            .set(
                "message.timeout.ms",
                timeout.max(Duration::from_secs(10)).as_millis().to_string(),
            )
            .create()?;
        Ok(Self { producer, timeout })
    }

    /// Sends one dead letter and waits until the broker has it.
    pub async fn send(
        &self,
        dlq: &str,
        src: Source<'_>,
        key: Option<&[u8]>,
        payload: &[u8],
        reason: &'static str,
        error: &str,
    ) -> Result<(), IngestError> {
        let partition = src.partition.to_string();
        let offset = src.offset.to_string();
        let hdrs = OwnedHeaders::new()
            .insert(Header {
                key: headers::DLQ_ERROR,
                value: Some(error),
            })
            .insert(Header {
                key: headers::DLQ_REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: headers::DLQ_SOURCE_TOPIC,
                value: Some(src.topic),
            })
            .insert(Header {
                key: headers::DLQ_SOURCE_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: headers::DLQ_SOURCE_OFFSET,
                value: Some(&offset),
            });
        let mut record = FutureRecord::to(dlq).payload(payload).headers(hdrs);
        if let Some(k) = key {
            record = record.key(k);
        }
        tracing::warn!(
            topic = src.topic,
            partition = src.partition,
            offset = src.offset,
            reason,
            error,
            dlq,
            "dead letter"
        );
        self.producer
            .send(record, self.timeout)
            .await
            .map_err(|(source, _)| IngestError::DeadLetter {
                dlq: dlq.to_owned(),
                source_topic: src.topic.to_owned(),
                partition: src.partition,
                offset: src.offset,
                source: Box::new(source),
            })?;
        ::metrics::counter!(crate::metrics::DEAD_LETTERS, "topic" => dlq.to_owned(), "reason" => reason).increment(1);
        Ok(())
    }
}
