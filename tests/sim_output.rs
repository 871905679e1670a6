//! `surgstream sim --output`: the simulator alone, without Kafka. Same seed, options and start
//! time → the same bytes, whatever the run.

mod common;

use std::time::Duration;

use common::*;

const LIVE: &[&str] = &[
    "--profile",
    "live",
    "--robots",
    "4",
    "--procedures",
    "9",
    "--hz",
    "100",
    "--speed",
    "3600",
    "--start-time",
    "2026-03-02T08:00:00Z",
];

async fn sim_to_file(seed: &str, tag: &str) -> (Vec<u8>, serde_json::Value) {
    sim_to_file_with(LIVE, seed, tag).await
}

async fn sim_to_file_with(options: &[&str], seed: &str, tag: &str) -> (Vec<u8>, serde_json::Value) {
    let dir = std::env::temp_dir();
    let out = dir.join(format!(
        "surgstream-sim-{}-{tag}-{seed}.bin",
        std::process::id()
    ));
    let report = dir.join(format!(
        "surgstream-sim-{}-{tag}-{seed}.json",
        std::process::id()
    ));
    let (out_arg, report_arg) = (out.display().to_string(), report.display().to_string());
    let args: Vec<String> = ["sim"]
        .iter()
        .chain(options)
        .chain(&[
            "--seed",
            seed,
            "--output",
            out_arg.as_str(),
            "--report",
            report_arg.as_str(),
        ])
        .map(|s| (*s).to_owned())
        .collect();
    let run = run(&args, Duration::from_secs(120)).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&out).expect("output file");
    let json = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&report);
    (bytes, json)
}

#[tokio::test]
async fn same_seed_same_bytes_and_the_file_holds_what_the_report_says() {
    let (a, report) = sim_to_file("99", "a").await;
    let (b, _) = sim_to_file("99", "b").await;
    let (c, _) = sim_to_file("100", "c").await;
    assert!(a == b, "two runs with the same seed differ");
    assert!(a != c, "two seeds gave the same stream");

    let records = surgstream_sim::file::read(&a[..]).expect("readable");
    let mut frames = 0u64;
    let mut events = 0u64;
    for r in &records {
        match r.kind {
            surgstream_sim::file::Kind::Telemetry => {
                let batch = surgstream_proto::decode_batch(&r.value).expect("telemetry decodes");
                assert!(
                    batch
                        .frames
                        .iter()
                        .all(|f| f.procedure_id.as_ref() == r.key)
                );
                frames += batch.frames.len() as u64;
            }
            surgstream_sim::file::Kind::Event => {
                surgstream_proto::decode_event(&r.value).expect("event decodes");
                events += 1;
            }
        }
    }
    assert_eq!(frames, report["frames"].as_u64().expect("frames"));
    assert_eq!(events, report["events"].as_u64().expect("events"));
    assert_eq!(report["events_by_type"]["ProcedureScheduled"], 9);
    let start = 1_772_438_400_000_000i64; // 2026-03-02T08:00:00Z
    assert!(
        records.first().is_some_and(|r| r.at == start),
        "the run starts at --start-time"
    );
    assert!(
        records.windows(2).all(|w| w[0].at <= w[1].at),
        "records in time order"
    );
}

#[tokio::test]
async fn seed_profile_is_byte_identical_for_a_seed() {
    // A tenth of the data model's volumes, 5 samples per procedure.
    let options = [
        "--scale",
        "0.1",
        "--samples",
        "5",
        "--start-time",
        "2024-11-26T00:00:00Z",
    ];
    let (a, report) = sim_to_file_with(&options, "5", "seed-a").await;
    let (b, _) = sim_to_file_with(&options, "5", "seed-b").await;
    let (c, _) = sim_to_file_with(&options, "6", "seed-c").await;
    assert!(a == b, "two seed-profile runs with the same seed differ");
    assert!(a != c, "two seeds gave the same stream");
    assert_eq!(report["events_by_type"]["ProcedureScheduled"], 500);
    assert_eq!(report["events_by_type"]["RobotRegistered"], 5);
    let records = surgstream_sim::file::read(&a[..]).expect("readable");
    assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn bad_start_time_names_the_option() {
    let args: Vec<String> = ["sim", "--start-time", "yesterday", "--dry-run"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let out = run(&args, Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: invalid value 'yesterday' for '--start-time"),
        "{err}"
    );
}
