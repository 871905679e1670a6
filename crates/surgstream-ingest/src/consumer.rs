//! The Kafka consumer: its librdkafka properties (ours, the user's `--consumer-option`s, then
//! the ones the delivery guarantee rests on, which nothing overrides), the rebalance callback
//! that records assignment changes for the main loop, and the start-up check that every topic
//! exists.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext};
use surgstream_kafka::TopicState;

use crate::config::IngestConfig;
use crate::error::IngestError;
use crate::metrics;

/// The consumer's `fetch.min.bytes` unless `--consumer-option` sets it.
pub const FETCH_MIN_BYTES: &str = "1048576";
/// The consumer's `fetch.wait.max.ms` unless `--consumer-option` sets it.
pub const FETCH_WAIT_MAX_MS: &str = "100";
/// The consumer's `fetch.queue.backoff.ms` unless `--consumer-option` sets it.
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// The consumer's `queued.max.messages.kbytes` (per partition) unless `--consumer-option` sets it.
pub const QUEUED_MAX_KBYTES: &str = "8192";

/// The consumer's `max.poll.interval.ms`: a flush does not poll, and it may wait out both
/// retry budgets (the lake's store, then PostgreSQL) before it returns, so the group must wait
/// longer than that before it evicts this member mid-flush (its partitions would move while it
/// still commits; the compare-and-set would fence it, but every member would have rebalanced
/// for nothing). Never below librdkafka's default of 5 minutes; a crashed member is still
/// noticed within `session.timeout.ms` (heartbeats come from librdkafka's own thread).
pub fn max_poll_interval(store_retry: Duration, pg_retry: Duration) -> Duration {
    (store_retry + pg_retry + Duration::from_secs(60)).max(Duration::from_secs(300))
}

/// Assignment changes, recorded by the rebalance callback and reconciled by the main loop.
#[derive(Debug, Default)]
pub(crate) struct Assignment {
    pub(crate) generation: u64,
    pub(crate) partitions: HashSet<(String, i32)>,
}

/// Consumer context: records rebalances, signs MSK IAM tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    pub(crate) assignment: Arc<Mutex<Assignment>>,
    pub(crate) kafka: surgstream_kafka::KafkaContext,
}

impl ClientContext for Ctx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        surgstream_kafka::generate_oauth_token(self.kafka.msk())
    }

    /// Every 5 s (`statistics.interval.ms`): the records fetched but not yet handed to the
    /// ingestor. (Consumer lag is read from the broker by [`crate::probe::probe`]: these statistics stop
    /// while the loop does not poll.)
    fn stats(&self, statistics: rdkafka::Statistics) {
        // The consumer forwards every partition's queue to its one queue, and each partition
        // reports that queue's count: one gauge, not one per partition.
        let queued = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|(partition, _)| **partition >= 0)
            .map(|(_, p)| p.fetchq_cnt)
            .max()
            .unwrap_or(0);
        ::metrics::gauge!(metrics::FETCH_QUEUE).set(queued as f64);
    }
}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut a) = self.assignment.lock() else {
            return;
        };
        a.generation += 1;
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    a.partitions.insert((e.topic().to_owned(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    a.partitions.remove(&(e.topic().to_owned(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
        // A revoked partition's lag is its new owner's to report: the old owner's last value
        // would skew `max by (topic, partition)`.
        metrics::CONSUMER_LAG_SERIES.retain(|k| a.partitions.contains(k));
    }
}

/// Parses a `KEY=VALUE` librdkafka consumer property for `--consumer-option`, refusing the
/// properties surgstream sets itself and secrets (which belong in `--kafka-config` or the
/// environment, not in the process list).
pub fn check_consumer_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE (e.g. fetch.max.bytes=104857600)"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("{s:?} has no property name before '='"));
    }
    surgstream_kafka::check_command_line_property(k, "--consumer-option")?;
    Ok((k.to_owned(), v.to_owned()))
}

/// The ingest consumer's librdkafka properties: ours, then the cluster's settings (brokers, TLS,
/// SASL), then `--consumer-option`'s, then what the delivery guarantee rests on, which nothing
/// overrides.
pub(crate) fn consumer_config(
    kafka: &surgstream_kafka::KafkaSettings,
    group: &str,
    max_poll: Duration,
    options: &[(String, String)],
) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        // A member that dies (kill -9, a lost host) hands its partitions on after 10 s.
        .set("session.timeout.ms", "10000")
        .set("max.poll.interval.ms", max_poll.as_millis().to_string())
        .set("statistics.interval.ms", "5000")
        .set("client.id", "surgstream-ingest")
        // Fewer, fuller fetches (librdkafka's defaults answer each fetch as soon as one byte is
        // there): fewer requests for the broker and the ingestor at high rates, at most 100 ms
        // more per fetch at low rates, well inside a flush's --max-age.
        .set("fetch.min.bytes", FETCH_MIN_BYTES)
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
        // A shallow pre-fetch queue, refilled at once: librdkafka stops fetching a partition
        // whose queue is over `queued.max.messages.kbytes` and then waits
        // `fetch.queue.backoff.ms` (1 s by default) before it asks again, however soon the
        // ingestor empties it. Catching up, the ingestor emptied a 64 MiB queue in a fraction
        // of that second and then waited: 341k frames/s at 545 MiB RSS draining a dense backlog;
        // with 10 ms and 8 MiB, 630k frames/s at 493 MiB (docs/performance.md). The queue is
        // memory outside --memory-limit: 8 MiB per assigned partition.
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .set("queued.max.messages.kbytes", QUEUED_MAX_KBYTES);
    kafka.apply(&mut client);
    for (k, v) in options {
        client.set(k, v);
    }
    // Offsets live in PostgreSQL, never in Kafka, and a group without them starts from the
    // beginning.
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    client
}

/// The cluster answers with these settings (or says why not: refused credentials, a failed
/// TLS handshake) and lists every topic the ingestor reads and writes, which its principal may
/// describe.
pub(crate) async fn check_topics(cfg: &IngestConfig) -> Result<(), IngestError> {
    let needs = [
        (cfg.telemetry_topic.clone(), "Read and Describe"),
        (cfg.events_topic.clone(), "Read and Describe"),
        (cfg.telemetry_dlq_topic.clone(), "Write and Describe"),
        (cfg.events_dlq_topic.clone(), "Write and Describe"),
    ];
    let (kafka, timeout, topics) = (
        cfg.kafka.clone(),
        cfg.timeout,
        needs.clone().map(|(t, _)| t),
    );
    let states = tokio::task::spawn_blocking(move || {
        surgstream_kafka::probe_topics(&kafka, &topics.each_ref().map(String::as_str), timeout)
    })
    .await
    .map_err(|_| IngestError::Kafka {
        brokers: cfg.kafka.brokers().to_owned(),
        what: "fetch metadata".into(),
        source: Box::new(KafkaError::Canceled),
    })?
    .map_err(|source| IngestError::Connect {
        brokers: cfg.kafka.brokers().to_owned(),
        source: Box::new(source),
    })?;
    for ((topic, needs), state) in needs.into_iter().zip(states) {
        match state {
            TopicState::Ready => {}
            TopicState::NotAuthorized => {
                return Err(IngestError::NotAuthorized {
                    brokers: cfg.kafka.brokers().to_owned(),
                    resource: format!("topic {topic}"),
                    needs,
                });
            }
            TopicState::Missing => {
                return Err(IngestError::MissingTopic {
                    topic,
                    brokers: cfg.kafka.brokers().to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use surgstream_kafka::KafkaSettings;

    #[test]
    pub(crate) fn consumer_config_defaults_yield_to_options_but_the_guarantee_does_not() {
        let get = |c: &ClientConfig, k: &str| c.get(k).map(str::to_owned);
        let poll = max_poll_interval(Duration::from_secs(180), Duration::from_secs(60));
        let plain = consumer_config(&KafkaSettings::plaintext("b:9092"), "g", poll, &[]);
        assert_eq!(
            get(&plain, "max.poll.interval.ms").as_deref(),
            Some("300000")
        );
        assert_eq!(
            get(&plain, "fetch.min.bytes").as_deref(),
            Some(FETCH_MIN_BYTES)
        );
        assert_eq!(
            get(&plain, "fetch.wait.max.ms").as_deref(),
            Some(FETCH_WAIT_MAX_MS)
        );
        assert_eq!(get(&plain, "bootstrap.servers").as_deref(), Some("b:9092"));
        assert_eq!(
            get(&plain, "fetch.queue.backoff.ms").as_deref(),
            Some(FETCH_QUEUE_BACKOFF_MS)
        );
        assert_eq!(
            get(&plain, "queued.max.messages.kbytes").as_deref(),
            Some(QUEUED_MAX_KBYTES)
        );

        let opt = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let secured = KafkaSettings::from_sources(
            "b:9092",
            None,
            [
                ("SURGSTREAM_KAFKA_CLIENT_SECURITY_PROTOCOL", "SASL_SSL"),
                ("SURGSTREAM_KAFKA_CLIENT_FETCH_WAIT_MAX_MS", "250"),
                ("SURGSTREAM_KAFKA_CLIENT_FETCH_MIN_BYTES", "7"),
                ("SURGSTREAM_KAFKA_CLIENT_FETCH_QUEUE_BACKOFF_MS", "50"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .expect("valid settings");
        let tuned = consumer_config(
            &secured,
            "g",
            poll,
            &[
                opt("fetch.min.bytes", "1"),
                opt("fetch.wait.max.ms", "500"),
                // check_consumer_option refuses these; were one to get through, it still loses.
                opt("enable.auto.commit", "true"),
                opt("group.id", "other"),
            ],
        );
        // The cluster's settings over our defaults; --consumer-option over both.
        assert_eq!(
            get(&tuned, "security.protocol").as_deref(),
            Some("SASL_SSL")
        );
        assert_eq!(get(&tuned, "fetch.queue.backoff.ms").as_deref(), Some("50"));
        assert_eq!(get(&tuned, "fetch.min.bytes").as_deref(), Some("1"));
        assert_eq!(get(&tuned, "fetch.wait.max.ms").as_deref(), Some("500"));
        assert_eq!(get(&tuned, "enable.auto.commit").as_deref(), Some("false"));
        assert_eq!(
            get(&tuned, "enable.auto.offset.store").as_deref(),
            Some("false")
        );
        assert_eq!(get(&tuned, "group.id").as_deref(), Some("g"));
    }

    #[test]
    fn a_revoked_partition_loses_its_lag_series_and_a_late_probe_round_does_not_restore_it() {
        use rdkafka::TopicPartitionList;
        let topic = "revoke-test.telemetry";
        let ctx = Ctx::default();
        // No broker is contacted: librdkafka connects lazily, and the callback is called here.
        let consumer: BaseConsumer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "revoke-test")
            .create_with_context(ctx.clone())
            .expect("a client");
        let mut both = TopicPartitionList::new();
        both.add_partition(topic, 0);
        both.add_partition(topic, 1);
        ctx.post_rebalance(&consumer, &Rebalance::Assign(&both));
        let lags = |l0, l1| vec![((topic.to_owned(), 0), l0), ((topic.to_owned(), 1), l1)];
        crate::probe::set_consumer_lag(&ctx.assignment, lags(5, 7));
        let lag = &metrics::CONSUMER_LAG_SERIES;
        assert_eq!(lag.get(topic, 0), Some(5.0));
        assert_eq!(lag.get(topic, 1), Some(7.0));

        let mut one = TopicPartitionList::new();
        one.add_partition(topic, 1);
        ctx.post_rebalance(&consumer, &Rebalance::Revoke(&one));
        assert_eq!(lag.get(topic, 1), None, "revoked: its series is gone");
        assert_eq!(lag.get(topic, 0), Some(5.0), "still assigned: kept");
        // A probe round that read both partitions before the revocation.
        crate::probe::set_consumer_lag(&ctx.assignment, lags(6, 8));
        assert_eq!(lag.get(topic, 1), None, "not brought back");
        assert_eq!(lag.get(topic, 0), Some(6.0));
        let page = metrics::render_partition_series();
        assert!(
            page.contains(&format!("topic=\"{topic}\",partition=\"0\"}} 6")),
            "{page}"
        );
        assert!(
            !page.contains(&format!("topic=\"{topic}\",partition=\"1\"")),
            "{page}"
        );
    }

    #[test]
    pub(crate) fn the_group_waits_out_both_retry_budgets_before_evicting_a_flushing_member() {
        let m = |a, b| max_poll_interval(Duration::from_secs(a), Duration::from_secs(b));
        assert_eq!(m(180, 60), Duration::from_secs(300));
        assert_eq!(m(10, 10), Duration::from_secs(300));
        assert_eq!(m(600, 120), Duration::from_secs(780));
    }
}
