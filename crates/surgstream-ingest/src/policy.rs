//! When a buffer flushes, and why: a pure function of the buffers and the clock, so that every
//! rule is tested with an injected `now`.
//!
//! A partition's buffer flushes at the first of its row limit, the byte limit and its age limit
//! (wall clock since its oldest pending record was read: an idle partition still flushes on
//! time). Then, while all the buffers that are not flushing hold more than the memory limit
//! together, the largest of them flushes. Shutdown flushes everything; revoked partitions drop
//! their buffers (the new owner reads them again from PostgreSQL's offsets).

use std::time::{Duration, Instant};

/// Why a buffer was flushed: the `cause` label of `surgstream_flushes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlushCause {
    /// It reached its row limit (`--max-rows`, `--event-batch`).
    Rows,
    /// It reached `--max-bytes`.
    Bytes,
    /// Its oldest record reached its age limit (`--max-age`, `--event-max-age`).
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
    /// When its oldest pending record was read; None: nothing pending.
    pub opened: Option<Instant>,
    /// Its row limit.
    pub max_rows: usize,
    /// Its age limit.
    pub max_age: Duration,
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
    for b in buffers.iter().filter(|b| b.opened.is_some()) {
        let cause = if b.rows >= b.max_rows {
            Some(FlushCause::Rows)
        } else if b.bytes >= limits.max_bytes {
            Some(FlushCause::Bytes)
        } else if b
            .opened
            .is_some_and(|o| now.saturating_duration_since(o) >= b.max_age)
        {
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
            opened,
            max_rows: 100,
            max_age: Duration::from_secs(5),
        }
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
