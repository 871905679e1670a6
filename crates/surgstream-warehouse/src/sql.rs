//! The SQL files in `warehouse/`: the product. Each is one SELECT; the runner registers its
//! inputs under the names the file reads and stores its result under the table's name.

/// One SQL file and the table it builds.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub table: &'static str,
    pub file: &'static str,
    pub text: &'static str,
}

macro_rules! step {
    ($table:literal) => {
        Step {
            table: $table,
            file: concat!($table, ".sql"),
            text: include_str!(concat!("../../../warehouse/", $table, ".sql")),
        }
    };
}

/// The lake's telemetry, as the SQL files name it.
pub const TELEMETRY: &str = "procedure_telemetry";

pub const TELEMETRY_AGG: Step = step!("procedure_telemetry_agg");
pub const FACT_PROCEDURE: Step = step!("fact_procedure");
pub const FACT_MAINTENANCE: Step = step!("fact_maintenance");
pub const FACT_ROBOT_DAY: Step = step!("fact_robot_day");

/// The fact tables, in build order (fact_robot_day reads the other two).
pub const FACTS: [Step; 3] = [FACT_PROCEDURE, FACT_MAINTENANCE, FACT_ROBOT_DAY];

/// The dimension tables.
pub const DIMENSIONS: [Step; 4] = [
    step!("dim_date"),
    step!("dim_facility"),
    step!("dim_robot"),
    step!("dim_surgeon"),
];

/// Digest of every SQL file: part of each part's fingerprint, so that changed SQL rebuilds
/// the warehouse.
pub fn version() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for s in std::iter::once(TELEMETRY_AGG)
        .chain(FACTS)
        .chain(DIMENSIONS)
    {
        s.text.hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// FNV-1a 64: stable across builds and platforms (std's hasher is not promised to be).
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_changes_with_the_sql_and_only_with_it() {
        assert_eq!(version(), version());
        assert_eq!(version().len(), 16);
    }
}
