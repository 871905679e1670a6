//! The offsets compare-and-set and the lake manifest against the real PostgreSQL, each test in a
//! fresh database with the crate's own migrations (see scripts/services.sh; set
//! `SURGSTREAM_TEST_PG` for another server than `postgres://postgres@127.0.0.1:5432`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Connection, PgConnection};
use surgstream_store::offsets::{self, LakeFile};
use surgstream_store::{Store, StoreError};

const GROUP: &str = "g";
const TOPIC: &str = "surgical.telemetry.v1";

/// A `lake_files` row: path, partition, first and last offset, rows, bytes, event-time range.
type ManifestRow = (
    String,
    i32,
    i64,
    i64,
    i64,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn server() -> String {
    std::env::var("SURGSTREAM_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A migrated database of its own, dropped when the test ends (passed or not).
struct TestDb {
    name: String,
    store: Store,
}

impl TestDb {
    async fn new(test: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "surgstream_offsets_{test}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000
        );
        let mut admin = PgConnection::connect(&format!("{}/postgres", server()))
            .await
            .expect("connect to PostgreSQL (scripts/services.sh up)");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let store = Store::connect(&format!("{}/{name}", server()), 4, Duration::from_secs(10))
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate");
        Self { name, store }
    }

    async fn load(&self, group: &str, topic: &str) -> HashMap<i32, i64> {
        offsets::load(self.store.pool(), group, topic)
            .await
            .expect("load")
    }

    /// One committed transaction moving `partition` of GROUP/TOPIC from `expected` to `next`.
    async fn commit(
        &self,
        partition: i32,
        expected: Option<i64>,
        next: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await.expect("begin");
        offsets::advance(&mut tx, GROUP, TOPIC, partition, expected, next).await?;
        tx.commit().await.expect("commit");
        Ok(())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // From a runtime of its own on a helper thread: the test's runtime may be gone.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&format!("{}/postgres", server()))
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        // Not a panic (it may already be unwinding): say which database is left behind.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} left behind: {e}", self.name),
            Err(_) => eprintln!("test database {} left behind: the drop panicked", self.name),
        }
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_700_000 + secs, 0)
        .single()
        .expect("valid time")
}

fn file(path: &str, partition: i32, first: i64, last: i64) -> LakeFile {
    LakeFile {
        path: path.to_owned(),
        partition,
        first_offset: first,
        last_offset: last,
        rows: last - first + 1,
        bytes: 1_000 + first,
        min_event_time: at(first),
        max_event_time: at(last),
    }
}

fn assert_fenced(e: StoreError, partition: i32, expected: Option<i64>) {
    match e {
        StoreError::Fenced {
            group,
            topic,
            partition: p,
            expected: x,
        } => {
            assert_eq!(
                (group.as_str(), topic.as_str(), p, x),
                (GROUP, TOPIC, partition, expected)
            );
        }
        other => panic!("expected Fenced, got {other}"),
    }
}

#[tokio::test]
async fn the_first_advance_inserts_the_partition_and_a_second_first_advance_is_fenced() {
    let db = TestDb::new("first").await;
    assert!(db.load(GROUP, TOPIC).await.is_empty());
    db.commit(3, None, 10).await.expect("first advance");
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(3, 10)]));

    // Another consumer that also found no row lost the race: fenced, and the winner's offset
    // stays.
    let e = db
        .commit(3, None, 20)
        .await
        .expect_err("second first advance");
    assert_fenced(e, 3, None);
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(3, 10)]));
}

#[tokio::test]
async fn an_advance_from_the_current_offset_moves_it_and_a_stale_one_is_fenced() {
    let db = TestDb::new("cas").await;
    db.commit(0, None, 10).await.expect("first advance");
    db.commit(0, Some(10), 25).await.expect("advance from 10");
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 25)]));

    // A consumer that still believes the offset is 10 (another moved it on): fenced, nothing
    // changes.
    let e = db.commit(0, Some(10), 40).await.expect_err("stale");
    assert_fenced(e, 0, Some(10));
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 25)]));

    // An expected offset of a partition that has no row yet is stale too.
    let e = db.commit(1, Some(0), 5).await.expect_err("no row yet");
    assert_fenced(e, 1, Some(0));
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 25)]));

    // The current owner goes on from 25.
    db.commit(0, Some(25), 30).await.expect("advance from 25");
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 30)]));
}

#[tokio::test]
async fn an_advance_moves_only_its_own_group_topic_and_partition() {
    const EVENTS: &str = "surgical.events.v1";
    const OTHER: &str = "other-group";
    let db = TestDb::new("scope").await;
    let mut tx = db.store.pool().begin().await.expect("begin");
    // Every row at the same offset: a compare-and-set that missed one of its keys would match
    // two rows (and be fenced); partitions 2 and 3 exist only in another topic or group, so a
    // load that missed one of its keys would return them.
    for (group, topic, partition) in [
        (GROUP, TOPIC, 0),
        (GROUP, TOPIC, 1),
        (OTHER, TOPIC, 0),
        (OTHER, TOPIC, 3),
        (GROUP, EVENTS, 0),
        (GROUP, EVENTS, 2),
    ] {
        offsets::advance(&mut tx, group, topic, partition, None, 100)
            .await
            .expect("first advance");
    }
    for (group, topic, partition, next) in [
        (OTHER, TOPIC, 0, 101),
        (GROUP, EVENTS, 0, 3),
        (GROUP, TOPIC, 1, 200),
    ] {
        offsets::advance(&mut tx, group, topic, partition, Some(100), next)
            .await
            .expect("moves exactly its own row");
    }
    tx.commit().await.expect("commit");

    assert_eq!(
        db.load(GROUP, TOPIC).await,
        HashMap::from([(0, 100), (1, 200)])
    );
    assert_eq!(
        db.load(OTHER, TOPIC).await,
        HashMap::from([(0, 101), (3, 100)])
    );
    assert_eq!(
        db.load(GROUP, EVENTS).await,
        HashMap::from([(0, 3), (2, 100)])
    );
    assert!(db.load("unknown-group", TOPIC).await.is_empty());
    assert!(db.load(GROUP, "unknown.topic").await.is_empty());
}

#[tokio::test]
async fn the_manifest_names_only_recorded_paths_and_keeps_each_groups_rows() {
    let db = TestDb::new("manifest").await;
    let pool = db.store.pool();
    assert!(
        offsets::named(pool, &["a", "b"])
            .await
            .expect("named")
            .is_empty()
    );

    let mut tx = pool.begin().await.expect("begin");
    offsets::record_files(&mut tx, GROUP, TOPIC, &[])
        .await
        .expect("nothing to record");
    offsets::record_files(
        &mut tx,
        GROUP,
        TOPIC,
        &[file("p/b.parquet", 1, 10, 19), file("p/a.parquet", 0, 0, 9)],
    )
    .await
    .expect("record");
    // Another group reading the same topic into its own lake names its own files.
    offsets::record_files(
        &mut tx,
        "other-group",
        TOPIC,
        &[file("q/c.parquet", 2, 5, 5)],
    )
    .await
    .expect("record another group's");
    tx.commit().await.expect("commit");

    // Only the paths asked for that the manifest holds, in path order.
    assert_eq!(
        offsets::named(pool, &["p/b.parquet", "p/missing.parquet", "p/a.parquet"])
            .await
            .expect("named"),
        ["p/a.parquet", "p/b.parquet"]
    );
    assert!(
        offsets::named(pool, &["p/missing.parquet"])
            .await
            .expect("named")
            .is_empty()
    );
    assert!(offsets::named(pool, &[]).await.expect("named").is_empty());
    // Any group's commit names a path.
    assert_eq!(
        offsets::named(pool, &["q/c.parquet"]).await.expect("named"),
        ["q/c.parquet"]
    );

    // Each row carries its group, topic, partition and the file's numbers.
    assert_eq!(
        offsets::manifest_paths(pool, Some((GROUP, TOPIC)))
            .await
            .expect("paths"),
        ["p/a.parquet", "p/b.parquet"]
    );
    assert_eq!(
        offsets::manifest_paths(pool, Some(("other-group", TOPIC)))
            .await
            .expect("paths"),
        ["q/c.parquet"]
    );
    let mut parts: Vec<(String, i32)> = offsets::commit_times(pool, GROUP, TOPIC)
        .await
        .expect("commit times")
        .into_iter()
        .map(|(p, partition, _)| (p, partition))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        [("p/a.parquet".to_owned(), 0), ("p/b.parquet".to_owned(), 1)]
    );
    let rows: Vec<ManifestRow> = sqlx::query_as(
        "SELECT path, partition, first_offset, last_offset, rows, bytes, min_event_time, max_event_time
           FROM lake_files ORDER BY path",
    )
    .fetch_all(pool)
    .await
    .expect("manifest rows");
    assert_eq!(
        rows,
        [
            ("p/a.parquet".to_owned(), 0, 0, 9, 10, 1_000, at(0), at(9)),
            (
                "p/b.parquet".to_owned(),
                1,
                10,
                19,
                10,
                1_010,
                at(10),
                at(19)
            ),
            ("q/c.parquet".to_owned(), 2, 5, 5, 1, 1_005, at(5), at(5)),
        ]
    );

    // The same path twice for one group is refused.
    let mut tx = pool.begin().await.expect("begin");
    let e = offsets::record_files(&mut tx, GROUP, TOPIC, &[file("p/a.parquet", 0, 0, 9)])
        .await
        .expect_err("recorded twice");
    assert!(matches!(e, StoreError::Query { .. }), "{e}");
}

#[tokio::test]
async fn the_committed_files_of_every_group_are_listed_oldest_first() {
    let db = TestDb::new("listing").await;
    let pool = db.store.pool();
    assert!(
        offsets::committed_files(pool)
            .await
            .expect("list")
            .is_empty()
    );
    let mut tx = pool.begin().await.expect("begin");
    offsets::record_files(
        &mut tx,
        GROUP,
        TOPIC,
        &[file("p/b.parquet", 0, 10, 19), file("p/a.parquet", 0, 0, 9)],
    )
    .await
    .expect("record");
    tx.commit().await.expect("commit");
    // A later commit, of another group, whose path sorts first: it still comes last.
    let mut tx = pool.begin().await.expect("begin");
    offsets::record_files(
        &mut tx,
        "other-group",
        TOPIC,
        &[file("a/late.parquet", 1, 5, 7)],
    )
    .await
    .expect("record");
    tx.commit().await.expect("commit");
    assert_eq!(
        offsets::committed_files(pool).await.expect("list"),
        [
            ("p/a.parquet".to_owned(), 10, 1_000),
            ("p/b.parquet".to_owned(), 10, 1_010),
            ("a/late.parquet".to_owned(), 3, 1_005),
        ]
    );
}

#[tokio::test]
async fn only_processed_event_ids_are_counted() {
    let db = TestDb::new("processed").await;
    let pool = db.store.pool();
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::new_v4()).collect();
    for (offset, id) in ids[..3].iter().enumerate() {
        sqlx::query(
            "INSERT INTO processed_events (event_id, outcome, source_topic, source_partition, source_offset)
             VALUES ($1, $2, 'surgical.events.v1', 0, $3)",
        )
        .bind(id)
        .bind(if offset == 1 { "rejected" } else { "applied" })
        .bind(offset as i64)
        .execute(pool)
        .await
        .expect("insert a processed event");
    }
    // Applied and rejected both count; an id never seen does not.
    assert_eq!(
        offsets::count_processed(pool, &[ids[0], ids[1], ids[3]])
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        offsets::count_processed(pool, &ids).await.expect("count"),
        3
    );
    assert_eq!(
        offsets::count_processed(pool, &[ids[3]])
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_offset_and_no_file() {
    let db = TestDb::new("rollback").await;
    let pool = db.store.pool();
    db.commit(0, None, 10).await.expect("first advance");

    let mut tx = pool.begin().await.expect("begin");
    offsets::advance(&mut tx, GROUP, TOPIC, 0, Some(10), 20)
        .await
        .expect("advance an existing partition");
    offsets::advance(&mut tx, GROUP, TOPIC, 1, None, 5)
        .await
        .expect("insert a new partition");
    offsets::record_files(&mut tx, GROUP, TOPIC, &[file("p/x.parquet", 0, 10, 19)])
        .await
        .expect("record");
    // Inside the transaction it is all there …
    let inside: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM ingest_offsets ORDER BY partition")
            .fetch_all(&mut *tx)
            .await
            .expect("read inside");
    assert_eq!(inside, [(0, 20), (1, 5)]);
    // … and nothing of it outside before the commit …
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 10)]));
    assert!(
        offsets::named(pool, &["p/x.parquet"])
            .await
            .expect("named")
            .is_empty()
    );
    tx.rollback().await.expect("rollback");

    // … nor after the rollback: the flush can be retried from the same offset.
    assert_eq!(db.load(GROUP, TOPIC).await, HashMap::from([(0, 10)]));
    assert!(
        offsets::named(pool, &["p/x.parquet"])
            .await
            .expect("named")
            .is_empty()
    );
    db.commit(0, Some(10), 20)
        .await
        .expect("the retry advances from 10");
    db.commit(1, None, 5)
        .await
        .expect("the retry inserts partition 1");
    assert_eq!(
        db.load(GROUP, TOPIC).await,
        HashMap::from([(0, 20), (1, 5)])
    );
}
