//! Continuous signals for one procedure: smooth arm trajectories inside a workspace, tool
//! segments, contact force spikes, grip pressure tied to the tool, temperature rising with use,
//! power following motion.

use std::f64::consts::TAU;

use bytes::Bytes;
use rand::Rng;
use surgstream_proto::v1::TelemetryFrame;

/// sin and cos of `ωt + φ` on a fixed time grid, advanced one step by a rotation: four
/// multiplications per frame instead of a libm call (the generator's largest cost otherwise).
/// Deterministic, and the rounding drift over a million steps is far below the columns' scale.
#[derive(Debug, Clone, Copy)]
struct Osc {
    sin: f64,
    cos: f64,
    step_sin: f64,
    step_cos: f64,
    omega: f64,
}

impl Osc {
    /// Angular frequency `omega` (rad/s) and phase, starting at `t0` seconds, `step` apart.
    fn new(omega: f64, phase: f64, t0: f64, step: f64) -> Self {
        let (sin, cos) = (omega * t0 + phase).sin_cos();
        let (step_sin, step_cos) = (omega * step).sin_cos();
        Self {
            sin,
            cos,
            step_sin,
            step_cos,
            omega,
        }
    }

    fn advance(&mut self) {
        let sin = self.sin * self.step_cos + self.cos * self.step_sin;
        self.cos = self.cos * self.step_cos - self.sin * self.step_sin;
        self.sin = sin;
    }
}

/// Sum of two sinusoids per axis: smooth, bounded, different for every procedure.
#[derive(Debug)]
struct Axis {
    center: f64,
    amp: [f64; 2],
    osc: [Osc; 2],
}

impl Axis {
    fn new(rng: &mut impl Rng, center: f64, reach: f64, t0: f64, step: f64) -> Self {
        let amp = [
            reach * rng.random_range(0.3..0.6),
            reach * rng.random_range(0.05..0.2),
        ];
        let freq: [f64; 2] = [rng.random_range(0.01..0.05), rng.random_range(0.2..0.6)];
        let phase: [f64; 2] = [rng.random_range(0.0..TAU), rng.random_range(0.0..TAU)];
        Self {
            center,
            amp,
            osc: [
                Osc::new(TAU * freq[0], phase[0], t0, step),
                Osc::new(TAU * freq[1], phase[1], t0, step),
            ],
        }
    }

    fn at(&self) -> f64 {
        self.center + self.amp[0] * self.osc[0].sin + self.amp[1] * self.osc[1].sin
    }

    /// |d/dt| of the position, mm/s.
    fn speed(&self) -> f64 {
        (self.amp[0] * self.osc[0].omega * self.osc[0].cos
            + self.amp[1] * self.osc[1].omega * self.osc[1].cos)
            .abs()
    }

    fn advance(&mut self) {
        self.osc[0].advance();
        self.osc[1].advance();
    }
}

/// The state that makes one procedure's frames continuous.
#[derive(Debug)]
pub(crate) struct ProcedureSignals {
    axes: [Axis; 3],
    rotation: Axis,
    zoom: Axis,
    camera: Axis,
    /// Lateral force oscillations and grip variation.
    wobble: [Osc; 3],
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
    /// Signals sampled at `t0 + k × step` seconds after the start, k = 0, 1, 2, …: one
    /// [`ProcedureSignals::frame`] call per k, in order.
    pub(crate) fn new(
        rng: &mut impl Rng,
        tools: &'static [&'static str],
        complexity: f64,
        t0: f64,
        step: f64,
    ) -> Self {
        let centers = [
            rng.random_range(-50.0..50.0),
            rng.random_range(-50.0..50.0),
            rng.random_range(120.0..180.0),
        ];
        Self {
            axes: [
                Axis::new(rng, centers[0], 80.0, t0, step),
                Axis::new(rng, centers[1], 80.0, t0, step),
                Axis::new(rng, centers[2], 40.0, t0, step),
            ],
            rotation: Axis::new(rng, 0.0, 120.0, t0, step),
            zoom: Axis::new(rng, 2.2, 1.5, t0, step),
            camera: Axis::new(rng, 30.0, 25.0, t0, step),
            wobble: [
                Osc::new(3.0, 0.0, t0, step),
                Osc::new(2.0, 0.0, t0, step),
                Osc::new(0.7, 0.0, t0, step),
            ],
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
        let [x, y, z] = [self.axes[0].at(), self.axes[1].at(), self.axes[2].at()];
        let speed = self.axes.iter().map(Axis::speed).sum::<f64>();
        // Tissue contact below the contact depth: force rises with penetration.
        let penetration = (self.contact_depth - z).max(0.0);
        let jitter = |rng: &mut dyn rand::RngCore, s: f64| {
            (rng.next_u32() as f64 / u32::MAX as f64 - 0.5) * s
        };
        let fz = 0.8 * penetration + jitter(rng, 0.05);
        let fx = 0.1 * penetration * self.wobble[0].sin + jitter(rng, 0.05);
        let fy = 0.1 * penetration * self.wobble[1].cos + jitter(rng, 0.05);
        let tool = self.tools[self.tool];
        let grip = grip_for(tool) * (1.0 + 0.15 * self.wobble[2].sin) + jitter(rng, 0.1);
        let temperature = self.ambient + 9.0 * (1.0 - (-t / 1_800.0).exp()) + jitter(rng, 0.04);
        let power = 380.0 + 2.5 * speed + 6.0 * (fx.abs() + fy.abs() + fz.abs()) + jitter(rng, 2.0);
        let rotation = self.rotation.at();
        let (zoom, camera) = (self.zoom.at(), self.camera.at());
        for axis in self.axes.iter_mut() {
            axis.advance();
        }
        for axis in [&mut self.rotation, &mut self.zoom, &mut self.camera] {
            axis.advance();
        }
        for w in &mut self.wobble {
            w.advance();
        }
        TelemetryFrame {
            telemetry_id: Bytes::copy_from_slice(&telemetry_id),
            procedure_id,
            robot_id,
            seq,
            timestamp,
            arm_position_x: round(x, 4),
            arm_position_y: round(y, 4),
            arm_position_z: round(z, 4),
            arm_rotation: round(rotation.clamp(-180.0, 180.0), 2),
            tool_type: tool.to_owned(),
            grip_pressure: round(grip.max(0.0), 2),
            tremor_compensation: round((self.tremor + jitter(rng, 0.5)).clamp(0.0, 100.0), 2),
            camera_zoom: round(zoom.clamp(1.0, 10.0), 2),
            camera_angle: round(camera.clamp(0.0, 90.0), 2),
            force_feedback_x: round(fx, 4),
            force_feedback_y: round(fy, 4),
            force_feedback_z: round(fz, 4),
            system_temperature: round(temperature, 2),
            power_consumption: round(power, 2),
        }
    }
}

/// `v` rounded to `digits` decimals (the scale of the DECIMAL column it is sent for).
pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}
