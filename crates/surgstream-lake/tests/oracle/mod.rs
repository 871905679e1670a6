//! The test oracle both value tests share (the lake crate's round-trip property and the
//! workspace's pyarrow end-to-end test): the data model's DECIMAL columns and what a sent double
//! must be stored as, written out from the data model and computed on the digits — never by the
//! lake's own code.

use surgstream_proto::v1::TelemetryFrame;

/// `procedure_telemetry`'s DECIMAL columns as the data model defines them: name,
/// DECIMAL(precision, scale). Written out here, not taken from the lake's schema code.
pub const DATA_MODEL_DECIMALS: [(&str, u8, u32); 13] = [
    ("arm_position_x", 10, 4),
    ("arm_position_y", 10, 4),
    ("arm_position_z", 10, 4),
    ("arm_rotation", 6, 2),
    ("grip_pressure", 6, 2),
    ("tremor_compensation", 5, 2),
    ("camera_zoom", 4, 2),
    ("camera_angle", 6, 2),
    ("force_feedback_x", 8, 4),
    ("force_feedback_y", 8, 4),
    ("force_feedback_z", 8, 4),
    ("system_temperature", 5, 2),
    ("power_consumption", 8, 2),
];

/// The field of a frame that holds DECIMAL column `column`.
pub fn decimal_slot<'a>(f: &'a mut TelemetryFrame, column: &str) -> &'a mut f64 {
    match column {
        "arm_position_x" => &mut f.arm_position_x,
        "arm_position_y" => &mut f.arm_position_y,
        "arm_position_z" => &mut f.arm_position_z,
        "arm_rotation" => &mut f.arm_rotation,
        "grip_pressure" => &mut f.grip_pressure,
        "tremor_compensation" => &mut f.tremor_compensation,
        "camera_zoom" => &mut f.camera_zoom,
        "camera_angle" => &mut f.camera_angle,
        "force_feedback_x" => &mut f.force_feedback_x,
        "force_feedback_y" => &mut f.force_feedback_y,
        "force_feedback_z" => &mut f.force_feedback_z,
        "system_temperature" => &mut f.system_temperature,
        "power_consumption" => &mut f.power_consumption,
        other => panic!("no DECIMAL column {other}"),
    }
}

/// The DECIMAL(_, scale) a double is stored as, as an unscaled integer: the decimal the double
/// stands for (its shortest representation that reads back as the same double, which is what
/// the sender wrote and what Rust prints) rounded half away from zero to `scale` digits — as
/// PostgreSQL casts a float8 to NUMERIC. Done on the digits, independently of the lake's code.
pub fn expected_unscaled(v: f64, scale: u32) -> i128 {
    let text = format!("{v}"); // Display: shortest round-trip digits, never an exponent
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac: Vec<u8> = frac.bytes().collect();
    frac.resize(scale as usize + 1, b'0');
    let kept: String = int
        .chars()
        .chain(frac[..scale as usize].iter().map(|&b| b as char))
        .collect();
    let mut n: i128 = kept.parse().expect("digits");
    // The first dropped digit decides: 5 and up (a tie or more) goes away from zero.
    if frac[scale as usize] >= b'5' {
        n += 1;
    }
    if negative { -n } else { n }
}
