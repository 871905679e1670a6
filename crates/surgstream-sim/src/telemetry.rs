//! Continuous signals for one procedure: smooth arm trajectories inside a workspace, tool
//! segments, contact force spikes, grip pressure tied to the tool, temperature rising with use,
//! power following motion.

use std::f64::consts::TAU;

use bytes::Bytes;
use rand::Rng;
use surgstream_proto::v1::TelemetryFrame;

/// Sum of two sinusoids per axis: smooth, bounded, different for every procedure.
#[derive(Debug)]
struct Axis {
    center: f64,
    amp: [f64; 2],
    freq: [f64; 2],
    phase: [f64; 2],
}

impl Axis {
    fn new(rng: &mut impl Rng, center: f64, reach: f64) -> Self {
        Self {
            center,
            amp: [
                reach * rng.random_range(0.3..0.6),
                reach * rng.random_range(0.05..0.2),
            ],
            freq: [rng.random_range(0.01..0.05), rng.random_range(0.2..0.6)],
            phase: [rng.random_range(0.0..TAU), rng.random_range(0.0..TAU)],
        }
    }

    fn at(&self, t: f64) -> f64 {
        self.center
            + self.amp[0] * (TAU * self.freq[0] * t + self.phase[0]).sin()
            + self.amp[1] * (TAU * self.freq[1] * t + self.phase[1]).sin()
    }

    fn speed(&self, t: f64) -> f64 {
        (self.amp[0] * TAU * self.freq[0] * (TAU * self.freq[0] * t + self.phase[0]).cos()
            + self.amp[1] * TAU * self.freq[1] * (TAU * self.freq[1] * t + self.phase[1]).cos())
        .abs()
    }
}

/// The state that makes one procedure's frames continuous.
#[derive(Debug)]
pub(crate) struct ProcedureSignals {
    axes: [Axis; 3],
    rotation: Axis,
    zoom: Axis,
    camera: Axis,
    tools: &'static [&'static str],
    tool: usize,
    next_tool_change: f64,
    tremor: f64,
    contact_depth: f64,
    ambient: f64,
}

fn grip_for(tool: &str) -> f64 {
    match tool {
        "needle_driver" => 9.0,
        "stapler" => 28.0,
        "vessel_sealer" => 14.0,
        "clip_applier" => 11.0,
        "cadiere_forceps" | "fenestrated_bipolar_forceps" => 5.5,
        "monopolar_curved_scissors" => 3.0,
        "suction_irrigator" => 0.5,
        "bone_saw" | "burr" | "reamer" | "drill" => 2.0,
        _ => 1.0,
    }
}

impl ProcedureSignals {
    pub(crate) fn new(rng: &mut impl Rng, tools: &'static [&'static str], complexity: f64) -> Self {
        let centers = [
            rng.random_range(-50.0..50.0),
            rng.random_range(-50.0..50.0),
            rng.random_range(120.0..180.0),
        ];
        Self {
            axes: [
                Axis::new(rng, centers[0], 80.0),
                Axis::new(rng, centers[1], 80.0),
                Axis::new(rng, centers[2], 40.0),
            ],
            rotation: Axis::new(rng, 0.0, 120.0),
            zoom: Axis::new(rng, 2.2, 1.5),
            camera: Axis::new(rng, 30.0, 25.0),
            tools,
            tool: rng.random_range(0..tools.len()),
            next_tool_change: rng.random_range(60.0..600.0) / complexity,
            tremor: rng.random_range(70.0..95.0),
            contact_depth: rng.random_range(110.0..130.0),
            ambient: rng.random_range(30.0..34.0),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn frame(
        &mut self,
        rng: &mut impl Rng,
        t: f64,
        seq: u64,
        timestamp: i64,
        telemetry_id: [u8; 16],
        procedure_id: Bytes,
        robot_id: Bytes,
    ) -> TelemetryFrame {
        if t >= self.next_tool_change {
            self.tool =
                (self.tool + rng.random_range(1..self.tools.len().max(2))) % self.tools.len();
            self.next_tool_change = t + rng.random_range(30.0..600.0);
        }
        let [x, y, z] = [self.axes[0].at(t), self.axes[1].at(t), self.axes[2].at(t)];
        let speed = self.axes.iter().map(|a| a.speed(t)).sum::<f64>();
        // Tissue contact below the contact depth: force rises with penetration.
        let penetration = (self.contact_depth - z).max(0.0);
        let jitter = |rng: &mut dyn rand::RngCore, s: f64| {
            (rng.next_u32() as f64 / u32::MAX as f64 - 0.5) * s
        };
        let fz = 0.8 * penetration + jitter(rng, 0.05);
        let fx = 0.1 * penetration * (t * 3.0).sin() + jitter(rng, 0.05);
        let fy = 0.1 * penetration * (t * 2.0).cos() + jitter(rng, 0.05);
        let tool = self.tools[self.tool];
        let grip = grip_for(tool) * (1.0 + 0.15 * (t * 0.7).sin()) + jitter(rng, 0.1);
        let temperature = self.ambient + 9.0 * (1.0 - (-t / 1_800.0).exp()) + jitter(rng, 0.04);
        let power = 380.0 + 2.5 * speed + 6.0 * (fx.abs() + fy.abs() + fz.abs()) + jitter(rng, 2.0);
        TelemetryFrame {
            telemetry_id: Bytes::copy_from_slice(&telemetry_id),
            procedure_id,
            robot_id,
            seq,
            timestamp,
            arm_position_x: round(x, 4),
            arm_position_y: round(y, 4),
            arm_position_z: round(z, 4),
            arm_rotation: round(self.rotation.at(t).clamp(-180.0, 180.0), 2),
            tool_type: tool.to_owned(),
            grip_pressure: round(grip.max(0.0), 2),
            tremor_compensation: round((self.tremor + jitter(rng, 0.5)).clamp(0.0, 100.0), 2),
            camera_zoom: round(self.zoom.at(t).clamp(1.0, 10.0), 2),
            camera_angle: round(self.camera.at(t).clamp(0.0, 90.0), 2),
            force_feedback_x: round(fx, 4),
            force_feedback_y: round(fy, 4),
            force_feedback_z: round(fz, 4),
            system_temperature: round(temperature, 2),
            power_consumption: round(power, 2),
        }
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}
