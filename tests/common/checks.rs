//! The exactly-once checks every fault test ends with, and the table digests that compare two
//! databases.

use super::*;

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
    assert_nothing_missing(reports, seen);
}

/// Asserts that every frame the simulator reported is in the lake at least once and that the
/// lake holds nothing else; returns how many extra copies it holds. For runs where the
/// producer itself may have written a record twice (librdkafka's idempotent producer can after
/// an epoch bump, confluentinc/librdkafka#4953): `verify` then tells whether each copy in the
/// lake is a copy in the topic.
pub fn assert_nothing_missing(
    reports: &[&serde_json::Value],
    seen: &HashMap<([u8; 16], i64), u32>,
) -> u64 {
    let mut expected_total = 0u64;
    let mut procedures = std::collections::HashSet::new();
    for report in reports {
        expected_total += report["frames"].as_u64().expect("frames");
        for (id, n) in report["frames_per_procedure"]
            .as_object()
            .expect("frames_per_procedure")
        {
            let uuid = uuid::Uuid::parse_str(id).expect("uuid");
            for seq in 0..n.as_u64().expect("count") as i64 {
                assert!(
                    seen.contains_key(&(*uuid.as_bytes(), seq)),
                    "procedure {id}: seq {seq} missing"
                );
            }
            procedures.insert(*uuid.as_bytes());
        }
    }
    assert!(
        seen.keys().all(|(id, _)| procedures.contains(id)),
        "the lake holds procedures the simulator did not send"
    );
    assert_eq!(
        seen.len() as u64,
        expected_total,
        "distinct frames in the lake vs frames sent"
    );
    assert!(expected_total > 0, "the simulator sent no frames");
    seen.values().map(|n| u64::from(n - 1)).sum()
}

/// Per table: its row count and an md5 of its rows as JSON, without the columns a row gets from
/// the clock or a sequence when it is written (`created_at`, `updated_at`, `recorded_at`,
/// `processed_at`, `audit_id`), so two databases that applied the same events compare equal.
pub async fn digest_without_clocks(pool: &PgPool, tables: &[&str]) -> Vec<(String, i64, String)> {
    digest_without(pool, tables, &[]).await
}

/// [`digest_without_clocks`], leaving out the columns `extra` as well.
pub async fn digest_without(
    pool: &PgPool,
    tables: &[&str],
    extra: &[&str],
) -> Vec<(String, i64, String)> {
    let mut left_out = vec![
        "created_at",
        "updated_at",
        "recorded_at",
        "processed_at",
        "audit_id",
    ];
    left_out.extend_from_slice(extra);
    let left_out = left_out
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    for table in tables {
        let (rows, digest): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(j::text, '|' ORDER BY j::text)) FROM \
             (SELECT to_jsonb(t) - ARRAY[{left_out}] AS j FROM {table} t) s"
        ))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("digest of {table}: {e}"));
        out.push(((*table).to_owned(), rows, digest.unwrap_or_default()));
    }
    out
}

/// The jars Spark reads the table with (scripts/spark.sh installs pyspark and fetches them).
pub async fn spark_jars() -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/spark.sh"))
        .arg("install")
        .output()
        .await
        .expect("scripts/spark.sh");
    assert!(
        out.status.success(),
        "scripts/spark.sh install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The Python of the virtual environment with DuckDB and its iceberg extension from PyPI
/// (scripts/setup.sh makes it: the extension is built for one DuckDB release).
pub fn duckdb_iceberg_python() -> String {
    let cache = std::env::var("SURGSTREAM_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/surgstream",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    format!("{cache}/duckdb-iceberg-venv/bin/python")
}
