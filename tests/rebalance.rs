//! Several ingestors in one consumer group: members killed, added and frozen mid-stream hand
//! partitions to each other without losing or duplicating a frame, and a fenced member (one
//! whose partition moved on while it was frozen) never removes a file another member committed.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use surgstream_lake::Lake;
use surgstream_store::offsets::{self, LakeFile};
use surgstream_store::{Store, StoreError};

fn file(path: &str, first: i64, last: i64) -> LakeFile {
    LakeFile {
        path: path.to_owned(),
        partition: 0,
        first_offset: first,
        last_offset: last,
        rows: 10,
        bytes: 4,
        min_event_time: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        max_event_time: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
    }
}

/// Two consumers flush the same offset range of one partition (the deterministic file name is
/// the same): the one whose compare-and-set loses must not delete the file that the winner
/// committed under that name; files only it wrote are removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_flush_keeps_the_winners_file_and_removes_only_its_own() {
    let env = TestEnv::new("fenced").await;
    let lake = Lake::open(&env.lake_url).expect("open the lake");
    let store = Store::connect(&env.database_url(), 2, Duration::from_secs(10))
        .await
        .expect("connect");
    let (group, topic) = (env.group.as_str(), "t");
    let shared = "procedure_telemetry/date=2027-01-15/hour=08/part-0-0-9.parquet";
    let own = "procedure_telemetry/date=2027-01-15/hour=07/part-0-0-9.parquet";

    // Both wrote the shared name (same records, same bytes); the loser also wrote another hour.
    for p in [shared, own] {
        lake.put(p, Bytes::from_static(b"PAR1")).await.expect("put");
    }
    // The winner commits first.
    let mut tx = store.pool().begin().await.expect("begin");
    offsets::advance(&mut tx, group, topic, 0, None, 10)
        .await
        .expect("the winner's compare-and-set");
    offsets::record_files(&mut tx, group, topic, &[file(shared, 0, 9)])
        .await
        .expect("record the winner's file");
    tx.commit().await.expect("commit");

    // The loser's compare-and-set fails before it touches the manifest.
    let mut tx = store.pool().begin().await.expect("begin");
    let e = offsets::advance(&mut tx, group, topic, 0, None, 10)
        .await
        .expect_err("the same range cannot be committed twice");
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    drop(tx);
    let removed =
        surgstream_ingest::discard_uncommitted(&lake, &store, &[shared.to_owned(), own.to_owned()])
            .await
            .expect("discard");
    assert_eq!(removed, [own]);
    assert!(
        env.lake.join(shared).exists(),
        "the committed file survives"
    );
    assert!(!env.lake.join(own).exists(), "the loser's own file is gone");
    assert_eq!(
        offsets::named(store.pool(), &[shared, own])
            .await
            .expect("named"),
        [shared]
    );

    // Another group reading the same topic into its own lake on this database writes the same
    // names: its manifest rows are its own.
    let mut tx = store.pool().begin().await.expect("begin");
    offsets::advance(&mut tx, "another-group", topic, 0, None, 10)
        .await
        .expect("another group's compare-and-set");
    offsets::record_files(&mut tx, "another-group", topic, &[file(shared, 0, 9)])
        .await
        .expect("another group commits a file of the same name");
    tx.commit().await.expect("commit");
}

/// Three ingestors share the partitions of a paced live feed; one is killed (`kill -9`), one
/// is added, and one is frozen (SIGSTOP) past its session timeout so that its partitions move
/// to the others while it still holds a buffer, then thawed. Afterwards every frame is in
/// the lake exactly once and `verify` agrees.
#[tokio::test(flavor = "multi_thread")]
async fn members_killed_added_and_frozen_lose_and_duplicate_nothing() {
    let env = TestEnv::new("rebalance").await;
    let sim_report = std::env::temp_dir().join(format!("{}-sim.json", env.group));
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(6, 100, 31, &["--report", &report_arg]);
    let args = [
        "--max-age",
        "1s",
        "--max-rows",
        "2000",
        "--event-batch",
        "5",
    ];
    // Each member serves /metrics, to tell which partitions the group gave it.
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let member = |i: usize| {
        let addr = format!("127.0.0.1:{}", ports[i]);
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--metrics-addr", &addr]);
        env.spawn_ingest(&a)
    };
    let mut a = member(0);
    let mut b = member(1);
    let mut c = member(2);
    env.commits_grow(10, Duration::from_secs(120), "three members")
        .await;

    a.start_kill().expect("kill -9 a member");
    assert!(!a.wait().await.expect("reap").success());
    env.commits_grow(5, Duration::from_secs(120), "after a kill")
        .await;

    let mut d = member(3);
    env.commits_grow(5, Duration::from_secs(120), "after an addition")
        .await;

    // Frozen past the 10 s session timeout: the group moves its partitions; thawed, its
    // buffers belong to partitions others own, and whatever of them it still tries to commit
    // is fenced. Whether it flushes before it learns of the revoke is timing: tests/fencing.rs
    // makes the fence happen and asserts it.
    signal(&b, "-STOP");
    tokio::time::sleep(Duration::from_secs(15)).await;
    env.commits_grow(3, Duration::from_secs(120), "while a member is frozen")
        .await;
    signal(&b, "-CONT");
    env.commits_grow(5, Duration::from_secs(120), "after the thaw")
        .await;

    stop(&mut sim, "the simulator").await;
    // A member that joins at the very end gets partitions too, and all four drain the topics
    // between them. (Files of the killed member's unfinished flush are orphans: the exit status
    // would count them, the sweep below removes them once nothing runs.)
    let mut e = member(4);
    env.wait_drained(Duration::from_secs(180), "four members")
        .await;
    // Six partitions (telemetry 4, events 2) over four live members: each holds one at least.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (i, port) in ports.iter().enumerate().skip(1) {
        loop {
            let page = http_get(*port, "/metrics")
                .await
                .map(|r| r.1)
                .unwrap_or_default();
            if metric(&page, "surgstream_consumer_assigned_partitions") >= 1.0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "member {i} holds no partition a minute after the topics drained:\n{page}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for member in [&mut b, &mut c, &mut d, &mut e] {
        stop(member, "a member").await;
    }

    let swept = env.sweep("1s", &[]).await;
    assert!(
        swept.status.success(),
        "{}",
        String::from_utf8_lossy(&swept.stderr)
    );
    let report = take_report(&sim_report);
    assert_exactly_once(&[&report], &env.committed_frames().await);
    env.assert_events_as_an_undisturbed_run().await;
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
    assert_eq!(
        (v["missing"].clone(), v["duplicated"].clone()),
        (0.into(), 0.into())
    );
}

/// `--until-idle` ends a member's run only when the group has consumed every partition of both
/// topics to its end, not merely the partitions this member holds: a member that holds the
/// others and stops answering (frozen here; killed, or a ghost of one, in the crash tests)
/// keeps them until its session times out, and the member left must then take and drain them
/// before it stops.
#[tokio::test(flavor = "multi_thread")]
async fn until_idle_waits_for_the_partitions_another_member_holds() {
    let env = TestEnv::new("idle_group").await;
    let records = env.simulate(&small_seed(24, 60, 61)).await;
    env.send_records(&records).await;
    let (log_b, log_c) = (
        env.lake.with_extension("idle-b.log"),
        env.lake.with_extension("idle-c.log"),
    );
    // C first, so that it holds every partition; B joins and the group splits them. C never
    // flushes (its --max-age is long): what it holds stays uncommitted.
    let mut c = env.spawn_ingest_logged(&["--until-idle", "600s", "--max-age", "300s"], &log_c);
    let assigned = |log: std::path::PathBuf| {
        move || {
            let log = log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("partitions assigned")
            }
        }
    };
    wait_for(
        "C is assigned partitions",
        Duration::from_secs(60),
        assigned(log_c.clone()),
    )
    .await;
    let mut b = env.spawn_ingest_logged(&["--until-idle", "2s"], &log_b);
    wait_for(
        "B is assigned partitions",
        Duration::from_secs(60),
        assigned(log_b.clone()),
    )
    .await;
    // C, holding half of them, stops answering: its partitions stay its own for the session
    // timeout (10 s), far longer than B's --until-idle.
    signal(&c, "-STOP");
    let split = std::fs::read_to_string(&log_b).unwrap_or_default();
    let status = tokio::time::timeout(Duration::from_secs(180), b.wait())
        .await
        .expect("B stopped within 180 s")
        .expect("reap B");
    let log = std::fs::read_to_string(&log_b).unwrap_or_default();
    assert!(status.success(), "B: {status}\n{log}");
    assert!(
        log.matches("partitions assigned").count() >= 2,
        "B was given C's partitions after C's session timed out:\n{log}\n(before C froze:\n{split})"
    );
    signal(&c, "-CONT");
    c.start_kill().expect("kill C");
    let _ = c.wait().await;
    let out = env.verify(&["--json", "--require-drained"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
    assert!(
        out.status.success() && r["pending_records"] == 0,
        "B stopped with records of the group's topics unconsumed: {r}"
    );
}
