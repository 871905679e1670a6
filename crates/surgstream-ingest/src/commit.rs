//! The commit protocol: how a flushed buffer becomes durable exactly once. Read this module
//! first; everything else feeds it.
//!
//! A partition's consumed records become durable in three steps, always in this order:
//!
//! 1. **Files** ([`crate::flush`]): each event hour of a telemetry buffer is encoded as Parquet
//!    and stored in the lake under its final name, which is a function of the partition and the
//!    buffer's first and last offsets (`LakePath`). No transaction is open while the store is
//!    written to (a store that is down holds no PostgreSQL lock).
//! 2. **One PostgreSQL transaction** ([`Ingest::commit_once`]):
//!    1. compare-and-set of `ingest_offsets` from the offset this consumer loaded (`expected`;
//!       none: no row yet, an `INSERT … ON CONFLICT DO NOTHING` that must insert) to the
//!       partition's position (`next`). If another consumer moved it, this flush is **fenced**:
//!       the transaction is dropped before it touches anything else, the files that no manifest
//!       row names are removed ([`discard_uncommitted`]), and the partition's state is reloaded
//!       from PostgreSQL;
//!    2. the raw files (`--raw-archive`: every record of the range as it came, dead letters
//!       included) are named in the `raw_files` manifest;
//!    3. telemetry: the files are named in the `lake_files` manifest; events: the batch is
//!       applied (each keyed by its event id, so an event seen before changes nothing), and the
//!       rejected ones are dead-lettered, their delivery awaited;
//!    4. `COMMIT`.
//! 3. **Kafka's committed offset** is moved to `next`, asynchronously and best effort. It serves
//!    lag monitoring only: on assignment the consumer seeks to PostgreSQL's offset.
//!
//! Invariants:
//!
//! - A record's effect (a manifest row naming its file, an applied event, a raw manifest row
//!   naming the file that archives it) exists if and only if `ingest_offsets` is past the
//!   record: all change in one transaction.
//! - Readers see only the files the manifest names; a file no row names is an orphan, and the
//!   sweep removes it once older than `--sweep-grace`.
//! - `ingest_offsets` moves only from the value its mover read: two members that both believe
//!   they own a partition (a zombie after a rebalance, a process paused past its session) cannot
//!   both commit a range. The loser's files are removed unless the manifest names them — the
//!   winner may have flushed the same range, same name, same bytes.
//! - Nothing reaches Kafka's committed offset before PostgreSQL has committed.
//! - Dead letters are acknowledged by the broker before the offset moves past them: a crash may
//!   write one twice, never lose one.
//!
//! A crash between any two steps:
//!
//! - in or after step 1, before the `COMMIT`: files exist that no row names and the offset did not
//!   move. On restart the records are read again from PostgreSQL's offset; a flush of the same
//!   range overwrites the same names with the same bytes, and files of another range are orphans
//!   for the sweep.
//! - after the `COMMIT`, before step 3: durable; Kafka's offset is behind. On restart the consumer
//!   seeks to PostgreSQL's offset and reads nothing twice into the lake.
//! - after step 3: nothing to redo.
//!
//! The fault points `after_write` (files named, transaction open) and `after_commit` (committed,
//! Kafka not told) abort the process exactly there (`tests/resume.rs`); `before_first_commit`
//! and `before_next_commit` stop it just before the compare-and-set, so that another member can
//! commit the partition first and the fence is seen to hold on both of its paths
//! (`tests/fencing.rs`).

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use surgstream_lake::Lake;
use surgstream_proto::time::now_micros;
use surgstream_proto::v1::Event;
use surgstream_store::{Applied, Source, Store, StoreError, apply_events};
use surgstream_store::{offsets, raw};

use crate::error::IngestError;
use crate::flush::Written;
use crate::partition::PartitionState;
use crate::policy::FlushCause;
use crate::raw_encoder::RawArchive;
use crate::service::Ingest;
use crate::{dlq, fault, metrics};

impl Ingest {
    /// [`Self::commit_once`], tried again while PostgreSQL is unreachable (a restart, a
    /// failover): the buffer stays in memory and nothing is consumed meanwhile; the files stay
    /// as written. Gives up after `--pg-retry-timeout`, or at once on a stop request.
    pub(crate) async fn commit(
        &mut self,
        key: &(String, i32),
        cause: FlushCause,
        written: &Written,
        started: Instant,
    ) -> Result<(), IngestError> {
        let retrying = Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match self.commit_once(key, cause, written, started).await {
                Err(IngestError::Store(e))
                    if e.is_transient() && retrying.elapsed() < self.cfg.pg_retry_timeout =>
                {
                    tracing::warn!(error = %e, retry_in = ?wait, failing_for = ?retrying.elapsed(),
                        give_up_after = ?self.cfg.pg_retry_timeout, "PostgreSQL unavailable: keeping the batch and trying again");
                    ::metrics::counter!(metrics::PG_RETRIES).increment(1);
                    // A stop request ends the wait at once: the batch was not committed, and
                    // its records are read again on restart.
                    tokio::select! {
                        _ = self.shutdown.cancelled() => {
                            tracing::warn!("stop requested while PostgreSQL is unavailable: leaving the batch uncommitted");
                            return Err(IngestError::Store(e));
                        }
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// Names one partition's files in the manifest (or applies its events), names its raw
    /// files, and advances its offset, in one transaction.
    pub(crate) async fn commit_once(
        &mut self,
        key: &(String, i32),
        cause: FlushCause,
        all: &Written,
        started: Instant,
    ) -> Result<(), IngestError> {
        let written = &all.files[..];
        let Some(state) = self.parts.get_mut(key) else {
            return Ok(());
        };
        if !state.pending() {
            return Ok(());
        }
        let expected = state.durable;
        let next = state.position;
        let (topic, partition) = (key.0.as_str(), key.1);
        let telemetry = topic == self.cfg.telemetry_topic;
        let at = || format!("{topic}/{partition} expected={expected:?} next={next}");
        match expected {
            None => fault::point_at("before_first_commit", at),
            Some(_) => fault::point_at("before_next_commit", at),
        }

        // The compare-and-set comes first: a fenced consumer stops here, before it touches the
        // manifest or the event store.
        let pg_started = Instant::now();
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(StoreError::query("begin"))?;
        match offsets::advance(&mut tx, &self.cfg.group, topic, partition, expected, next).await {
            Ok(()) => {}
            Err(StoreError::Fenced { .. }) => {
                drop(tx);
                tracing::warn!(
                    topic,
                    partition,
                    ?expected,
                    "fenced: another consumer committed this partition; discarding the flush"
                );
                discard_uncommitted(&self.lake, &self.store, &all.paths()).await?;
                self.report.fenced_flushes += 1;
                ::metrics::counter!(metrics::FENCED_FLUSHES).increment(1);
                let durable = offsets::load(self.store.pool(), &self.cfg.group, topic).await?;
                let raw = self
                    .raw_encoder
                    .as_ref()
                    .map(|e| RawArchive::new(e, partition));
                *state = PartitionState::new(durable.get(&partition).copied(), raw);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        // The raw records of the range, whatever the typed side makes of them.
        raw::record_raw_files(&mut tx, &self.cfg.group, topic, &all.raw).await?;
        let mut rejected = Vec::new();
        let mut applied = 0u64;
        let mut replayed = 0u64;
        if telemetry {
            offsets::record_files(&mut tx, &self.cfg.group, topic, written).await?;
            fault::point("after_write");
        } else {
            let batch: Vec<(Source<'_>, &Event)> = state
                .events
                .iter()
                .map(|pending| {
                    let src = Source {
                        topic,
                        partition,
                        offset: pending.offset,
                    };
                    (src, &pending.event)
                })
                .collect();
            let outcomes = apply_events(&mut tx, &batch).await?;
            for (pending, outcome) in state.events.iter().zip(outcomes) {
                match outcome {
                    Ok(Applied::New) => applied += 1,
                    Ok(Applied::Replay) => replayed += 1,
                    Err(r) => rejected.push((pending, r)),
                }
            }
        }
        // Dead letters are delivered before the offset moves past them: at least once.
        for (pending, r) in &rejected {
            let src = Source {
                topic,
                partition,
                offset: pending.offset,
            };
            let delivery = self.dlq.send(
                &self.cfg.events_dlq_topic,
                src,
                pending.key.as_deref(),
                &pending.payload,
                r.reason,
                &r.message,
            )?;
            state.dead_letters.push(delivery);
        }
        dlq::settle(&mut state.dead_letters).await?;
        let dead_lettered = rejected.len() as u64;
        tx.commit().await.map_err(StoreError::query("commit"))?;
        ::metrics::histogram!(metrics::PG_TRANSACTION).record(pg_started.elapsed().as_secs_f64());
        fault::point("after_commit");

        // Durable: account, clear, and tell Kafka (for lag monitoring).
        let rows: i64 = written.iter().map(|f| f.rows).sum();
        let bytes: i64 = written.iter().map(|f| f.bytes).sum();
        for f in written {
            ::metrics::histogram!(metrics::ROWS_PER_FILE).record(f.rows as f64);
        }
        ::metrics::counter!(metrics::FRAMES_WRITTEN).increment(rows as u64);
        ::metrics::counter!(metrics::FILES_WRITTEN).increment(written.len() as u64);
        ::metrics::counter!(metrics::BYTES_WRITTEN).increment(bytes as u64);
        ::metrics::counter!(metrics::EVENTS_APPLIED).increment(applied);
        ::metrics::counter!(metrics::EVENTS_REPLAYED).increment(replayed);
        for f in written {
            ::metrics::histogram!(metrics::BYTES_PER_FILE).record(f.bytes as f64);
        }
        let raw_records: i64 = all.raw.iter().map(|f| f.records).sum();
        let raw_bytes: i64 = all.raw.iter().map(|f| f.bytes).sum();
        ::metrics::counter!(metrics::RAW_RECORDS_WRITTEN, "topic" => topic.to_owned())
            .increment(raw_records as u64);
        ::metrics::counter!(metrics::RAW_FILES_WRITTEN).increment(all.raw.len() as u64);
        ::metrics::counter!(metrics::RAW_BYTES_WRITTEN).increment(raw_bytes as u64);
        self.report.raw_records_written += raw_records as u64;
        self.report.raw_files_written += all.raw.len() as u64;
        self.report.raw_bytes_written += raw_bytes as u64;
        if rows > 0
            && let Some(latency) = state.frame_latency(now_micros())
        {
            self.newest_committed = self.newest_committed.max(state.newest_frame);
            // The oldest frame's: every frame of the flush waited at most this.
            ::metrics::histogram!(metrics::END_TO_END_LATENCY).record(latency.oldest);
            ::metrics::histogram!(metrics::END_TO_END_LATENCY_NEWEST).record(latency.newest);
        }
        ::metrics::histogram!(metrics::FLUSH_DURATION).record(started.elapsed().as_secs_f64());
        ::metrics::counter!(metrics::FLUSHES, "cause" => cause.as_str()).increment(1);
        *self.report.flushes.entry(cause.as_str()).or_default() += 1;
        self.report.frames_written += rows as u64;
        self.report.files_written += written.len() as u64;
        self.report.bytes_written += bytes as u64;
        self.report.events_applied += applied;
        self.report.events_replayed += replayed;
        self.report.event_dead_letters += dead_lettered;
        state.durable = Some(next);
        state.frames.clear();
        state.events.clear();
        state.event_bytes = 0;
        if let Some(raw) = &mut state.raw {
            raw.clear();
        }
        state.due = None;
        state.newest_frame = i64::MIN;
        state.oldest_frame = i64::MAX;
        tracing::debug!(
            topic,
            partition,
            next,
            files = written.len(),
            rows,
            applied,
            "flushed"
        );

        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .is_ok()
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "Kafka offset commit failed (PostgreSQL stays the source of truth)");
        }
        Ok(())
    }
}

/// After a fenced flush: removes the files this consumer wrote, except those that the manifest
/// names. A winner that flushed the same offset range wrote the same bytes under the same name
/// and committed them: removing "our" copy would remove its committed file. Returns the paths
/// removed.
pub async fn discard_uncommitted(
    lake: &Lake,
    store: &Store,
    paths: &[String],
) -> Result<Vec<String>, IngestError> {
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let named = offsets::named(store.pool(), &refs).await?;
    let mut removed = Vec::new();
    for p in paths.iter().filter(|p| !named.contains(p)) {
        lake.delete(p).await?;
        removed.push(p.clone());
    }
    Ok(removed)
}
