//! Progress of a simulation: a bar over simulated time on a terminal (frames, events, rate,
//! ETA), plain periodic log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::SimReport;

/// Reports progress; cheap to call for every record.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
    /// Length of the run in simulated ms, when it has one.
    length_ms: Option<u64>,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Progress over `length` of simulated time (None: a run until stopped): a bar when
    /// stderr is a terminal.
    pub(crate) fn new(length: Option<Duration>) -> Self {
        let length_ms = length.map(|l| l.as_millis().max(1) as u64);
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(length_ms, ProgressDrawTarget::stderr_with_hz(4));
            let template = match length_ms {
                Some(_) => {
                    "{elapsed_precise} [{bar:30}] {percent:>3}% sim time · {msg} · ETA {eta}"
                }
                None => "{elapsed_precise} {spinner} {msg}",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            started: now,
            last_log: now,
            length_ms,
        }
    }

    /// `simulated_ms` of the run are done; `behind` is how late the paced sender is.
    pub(crate) fn update(&mut self, report: &SimReport, simulated_ms: u64, behind: Duration) {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = report.frames as f64 / elapsed;
        let position = self.length_ms.map_or(simulated_ms, |l| simulated_ms.min(l));
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(format!(
                "{} frames · {} events · {rate:.0} frames/s",
                report.frames, report.events
            ));
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            tracing::info!(
                frames = report.frames,
                events = report.events,
                rate = format!("{rate:.0} frames/s"),
                done = self.length_ms.map_or_else(
                    || format!("{:.0}s simulated", position as f64 / 1e3),
                    |l| format!("{:.0}%", 100.0 * position as f64 / l as f64)
                ),
                behind_schedule = ?behind,
                "sim progress"
            );
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
