//! `surgstream topics create`: the project's topics, created through the Kafka admin API.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use surgstream_proto::topics;

#[derive(Debug, Clone, clap::Args)]
pub struct TopicsArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Partitions of the telemetry topic (ingest parallelism).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub telemetry_partitions: i32,
    /// Partitions of the events topic.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..))]
    pub events_partitions: i32,
    /// Prefix for every topic name (tests use a fresh prefix each).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// How long to wait for the broker.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Creates the four topics; an existing topic is fine.
pub async fn run(a: TopicsArgs) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .create()
        .context("cannot create Kafka admin client")?;
    let names = [
        (
            format!("{}{}", a.prefix, topics::TELEMETRY),
            a.telemetry_partitions,
        ),
        (
            format!("{}{}", a.prefix, topics::EVENTS),
            a.events_partitions,
        ),
        (format!("{}{}", a.prefix, topics::TELEMETRY_DLQ), 1),
        (format!("{}{}", a.prefix, topics::EVENTS_DLQ), 1),
    ];
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(a.timeout))
        .request_timeout(Some(a.timeout));
    let results = tokio::time::timeout(
        a.timeout + Duration::from_secs(1),
        admin.create_topics(&new, &opts),
    )
    .await
    .with_context(|| {
        format!(
            "cannot reach Kafka at {}: no answer within {:?}",
            a.brokers, a.timeout
        )
    })?
    .with_context(|| format!("cannot create topics on Kafka at {}", a.brokers))?;
    for r in results {
        match r {
            Ok(name) => say!("created topic {name}"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => say!("topic {name} exists"),
            Err((name, code)) => bail!("cannot create topic {name} on {}: {code}", a.brokers),
        }
    }
    Ok(())
}
