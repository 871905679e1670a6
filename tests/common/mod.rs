//! Shared test harness: a fresh set of topics, a fresh PostgreSQL database and a fresh lake
//! directory per test, on the real broker and the real PostgreSQL (see scripts/services.sh).
#![allow(dead_code)]

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

/// One test's world: topics `<prefix>surgical.*`, database `<db>`, lake directory `<lake>`.
pub struct TestEnv {
    /// The broker's bootstrap address.
    pub brokers: String,
    pub prefix: String,
    pub db: String,
    /// Where the lake's files are on disk (for an S3 lake: inside the S3 server's directory).
    pub lake: PathBuf,
    /// The `--lake` URL the commands get.
    pub lake_url: String,
    /// Environment of every command run on this lake (the S3 settings).
    pub lake_env: Vec<(String, String)>,
    pub group: String,
    pub pool: PgPool,
}

impl TestEnv {
    pub async fn new(name: &str) -> Self {
        Self::new_on(name, &brokers()).await
    }

    /// A test world on the broker at `brokers` (a test's own broker).
    pub async fn new_on(name: &str, brokers: &str) -> Self {
        let id = unique(name);
        let prefix = format!("{id}.");
        let out = Command::new(BIN)
            .args(["create-topics", "--brokers", brokers, "--prefix", &prefix])
            .output()
            .await
            .expect("run create-topics");
        assert!(
            out.status.success(),
            "create-topics failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let db = format!("surgstream_test_{}", id.to_lowercase());
        let mut admin = PgConnection::connect(&admin_url("postgres"))
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(&mut admin)
            .await
            .expect("create database");
        let lake = std::env::temp_dir().join(format!("surgstream-lake-{id}"));
        let out = Command::new(BIN)
            .args(["migrate", "--database-url", &admin_url(&db)])
            .output()
            .await
            .expect("run migrate");
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pool = PgPool::connect(&admin_url(&db))
            .await
            .expect("connect to test database");
        Self {
            brokers: brokers.to_owned(),
            prefix,
            db,
            lake_url: lake.display().to_string(),
            lake,
            lake_env: Vec::new(),
            group: format!("{id}-group"),
            pool,
        }
    }

    /// A test world whose lake is `s3://surgstream/<test id>` on `s3`.
    pub async fn new_s3(name: &str, s3: &S3Server) -> Self {
        let mut env = Self::new(name).await;
        let id = env.prefix.trim_end_matches('.').to_owned();
        env.lake = s3.root.join(S3_BUCKET).join(&id);
        env.lake_url = format!("s3://{S3_BUCKET}/{id}");
        env.lake_env = s3.env();
        env
    }

    pub fn topic(&self, base: &str) -> String {
        format!("{}{}", self.prefix, base)
    }

    pub fn database_url(&self) -> String {
        admin_url(&self.db)
    }

    fn kafka_args(&self) -> Vec<String> {
        vec![
            "--brokers".into(),
            self.brokers.clone(),
            "--telemetry-topic".into(),
            self.topic("surgical.telemetry.v1"),
            "--events-topic".into(),
            self.topic("surgical.events.v1"),
        ]
    }

    /// `surgstream verify` on this test's topics, database, lake and group.
    pub async fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["verify".to_owned()];
        args.extend(self.kafka_args());
        args.extend([
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
        ]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        run_env(&args, &self.lake_env, Duration::from_secs(120)).await
    }

    /// `surgstream sweep` on this test's database and lake.
    pub async fn sweep(&self, grace: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "sweep".to_owned(),
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--grace".into(),
            grace.to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        run_env(&args, &self.lake_env, Duration::from_secs(60)).await
    }

    /// A small live fleet sent as fast as the broker takes it (procedures at 3600× speed):
    /// `robots` rooms, `procedures` cases in all, `hz` frames/s each, and `extra` options.
    pub async fn sim_live_fast(
        &self,
        robots: u32,
        procedures: u32,
        hz: u32,
        extra: &[&str],
    ) -> serde_json::Value {
        let (r, p, h) = (robots.to_string(), procedures.to_string(), hz.to_string());
        let mut args = vec![
            "--profile",
            "live",
            "--robots",
            &r,
            "--procedures",
            &p,
            "--hz",
            &h,
            "--speed",
            "3600",
            "--fast",
        ];
        args.extend_from_slice(extra);
        self.sim(&args).await
    }

    /// A paced live feed in the background until stopped ([`stop`] sends SIGTERM, and the
    /// simulator then writes its report): `robots` rooms at `hz`, procedures at 60× real time,
    /// for at most 30 min, plus `extra` options (`--report`, `--metrics-addr`, …).
    pub fn spawn_live_sim(&self, robots: u32, hz: u32, seed: u32, extra: &[&str]) -> Child {
        let (r, h, s) = (robots.to_string(), hz.to_string(), seed.to_string());
        let mut args = vec![
            "--profile",
            "live",
            "--robots",
            &r,
            "--hz",
            &h,
            "--speed",
            "60",
            "--seed",
            &s,
            "--duration",
            "30m",
        ];
        args.extend_from_slice(extra);
        Command::new(BIN)
            .args(self.sim_args(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the simulator")
    }

    pub fn sim_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = vec!["sim".to_owned()];
        a.extend(self.kafka_args());
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    }

    pub fn ingest_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = vec!["ingest".to_owned()];
        a.extend(self.kafka_args());
        a.extend([
            "--telemetry-dlq-topic".into(),
            self.topic("surgical.telemetry.dlq.v1"),
            "--events-dlq-topic".into(),
            self.topic("surgical.events.dlq.v1"),
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
        ]);
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    }

    /// Runs the simulator to the end and returns its JSON report.
    pub async fn sim(&self, extra: &[&str]) -> serde_json::Value {
        let report = self
            .lake
            .with_extension(format!("sim-{}.json", unique("r")));
        let mut args = self.sim_args(extra);
        args.extend(["--report".to_owned(), report.display().to_string()]);
        let out = run(&args, Duration::from_secs(300)).await;
        assert!(
            out.status.success(),
            "sim failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&report).expect("sim report");
        let _ = std::fs::remove_file(&report);
        serde_json::from_str(&text).expect("report is JSON")
    }

    /// Runs the ingestor until the topics are idle.
    pub async fn ingest_until_idle(&self, extra: &[&str]) -> Output {
        let mut args = self.ingest_args(&["--until-idle", "3s"]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let out = run_env(&args, &self.lake_env, Duration::from_secs(600)).await;
        assert!(
            out.status.success(),
            "ingest failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn spawn_ingest(&self, extra: &[&str]) -> Child {
        self.spawn_ingest_with_env(extra, &[])
    }

    /// The ingestor with extra environment variables (fault injection: `SURGSTREAM_FAULT`).
    pub fn spawn_ingest_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Child {
        Command::new(BIN)
            .args(self.ingest_args(extra))
            .envs(self.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn ingest")
    }

    /// (procedure_id, seq) → how many times it is in the committed lake (files named by
    /// `lake_files`), plus the total rows read.
    pub async fn committed_frames(&self) -> HashMap<([u8; 16], i64), u32> {
        let files: Vec<(String,)> = sqlx::query_as("SELECT path FROM lake_files ORDER BY path")
            .fetch_all(&self.pool)
            .await
            .expect("list lake_files");
        let mut seen = HashMap::new();
        for (path,) in files {
            let bytes =
                std::fs::read(self.lake.join(&path)).unwrap_or_else(|e| panic!("open {path}: {e}"));
            let keys =
                surgstream_lake::read_keys(&path, bytes.into()).unwrap_or_else(|e| panic!("{e}"));
            for key in keys {
                *seen.entry(key).or_insert(0) += 1;
            }
        }
        seen
    }

    /// Per table: its row count and an md5 of all its rows as text (order-independent).
    pub async fn digest(&self, tables: &[&str]) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        for table in tables {
            let (rows, digest): (i64, Option<String>) = sqlx::query_as(&format!(
                "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            ))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("digest of {table}: {e}"));
            out.push(((*table).to_owned(), rows, digest.unwrap_or_default()));
        }
        out
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.lake);
        let db = self.db.clone();
        // Best effort: drop the database from a fresh runtime on a helper thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&admin_url("postgres")).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
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
    let child = Command::new(BIN)
        .args(args)
        // Every test names its database: one set in the caller's shell must not leak in.
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_URL_FILE")
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

/// Asserts that every frame the simulator reported is in the lake exactly once, with
/// contiguous sequence numbers per procedure.
pub fn assert_exactly_once(reports: &[&serde_json::Value], seen: &HashMap<([u8; 16], i64), u32>) {
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{} duplicated (procedure_id, seq) pairs, e.g. {:?}",
        dups.len(),
        dups.first()
    );
    let mut expected_total = 0u64;
    let mut per_proc: HashMap<[u8; 16], u64> = HashMap::new();
    for (id, _) in seen.keys() {
        *per_proc.entry(*id).or_default() += 1;
    }
    let mut procedures = 0;
    for report in reports {
        expected_total += report["frames"].as_u64().expect("frames");
        for (id, n) in report["frames_per_procedure"]
            .as_object()
            .expect("frames_per_procedure")
        {
            let uuid = uuid::Uuid::parse_str(id).expect("uuid");
            let n = n.as_u64().expect("count");
            let got = per_proc.get(uuid.as_bytes()).copied().unwrap_or_default();
            assert_eq!(got, n, "procedure {id}: {n} frames sent, {got} in the lake");
            for seq in 0..n as i64 {
                assert!(
                    seen.contains_key(&(*uuid.as_bytes(), seq)),
                    "procedure {id}: seq {seq} missing"
                );
            }
            procedures += 1;
        }
    }
    assert_eq!(
        per_proc.len(),
        procedures,
        "the lake holds procedures the simulator did not send"
    );
    assert_eq!(
        seen.len() as u64,
        expected_total,
        "frames in the lake vs frames sent"
    );
    assert!(expected_total > 0, "the simulator sent no frames");
}

/// Produces one raw record (with a `schema` header when given) and waits for its delivery.
pub async fn send(
    p: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: &[u8],
    value: &[u8],
    schema: Option<&str>,
) {
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
    p.send(rec, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("delivered");
}

/// Reads exactly `n` dead letters from `topic` (their headers), and checks that no more come.
pub async fn dead_letters(topic: &str, n: usize) -> Vec<HashMap<String, String>> {
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
        out.push(h);
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

/// The bucket every test S3 server has.
pub const S3_BUCKET: &str = "surgstream";

/// A real S3-compatible server (s3s-fs, installed by `scripts/services.sh`) on a free port of
/// 127.0.0.1, over a fresh directory: a bucket is a directory, an object a file in it. It can be
/// stopped and started again on the same port and data (store outages).
pub struct S3Server {
    pub port: u16,
    pub root: PathBuf,
    child: Option<Child>,
}

/// Where `scripts/services.sh` caches the binaries it builds.
fn cache_dir() -> PathBuf {
    std::env::var("SURGSTREAM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/surgstream")
        })
}

/// Waits until 127.0.0.1:`port` accepts connections; panics after 20 s naming `what`.
async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 20 s");
}

/// The s3s-fs binary: `SURGSTREAM_S3S_FS`, or where `scripts/services.sh` caches it.
pub fn s3s_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SURGSTREAM_S3S_FS") {
        return PathBuf::from(p);
    }
    let bin = cache_dir().join("s3s-fs-0.14.1/bin/s3s-fs");
    assert!(
        bin.exists(),
        "no S3 server at {} (run scripts/services.sh up, which installs it, or set SURGSTREAM_S3S_FS)",
        bin.display()
    );
    bin
}

impl S3Server {
    pub const ACCESS_KEY: &'static str = "surgstream-test";
    pub const SECRET_KEY: &'static str = "surgstream-test-secret";

    pub async fn start(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("surgstream-s3-{}", unique(name)));
        std::fs::create_dir_all(root.join(S3_BUCKET)).expect("create the S3 server's bucket");
        let port = free_port();
        let mut server = Self {
            port,
            root,
            child: None,
        };
        server.restart().await;
        server
    }

    /// Starts the server (again), and waits until it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the S3 server is already running");
        let child = Command::new(s3s_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                Self::ACCESS_KEY,
                "--secret-key",
                Self::SECRET_KEY,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        wait_for_port(self.port, "s3s-fs").await;
    }

    /// Kills the server (its data stays on disk).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill s3s-fs");
            child.wait().await.expect("reap s3s-fs");
        }
    }

    /// The `AWS_*` settings that point a client at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0): the status code and the body.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The Prometheus text a `--metrics-addr` endpoint serves.
pub async fn scrape(port: u16) -> String {
    match http_get(port, "/metrics").await {
        Ok((200, body)) => body,
        other => panic!("GET /metrics on :{port}: {other:?}"),
    }
}

/// The sum of every series of `name` (all label sets) in a Prometheus text page; 0 if absent.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Kafka-protocol broker of the test's own (Tansu, as `scripts/services.sh` installs it) on a
/// free port of 127.0.0.1 over a fresh directory, that the test can stop and start again.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub async fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("surgstream-broker-{}", unique(name)));
        std::fs::create_dir_all(&dir).expect("create the broker's directory");
        let mut broker = Self {
            port: free_port(),
            dir,
            child: None,
        };
        broker.restart().await;
        broker
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again, on the same port and data), and waits until it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let bin = cache_dir().join("tansu-0.6.0/bin/tansu");
        assert!(
            bin.exists(),
            "no Tansu at {} (run scripts/services.sh up)",
            bin.display()
        );
        let url = format!("tcp://{}", self.addr());
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        wait_for_port(self.port, "tansu").await;
    }

    /// Kills the broker (its data stays).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill tansu");
            child.wait().await.expect("reap tansu");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
