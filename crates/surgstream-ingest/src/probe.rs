//! The readiness probe: every 5 s, independently of the main loop (which may be blocked in a
//! flush waiting for one of them), asks the broker, PostgreSQL and the lake's store whether
//! they answer, for `/readyz` and `surgstream_ready{check}`; and reads the group's consumer lag
//! from the broker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use surgstream_lake::Lake;
use surgstream_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;
use crate::consumer::{Assignment, Ctx};
use crate::metrics;

/// Probes the broker, PostgreSQL and the lake's store every 5 s for `/readyz`, independently of
/// the ingest loop (which may be waiting for one of them).
pub(crate) async fn probe(
    cfg: IngestConfig,
    consumer: Arc<StreamConsumer<Ctx>>,
    assigned: Arc<Mutex<Assignment>>,
    lake: Lake,
    store: Store,
    stop: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(5);
    const WAIT: Duration = Duration::from_secs(3);
    let mut broker_down: Option<Instant> = None;
    loop {
        let c = consumer.clone();
        let topic = cfg.telemetry_topic.clone();
        let broker = tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&topic), WAIT))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| {
                r.map(|_| ())
                    .map_err(|e| format!("{}: {e}", cfg.kafka.brokers()))
            });
        match (&broker, broker_down) {
            (Err(e), None) => {
                tracing::warn!(brokers = %cfg.kafka.brokers(), error = %e,
                    "Kafka unreachable: waiting for it (buffers kept, nothing is lost; /readyz says so)");
                broker_down = Some(Instant::now());
            }
            (Ok(()), Some(since)) => {
                tracing::info!(brokers = %cfg.kafka.brokers(), down_for = ?since.elapsed(), "Kafka reachable again: resuming");
                broker_down = None;
            }
            _ => {}
        }
        let reachable = broker.is_ok();
        cfg.health.set("broker", broker);
        if reachable {
            let c = consumer.clone();
            let assigned = assigned.clone();
            if let Ok(Err(e)) =
                tokio::task::spawn_blocking(move || record_consumer_lag(&c, &assigned, WAIT)).await
            {
                tracing::debug!(error = %e, "cannot read the group's consumer lag");
            }
        }
        let db = tokio::time::timeout(WAIT, store.ping())
            .await
            .map(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|_| Err(format!("no answer within {WAIT:?}")));
        cfg.health.set("database", db);
        let lake_ok = tokio::time::timeout(WAIT, lake.list("_surgstream/readiness"))
            .await
            .map_err(|_| format!("{}: no answer within {WAIT:?}", lake.url()))
            .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
        cfg.health.set("store", lake_ok);
        // With `progress`, which this task sees go stale while the loop is blocked.
        cfg.health.record();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Consumer lag per assigned partition where Kafka keeps it, as `kafka-consumer-groups` and
/// kafka_exporter read it: the group's committed offset (committed after PostgreSQL's) against
/// the partition's high watermark, asked of the broker. It keeps moving while the ingest loop
/// is busy in a flush or waiting for a store, which librdkafka's statistics do not.
pub(crate) fn record_consumer_lag(
    consumer: &StreamConsumer<Ctx>,
    assigned: &Mutex<Assignment>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let partitions: Vec<(String, i32)> = match assigned.lock() {
        Ok(a) => a.partitions.iter().cloned().collect(),
        Err(_) => return Ok(()),
    };
    if partitions.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p) in &partitions {
        tpl.add_partition(t, *p);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut lags = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let (low, high) = consumer.fetch_watermarks(&topic, partition, timeout)?;
        let position = match committed
            .find_partition(&topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            // Nothing committed yet: everything retained is still to read.
            _ => low,
        };
        lags.push(((topic, partition), (high - position).max(0)));
    }
    set_consumer_lag(assigned, lags);
    Ok(())
}

/// Sets the lag series of the partitions still assigned. Under the assignment's lock, which the
/// rebalance callback holds while it removes a revoked partition's series: a round that read
/// its watermarks before the revocation does not bring the series back.
pub(crate) fn set_consumer_lag(assigned: &Mutex<Assignment>, lags: Vec<((String, i32), i64)>) {
    let Ok(a) = assigned.lock() else {
        return;
    };
    for (key, lag) in lags {
        if a.partitions.contains(&key) {
            metrics::CONSUMER_LAG_SERIES.set(&key.0, key.1, lag as f64);
        }
    }
}
