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

/// The calendar year (proleptic Gregorian) of a day since 1970-01-01: leap years counted, so the
/// last days of December stay in their year.
pub fn year_of_day(days: i32) -> i32 {
    // Days since 0000-03-01, in 400-year eras of 146,097 days (H. Hinnant's civil_from_days).
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // The year above begins on 1 March: January and February belong to the next one.
    let march_based_month = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + i64::from(march_based_month >= 10);
    year as i32
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

    #[test]
    fn year_of_day_counts_leap_years() {
        // 1970-01-01, 1970-12-31, 1971-01-01; 2024-02-29 and 2024-12-31 (a leap year's last
        // day, which 365-day years put in 2025); 2000-12-31; 1969-12-31.
        for (days, year) in [
            (0, 1970),
            (364, 1970),
            (365, 1971),
            (19_782, 2024),
            (20_088, 2024),
            (20_089, 2025),
            (11_322, 2000),
            (-1, 1969),
        ] {
            assert_eq!(year_of_day(days), year, "day {days}");
        }
        // Every day against chrono's calendar, 1900 to 2100.
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        for days in -25_567..47_482 {
            let date = epoch + chrono::TimeDelta::days(i64::from(days));
            assert_eq!(
                year_of_day(days),
                chrono::Datelike::year(&date),
                "day {days}"
            );
        }
    }
}
