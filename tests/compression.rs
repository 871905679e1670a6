//! Every compression codec Kafka has reaches the lake exactly once: for gzip, snappy, lz4 and
//! zstd, records compressed by the simulator (`--compression`) and by an outside producer
//! (confluent-kafka, tests/produce_compressed.py, replaying a `sim --output` file) are ingested
//! and verified. Kafka's own log dump (`kafka.tools.DumpLogSegments`) shows that every batch in
//! the topic was stored with that codec — the records really were compressed, and not left
//! plain by a producer that ignored the setting.

mod common;

use std::path::Path;

use common::*;

const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

#[tokio::test(flavor = "multi_thread")]
async fn records_compressed_with_each_codec_by_us_and_by_an_outside_producer_land_exactly_once() {
    let broker = Cluster::single("compression").await;
    for (i, codec) in CODECS.into_iter().enumerate() {
        let env = TestEnv::new_on(&format!("codec-{codec}"), &broker.addr()).await;
        // Ours.
        let mut args = small_seed(6, 150, 100 + i);
        args.extend(["--compression".into(), codec.into()]);
        let ours = env.sim(&args).await;
        assert_eq!(ours["delivery_errors"], 0, "{codec}");

        // An outside producer's: another simulation, written to a file and replayed by
        // confluent-kafka with the codec.
        let file = env.lake.with_extension("sim");
        let mut args = small_seed(6, 150, 200 + i);
        args.extend(["--output".into(), file.display().to_string()]);
        let outside = env.sim(&args).await;
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/produce_compressed.py"
            ))
            .arg(&file)
            .arg(broker.addr())
            .arg(env.topic("surgical.telemetry.v1"))
            .arg(env.topic("surgical.events.v1"))
            .arg(codec)
            .output()
            .expect("python3 (scripts/setup.sh installs confluent-kafka)");
        assert!(
            out.status.success(),
            "the outside producer failed ({codec}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&file);

        // Every batch of both topics is stored with the codec.
        for topic in ["surgical.telemetry.v1", "surgical.events.v1"] {
            let batches = stored_codecs(&broker.log_dir(1), &env.topic(topic));
            assert!(!batches.is_empty(), "{codec}: no batches in {topic}");
            assert!(
                batches.iter().all(|c| c == codec),
                "{codec}: {topic} holds batches stored as {:?}",
                batches.iter().collect::<std::collections::BTreeSet<_>>()
            );
        }

        env.ingest_until_idle(&["--max-age", "1s"]).await;
        let seen = env.committed_frames().await;
        assert_exactly_once(&[&ours, &outside], &seen);
        let out = env.verify(&["--json", "--require-drained"]).await;
        assert!(
            out.status.success(),
            "verify ({codec}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            topic_records(&broker.addr(), &env.topic("surgical.telemetry.dlq.v1")),
            0,
            "{codec}: dead letters"
        );
    }
}

/// The codec of every record batch in `topic`'s log segments, as Kafka's own dump tool reads
/// them.
fn stored_codecs(log_dir: &Path, topic: &str) -> Vec<String> {
    let segments: Vec<_> = std::fs::read_dir(log_dir)
        .expect("the broker's log directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('-'))
                .is_some_and(|(t, _)| t == topic)
        })
        .flat_map(|dir| std::fs::read_dir(dir).expect("a partition's directory"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert!(!segments.is_empty(), "no log segments of {topic}");
    let libs = kafka_libs();
    let out = std::process::Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg("kafka.tools.DumpLogSegments")
        .arg("--files")
        .arg(
            segments
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .output()
        .expect("run Kafka's DumpLogSegments");
    assert!(
        out.status.success(),
        "DumpLogSegments: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("compresscodec: "))
        .map(|(_, rest)| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect()
}
