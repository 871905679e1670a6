//! [`TestEnv`]: one test's world — its own topics, database and lake — and the commands run
//! in it (simulator, ingestor, verify, sweep), with the checks that read it back.

use super::*;

/// Where every seed-profile run of the tests starts, so that what a `--seed` draws does not move
/// with the calendar (the profile's default window ends at today's midnight: the same seed holds
/// other procedures on another day). Its two years end in the past: the ingestor refuses frames
/// stamped more than a day ahead. `SURGSTREAM_TEST_START_TIME` (RFC 3339) moves it, to show that
/// the suite passes whatever the window (docs/testing.md).
pub const SEED_START: &str = "2024-01-01T00:00:00Z";

/// A fixed start for live runs whose draw a test relies on (a procedure that runs, not one
/// cancelled): with `--seed`, the same fleet and cases on any day. Paced feeds checked against
/// the clock keep the default (now).
pub const LIVE_START: &str = "2026-03-02T08:00:00Z";

/// The start of the tests' seed-profile runs: `SURGSTREAM_TEST_START_TIME`, else [`SEED_START`];
/// refused (a clear panic, not a failure far away) unless the two-year window it opens has ended.
pub fn seed_start() -> String {
    let start =
        std::env::var("SURGSTREAM_TEST_START_TIME").unwrap_or_else(|_| SEED_START.to_owned());
    let at = chrono::DateTime::parse_from_rfc3339(&start)
        .unwrap_or_else(|e| panic!("SURGSTREAM_TEST_START_TIME={start}: {e} (expected RFC 3339)"));
    assert!(
        at + chrono::Duration::days(731) < chrono::Utc::now(),
        "SURGSTREAM_TEST_START_TIME={start}: a seed run's two years from there reach the future, \
         whose frames the ingestor refuses; choose a start more than two years ago"
    );
    start
}

/// The warehouse's tables.
pub const WAREHOUSE_TABLES: [&str; 7] = [
    "warehouse.dim_date",
    "warehouse.dim_facility",
    "warehouse.dim_robot",
    "warehouse.dim_surgeon",
    "warehouse.fact_procedure",
    "warehouse.fact_maintenance",
    "warehouse.fact_robot_day",
];

/// A small seed-profile backfill for `sim`: 3 robots, `procedures` procedures of `samples`
/// frames each, from `seed`, in the window that starts at [`seed_start`].
pub fn small_seed(procedures: u32, samples: u32, seed: usize) -> Vec<String> {
    [
        "--profile".to_owned(),
        "seed".to_owned(),
        "--robots".to_owned(),
        "3".to_owned(),
        "--procedures".to_owned(),
        procedures.to_string(),
        "--samples".to_owned(),
        samples.to_string(),
        "--seed".to_owned(),
        seed.to_string(),
        "--start-time".to_owned(),
        seed_start(),
    ]
    .into()
}

/// A command's arguments with its `--database-url` value replaced by `url` (another role).
pub fn with_database_url(mut args: Vec<String>, url: &str) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == "--database-url")
        .expect("a --database-url argument")
        + 1;
    args[at] = url.to_owned();
    args
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
        Self::with_id(unique(name), brokers).await
    }

    async fn with_id(id: String, brokers: &str) -> Self {
        let prefix = format!("{id}.");
        let out = surgstream()
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
        let out = surgstream()
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
    ///
    /// Its id is short (`s3` and 10 hex digits of the usual one): s3s-fs keeps an object's
    /// metadata in a file named after the base64 of its whole key, so a key over about 157 bytes
    /// fails there with a 500 (the file name passes 255 bytes), and the raw archive's keys hold
    /// the lake's prefix and the topic's name, each the test id: with the usual ids they were
    /// 158–162 bytes. (S3 takes keys of 1,024 bytes.)
    pub async fn new_s3(name: &str, s3: &S3Server) -> Self {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        unique(name).hash(&mut h);
        let short = format!("s3{:010x}", h.finish() & 0xFF_FFFF_FFFF);
        let mut env = Self::with_id(short, &brokers()).await;
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

    /// `surgstream warehouse` on this test's database, lake and group (`--json` report).
    pub fn warehouse_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "warehouse".to_owned(),
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Runs `surgstream warehouse` to its end; its JSON report.
    pub async fn warehouse(&self, extra: &[&str]) -> serde_json::Value {
        self.run_json(&self.warehouse_args(extra), "warehouse")
            .await
    }

    /// [`Self::run_json`] with this test's `--database-url` and `--lake` (and `--group`) added.
    pub async fn run_json_here(&self, args: &[&str], what: &str) -> serde_json::Value {
        self.run_json(&self.args_here(args), what).await
    }

    /// `args` with this test's `--database-url`, `--lake` and `--group` added.
    pub fn args_here(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.extend([
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
        ]);
        all
    }

    /// Runs a command with `--json` on this test's lake to its end (at most 5 min); its report.
    pub async fn run_json(&self, args: &[String], what: &str) -> serde_json::Value {
        let out = run_env(args, &self.lake_env, Duration::from_secs(300)).await;
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{what} --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Rebuilds the warehouse from nothing (its rows, state and objects removed first); the
    /// refresh's report.
    pub async fn rebuild_warehouse(&self) -> serde_json::Value {
        for t in WAREHOUSE_TABLES.iter().chain(&["warehouse.refresh_state"]) {
            sqlx::query(&format!("DELETE FROM {t}"))
                .execute(&self.pool)
                .await
                .expect("clear the warehouse");
        }
        std::fs::remove_dir_all(self.lake.join("warehouse")).expect("remove warehouse objects");
        self.warehouse(&[]).await
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
        surgstream()
            .args(self.sim_args(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the simulator")
    }

    /// `sim` with this world's topics and `extra`; a seed-profile run (the default profile) that
    /// names no `--start-time` gets [`seed_start`], so that no test's draw depends on the day it
    /// runs. A live run keeps its default (now): paced feeds are checked against the clock.
    pub fn sim_args<S: AsRef<str>>(&self, extra: &[S]) -> Vec<String> {
        let mut a = vec!["sim".to_owned()];
        a.extend(self.kafka_args());
        a.extend(extra.iter().map(|s| s.as_ref().to_owned()));
        let live = a.windows(2).any(|w| w[0] == "--profile" && w[1] == "live");
        if !live && !a.iter().any(|s| s == "--start-time") {
            a.extend(["--start-time".to_owned(), seed_start()]);
        }
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
    pub async fn sim<S: AsRef<str>>(&self, extra: &[S]) -> serde_json::Value {
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

    /// Runs `sim` with `extra` into a file (`sim --output`) instead of Kafka; its records.
    pub async fn simulate<S: AsRef<str>>(
        &self,
        extra: &[S],
    ) -> Vec<surgstream_sim::file::FramedRecord> {
        let file = self.lake.with_extension(format!("sim-{}.bin", unique("o")));
        let mut args = self.sim_args(extra);
        args.extend(["--output".to_owned(), file.display().to_string()]);
        let out = run(&args, Duration::from_secs(120)).await;
        assert!(out.status.success(), "sim --output failed: {out:?}");
        let records = surgstream_sim::file::read(std::fs::File::open(&file).expect("open"))
            .expect("read the simulator's file");
        let _ = std::fs::remove_file(&file);
        records
    }

    /// Sends `records` to this world's topics one after the other (so in order per key, as the
    /// simulator sends them), with their schema headers.
    pub async fn send_records(&self, records: &[surgstream_sim::file::FramedRecord]) {
        use surgstream_sim::file::Kind;
        let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        for r in records {
            let (topic, schema) = match r.kind {
                Kind::Telemetry => (
                    self.topic("surgical.telemetry.v1"),
                    "surgstream.v1.TelemetryBatch",
                ),
                Kind::Event => (self.topic("surgical.events.v1"), "surgstream.v1.Event"),
            };
            send(&producer, &topic, &r.key, &r.value, Some(schema)).await;
        }
    }

    /// `surgstream iceberg publish` on this test's database, lake, group and topic.
    pub fn iceberg_publish_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "iceberg".to_owned(),
            "publish".into(),
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
            "--telemetry-topic".into(),
            self.topic("surgical.telemetry.v1"),
            "--events-topic".into(),
            self.topic("surgical.events.v1"),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Runs `surgstream compact` on this test's database, lake and group to its end; its JSON
    /// report (`compaction`, and `iceberg`: what the publish after it did).
    pub async fn compact(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "compact".to_owned(),
            "--database-url".into(),
            self.database_url(),
            "--lake".into(),
            self.lake_url.clone(),
            "--group".into(),
            self.group.clone(),
            "--telemetry-topic".into(),
            self.topic("surgical.telemetry.v1"),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        self.run_json(&args, "compact").await
    }

    /// Runs `surgstream iceberg publish` to its end; its JSON report.
    pub async fn iceberg_publish(&self, extra: &[&str]) -> serde_json::Value {
        self.run_json(&self.iceberg_publish_args(extra), "iceberg publish")
            .await
    }

    /// The Iceberg table as pyiceberg reads it through the SQL catalog (tests/iceberg_read.py):
    /// its snapshot, schema, planned files and, unless `--no-rows` is among `extra`, its rows.
    pub async fn read_iceberg(&self, extra: &[&str]) -> serde_json::Value {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/iceberg_read.py"
            ))
            .arg(self.database_url())
            .args(extra)
            .output()
            .await
            .expect("python3 must be installed (scripts/setup.sh installs pyiceberg)");
        assert!(
            out.status.success(),
            "pyiceberg could not read the table:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON from pyiceberg")
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
        surgstream()
            .args(self.ingest_args(extra))
            .envs(self.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn ingest")
    }

    /// The ingestor with its log (stderr) in `log`, to read what it said.
    pub fn spawn_ingest_logged(&self, extra: &[&str], log: &std::path::Path) -> Child {
        self.spawn_ingest_logged_with_env(extra, &[], log)
    }

    /// [`Self::spawn_ingest_logged`] with extra environment variables (fault injection).
    pub fn spawn_ingest_logged_with_env(
        &self,
        extra: &[&str],
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Child {
        let file = std::fs::File::create(log).expect("create the ingestor's log");
        surgstream()
            .args(self.ingest_args(extra))
            .envs(self.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "RUST_LOG",
                "info,librdkafka=off,rdkafka::client=off,sqlx=warn",
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn ingest")
    }

    /// Waits until `verify` finds every frame and event the topics hold committed, once.
    pub async fn wait_drained(&self, within: Duration, what: &str) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let out = self.verify(&["--json"]).await;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let drained = [
                "missing",
                "duplicated",
                "events_unprocessed",
                "pending_records",
            ]
            .iter()
            .all(|k| v[*k] == 0);
            if drained {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: the topics were not drained within {within:?}: {v:#}"
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    /// Waits until at least `by` more lake files are committed than when called.
    pub async fn commits_grow(&self, by: i64, within: Duration, what: &str) {
        let start = self.count("SELECT count(*) FROM lake_files").await;
        let deadline = tokio::time::Instant::now() + within;
        while self.count("SELECT count(*) FROM lake_files").await < start + by {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: fewer than {by} new commits within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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

    /// After a fault test: no event was dead-lettered (the simulator sends only valid ones),
    /// and the tables the events write hold exactly what an undisturbed ingestor makes of the
    /// same topics — a fresh group into a fresh database and lake, run once to the end: the
    /// same robots and their statuses and `total_procedures`, procedures and their final
    /// statuses, outcomes, maintenance logs, audit trail and processed events (the clock
    /// columns a row gets when it is written aside).
    pub async fn assert_events_as_an_undisturbed_run(&self) {
        let dlq = self.topic("surgical.events.dlq.v1");
        assert_eq!(
            topic_records(&self.brokers, &dlq),
            0,
            "events were dead-lettered to {dlq}"
        );
        let db = format!("{}_undisturbed", self.db);
        let mut admin = PgConnection::connect(&admin_url("postgres"))
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(&mut admin)
            .await
            .expect("create the reference database");
        let lake = self.lake.with_extension("undisturbed");
        let out = run(
            &[
                "migrate".to_owned(),
                "--database-url".into(),
                admin_url(&db),
            ],
            Duration::from_secs(60),
        )
        .await;
        assert!(out.status.success(), "migrate the reference database");
        let mut args = vec!["ingest".to_owned()];
        args.extend(self.kafka_args());
        args.extend([
            "--telemetry-dlq-topic".into(),
            self.topic("surgical.telemetry.dlq.v1"),
            "--events-dlq-topic".into(),
            dlq.clone(),
            "--database-url".into(),
            admin_url(&db),
            "--lake".into(),
            lake.display().to_string(),
            "--group".into(),
            format!("{}-undisturbed", self.group),
            "--until-idle".into(),
            "3s".into(),
        ]);
        let out = run(&args, Duration::from_secs(600)).await;
        assert!(
            out.status.success(),
            "the undisturbed ingestor failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference = PgPool::connect(&admin_url(&db))
            .await
            .expect("connect to the reference database");
        let tables = [
            "surgical_robots",
            "surgical_procedures",
            "procedure_outcomes",
            "robot_maintenance_logs",
            "status_audit",
            "processed_events",
        ];
        let ours = digest_without_clocks(&self.pool, &tables).await;
        let theirs = digest_without_clocks(&reference, &tables).await;
        reference.close().await;
        let _ = std::fs::remove_dir_all(&lake);
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await;
        assert!(
            theirs.iter().take(2).all(|(_, rows, _)| *rows > 0),
            "the undisturbed run wrote no robots or procedures: nothing was compared ({theirs:?})"
        );
        assert_eq!(
            ours, theirs,
            "the tables differ from an undisturbed run over the same topics (table, rows, md5)"
        );
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
        let brokers = self.brokers.clone();
        let topics: Vec<String> = [
            "surgical.telemetry.v1",
            "surgical.events.v1",
            "surgical.telemetry.dlq.v1",
            "surgical.events.dlq.v1",
        ]
        .iter()
        .map(|base| self.topic(base))
        .collect();
        // Best effort, from a fresh runtime on a helper thread: delete the topics (a broker
        // that keeps every test's partitions takes minutes to recover them after an unclean
        // stop) and drop the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use rdkafka::admin::{AdminClient, AdminOptions};
                let admin: Option<AdminClient<_>> = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .create()
                    .ok();
                if let Some(admin) = admin {
                    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                    let options =
                        AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        admin.delete_topics(&names, &options),
                    )
                    .await;
                }
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
