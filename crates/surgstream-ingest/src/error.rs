//! [`IngestError`]: why the service stopped. Every variant names what it was doing and where
//! (which broker, topic, partition, offset, file); a restart resumes exactly where PostgreSQL
//! says, so stopping loses nothing.

use std::time::Duration;

use rdkafka::error::KafkaError;
use surgstream_lake::LakeError;
use surgstream_store::StoreError;

/// What went wrong; the service stops, and a restart resumes exactly where PostgreSQL says.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Kafka client creation, subscription or metadata failed.
    #[error("Kafka at {brokers}: {what}: {source}")]
    Kafka {
        /// The bootstrap servers.
        brokers: String,
        /// What was being done.
        what: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The cluster could not be reached, or refused the connection (credentials, TLS).
    #[error("Kafka at {brokers}: {source}")]
    Connect {
        /// The bootstrap servers.
        brokers: String,
        /// Why, with librdkafka's reason.
        #[source]
        source: Box<surgstream_kafka::MetadataError>,
    },
    /// The cluster's authorizer refused the ingestor's principal an operation it needs.
    #[error(
        "Kafka at {brokers} refused {resource}: not authorized (the ingestor's principal needs \
         {needs} on it: docs/security.md lists the ACLs)"
    )]
    NotAuthorized {
        /// The bootstrap servers.
        brokers: String,
        /// The topic or group refused.
        resource: String,
        /// The ACL operations it needs.
        needs: &'static str,
    },
    /// A topic to consume does not exist.
    #[error(
        "topic {topic} does not exist on {brokers} (create it, e.g. with `scripts/services.sh up`)"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A record could not be dead-lettered: stopping rather than losing it.
    #[error("cannot dead-letter {source_topic}/{partition}@{offset} to {dlq}: {source}")]
    DeadLetter {
        /// The dead-letter topic.
        dlq: String,
        /// Source topic.
        source_topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The producer's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The broker stopped answering while a topic was being read.
    #[error("Kafka stalled: {what}: no record for {waited:?}")]
    Stalled {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// A replay cannot start or go on (what, and what to do about it).
    #[error("replay: {0}")]
    Replay(String),
    /// A lake file's upload was cancelled: the async runtime is shutting down.
    #[error("raw archive encoder: {0}")]
    RawEncoder(String),

    #[error("interrupted while storing a lake file: the runtime is shutting down")]
    Interrupted,
    /// Arrow refused a batch built from validated frames (a bug).
    #[error("cannot build Arrow batch for {topic}/{partition}: {source}")]
    Arrow {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Arrow's error.
        #[source]
        source: surgstream_lake::schema::ArrowError,
    },
}
