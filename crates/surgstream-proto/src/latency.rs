//! Latencies of records per Kafka partition, as the simulator (send → broker acknowledgement)
//! and the ingestor (send → received) measure them, summarised the same way on both sides so
//! that `surgstream bench --live` can set them side by side with the lake's commit latency.
//!
//! Each partition keeps an HdrHistogram at two significant digits (1 % resolution, 1 µs to a
//! day, about 30 KiB a partition whatever the run's length), so a long-running ingestor's
//! memory does not grow with the records it has seen.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Per-partition histograms of microsecond latencies.
#[derive(Debug, Default, Clone)]
pub struct PartitionLatencies {
    by_partition: BTreeMap<i32, Histogram<u64>>,
}

/// Quantiles of one histogram, in seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Records measured.
    pub records: u64,
    /// Median.
    pub p50_seconds: f64,
    /// 90th percentile.
    pub p90_seconds: f64,
    /// 99th percentile.
    pub p99_seconds: f64,
    /// Largest.
    pub max_seconds: f64,
}

impl PartitionLatencies {
    /// Records one latency. A negative one (the two clocks disagree by a little) counts as 0.
    pub fn record(&mut self, partition: i32, micros: i64) {
        let h = self.by_partition.entry(partition).or_insert_with(histogram);
        // Over a day counts as a day: the range is fixed, so is the memory.
        h.saturating_record(u64::try_from(micros).unwrap_or(0));
    }

    /// Records how old a record stamped `sent_millis` (its Kafka timestamp) is at `now_micros`,
    /// and returns that age in seconds (0 at least), for a Prometheus histogram beside this one.
    pub fn record_age(&mut self, partition: i32, sent_millis: i64, now_micros: i64) -> f64 {
        let micros = now_micros.saturating_sub(sent_millis.saturating_mul(1000));
        self.record(partition, micros);
        micros.max(0) as f64 / 1e6
    }

    /// Quantiles of each partition.
    pub fn by_partition(&self) -> BTreeMap<i32, LatencySummary> {
        self.by_partition
            .iter()
            .map(|(p, h)| (*p, summarise(h)))
            .collect()
    }
}

/// 1 µs to one day at two significant digits (about 30 KiB).
fn histogram() -> Histogram<u64> {
    const DAY_MICROS: u64 = 86_400_000_000;
    Histogram::new_with_bounds(1, DAY_MICROS, 2)
        .unwrap_or_else(|e| unreachable!("constant histogram bounds are valid: {e}"))
}

fn summarise(h: &Histogram<u64>) -> LatencySummary {
    let s = |micros: u64| micros as f64 / 1e6;
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        records: h.len(),
        p50_seconds: s(h.value_at_quantile(0.50)),
        p90_seconds: s(h.value_at_quantile(0.90)),
        p99_seconds: s(h.value_at_quantile(0.99)),
        max_seconds: s(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_per_partition_within_one_percent() {
        let mut l = PartitionLatencies::default();
        assert!(l.by_partition().is_empty());
        // Partition 0: 1..=1000 ms; partition 1: 100 records of 5 s; one negative value.
        for ms in 1..=1000_i64 {
            l.record(0, ms * 1000);
        }
        for _ in 0..100 {
            l.record(1, 5_000_000);
        }
        l.record(1, -30);
        let by = l.by_partition();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.01 + 1e-6;
        let p0 = by[&0];
        assert_eq!(p0.records, 1000);
        assert!(close(p0.p50_seconds, 0.500), "{p0:?}");
        assert!(close(p0.p90_seconds, 0.900), "{p0:?}");
        assert!(close(p0.p99_seconds, 0.990), "{p0:?}");
        assert!(close(p0.max_seconds, 1.000), "{p0:?}");
        let p1 = by[&1];
        assert_eq!(p1.records, 101);
        assert!(close(p1.max_seconds, 5.0), "{p1:?}");
        assert!(close(p1.p50_seconds, 5.0), "{p1:?}");
    }

    #[test]
    fn record_age_is_now_minus_the_kafka_timestamp_and_never_negative() {
        let mut l = PartitionLatencies::default();
        assert_eq!(l.record_age(3, 1_000, 3_500_000), 2.5);
        assert_eq!(
            l.record_age(3, 9_000, 3_500_000),
            0.0,
            "a clock behind the sender's"
        );
        let p3 = l.by_partition()[&3];
        assert_eq!(p3.records, 2);
        assert!((p3.max_seconds - 2.5).abs() <= 0.025, "{p3:?}");
        assert_eq!(summarise(&histogram()), LatencySummary::default());
    }
}
