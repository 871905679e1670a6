//! Object paths of the lake, as a type.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike};
use surgstream_proto::time::MICROS_PER_HOUR;

/// The telemetry table's directory.
pub const TABLE: &str = "procedure_telemetry";

/// An event-time hour: the Hive partition a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HourKey(i64);

impl HourKey {
    /// The hour containing `micros` (microseconds since the epoch, UTC).
    pub fn of(micros: i64) -> Self {
        Self(micros.div_euclid(MICROS_PER_HOUR))
    }

    /// Hours since the epoch.
    pub fn hours_since_epoch(self) -> i64 {
        self.0
    }

    /// `date=YYYY-MM-DD/hour=HH`.
    pub fn partition_dir(self) -> String {
        match DateTime::from_timestamp(self.0 * 3_600, 0) {
            Some(t) => format!(
                "date={:04}-{:02}-{:02}/hour={:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour()
            ),
            // Outside chrono's range (±262,000 years): frames are validated long before this.
            None => format!("date=out-of-range/hour={}", self.0),
        }
    }
}

/// Where one Parquet file of the lake lives, relative to the lake's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakePath {
    /// Event-time hour of every row in the file.
    pub hour: HourKey,
    /// Kafka partition the rows came from.
    pub partition: i32,
    /// Offset of the first Kafka record in the flushed range.
    pub first_offset: i64,
    /// Offset of the last Kafka record in the flushed range.
    pub last_offset: i64,
}

impl fmt::Display for LakePath {
    /// Offsets are zero-padded to 20 digits and partitions to 5, so that names sort as numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TABLE}/{}/part-{:05}-{:020}-{:020}.parquet",
            self.hour.partition_dir(),
            self.partition,
            self.first_offset,
            self.last_offset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_hive_partitions_and_padded_offsets() {
        // 2026-11-26T13:45:00Z
        let t = 1_795_700_700_000_000;
        let p = LakePath {
            hour: HourKey::of(t),
            partition: 3,
            first_offset: 120,
            last_offset: 4_567,
        };
        assert_eq!(
            p.to_string(),
            "procedure_telemetry/date=2026-11-26/hour=13/part-00003-00000000000000000120-00000000000000004567.parquet"
        );
    }

    #[test]
    fn hour_boundaries_and_before_epoch() {
        assert_eq!(HourKey::of(0).partition_dir(), "date=1970-01-01/hour=00");
        assert_eq!(
            HourKey::of(MICROS_PER_HOUR - 1).partition_dir(),
            "date=1970-01-01/hour=00"
        );
        assert_eq!(
            HourKey::of(MICROS_PER_HOUR).partition_dir(),
            "date=1970-01-01/hour=01"
        );
        assert_eq!(HourKey::of(-1).partition_dir(), "date=1969-12-31/hour=23");
        assert!(HourKey::of(1) < HourKey::of(MICROS_PER_HOUR));
    }

    #[test]
    fn names_sort_as_offsets() {
        let a = LakePath {
            hour: HourKey::of(0),
            partition: 0,
            first_offset: 9,
            last_offset: 10,
        };
        let b = LakePath {
            hour: HourKey::of(0),
            partition: 0,
            first_offset: 11,
            last_offset: 100,
        };
        assert!(a.to_string() < b.to_string());
    }
}
