//! PostgreSQL over verified TLS, as libpq users write it in the URL (`sslmode`, `sslrootcert`):
//! scripts/services.sh serves TLS with a certificate of a local CA issued to 127.0.0.1 alone, and
//! lets members of `surgstream_tls` connect only over TLS. As such a member, sim → ingest →
//! verify with `sslmode=verify-full` commits every frame once (so every connection was
//! encrypted: a plaintext one is refused); the wrong CA, or a host name the certificate does not
//! name, is refused with one clear line.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

fn services_dir() -> PathBuf {
    std::env::var_os("SURGSTREAM_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.services")))
}

async fn migrate(url: &str) -> (bool, String) {
    let out = run(
        &[
            "migrate".to_owned(),
            "--database-url".to_owned(),
            url.to_owned(),
        ],
        Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.success(), stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_connects_and_commits_exactly_once_and_a_wrong_ca_or_name_is_refused() {
    let ca = services_dir().join("pg-tls/ca.pem");
    assert!(
        ca.exists(),
        "{} is missing: scripts/services.sh up makes it",
        ca.display()
    );
    let env = TestEnv::new("pg-tls").await;
    let role = env.prefix.trim_end_matches('.').to_lowercase();
    for sql in [
        format!("CREATE ROLE \"{role}\" LOGIN IN ROLE surgstream_tls"),
        format!("GRANT ALL ON SCHEMA public TO \"{role}\""),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{role}\""),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
    ] {
        sqlx::query(&sql)
            .execute(&env.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let url = |host: &str, query: &str| format!("postgres://{role}@{host}:5432/{}?{query}", env.db);
    let root = format!("sslrootcert={}", ca.display());

    // The role may not connect in plaintext: what succeeds below was encrypted.
    let (ok, stderr) = migrate(&url("127.0.0.1", "sslmode=disable")).await;
    assert!(
        !ok,
        "a plaintext connection of a TLS-only role was accepted"
    );
    assert!(
        stderr.contains("no encryption") || stderr.contains("pg_hba.conf"),
        "{stderr}"
    );

    let verified = url("127.0.0.1", &format!("sslmode=verify-full&{root}"));
    let (ok, stderr) = migrate(&verified).await;
    assert!(ok, "verify-full against the local CA: {stderr}");

    let report = env.sim(&small_seed(8, 100, 5)).await;
    let args = with_database_url(
        env.ingest_args(&["--until-idle", "3s", "--max-age", "1s"]),
        &verified,
    );
    let out = run_env(&args, &env.lake_env, Duration::from_secs(300)).await;
    assert!(
        out.status.success(),
        "ingest over verify-full: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);

    // A CA that did not sign the server's certificate.
    let dir = std::env::temp_dir().join(format!("surgstream-pg-tls-{role}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let other = dir.join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let (ok, stderr) = migrate(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", other.display()),
    ))
    .await;
    assert!(!ok, "verify-full trusted a certificate its CA did not sign");
    let last = stderr.lines().last().unwrap_or_default().to_lowercase();
    assert!(last.contains("certificate"), "{stderr}");

    // A host name the certificate does not name (it names 127.0.0.1 alone) …
    let (ok, stderr) = migrate(&url("localhost", &format!("sslmode=verify-full&{root}"))).await;
    assert!(!ok, "verify-full accepted a certificate for another name");
    let last = stderr.lines().last().unwrap_or_default().to_lowercase();
    assert!(last.contains("name"), "{stderr}");
    // … which sslmode=require, encrypting without verifying, does not check. (verify-ca checks
    // the name too with sqlx 0.8.6: docs/security.md.)
    let (ok, stderr) = migrate(&url("localhost", "sslmode=require")).await;
    assert!(ok, "require: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);

    for sql in [
        format!("REASSIGN OWNED BY \"{role}\" TO CURRENT_USER"),
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        let _ = sqlx::query(&sql).execute(&env.pool).await;
    }
}
