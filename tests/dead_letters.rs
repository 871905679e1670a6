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
    send(&p, &telemetry, &[2u8; 16], b"\xff\xfe not protobuf", None).await;
    send(
        &p,
        &telemetry,
        &[2u8; 16],
        &nan,
        Some("surgstream.v1.TelemetryBatch"),
    )
    .await;
    send(
        &p,
        &telemetry,
        &[2u8; 16],
        &nan,
        Some("surgstream.v1.SomethingElse"),
    )
    .await;
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

    let mut tdl = dead_letters(&env.topic("surgical.telemetry.dlq.v1"), 3).await;
    tdl.sort_by_key(|h| h["source.offset"].parse::<i64>().unwrap_or(-1));
    let reasons: Vec<&str> = tdl.iter().map(|h| h["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["undecodable", "non_finite_value", "unknown_schema"]
    );
    for h in &tdl {
        assert_eq!(h["source.topic"], telemetry);
        assert!(
            h.contains_key("source.partition") && !h["error"].is_empty(),
            "{h:?}"
        );
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
