//! The raw archive through crashes: under a paced live feed with undecodable records mixed in,
//! the ingestor is killed (`kill -9`) eight times at random moments after a raw commit, and
//! aborts itself twice between writing a flush's files and committing its transaction; each
//! time a new one starts where PostgreSQL says. Afterwards, read by confluent-kafka, pyarrow
//! and DuckDB (tests/raw_archive.py, nothing of ours): every record of both topics is in `raw/`
//! exactly once, with the key, headers, value and timestamp Kafka has — dead letters too.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;

use common::*;

/// Records the ingestor cannot decode, on both topics: they are dead-lettered, and archived.
async fn send_undecodable(env: &TestEnv, round: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .create()
        .expect("producer");
    let key = format!("bad-{round}");
    let value = [0xFF, 0x00, round as u8, 0xFE];
    send(
        &producer,
        &env.topic("surgical.telemetry.v1"),
        key.as_bytes(),
        &value,
        Some("surgstream.v1.TelemetryBatch"),
    )
    .await;
    send(
        &producer,
        &env.topic("surgical.events.v1"),
        key.as_bytes(),
        &value,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_consumed_record_is_in_the_raw_archive_once_through_kill_9s() {
    let env = TestEnv::new("raw_crash").await;
    let sim_report = env.lake.with_extension("raw-crash-sim.json");
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(4, 200, 17, &["--report", &report_arg]);

    let mut next = xorshift(0x5851_F42D_4C95_7F2Du64);
    // Small flushes: several commits (and raw files) before each crash.
    let args = [
        "--max-rows",
        "1500",
        "--max-age",
        "300ms",
        "--event-batch",
        "7",
    ];
    let (mut killed, mut aborted) = (0, 0);
    for round in 0..10 {
        send_undecodable(&env, round).await;
        let before = env.count("SELECT count(*) FROM raw_files").await;
        let fault = matches!(round, 3 | 7).then(|| format!("after_write:{}", 1 + next() % 3));
        let fault_env: Vec<(&str, &str)> = fault
            .as_deref()
            .map(|f| vec![("SURGSTREAM_FAULT", f)])
            .unwrap_or_default();
        let log = env.lake.with_extension(format!("raw-crash-{round}.log"));
        let mut child = env.spawn_ingest_logged_with_env(&args, &fault_env, &log);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        if let Some(fault) = &fault {
            // Files (typed and raw) written, the transaction open: SIGABRT, after saying where.
            let status = tokio::time::timeout_at(deadline, child.wait())
                .await
                .expect("the ingestor reached its fault point within 90 s")
                .expect("reap");
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            let (point, hit) = fault.split_once(':').expect("point:n");
            assert_eq!(
                status.signal(),
                Some(6),
                "round {round}: {status}, not the injected abort at {fault}:\n{stderr}"
            );
            assert!(
                stderr.contains(&format!("fault injection: aborting at {point} (hit {hit})")),
                "round {round}: aborted, but not at {fault}:\n{stderr}"
            );
            aborted += 1;
        } else {
            // Killed once it has committed raw files, at a random moment after that.
            loop {
                if env.count("SELECT count(*) FROM raw_files").await > before {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: no new raw commit within 90 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(next() % 400)).await;
            child.start_kill().expect("kill -9 the ingestor");
            let status = child.wait().await.expect("reap");
            assert_eq!(
                status.signal(),
                Some(9),
                "round {round}: the ingestor was to be killed, but {status}"
            );
            killed += 1;
        }
        let _ = std::fs::remove_file(&log);
    }
    assert_eq!((killed, aborted), (8, 2));
    stop(&mut sim, "the simulator").await;
    send_undecodable(&env, 99).await;
    env.ingest_until_idle(&["--max-rows", "5000"]).await;

    // An aborted flush may have left raw files no row names (unless its range was flushed
    // again under the same name): the sweeper removes them (nothing runs now, so any grace is
    // safe), and then the directory holds exactly the committed archive.
    let out = env.sweep("1ms", &[]).await;
    assert!(out.status.success());
    assert_eq!(
        walk_parquet(&env.lake.join("raw")),
        env.count("SELECT count(*) FROM raw_files").await as usize
    );

    // The ingestors published the raw tables as they went (killed mid-publish too); a publish
    // now takes what the last one's commits left, if anything.
    let published = env.iceberg_publish(&[]).await;
    let topics = [
        env.topic("surgical.telemetry.v1"),
        env.topic("surgical.events.v1"),
    ];
    let raw_tables = &published["raw"];
    for topic in &topics {
        let table = format!("raw.{}", topic.replace(['.', '-'], "_").to_lowercase());
        assert!(
            raw_tables[&table]["watermark"].as_i64() > Some(0),
            "{table} was never published: {published}"
        );
    }

    // Our own check first (verify reads the topics and the archive through the manifest).
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r = verify_json(&out);
    assert!(out.status.success(), "{r}");
    assert_eq!(r["raw_checked"], true);
    for field in [
        "raw_missing",
        "raw_duplicated",
        "raw_unexpected",
        "raw_altered",
    ] {
        assert_eq!(r[field], 0, "{field}: {r}");
    }
    // verify's own check of the raw tables against raw_files: every committed file published,
    // nothing else.
    let raw_files = env.count("SELECT count(*) FROM raw_files").await;
    assert_eq!(assert_raw_tables_published(&r), raw_files, "{r}");

    // Then the outside readers, over the whole raw/ directory and the raw Iceberg tables.
    let out = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/raw_archive.py"))
        .args(["--catalog", &env.database_url()])
        .arg(&env.brokers)
        .arg(&env.lake)
        .args(&topics)
        .output()
        .await
        .expect("python3 (scripts/setup.sh installs pyarrow, duckdb and confluent-kafka)");
    assert!(
        out.status.success(),
        "raw_archive.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // More than the 11 undecodable records on each: the simulator's records are there too.
    for (topic, least) in topics.iter().zip([500, 20]) {
        let t = &check[topic];
        let kafka = t["kafka_records"].as_u64().unwrap_or(0);
        assert!(
            kafka > least,
            "{topic}: too few records to prove anything: {t}"
        );
        for field in ["missing", "duplicated", "unexpected", "altered"] {
            assert_eq!(t[field], 0, "{topic} {field}: {t}");
        }
        assert_eq!(t["raw_rows"].as_u64(), Some(kafka), "{t}");
        let ice = &t["iceberg"];
        for field in ["missing", "duplicated", "unexpected", "altered"] {
            assert_eq!(ice[field], 0, "{topic}'s raw table, {field}: {t}");
        }
        assert_eq!(ice["raw_rows"].as_u64(), Some(kafka), "{t}");
        let duck = &check["duckdb"][topic];
        assert_eq!(
            (duck["rows"].as_u64(), duck["distinct_offsets"].as_u64()),
            (Some(kafka), Some(kafka)),
            "DuckDB's count of {topic}: {check}"
        );
    }
    // The undecodable records were dead-lettered, and are archived all the same.
    assert_eq!(
        r["partitions"].as_array().map(|ps| ps
            .iter()
            .map(|p| p["invalid_records"].as_u64().unwrap_or(0))
            .sum::<u64>()),
        Some(22),
        "11 undecodable records on each topic: {r}"
    );
}

/// Parquet files under `dir`, recursively.
fn walk_parquet(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_parquet(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

/// A group that ran without the raw archive (an older version, `--raw-archive off`) and then
/// with it: `verify` checks the archive from where each partition's starts, and says how many
/// records came before.
#[tokio::test(flavor = "multi_thread")]
async fn an_archive_started_later_is_checked_from_where_it_starts() {
    let env = TestEnv::new("raw_later").await;
    env.sim(&small_seed(10, 50, 5)).await;
    env.ingest_until_idle(&["--raw-archive", "off"]).await;
    assert_eq!(env.count("SELECT count(*) FROM raw_files").await, 0);
    env.sim(&small_seed(10, 50, 6)).await;
    env.ingest_until_idle(&[]).await;
    assert!(env.count("SELECT count(*) FROM raw_files").await > 0);

    let out = env.verify(&["--json", "--require-drained"]).await;
    let r = verify_json(&out);
    assert!(out.status.success(), "{r}");
    assert_eq!(r["raw_checked"], true);
    assert!(
        r["raw_before_start"].as_u64().unwrap_or(0) > 0,
        "the first run's records are before the archive: {r}"
    );
    assert!(r["raw_records"].as_u64().unwrap_or(0) > 0, "{r}");
    for field in [
        "raw_missing",
        "raw_duplicated",
        "raw_unexpected",
        "raw_altered",
    ] {
        assert_eq!(r[field], 0, "{field}: {r}");
    }
    // The raw tables, made by the first run that archived, hold every raw file.
    let raw_files = env.count("SELECT count(*) FROM raw_files").await;
    assert_eq!(assert_raw_tables_published(&r), raw_files, "{r}");
}
