//! The ingestor runs with exactly the PostgreSQL grants docs/security.md lists — no superuser,
//! no DDL, no DELETE — once `surgstream migrate` ran as the schema's owner: with
//! `--skip-migrate` it checks the migrations instead of applying them, and sim → ingest →
//! verify commits every frame once. Compaction and expiry need DELETE on two tables more, and
//! without it compaction says so. Without `--skip-migrate` it stops with a line that says
//! what to do; on a database that lacks a migration, `--skip-migrate` names it. The warehouse
//! refresh builds and rebuilds with its own listed grants, which deny it `patient_id`.

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

/// Creates `role` with the statements `grants` gives for it on the test's database, after
/// revoking PUBLIC's default rights on the database and schema (they would hide a missing
/// grant); returns the role's database URL.
async fn create_role(env: &TestEnv, role: &str, grants: fn(&str, &str) -> Vec<String>) -> String {
    for sql in [
        format!("REVOKE ALL ON DATABASE \"{}\" FROM PUBLIC", env.db),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_owned(),
    ]
    .into_iter()
    .chain(grants(role, &env.db))
    {
        sqlx::query(&sql)
            .execute(&env.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    format!("postgres://{role}@127.0.0.1:5432/{}", env.db)
}

async fn drop_role(env: &TestEnv, role: &str) {
    for sql in [
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        let _ = sqlx::query(&sql).execute(&env.pool).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingestor_needs_only_the_listed_grants_with_skip_migrate() {
    // TestEnv::new migrates as the schema's owner.
    let env = TestEnv::new("least-privilege").await;
    let role = format!("{}_ingest", env.prefix.trim_end_matches('.').to_lowercase());
    let url = create_role(&env, &role, grants).await;

    let report_sim = env.sim(&small_seed(10, 100, 9)).await;

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
    assert_exactly_once(&[&report_sim], &env.committed_frames().await);
    let out = env.verify(&["--json", "--require-drained"]).await;
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Compaction takes rows out of the manifest: without DELETE it is refused, and says so;
    // with docs/security.md's one extra grant it compacts, and expiry deletes what it retired.
    let compact = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "compact",
            "--database-url",
            url.as_str(),
            "--lake",
            env.lake_url.as_str(),
            "--group",
            env.group.as_str(),
            "--telemetry-topic",
        ]
        .map(str::to_owned)
        .to_vec();
        a.push(env.topic("surgical.telemetry.v1"));
        a.extend(["--skip-migrate".to_owned(), "--json".to_owned()]);
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let out = run_env(&compact(&[]), &env.lake_env, Duration::from_secs(120)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("permission denied for table lake_files"),
        "compaction without DELETE: {stderr}"
    );
    sqlx::query(&format!(
        "GRANT DELETE ON lake_files, lake_retired TO \"{role}\""
    ))
    .execute(&env.pool)
    .await
    .expect("grant DELETE");
    let out = run_env(&compact(&[]), &env.lake_env, Duration::from_secs(120)).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "compact with DELETE: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report["compaction"]["files_replaced"].as_u64() > Some(1),
        "{report}"
    );
    let expire = [
        "iceberg",
        "expire",
        "--database-url",
        url.as_str(),
        "--lake",
        env.lake_url.as_str(),
        "--group",
        env.group.as_str(),
        "--snapshots-older-than",
        "0s",
        "--retired-grace",
        "0s",
        "--skip-migrate",
        "--json",
    ]
    .map(str::to_owned);
    let out = run_env(&expire, &env.lake_env, Duration::from_secs(120)).await;
    let expired: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("expire: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        expired["retired_deleted"], report["compaction"]["files_replaced"],
        "{expired}"
    );
    assert_exactly_once(&[&report_sim], &env.committed_frames().await);

    drop_role(&env, &role).await;
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

/// docs/security.md's grants for the warehouse refresh: read the inputs — surgical_procedures
/// without its `patient_id` column — replace the `warehouse` schema's rows, and commit to the
/// warehouse's Iceberg tables.
fn warehouse_grants(role: &str, db: &str) -> Vec<String> {
    vec![
        format!("CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"),
        format!("GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\""),
        format!("GRANT USAGE ON SCHEMA public, warehouse TO \"{role}\""),
        format!(
            "GRANT SELECT ON surgical_robots, procedure_outcomes, robot_maintenance_logs, \
             lake_files, archived_procedures, archive_files, _sqlx_migrations TO \"{role}\""
        ),
        format!(
            "GRANT SELECT (procedure_id, robot_id, procedure_type, procedure_category, \
             scheduled_start, start_time, end_time, duration_minutes, surgeon_id, surgeon_name, \
             patient_age, patient_gender, complexity_score, status, updated_at) \
             ON surgical_procedures TO \"{role}\""
        ),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA warehouse TO \"{role}\""
        ),
        // The warehouse's Iceberg tables, in the SQL catalog.
        format!(
            "GRANT SELECT, INSERT, UPDATE ON iceberg_tables, iceberg_namespace_properties TO \"{role}\""
        ),
        format!("GRANT SELECT, UPDATE ON iceberg_glue_tables TO \"{role}\""),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_warehouse_needs_only_its_listed_grants_and_never_reads_patient_id() {
    let env = TestEnv::new("least-privilege-wh").await;
    let role = format!(
        "{}_warehouse",
        env.prefix.trim_end_matches('.').to_lowercase()
    );
    let url = create_role(&env, &role, warehouse_grants).await;
    env.sim(&small_seed(40, 20, 12)).await;
    env.ingest_until_idle(&[]).await;

    // The grant is real: this role cannot read the patient identifier.
    let as_role = sqlx::PgPool::connect(&url)
        .await
        .expect("connect as the role");
    let refused = sqlx::query("SELECT patient_id FROM surgical_procedures LIMIT 1")
        .fetch_all(&as_role)
        .await
        .expect_err("the warehouse role read patient_id");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    as_role.close().await;

    let refresh = |extra: &'static [&'static str]| {
        let args = with_database_url(env.warehouse_args(extra), &url);
        let lake_env = env.lake_env.clone();
        async move {
            let out = run_env(&args, &lake_env, Duration::from_secs(300)).await;
            assert!(
                out.status.success(),
                "warehouse with the listed grants: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON report")
        }
    };
    let first = refresh(&["--skip-migrate"]).await;
    assert_eq!(first["dimensions"], true, "{first}");
    assert_eq!(
        env.count("SELECT count(*) FROM warehouse.fact_procedure")
            .await,
        env.count("SELECT count(*) FROM surgical_procedures").await
    );
    // A rebuild replaces rows and updates a state row: DELETE and UPDATE are used.
    sqlx::query(
        "UPDATE procedure_outcomes SET updated_at = now()
         WHERE outcome_id = (SELECT outcome_id FROM procedure_outcomes ORDER BY outcome_id LIMIT 1)",
    )
    .execute(&env.pool)
    .await
    .expect("a late outcome");
    let second = refresh(&["--skip-migrate"]).await;
    assert_eq!(
        second["months"].as_array().map(Vec::len),
        Some(1),
        "one month rebuilt as the role: {second}"
    );

    drop_role(&env, &role).await;
}
