//! Fencing, made deterministic: an ingestor stops itself (SIGSTOP, as a GC pause or a frozen VM
//! would) with a flush's files written and its compare-and-set not yet tried; a second member
//! takes the partitions over once the frozen one's session expires and commits that very
//! partition past where the frozen one expects it; continued, the frozen member's flush must be
//! fenced — counted, logged, its files discarded — and nothing is lost or duplicated. Once on
//! the first-commit path (no offset row yet: `INSERT … ON CONFLICT DO NOTHING` must insert)
//! and once on the next-commit path (`UPDATE … WHERE next_offset = expected`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Where the frozen member stopped, from its own message: (topic, partition, expected offset).
fn stopped_at(log: &Path, point: &str) -> Option<(String, i32, Option<i64>)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains(&format!("fault injection: stopping at {point}")))?;
    // "… (hit n) <topic>/<partition> expected=<None|Some(x)> next=<y>"
    let mut words = line.split(' ').rev();
    let _next = words.next()?;
    let expected = words.next()?.strip_prefix("expected=")?;
    let (topic, partition) = words.next()?.rsplit_once('/')?;
    let expected = match expected {
        "None" => None,
        s => Some(s.strip_prefix("Some(")?.strip_suffix(')')?.parse().ok()?),
    };
    Some((topic.to_owned(), partition.parse().ok()?, expected))
}

/// The process's state letter in /proc (`T`: stopped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

async fn a_frozen_members_flush_is_fenced(name: &str, point: &str, seed: u32) {
    let env = TestEnv::new(name).await;
    let sim_report = env.lake.with_extension("sim.json");
    let report_arg = sim_report.display().to_string();
    let mut sim = env.spawn_live_sim(4, 200, seed, &["--report", &report_arg]);
    let args = [
        "--max-age",
        "1s",
        "--max-rows",
        "2000",
        "--event-batch",
        "5",
    ];

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = env.lake.with_extension("frozen.log");
    let fault = format!("{point}:1:stop");
    let mut frozen_args = args.to_vec();
    frozen_args.extend(["--metrics-addr", &addr]);
    let mut frozen =
        env.spawn_ingest_logged_with_env(&frozen_args, &[("SURGSTREAM_FAULT", &fault)], &log);
    let pid = frozen.id().expect("the member's pid");

    let mut at = None;
    wait_for(
        &format!("the member stopping itself at {point}"),
        Duration::from_secs(120),
        || {
            at = stopped_at(&log, point);
            let stopped = at.is_some() && state(pid) == Some('T');
            async move { stopped }
        },
    )
    .await;
    let (topic, partition, expected) = at.expect("where it stopped");
    assert_eq!(
        expected.is_some(),
        point == "before_next_commit",
        "{point} stopped on the wrong path: expected={expected:?}"
    );

    // A second member: once the frozen one's session (10 s) has expired it owns every
    // partition, reads them from PostgreSQL's offsets and commits the frozen one's partition.
    let winner_log = env.lake.with_extension("winner.log");
    let mut winner = env.spawn_ingest_logged(&args, &winner_log);
    let committed = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT next_offset FROM ingest_offsets \
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
        )
        .bind(&env.group)
        .bind(&topic)
        .bind(partition)
        .fetch_optional(&env.pool)
        .await
        .expect("read ingest_offsets")
    };
    wait_for(
        &format!("the second member committing {topic}/{partition} past {expected:?}"),
        Duration::from_secs(180),
        || async { committed().await > expected },
    )
    .await;
    assert_eq!(state(pid), Some('T'), "the first member is still frozen");

    // Continued, the frozen member tries its compare-and-set from `expected`: fenced.
    signal(&frozen, "-CONT");
    let fenced = || async {
        let page = http_get(port, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        metric(&page, "surgstream_fenced_flushes_total")
    };
    wait_for(
        "the continued member's flush fenced",
        Duration::from_secs(60),
        || async { fenced().await >= 1.0 },
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("fenced: another consumer committed this partition"),
        "the fence is logged:\n{text}"
    );
    assert!(
        frozen.try_wait().expect("status").is_none(),
        "a fenced flush is not fatal:\n{text}"
    );

    stop(&mut sim, "the simulator").await;
    env.wait_drained(Duration::from_secs(180), "two members")
        .await;
    stop(&mut frozen, "the fenced member").await;
    stop(&mut winner, "the second member").await;
    let report = take_report(&sim_report);
    assert_exactly_once(&[&report], &env.committed_frames().await);
    env.assert_events_as_an_undisturbed_run().await;
    let swept = env.sweep("1s", &[]).await;
    assert!(swept.status.success());
    let out = env.verify(&["--json", "--require-drained"]).await;
    let v = verify_json(&out);
    assert!(out.status.success(), "verify: {v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_members_first_commit_is_fenced() {
    a_frozen_members_flush_is_fenced("zombiefirst", "before_first_commit", 51).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_members_next_commit_is_fenced() {
    a_frozen_members_flush_is_fenced("zombienext", "before_next_commit", 52).await;
}
