//! The metric names the Prometheus rules, their unit tests and the Grafana dashboards use, each
//! checked against the series the binary's `/metrics` renders.

use super::*;

/// A recorder that keeps what `describe_*` registers: names and kinds.
#[derive(Debug, Default)]
pub(super) struct Described(Mutex<Vec<(String, Kind)>>);

impl Described {
    fn push(&self, key: KeyName, kind: Kind) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.push((key.as_str().to_owned(), kind));
    }
}

impl metrics::Recorder for Described {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.push(key, Kind::Counter);
    }
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.push(key, Kind::Gauge);
    }
    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.push(key, Kind::Histogram);
    }
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// Every metric the binary records, with its kind: the ingest service's, the warehouse's, the
/// Iceberg publisher's and compaction's as
/// their `describe()` registers them, the simulator's constants, and the binary's own.
pub(super) fn recorded_metrics() -> Vec<(String, Kind)> {
    let described = Described::default();
    metrics::with_local_recorder(&described, || {
        surgstream_ingest::metrics::describe();
        surgstream_warehouse::fresh::describe();
        surgstream_iceberg::keep::describe();
        surgstream_ingest::compact::describe();
        surgstream_warehouse::archive::describe();
    });
    let mut all = described
        .0
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    // The simulator describes none of its metrics: its constants, with the kind each is
    // recorded as in crates/surgstream-sim/src/kafka.rs.
    use surgstream_sim::kafka as sim;
    let others = [
        (sim::FRAMES_SENT, Kind::Counter),
        (sim::EVENTS_SENT, Kind::Counter),
        (sim::BYTES_SENT, Kind::Counter),
        (sim::DELIVERY_ERRORS, Kind::Counter),
        (sim::BEHIND, Kind::Gauge),
        (sim::DELIVERY_SECONDS, Kind::Histogram),
        (sim::TARGET_RATE, Kind::Gauge),
        (crate::http::RESIDENT_MEMORY, Kind::Gauge),
    ];
    all.extend(others.map(|(name, kind)| (name.to_owned(), kind)));
    all
}

/// The series names that `/metrics` renders for them: the binary's exporter with its own
/// histogram buckets ([`crate::http::buckets`]), one value recorded per metric. A histogram
/// with buckets is `_bucket`, `_sum` and `_count`; one without is a summary (its name with
/// quantiles, `_sum`, `_count`).
pub(super) fn rendered_series() -> BTreeSet<String> {
    let recorder = crate::http::buckets(PrometheusBuilder::new())
        .expect("the binary's histogram buckets are valid")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for (name, kind) in recorded_metrics() {
            match kind {
                Kind::Counter => metrics::counter!(name).increment(1),
                Kind::Gauge => metrics::gauge!(name).set(1.0),
                Kind::Histogram => metrics::histogram!(name).record(1.0),
            }
        }
    });
    handle
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What is wrong with querying `name`, given the series that exist.
pub(super) fn metric_problem(name: &str, series: &BTreeSet<String>) -> Option<String> {
    // Prometheus's own series for every target.
    if series.contains(name) || name == "up" || name.starts_with("scrape_") {
        return None;
    }
    if series.contains(&format!("{name}_bucket")) {
        return Some(format!(
            "{name} is a histogram: query {name}_bucket, {name}_sum or {name}_count"
        ));
    }
    let nearest = series
        .iter()
        .map(|s| (edit_distance(name, s), s))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, s)| format!(" (did you mean {s}?)"))
        .unwrap_or_default();
    Some(format!(
        "metric {name} is not a series that surgstream's /metrics renders{nearest}"
    ))
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The rule files prometheus.yml loads, relative to the repository.
pub(super) fn rule_files() -> Vec<String> {
    let config = yaml::parse(&read(PROMETHEUS_CONFIG))
        .unwrap_or_else(|e| panic!("{PROMETHEUS_CONFIG}: not valid YAML: {e}"));
    let dir = Path::new(PROMETHEUS_CONFIG)
        .parent()
        .unwrap_or(Path::new(""));
    config
        .get("rule_files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect()
}

/// Each rule of a rule file: (`alert NAME` or `record NAME`, its expression).
pub(super) fn rules(file: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let doc = yaml::parse(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
    let mut out = Vec::new();
    for group in doc
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for rule in group
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = ["alert", "record"].iter().find_map(|k| {
                rule.get(*k)
                    .and_then(Value::as_str)
                    .map(|n| format!("{k} {n}"))
            });
            let expr = rule.get("expr").and_then(scalar);
            match (name, expr) {
                (Some(name), Some(expr)) => out.push((name, expr)),
                (name, _) => {
                    return Err(format!(
                        "{file}: a rule without alert/record or expr: {name:?}"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The problems of the metric names in rule files, given the series that exist (recording
/// rules add theirs).
pub(super) fn rules_problems(files: &[(String, String)], series: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut known = series.clone();
    let mut all = Vec::new();
    for (file, text) in files {
        match rules(file, text) {
            Ok(rules) => all.extend(rules.into_iter().map(|(name, expr)| (file, name, expr))),
            Err(e) => problems.push(e),
        }
    }
    known.extend(
        all.iter()
            .filter_map(|(_, name, _)| name.strip_prefix("record ").map(str::to_owned)),
    );
    for (file, name, expr) in &all {
        for metric in promql::metric_names(expr) {
            if let Some(p) = metric_problem(&metric, &known) {
                problems.push(format!("{file}: {name}: {p}"));
            }
        }
    }
    problems
}

/// Every query of a Grafana dashboard: (where, expression).
pub(super) fn dashboard_queries(file: &str, dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let variables = dash.pointer("/templating/list").and_then(Value::as_array);
    for v in variables.into_iter().flatten() {
        if v.get("type").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let query = v.get("query").and_then(|q| match q {
            Value::Object(o) => o.get("query").and_then(Value::as_str),
            other => other.as_str(),
        });
        if let Some(q) = query {
            let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
            out.push((format!("{file}: variable {name}"), q.to_owned()));
        }
    }
    let mut panels: Vec<&Value> = dash
        .get("panels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = panels.pop() {
        // A row holds its panels when collapsed.
        panels.extend(
            panel
                .get("panels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        let title = panel.get("title").and_then(Value::as_str).unwrap_or("?");
        for target in panel
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(expr) = target.get("expr").and_then(Value::as_str) {
                out.push((format!("{file}: panel {title:?}"), expr.to_owned()));
            }
        }
    }
    out
}

/// The dashboards: (file, parsed JSON).
pub(super) fn dashboards() -> Vec<(String, Value)> {
    let dir = root().join(DASHBOARDS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {DASHBOARDS}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension() == Some(OsStr::new("json")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in {DASHBOARDS}");
    files
        .into_iter()
        .map(|p| {
            let rel = format!(
                "{DASHBOARDS}/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            );
            let dash = serde_json::from_str(&read(&rel))
                .unwrap_or_else(|e| panic!("{rel}: not valid JSON: {e}"));
            (rel, dash)
        })
        .collect()
}

pub(super) fn queries_problems(
    queries: &[(String, String)],
    series: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (place, expr) in queries {
        for metric in promql::metric_names(expr) {
            if let Some(p) = metric_problem(&metric, series) {
                problems.push(format!("{place}: {p}"));
            }
        }
    }
    problems
}

/// The series of `promtool test rules` cases (their `input_series`).
pub(super) fn rule_test_problems(file: &str, text: &str, series: &BTreeSet<String>) -> Vec<String> {
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("{file}: not valid YAML: {e}")],
    };
    let mut problems = Vec::new();
    for test in doc
        .get("tests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let inputs = test.get("input_series").and_then(Value::as_array);
        for input in inputs.into_iter().flatten() {
            let selector = input
                .get("series")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let metric = selector.split('{').next().unwrap_or_default().trim();
            if let Some(p) = metric_problem(metric, series) {
                let name = test.get("name").and_then(Value::as_str).unwrap_or("?");
                problems.push(format!("{file}: test {name:?}: {p}"));
            }
        }
    }
    problems
}

#[test]
pub(super) fn rules_query_only_metrics_the_code_records() {
    let series = rendered_series();
    let files: Vec<(String, String)> = rule_files()
        .into_iter()
        .map(|f| {
            let text = read(&f);
            (f, text)
        })
        .collect();
    assert!(!files.is_empty(), "{PROMETHEUS_CONFIG} loads no rule_files");
    let mut problems = rules_problems(&files, &series);
    problems.extend(rule_test_problems(RULE_TESTS, &read(RULE_TESTS), &series));
    assert_no_problems("Prometheus rules", &problems);
}

#[test]
pub(super) fn dashboards_query_only_metrics_the_code_records() {
    let series = rendered_series();
    let mut problems = Vec::new();
    for (file, dash) in dashboards() {
        let queries = dashboard_queries(&file, &dash);
        assert!(!queries.is_empty(), "{file}: no queries found");
        problems.extend(queries_problems(&queries, &series));
    }
    assert_no_problems("Grafana dashboards", &problems);
}

#[test]
pub(super) fn dashboards_show_the_pipeline_at_a_glance() {
    use surgstream_ingest::metrics as m;
    let bucket = |name: &str| format!("{name}_bucket");
    let required = [
        (
            m::FRAMES_CONSUMED.to_owned(),
            "throughput (frames consumed)",
        ),
        (m::FRAMES_WRITTEN.to_owned(), "throughput (frames written)"),
        (m::EVENTS_APPLIED.to_owned(), "events/s"),
        (m::CONSUMER_LAG.to_owned(), "consumer lag"),
        (
            bucket(m::END_TO_END_LATENCY),
            "end-to-end latency quantiles",
        ),
        (bucket(m::FLUSH_DURATION), "flush duration"),
        (m::FLUSHES.to_owned(), "flushes by cause"),
        (bucket(m::ROWS_PER_FILE), "rows per file"),
        (m::BYTES_WRITTEN.to_owned(), "bytes per file"),
        (m::DEAD_LETTERS.to_owned(), "dead letters by reason"),
        (bucket(m::PG_TRANSACTION), "PostgreSQL transaction latency"),
        (m::BUFFERED_BYTES.to_owned(), "buffered bytes"),
        (m::OPEN_BUFFERS.to_owned(), "open buffers"),
        (crate::http::RESIDENT_MEMORY.to_owned(), "process RSS"),
    ];
    let mut problems = Vec::new();
    for (file, dash) in dashboards() {
        let queries = dashboard_queries(&file, &dash);
        let used: BTreeSet<String> = queries
            .iter()
            .flat_map(|(_, expr)| promql::metric_names(expr))
            .collect();
        for (metric, what) in &required {
            if !used.contains(metric) {
                problems.push(format!("{file}: no panel shows {what} ({metric})"));
            }
        }
        let e2e = bucket(m::END_TO_END_LATENCY);
        for q in ["0.5", "0.99"] {
            let shown = queries.iter().any(|(_, expr)| {
                let expr: String = expr.split_whitespace().collect();
                expr.contains(&format!("histogram_quantile({q},")) && expr.contains(&e2e)
            });
            if !shown {
                problems.push(format!(
                    "{file}: no histogram_quantile({q}, …) of {}",
                    m::END_TO_END_LATENCY
                ));
            }
        }
    }
    assert_no_problems("Grafana dashboards", &problems);
}

// ---------------------------------------------------------------------------------------------
// promtool
