//! The lifecycles, as pure functions: which status change each event makes, from which status.

/// A procedure's status.
pub const SCHEDULED: &str = "scheduled";
/// Started, not yet ended.
pub const IN_PROGRESS: &str = "in_progress";
/// Ended normally.
pub const COMPLETED: &str = "completed";
/// Ended early.
pub const ABORTED: &str = "aborted";
/// Never started.
pub const CANCELLED: &str = "cancelled";

/// What a procedure event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcedureStep {
    /// scheduled → in_progress.
    Start,
    /// in_progress → completed.
    Complete,
    /// in_progress → aborted.
    Abort,
    /// scheduled → cancelled.
    Cancel,
}

impl ProcedureStep {
    /// The status after this step, if it is legal from `from`.
    pub fn apply(self, from: &str) -> Option<&'static str> {
        match (self, from) {
            (Self::Start, SCHEDULED) => Some(IN_PROGRESS),
            (Self::Complete, IN_PROGRESS) => Some(COMPLETED),
            (Self::Abort, IN_PROGRESS) => Some(ABORTED),
            (Self::Cancel, SCHEDULED) => Some(CANCELLED),
            _ => None,
        }
    }

    /// The target status, for messages.
    pub fn target(self) -> &'static str {
        match self {
            Self::Start => IN_PROGRESS,
            Self::Complete => COMPLETED,
            Self::Abort => ABORTED,
            Self::Cancel => CANCELLED,
        }
    }
}

/// Whether a procedure in this status has run (an outcome may be recorded for it).
pub fn has_run(status: &str) -> bool {
    status == COMPLETED || status == ABORTED
}

/// Whether a robot may go from `from` to `to`: operational ↔ maintenance, either → retired.
pub fn robot_transition_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("operational", "maintenance")
            | ("maintenance", "operational")
            | ("operational" | "maintenance", "retired")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_steps_follow_the_lifecycle() {
        assert_eq!(ProcedureStep::Start.apply(SCHEDULED), Some(IN_PROGRESS));
        assert_eq!(ProcedureStep::Complete.apply(IN_PROGRESS), Some(COMPLETED));
        assert_eq!(ProcedureStep::Abort.apply(IN_PROGRESS), Some(ABORTED));
        assert_eq!(ProcedureStep::Cancel.apply(SCHEDULED), Some(CANCELLED));
        for from in [IN_PROGRESS, COMPLETED, ABORTED, CANCELLED] {
            assert_eq!(ProcedureStep::Start.apply(from), None, "start from {from}");
            assert_eq!(
                ProcedureStep::Cancel.apply(from),
                None,
                "cancel from {from}"
            );
        }
        for from in [SCHEDULED, COMPLETED, ABORTED, CANCELLED] {
            assert_eq!(
                ProcedureStep::Complete.apply(from),
                None,
                "complete from {from}"
            );
            assert_eq!(ProcedureStep::Abort.apply(from), None, "abort from {from}");
        }
    }

    #[test]
    fn robot_transitions() {
        assert!(robot_transition_allowed("operational", "maintenance"));
        assert!(robot_transition_allowed("maintenance", "operational"));
        assert!(robot_transition_allowed("maintenance", "retired"));
        assert!(!robot_transition_allowed("retired", "operational"));
        assert!(!robot_transition_allowed("operational", "operational"));
        assert!(!robot_transition_allowed("operational", "broken"));
    }

    #[test]
    fn only_ended_procedures_have_run() {
        assert!(has_run(COMPLETED) && has_run(ABORTED));
        assert!(!has_run(SCHEDULED) && !has_run(IN_PROGRESS) && !has_run(CANCELLED));
    }
}
