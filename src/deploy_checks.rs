//! Deploy checks by the program that knows the truth. The options that `docker-compose.yml` and
//! `deploy/surgstream.env.example` give `surgstream` are parsed by the binary's own clap
//! definitions ([`crate::cli::Args`]); the metric names of the Prometheus rules and the Grafana
//! dashboards must be series that the binary's `/metrics` renders; `promtool` checks the
//! Prometheus config and rules and runs the rule unit tests, where it is installed.
//!
//! What needs no knowledge of the code (YAML syntax, ports, mounts, images, the Dockerfile) is
//! checked by `scripts/check_deploy.py`; `scripts/check-deploy.sh` runs both.

mod metric_names;
mod options;
mod promql;
mod promtool;
mod yaml;

use metric_names::*;
use options::*;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use clap::{Arg, Command, CommandFactory, FromArgMatches};
use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::Value;

use crate::cli::{Args, Command as Sub, ProfileArg};

pub(super) const COMPOSE: &str = "docker-compose.yml";
pub(super) const ENV_EXAMPLE: &str = "deploy/surgstream.env.example";
pub(super) const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
/// `promtool test rules` cases for the alerts (run on a copy of the rules without annotations).
pub(super) const RULE_TESTS: &str = "deploy/prometheus/alerts.test.yml";
pub(super) const DASHBOARDS: &str = "deploy/grafana/dashboards";

/// Environment variables that surgstream reads outside clap, or that are not its at all.
pub(super) const OTHER_ENV: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

/// An instant for the simulator's profile check (it only sets the default start).
pub(super) const NOW_MICROS: i64 = 1_767_225_600_000_000;

pub(super) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

pub(super) fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}\n",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Options

mod bite {
    use super::*;

    fn compose(service: &str) -> Vec<String> {
        let text = format!("services:\n  svc:\n    image: surgstream:local\n{service}");
        compose_problems("compose.yml", &text).0
    }

    #[test]
    fn a_misspelt_option_is_named_with_its_file_and_service() {
        let problems = compose("    command: [\"ingest\", \"--max-rowz\", \"10\"]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("compose.yml: service svc:"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("'--max-rowz'") && problems[0].contains("'--max-rows'"),
            "{problems:?}"
        );
    }

    #[test]
    fn environment_variables_are_read_by_the_subcommand_with_valid_values() {
        let problems = compose(
            "    command: [\"sim\", \"--profile\", \"live\"]\n    environment:\n      SURGSTREAM_MAX_ROWS: \"10\"\n      SURGSTREAM_SIM_ROBOT: \"10\"\n      SURGSTREAM_SIM_HZ: fast\n      AWS_ENDPIONT: http://minio:9000\n      AWS_ENDPOINT: http://minio:9000\n      RUST_LOG: info\n",
        );
        let all = problems.join("\n");
        assert_eq!(problems.len(), 4, "{all}");
        assert!(
            all.contains(
                "SURGSTREAM_MAX_ROWS is not read by `surgstream sim` (read by: ingest, demo, bench)"
            ),
            "{all}"
        );
        assert!(
            all.contains("SURGSTREAM_SIM_ROBOT is not read by any surgstream subcommand"),
            "{all}"
        );
        assert!(all.contains("AWS_ENDPIONT is not an S3 setting"), "{all}");
        assert!(
            all.contains("'fast' for '--hz <HZ>'") && all.contains("--hz is SURGSTREAM_SIM_HZ"),
            "{all}"
        );
    }

    #[test]
    fn an_option_of_the_other_profile_is_refused() {
        let problems = compose("    command: [\"sim\", \"--hz\", \"100\"]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("--hz: it applies to --profile live"),
            "{problems:?}"
        );
    }

    #[test]
    fn compose_defaults_are_interpolated() {
        assert_eq!(interpolate("${LAKE:-s3://b/lake}"), "s3://b/lake");
        assert_eq!(interpolate("a$${X}b ${UNSET}c $Y"), "a${X}b c ");
        assert_eq!(interpolate("${REQUIRED:?set it}"), "<REQUIRED>");
    }

    #[test]
    fn env_file_names_and_values_are_checked() {
        let (problems, count) = env_file_problems(
            "x.env",
            "# comment = not a variable\nSURGSTREAM_MAX_AGE=5s\n# SURGSTREAM_SIM_HZ=100\nSURGSTREAM_MAX_AGEE=5s\nSURGSTREAM_MAX_BYTES=lots\nSURGSTREAM_SIM_FAST=yes\nSURGSTREAM_KAFKA_CLIENT_SASL_PASSWORD=${file:/x}\n# SURGSTREAM_KAFKA_CLIENT_SECURITY_PROTOCOLL=SSL\n",
        );
        let all = problems.join("\n");
        assert_eq!(count, 7, "{all}");
        assert_eq!(problems.len(), 4, "{all}");
        assert!(
            all.contains("x.env:8: SURGSTREAM_KAFKA_CLIENT_SECURITY_PROTOCOLL: security.protocoll is not a librdkafka property"),
            "{all}"
        );
        assert!(
            all.contains("x.env:4: SURGSTREAM_MAX_AGEE is not read"),
            "{all}"
        );
        assert!(
            all.contains("x.env:5: SURGSTREAM_MAX_BYTES=lots is refused by `surgstream ingest`"),
            "{all}"
        );
        assert!(
            all.contains("x.env:6: SURGSTREAM_SIM_FAST=\"yes\": --fast is a flag"),
            "{all}"
        );
    }

    #[test]
    fn a_misspelt_metric_is_named_with_a_suggestion() {
        let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(surgstream_dead_leters_total[5m]) > 0\n      - alert: B\n        expr: surgstream_flush_duration_seconds > 1\n";
        let problems = rules_problems(
            &[("r.yml".to_owned(), rules.to_owned())],
            &rendered_series(),
        );
        let all = problems.join("\n");
        assert_eq!(problems.len(), 2, "{all}");
        assert!(all.contains("r.yml: alert A: metric surgstream_dead_leters_total is not a series that surgstream's /metrics renders (did you mean surgstream_dead_letters_total?)"), "{all}");
        assert!(
            all.contains("r.yml: alert B: surgstream_flush_duration_seconds is a histogram"),
            "{all}"
        );
    }

    #[test]
    fn rendered_series_include_every_kind() {
        let series = rendered_series();
        let m = surgstream_ingest::metrics::END_TO_END_LATENCY;
        for s in [
            format!("{m}_bucket"),
            format!("{m}_sum"),
            format!("{m}_count"),
            surgstream_ingest::metrics::FRAMES_CONSUMED.to_owned(),
            surgstream_sim::kafka::TARGET_RATE.to_owned(),
            crate::http::RESIDENT_MEMORY.to_owned(),
        ] {
            assert!(series.contains(&s), "{s} not in {series:?}");
        }
        assert!(
            !series.contains(m),
            "{m} rendered without a suffix: {series:?}"
        );
    }
}
