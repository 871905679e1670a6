//! Building the fleet before anything happens: facilities and their surgeons, robots (model,
//! installation, serial number, retirement), people's names and the ids every record carries.
//! Separate because it runs once, up front, from the fleet's own random stream; the timelines
//! only read what it built.

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use surgstream_proto::time::{MICROS_PER_HOUR, MICROS_PER_SECOND, day_of};

use super::config::{Profile, SimConfig, window_days};
use crate::catalog::{FACILITIES, FAMILY_NAMES, GIVEN_NAMES, MODEL_WEIGHTS};
use crate::plan::{Facility, RobotSpec, midnight};

/// Picks an index with probability proportional to its weight.
fn weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn person(rng: &mut impl Rng, title: &str) -> String {
    let given = GIVEN_NAMES[rng.random_range(0..GIVEN_NAMES.len())];
    let family = FAMILY_NAMES[rng.random_range(0..FAMILY_NAMES.len())];
    format!("{title}{given} {family}")
}

pub(super) fn uuid(rng: &mut impl Rng) -> [u8; 16] {
    *uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .as_bytes()
}

pub(super) fn b(id: [u8; 16]) -> Bytes {
    Bytes::copy_from_slice(&id)
}

/// Facilities and their surgeons (4 to 8 each).
pub(super) fn facilities(rng: &mut ChaCha8Rng, count: usize) -> Vec<Facility> {
    (0..count)
        .map(|f| {
            let base = FACILITIES[f % FACILITIES.len()];
            let name = match f / FACILITIES.len() {
                0 => base.to_owned(),
                n => format!("{base} — Campus {}", n + 1),
            };
            let surgeons = (0..rng.random_range(4..=8))
                .map(|k| {
                    (
                        format!("SURG-{:03}-{:03}", f + 1, k + 1),
                        person(rng, "Dr. "),
                    )
                })
                .collect();
            Facility {
                id: format!("FAC-{:03}", f + 1),
                name,
                surgeons,
            }
        })
        .collect()
}

/// The fleet: models by market share, installation dates, a few robots installed or retired
/// inside a seed window.
pub(super) fn robots(
    cfg: &SimConfig,
    fleet: &mut ChaCha8Rng,
    rngs: &mut [ChaCha8Rng],
) -> Vec<RobotSpec> {
    let start_day = day_of(cfg.start_micros);
    let days = window_days(cfg);
    let n = cfg.robots as usize;
    // Serial numbers: the robot's index spread over 0..10^6 by a multiplier prime to 10^6, so
    // no two robots of a fleet (at most a million) share one.
    let serial_offset: u64 = fleet.random_range(0..1_000_000);
    let mut specs: Vec<RobotSpec> = (0..n)
        .map(|i| {
            let rng = &mut rngs[i];
            let model = weighted(fleet, MODEL_WEIGHTS);
            let (installed, registered_at) = match cfg.profile {
                Profile::Seed if rng.random_bool(crate::plan::INSTALLED_IN_WINDOW) => {
                    let day = start_day + rng.random_range(0..(days * 3 / 4).max(1));
                    (day, midnight(day) + 9 * MICROS_PER_HOUR + i as i64)
                }
                Profile::Seed => (
                    start_day - rng.random_range(60..2_200),
                    cfg.start_micros + i as i64 * MICROS_PER_SECOND,
                ),
                Profile::Live => (
                    start_day - rng.random_range(60..2_200),
                    cfg.start_micros + i as i64,
                ),
            };
            RobotSpec {
                id: uuid(rng),
                model,
                facility: i % cfg.facilities as usize,
                installed,
                registered_at,
                firmware_patch: rng.random_range(0..4),
                serial: ((i as u64 * 7_919 + serial_offset) % 1_000_000) as u32,
                retired: None,
            }
        })
        .collect();
    if cfg.profile == Profile::Seed {
        // The oldest systems are the ones decommissioned, in the last quarter of the window.
        let retire = (n as f64 * crate::plan::RETIRED_IN_WINDOW).round() as usize;
        let mut by_age: Vec<usize> = (0..n).collect();
        by_age.sort_by_key(|&i| (specs[i].installed, i));
        for &i in by_age.iter().take(retire) {
            let day = start_day + days * 3 / 4 + fleet.random_range(0..(days / 4 - 7).max(1));
            specs[i].retired = Some(day);
        }
    }
    specs
}
