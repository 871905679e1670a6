//! The dead-letter producer: a rejected record goes, as it came, to a `*.dlq.v1` topic with
//! headers saying why and where from; the send is awaited so nothing is lost.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use surgstream_kafka::KafkaSettings;
use surgstream_proto::headers;
use surgstream_store::Source;

use crate::error::IngestError;

/// Sends rejected records to dead-letter topics.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer<surgstream_kafka::KafkaContext>,
    timeout: Duration,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// An idempotent producer for dead letters.
    /// It connects as the consumer does (`kafka`: TLS, SASL): on a secured cluster a producer
    /// with only the brokers would time out on the first dead letter and stop the ingestor.
    pub fn connect(kafka: &KafkaSettings, timeout: Duration) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config.set("client.id", "surgstream-ingest-dlq").set(
            "message.timeout.ms",
            timeout.max(Duration::from_secs(10)).as_millis().to_string(),
        );
        kafka.apply(&mut config);
        let producer = config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(kafka.context())?;
        Ok(Self { producer, timeout })
    }

    /// Sends one dead letter and waits until the broker has it.
    pub fn send(
        &self,
        dlq: &str,
        src: Source<'_>,
        key: Option<&[u8]>,
        payload: &[u8],
        reason: &'static str,
        error: &str,
    ) -> Result<PendingDelivery, IngestError> {
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
        // Enqueue now; the delivery is awaited before the offset moves past the record (see
        // `settle`), so a burst of bad records does not wait one round trip each.
        let started = std::time::Instant::now();
        let fut = loop {
            match self.producer.send_result(record) {
                Ok(fut) => break fut,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < self.timeout =>
                {
                    record = back;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((source, _)) => return Err(failed(dlq, src, source)),
            }
        };
        ::metrics::counter!(crate::metrics::DEAD_LETTERS, "topic" => dlq.to_owned(), "reason" => reason).increment(1);
        Ok(PendingDelivery {
            fut,
            dlq: dlq.to_owned(),
            topic: src.topic.to_owned(),
            partition: src.partition,
            offset: src.offset,
        })
    }
}

fn failed(dlq: &str, src: Source<'_>, source: KafkaError) -> IngestError {
    IngestError::DeadLetter {
        dlq: dlq.to_owned(),
        source_topic: src.topic.to_owned(),
        partition: src.partition,
        offset: src.offset,
        source: Box::new(source),
    }
}

/// A dead letter handed to the producer, not yet acknowledged by the broker.
pub struct PendingDelivery {
    fut: DeliveryFuture,
    dlq: String,
    topic: String,
    partition: i32,
    offset: i64,
}

impl std::fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dead letter {}/{}@{} → {}",
            self.topic, self.partition, self.offset, self.dlq
        )
    }
}

/// Waits until every pending dead letter is acknowledged (acks=all); the first failure is the
/// error. Called before an offset moves past the records: at least once in the dead-letter topic.
pub async fn settle(pending: &mut Vec<PendingDelivery>) -> Result<(), IngestError> {
    for p in pending.drain(..) {
        let src = Source {
            topic: &p.topic,
            partition: p.partition,
            offset: p.offset,
        };
        match p.fut.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => return Err(failed(&p.dlq, src, source)),
            Err(_) => return Err(failed(&p.dlq, src, KafkaError::Canceled)),
        }
    }
    Ok(())
}
