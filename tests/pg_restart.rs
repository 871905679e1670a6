//! PostgreSQL stopped under a running ingestor and started again once a flush has retried
//! (`pg_ctlcluster … stop`, `… start`): the ingestor keeps its batch, tries again until the
//! server is back, and loses and duplicates nothing. Its own test binary, so that no other test
//! shares the outage.

mod common;

use std::time::Duration;

use common::*;

const SIM: &[&str] = &[
    "--profile",
    "live",
    "--robots",
    "3",
    "--procedures",
    "6",
    "--hz",
    "200",
    "--speed",
    "3600",
    "--fast",
];

/// Starts PostgreSQL again however the test ends: the suite's other tests need it.
struct StartPostgresOnDrop;

impl Drop for StartPostgresOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("sh")
                .args(["-c", "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -n | tail -1) main start"])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_survives_a_postgres_restart_without_loss_or_duplicates() {
    let env = TestEnv::new("pgrestart").await;
    let mut args = SIM.to_vec();
    args.extend(["--seed", "41"]);
    let first = env.sim(&args).await;
    let port = free_port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let mut child = env.spawn_ingest(&[
        "--max-age",
        "1s",
        "--event-max-age",
        "200ms",
        "--until-idle",
        "8s",
        "--metrics-addr",
        &metrics_addr,
    ]);
    while env.count("SELECT count(*) FROM lake_files").await == 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A live feed keeps the ingestor flushing every second while the server restarts.
    let report = env.lake.with_extension("live-report.json");
    let mut live = env.sim_args(&[
        "--profile",
        "live",
        "--robots",
        "3",
        "--hz",
        "100",
        "--speed",
        "600",
        "--duration",
        "12s",
        "--seed",
        "42",
        "--report",
    ]);
    live.push(report.display().to_string());
    let mut feed = surgstream()
        .args(&live)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sim");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        child.try_wait().expect("status").is_none(),
        "the ingestor is running"
    );
    // Down long enough that a flush must retry (asserted, not assumed from timing), and back
    // well inside --pg-retry-timeout (1 min).
    let retries = || async {
        match http_get(port, "/metrics").await {
            Ok((200, page)) => metric(&page, "surgstream_postgres_retries_total"),
            other => panic!(
                "the ingestor's /metrics does not answer ({other:?}): did it exit instead of retrying?"
            ),
        }
    };
    assert_eq!(retries().await, 0.0, "no retry before the fault");
    {
        let _restart = StartPostgresOnDrop;
        pg_ctl("stop").await;
        wait_for(
            "a flush retrying while PostgreSQL is stopped",
            Duration::from_secs(40),
            || async { retries().await > 0.0 },
        )
        .await;
        pg_ctl("start").await;
    }
    assert!(
        feed.wait().await.expect("sim").success(),
        "the live feed failed"
    );
    let second: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("sim report")).expect("json");
    let _ = std::fs::remove_file(&report);

    let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
        .await
        .expect("the ingestor finishes")
        .expect("status");
    assert!(
        status.success(),
        "the ingestor failed across the restart: {status}"
    );

    assert_exactly_once(&[&first, &second], &env.committed_frames().await);
    env.assert_events_as_an_undisturbed_run().await;
    let scheduled = |r: &serde_json::Value| {
        r["events_by_type"]["ProcedureScheduled"]
            .as_i64()
            .unwrap_or(0)
    };
    assert_eq!(
        env.count("SELECT count(*) FROM surgical_procedures").await,
        scheduled(&first) + scheduled(&second)
    );
    assert_eq!(
        env.count("SELECT count(*) FROM processed_events").await,
        first["events"].as_i64().unwrap_or(0) + second["events"].as_i64().unwrap_or(0)
    );
}
