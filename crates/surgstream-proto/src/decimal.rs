//! DECIMAL(p,s) columns travel as doubles; this turns them into exact scaled integers
//! (what Arrow's Decimal128 and PostgreSQL's NUMERIC hold) and rejects what cannot be stored.

/// A DECIMAL(precision, scale) column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalType {
    /// Total significant digits.
    pub precision: u8,
    /// Digits after the decimal point.
    pub scale: i8,
}

/// Why a double could not be stored in a DECIMAL column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecimalError {
    /// NaN or an infinity.
    #[error("{value} is not a finite number")]
    NotFinite {
        /// The offending value.
        value: f64,
    },
    /// Too many digits for the column.
    #[error("{value} does not fit DECIMAL({precision},{scale})")]
    Overflow {
        /// The offending value.
        value: f64,
        /// Column precision.
        precision: u8,
        /// Column scale.
        scale: i8,
    },
}

/// 10^n for n in 0..=22: each is exact in an f64 (5^22 < 2^53), as `10f64.powi(n)` is, without
/// its library call per value.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn pow10(n: i32) -> f64 {
    usize::try_from(n)
        .ok()
        .and_then(|i| POW10.get(i))
        .copied()
        .unwrap_or_else(|| 10f64.powi(n))
}

impl DecimalType {
    /// DECIMAL(precision, scale).
    pub const fn new(precision: u8, scale: i8) -> Self {
        Self { precision, scale }
    }

    /// The value rounded half away from zero to `scale` digits, as an integer count of
    /// 10^-scale units, or an error when it is not finite or has more than `precision` digits.
    pub fn to_scaled(self, value: f64) -> Result<i128, DecimalError> {
        if !value.is_finite() {
            return Err(DecimalError::NotFinite { value });
        }
        let scaled = (value * pow10(i32::from(self.scale))).round();
        let limit = pow10(i32::from(self.precision));
        if scaled.abs() >= limit {
            return Err(DecimalError::Overflow {
                value,
                precision: self.precision,
                scale: self.scale,
            });
        }
        // |scaled| < 10^precision: through i64 (one instruction) up to 18 digits, else i128
        // (a library call; exact below 10^38).
        Ok(if self.precision <= 18 {
            scaled as i64 as i128
        } else {
            scaled as i128
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_powi() {
        for n in -3..30 {
            assert_eq!(pow10(n).to_bits(), 10f64.powi(n).to_bits(), "10^{n}");
        }
    }

    #[test]
    fn rounds_to_scale() {
        let d = DecimalType::new(10, 4);
        assert_eq!(d.to_scaled(1.23456), Ok(12346));
        assert_eq!(d.to_scaled(-1.23454), Ok(-12345));
        assert_eq!(d.to_scaled(0.0), Ok(0));
        assert_eq!(DecimalType::new(3, 2).to_scaled(4.999), Ok(500));
    }

    #[test]
    fn rejects_overflow_and_non_finite() {
        let d = DecimalType::new(4, 2);
        assert_eq!(d.to_scaled(99.99), Ok(9999));
        assert!(matches!(
            d.to_scaled(100.0),
            Err(DecimalError::Overflow { .. })
        ));
        assert!(matches!(
            d.to_scaled(-100.0),
            Err(DecimalError::Overflow { .. })
        ));
        assert!(matches!(
            d.to_scaled(f64::NAN),
            Err(DecimalError::NotFinite { .. })
        ));
        assert_eq!(
            d.to_scaled(f64::INFINITY).expect_err("inf").to_string(),
            "inf is not a finite number"
        );
        assert_eq!(
            d.to_scaled(123.0).expect_err("overflow").to_string(),
            "123 does not fit DECIMAL(4,2)"
        );
    }
}

/// Renders a scaled integer (a count of 10^-scale units) as a decimal literal, e.g.
/// `(-1234, 2)` → `"-12.34"`: exact, for binding to NUMERIC columns.
pub fn scaled_to_string(scaled: i128, scale: i8) -> String {
    if scale <= 0 {
        return (scaled * 10i128.pow(u32::from(scale.unsigned_abs()))).to_string();
    }
    let p = 10i128.pow(scale as u32);
    let sign = if scaled < 0 { "-" } else { "" };
    let a = scaled.unsigned_abs();
    let p = p as u128;
    format!("{sign}{}.{:0width$}", a / p, a % p, width = scale as usize)
}

#[cfg(test)]
mod string_tests {
    use super::*;

    #[test]
    fn renders_exact_literals() {
        assert_eq!(scaled_to_string(357, 2), "3.57");
        assert_eq!(scaled_to_string(-5, 2), "-0.05");
        assert_eq!(scaled_to_string(100000, 4), "10.0000");
        assert_eq!(scaled_to_string(12, 0), "12");
    }
}
