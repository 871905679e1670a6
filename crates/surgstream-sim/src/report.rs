//! [`SimReport`]: what a run sent — counts by kind, frames per procedure (to reconcile against
//! the lake and PostgreSQL), pacing and delivery latency. Filled by the Kafka sink and the file
//! writer, shown by the progress line.

use std::collections::BTreeMap;

use serde::Serialize;
use surgstream_proto::latency::LatencySummary;

/// What was sent: counts, and frames per procedure, so that a run can be reconciled against the
/// lake and PostgreSQL.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SimReport {
    /// Telemetry frames delivered.
    pub frames: u64,
    /// Telemetry records (batches) delivered.
    pub telemetry_records: u64,
    /// Events delivered.
    pub events: u64,
    /// Events delivered, by body type.
    pub events_by_type: BTreeMap<String, u64>,
    /// Records whose delivery failed after the producer's retries.
    pub delivery_errors: u64,
    /// Frames delivered per procedure (procedure_id as hyphenated UUID).
    pub frames_per_procedure: BTreeMap<String, u64>,
    /// Wall-clock seconds from the first send to the last delivery.
    pub elapsed_seconds: f64,
    /// Whether the run was stopped early (Ctrl-C / SIGTERM).
    pub interrupted: bool,
    /// Simulated time the records cover (run start to the last record), seconds: frames / this
    /// is the planned average rate.
    pub simulated_seconds: f64,
    /// Largest delay of a paced send behind its due time (the broker not keeping up), seconds.
    pub max_behind_seconds: f64,
    /// Whether records were sent in wall-clock time (a live run) or as fast as possible.
    pub paced: bool,
    /// Telemetry records per partition, from the send (the record's Kafka timestamp) to the
    /// broker's acknowledgement (acks=all): the broker's write time, as the producer sees it.
    pub delivery_latency: BTreeMap<i32, LatencySummary>,
}

impl SimReport {
    /// Counts one delivered telemetry record.
    pub fn telemetry_delivered(&mut self, procedure: [u8; 16], frames: u64) {
        self.frames += frames;
        self.telemetry_records += 1;
        *self
            .frames_per_procedure
            .entry(uuid::Uuid::from_bytes(procedure).to_string())
            .or_default() += frames;
    }

    /// Counts one delivered event.
    pub fn event_delivered(&mut self, body_type: &str) {
        self.events += 1;
        *self.events_by_type.entry(body_type.to_owned()).or_default() += 1;
    }

    /// Procedures started and not ended when the run stopped.
    pub fn in_progress(&self) -> u64 {
        let n = |t: &str| self.events_by_type.get(t).copied().unwrap_or(0);
        n("ProcedureStarted").saturating_sub(n("ProcedureCompleted") + n("ProcedureAborted"))
    }
}
