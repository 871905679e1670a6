//! Sends a [`Simulation`] to Kafka: paced in wall-clock time or as fast as the broker takes it,
//! with an idempotent producer, every delivery awaited and every failure counted and reported.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use surgstream_kafka::{KafkaSettings, TopicState};
use surgstream_proto::headers;
use surgstream_proto::latency::PartitionLatencies;
use surgstream_proto::v1::event::Body;
use tokio_util::sync::CancellationToken;

pub use crate::report::SimReport;
use crate::{Payload, Simulation};

/// The simulator's producer: its context signs MSK IAM tokens when the settings ask for them.
pub type Producer = FutureProducer<surgstream_kafka::KafkaContext>;

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// How to reach the cluster: brokers, TLS, SASL.
    pub kafka: KafkaSettings,
    /// How record batches are compressed on the wire and in the broker's log.
    pub compression: Compression,
    /// Topic for telemetry batches.
    pub telemetry_topic: String,
    /// Topic for events.
    pub events_topic: String,
    /// Send each record at its own time (live); `false` sends as fast as the broker takes them.
    pub paced: bool,
    /// How long to wait for the broker at start-up and for the last deliveries at the end.
    pub timeout: Duration,
}

/// The producer's `compression.codec`: every codec Kafka has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip (zlib).
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in the order `--help` lists them.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// librdkafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not one of none, gzip, snappy, lz4, zstd"))
    }
}

/// Why the simulator could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The Kafka client could not be created from the options.
    #[error("invalid Kafka client configuration: {0}")]
    Config(#[source] KafkaError),
    /// The broker did not answer, or refused the connection.
    #[error("cannot reach Kafka at {brokers}: {source}")]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// Why, with librdkafka's reason.
        #[source]
        source: Box<surgstream_kafka::MetadataError>,
    },
    /// The cluster's authorizer refuses the simulator's principal a topic.
    #[error(
        "Kafka at {brokers} refused topic {topic}: not authorized (the simulator's principal \
         needs Write and Describe on it: docs/security.md)"
    )]
    NotAuthorized {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// A topic the simulator writes to does not exist.
    #[error(
        "topic {topic} does not exist on {brokers} (create it, e.g. with `scripts/services.sh up`)"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
}

/// Creates the idempotent producer and checks that the broker answers and the topics exist.
pub async fn connect(opts: &SinkOptions) -> Result<Producer, SinkError> {
    let mut config = ClientConfig::new();
    config
        .set("compression.codec", opts.compression.name())
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        // 64 MiB of records waiting for the broker at most (librdkafka's default is 1 GiB): a
        // fast backfill waits for deliveries instead of holding a large part of the run in memory.
        .set("queue.buffering.max.kbytes", "65536")
        .set(
            "message.timeout.ms",
            opts.timeout
                .max(Duration::from_secs(30))
                .as_millis()
                .to_string(),
        )
        .set("client.id", "surgstream-sim");
    // The user's properties (TLS, SASL, tuning) over ours; then what an exactly-once pipeline
    // needs of its producer, which nothing overrides.
    opts.kafka.apply(&mut config);
    let producer: FutureProducer<surgstream_kafka::KafkaContext> = config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create_with_context(opts.kafka.context())
        .map_err(SinkError::Config)?;
    // A client of its own that says why it cannot connect (credentials, TLS), where the
    // producer's metadata request would only time out.
    let topics = [opts.telemetry_topic.clone(), opts.events_topic.clone()];
    let (kafka, timeout, names) = (opts.kafka.clone(), opts.timeout, topics.clone());
    let states = tokio::task::spawn_blocking(move || {
        surgstream_kafka::probe_topics(&kafka, &names.each_ref().map(String::as_str), timeout)
    })
    .await
    .map_err(|_| SinkError::Unreachable {
        brokers: opts.kafka.brokers().to_owned(),
        source: Box::new(surgstream_kafka::MetadataError::Unreachable {
            source: KafkaError::Canceled,
            last: None,
            hint: None,
        }),
    })?
    .map_err(|source| SinkError::Unreachable {
        brokers: opts.kafka.brokers().to_owned(),
        source: Box::new(source),
    })?;
    for (topic, state) in topics.into_iter().zip(states) {
        let brokers = opts.kafka.brokers().to_owned();
        match state {
            TopicState::Ready => {}
            TopicState::NotAuthorized => return Err(SinkError::NotAuthorized { topic, brokers }),
            TopicState::Missing => return Err(SinkError::MissingTopic { topic, brokers }),
        }
    }
    Ok(producer)
}

/// The name of an event's body type, e.g. `ProcedureStarted`.
pub fn body_name(body: &Option<Body>) -> &'static str {
    match body {
        Some(Body::RobotRegistered(_)) => "RobotRegistered",
        Some(Body::RobotStatusChanged(_)) => "RobotStatusChanged",
        Some(Body::ProcedureScheduled(_)) => "ProcedureScheduled",
        Some(Body::ProcedureStarted(_)) => "ProcedureStarted",
        Some(Body::ProcedureCompleted(_)) => "ProcedureCompleted",
        Some(Body::ProcedureAborted(_)) => "ProcedureAborted",
        Some(Body::ProcedureCancelled(_)) => "ProcedureCancelled",
        Some(Body::OutcomeRecorded(_)) => "OutcomeRecorded",
        Some(Body::MaintenanceLogged(_)) => "MaintenanceLogged",
        None => "None",
    }
}

/// What one delivery was, for the report.
enum Sent {
    Telemetry {
        procedure: [u8; 16],
        frames: u64,
        bytes: u64,
    },
    Event(&'static str, u64),
}

const MAX_IN_FLIGHT: usize = 20_000;

/// Telemetry frames delivered to the broker.
pub const FRAMES_SENT: &str = "surgstream_sim_frames_sent_total";
/// Events delivered to the broker.
pub const EVENTS_SENT: &str = "surgstream_sim_events_sent_total";
/// Bytes of record values delivered.
pub const BYTES_SENT: &str = "surgstream_sim_bytes_sent_total";
/// Records the broker did not take.
pub const DELIVERY_ERRORS: &str = "surgstream_sim_delivery_errors_total";
/// How far a paced run is behind its schedule, in seconds.
pub const BEHIND: &str = "surgstream_sim_behind_schedule_seconds";
/// Telemetry records' time from send to the broker's acknowledgement, in seconds.
pub const DELIVERY_SECONDS: &str = "surgstream_sim_delivery_seconds";
/// A paced live run's frames per second if every room were in a procedure (the target's upper
/// bound; compare with the rate of [`FRAMES_SENT`]).
pub const TARGET_RATE: &str = "surgstream_sim_target_frames_per_second";

/// Sends every record of `sim` and waits for every delivery. Stops early, after flushing what
/// was already handed to the producer, when `shutdown` is cancelled.
pub async fn run(
    sim: Simulation,
    producer: &Producer,
    opts: &SinkOptions,
    shutdown: CancellationToken,
) -> SimReport {
    let start_micros = sim.start_micros();
    let mut report = SimReport {
        paced: opts.paced,
        ..SimReport::default()
    };
    let mut in_flight = FuturesUnordered::new();
    let mut delivery = PartitionLatencies::default();
    let t0 = tokio::time::Instant::now();
    let wall0 = Instant::now();
    let content = headers::PROTOBUF;
    let mut progress = crate::progress::Progress::new(sim.horizon());
    let mut last_at = start_micros;
    let mut last_warning: Option<tokio::time::Instant> = None;

    for record in sim {
        if shutdown.is_cancelled() {
            report.interrupted = true;
            break;
        }
        let offset = Duration::from_micros((record.at - start_micros).max(0) as u64);
        last_at = last_at.max(record.at);
        let mut behind = Duration::ZERO;
        if opts.paced {
            let due = t0 + offset;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.cancelled() => { report.interrupted = true; break; }
            }
            // Sends are scheduled on absolute times, so pacing does not drift; lateness means
            // the broker (or this machine) is not keeping up, and the user is told.
            behind = tokio::time::Instant::now().saturating_duration_since(due);
            report.max_behind_seconds = report.max_behind_seconds.max(behind.as_secs_f64());
            metrics::gauge!(BEHIND).set(behind.as_secs_f64());
            if behind > Duration::from_secs(1)
                && last_warning.is_none_or(|w| w.elapsed() > Duration::from_secs(10))
            {
                last_warning = Some(tokio::time::Instant::now());
                tracing::warn!(behind = ?behind, in_flight = in_flight.len(), "falling behind the live schedule: the broker is not keeping up");
            }
        }
        progress.update(&report, offset.as_millis() as u64, behind);
        let (topic, schema, value, sent) = match &record.payload {
            Payload::Telemetry(batch) => (
                &opts.telemetry_topic,
                headers::SCHEMA_TELEMETRY_BATCH,
                surgstream_proto::encode_batch(batch),
                Sent::Telemetry {
                    procedure: record.key,
                    frames: batch.frames.len() as u64,
                    bytes: 0,
                },
            ),
            Payload::Event(event) => (
                &opts.events_topic,
                headers::SCHEMA_EVENT,
                surgstream_proto::encode_event(event),
                Sent::Event(body_name(&event.body), 0),
            ),
        };
        let sent = match sent {
            Sent::Telemetry {
                procedure, frames, ..
            } => Sent::Telemetry {
                procedure,
                frames,
                bytes: value.len() as u64,
            },
            Sent::Event(name, _) => Sent::Event(name, value.len() as u64),
        };
        let hdrs = OwnedHeaders::new()
            .insert(Header {
                key: headers::CONTENT_TYPE,
                value: Some(content),
            })
            .insert(Header {
                key: headers::SCHEMA,
                value: Some(schema),
            });
        // The Kafka timestamp is the send time (the producer's default), not the event time
        // (which travels in the payload): a backfill's two-year-old event times would make the
        // broker's time-based retention delete the records as soon as they land.
        let mut rec = FutureRecord::to(topic)
            .key(&record.key[..])
            .payload(&value[..])
            .headers(hdrs);
        loop {
            match producer.send_result(rec) {
                Ok(delivery) => {
                    in_flight.push(async move { (delivery.await, sent) });
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    // The local queue is full: let deliveries complete, then try again.
                    match in_flight.next().await {
                        Some(done) => account(&mut report, &mut delivery, done),
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((e, _)) => {
                    tracing::error!(topic = %topic, error = %e, "cannot enqueue record");
                    report.delivery_errors += 1;
                    break;
                }
            }
        }
        while in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                account(&mut report, &mut delivery, done);
            }
        }
        // Collect deliveries that are already done, without waiting.
        while let Some(Some(done)) = futures::FutureExt::now_or_never(in_flight.next()) {
            account(&mut report, &mut delivery, done);
        }
    }
    while let Some(done) = in_flight.next().await {
        account(&mut report, &mut delivery, done);
    }
    progress.finish();
    report.delivery_latency = delivery.by_partition();
    report.simulated_seconds = (last_at - start_micros) as f64 / 1e6;
    report.elapsed_seconds = wall0.elapsed().as_secs_f64();
    report
}

type DeliveryOutcome = Result<
    rdkafka::producer::future_producer::OwnedDeliveryResult,
    futures::channel::oneshot::Canceled,
>;

fn account(
    report: &mut SimReport,
    delivery: &mut PartitionLatencies,
    (result, sent): (DeliveryOutcome, Sent),
) {
    match result {
        Ok(Ok(done)) => match sent {
            Sent::Telemetry {
                procedure,
                frames,
                bytes,
            } => {
                // The producer stamps each record when it is handed over (CreateTime, ms).
                if let Some(sent_ms) = done.timestamp.to_millis() {
                    let now = surgstream_proto::time::now_micros();
                    let seconds = delivery.record_age(done.partition, sent_ms, now);
                    metrics::histogram!(DELIVERY_SECONDS).record(seconds);
                }
                metrics::counter!(FRAMES_SENT).increment(frames);
                metrics::counter!(BYTES_SENT).increment(bytes);
                report.telemetry_delivered(procedure, frames)
            }
            Sent::Event(name, bytes) => {
                metrics::counter!(EVENTS_SENT).increment(1);
                metrics::counter!(BYTES_SENT).increment(bytes);
                report.event_delivered(name)
            }
        },
        Ok(Err((e, msg))) => {
            metrics::counter!(DELIVERY_ERRORS).increment(1);
            report.delivery_errors += 1;
            if report.delivery_errors <= 10 {
                tracing::error!(topic = %rdkafka::Message::topic(&msg), error = %e, "delivery failed");
            }
        }
        Err(_) => {
            report.delivery_errors += 1;
            tracing::error!(
                "delivery canceled: the producer was dropped before the broker answered"
            );
        }
    }
}
