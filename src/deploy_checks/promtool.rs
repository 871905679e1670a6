//! `promtool` over the Prometheus config and rules, and the rule unit tests, where installed.

use super::*;

pub(super) fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|f| f.is_file())
}

/// Runs a tool; Err holds its output when it fails.
pub(super) fn run(cmd: &mut std::process::Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed:\n{}", text.trim_end()))
    }
}

/// A rule file without its annotations: promtool compares annotations exactly, and the rule
/// tests are about when each alert fires. As JSON, which is YAML.
pub(super) fn without_annotations(file: &str) -> String {
    let mut doc = yaml::parse(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let groups = doc.get_mut("groups").and_then(Value::as_array_mut);
    for group in groups.into_iter().flatten() {
        let rules = group.get_mut("rules").and_then(Value::as_array_mut);
        for rule in rules.into_iter().flatten() {
            if let Some(rule) = rule.as_object_mut() {
                rule.remove("annotations");
            }
        }
    }
    doc.to_string()
}

#[test]
pub(super) fn promtool_accepts_the_config_and_the_alerts_fire_when_they_should() {
    let Some(promtool) = on_path("promtool") else {
        eprintln!(
            "SKIPPED: promtool is not installed (Debian: apt-get install --no-install-recommends prometheus; or scripts/check-deploy.sh --install)"
        );
        return;
    };
    let mut problems = Vec::new();
    // `check config` checks the rule files the config names too.
    let config = root().join(PROMETHEUS_CONFIG);
    problems.extend(
        run(std::process::Command::new(&promtool)
            .arg("check")
            .arg("config")
            .arg(&config))
        .err(),
    );
    let dir = std::env::temp_dir().join(format!(
        "surgstream-promtool-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for file in rule_files() {
        let name = Path::new(&file).file_name().unwrap_or_default();
        std::fs::write(dir.join(name), without_annotations(&file)).expect("a temporary file");
    }
    std::fs::write(dir.join("tests.yml"), read(RULE_TESTS)).expect("a temporary file");
    problems.extend(
        run(std::process::Command::new(&promtool)
            .args(["test", "rules", "tests.yml"])
            .current_dir(&dir))
        .err()
        .map(|e| format!("{RULE_TESTS}: {e}")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_no_problems("promtool", &problems);
}

// ---------------------------------------------------------------------------------------------
// The checks bite
