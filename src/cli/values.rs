//! The value parsers of the options: instants, durations, sizes, scale factors, each with the
//! reason a value is refused.

use super::*;

/// An RFC 3339 instant, as microseconds since the epoch.
pub fn parse_start_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-01T08:00:00Z)"))
}

/// An RFC 3339 instant.
pub fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-01T08:00:00Z)"))
}

/// A duration such as `500ms`, `5s`, `2m`, greater than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

/// A month `YYYY-MM`, as yyyymm.
pub fn year_month(s: &str) -> Result<i32, String> {
    let bad = || format!("{s:?} is not a month YYYY-MM");
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=9999).contains(&y) {
        return Err(bad());
    }
    Ok(y * 100 + m)
}

/// A size such as `512MiB`, `64MB`, `1GiB`, `4096` (bytes); greater than zero.
pub fn byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use B, KB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 512MiB"))?;
    let bytes = value * unit_bytes as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?} must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// A scale factor: a positive number, at most 10000.
pub fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err("expected a number greater than 0 and at most 10000, e.g. 10".into()),
    }
}

/// `on` or `off` (also `true`/`false`, `1`/`0`, `yes`/`no`, for environment variables).
pub fn on_off(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected on or off, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_yyyy_mm() {
        assert_eq!(year_month("2025-03"), Ok(202503));
        assert_eq!(year_month(" 2026-12 "), Ok(202612));
        for bad in ["2025-13", "2025-00", "2025", "03-2025x", "2025-3-1", ""] {
            let e = year_month(bad).expect_err(bad);
            assert!(e.contains("is not a month YYYY-MM"), "{e}");
        }
    }
}
