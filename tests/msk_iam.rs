//! MSK IAM as MSK Serverless asks for it: `sasl.mechanism=AWS_MSK_IAM` in the client properties
//! (MSK's documented Java lines, unchanged), SASL_SSL, OAUTHBEARER with tokens signed by the AWS
//! SDK's credential chain — here an ECS task role (a container credentials endpoint of the
//! test's) whose credentials live 40 s, so that librdkafka must ask for new tokens while the
//! pipeline runs. The broker's OAUTHBEARER listener (tests/kafka/MskTokenLogger.java) logs every
//! token it is offered and makes every connection authenticate again every 10 s.
//!
//! create-topics, sim → ingest (its consumer, dead-letter producer and probes) → verify all run on that
//! listener: every frame lands once; the broker saw tokens of at least three successive
//! credentials and refused none (an expired token is refused), so each client replaced its
//! token before it expired.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

async fn sim_with_env(env: &TestEnv, extra: &[String]) -> serde_json::Value {
    let report = env
        .lake
        .with_extension(format!("sim-{}.json", std::process::id()));
    let mut args = env.sim_args(extra);
    args.extend(["--report".to_owned(), report.display().to_string()]);
    let out = run_env(&args, &env.lake_env, Duration::from_secs(300)).await;
    assert!(
        out.status.success(),
        "sim over MSK IAM failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("sim report");
    let _ = std::fs::remove_file(&report);
    serde_json::from_str(&text).expect("report is JSON")
}

/// The token log's accepted lines by access key: (first seen, last seen) in ms; and the
/// rejected lines.
fn read_token_log(kafka: &SecureBroker) -> (BTreeMap<String, (i64, i64)>, Vec<String>) {
    let text = std::fs::read_to_string(kafka.token_log()).unwrap_or_default();
    let mut keys = BTreeMap::new();
    let mut rejected = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 6, "a token log line: {line}");
        if f[1] != "ACCEPTED" {
            rejected.push(format!("{} {} {}", f[0], f[1], f[2]));
            continue;
        }
        let at: i64 = f[0].parse().expect("ms");
        let url = decode_msk_token(f[5]);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        assert!(
            url.contains(&format!(
                "User-Agent=surgstream%2F{}",
                env!("CARGO_PKG_VERSION")
            )),
            "{url}"
        );
        let e = keys.entry(f[2].to_owned()).or_insert((at, at));
        e.0 = e.0.min(at);
        e.1 = e.1.max(at);
    }
    (keys, rejected)
}

#[tokio::test(flavor = "multi_thread")]
async fn over_msk_iam_tokens_are_refreshed_and_every_frame_lands_once() {
    let kafka = SecureBroker::start_with_msk_iam("msk-iam").await;
    let credentials = ContainerCredentials::start(Duration::from_secs(40), true).await;
    let mut env = TestEnv::new_on("msk-iam", &kafka.admin_addr()).await;
    let config = kafka.client_config(
        "msk-iam.properties",
        &[
            "security.protocol=SASL_SSL".to_owned(),
            "sasl.mechanism=AWS_MSK_IAM".to_owned(),
            "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;".to_owned(),
            "sasl.client.callback.handler.class=software.amazon.msk.auth.iam.IAMClientCallbackHandler"
                .to_owned(),
            format!("ssl.ca.location={}", kafka.file("ca.pem").display()),
        ],
    );
    let config = config.display().to_string();
    env.lake_env.extend([
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
            credentials.uri(),
        ),
        ("AWS_REGION".to_owned(), "eu-west-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ]);
    env.brokers = kafka.oauth_addr();

    let started = std::time::Instant::now();
    let started_ms = chrono::Utc::now().timestamp_millis();
    // The admin client (create-topics), whose token rdkafka never asks for: given one at once.
    let out = run_env(
        &[
            "create-topics".to_owned(),
            "--brokers".into(),
            kafka.oauth_addr(),
            "--kafka-config".into(),
            config.clone(),
            "--prefix".into(),
            "msk-iam-admin.".into(),
            "--timeout".into(),
            "60s".into(),
        ],
        &env.lake_env,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "create-topics over MSK IAM: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = env.lake.with_extension("ingest.log");
    let mut ingest = env.spawn_ingest_logged(&["--kafka-config", &config, "--max-age", "1s"], &log);
    let with_config = |mut args: Vec<String>| {
        args.extend(["--kafka-config".to_owned(), config.clone()]);
        args
    };
    let first = sim_with_env(&env, &with_config(small_seed(8, 120, 21))).await;
    assert_eq!(first["delivery_errors"], 0);

    // The ingestor keeps running for two and a half lives of its credentials, its connections
    // authenticating again every 10 s: with tokens it did not replace, the broker would
    // refuse the first re-authentication after 40 s.
    tokio::time::sleep(Duration::from_secs(100).saturating_sub(started.elapsed())).await;
    let second = sim_with_env(&env, &with_config(small_seed(8, 120, 22))).await;
    assert_eq!(second["delivery_errors"], 0);

    let verify = |extra: &'static [&'static str]| {
        let mut args = vec!["--kafka-config", config.as_str(), "--json"];
        args.extend_from_slice(extra);
        let env = &env;
        async move { env.verify(&args).await }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let out = verify(&[]).await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if [
            "missing",
            "duplicated",
            "events_unprocessed",
            "pending_records",
        ]
        .iter()
        .all(|k| v[*k] == 0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not drained over MSK IAM: {v:#}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    stop(&mut ingest, "ingest").await;
    let out = verify(&["--require-drained"]).await;
    assert!(
        out.status.success(),
        "verify over MSK IAM: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&[&first, &second], &env.committed_frames().await);

    let (keys, rejected) = read_token_log(&kafka);
    assert!(
        rejected.is_empty(),
        "the broker refused tokens: {rejected:#?}"
    );
    assert!(keys.len() >= 3, "{keys:#?}");
    // Tokens signed with credentials that did not exist when the first ones expired were still
    // being presented (and accepted) long after: the clients kept replacing them.
    let late = keys
        .values()
        .filter(|(first, _)| *first > started_ms + 45_000)
        .count();
    let last = keys.values().map(|(_, last)| *last).max().unwrap_or(0);
    assert!(late >= 1, "no token of later credentials: {keys:#?}");
    assert!(
        last > started_ms + 90_000,
        "no authentication after 90 s: {keys:#?}"
    );
    // The credentials came from the container endpoint, each used for a while, never past its
    // 40 s (the broker refuses an expired token: none was refused).
    assert!(
        keys.keys().all(|k| k.starts_with("ASIACONTAINER")),
        "{keys:#?}"
    );
    assert!(credentials.served.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    let ingest_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ingest_log.contains("MSK IAM tokens for eu-west-1"),
        "the ingestor names how it authenticates: {}",
        last_lines(ingest_log.as_bytes(), 20)
    );
}
