//! The metric names a PromQL expression selects. Enough of PromQL's lexical structure to find
//! them: strings, label matchers, ranges and `by (…)`-style label lists are skipped; a name
//! followed by `(` is a function or an aggregation; numbers and durations are not names. The
//! whole expression is parsed by `promtool check rules` where promtool is installed.

/// Words that are operators, modifiers or aggregations, not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a list of label names, not of expressions.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Metric names in `expr`, each once, in order of appearance. Grafana's `$variables` are
/// skipped, and so is the label argument of its `label_values(selector, label)`.
pub(super) fn metric_names(expr: &str) -> Vec<String> {
    let expr = label_values_selector(expr.trim()).unwrap_or(expr);
    let chars: Vec<char> = expr.chars().collect();
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '{', '}');
            } else {
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number, or a duration such as 5m or 1h30m.
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '_'))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if call && LABEL_LISTS.contains(&word.as_str()) {
                i = skip_group(&chars, next, '(', ')');
            } else if !call
                && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                && !names.contains(&word)
            {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The selector of Grafana's `label_values(selector, label)`; None for anything else.
fn label_values_selector(expr: &str) -> Option<&str> {
    let inner = expr.strip_prefix("label_values(")?.strip_suffix(')')?;
    // The label is the last argument; `label_values(label)` has no selector.
    Some(
        inner
            .rsplit_once(',')
            .map_or("", |(selector, _label)| selector),
    )
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the string opening at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' && quote != '`' {
            2
        } else {
            1
        };
    }
    i + 1
}

/// Index just past the `close` matching the `open` at `start`, strings inside skipped.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    #[test]
    fn names_not_functions_labels_or_durations() {
        let expr = r#"sum by (topic, reason) (rate(dead_total{job="x}"}[5m])) > 0
            or sum by (topic) (dead_total unless dead_total offset 5m)
            and on (job) group_left(instance) 0 * max(open_buffers) > 1e3"#;
        assert_eq!(metric_names(expr), ["dead_total", "open_buffers"]);
    }

    #[test]
    fn grafana_variables_and_label_values() {
        assert_eq!(
            metric_names(r#"rate(frames_total{instance=~"$instance"}[$__rate_interval])"#),
            ["frames_total"]
        );
        assert_eq!(
            metric_names(r#"label_values(up{job="surgstream-ingest"}, instance)"#),
            ["up"]
        );
        assert_eq!(metric_names("label_values(instance)"), Vec::<String>::new());
    }
}
