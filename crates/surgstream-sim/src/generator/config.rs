//! What to simulate: [`SimConfig`] and its [`Profile`], the check that its options make sense
//! ([`SimError`] when they do not) and the digest that turns the options into the fleet's seed.
//! Separate from the generator because it is the crate's input surface: it decides nothing about
//! how records are made, and the CLI reads it without touching the rest.

use std::time::Duration;

/// Which kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The data model's sample volumes over a past window, as a backfill: 50 robots in 10
    /// facilities, 5,000 procedures over two years, 100 telemetry samples per procedure, 200
    /// maintenance logs (times `scale`).
    Seed,
    /// Operating rooms streaming now, in wall-clock time, at `hz` per procedure.
    Live,
}

/// What to simulate. [`SimConfig::seed`] and [`SimConfig::live`] give each profile's defaults.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Which kind of run.
    pub profile: Profile,
    /// Robots in the fleet.
    pub robots: u32,
    /// Facilities the robots are spread over (round-robin).
    pub facilities: u32,
    /// Seed: procedures in the window. Live: at most this many in the run (None: no limit).
    pub procedures: Option<u32>,
    /// Seed: maintenance logs in the window. Live: unused (each robot brings its history, and
    /// emergencies follow aborted procedures).
    pub maintenance: u32,
    /// Seed: telemetry samples per procedure, evenly spaced, in one record.
    pub samples: u32,
    /// Live: telemetry frames per second of procedure time.
    pub hz: u32,
    /// Live: how much faster than real time procedures, turnovers and repairs run (telemetry
    /// stays at `hz` in wall-clock time).
    pub speed: f64,
    /// Seed of every random choice: the same seed and options give the same records.
    pub seed: u64,
    /// Seed: the window's length (whole days). Live: the run's length (None: until stopped);
    /// procedures still running at its end stay in progress, as when a real feed stops.
    pub duration: Option<Duration>,
    /// Live: frames of one procedure that fall in one such interval travel in one record.
    pub batch_interval: Duration,
    /// Start of the run, microseconds since the Unix epoch (UTC). Seed: the window's first day.
    pub start_micros: i64,
}

impl SimConfig {
    /// Days in the seed profile's default window.
    pub const SEED_DAYS: u64 = 730;

    /// The seed profile with the data model's volumes times `scale`, over the two years before
    /// `start_micros + 730 days`.
    pub fn seed(scale: f64, seed: u64, start_micros: i64) -> Self {
        let times = |n: f64| (n * scale).round().max(1.0) as u32;
        Self {
            profile: Profile::Seed,
            robots: times(50.0),
            facilities: times(10.0),
            procedures: Some(times(5_000.0)),
            maintenance: times(200.0),
            samples: 100,
            hz: 100,
            speed: 1.0,
            seed,
            duration: Some(Duration::from_secs(Self::SEED_DAYS * 86_400)),
            batch_interval: Duration::from_millis(100),
            start_micros,
        }
    }

    /// The live profile: `robots` operating rooms at 100 Hz, in real time, until stopped.
    pub fn live(robots: u32, seed: u64, start_micros: i64) -> Self {
        Self {
            profile: Profile::Live,
            robots,
            facilities: robots.div_ceil(5).max(1),
            procedures: None,
            maintenance: 0,
            samples: 100,
            hz: 100,
            speed: 1.0,
            seed,
            duration: None,
            batch_interval: Duration::from_millis(100),
            start_micros,
        }
    }

    /// A digest of every option, mixed into the seed: the same seed with other options gives
    /// another fleet (other ids, serials), so two runs never collide in one database.
    pub(super) fn digest(&self) -> u64 {
        let fields = [
            self.profile as u64,
            u64::from(self.robots),
            u64::from(self.facilities),
            self.procedures.map_or(u64::MAX, u64::from),
            u64::from(self.maintenance),
            u64::from(self.samples),
            u64::from(self.hz),
            self.speed.to_bits(),
            self.duration.map_or(u64::MAX, |d| d.as_micros() as u64),
            self.batch_interval.as_micros() as u64,
            self.start_micros as u64,
        ];
        fields
            .iter()
            .fold(splitmix(self.seed), |h, f| splitmix(h ^ f))
    }
}

impl std::fmt::Display for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.profile {
            Profile::Seed => write!(
                f,
                "seed profile: {} robots in {} facilities, {} procedures over {} days with {} telemetry samples each, {} maintenance logs",
                self.robots,
                self.facilities,
                self.procedures.unwrap_or(0),
                window_days(self),
                self.samples,
                self.maintenance
            ),
            Profile::Live => {
                write!(
                    f,
                    "live profile: {} operating rooms in {} facilities at {} Hz, {}x real time",
                    self.robots, self.facilities, self.hz, self.speed
                )?;
                if let Some(n) = self.procedures {
                    write!(f, ", at most {n} procedures")?;
                }
                match self.duration {
                    Some(d) => write!(f, ", for {:.0}s", d.as_secs_f64()),
                    None => write!(f, ", until stopped"),
                }
            }
        }
    }
}

pub(super) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why a simulation cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An option value that makes no sense.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name, as on the command line.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

pub(super) fn window_days(cfg: &SimConfig) -> i32 {
    cfg.duration
        .map_or(0, |d| (d.as_secs() / 86_400).min(100_000) as i32)
}

pub(super) fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |option, reason: &str| {
        Err(SimError::InvalidOption {
            option,
            reason: reason.to_owned(),
        })
    };
    if cfg.robots == 0 || cfg.robots > 1_000_000 {
        return bad("--robots", "must be between 1 and 1000000");
    }
    if cfg.facilities == 0 || cfg.facilities > cfg.robots {
        return bad(
            "--scale",
            "gives no facility, or more facilities than robots",
        );
    }
    if cfg.hz == 0 || cfg.hz > 10_000 {
        return bad("--hz", "must be between 1 and 10000 frames per second");
    }
    if cfg.samples == 0 || cfg.samples > 1_000_000 {
        return bad("--samples", "must be between 1 and 1000000 per procedure");
    }
    if !(cfg.speed.is_finite() && (1.0..=1_000_000.0).contains(&cfg.speed)) {
        return bad("--speed", "must be between 1 and 1000000");
    }
    if cfg.batch_interval.is_zero() {
        return bad("--batch-interval", "must be greater than zero");
    }
    match cfg.profile {
        Profile::Seed => {
            if window_days(cfg) < 7 {
                return bad(
                    "--duration",
                    "the seed profile's window must be at least 7 days",
                );
            }
            if cfg.procedures.is_none() {
                return bad("--procedures", "the seed profile needs a procedure count");
            }
        }
        Profile::Live => {
            if cfg.duration.is_some_and(|d| d < Duration::from_secs(1)) {
                return bad("--duration", "must be at least 1s");
            }
        }
    }
    Ok(())
}
