//! The running service: [`Ingest`] and its main loop. The loop takes one record at a time
//! from the consumer ([`crate::records`]), flushes what the flush policy says is due
//! ([`crate::flush`], then [`crate::commit`]), reconciles partition assignments after a
//! rebalance, starts the orphan sweep, and, with `--until-idle`, stops once every partition
//! is drained.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use surgstream_lake::Lake;
use surgstream_proto::latency::PartitionLatencies;
use surgstream_proto::time::now_micros;
use surgstream_store::Store;
use surgstream_store::offsets;
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;
use crate::consumer::{Ctx, max_poll_interval};
use crate::dlq::DeadLetters;
use crate::error::IngestError;
use crate::partition::PartitionState;
use crate::raw_encoder::{RawArchive, RawEncoder};
use crate::report::IngestReport;
use crate::{metrics, verify};

/// How long `--until-idle` keeps asking a broker that does not answer its watermark queries
/// before the ingestor gives up.
pub(crate) const WATERMARK_RETRY_FOR: Duration = Duration::from_secs(120);

/// The running service.
pub(crate) struct Ingest {
    pub(crate) cfg: IngestConfig,
    pub(crate) consumer: Arc<StreamConsumer<Ctx>>,
    pub(crate) ctx: Ctx,
    pub(crate) lake: Lake,
    pub(crate) store: Store,
    pub(crate) dlq: DeadLetters,
    pub(crate) parts: HashMap<(String, i32), PartitionState>,
    pub(crate) generation: u64,
    pub(crate) report: IngestReport,
    pub(crate) shutdown: CancellationToken,
    /// Newest frame timestamp committed to the lake (µs), for the write lag.
    pub(crate) newest_committed: i64,
    /// Telemetry records' age when received, per partition.
    pub(crate) record_age: PartitionLatencies,
    /// The raw archive's encoder thread (`--raw-archive on`).
    pub(crate) raw_encoder: Option<RawEncoder>,
}

/// Unready (`/readyz`, `progress`) when the loop has not run for twice the longest flush age
/// (30 s at least): a flush waiting for its store or database shows soon, and the process
/// stops getting new work while it waits.
pub(crate) fn readiness_stall(cfg: &IngestConfig) -> Duration {
    (cfg.max_age.max(cfg.event_max_age) * 2).max(Duration::from_secs(30))
}

/// Not alive (`/healthz` 503, the orchestrator restarts the process) when the loop has not run
/// for the consumer's `max.poll.interval.ms` ([`max_poll_interval`]: both retry budgets plus a
/// minute, 5 min at least). The longest the loop may legitimately be away is one flush that
/// waits out the store's retry budget and then PostgreSQL's (`--store-retry-timeout` +
/// `--pg-retry-timeout`), plus seconds of work and dead-letter deliveries: a restart then
/// would only throw the buffers away and re-read them. Past that the loop is stuck, and the
/// group has evicted the member anyway (its partitions went to others): a restart is the cure.
pub(crate) fn liveness_stall(cfg: &IngestConfig) -> Duration {
    max_poll_interval(cfg.store_retry_timeout, cfg.pg_retry_timeout)
}

/// A consumer error instead of a record (a broker down, a failed authentication, a partition
/// error): logged and counted by librdkafka's error code.
pub(crate) fn consumer_error(e: &KafkaError) {
    let code = e
        .rdkafka_error_code()
        .map_or_else(|| "other".to_owned(), |c| format!("{c:?}"));
    tracing::warn!(error = %e, code, "consumer error");
    ::metrics::counter!(metrics::CONSUMER_ERRORS, "code" => code).increment(1);
}

impl Ingest {
    /// A consumer error that no retry mends — the cluster's authorizer refusing the group or
    /// a topic — stops the ingestor with the resource and the ACL it needs; the others are
    /// retried by librdkafka.
    fn refused(&self, e: &KafkaError) -> Result<(), IngestError> {
        let (resource, needs) = match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
                (format!("group {}", self.cfg.group), "Read")
            }
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => (
                format!(
                    "topics {} and {}",
                    self.cfg.telemetry_topic, self.cfg.events_topic
                ),
                "Read and Describe",
            ),
            _ => return Ok(()),
        };
        Err(IngestError::NotAuthorized {
            brokers: self.cfg.kafka.brokers().to_owned(),
            resource,
            needs,
        })
    }

    pub(crate) async fn main_loop(
        &mut self,
        shutdown: &CancellationToken,
        idle_gate: Option<&CancellationToken>,
    ) -> Result<(), IngestError> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_record = Instant::now();
        let mut stats = Instant::now();
        let mut watermark_failing: Option<Instant> = None;
        let mut last_sweep = Instant::now();
        let mut sweeping: Option<tokio::task::JoinHandle<Result<verify::Unnamed, IngestError>>> =
            None;
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    tracing::info!("shutdown requested: flushing");
                    return Ok(());
                }
                msg = consumer.recv() => {
                    self.beat();
                    self.reconcile_assignment().await?;
                    match msg {
                        Ok(m) => {
                            last_record = Instant::now();
                            self.handle(&m).await?;
                            self.flush_due().await?;
                        }
                        Err(e) => {
                            consumer_error(&e);
                            self.refused(&e)?;
                        }
                    }
                }
                _ = tick.tick() => {
                    self.beat();
                    self.reconcile_assignment().await?;
                    self.flush_due().await?;
                    if let Some(task) = sweeping.take_if(|t| t.is_finished()) {
                        match task.await {
                            Ok(Ok(u)) => tracing::debug!(removed = u.orphans.len(), in_flight = u.in_flight, "sweep done"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "sweeping orphan lake files failed; trying again later"),
                            Err(e) => tracing::warn!(error = %e, "the sweeper task failed"),
                        }
                    }
                    if sweeping.is_none() && last_sweep.elapsed() >= self.cfg.sweep_interval {
                        last_sweep = Instant::now();
                        let (lake, store, grace) = (self.lake.clone(), self.store.clone(), self.cfg.sweep_grace);
                        sweeping = Some(tokio::spawn(async move { verify::sweep(&lake, &store, grace, false).await }));
                    }
                    if stats.elapsed() >= Duration::from_secs(5) {
                        stats = Instant::now();
                        self.record_lag();
                        tracing::info!(frames_written = self.report.frames_written, files = self.report.files_written,
                            events_applied = self.report.events_applied, "ingest progress");
                    }
                    if let Some(idle) = self.cfg.until_idle {
                        let gate_open = idle_gate.is_none_or(CancellationToken::is_cancelled);
                        if gate_open && last_record.elapsed() >= idle && self.caught_up_or_wait(&mut watermark_failing).await? {
                            tracing::info!(idle = ?idle, "topics idle and drained: stopping");
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Tells `/readyz` and `/healthz` the loop runs.
    pub(crate) fn beat(&self) {
        self.cfg
            .health
            .beat(readiness_stall(&self.cfg), liveness_stall(&self.cfg));
    }

    /// Write lag: seconds between now and the newest frame committed, and that frame's
    /// timestamp. (Consumer lag per partition is read from the broker:
    /// [`crate::probe::record_consumer_lag`].)
    pub(crate) fn record_lag(&self) {
        if self.newest_committed > i64::MIN {
            let behind = (now_micros() - self.newest_committed) as f64 / 1e6;
            ::metrics::gauge!(metrics::WRITE_LAG).set(behind.max(0.0));
            ::metrics::gauge!(metrics::NEWEST_COMMITTED_FRAME)
                .set(self.newest_committed as f64 / 1e6);
        }
    }

    /// Drops the state of revoked partitions (their buffered records were not committed: the
    /// new owner re-reads them from PostgreSQL's offsets) and loads offsets for new ones.
    pub(crate) async fn reconcile_assignment(&mut self) -> Result<(), IngestError> {
        let (generation, assigned) = {
            let Ok(a) = self.ctx.assignment.lock() else {
                return Ok(());
            };
            if a.generation == self.generation {
                return Ok(());
            }
            (a.generation, a.partitions.clone())
        };
        self.generation = generation;
        ::metrics::gauge!(metrics::ASSIGNED_PARTITIONS).set(assigned.len() as f64);
        self.parts.retain(|k, s| {
            let keep = assigned.contains(k);
            if !keep && s.pending() {
                tracing::info!(topic = %k.0, partition = k.1, "partition revoked: dropping its uncommitted buffer");
            }
            keep
        });
        for topic in [
            self.cfg.telemetry_topic.clone(),
            self.cfg.events_topic.clone(),
        ] {
            let durable = offsets::load(self.store.pool(), &self.cfg.group, &topic).await?;
            for (t, p) in assigned.iter().filter(|(t, _)| *t == topic) {
                let raw = self.raw_encoder.as_ref();
                self.parts.entry((t.clone(), *p)).or_insert_with(|| {
                    PartitionState::new(
                        durable.get(p).copied(),
                        raw.map(|e| RawArchive::new(e, *p)),
                    )
                });
            }
        }
        Ok(())
    }

    /// [`Self::caught_up`], where a broker too busy to answer (a watermark query that times out)
    /// means "not yet" rather than the end of the run, for up to [`WATERMARK_RETRY_FOR`] in a row.
    pub(crate) async fn caught_up_or_wait(
        &self,
        failing: &mut Option<Instant>,
    ) -> Result<bool, IngestError> {
        match self.caught_up().await {
            Ok(done) => {
                *failing = None;
                Ok(done)
            }
            Err(e) if failing.get_or_insert_with(Instant::now).elapsed() < WATERMARK_RETRY_FOR => {
                tracing::warn!(error = %e, "cannot tell whether the topics are drained yet; trying again");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether every partition of both topics has been consumed up to its high watermark: the
    /// assigned ones by this member (its position), the others by the group (PostgreSQL's
    /// durable offsets). Not the assigned ones alone: a member killed with `kill -9` keeps its
    /// partitions until its session times out, and a member that stopped beside it, drained of
    /// what it held, would leave the rest unread.
    pub(crate) async fn caught_up(&self) -> Result<bool, IngestError> {
        if self.parts.is_empty() {
            return Ok(false);
        }
        for topic in [&self.cfg.telemetry_topic, &self.cfg.events_topic] {
            let kafka = |what: String| {
                let brokers = self.cfg.kafka.brokers().to_owned();
                move |source: KafkaError| IngestError::Kafka {
                    brokers,
                    what,
                    source: Box::new(source),
                }
            };
            let canceled = |what: &str| IngestError::Kafka {
                brokers: self.cfg.kafka.brokers().to_owned(),
                what: what.to_owned(),
                source: Box::new(KafkaError::Canceled),
            };
            let (c, t, timeout) = (self.consumer.clone(), topic.clone(), self.cfg.timeout);
            let partitions: Vec<i32> = tokio::task::spawn_blocking(move || {
                c.fetch_metadata(Some(&t), timeout).map(|m| {
                    m.topics()
                        .iter()
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect()
                })
            })
            .await
            .map_err(|_| canceled("fetch metadata"))?
            .map_err(kafka(format!("fetch the partitions of {topic}")))?;
            let durable = offsets::load(self.store.pool(), &self.cfg.group, topic).await?;
            for p in partitions {
                let (c, t, timeout) = (self.consumer.clone(), topic.clone(), self.cfg.timeout);
                let (low, high) =
                    tokio::task::spawn_blocking(move || c.fetch_watermarks(&t, p, timeout))
                        .await
                        .map_err(|_| canceled("fetch watermarks"))?
                        .map_err(kafka(format!("fetch watermarks of {topic}/{p}")))?;
                let next = match self.parts.get(&(topic.clone(), p)) {
                    Some(state) => state.position,
                    None => durable.get(&p).copied().unwrap_or(low),
                };
                if next < high {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaErrorCode;

    use super::*;

    #[test]
    fn consumer_errors_are_counted_by_code() {
        let captured = metrics::capture::Captured::default();
        ::metrics::with_local_recorder(&captured, || {
            consumer_error(&KafkaError::MessageConsumption(
                RDKafkaErrorCode::AllBrokersDown,
            ));
            consumer_error(&KafkaError::MessageConsumption(
                RDKafkaErrorCode::AllBrokersDown,
            ));
            consumer_error(&KafkaError::Canceled);
        });
        assert_eq!(
            captured.counter("surgstream_consumer_errors_total{code=\"AllBrokersDown\"}"),
            Some(2)
        );
        assert_eq!(
            captured.counter("surgstream_consumer_errors_total{code=\"other\"}"),
            Some(1)
        );
    }

    #[test]
    fn liveness_waits_out_both_retry_budgets_readiness_does_not() {
        let cfg = IngestConfig {
            kafka: surgstream_kafka::KafkaSettings::plaintext(""),
            group: String::new(),
            telemetry_topic: String::new(),
            events_topic: String::new(),
            telemetry_dlq_topic: String::new(),
            events_dlq_topic: String::new(),
            max_rows: 1,
            max_bytes: 1,
            memory_limit: 1,
            max_age: Duration::from_secs(5),
            event_batch: 1,
            event_max_age: Duration::from_millis(500),
            sweep_interval: Duration::from_secs(600),
            sweep_grace: Duration::from_secs(600),
            store_retry_timeout: Duration::from_secs(600),
            pg_retry_timeout: Duration::from_secs(300),
            raw_archive: true,
            until_idle: None,
            timeout: Duration::from_secs(10),
            health: crate::health::Health::default(),
            consumer_options: Vec::new(),
        };
        assert_eq!(readiness_stall(&cfg), Duration::from_secs(30));
        let live = liveness_stall(&cfg);
        assert!(
            live > cfg.store_retry_timeout + cfg.pg_retry_timeout,
            "a flush waiting out both outages is not killed: {live:?}"
        );
        assert_eq!(live, Duration::from_secs(960));
    }
}
