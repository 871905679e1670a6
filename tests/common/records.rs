//! Records on the topics: sending one as an outside producer would, counting a topic, and reading
//! dead letters back.

use super::*;

/// Produces one raw record (with a `schema` header when given) and waits for its delivery.
pub async fn send(
    p: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: &[u8],
    value: &[u8],
    schema: Option<&str>,
) -> (i32, i64) {
    use rdkafka::message::{Header, OwnedHeaders};
    let mut rec = rdkafka::producer::FutureRecord::to(topic)
        .key(key)
        .payload(value);
    if let Some(s) = schema {
        rec = rec.headers(OwnedHeaders::new().insert(Header {
            key: "schema",
            value: Some(s),
        }));
    }
    let delivered = p
        .send(rec, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("delivered");
    (delivered.partition, delivered.offset)
}

/// How many records `topic` holds (the sum of its partitions' high watermarks minus low).
pub fn topic_records(brokers: &str, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("metadata client");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = c
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .sum()
}

/// Reads exactly `n` dead letters from `topic` (their headers), and checks that no more come.
pub async fn dead_letters(topic: &str, n: usize) -> Vec<HashMap<String, String>> {
    dead_letter_records(topic, n)
        .await
        .into_iter()
        .map(|d| d.headers)
        .collect()
}

/// A dead letter as the topic holds it.
pub struct DeadLetter {
    pub headers: HashMap<String, String>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl DeadLetter {
    /// Where the record came from, as its `source.partition` and `source.offset` headers say.
    pub fn source(&self) -> (i32, i64) {
        let get = |k: &str| self.headers.get(k).and_then(|v| v.parse().ok());
        (
            get("source.partition").expect("a source.partition header") as i32,
            get("source.offset").expect("a source.offset header"),
        )
    }
}

/// Reads exactly `n` dead letters from `topic`, and checks that no more come.
pub async fn dead_letter_records(topic: &str, n: usize) -> Vec<DeadLetter> {
    use rdkafka::Message;
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Headers;
    let c = consumer(&format!("{topic}-reader-{}", unique("r")));
    c.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("dead letter within 20s")
            .expect("record");
        let mut h = HashMap::new();
        if let Some(hs) = m.headers() {
            for x in hs.iter() {
                h.insert(
                    x.key.to_owned(),
                    String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        out.push(DeadLetter {
            headers: h,
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
        });
    }
    // Nothing more than expected.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), c.recv())
            .await
            .is_err(),
        "more dead letters than expected"
    );
    out
}
