//! Wire time: int64 microseconds since the Unix epoch (UTC), and int32 days since 1970-01-01.

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in one hour.
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The day (since 1970-01-01) that contains a wire timestamp.
pub fn day_of(micros: i64) -> i32 {
    // Days since the epoch of any i64 timestamp fit in i32:
    // i64::MAX µs is 106 751 991 days.
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The wall clock as a wire timestamp (0 for a clock set before 1970).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_handles_before_epoch() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(MICROS_PER_DAY - 1), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(i64::MAX), 106_751_991);
    }
}
