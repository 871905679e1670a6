//! Shared test harness: a fresh set of topics, a fresh PostgreSQL database and a fresh lake
//! directory per test, on the real broker and the real PostgreSQL (see scripts/services.sh).
// Each test binary uses a part of the harness.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_surgstream");

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A consumer of the test broker in `group`, reading from the earliest offset, no auto-commit.
pub fn consumer(group: &str) -> rdkafka::consumer::StreamConsumer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

pub fn admin_url(db: &str) -> String {
    let base = std::env::var("SURGSTREAM_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    format!("{base}/{db}")
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

mod aws;
mod checks;
mod cluster;
mod env;
mod probe;
mod records;
mod s3;
mod secure;

pub use aws::*;
pub use checks::*;
pub use cluster::*;
pub use env::*;
pub use probe::*;
pub use records::*;
pub use s3::*;
pub use secure::*;

/// The binary, with none of the caller's `SURGSTREAM_*` or `DATABASE_URL*` variables: a test's
/// commands run with the options it gives them, whatever the shell that runs the suite has set
/// (a `SURGSTREAM_SIM_START_TIME` there would move every simulator run, a `DATABASE_URL` point
/// them at another database).
pub fn surgstream() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("SURGSTREAM_") || name.starts_with("DATABASE_URL") {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// A small deterministic pseudo-random sequence (xorshift64) from `seed`, which must not be 0:
/// the fault tests' random moments and choices, the same on every run.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Runs the binary with a deadline; a hang is a test failure (with the tail of the child's
/// log), not a stuck suite.
pub async fn run(args: &[String], timeout: Duration) -> Output {
    run_env(args, &[], timeout).await
}

/// [`run`] with extra environment variables.
pub async fn run_env(args: &[String], env: &[(String, String)], timeout: Duration) -> Output {
    let log = std::env::temp_dir().join(format!("{}.stderr", unique("surgstream-run")));
    let stderr = std::fs::File::create(&log).expect("create log file");
    let child = surgstream()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| {
                "info,surgstream_ingest=debug,librdkafka=off,rdkafka::client=off,sqlx=warn".into()
            }),
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn surgstream");
    let result = tokio::time::timeout(timeout, child.wait_with_output()).await;
    let text = std::fs::read(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match result {
        Ok(out) => {
            let mut out = out.expect("wait for surgstream");
            out.stderr = text;
            out
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&text);
            // Progress lines every 5 s would hide what happened: the last 40 other lines.
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .filter(|l| !l.contains("ingest progress"))
                .take(40)
                .collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "surgstream {args:?} did not finish within {timeout:?}; its last log lines:\n{}",
                tail.join("\n")
            )
        }
    }
}

/// `pg_ctlcluster <version> main <action>` on the machine's Debian PostgreSQL cluster (the one
/// every test shares: only tests in a binary of their own may stop or restart it).
pub async fn pg_ctl(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .expect("a PostgreSQL version");
    let out = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .output()
        .await
        .expect("pg_ctlcluster");
    assert!(
        out.status.success(),
        "pg_ctlcluster {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 500 ms until it holds; panics naming `what` after `within`.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends a signal (`-TERM`, `-STOP`, `-CONT`) to a running child.
pub fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("the process runs").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// SIGTERM, then a clean exit within 120 s.
pub async fn stop(child: &mut Child, what: &str) {
    signal(child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} did not stop within 120 s of SIGTERM"))
        .expect("reap");
    assert!(
        status.success(),
        "{what} exits cleanly on SIGTERM: {status}"
    );
}

/// A simulator's `--report` file, read and removed.
pub fn take_report(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("sim report");
    let _ = std::fs::remove_file(path);
    serde_json::from_str(&text).expect("report is JSON")
}

/// The JSON that `verify --json` printed (with its log when it printed none).
pub fn verify_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `verify --json`'s check of the raw Iceberg tables (`iceberg_raw`): both topics' tables hold
/// exactly the raw files committed below their watermarks, none twice or miscounted, and none is
/// left unpublished. Returns how many files they hold together.
#[allow(dead_code)]
pub fn assert_raw_tables_published(v: &serde_json::Value) -> i64 {
    let checks = v["iceberg_raw"].as_object().expect("iceberg_raw");
    assert_eq!(checks.len(), 2, "{v}");
    let mut files = 0;
    for (table, c) in checks {
        for field in ["missing", "unexpected", "rows_differ", "duplicated"] {
            let n = c[field].as_array().map(Vec::len);
            assert_eq!(n, Some(0), "{table} {field}: {c}");
        }
        assert_eq!(c["unpublished_files"], 0, "{table}: {c}");
        assert_eq!(c["table_files"], c["published_files"], "{table}: {c}");
        assert!(c["published_files"].as_i64() > Some(0), "{table}: {c}");
        files += c["published_files"].as_i64().unwrap_or(0);
    }
    files
}

/// The last `n` lines of a process's output (a Python traceback's end, a JVM's last words).
pub fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
