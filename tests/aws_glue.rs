//! The Iceberg tables in the Glue Data Catalog (moto's, through `AWS_ENDPOINT_URL`): after a
//! demo and `iceberg register --glue`, Glue's `get_table` names each table's current metadata
//! file (read by boto3); every later commit — the ingestor's publishes, `iceberg publish`,
//! `iceberg expire` — moves it, with no flag; publishers and expiries running at the same time
//! never leave Glue behind the catalog.

mod common;

use std::time::Duration;

use common::*;

/// Each Iceberg table of the test's catalog: (namespace, name, metadata_location).
async fn catalog_tables(env: &TestEnv) -> Vec<(String, String, String)> {
    let pool = sqlx::PgPool::connect(&env.database_url())
        .await
        .expect("connect");
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("read the catalog");
    pool.close().await;
    rows
}

/// Glue names every table's current metadata file.
async fn glue_is_current(moto: &Moto, env: &TestEnv, what: &str) -> Vec<(String, String, String)> {
    let tables = catalog_tables(env).await;
    assert!(
        tables.len() >= 3,
        "{what}: telemetry and two raw tables: {tables:?}"
    );
    for (namespace, table, location) in &tables {
        let glue = moto.boto(&["glue-location", namespace, table]).await;
        assert_eq!(&glue, location, "{what}: Glue's {namespace}.{table}");
    }
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn glue_follows_every_commit_of_every_publisher() {
    let moto = Moto::start().await;
    let mut env = TestEnv::new("glue").await;
    env.lake_env
        .extend(moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)));

    env.sim(&small_seed(6, 100, 41)).await;
    let out = env.ingest_until_idle(&["--max-age", "1s"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.iceberg_publish(&[]).await;

    let mut register = vec![
        "iceberg".to_owned(),
        "register".into(),
        "--glue".into(),
        "--database-url".into(),
        env.database_url(),
        "--json".into(),
    ];
    let registered = env.run_json(&register, "iceberg register --glue").await;
    let registered = registered.as_array().expect("a list");
    assert!(registered.len() >= 3, "{registered:?}");
    assert!(
        registered.iter().all(|r| r["result"] == "created"),
        "{registered:?}"
    );
    let before = glue_is_current(&moto, &env, "after register").await;
    // Glue's entry is an Iceberg table where Athena looks for one.
    let t: serde_json::Value = serde_json::from_str(
        &moto
            .boto(&["glue-table", "surgstream", "procedure_telemetry"])
            .await,
    )
    .expect("JSON");
    assert_eq!(t["TableType"], "EXTERNAL_TABLE");
    assert_eq!(t["Parameters"]["table_type"], "ICEBERG");
    assert!(
        before
            .iter()
            .any(|(_, _, l)| l
                .starts_with(t["StorageDescriptor"]["Location"].as_str().unwrap_or("?"))),
        "{t:#}"
    );

    // Registering again changes nothing.
    register.pop();
    let out = run_env(&register, &env.lake_env, Duration::from_secs(120)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The ingestor's own publishes move Glue, without a flag.
    env.sim(&small_seed(6, 100, 42)).await;
    let out = env
        .ingest_until_idle(&["--max-age", "1s", "--iceberg-interval", "1s"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = glue_is_current(&moto, &env, "after the ingestor's publishes").await;
    let telemetry = |v: &[(String, String, String)]| {
        v.iter()
            .find(|(n, t, _)| n == "surgstream" && t == "procedure_telemetry")
            .map(|(_, _, l)| l.clone())
            .expect("the telemetry table")
    };
    assert_ne!(
        telemetry(&before),
        telemetry(&after),
        "the telemetry table has a new snapshot"
    );

    // Publishers and expiries at once, three rounds: Glue ends where the catalog is.
    for round in 0..3u32 {
        env.sim(&small_seed(4, 80, 50 + round as usize)).await;
        let out = env
            .ingest_until_idle(&["--max-age", "1s", "--no-iceberg"])
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let publish = env.iceberg_publish_args(&[]);
        let expire = vec![
            "iceberg".to_owned(),
            "expire".into(),
            "--database-url".into(),
            env.database_url(),
            "--lake".into(),
            env.lake_url.clone(),
            "--group".into(),
            env.group.clone(),
            "--snapshots-older-than".into(),
            "1ms".into(),
            "--merge-manifests-at".into(),
            "1".into(),
        ];
        let (a, b, c) = tokio::join!(
            run_env(&publish, &env.lake_env, Duration::from_secs(180)),
            run_env(&publish, &env.lake_env, Duration::from_secs(180)),
            run_env(&expire, &env.lake_env, Duration::from_secs(180)),
        );
        for (what, out) in [("publish", &a), ("publish", &b), ("expire", &c)] {
            assert!(
                out.status.success(),
                "round {round}: {what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        glue_is_current(&moto, &env, &format!("round {round}")).await;
    }
}
