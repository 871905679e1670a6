//! The ingestor runs with exactly the PostgreSQL grants docs/security.md lists — no superuser,
//! no DDL, no DELETE — once `surgstream migrate` ran as the schema's owner: with
//! `--skip-migrate` it checks the migrations instead of applying them, and sim → ingest →
//! verify commits every frame once. Without `--skip-migrate` it stops with a line that says
//! what to do; on a database that lacks a migration, `--skip-migrate` names it.

mod common;

use std::time::Duration;

use common::*;

/// docs/security.md's grants, for `role` on database `db`.
fn grants(role: &str, db: &str) -> Vec<String> {
    vec![
        format!("CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"),
        format!("GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\""),
        format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
        format!("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO \"{role}\""),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingestor_needs_only_the_listed_grants_with_skip_migrate() {
    // TestEnv::new migrates as the schema's owner.
    let env = TestEnv::new("least-privilege").await;
    let role = format!("{}_ingest", env.prefix.trim_end_matches('.').to_lowercase());
    // PUBLIC's default rights on the database and schema would hide a missing grant.
    for sql in [
        format!("REVOKE ALL ON DATABASE \"{}\" FROM PUBLIC", env.db),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_owned(),
    ]
    .into_iter()
    .chain(grants(&role, &env.db))
    {
        sqlx::query(&sql)
            .execute(&env.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let url = format!("postgres://{role}@127.0.0.1:5432/{}", env.db);

    let report = env.sim(&small_seed(10, 100, 9)).await;

    // Without --skip-migrate: the migrator needs DDL rights, and the line says what to do.
    let args = with_database_url(env.ingest_args(&["--until-idle", "3s"]), &url);
    let out = run_env(&args, &env.lake_env, Duration::from_secs(120)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "migrated without DDL rights");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("permission denied") && last.contains("--skip-migrate"),
        "{stderr}"
    );

    let args = with_database_url(
        env.ingest_args(&["--until-idle", "3s", "--max-age", "1s", "--skip-migrate"]),
        &url,
    );
    let out = run_env(&args, &env.lake_env, Duration::from_secs(300)).await;
    assert!(
        out.status.success(),
        "ingest with the listed grants: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&[&report], &env.committed_frames().await);
    let out = env.verify(&["--json", "--require-drained"]).await;
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    for sql in [
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        let _ = sqlx::query(&sql).execute(&env.pool).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_migrate_on_a_database_without_the_schema_names_the_missing_migration() {
    let env = TestEnv::new("not-migrated").await;
    let empty = format!("{}_empty", env.db);
    sqlx::query(&format!("CREATE DATABASE \"{empty}\""))
        .execute(&env.pool)
        .await
        .expect("create an empty database");
    let args = with_database_url(
        env.ingest_args(&["--until-idle", "3s", "--skip-migrate"]),
        &admin_url(&empty),
    );
    let out = run_env(&args, &env.lake_env, Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ran on a database without the schema"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("lacks migration") && last.contains("surgstream migrate"),
        "{stderr}"
    );
    let _ = sqlx::query(&format!("DROP DATABASE \"{empty}\" WITH (FORCE)"))
        .execute(&env.pool)
        .await;
}
