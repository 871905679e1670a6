//! When a buffer flushes, and why: a pure function of the buffers and the clock, so that every
//! rule is tested with an injected `now`.
//!
//! A partition's buffer flushes at the first of its row limit, the byte limit and its age limit
//! (a deadline on the wall clock, set when its records are read: an idle partition still
//! flushes on time; see [`hold`] for how long a record may wait). Then, while all the buffers
//! that are not flushing hold more than the memory limit together, the largest of them
//! flushes. Shutdown flushes everything; revoked partitions drop their buffers (the new owner
//! reads them again from PostgreSQL's offsets).

use std::time::{Duration, Instant};

/// Why a buffer was flushed: the `cause` label of `surgstream_flushes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlushCause {
    /// It reached its row limit (`--max-rows`, `--event-batch`).
    Rows,
    /// It reached `--max-bytes`.
    Bytes,
    /// It reached its age deadline (`--max-age`, `--event-max-age`; see [`hold`]).
    Age,
    /// All buffers together were over `--memory-limit`, and it was the largest.
    Memory,
    /// The service is stopping.
    Shutdown,
}

impl FlushCause {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rows => "rows",
            Self::Bytes => "bytes",
            Self::Age => "age",
            Self::Memory => "memory",
            Self::Shutdown => "shutdown",
        }
    }
}

/// What the policy needs to know of one partition's buffer.
#[derive(Debug, Clone)]
pub struct Buffered<K> {
    /// Which buffer.
    pub key: K,
    /// Rows (frames or events) pending.
    pub rows: usize,
    /// Bytes pending, as held in memory.
    pub bytes: usize,
    /// When it is due for its age: the earliest deadline of its pending records; None:
    /// nothing pending.
    pub due: Option<Instant>,
    /// Its row limit.
    pub max_rows: usize,
}

/// How long a record read now may wait in its buffer, given how old its oldest frame already
/// is (`delay`: the frame's timestamp to now, by the robot's clock and ours).
///
/// `max_age` bounds a frame's time from its stamp to its flush, not from its arrival: a frame
/// that spent 3 s in the simulator, the broker and the fetch waits 2 s more here, not 5 s,
/// so the broker's delay is not added on top of the buffer's. The wait never drops below a
/// quarter of `max_age`, so files are not cut ever smaller as the delay nears `max_age`. A
/// record older than that on arrival waits longer again, up to the whole `max_age` at twice
/// it: a backfill, a consumer catching up after an outage or a robot whose clock is far behind
/// waits exactly as long as before and still makes large files; between the two the wait
/// grows linearly, so a frame's latency (`delay` plus the wait) never jumps as the delay
/// grows. A frame stamped in the future (a robot's clock ahead of ours) waits `max_age`.
pub fn hold(max_age: Duration, delay: Duration) -> Duration {
    let least = max_age / 4;
    if delay < max_age {
        (max_age - delay).max(least)
    } else if delay < max_age * 2 {
        // From `least` at max_age to `max_age` at twice it.
        let past = (delay - max_age).as_secs_f64() / max_age.as_secs_f64();
        least + (max_age - least).mul_f64(past)
    } else {
        max_age
    }
}

/// Limits shared by every buffer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One buffer flushes at this many bytes.
    pub max_bytes: usize,
    /// All buffers together stay at or under this many bytes.
    pub memory_limit: usize,
}

/// Which buffers flush now, and why, in the order to flush them.
pub fn decide<K: Clone>(
    buffers: &[Buffered<K>],
    limits: Limits,
    now: Instant,
) -> Vec<(K, FlushCause)> {
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for b in buffers.iter().filter(|b| b.due.is_some()) {
        let cause = if b.rows >= b.max_rows {
            Some(FlushCause::Rows)
        } else if b.bytes >= limits.max_bytes {
            Some(FlushCause::Bytes)
        } else if b.due.is_some_and(|due| now >= due) {
            Some(FlushCause::Age)
        } else {
            None
        };
        match cause {
            Some(c) => out.push((b.key.clone(), c)),
            None => rest.push(b),
        }
    }
    let mut held: usize = rest.iter().map(|b| b.bytes).sum();
    // Largest first; ties by position, so the decision is deterministic.
    rest.sort_by_key(|b| std::cmp::Reverse(b.bytes));
    for b in rest {
        if held <= limits.memory_limit {
            break;
        }
        held -= b.bytes;
        out.push((b.key.clone(), FlushCause::Memory));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1_000,
        memory_limit: 2_500,
    };

    /// A buffer opened at `opened` by records that may wait 5 s.
    fn buf(
        key: &'static str,
        rows: usize,
        bytes: usize,
        opened: Option<Instant>,
    ) -> Buffered<&'static str> {
        Buffered {
            key,
            rows,
            bytes,
            due: opened.map(|o| o + Duration::from_secs(5)),
            max_rows: 100,
        }
    }

    #[test]
    fn each_cause_is_counted_under_the_label_the_metric_documents() {
        // `surgstream_flushes_total{cause="rows|bytes|age|memory|shutdown"}` (docs/operations.md).
        let labels = [
            FlushCause::Rows,
            FlushCause::Bytes,
            FlushCause::Age,
            FlushCause::Memory,
            FlushCause::Shutdown,
        ]
        .map(FlushCause::as_str);
        assert_eq!(labels, ["rows", "bytes", "age", "memory", "shutdown"]);
    }

    #[test]
    fn a_frame_waits_max_age_from_its_stamp_then_longer_as_it_arrives_later() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let max = s(5);
        // Fresh: the whole max age; delayed: what is left of it.
        assert_eq!(hold(max, s(0)), s(5));
        assert_eq!(hold(max, ms(1_500)), ms(3_500));
        // Never under a quarter of it.
        assert_eq!(hold(max, ms(3_750)), ms(1_250));
        assert_eq!(hold(max, ms(4_999)), ms(1_250));
        assert_eq!(hold(max, s(5)), ms(1_250));
        // Past max age, back up linearly to all of it at twice max age, and all of it beyond.
        assert_eq!(hold(max, ms(7_500)), ms(3_125));
        assert_eq!(hold(max, s(10)), s(5));
        assert_eq!(hold(max, s(86_400 * 365)), s(5));
        // Latency (delay + wait) never falls as the delay grows, and never jumps by more than
        // the delay's own step.
        let mut last = hold(max, Duration::ZERO);
        for step in 0..=1_500u64 {
            let delay = ms(step * 10);
            let latency = delay + hold(max, delay);
            assert!(latency >= last, "latency fell at delay {delay:?}");
            assert!(
                latency - last <= ms(30),
                "latency jumped at delay {delay:?}"
            );
            last = latency;
        }
    }

    #[test]
    fn the_earliest_deadline_of_a_buffer_is_when_it_is_due() {
        let t0 = Instant::now();
        let b = [Buffered {
            key: "p",
            rows: 1,
            bytes: 10,
            due: Some(t0 + Duration::from_secs(2)),
            max_rows: 100,
        }];
        assert!(decide(&b, LIMITS, t0 + Duration::from_millis(1_999)).is_empty());
        assert_eq!(
            decide(&b, LIMITS, t0 + Duration::from_secs(2)),
            [("p", FlushCause::Age)]
        );
    }

    #[test]
    fn each_limit_flushes_with_its_cause() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(1);
        let buffers = [
            buf("rows", 100, 10, Some(t0)),
            buf("bytes", 10, 1_000, Some(t0)),
            buf("young", 10, 10, Some(t0)),
        ];
        assert_eq!(
            decide(&buffers, LIMITS, now),
            [("rows", FlushCause::Rows), ("bytes", FlushCause::Bytes)]
        );
    }

    #[test]
    fn an_idle_buffer_flushes_on_the_wall_clock() {
        let t0 = Instant::now();
        let b = [buf("idle", 1, 10, Some(t0))];
        assert!(decide(&b, LIMITS, t0 + Duration::from_millis(4_999)).is_empty());
        assert_eq!(
            decide(&b, LIMITS, t0 + Duration::from_secs(5)),
            [("idle", FlushCause::Age)]
        );
        // A clock that went backwards (a buffer opened "after" now) is not due.
        assert!(
            decide(
                &b,
                LIMITS,
                t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0)
            )
            .is_empty()
        );
    }

    #[test]
    fn nothing_pending_never_flushes() {
        let t0 = Instant::now();
        let b = [
            buf("empty", 0, 0, None),
            buf("offsets only", 0, 0, Some(t0)),
        ];
        assert!(decide(&b, LIMITS, t0).is_empty());
        // A buffer with only offsets to commit (all its records dead-lettered) ages out too.
        assert_eq!(
            decide(&b, LIMITS, t0 + Duration::from_secs(5)),
            [("offsets only", FlushCause::Age)]
        );
    }

    #[test]
    fn over_the_memory_limit_the_largest_flush_first_until_under() {
        let t0 = Instant::now();
        let buffers = [
            buf("a", 10, 900, Some(t0)),
            buf("b", 10, 700, Some(t0)),
            buf("c", 10, 950, Some(t0)),
            buf("d", 10, 300, Some(t0)),
        ];
        // 2,850 held > 2,500: c (950) goes, leaving 1,900.
        assert_eq!(decide(&buffers, LIMITS, t0), [("c", FlushCause::Memory)]);
        let tight = Limits {
            memory_limit: 1_000,
            ..LIMITS
        };
        // 2,850 → c → 1,900 → a → 1,000: at the limit, stop.
        assert_eq!(
            decide(&buffers, tight, t0),
            [("c", FlushCause::Memory), ("a", FlushCause::Memory)]
        );
    }

    #[test]
    fn buffers_already_flushing_do_not_count_against_memory() {
        let t0 = Instant::now();
        let buffers = [
            buf("full", 10, 1_000, Some(t0)),
            buf("a", 10, 900, Some(t0)),
            buf("b", 10, 900, Some(t0)),
        ];
        // 2,800 held, but "full" flushes for its bytes: 1,800 remain, under 2,500.
        assert_eq!(decide(&buffers, LIMITS, t0), [("full", FlushCause::Bytes)]);
    }
}
