//! What an outside reader must read for each frame sent: the row as the value tests compare it
//! (tests/lake_values.rs reads the lake's files with pyarrow, tests/iceberg.rs the Iceberg table
//! with pyiceberg), computed from the sent frame by the shared oracle, never by the lake's code.
#![allow(dead_code)]

#[path = "../../crates/surgstream-lake/tests/oracle/mod.rs"]
pub mod oracle;

use std::collections::{BTreeSet, HashMap};

use surgstream_proto::v1::TelemetryFrame;
use surgstream_sim::file::{FramedRecord, Kind};

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

/// Every frame of `records`, by telemetry id (hex), with the row an outside reader must read.
pub fn frames_sent(records: &[FramedRecord]) -> HashMap<String, (Row, TelemetryFrame)> {
    let mut sent = HashMap::new();
    for r in records.iter().filter(|r| r.kind == Kind::Telemetry) {
        let batch = surgstream_proto::decode_batch(&r.value).expect("a batch");
        for f in batch.frames {
            let row = expected_row(&f);
            let id = row["telemetry_id"].as_str().expect("id").to_owned();
            assert!(sent.insert(id, (row, f)).is_none(), "a frame sent twice");
        }
    }
    sent
}

/// pyiceberg's rows against the frames sent: each once, every column equal; returns how many.
pub fn compare_rows(
    read: &serde_json::Value,
    sent: &HashMap<String, (Row, TelemetryFrame)>,
) -> usize {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut wrong = Vec::new();
    let rows = read["rows"].as_array().expect("rows");
    for row in rows {
        let row = row.as_object().expect("a row");
        let id = row["telemetry_id"].as_str().expect("telemetry_id");
        *seen.entry(id).or_default() += 1;
        let Some((want, _)) = sent.get(id) else {
            wrong.push(format!("telemetry_id {id} was never sent"));
            continue;
        };
        if want != row {
            let differs: Vec<String> = want
                .keys()
                .chain(row.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| want.get(*k) != row.get(*k))
                .map(|k| format!("{k}: read {:?}, sent {:?}", row.get(k), want.get(k)))
                .collect();
            wrong.push(format!("telemetry_id {id}: {}", differs.join("; ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows differ from what was sent, e.g.:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let missing = sent
        .keys()
        .filter(|id| !seen.contains_key(id.as_str()))
        .count();
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(
        missing == 0 && twice == 0,
        "{missing} of {} frames sent are not in the Iceberg table, {twice} are there more than once",
        sent.len()
    );
    rows.len()
}
