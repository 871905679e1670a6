//! A stop request during start-up is honoured: the ingestor, connected to PostgreSQL and
//! serving its endpoints but still waiting for a broker that does not answer (a long
//! `--kafka-timeout`), exits cleanly within seconds of SIGTERM instead of waiting the timeout
//! out (or being killed by the signal's default action); until its loop runs, `/healthz` says
//! it is starting.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_start_up_ends_it_at_once_and_cleanly() {
    let env = TestEnv::new("startup_sigterm").await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = env.ingest_args(&["--kafka-timeout", "120s", "--metrics-addr", &addr]);
    // A broker address where nothing listens: the start-up waits for --kafka-timeout.
    let at = args
        .iter()
        .position(|a| a == "--brokers")
        .expect("--brokers");
    args[at + 1] = "127.0.0.1:1".to_owned();
    let log = env.lake.with_extension("ingest.log");
    let mut ingest = surgstream()
        .args(&args)
        .env(
            "RUST_LOG",
            "info,librdkafka=off,rdkafka::client=off,sqlx=warn",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the ingestor's log"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ingest");

    // Connected to PostgreSQL and serving: not alive yet, since its loop has not run.
    wait_for("/healthz answers", Duration::from_secs(30), || async {
        http_get(port, "/healthz").await.is_ok()
    })
    .await;
    let (status, body) = http_get(port, "/healthz").await.expect("GET /healthz");
    assert_eq!(
        (status, body.trim()),
        (503, "starting: the ingest loop has not run yet")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        ingest.try_wait().expect("poll the ingestor").is_none(),
        "still starting (waiting for the broker)"
    );

    signal(&ingest, "-TERM");
    let sent = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), ingest.wait())
        .await
        .expect("the ingestor exits within 5 s of SIGTERM during its start-up")
        .expect("reap the ingestor");
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "a clean exit, not a kill by the signal: {status}\n{said}"
    );
    assert!(
        said.contains("stop requested during start-up"),
        "says why it stopped:\n{said}"
    );
    assert!(!said.contains("error"), "no error:\n{said}");
    eprintln!("exited {:?} after SIGTERM", sent.elapsed());
}
