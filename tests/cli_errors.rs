//! Bad option values and unreachable services: one clear line naming what and where, a
//! non-zero exit, no panic, no hang.

mod common;

use std::time::Duration;

use common::*;

async fn fails(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let out = run(&args, Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0]
}

#[tokio::test]
async fn unreachable_broker_is_named() {
    for cmd in ["sim", "ingest"] {
        let (code, err) = fails(&[cmd, "--brokers", "127.0.0.1:1", "--kafka-timeout", "2s"]).await;
        assert_eq!(code, 1);
        let line = one_error_line(&err);
        assert!(line.contains("Kafka at 127.0.0.1:1"), "{cmd}: {line}");
    }
}

#[tokio::test]
async fn unreachable_database_is_named_without_its_password() {
    let (code, err) = fails(&[
        "migrate",
        "--database-url",
        "postgres://app:s3cret@127.0.0.1:1/lake",
        "--db-timeout",
        "2s",
    ])
    .await;
    assert_eq!(code, 1);
    // A password on the command line draws a warning first: every user of the machine can
    // read it in the process list. The warning does not repeat it.
    let (warning, rest) = err.split_once('\n').expect("a warning, then the error");
    assert!(
        warning.contains("password is on the command line") && !warning.contains("s3cret"),
        "{err}"
    );
    let line = one_error_line(rest);
    assert!(line.contains("PostgreSQL at 127.0.0.1:1/lake"), "{line}");
    assert!(line.contains("Connection refused"), "{line}");
    assert!(!line.contains("s3cret"), "password leaked: {line}");

    // The same URL from a file (a mounted secret): same error, still no password.
    let secret = std::env::temp_dir().join(format!("surgstream-db-url-{}", std::process::id()));
    std::fs::write(&secret, "postgres://app:s3cret@127.0.0.1:1/lake\n").expect("write");
    let (code, err) = fails(&[
        "migrate",
        "--database-url-file",
        secret.to_str().expect("utf-8 path"),
        "--db-timeout",
        "2s",
    ])
    .await;
    let _ = std::fs::remove_file(&secret);
    assert_eq!(code, 1);
    let line = one_error_line(&err);
    assert!(line.contains("PostgreSQL at 127.0.0.1:1/lake"), "{line}");
    assert!(!line.contains("s3cret"), "password leaked: {line}");
    let (code, err) = fails(&["migrate", "--database-url-file", "/no/such/secret"]).await;
    assert_eq!(code, 1);
    let line = one_error_line(&err);
    assert!(
        line.contains("--database-url-file /no/such/secret"),
        "{line}"
    );

    let (_, err) = fails(&[
        "ingest",
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/surgstream_no_such_db",
    ])
    .await;
    let line = one_error_line(&err);
    assert!(
        line.contains("surgstream_no_such_db") && line.contains("does not exist"),
        "{line}"
    );
}

#[tokio::test]
async fn missing_topic_is_named() {
    let (_, err) = fails(&[
        "sim",
        "--brokers",
        &brokers(),
        "--telemetry-topic",
        "no.such.topic.v1",
        "--profile",
        "live",
        "--duration",
        "1s",
    ])
    .await;
    let line = one_error_line(&err);
    assert!(
        line.contains("topic no.such.topic.v1 does not exist"),
        "{line}"
    );
}

#[tokio::test]
async fn bad_option_values_name_the_option() {
    for (args, needle) in [
        (&["sim", "--hz", "fast"][..], "--hz"),
        (&["sim", "--duration", "5parsecs"][..], "--duration"),
        (&["ingest", "--max-rows", "0"][..], "--max-rows"),
        (&["ingest", "--max-age=0s"][..], "--max-age"),
        (&["ingest", "--max-bytes", "64 parsecs"][..], "--max-bytes"),
        (&["ingest", "--memory-limit", "0MiB"][..], "--memory-limit"),
        (&["ingest", "--until-idle", "soon"][..], "--until-idle"),
        (
            &["ingest", "--metrics-addr", "nowhere"][..],
            "--metrics-addr",
        ),
    ] {
        let (code, err) = fails(args).await;
        assert_eq!(code, 2, "{args:?}: clap's usage error code");
        assert!(
            err.lines()
                .next()
                .is_some_and(|l| l.starts_with("error:") && l.contains(needle)),
            "{args:?}: {err}"
        );
    }
    // A consumer property the delivery guarantee rests on cannot be overridden.
    for option in [
        "enable.auto.commit=true",
        "auto.offset.reset=latest",
        "nonsense",
    ] {
        let (code, err) = fails(&["ingest", "--consumer-option", option]).await;
        assert_eq!(code, 2, "{option}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains("--consumer-option"), "{option}: {err}");
    }
    let (_, err) = fails(&["ingest", "--consumer-option", "enable.auto.commit=true"]).await;
    assert!(err.contains("set by surgstream itself"), "{err}");
    // Values that parse but make no sense are refused by the simulator, naming the option.
    let (code, err) = fails(&["sim", "--robots", "0"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        one_error_line(&err),
        "error: invalid option --robots: must be between 1 and 1000000"
    );
    let (_, err) = fails(&["sim", "--profile", "live", "--hz", "20000"]).await;
    assert!(one_error_line(&err).contains("--hz"), "{err}");
    // An option of the other profile is refused, not ignored.
    let (_, err) = fails(&["sim", "--hz", "500"]).await;
    assert_eq!(
        one_error_line(&err),
        "error: invalid option --hz: it applies to --profile live, and this is a seed run"
    );
    let (_, err) = fails(&["ingest", "--lake", "ftp://bucket/x"]).await;
    assert!(
        one_error_line(&err).contains("invalid lake URL \"ftp://bucket/x\""),
        "{err}"
    );
}
