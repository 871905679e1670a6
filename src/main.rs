//! `surgstream`: the one binary. Parses options, wires the crates together, prints one-line errors.

/// `println!` that ignores a closed stdout (`surgstream … | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod cli;
mod commands;
#[cfg(test)]
mod configuration;
#[cfg(test)]
mod deploy_checks;
mod http;
mod setup;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

fn main() -> ExitCode {
    http::note_process_start();
    let args = cli::Args::parse();
    let format = args.log_format;
    setup::init_logging(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return failed(
                format,
                &anyhow::Error::new(e).context("cannot start the async runtime"),
            );
        }
    };
    let (result, interrupted) = runtime.block_on(run_until_stopped(args));
    // Left over: the endpoint, a probe, and after a stop during start-up a broker or database
    // call that is still waiting out its own timeout. Not worth waiting for then; otherwise a
    // few seconds let a last probe release the consumer, which then leaves its group in order.
    runtime.shutdown_timeout(if interrupted {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(format, &e),
    }
}

/// The command, ended at once by a stop request (SIGTERM, Ctrl-C) that comes during its
/// start-up: a service (ingest, sim, demo) then exits cleanly, having consumed and sent nothing
/// yet; any other command fails, since it did not do its job. After the start-up the command
/// handles the request itself (the ingestor flushes and commits). Also whether it was ended so.
async fn run_until_stopped(args: cli::Args) -> (anyhow::Result<()>, bool) {
    use cli::Command;
    // Before the command connects to anything.
    setup::listen_for_stop_signals();
    let service = matches!(
        args.command,
        Command::Ingest(_) | Command::Sim(_) | Command::Demo(_)
    );
    tokio::select! {
        result = run(args) => (result, false),
        () = setup::stopped_during_start_up() => {
            let result = if service {
                tracing::info!("stop requested during start-up: exiting before anything was consumed or sent");
                Ok(())
            } else {
                Err(anyhow::anyhow!("interrupted by a stop request (SIGTERM or Ctrl-C)"))
            };
            (result, true)
        }
    }
}

/// Reports a fatal error: one `error: …` line for a person (the human log format), an error
/// event for a log collector (JSON).
fn failed(format: cli::LogFormat, e: &anyhow::Error) -> ExitCode {
    let line = one_line(e);
    match format {
        cli::LogFormat::Human => eprintln!("error: {line}"),
        cli::LogFormat::Json => tracing::error!(error = %line, "surgstream failed"),
    }
    ExitCode::FAILURE
}

/// The command `args` names, run to its end.
async fn run(args: cli::Args) -> anyhow::Result<()> {
    use cli::Command;
    match args.command {
        Command::Sim(a) => commands::sim::run(a).await,
        Command::Ingest(a) => commands::ingest::run(a).await,
        Command::Demo(a) => commands::demo::run(a).await,
        Command::Migrate(a) => commands::migrate::run(a).await,
        Command::CreateTopics(a) => commands::create_topics::run(a).await,
        Command::Verify(a) => commands::verify::run(a).await,
        Command::Sweep(a) => commands::sweep::run(a).await,
        Command::Compact(a) => commands::compact::run(a).await,
        Command::Bench(a) => commands::bench::run(a).await,
        Command::Warehouse(a) => commands::warehouse::run(a).await,
        Command::Export(a) => commands::export::run(a).await,
        Command::Replay(a) => commands::replay::run(a).await,
        Command::Iceberg(a) => commands::iceberg::run(a).await,
        Command::Archive(a) => commands::archive::run(a).await,
        Command::Restore(a) => commands::archive::restore(a).await,
        Command::AuthToken(a) => commands::auth_token::run(a).await,
    }
}

/// The error and its causes on one line, leaving out a cause whose text the line already holds
/// (many errors repeat their source in their own message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
