//! Bad records go to the dead-letter topics with their reason and source; the good records
//! around them are all written; the offset moves on.

mod common;

use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use surgstream_proto::v1::{Event, ProcedureStarted, TelemetryBatch, TelemetryFrame, event::Body};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_are_dead_lettered_with_reason_and_source() {
    let env = TestEnv::new("dlq").await;
    let report = env
        .sim(&[
            "--robots",
            "2",
            "--procedures",
            "3",
            "--hz",
            "100",
            "--profile",
            "live",
            "--speed",
            "3600",
            "--fast",
        ])
        .await;
    let telemetry = env.topic("surgical.telemetry.v1");
    let events = env.topic("surgical.events.v1");
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer");

    let now = chrono_now();
    let mut nan = TelemetryFrame {
        telemetry_id: Bytes::from(vec![1u8; 16]),
        procedure_id: Bytes::from(vec![2u8; 16]),
        robot_id: Bytes::from(vec![3u8; 16]),
        timestamp: now,
        ..Default::default()
    };
    nan.arm_position_x = f64::NAN;
    let nan = surgstream_proto::encode_batch(&TelemetryBatch { frames: vec![nan] });
    let garbage: &[u8] = b"\xff\xfe not protobuf";
    let sent = [
        (
            send(&p, &telemetry, &[2u8; 16], garbage, None).await,
            garbage,
        ),
        (
            send(
                &p,
                &telemetry,
                &[2u8; 16],
                &nan,
                Some("surgstream.v1.TelemetryBatch"),
            )
            .await,
            &nan[..],
        ),
        (
            send(
                &p,
                &telemetry,
                &[2u8; 16],
                &nan,
                Some("surgstream.v1.SomethingElse"),
            )
            .await,
            &nan[..],
        ),
    ];
    let unknown = Event {
        event_id: Bytes::from(vec![9u8; 16]),
        occurred_at: now,
        body: Some(Body::ProcedureStarted(ProcedureStarted {
            procedure_id: Bytes::from(vec![4u8; 16]),
            robot_id: Bytes::from(vec![5u8; 16]),
            start_time: now,
        })),
    };
    send(
        &p,
        &events,
        &[5u8; 16],
        &surgstream_proto::encode_event(&unknown),
        Some("surgstream.v1.Event"),
    )
    .await;
    send(
        &p,
        &events,
        &[5u8; 16],
        b"\x0a\x05",
        Some("surgstream.v1.Event"),
    )
    .await;

    env.ingest_until_idle(&[]).await;

    // Every good frame and event is there; the bad ones are not.
    assert_exactly_once(&[&report], &env.committed_frames().await);
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures").await,
        report["events_by_type"]["ProcedureScheduled"]
            .as_i64()
            .unwrap_or(-1)
    );

    let mut records = dead_letter_records(&env.topic("surgical.telemetry.dlq.v1"), 3).await;
    records.sort_by_key(DeadLetter::source);
    // Each dead letter names the record it came from (the partition and offset the broker gave
    // the send) and carries its key and bytes unchanged.
    let mut expected: Vec<_> = sent.iter().collect();
    expected.sort_by_key(|(position, _)| *position);
    for (d, ((partition, offset), bytes)) in records.iter().zip(&expected) {
        assert_eq!(d.source(), (*partition, *offset), "{:?}", d.headers);
        assert_eq!(&d.payload[..], *bytes, "payload of {partition}@{offset}");
        assert_eq!(d.key.as_deref(), Some(&[2u8; 16][..]));
    }
    let tdl: Vec<_> = records.into_iter().map(|d| d.headers).collect();
    let reasons: Vec<&str> = tdl.iter().map(|h| h["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["undecodable", "non_finite_value", "unknown_schema"]
    );
    for h in &tdl {
        assert_eq!(h["source.topic"], telemetry);
        assert!(!h["error"].is_empty(), "{h:?}");
    }
    assert!(
        tdl[1]["error"].contains("arm_position_x"),
        "{}",
        tdl[1]["error"]
    );

    let edl = dead_letters(&env.topic("surgical.events.dlq.v1"), 2).await;
    let mut reasons: Vec<&str> = edl.iter().map(|h| h["reason"].as_str()).collect();
    reasons.sort();
    assert_eq!(reasons, ["undecodable", "unknown_procedure"]);
    assert!(edl.iter().all(|h| h["source.topic"] == events));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// 10,000 bad records — random bytes, truncated batches, batches that decode but hold a NaN,
/// an infinity, a timestamp outside any sane window or a short id, and good batches under an
/// unknown schema header — written by a separate producer between two simulator runs: every one
/// is in the dead-letter topic with its reason, every valid frame is in the lake exactly once,
/// nothing crashes.
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_garbage_records_are_all_dead_lettered_and_nothing_valid_is_lost() {
    const GARBAGE: usize = 10_000;
    let env = TestEnv::new("garbage").await;
    let first = env.sim_live_fast(2, 2, 50, &["--seed", "1"]).await;

    let telemetry = env.topic("surgical.telemetry.v1");
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    // One valid single-frame batch: cut anywhere before its end, it no longer decodes (the
    // outer length prefix promises more bytes than there are; at 0 bytes it is empty).
    let frame = TelemetryFrame {
        telemetry_id: Bytes::from(vec![1u8; 16]),
        procedure_id: Bytes::from(vec![2u8; 16]),
        robot_id: Bytes::from(vec![3u8; 16]),
        timestamp: chrono_now(),
        tool_type: "grasper".into(),
        arm_position_x: 12.5,
        system_temperature: 36.6,
        ..Default::default()
    };
    let whole = surgstream_proto::encode_batch(&TelemetryBatch {
        frames: vec![frame.clone()],
    });
    let broken = |i: usize| {
        let mut f = frame.clone();
        match i % 4 {
            0 => f.grip_pressure = f64::NAN,
            1 => f.force_feedback_z = f64::INFINITY,
            2 => f.timestamp = 86_400_000_000, // 1970-01-02
            _ => f.robot_id = Bytes::from(vec![3u8; 5]),
        }
        surgstream_proto::encode_batch(&TelemetryBatch { frames: vec![f] })
    };
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    let mut records = Vec::with_capacity(GARBAGE);
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..GARBAGE {
        let (value, schema, reason): (Vec<u8>, _, _) = match i % 4 {
            0 => {
                let len = (next() % 300) as usize;
                (
                    (0..len).map(|_| next() as u8).collect(),
                    None,
                    "undecodable",
                )
            }
            1 => (
                whole[..(next() as usize % whole.len())].to_vec(),
                None,
                "undecodable",
            ),
            2 => (
                broken(i / 4).to_vec(),
                None,
                [
                    "non_finite_value",
                    "non_finite_value",
                    "timestamp_out_of_range",
                    "bad_uuid",
                ][(i / 4) % 4],
            ),
            _ => (
                whole.to_vec(),
                Some("surgstream.v1.Other"),
                "unknown_schema",
            ),
        };
        *expected.entry(reason.to_owned()).or_insert(0usize) += 1;
        let key = next().to_le_bytes().repeat(2);
        records.push((key, value, schema));
    }
    let mut positions = std::collections::HashMap::new();
    for chunk in records.chunks(500) {
        let sends = chunk.iter().map(|(k, v, schema)| {
            let mut r = rdkafka::producer::FutureRecord::to(&telemetry)
                .key(k)
                .payload(v);
            if let Some(s) = schema {
                r = r.headers(rdkafka::message::OwnedHeaders::new().insert(
                    rdkafka::message::Header {
                        key: "schema",
                        value: Some(*s),
                    },
                ));
            }
            p.send(r, std::time::Duration::from_secs(30))
        });
        for ((_, value, _), r) in chunk.iter().zip(futures::future::join_all(sends).await) {
            let d = r.map_err(|(e, _)| e).expect("garbage delivered");
            positions.insert((d.partition, d.offset), value.clone());
        }
    }
    let second = env.sim_live_fast(2, 2, 50, &["--seed", "2"]).await;

    let out = env.ingest_until_idle(&[]).await;
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!(" {GARBAGE} telemetry and 0 event dead letters")),
        "{summary}"
    );
    assert_exactly_once(&[&first, &second], &env.committed_frames().await);

    let dlq = dead_letter_records(&env.topic("surgical.telemetry.dlq.v1"), GARBAGE).await;
    // Each names its own record, byte for byte: no two name the same one, none names a record
    // the simulator wrote.
    let mut named = std::collections::HashSet::new();
    for d in &dlq {
        let source = d.source();
        let sent = positions
            .get(&source)
            .unwrap_or_else(|| panic!("dead letter names {source:?}, which was not garbage"));
        assert_eq!(&d.payload, sent, "payload of {source:?}");
        assert!(named.insert(source), "two dead letters name {source:?}");
    }
    let dlq: Vec<_> = dlq.into_iter().map(|d| d.headers).collect();
    let mut reasons = std::collections::BTreeMap::new();
    for h in &dlq {
        assert_eq!(h["source.topic"], telemetry);
        assert!(!h["error"].is_empty(), "{h:?}");
        *reasons.entry(h["reason"].clone()).or_insert(0) += 1;
    }
    assert_eq!(reasons, expected, "dead letters by reason");
}
