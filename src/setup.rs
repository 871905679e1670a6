//! What the commands share: logging, the shutdown signal, the lake, the database, the
//! project's topics, the simulator's and the ingestor's configurations built from the options,
//! and the reports more than one command prints; the Iceberg tables and the warehouse kept
//! beside an ingestor are in `setup/tables.rs`. The options themselves are in `cli.rs`; the
//! HTTP endpoints in `http.rs`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use surgstream_ingest::IngestConfig;
use surgstream_ingest::health::Health;
use surgstream_ingest::verify::VerifyConfig;
use surgstream_kafka::KafkaSettings;
use surgstream_lake::Lake;
use surgstream_proto::time::MICROS_PER_DAY;
use surgstream_proto::topics as proto_topics;
use surgstream_sim::kafka::{SimReport, SinkOptions};
use surgstream_sim::{Profile, SimConfig};
use surgstream_store::Store;
use tokio_util::sync::CancellationToken;

use crate::cli::{DbArgs, FleetArgs, IngestOpts, KafkaArgs, LogFormat, ProfileArg, TopicsArgs};

mod tables;
pub use tables::*;

/// The log filter when RUST_LOG is unset. librdkafka's own warnings and errors (target
/// `librdkafka`, its log callback) are shown: a failed authentication, a refused TLS handshake
/// or a broker that cannot be reached are otherwise invisible, as the client just keeps trying.
/// librdkafka suppresses repeats of an identical failure itself: 22 such lines in a broker
/// outage of about 100 s. Its error callback (target `rdkafka::client`) stays off: it reports
/// the same failures again as "Global error" events on every poll of every client (240 lines
/// in the same outage), and the ingestor already warns of, and counts by code, the errors its
/// consumer returns (`surgstream_consumer_errors_total`).
pub const DEFAULT_LOG_FILTER: &str = "info,librdkafka=warn,rdkafka::client=off,sqlx=warn";

/// Logs to stderr (stdout holds the commands' reports), filtered by RUST_LOG; colour only when
/// stderr is a terminal (a file or a log collector gets no escape codes).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The process's stop request, and whether the running command has got past its start-up.
struct Stop {
    /// Cancelled on SIGTERM or Ctrl-C.
    token: CancellationToken,
    /// Whether the signal listener runs.
    listening: AtomicBool,
    /// The command took the token ([`shutdown_token`]): it stops in order from then on.
    taken: AtomicBool,
    /// The ingestors the command set up ([`ingest_config`]): each must run its loop once before
    /// the start-up is over (until then it is connecting, migrating, checking its topics, none
    /// of which watches the token).
    ingestors: Mutex<Vec<Health>>,
}

fn stop() -> &'static Stop {
    static STOP: OnceLock<Stop> = OnceLock::new();
    STOP.get_or_init(|| Stop {
        token: CancellationToken::new(),
        listening: AtomicBool::new(false),
        taken: AtomicBool::new(false),
        ingestors: Mutex::new(Vec::new()),
    })
}

/// Listens for SIGTERM and Ctrl-C, which cancel the process's stop token. `main` calls it
/// before the command connects to anything, so that a stop request during start-up is seen
/// (see [`stopped_during_start_up`]). Idempotent; needs the runtime.
pub fn listen_for_stop_signals() {
    let s = stop();
    if s.listening.swap(true, Ordering::SeqCst) {
        return;
    }
    let t = s.token.clone();
    // Registered here, not in the task: a signal that comes before the task first runs is
    // caught rather than left to its default action.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGTERM"))
        .ok();
    tokio::spawn(async move {
        #[cfg(unix)]
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("signal received: stopping");
        t.cancel();
    });
}

/// Cancelled on Ctrl-C or SIGTERM. A command takes it when it is ready to stop in order (flush,
/// commit, report): a stop request before that ends the start-up instead.
pub fn shutdown_token() -> CancellationToken {
    listen_for_stop_signals();
    let s = stop();
    s.taken.store(true, Ordering::SeqCst);
    s.token.clone()
}

/// Whether the command has started: it took the stop token, and every ingestor it set up has
/// run its loop once.
fn started() -> bool {
    let s = stop();
    s.taken.load(Ordering::SeqCst)
        && s.ingestors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .all(Health::started)
}

/// Returns when a stop request comes before the command has started, so that `main` ends the
/// start-up at once (nothing was consumed yet: there is nothing to flush). After the start-up it
/// never returns: the command handles the request itself.
pub async fn stopped_during_start_up() {
    stop().token.cancelled().await;
    if started() {
        std::future::pending::<()>().await;
    }
}

/// Opens the lake for a long-running command. `memory://` is refused: the manifest in
/// PostgreSQL would name files that vanish when the process exits.
pub fn open_lake(url: &str) -> Result<Lake> {
    if url.starts_with("memory:") {
        anyhow::bail!(
            "invalid lake URL {url:?}: memory:// lives only inside one process (tests, benches); committed offsets would point at files that vanish on exit"
        );
    }
    Ok(Lake::open(url)?)
}

/// The PostgreSQL URL: from --database-url, or read from --database-url-file (its content is
/// never printed: it holds the password), or the local default.
fn database_url(db: &DbArgs) -> Result<String> {
    if let Some(path) = &db.database_url_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read --database-url-file {}: {e}", path.display())
        })?;
        let url = text.trim();
        anyhow::ensure!(
            !url.is_empty(),
            "--database-url-file {} is empty: it must hold a PostgreSQL URL",
            path.display()
        );
        return Ok(url.to_owned());
    }
    if password_in_arguments(std::env::args_os().map(|a| a.to_string_lossy().into_owned())) {
        tracing::warn!(
            "the PostgreSQL password is on the command line (--database-url), where every user \
             of the machine can read it in the process list: pass it in DATABASE_URL or a file \
             named by DATABASE_URL_FILE instead"
        );
    }
    Ok(db
        .database_url
        .clone()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/surgstream".to_owned()))
}

/// Whether the process's arguments hold a `--database-url` with a password.
fn password_in_arguments(args: impl IntoIterator<Item = String>) -> bool {
    let args: Vec<String> = args.into_iter().collect();
    args.iter().enumerate().any(|(i, a)| {
        let value = match a.strip_prefix("--database-url=") {
            Some(v) => Some(v),
            None if a == "--database-url" => args.get(i + 1).map(String::as_str),
            None => None,
        };
        value
            .and_then(|v| url::Url::parse(v).ok())
            .is_some_and(|u| u.password().is_some())
    })
}

/// A pool on the database of `db` with every migration applied: by applying them, or, with
/// `--skip-migrate` (a role without DDL rights), by checking that they were.
pub async fn migrated_db(db: &DbArgs, skip_migrate: bool) -> Result<Store> {
    let store = connect_db(db).await?;
    if skip_migrate {
        store.check_migrated().await?;
    } else {
        store.migrate().await?;
    }
    Ok(store)
}

/// A pool on the database of `db`, within --db-timeout.
pub async fn connect_db(db: &DbArgs) -> Result<Store> {
    let url = resolve_secrets(&database_url(db)?).await?;
    let password = if db.database_iam_auth {
        Some(rds_iam_password(&url).await?)
    } else {
        None
    };
    Ok(Store::connect_with(&url, 8, db.db_timeout, password).await?)
}

/// The RDS IAM token source for the user and host of `url`.
async fn rds_iam_password(url: &str) -> Result<surgstream_store::PasswordSource> {
    let u = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("invalid DATABASE_URL for IAM authentication: {e}"))?;
    let host = u
        .host_str()
        .context("IAM authentication needs the RDS host in DATABASE_URL")?
        .to_owned();
    let port = u.port().unwrap_or(5432);
    let user = match u.username() {
        "" => anyhow::bail!("IAM authentication needs the database user in DATABASE_URL"),
        user => user.to_owned(),
    };
    let aws = surgstream_aws::Aws::load(surgstream_aws::region_of_rds_host(&host), None).await;
    let region = aws.require_region("RDS IAM authentication (the host name does not name it)")?;
    let source: surgstream_store::PasswordSource = std::sync::Arc::new(move || {
        let (aws, host, user, region) = (aws.clone(), host.clone(), user.clone(), region.clone());
        Box::pin(async move {
            let credentials = aws
                .credentials()
                .await
                .map_err(|e| format!("RDS IAM authentication: {e}"))?;
            let t = surgstream_aws::token::rds(
                &credentials,
                &host,
                port,
                &user,
                &region,
                std::time::SystemTime::now(),
            )
            .map_err(|e| e.to_string())?;
            Ok((t.value, t.expires_at))
        })
    });
    Ok(source)
}

/// `${aws-secretsmanager:ARN[#key]}` in a URL replaced by the secret: as it is when it is the
/// whole URL, percent-encoded when it is a part of it (a password in the user information).
async fn resolve_secrets(url: &str) -> Result<String> {
    const OPEN: &str = "${aws-secretsmanager:";
    if !url.contains(OPEN) {
        return Ok(url.to_owned());
    }
    let mut out = String::new();
    let mut rest = url;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after
            .find('}')
            .context("DATABASE_URL: a `${aws-secretsmanager:` without its closing `}`")?;
        let reference = surgstream_aws::secrets::SecretRef::parse(&after[..end])
            .map_err(|why| anyhow::anyhow!("DATABASE_URL: {why}"))?;
        let whole = start == 0 && end + 1 == after.len() && out.is_empty();
        let value = surgstream_aws::secrets::resolve(&reference).await?;
        if whole {
            out.push_str(&value);
        } else {
            out.extend(
                url::form_urlencoded::byte_serialize(value.as_bytes()).map(|s| {
                    // form encoding writes a space as `+`, which a URL's user information keeps.
                    if s == "+" { "%20" } else { s }
                }),
            );
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The ingestor's configuration from the options; `until_idle` ends it once drained.
pub fn ingest_config(
    k: &KafkaArgs,
    o: &IngestOpts,
    until_idle: Option<Duration>,
) -> Result<IngestConfig> {
    Ok(IngestConfig {
        kafka: kafka_settings(&k.brokers, k.kafka_config.as_deref())?,
        group: o.group.clone(),
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        telemetry_dlq_topic: o.telemetry_dlq_topic.clone(),
        events_dlq_topic: o.events_dlq_topic.clone(),
        max_rows: o.max_rows as usize,
        sweep_interval: o.sweep_interval,
        sweep_grace: o.sweep_grace,
        store_retry_timeout: o.store_retry_timeout,
        pg_retry_timeout: o.pg_retry_timeout,
        raw_archive: o.raw_archive,
        max_bytes: usize::try_from(o.max_bytes).unwrap_or(usize::MAX),
        memory_limit: usize::try_from(o.memory_limit).unwrap_or(usize::MAX),
        max_age: o.max_age,
        event_batch: o.event_batch as usize,
        event_max_age: o.event_max_age,
        until_idle,
        timeout: k.kafka_timeout,
        health: ingestor_health(),
        consumer_options: o.consumer_options.clone(),
    })
}

/// How every Kafka client connects: `--brokers`, the `--kafka-config` file and the
/// `SURGSTREAM_KAFKA_CLIENT_*` variables, checked now so that a typo stops the command before it
/// connects, with the file and line.
pub fn kafka_settings(brokers: &str, file: Option<&std::path::Path>) -> Result<KafkaSettings> {
    Ok(KafkaSettings::load(brokers, file)?)
}

/// A new ingestor's health, which also tells [`stopped_during_start_up`] when its start-up is
/// over.
fn ingestor_health() -> Health {
    let health = Health::default();
    stop()
        .ingestors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(health.clone());
    health
}

/// What an ingestor needs before it runs: the lake, the migrated database, its configuration,
/// and `/metrics`, `/healthz`, `/readyz` served when --metrics-addr is set.
pub async fn prepare_ingest(
    k: &KafkaArgs,
    db: &DbArgs,
    o: &IngestOpts,
    until_idle: Option<Duration>,
) -> Result<(Lake, Store, IngestConfig)> {
    let cfg = ingest_config(k, o, until_idle)?;
    let lake = open_lake(&o.lake)?;
    // The probes answer before anything is connected: a database or broker that is slow to
    // answer shows as not ready, not as a process that does not listen.
    crate::http::serve(
        o.metrics_addr,
        crate::http::ingest_ready(cfg.health.clone()),
    )
    .await?;
    let store = migrated_db(db, o.skip_migrate).await?;
    Ok((lake, store, cfg))
}

/// What to verify: the topics of `k`, the committed offsets and manifest of `group`.
pub fn verify_config(k: &KafkaArgs, group: &str, grace: Duration) -> Result<VerifyConfig> {
    Ok(VerifyConfig {
        kafka: kafka_settings(&k.brokers, k.kafka_config.as_deref())?,
        group: group.to_owned(),
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        timeout: k.kafka_timeout,
        grace,
    })
}

/// Replication factor and `min.insync.replicas` for a cluster of `brokers`, or why not.
fn replication(a: &TopicsArgs, brokers: usize) -> Result<(i32, i32)> {
    let available = i32::try_from(brokers).unwrap_or(i32::MAX);
    let rf = a.replication_factor.unwrap_or(available.min(3));
    if rf > available {
        bail!(
            "--replication-factor {rf} needs {rf} brokers; the cluster at {} has {available}",
            a.brokers
        );
    }
    if rf < available.min(3) && !a.force {
        bail!(
            "--replication-factor {rf} on a cluster of {available} brokers keeps fewer copies than it could ({}): \
             one failed disk could lose patient-linked records (use --force to create them anyway)",
            available.min(3)
        );
    }
    let isr = a.min_insync_replicas.unwrap_or(if rf >= 3 { 2 } else { 1 });
    if isr > rf {
        bail!("--min-insync-replicas {isr} is more than the {rf} replicas: no write could succeed");
    }
    Ok((rf, isr))
}

/// Creates the four topics (`create-topics`, and `bench` for its own); an existing topic is fine.
pub async fn create_topics(a: TopicsArgs) -> Result<()> {
    let kafka = kafka_settings(&a.brokers, a.kafka_config.as_deref())?;
    let admin: AdminClient<surgstream_kafka::KafkaContext> = kafka
        .client_config()
        .create_with_context(kafka.context())
        .context("cannot create Kafka admin client")?;
    // rdkafka's admin client never serves librdkafka's request for a token: give it one.
    surgstream_kafka::set_token(admin.inner(), kafka.context().msk())
        .map_err(|e| anyhow::anyhow!("cannot authenticate the Kafka admin client: {e}"))?;
    let names = [
        (
            format!("{}{}", a.prefix, proto_topics::TELEMETRY),
            a.telemetry_partitions,
        ),
        (
            format!("{}{}", a.prefix, proto_topics::EVENTS),
            a.events_partitions,
        ),
        (format!("{}{}", a.prefix, proto_topics::TELEMETRY_DLQ), 1),
        (format!("{}{}", a.prefix, proto_topics::EVENTS_DLQ), 1),
    ];
    let md = {
        let admin = &admin;
        let timeout = a.timeout;
        tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, timeout))
    }
    .with_context(|| format!("cannot reach Kafka at {}", a.brokers))?;
    let (rf, isr) = replication(&a, md.brokers().len())?;
    let isr_text = isr.to_string();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(n, p)| {
            NewTopic::new(n, *p, TopicReplication::Fixed(rf)).set("min.insync.replicas", &isr_text)
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(a.timeout))
        .request_timeout(Some(a.timeout));
    let results = tokio::time::timeout(
        a.timeout + Duration::from_secs(1),
        admin.create_topics(&new, &opts),
    )
    .await
    .with_context(|| {
        format!(
            "cannot reach Kafka at {}: no answer within {:?}",
            a.brokers, a.timeout
        )
    })?
    .with_context(|| format!("cannot create topics on Kafka at {}", a.brokers))?;
    for r in results {
        match r {
            Ok(name) => say!("created topic {name} (replication {rf}, min.insync.replicas {isr})"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => say!("topic {name} exists"),
            Err((name, code)) => bail!("cannot create topic {name} on {}: {code}", a.brokers),
        }
    }
    Ok(())
}

/// The simulation the fleet options describe; `default_profile` when none is given, `now` in
/// µs UTC. An option of the other profile is refused rather than silently ignored.
pub fn sim_config(f: &FleetArgs, default_profile: ProfileArg, now: i64) -> Result<SimConfig> {
    let profile = f.profile.unwrap_or(default_profile);
    let misplaced = match profile {
        ProfileArg::Seed => vec![("--hz", f.hz.is_some()), ("--speed", f.speed.is_some())],
        ProfileArg::Live => vec![
            ("--samples", f.samples.is_some()),
            ("--scale", f.scale != 1.0),
        ],
    };
    if let Some((option, _)) = misplaced.iter().find(|(_, given)| *given) {
        let (this, other) = match profile {
            ProfileArg::Seed => ("seed", "live"),
            ProfileArg::Live => ("live", "seed"),
        };
        anyhow::bail!(
            "invalid option {option}: it applies to --profile {other}, and this is a {this} run"
        );
    }
    let seed = f.seed.unwrap_or_else(|| {
        // A fresh fleet each run: robots registered by an earlier run are not registered again.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    // Zero stays zero, and is refused by name when the simulation is set up.
    let times = |n: u32| (f64::from(n) * f.scale).round().min(f64::from(u32::MAX)) as u32;
    Ok(match profile {
        ProfileArg::Seed => {
            let window = f
                .duration
                .unwrap_or(Duration::from_secs(SimConfig::SEED_DAYS * 86_400));
            let days = (window.as_secs() / 86_400) as i64;
            // The window ends at today's midnight (UTC) unless a start is given.
            let start = f
                .start_time
                .unwrap_or_else(|| (now.div_euclid(MICROS_PER_DAY) - days) * MICROS_PER_DAY);
            let mut cfg = SimConfig::seed(f.scale, seed, start);
            if let Some(r) = f.robots {
                cfg.robots = times(r);
                cfg.facilities = cfg.robots.div_ceil(5).min(times(10)).max(1);
            }
            if let Some(p) = f.procedures {
                cfg.procedures = Some(times(p));
            }
            // Four logs per robot over two years, as in the data model.
            cfg.maintenance =
                ((f64::from(cfg.robots) * 4.0 * days as f64 / 730.0).round() as u32).max(1);
            cfg.samples = f.samples.unwrap_or(cfg.samples);
            cfg.duration = Some(window);
            cfg
        }
        ProfileArg::Live => {
            let mut cfg =
                SimConfig::live(f.robots.unwrap_or(10), seed, f.start_time.unwrap_or(now));
            cfg.procedures = f.procedures;
            cfg.hz = f.hz.unwrap_or(cfg.hz);
            cfg.speed = f.speed.unwrap_or(cfg.speed);
            cfg.duration = f.duration;
            cfg.batch_interval = f.batch_interval;
            cfg
        }
    })
}

/// Where and how to send a simulation: a live run is paced in wall-clock time unless `--fast`;
/// a seed run is a backfill, sent as fast as the broker takes it.
pub fn sink_options(k: &KafkaArgs, f: &FleetArgs, cfg: &SimConfig) -> Result<SinkOptions> {
    Ok(SinkOptions {
        kafka: kafka_settings(&k.brokers, k.kafka_config.as_deref())?,
        compression: f.compression,
        telemetry_topic: k.telemetry_topic.clone(),
        events_topic: k.events_topic.clone(),
        paced: !f.fast && cfg.profile == Profile::Live,
        timeout: k.kafka_timeout,
    })
}

/// The simulator's one-line summary (`sim`, `demo`).
pub fn print_sim_report(r: &SimReport) {
    let achieved = r.frames as f64 / r.elapsed_seconds.max(1e-9);
    let pace = if r.paced {
        let planned = r.frames as f64 / r.simulated_seconds.max(1e-9);
        format!(
            "{achieved:.0} frames/s achieved vs {planned:.0} planned ({:.1}%), at most {:.2}s behind schedule",
            100.0 * achieved / planned.max(1e-9),
            r.max_behind_seconds
        )
    } else {
        let span = if r.simulated_seconds >= 86_400.0 {
            format!("{:.1} days", r.simulated_seconds / 86_400.0)
        } else {
            format!("{:.1}s", r.simulated_seconds)
        };
        format!("{achieved:.0} frames/s, {span} of simulated time")
    };
    let open = match r.in_progress() {
        0 => String::new(),
        n => format!(", {n} procedures still in progress"),
    };
    say!(
        "sim: {} frames in {} telemetry records, {} events, {} delivery errors in {:.1}s: {pace}{open}{}",
        r.frames,
        r.telemetry_records,
        r.events,
        r.delivery_errors,
        r.elapsed_seconds,
        if r.interrupted {
            " — interrupted"
        } else {
            ""
        }
    );
}

/// `age 3, rows 2, shutdown 4`, or `none`.
pub fn flush_causes(flushes: &BTreeMap<&'static str, u64>) -> String {
    if flushes.is_empty() {
        return "none".to_owned();
    }
    flushes
        .iter()
        .map(|(cause, n)| format!("{cause} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_password_in_database_url_arguments_is_noticed() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(password_in_arguments(argv(&[
            "surgstream",
            "ingest",
            "--database-url",
            "postgres://u:secret@h/db"
        ])));
        assert!(password_in_arguments(argv(&[
            "surgstream",
            "--database-url=postgres://u:secret@h/db"
        ])));
        assert!(!password_in_arguments(argv(&[
            "surgstream",
            "--database-url",
            "postgres://u@h/db?sslmode=verify-full"
        ])));
        assert!(!password_in_arguments(argv(&[
            "surgstream",
            "--database-url"
        ])));
    }

    fn args(rf: Option<i32>, isr: Option<i32>, force: bool) -> TopicsArgs {
        TopicsArgs {
            replication_factor: rf,
            min_insync_replicas: isr,
            force,
            ..TopicsArgs::new(
                "b:9092".into(),
                None,
                4,
                String::new(),
                Duration::from_secs(1),
            )
        }
    }

    #[test]
    fn replication_defaults_to_three_copies_or_every_broker() {
        assert_eq!(replication(&args(None, None, false), 1).ok(), Some((1, 1)));
        assert_eq!(replication(&args(None, None, false), 2).ok(), Some((2, 1)));
        assert_eq!(replication(&args(None, None, false), 3).ok(), Some((3, 2)));
        assert_eq!(replication(&args(None, None, false), 6).ok(), Some((3, 2)));
        assert_eq!(
            replication(&args(Some(5), Some(3), false), 6).ok(),
            Some((5, 3))
        );
    }

    #[test]
    fn fewer_copies_than_the_cluster_holds_are_refused_unless_forced() {
        let e = replication(&args(Some(1), None, false), 3).expect_err("refused");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(
            replication(&args(Some(1), None, true), 3).ok(),
            Some((1, 1))
        );
        let e = replication(&args(Some(4), None, false), 3).expect_err("too many");
        assert!(e.to_string().contains("has 3"), "{e}");
        let e = replication(&args(Some(3), Some(4), false), 3).expect_err("isr > rf");
        assert!(e.to_string().contains("min-insync-replicas 4"), "{e}");
    }
}
