//! Kafka as production clusters run it (tests/common/secure.rs: TLS under a throwaway CA,
//! SASL SCRAM-SHA-512, mTLS, an authorizer that denies what no ACL allows): the simulator and the
//! ingestor connect through `--kafka-config`, the ingestor with exactly the ACLs the README lists
//! and nothing more, and every frame reaches the lake exactly once; the secrets appear in no log.

mod common;

use common::*;

/// sim (SCRAM user `sim`) → ingest (SCRAM user `ingest`, its password from the environment
/// through `${env:…}`) over SASL_SSL, and the same with the ingestor over mTLS (certificate
/// CN=ingest): `verify` finds every frame once and every event applied.
#[tokio::test(flavor = "multi_thread")]
async fn over_sasl_ssl_and_mtls_with_only_the_listed_acls_every_frame_lands_once() {
    let kafka = SecureBroker::start("secure-ok").await;
    let (_, sim_password) = SCRAM_USERS[1];
    let (_, ingest_password) = SCRAM_USERS[2];
    let sim_config = kafka.client_config(
        "sim.properties",
        &kafka.scram_lines("sim", sim_password, "ca"),
    );
    let admin_config = kafka.client_config(
        "admin.properties",
        &kafka.scram_lines("admin", SCRAM_USERS[0].1, "ca"),
    );
    let over_sasl = kafka.client_config(
        "ingest-sasl.properties",
        &kafka.scram_lines("ingest", "${env:INGEST_KAFKA_PASSWORD}", "ca"),
    );
    let over_mtls = kafka.client_config("ingest-mtls.properties", &kafka.mtls_lines("ingest"));

    for (case, ingest_addr, ingest_config) in [
        ("scram", kafka.sasl_addr(), &over_sasl),
        ("mtls", kafka.mtls_addr(), &over_mtls),
    ] {
        let mut env = TestEnv::new_on(&format!("secure-{case}"), &kafka.admin_addr()).await;
        kafka.grant_simulator(&env);
        kafka.grant_ingestor(&env, "ingest");

        env.brokers = kafka.sasl_addr();
        let mut args = small_seed(8, 120, 11);
        args.extend([
            "--kafka-config".to_owned(),
            sim_config.display().to_string(),
        ]);
        let report = env.sim(&args).await;
        assert_eq!(report["delivery_errors"], 0, "{case}");

        env.brokers = ingest_addr;
        env.lake_env
            .push(("INGEST_KAFKA_PASSWORD".into(), ingest_password.into()));
        let config = ingest_config.display().to_string();
        let out = env
            .ingest_until_idle(&["--kafka-config", &config, "--max-age", "1s"])
            .await;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [ingest_password, sim_password] {
            assert!(
                !log.contains(secret),
                "{case}: a password in the log:\n{log}"
            );
        }
        let seen = env.committed_frames().await;
        assert_exactly_once(&[&report], &seen);

        env.brokers = kafka.sasl_addr();
        let admin = admin_config.display().to_string();
        let out = env
            .verify(&["--kafka-config", &admin, "--json", "--require-drained"])
            .await;
        assert!(
            out.status.success(),
            "verify ({case}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Its topics are deleted through the operator's listener when it is dropped.
        env.brokers = kafka.admin_addr();
    }
}

/// What a misconfigured client meets on a secured cluster: each is a non-zero exit with one
/// line that says what is wrong — not a hang, not a retry loop that never says why.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_secrets_unknown_cas_plaintext_and_missing_acls_each_stop_with_a_clear_line() {
    let kafka = SecureBroker::start("secure-refused").await;
    let mut env = TestEnv::new_on("secure-refused", &kafka.admin_addr()).await;
    kafka.grant_ingestor(&env, "ingest");
    let (_, ingest_password) = SCRAM_USERS[2];
    let config =
        |name: &str, lines: Vec<String>| kafka.client_config(name, &lines).display().to_string();
    let wrong_password = config(
        "wrong-password.properties",
        kafka.scram_lines("ingest", "not-the-password", "ca"),
    );
    let unknown_ca = config(
        "unknown-ca.properties",
        kafka.scram_lines("ingest", ingest_password, "other-ca"),
    );
    let stranger = config("stranger.properties", kafka.mtls_lines("stranger"));
    let right = config(
        "right.properties",
        kafka.scram_lines("ingest", ingest_password, "ca"),
    );
    let no_config = String::new();

    kafka.grant_simulator(&env);
    let as_simulator = config(
        "as-simulator.properties",
        kafka.scram_lines("sim", SCRAM_USERS[1].1, "ca"),
    );
    let dlq = env.topic("surgical.telemetry.dlq.v1");
    let cases: [(&str, String, &String, Vec<&str>); 6] = [
        (
            "wrong password",
            kafka.sasl_addr(),
            &wrong_password,
            vec!["authentication"],
        ),
        (
            "unknown CA",
            kafka.sasl_addr(),
            &unknown_ca,
            vec!["certificate verify failed"],
        ),
        (
            "certificate of another CA",
            kafka.mtls_addr(),
            &stranger,
            vec!["ssl"],
        ),
        (
            "plaintext client on a TLS listener",
            kafka.sasl_addr(),
            &no_config,
            vec!["security.protocol"],
        ),
        (
            "a group without an ACL",
            kafka.sasl_addr(),
            &right,
            vec!["group not-granted", "not authorized", "read"],
        ),
        (
            "a principal without ACLs on the dead-letter topics",
            kafka.sasl_addr(),
            &as_simulator,
            vec![dlq.as_str(), "not authorized", "write"],
        ),
    ];
    let granted_group = env.group.clone();
    for (case, addr, file, expected) in cases {
        env.brokers = addr;
        env.group = if case.contains("group") {
            "not-granted".to_owned()
        } else {
            granted_group.clone()
        };
        let mut args = env.ingest_args(&[]);
        if !file.is_empty() {
            args.extend(["--kafka-config".to_owned(), file.clone()]);
        }
        let out = run_env(&args, &env.lake_env, std::time::Duration::from_secs(60)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: ingest succeeded:\n{stderr}");
        // What a user reads (cargo test -- --nocapture prints each).
        println!("{case}: {}", stderr.lines().last().unwrap_or_default());
        let last = stderr.lines().last().unwrap_or_default().to_lowercase();
        for word in expected {
            assert!(
                last.contains(&word.to_lowercase()),
                "{case}: the last line does not say {word:?}:\n{stderr}"
            );
        }
        assert!(
            !stderr.contains(ingest_password),
            "{case}: the password in the log"
        );
    }

    // The simulator says the same of its own connection.
    env.brokers = kafka.sasl_addr();
    let mut args = env.sim_args(&["--profile", "seed", "--procedures", "2"]);
    args.extend(["--kafka-config".to_owned(), wrong_password.clone()]);
    let out = run(&args, std::time::Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sim with a wrong password succeeded");
    let last = stderr.lines().last().unwrap_or_default().to_lowercase();
    assert!(
        last.contains("authentication"),
        "sim: the last line does not say why:\n{stderr}"
    );
    env.brokers = kafka.admin_addr();
}

/// A run with passwords set leaves them nowhere a user or a scraper looks: not in the
/// ingestor's log, not on its `/metrics`, not in `bench`'s JSON result or its output.
#[tokio::test(flavor = "multi_thread")]
async fn no_password_in_the_log_the_metrics_or_the_bench_json() {
    use std::time::Duration;
    let kafka = SecureBroker::start("secure-secrets").await;
    let mut env = TestEnv::new_on("secure-secrets", &kafka.admin_addr()).await;
    kafka.grant_simulator(&env);
    kafka.grant_ingestor(&env, "ingest");
    let [(_, admin_password), (_, sim_password), (_, ingest_password)] = SCRAM_USERS;
    let config = |name: &str, user: &str, password: &str| {
        kafka
            .client_config(name, &kafka.scram_lines(user, password, "ca"))
            .display()
            .to_string()
    };
    let (sim_config, ingest_config, admin_config) = (
        config("sim.properties", "sim", sim_password),
        config("ingest.properties", "ingest", ingest_password),
        config("admin.properties", "admin", admin_password),
    );
    env.brokers = kafka.sasl_addr();
    let mut args = small_seed(6, 100, 21);
    args.extend(["--kafka-config".to_owned(), sim_config.clone()]);
    let report = env.sim(&args).await;
    let frames = report["frames"].as_i64().expect("frames in the report");

    let port = free_port();
    let log = kafka.file("ingest.log");
    let mut ingest = env.spawn_ingest_logged_with_env(
        &[
            "--kafka-config",
            &ingest_config,
            "--max-age",
            "1s",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
        &log,
    );
    wait_for_port(port, "the ingestor's /metrics").await;
    wait_for(
        "every frame committed",
        Duration::from_secs(120),
        || async {
            env.count("SELECT coalesce(sum(rows), 0)::bigint FROM lake_files")
                .await
                >= frames
        },
    )
    .await;
    let page = scrape(port).await;
    stop(&mut ingest, "the ingestor").await;
    let log = std::fs::read_to_string(&log).expect("the ingestor's log");
    assert!(
        metric(&page, "surgstream_frames_written_total") >= frames as f64,
        "{page}"
    );
    assert!(log.contains("sasl.password=<redacted>"), "{log}");
    for (what, text) in [("the log", &log), ("/metrics", &page)] {
        assert!(
            !text.contains(ingest_password),
            "the password in {what}:\n{text}"
        );
    }

    // bench, as the operator (it creates its own topics and group).
    let dir = kafka.file("bench");
    let json = dir.join("result.json");
    let out = run(
        &[
            "bench",
            "--brokers",
            &kafka.sasl_addr(),
            "--kafka-config",
            &admin_config,
            "--frames",
            "2000",
            "--database-url",
            &env.database_url(),
            "--lake",
            &dir.join("lake").display().to_string(),
            "--output",
            &json.display().to_string(),
        ]
        .map(str::to_owned),
        Duration::from_secs(300),
    )
    .await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "bench over SASL_SSL: {printed}");
    let result = std::fs::read_to_string(&json).expect("bench's JSON result");
    let parsed: serde_json::Value = serde_json::from_str(&result).expect("JSON");
    assert!(parsed["frames_written"].as_u64() > Some(0), "{result}");
    for (what, text) in [("bench's JSON", &result), ("bench's output", &printed)] {
        assert!(
            !text.contains(admin_password),
            "the password in {what}:\n{text}"
        );
    }
    env.brokers = kafka.admin_addr();
}
