//! What an outside reader must read for each frame sent: the row as the value tests compare it
//! (tests/lake_values.rs reads the lake's files with pyarrow, tests/iceberg.rs the Iceberg table
//! with pyiceberg), computed from the sent frame by the shared oracle, never by the lake's code.
#![allow(dead_code)]

#[path = "../../crates/surgstream-lake/tests/oracle/mod.rs"]
pub mod oracle;

use surgstream_proto::v1::TelemetryFrame;

use oracle::{DATA_MODEL_DECIMALS, decimal_slot, expected_unscaled};

/// A DECIMAL(_, scale) column's text for a sent double: the decimal the double stands for (its
/// shortest representation that reads back as the same double: what the sender wrote and what
/// Rust prints) rounded half away from zero to `scale` digits, as PostgreSQL casts a float8 to
/// NUMERIC; e.g. (-0.125, 2) → "-0.13", (5e-324, 4) → "0.0000". Done on the digits,
/// independently of the lake's code.
pub fn expected_decimal(v: f64, scale: u32) -> String {
    let n = expected_unscaled(v, scale);
    let p = 10u128.pow(scale);
    let sign = if n < 0 { "-" } else { "" };
    let a = n.unsigned_abs();
    format!("{sign}{}.{:0w$}", a / p, a % p, w = scale as usize)
}

/// A row as the tests compare it: column → the text or number the reader printed.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// The row an outside reader must read for a sent frame.
pub fn expected_row(f: &TelemetryFrame) -> Row {
    let mut row = Row::new();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    row.insert("telemetry_id".into(), hex(&f.telemetry_id).into());
    row.insert("procedure_id".into(), hex(&f.procedure_id).into());
    row.insert("robot_id".into(), hex(&f.robot_id).into());
    row.insert("seq".into(), f.seq.into());
    row.insert("timestamp".into(), f.timestamp.into());
    row.insert("tool_type".into(), f.tool_type.clone().into());
    let mut f = f.clone();
    for (name, _, scale) in DATA_MODEL_DECIMALS {
        let v = *decimal_slot(&mut f, name);
        row.insert(name.into(), expected_decimal(v, scale).into());
    }
    row
}
