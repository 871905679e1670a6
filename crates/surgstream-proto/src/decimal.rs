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
    ///
    /// The value is the decimal the double is written as (its shortest form, what the sender
    /// wrote and what PostgreSQL's float8 → numeric cast sees): 0.145 → 0.15, although the
    /// double is 0.14499999999999999…; `(value * 100.0).round()` gives 0.14 there, but 0.15 for
    /// 0.155. Exact for precision ≤ 14 (a tie then has at most 15 significant digits, which a
    /// double keeps: every column of the data model is DECIMAL(10, s) or narrower).
    pub fn to_scaled(self, value: f64) -> Result<i128, DecimalError> {
        if !value.is_finite() {
            return Err(DecimalError::NotFinite { value });
        }
        let unit = pow10(i32::from(self.scale));
        let scaled = if self.precision <= 14 {
            // m ≤ |value|·10^s < m + 1, give or take the product's rounding (which cannot cross
            // an integer below 2^53). The tie m + ½ between them as the double nearest to it:
            // (2m + 1) / (2·10^s), two exact integers, so IEEE division rounds it correctly.
            // Above that double is above the decimal tie; at it, the value IS the tie as
            // written (no shorter decimal is that close for precision ≤ 14): away from zero.
            let a = value.abs();
            let m = (a * unit).floor();
            let tie = (2.0 * m + 1.0) / (2.0 * unit);
            (if a >= tie { m + 1.0 } else { m }).copysign(value)
        } else {
            (value * unit).round()
        };
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
        // Ties as written round away from zero, whichever side of them the double falls.
        let d = DecimalType::new(6, 2);
        for (v, want) in [
            (0.145, 15),
            (0.155, 16),
            (1.005, 101),
            (2.675, 268),
            (0.125, 13),
        ] {
            assert_eq!(d.to_scaled(v), Ok(want), "{v}");
            assert_eq!(d.to_scaled(-v), Ok(-want), "-{v}");
        }
        // The doubles next to a tie are not the tie.
        assert_eq!(d.to_scaled(0.125f64.next_down()), Ok(12));
        assert_eq!(d.to_scaled(0.145f64.next_up()), Ok(15));
        assert_eq!(d.to_scaled(0.145f64.next_down()), Ok(14));
        assert_eq!(DecimalType::new(10, 4).to_scaled(12.34565), Ok(123457));
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
