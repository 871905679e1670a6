//! `${aws-secretsmanager:ARN[#key]}` references, resolved through Secrets Manager (moto's server,
//! reached as the SDK reaches AWS, through `AWS_ENDPOINT_URL`): a Kafka SASL password that the
//! broker accepts only if it is the right one, and a whole DATABASE_URL; neither value in any
//! log. An unknown ARN stops the start-up with one line that names it.

mod common;

use std::time::Duration;

use common::*;

fn log_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_references_resolve_and_never_show() {
    let (moto, kafka) = tokio::join!(Moto::start(), SecureBroker::start("secrets"));
    let env = TestEnv::new("aws-secrets").await;
    let (admin, admin_password) = SCRAM_USERS[0];

    // A JSON secret (the console's key/value kind) holding the SCRAM password.
    let kafka_arn = moto
        .boto(&[
            "secret",
            "surgstream/kafka",
            &serde_json::json!({"username": admin, "password": admin_password}).to_string(),
        ])
        .await;
    assert!(
        kafka_arn.starts_with("arn:aws:secretsmanager:eu-west-1:"),
        "{kafka_arn}"
    );
    let config = kafka.client_config(
        "admin-secret.properties",
        &kafka.scram_lines(
            admin,
            &format!("${{aws-secretsmanager:{kafka_arn}#password}}"),
            "ca",
        ),
    );
    let home = empty_home("secrets");
    let config_arg = config.display().to_string();
    let sasl = kafka.sasl_addr();
    let create = |prefix: &'static str, config: String| {
        let (home, moto_env, sasl) = (home.clone(), moto.env(), sasl.clone());
        async move {
            aws_run(
                BIN,
                &[
                    "create-topics",
                    "--brokers",
                    &sasl,
                    "--kafka-config",
                    &config,
                    "--prefix",
                    prefix,
                    "--timeout",
                    "60s",
                ],
                &home,
                &moto_env,
                Duration::from_secs(120),
            )
            .await
        }
    };
    let out = create("secret-ok.", config_arg.clone()).await;
    let log = log_of(&out);
    assert!(
        out.status.success(),
        "SCRAM with the password from Secrets Manager: {log}"
    );
    assert!(
        !log.contains(admin_password),
        "the password in the log:\n{log}"
    );

    // The same reference with a key the secret lacks: refused, naming the reference.
    let wrong_key = kafka.client_config(
        "admin-wrong-key.properties",
        &kafka.scram_lines(
            admin,
            &format!("${{aws-secretsmanager:{kafka_arn}#passwd}}"),
            "ca",
        ),
    );
    let out = create("secret-key.", wrong_key.display().to_string()).await;
    let log = log_of(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("no key passwd") && log.contains(&kafka_arn),
        "{log}"
    );

    // An unknown ARN: one line, naming it.
    let unknown = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:surgstream/none-AbCdEf";
    let missing = kafka.client_config(
        "admin-missing.properties",
        &kafka.scram_lines(admin, &format!("${{aws-secretsmanager:{unknown}}}"), "ca"),
    );
    let out = create("secret-missing.", missing.display().to_string()).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains(unknown)
            && lines[0].contains("sasl.password")
            && lines[0].contains("ResourceNotFound"),
        "{stderr}"
    );

    // The whole DATABASE_URL in a secret.
    let url = env.database_url();
    let db_arn = moto
        .boto(&["secret", "surgstream/database-url", &url])
        .await;
    let out = aws_run(
        BIN,
        &["migrate"],
        &home,
        &[
            moto.env(),
            vec![("DATABASE_URL", format!("${{aws-secretsmanager:{db_arn}}}"))],
        ]
        .concat(),
        Duration::from_secs(120),
    )
    .await;
    let log = log_of(&out);
    assert!(
        out.status.success(),
        "migrate with DATABASE_URL from Secrets Manager: {log}"
    );
    assert!(!log.contains(&url), "the URL in the log:\n{log}");
    assert!(env.count("SELECT count(*) FROM _sqlx_migrations").await > 0);
    let _ = std::fs::remove_dir_all(&home);
}
