//! Values, not just keys: every frame this test sends — a simulator run's records and frames made
//! to hit the edges of every column — is in the committed lake (the files `lake_files` names)
//! exactly once, with every column as sent, as an outside reader (pyarrow, tests/lake_values.py)
//! reads it: the ids' 16 bytes, the timestamp in µs UTC, each DECIMAL column the sent double
//! rounded half away from zero to the data model's scale (computed here, not by the lake), the
//! tool as sent; each file holds the rows of the event hour its path names, sorted by
//! (procedure_id, timestamp).

mod common;
mod sent_rows;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::DateTime;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use surgstream_proto::v1::{TelemetryBatch, TelemetryFrame};

use common::*;
use sent_rows::oracle::{DATA_MODEL_DECIMALS, decimal_slot};
use sent_rows::{Row, expected_decimal, expected_row};

const HOUR: i64 = 3_600_000_000;
/// The earliest timestamp the lake takes (docs: the sane window starts 2000-01-01T00:00:00Z).
const EARLIEST: i64 = 946_684_800_000_000;

/// The literal `n / 10^scale` as a double (the one nearest to that decimal).
fn literal(n: i64, scale: u32) -> f64 {
    let p = 10u64.pow(scale);
    let sign = if n < 0 { "-" } else { "" };
    let a = n.unsigned_abs();
    format!("{sign}{}.{:0w$}", a / p, a % p, w = scale as usize)
        .parse()
        .expect("a decimal literal")
}

/// The edges of a DECIMAL(precision, scale) column, as doubles the sender may send: the
/// largest and smallest values that fit (and just inside them), zero and negative zero, the
/// smallest step either way, values that round to zero, exact ties (x.xx5 a double holds
/// exactly: odd multiples of 2^-(scale+1), e.g. ±0.125 at scale 2, 0.03125 at scale 4) and
/// the doubles next to one, values just either side of a tie as written, tiny and subnormal
/// doubles, and long fractions.
fn edges(precision: u8, scale: u32) -> Vec<f64> {
    let steps = 10i64.pow(u32::from(precision)) - 1;
    let whole = (10i64.pow(u32::from(precision) - scale) - 1) as f64;
    let unit = literal(1, scale);
    let tie = 1.0 / f64::from(1u32 << (scale + 1)); // 0.125 or 0.03125: exact
    let big_tie = whole + f64::from((1u32 << (scale + 1)) - 1) * tie; // 9999.875, …
    let max = literal(steps, scale);
    vec![
        max,
        -max,
        literal(steps - 1, scale),
        max + 0.4 * unit, // still rounds down to the largest value
        -(max + 0.4 * unit),
        0.0,
        -0.0,
        unit,
        -unit,
        0.4 * unit,
        -0.4 * unit,
        tie,
        -tie,
        big_tie,
        -big_tie,
        tie.next_up(),
        tie.next_down(),
        -tie.next_down(),
        literal(1, scale + 1) * 4.9999, // 0.0049999: down
        literal(1, scale + 1) * 5.0001, // 0.0050001: up
        5e-324,
        -5e-324,
        f64::MIN_POSITIVE,
        1e-300,
        1.0 / 3.0,
        -2.0 / 3.0,
        std::f64::consts::PI * 10f64.powi(i32::from(precision) - scale as i32 - 1),
        -std::f64::consts::E,
        1.23456,
        -1.23454,
    ]
}

/// Texts of every kind the tool column takes: empty, plain, accented, CJK and emoji, exactly
/// VARCHAR(50)'s 50 bytes (in 2-byte characters and in ASCII), quotes, escapes, controls.
const TOOLS: [&str; 9] = [
    "",
    "grasper",
    "needle_driver",
    "pince à biopsie",
    "手術用鉗子 🩺",
    "ééééééééééééééééééééééééé",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "tab\tquote\" backslash\\ nul\0 del\u{7f}",
    "Ω≈ç√∫ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
];

/// Frames that hit the edges of every column, as Kafka records (key = procedure_id, one
/// procedure per record), around `now` (µs UTC).
fn edge_records(now: i64) -> Vec<([u8; 16], TelemetryBatch)> {
    let columns: Vec<Vec<f64>> = DATA_MODEL_DECIMALS
        .iter()
        .map(|(_, p, s)| edges(*p, *s))
        .collect();
    let longest = columns.iter().map(Vec::len).max().unwrap_or_default();
    let h = now - now.rem_euclid(HOUR) - 2 * HOUR;
    // Both sides of two hour boundaries, the first µs the lake takes, now, and later today.
    let times = [
        h - 1,
        h,
        h + 1,
        h + HOUR - 1,
        h + HOUR,
        EARLIEST,
        EARLIEST + 1,
        now,
        now + 12 * HOUR,
    ];
    let procedures: [[u8; 16]; 3] = [
        [0; 16],
        [0xff; 16],
        *uuid::Uuid::parse_str("0193a8f2-7c41-7d3e-9b2a-5e6f70818293")
            .expect("uuid")
            .as_bytes(),
    ];
    let mut frames: Vec<TelemetryFrame> = Vec::new();
    // Each column's edges in turn, every column at a different place in its list so that no
    // two columns of a frame hold the same value (a swap of two columns shows).
    for e in 0..longest.max(times.len()) * 2 {
        let procedure = procedures[e % procedures.len()];
        let mut telemetry_id = [0x5a_u8; 16];
        telemetry_id[..8].copy_from_slice(&(e as u64).to_be_bytes());
        telemetry_id[15] = e as u8;
        let mut robot_id = [0u8; 16];
        robot_id[0] = 0x80 | (e % 3) as u8;
        robot_id[15] = 0xff;
        let mut f = TelemetryFrame {
            telemetry_id: Bytes::copy_from_slice(&telemetry_id),
            procedure_id: Bytes::copy_from_slice(&procedure),
            robot_id: Bytes::copy_from_slice(&robot_id),
            seq: match e {
                0 => i64::MAX as u64,
                e => e as u64 - 1,
            },
            timestamp: times[e % times.len()],
            tool_type: TOOLS[e % TOOLS.len()].to_owned(),
            ..Default::default()
        };
        for (c, ((name, _, _), values)) in DATA_MODEL_DECIMALS.iter().zip(&columns).enumerate() {
            *decimal_slot(&mut f, name) = values[(e + 3 * c) % values.len()];
        }
        frames.push(f);
    }
    let mut by_procedure: HashMap<[u8; 16], Vec<TelemetryFrame>> = HashMap::new();
    for f in frames {
        let key: [u8; 16] = f.procedure_id[..].try_into().expect("16 bytes");
        by_procedure.entry(key).or_default().push(f);
    }
    let mut records = Vec::new();
    for (key, frames) in by_procedure {
        for chunk in frames.chunks(7) {
            records.push((
                key,
                TelemetryBatch {
                    frames: chunk.to_vec(),
                },
            ));
        }
    }
    records
}

/// `date=YYYY-MM-DD/hour=HH` of a timestamp (µs UTC).
fn partition_of(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .expect("a timestamp chrono knows")
        .format("date=%Y-%m-%d/hour=%H")
        .to_string()
}

#[test]
fn the_expected_decimals_round_the_written_digits_half_away_from_zero() {
    assert_eq!(expected_decimal(1.23456, 4), "1.2346");
    assert_eq!(expected_decimal(-1.23454, 4), "-1.2345");
    assert_eq!(expected_decimal(-0.125, 2), "-0.13");
    assert_eq!(expected_decimal(0.145, 2), "0.15");
    assert_eq!(expected_decimal(99.994, 2), "99.99");
    assert_eq!(expected_decimal(-0.00004, 4), "0.0000");
    assert_eq!(expected_decimal(-0.0, 2), "0.00");
    assert_eq!(expected_decimal(5e-324, 4), "0.0000");
    assert_eq!(expected_decimal(999_999.999_9, 4), "999999.9999");
    assert_eq!(literal(-99_999_999, 2), -999_999.99);
    assert_eq!(partition_of(EARLIEST), "date=2000-01-01/hour=00");
    assert!(TOOLS.iter().all(|t| t.len() <= 50));
    assert_eq!(TOOLS[5].len(), 50);
    assert_eq!(TOOLS[6].len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn pyarrow_reads_every_column_as_sent() {
    let env = TestEnv::new("values").await;
    let telemetry = env.topic("surgical.telemetry.v1");

    // What is sent: a simulator run's telemetry records (written to a file, not to Kafka, and
    // sent from here), and the edge frames.
    let file = env.lake.with_extension("sim.bin");
    let out = run(
        &[
            "sim",
            "--profile",
            "live",
            "--robots",
            "3",
            "--procedures",
            "6",
            "--hz",
            "100",
            "--speed",
            "3600",
            "--start-time",
            "2026-03-02T08:00:00Z",
            "--seed",
            "21",
            "--output",
            &file.display().to_string(),
        ]
        .map(str::to_owned),
        Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "sim --output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).expect("the simulator's file");
    let _ = std::fs::remove_file(&file);
    let mut records: Vec<([u8; 16], Vec<u8>)> = surgstream_sim::file::read(&bytes[..])
        .expect("a simulator file")
        .into_iter()
        .filter(|r| r.kind == surgstream_sim::file::Kind::Telemetry)
        .map(|r| (r.key, r.value))
        .collect();
    let simulated = records.len();
    assert!(
        simulated > 50,
        "the simulator wrote {simulated} telemetry records"
    );
    let now = surgstream_proto::time::now_micros();
    records.extend(
        edge_records(now)
            .into_iter()
            .map(|(key, batch)| (key, surgstream_proto::encode_batch(&batch).to_vec())),
    );

    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer");
    let mut sent: HashMap<String, (Row, TelemetryFrame)> = HashMap::new();
    for (key, value) in &records {
        send(
            &p,
            &telemetry,
            key,
            value,
            Some(surgstream_proto::headers::SCHEMA_TELEMETRY_BATCH),
        )
        .await;
        for f in surgstream_proto::decode_batch(value)
            .expect("what was sent decodes")
            .frames
        {
            let row = expected_row(&f);
            let id = row["telemetry_id"].as_str().unwrap_or_default().to_owned();
            assert!(
                sent.insert(id.clone(), (row, f)).is_none(),
                "telemetry_id {id} sent twice"
            );
        }
    }

    let ingest = env.ingest_until_idle(&["--max-age", "1s"]).await;
    let summary = String::from_utf8_lossy(&ingest.stdout);
    assert!(
        summary.contains(" 0 telemetry and 0 event dead letters"),
        "every frame sent is valid: {summary}"
    );

    // pyarrow reads every committed file.
    let paths: Vec<String> = sqlx::query_scalar("SELECT path FROM lake_files ORDER BY path")
        .fetch_all(&env.pool)
        .await
        .expect("lake_files");
    assert!(!paths.is_empty(), "nothing was committed");
    let py = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lake_values.py"))
        .arg(&env.lake)
        .args(&paths)
        .output()
        .await
        .expect("python3 must be installed (scripts/setup.sh installs pyarrow)");
    assert!(
        py.status.success(),
        "pyarrow could not read the lake:\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&py.stdout).expect("JSON from pyarrow");

    let mut decimal_types: Vec<(&str, String)> = DATA_MODEL_DECIMALS
        .iter()
        .map(|(n, p, s)| (*n, format!("decimal128({p}, {s})")))
        .collect();
    decimal_types.push(("timestamp", "timestamp[us, tz=UTC]".into()));
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut misplaced: Vec<String> = Vec::new();
    for file in read["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        for (name, ty) in &decimal_types {
            assert_eq!(file["types"][name], **ty, "{path}: the type of {name}");
        }
        let rows = file["rows"].as_array().expect("rows");
        assert!(!rows.is_empty(), "{path} holds no rows");
        let mut previous: Option<(String, i64)> = None;
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_object().expect("a row");
            let id = row["telemetry_id"]
                .as_str()
                .expect("telemetry_id")
                .to_owned();
            let timestamp = row["timestamp"].as_i64().expect("timestamp in µs");
            // The file is the event hour its path names, sorted by (procedure_id, timestamp).
            if !path.contains(&format!("/{}/", partition_of(timestamp))) {
                misplaced.push(format!(
                    "{path} row {i}: timestamp {timestamp} µs belongs in {}",
                    partition_of(timestamp)
                ));
            }
            let key = (
                row["procedure_id"].as_str().unwrap_or_default().to_owned(),
                timestamp,
            );
            if previous.as_ref().is_some_and(|prev| *prev > key) {
                misplaced.push(format!(
                    "{path} row {i}: out of (procedure_id, timestamp) order"
                ));
            }
            previous = Some(key);

            *seen.entry(id.clone()).or_default() += 1;
            let Some((want, frame)) = sent.get(&id) else {
                wrong.push(format!("{path} row {i}: telemetry_id {id} was never sent"));
                continue;
            };
            let mut names: Vec<&String> = want.keys().chain(row.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                if want.get(name) != row.get(name) {
                    wrong.push(format!(
                        "telemetry_id {id}, column {name}: pyarrow read {}, expected {} (sent {})",
                        row.get(name).map_or("nothing".into(), ToString::to_string),
                        want.get(name)
                            .map_or("no such column".into(), ToString::to_string),
                        sent_text(frame, name),
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} values differ from what was sent, e.g.:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // As multisets: every frame sent read once, nothing else.
    let missing: Vec<&String> = sent.keys().filter(|id| !seen.contains_key(*id)).collect();
    let twice: Vec<(&String, &u32)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{} of {} frames sent are missing (e.g. {:?}), {} read more than once (e.g. {:?})",
        missing.len(),
        sent.len(),
        missing.first(),
        twice.len(),
        twice.first()
    );
    assert!(
        misplaced.is_empty(),
        "{} rows outside their file's hour or order, e.g.:\n{}",
        misplaced.len(),
        misplaced
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        sent.len() > simulated,
        "frames from both sources were compared"
    );
}

/// A frame's field as sent, for a failure message.
fn sent_text(f: &TelemetryFrame, column: &str) -> String {
    let mut f = f.clone();
    match column {
        "seq" => f.seq.to_string(),
        "timestamp" => format!("{} µs", f.timestamp),
        "tool_type" => format!("{:?}", f.tool_type),
        "telemetry_id" | "procedure_id" | "robot_id" => "16 bytes".into(),
        name if DATA_MODEL_DECIMALS.iter().any(|(n, _, _)| *n == name) => {
            format!("{:?}", *decimal_slot(&mut f, name))
        }
        _ => "no such field".into(),
    }
}
