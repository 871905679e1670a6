//! `docs/configuration.md`, generated from the clap definitions so that it cannot drift: every
//! subcommand, and every option with its environment variable, default and help text. Only
//! what clap does not know (the S3 settings, RUST_LOG) is written here by hand.
//! `configuration_page_is_current` fails when the committed page differs from the rendering;
//! `SURGSTREAM_BLESS=1 cargo test -p surgstream --bin surgstream configuration` rewrites it.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::Args;
use crate::setup::DEFAULT_LOG_FILTER;

const PAGE: &str = "docs/configuration.md";
const BLESS: &str = "SURGSTREAM_BLESS=1 cargo test -p surgstream --bin surgstream configuration";

/// Every command users run, by its path (`ingest`, `iceberg publish`): a command with
/// subcommands of its own stands for them.
pub(crate) fn leaf_commands(cmd: &Command) -> Vec<(String, &Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        if sub.has_subcommands() {
            for (path, leaf) in leaf_commands(sub) {
                out.push((format!("{} {path}", sub.get_name()), leaf));
            }
        } else {
            out.push((sub.get_name().to_owned(), sub));
        }
    }
    out
}

/// One row of the options table: an option as one or more subcommands define it.
#[derive(Debug, PartialEq)]
struct OptionRow {
    option: String,
    env: String,
    default: String,
    description: String,
    commands: Vec<String>,
}

/// A help text on one line, safe in a table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

fn row(arg: &Arg) -> OptionRow {
    let takes_value = arg.get_action().takes_values();
    let long = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
    let option = if takes_value {
        let value = arg
            .get_value_names()
            .map(|v| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        format!("{long} <{value}>")
    } else {
        long
    };
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let default = if !defaults.is_empty() {
        let shown = |d: &String| {
            if d.is_empty() {
                "`\"\"`".to_owned()
            } else {
                code(d)
            }
        };
        defaults.iter().map(shown).collect::<Vec<_>>().join(", ")
    } else if matches!(arg.get_action(), ArgAction::SetTrue) {
        "off".to_owned()
    } else {
        "—".to_owned()
    };
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut description = cell(&help);
    // clap drops the full stop of a one-paragraph help text.
    if !description.is_empty() && !description.ends_with('.') {
        description.push('.');
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(h) => format!("`{}`: {}", v.get_name(), cell(&h.to_string())),
            None => code(v.get_name()),
        })
        .collect();
    // A flag's possible values are true and false: nothing to add.
    if takes_value && !values.is_empty() {
        let _ = write!(description, " One of: {}", values.join("; "));
        if !description.ends_with('.') {
            description.push('.');
        }
    }
    OptionRow {
        option: code(&option),
        env: arg
            .get_env()
            .map_or_else(|| "—".to_owned(), |e| code(&e.to_string_lossy())),
        default,
        description,
        commands: Vec::new(),
    }
}

/// The options of `cmd` (global ones for "all"), one row per distinct definition, in the order
/// they first appear.
fn option_rows(cmd: &Command) -> Vec<OptionRow> {
    let mut rows: Vec<OptionRow> = Vec::new();
    let mut add = |arg: &Arg, command: &str| {
        if arg.is_hide_set() {
            return;
        }
        let new = row(arg);
        match rows.iter_mut().find(|r| {
            (&r.option, &r.env, &r.default, &r.description)
                == (&new.option, &new.env, &new.default, &new.description)
        }) {
            Some(existing) => existing.commands.push(command.to_owned()),
            None => rows.push(OptionRow {
                commands: vec![command.to_owned()],
                ..new
            }),
        }
    };
    for arg in cmd.get_arguments() {
        add(arg, "all");
    }
    for (path, sub) in leaf_commands(cmd) {
        for arg in sub.get_arguments() {
            add(arg, &path);
        }
    }
    rows
}

/// The page, from the command line's definition.
fn render(cmd: &Command) -> String {
    let name = cmd.get_name();
    let mut page = String::new();
    let _ = writeln!(
        page,
        "# Configuration

<!-- Generated from the clap definitions (src/cli.rs) by
src/configuration.rs: do not edit. Change the help texts, then run
`{BLESS}`. -->

Every option is a command-line flag, and most also have an environment variable; the command
line wins over the environment. `{name} <command> --help` prints the same. Bad values are refused before anything starts, with the option's name (an option
of the other profile too: `sim --hz 500` is a seed run and says so); an unreachable broker or
database, a missing topic or database gives one line naming it (credentials are never printed) and
exit code 1. `deploy/surgstream.env.example` is a sample environment for `ingest` and `sim`;
`scripts/check-deploy.sh` checks it and `docker-compose.yml` against these definitions.

## Commands

| command | what it does |
|---|---|"
    );
    for (path, sub) in leaf_commands(cmd) {
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        let _ = writeln!(page, "| `{name} {path}` | {} |", cell(&about));
    }
    let _ = writeln!(
        page,
        "
## Options

| option | environment variable | default | commands | description |
|---|---|---|---|---|"
    );
    for r in option_rows(cmd) {
        let _ = writeln!(
            page,
            "| {} | {} | {} | {} | {} |",
            r.option,
            r.env,
            r.default,
            r.commands.join(", "),
            r.description
        );
    }
    let lake_readers: Vec<String> = leaf_commands(cmd)
        .into_iter()
        .filter(|(_, s)| s.get_arguments().any(|a| a.get_long() == Some("lake")))
        .map(|(path, _)| path)
        .collect();
    let _ = writeln!(
        page,
        "
## Other environment variables

| variable | commands | what it does |
|---|---|---|
| `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, … | {} (an `s3://` lake) | object_store's S3 settings (its `AmazonS3ConfigKey` names, upper-case): AWS, MinIO, or any S3-compatible endpoint; `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint. On AWS, the keys may also come from the usual credential sources. |
| `RUST_LOG` | all | The log filter (`tracing_subscriber`'s `EnvFilter` syntax). Default: `{DEFAULT_LOG_FILTER}`: librdkafka's warnings (a broker it cannot reach, a refused login) show, its error callback's repeats of them do not. A `RUST_LOG` you set replaces the whole filter. |",
        lake_readers.join(", ")
    );
    page
}

#[test]
fn configuration_page_is_current() {
    let page = render(&Args::command());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE);
    if std::env::var("SURGSTREAM_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &page).unwrap_or_else(|e| panic!("cannot write {PAGE}: {e}"));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != page {
        let (n, (old, new)) = committed
            .lines()
            .chain(std::iter::repeat("<end of file>"))
            .zip(page.lines().chain(std::iter::repeat("<end of file>")))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or((0, ("", "")));
        panic!(
            "{PAGE} is stale: it is not what the clap definitions render. First difference, line {}:\n  committed: {old}\n  rendered:  {new}\nRegenerate it with:\n  {BLESS}\n",
            n + 1
        );
    }
}

#[test]
fn every_option_and_subcommand_is_on_the_page() {
    let cmd = Args::command();
    let page = render(&cmd);
    for (path, sub) in leaf_commands(&cmd) {
        assert!(page.contains(&format!("`surgstream {path}`")));
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(env) = arg.get_env() {
                assert!(page.contains(&format!("`{}`", env.to_string_lossy())));
            }
            if let Some(long) = arg.get_long() {
                assert!(page.contains(&format!("`--{long}")), "--{long}");
            }
        }
    }
}
