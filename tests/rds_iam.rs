//! RDS IAM authentication: `--database-iam-auth` makes every PostgreSQL connection's password a
//! fresh RDS auth token, signed with the AWS SDK's credential chain — here an ECS task role
//! (the test's container credentials endpoint) whose credentials live 30 s. PostgreSQL stands
//! in for RDS (scripts/services.sh: members of `surgstream_iam` log in over TLS only, with a
//! password PAM checks as RDS checks an IAM token's shape and time, refusing one signed with
//! expired credentials, and logs).
//!
//! migrate → ingest run as such a role while the test drops the ingestor's connections every
//! 8 s (what a failover does): the pool reconnects with tokens of ever newer credentials, none
//! is refused, and every frame lands once. A URL without TLS is refused before anything is sent.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use sqlx::PgPool;

const TOKEN_LOG: &str = "/var/lib/postgresql/surgstream-iam/tokens.log";

fn ca() -> PathBuf {
    std::env::var_os("SURGSTREAM_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.services")))
        .join("pg-tls/ca.pem")
}

/// The token log's lines for `role`: (verdict, access key).
fn tokens_of(role: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(TOKEN_LOG)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 5 && f[2] == role).then(|| (f[1].to_owned(), f[3].to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_rds_iam_tokens_the_pool_reconnects_with_new_ones_and_every_frame_lands_once() {
    assert!(
        std::path::Path::new(TOKEN_LOG).exists(),
        "{TOKEN_LOG} is missing: scripts/services.sh up sets up the RDS IAM stand-in"
    );
    let mut env = TestEnv::new("rds-iam").await;
    let db = env
        .database_url()
        .rsplit('/')
        .next()
        .expect("a database")
        .to_owned();
    let role = format!("iam_{}", std::process::id());
    let admin = PgPool::connect(&admin_url(&db))
        .await
        .expect("connect as postgres");
    for sql in [
        format!("DROP ROLE IF EXISTS {role}"),
        // A superuser: this test is about how it logs in, tests/least_privilege.rs about what
        // a role may do.
        format!("CREATE ROLE {role} LOGIN SUPERUSER IN ROLE surgstream_iam"),
    ] {
        sqlx::query(&sql).execute(&admin).await.expect(&sql);
    }
    let credentials = ContainerCredentials::start(Duration::from_secs(30), true).await;
    env.lake_env.extend([
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
            credentials.uri(),
        ),
        ("AWS_REGION".to_owned(), "eu-west-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ]);
    let url = format!(
        "postgres://{role}@127.0.0.1:5432/{db}?sslmode=verify-full&sslrootcert={}",
        ca().display()
    );

    // Without TLS the token would cross the network in the clear: refused, in one line.
    let plain = format!("postgres://{role}@127.0.0.1:5432/{db}?sslmode=disable");
    let out = run_env(
        &[
            "migrate".into(),
            "--database-iam-auth".into(),
            "--database-url".into(),
            plain,
        ],
        &env.lake_env,
        Duration::from_secs(60),
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sslmode=verify-full"), "{stderr}");

    let out = run_env(
        &[
            "migrate".into(),
            "--database-iam-auth".into(),
            "--database-url".into(),
            url.clone(),
        ],
        &env.lake_env,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        out.status.success(),
        "migrate with an RDS IAM token: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = env.lake.with_extension("ingest.log");
    let file = std::fs::File::create(&log).expect("ingest log");
    let mut ingest = surgstream()
        .args(with_database_url(
            env.ingest_args(&["--database-iam-auth", "--max-age", "1s", "--skip-migrate"]),
            &url,
        ))
        .envs(env.lake_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "RUST_LOG",
            "info,surgstream_store=debug,librdkafka=off,sqlx=warn",
        )
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ingest");
    let first = env.sim(&small_seed(8, 120, 31)).await;

    // Two and a half lives of the credentials, the ingestor's connections dropped every 8 s.
    let mut dropped = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(75);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(8)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE usename = $1 AND pid <> pg_backend_pid()) t",
        )
        .bind(&role)
        .fetch_one(&admin)
        .await
        .expect("drop the ingestor's connections");
        dropped += n;
    }
    assert!(dropped > 0, "no connection of the ingestor was dropped");
    let second = env.sim(&small_seed(8, 120, 32)).await;
    env.wait_drained(Duration::from_secs(180), "over RDS IAM")
        .await;
    stop(&mut ingest, "ingest").await;
    assert_exactly_once(&[&first, &second], &env.committed_frames().await);

    let tokens = tokens_of(&role);
    let refused: Vec<_> = tokens.iter().filter(|(v, _)| v != "ACCEPTED").collect();
    assert!(
        refused.is_empty(),
        "tokens refused: {refused:?}\n{}",
        last_lines(&std::fs::read(&log).unwrap_or_default(), 30)
    );
    let keys: BTreeSet<&str> = tokens.iter().map(|(_, k)| k.as_str()).collect();
    assert!(
        keys.len() >= 3,
        "tokens of {} credentials: {keys:?}",
        keys.len()
    );
    assert!(
        keys.iter().all(|k| k.starts_with("ASIACONTAINER")),
        "{keys:?}"
    );
    admin.close().await;
}
