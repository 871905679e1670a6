//! The options `docker-compose.yml` and the env example give `surgstream`, parsed by the binary's
//! own clap definitions.

use super::*;

/// The command line as clap builds it: global options propagated to every subcommand.
pub(super) fn cli() -> Command {
    let mut cmd = Args::command();
    cmd.build();
    cmd
}

/// The command line without the environment's values. clap reads them from this process's
/// environment when the command is built; the values checked here are the file's (and a
/// developer's shell may well set SURGSTREAM_LAKE).
pub(super) fn cli_without_env() -> Command {
    fn strip(cmd: Command) -> Command {
        cmd.mut_args(|a| a.env(None::<&'static str>))
            .mut_subcommands(strip)
    }
    strip(Args::command())
}

/// The argument of `cmd` that `var` sets.
pub(super) fn arg_for_env<'a>(cmd: &'a Command, var: &str) -> Option<&'a Arg> {
    cmd.get_arguments()
        .find(|a| a.get_env() == Some(OsStr::new(var)))
}

/// Whether `var`, which no surgstream option reads, may be set all the same: None when it is
/// not an outside variable at all, Err when it looks like one but is not.
pub(super) fn outside_env(var: &str) -> Option<Result<(), String>> {
    if OTHER_ENV.contains(&var) {
        return Some(Ok(()));
    }
    let lower = var.to_ascii_lowercase();
    if let Some(property) = var.strip_prefix(surgstream_kafka::ENV_PREFIX) {
        // A Kafka client property: one librdkafka knows (its value may be a ${…} reference,
        // resolved where the file is used).
        let key = property.to_ascii_lowercase().replace('_', ".");
        let known = match rdkafka::ClientConfig::new()
            .set(&key, "")
            .create_native_config()
        {
            Err(rdkafka::error::KafkaError::ClientConfig(_, desc, _, _)) => {
                !desc.contains("No such configuration property")
            }
            _ => true,
        };
        return Some(if known {
            Ok(())
        } else {
            Err(format!("{var}: {key} is not a librdkafka property"))
        });
    }
    var.starts_with("AWS_").then(|| {
        object_store::aws::AmazonS3ConfigKey::from_str(&lower)
            .map(drop)
            .map_err(|_| {
                format!("{var} is not an S3 setting object_store reads (AmazonS3ConfigKey)")
            })
    })
}

/// `var=value` as the argument clap reads it as: `--flag=value`; for a flag, `--flag` when true
/// and nothing when false (clap's bool parser takes true or false).
pub(super) fn env_as_arg(arg: &Arg, var: &str, value: &str) -> Result<Option<String>, String> {
    let Some(long) = arg.get_long() else {
        return Err(format!(
            "{var} sets `{}`, which has no --long name",
            arg.get_id()
        ));
    };
    if arg.get_action().takes_values() {
        return Ok(Some(format!("--{long}={value}")));
    }
    match value {
        "true" => Ok(Some(format!("--{long}"))),
        "false" => Ok(None),
        other => Err(format!(
            "{var}={other:?}: --{long} is a flag: true or false"
        )),
    }
}

/// clap's error without its usage lines, on one line.
pub(super) fn clap_error(e: &clap::Error) -> String {
    e.to_string()
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `argv` (`surgstream …`) as the binary parses it, then what `sim` and `demo` refuse after
/// clap: an option of the other profile ([`crate::setup::sim_config`]).
pub(super) fn parse(argv: &[String]) -> Result<Args, String> {
    let matches = cli_without_env()
        .try_get_matches_from(argv)
        .map_err(|e| clap_error(&e))?;
    let args = Args::from_arg_matches(&matches).map_err(|e| clap_error(&e))?;
    let profile = match &args.command {
        Sub::Sim(a) => crate::setup::sim_config(&a.fleet, ProfileArg::Seed, NOW_MICROS).map(drop),
        Sub::Demo(a) => crate::setup::sim_config(&a.fleet, ProfileArg::Live, NOW_MICROS).map(drop),
        _ => Ok(()),
    };
    profile.map_err(|e| format!("{e:#}"))?;
    Ok(args)
}

/// One `surgstream` invocation in a deploy file.
#[derive(Debug)]
pub(super) struct Invocation {
    /// Where it is, for messages: `docker-compose.yml: service ingest`.
    place: String,
    /// The arguments after `surgstream`.
    argv: Vec<String>,
    /// Its environment; a None value is passed through from the host (only the name is checked).
    env: Vec<(String, Option<String>)>,
}

/// Checks an invocation: every environment variable is one its subcommand reads (or an S3
/// setting, or RUST_LOG …), and the command line with the environment's values parses. Returns
/// the subcommand's name.
pub(super) fn check_invocation(inv: &Invocation, problems: &mut Vec<String>) -> Option<String> {
    let cli = cli();
    let place = &inv.place;
    let Some(sub) = inv.argv.iter().find_map(|a| cli.find_subcommand(a)) else {
        let names: Vec<&str> = cli.get_subcommands().map(Command::get_name).collect();
        problems.push(format!(
            "{place}: no surgstream subcommand in `{}` (one of: {})",
            inv.argv.join(" "),
            names.join(", ")
        ));
        return None;
    };
    let name = sub.get_name();
    let mut argv = vec!["surgstream".to_owned()];
    argv.extend(inv.argv.iter().cloned());
    let mut from_env = Vec::new();
    for (var, value) in &inv.env {
        let Some(arg) = arg_for_env(sub, var) else {
            match outside_env(var) {
                Some(Ok(())) => {}
                Some(Err(why)) => problems.push(format!("{place}: {why}")),
                None => problems.push(format!("{place}: {}", not_read(&cli, name, var))),
            }
            continue;
        };
        let Some(value) = value else { continue };
        match env_as_arg(arg, var, value) {
            Ok(Some(given)) => {
                let flag = format!("--{}", arg.get_long().unwrap_or_default());
                // The command line wins over the environment, as in clap.
                let on_command_line = inv
                    .argv
                    .iter()
                    .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
                if !on_command_line {
                    from_env.push((flag, var));
                    argv.push(given);
                }
            }
            Ok(None) => {}
            Err(why) => problems.push(format!("{place}: {why}")),
        }
    }
    if let Err(why) = parse(&argv) {
        let sources: Vec<String> = from_env
            .iter()
            .filter(|(flag, _)| why.contains(flag.as_str()))
            .map(|(flag, var)| format!("{flag} is {var}"))
            .collect();
        let sources = if sources.is_empty() {
            String::new()
        } else {
            format!(" ({})", sources.join(", "))
        };
        problems.push(format!(
            "{place}: `surgstream {}` is refused: {why}{sources}",
            inv.argv.join(" ")
        ));
    }
    Some(name.to_owned())
}

/// Why `var` is an error in `sub`'s environment.
pub(super) fn not_read(cli: &Command, sub: &str, var: &str) -> String {
    let readers: Vec<String> = crate::configuration::leaf_commands(cli)
        .into_iter()
        .filter(|(_, s)| arg_for_env(s, var).is_some())
        .map(|(path, _)| path)
        .collect();
    if readers.is_empty() {
        format!("{var} is not read by any surgstream subcommand (no clap `env = \"{var}\"`)")
    } else {
        format!(
            "{var} is not read by `surgstream {sub}` (read by: {})",
            readers.join(", ")
        )
    }
}

/// Compose's interpolation with the defaults the file writes (`${NAME:-default}`), not this
/// shell's: `$$` is a `$`, a variable without a default is empty, a required one a placeholder.
pub(super) fn interpolate(s: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').unwrap_or(r.len());
            let body = &r[..end];
            let (name, op) = body.split_at(body.find(|c| !is_name(c)).unwrap_or(body.len()));
            let op = op.strip_prefix(':').unwrap_or(op);
            if let Some(default) = op.strip_prefix('-') {
                out.push_str(default);
            } else if op.starts_with('?') {
                out.push_str(&format!("<{name}>"));
            }
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(interpolate(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a Compose service runs the surgstream image.
pub(super) fn runs_surgstream(svc: &Value) -> bool {
    let image = svc.get("image").and_then(Value::as_str).unwrap_or_default();
    let dockerfile = svc
        .pointer("/build/dockerfile")
        .and_then(Value::as_str)
        .unwrap_or_default();
    image.starts_with("surgstream") || dockerfile.ends_with("deploy/Dockerfile")
}

/// The problems of a Compose file's surgstream services, and the subcommands they run.
pub(super) fn compose_problems(file: &str, text: &str) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut subs = Vec::new();
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => return (vec![format!("{file}: not valid YAML: {e}")], subs),
    };
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        return (vec![format!("{file}: no services")], subs);
    };
    for (name, svc) in services.iter().filter(|(_, svc)| runs_surgstream(svc)) {
        let place = format!("{file}: service {name}");
        if svc.get("entrypoint").is_some() {
            problems.push(format!(
                "{place}: the entrypoint is overridden, so the command cannot be checked"
            ));
            continue;
        }
        let argv = match svc.get("command") {
            Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
            Some(Value::String(s)) => interpolate(s)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let env = match svc.get("environment") {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(interpolate(v))),
                    None => (kv.to_owned(), None),
                })
                .collect(),
            _ => Vec::new(),
        };
        let inv = Invocation { place, argv, env };
        subs.extend(check_invocation(&inv, &mut problems));
    }
    (problems, subs)
}

/// The problems of an environment file (`NAME=value` lines, and `# NAME=value` for the ones
/// shown commented out), and how many variables it sets.
pub(super) fn env_file_problems(file: &str, text: &str) -> (Vec<String>, usize) {
    let cli = cli();
    let mut problems = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let line = line.strip_prefix('#').map_or(line, str::trim_start);
        let Some((var, value)) = line.split_once('=') else {
            continue;
        };
        let is_var = var.starts_with(|c: char| c.is_ascii_uppercase())
            && var
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !is_var {
            continue;
        }
        count += 1;
        let place = format!("{file}:{}", n + 1);
        let readers: Vec<(String, &Command)> = crate::configuration::leaf_commands(&cli)
            .into_iter()
            .filter(|(_, s)| arg_for_env(s, var).is_some())
            .collect();
        if readers.is_empty() {
            match outside_env(var) {
                Some(Ok(())) => {}
                Some(Err(why)) => problems.push(format!("{place}: {why}")),
                None => problems.push(format!(
                    "{place}: {var} is not read by any surgstream subcommand (no clap `env = \"{var}\"`)"
                )),
            }
            continue;
        }
        // Each subcommand that reads it must take the value.
        for (path, sub) in readers {
            let Some(arg) = arg_for_env(sub, var) else {
                continue;
            };
            let argv = match env_as_arg(arg, var, value) {
                Ok(given) => std::iter::once("surgstream")
                    .chain(path.split(' '))
                    .map(str::to_owned)
                    .chain(given)
                    .collect::<Vec<_>>(),
                Err(why) => {
                    problems.push(format!("{place}: {why}"));
                    break;
                }
            };
            // Alone, so that a profile's options are not held against the other's default. A
            // subcommand's own required argument (`export --procedure`) is not the value's
            // fault.
            let clap_only = cli_without_env().try_get_matches_from(&argv);
            if let Err(e) = clap_only
                && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
            {
                problems.push(format!(
                    "{place}: {var}={value} is refused by `surgstream {}`: {}",
                    path,
                    clap_error(&e)
                ));
                break;
            }
        }
    }
    (problems, count)
}

#[test]
pub(super) fn compose_commands_and_environment_parse_with_the_cli() {
    let (problems, subs) = compose_problems(COMPOSE, &read(COMPOSE));
    assert_no_problems(COMPOSE, &problems);
    for needed in ["ingest", "sim"] {
        assert!(
            subs.iter().any(|s| s == needed),
            "{COMPOSE}: no service runs `surgstream {needed}` (checked: {subs:?})"
        );
    }
}

#[test]
pub(super) fn env_example_names_only_options_the_cli_reads() {
    let (problems, count) = env_file_problems(ENV_EXAMPLE, &read(ENV_EXAMPLE));
    assert_no_problems(ENV_EXAMPLE, &problems);
    assert!(count > 10, "{ENV_EXAMPLE}: only {count} variables found");
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}
