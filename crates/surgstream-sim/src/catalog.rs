//! What exists in the world the simulator draws from: robot models and what they do,
//! procedure types and their categories, tools, names.

/// A robot model, its manufacturer, and the procedure types it performs.
#[derive(Debug)]
pub struct RobotModel {
    /// Model name as on the data model's `robot_model`.
    pub model: &'static str,
    /// Manufacturer of that model.
    pub manufacturer: &'static str,
    /// Serial number prefix.
    pub serial_prefix: &'static str,
    /// Indices into [`PROCEDURES`] this model performs.
    pub procedures: &'static [usize],
    /// Tools this model's arms carry.
    pub tools: &'static [&'static str],
    /// Firmware line, e.g. "4.2": versions are `<line>.<patch>`.
    pub firmware_line: &'static str,
}

/// A procedure type, its category, who it applies to and how long it takes.
#[derive(Debug)]
pub struct ProcedureKind {
    /// `procedure_type`.
    pub procedure_type: &'static str,
    /// `procedure_category`.
    pub category: &'static str,
    /// Sex of the patient when the anatomy dictates it.
    pub sex: Option<&'static str>,
    /// Median duration in minutes (durations are log-normal around it).
    pub median_minutes: f64,
    /// Mean patient age in years (ages are normal around it).
    pub mean_age: f64,
}

/// Procedure types. Indices are referenced by [`MODELS`].
pub const PROCEDURES: &[ProcedureKind] = &[
    ProcedureKind {
        procedure_type: "Radical Prostatectomy",
        category: "urological",
        sex: Some("male"),
        median_minutes: 120.0,
        mean_age: 63.0,
    },
    ProcedureKind {
        procedure_type: "Partial Nephrectomy",
        category: "urological",
        sex: None,
        median_minutes: 150.0,
        mean_age: 60.0,
    },
    ProcedureKind {
        procedure_type: "Hysterectomy",
        category: "gynecological",
        sex: Some("female"),
        median_minutes: 135.0,
        mean_age: 48.0,
    },
    ProcedureKind {
        procedure_type: "Myomectomy",
        category: "gynecological",
        sex: Some("female"),
        median_minutes: 140.0,
        mean_age: 38.0,
    },
    ProcedureKind {
        procedure_type: "Cholecystectomy",
        category: "general",
        sex: None,
        median_minutes: 70.0,
        mean_age: 50.0,
    },
    ProcedureKind {
        procedure_type: "Inguinal Hernia Repair",
        category: "general",
        sex: None,
        median_minutes: 80.0,
        mean_age: 55.0,
    },
    ProcedureKind {
        procedure_type: "Colectomy",
        category: "colorectal",
        sex: None,
        median_minutes: 180.0,
        mean_age: 64.0,
    },
    ProcedureKind {
        procedure_type: "Lobectomy",
        category: "thoracic",
        sex: None,
        median_minutes: 170.0,
        mean_age: 66.0,
    },
    ProcedureKind {
        procedure_type: "Mitral Valve Repair",
        category: "cardiac",
        sex: None,
        median_minutes: 210.0,
        mean_age: 62.0,
    },
    ProcedureKind {
        procedure_type: "Total Knee Arthroplasty",
        category: "orthopedic",
        sex: None,
        median_minutes: 95.0,
        mean_age: 68.0,
    },
    ProcedureKind {
        procedure_type: "Total Hip Arthroplasty",
        category: "orthopedic",
        sex: None,
        median_minutes: 90.0,
        mean_age: 67.0,
    },
    ProcedureKind {
        procedure_type: "Stereotactic Biopsy",
        category: "neurological",
        sex: None,
        median_minutes: 75.0,
        mean_age: 57.0,
    },
    ProcedureKind {
        procedure_type: "Deep Brain Stimulation",
        category: "neurological",
        sex: None,
        median_minutes: 240.0,
        mean_age: 61.0,
    },
];

const SOFT_TISSUE_TOOLS: &[&str] = &[
    "needle_driver",
    "monopolar_curved_scissors",
    "fenestrated_bipolar_forceps",
    "cadiere_forceps",
    "vessel_sealer",
    "clip_applier",
    "suction_irrigator",
    "stapler",
];
const ORTHO_TOOLS: &[&str] = &[
    "bone_saw",
    "burr",
    "reamer",
    "cutting_guide",
    "tracking_probe",
];
const NEURO_TOOLS: &[&str] = &[
    "trajectory_guide",
    "biopsy_needle",
    "drill",
    "electrode_inserter",
];

/// Robot models on the market, with what they are cleared for.
pub const MODELS: &[RobotModel] = &[
    RobotModel {
        model: "da Vinci Xi",
        manufacturer: "Intuitive Surgical",
        serial_prefix: "SK",
        procedures: &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        tools: SOFT_TISSUE_TOOLS,
        firmware_line: "10.2",
    },
    RobotModel {
        model: "da Vinci X",
        manufacturer: "Intuitive Surgical",
        serial_prefix: "SX",
        procedures: &[0, 2, 4, 5],
        tools: SOFT_TISSUE_TOOLS,
        firmware_line: "9.6",
    },
    RobotModel {
        model: "da Vinci SP",
        manufacturer: "Intuitive Surgical",
        serial_prefix: "SP",
        procedures: &[0, 1, 5],
        tools: SOFT_TISSUE_TOOLS,
        firmware_line: "3.4",
    },
    RobotModel {
        model: "Versius",
        manufacturer: "CMR Surgical",
        serial_prefix: "CMR",
        procedures: &[2, 3, 4, 5, 6],
        tools: SOFT_TISSUE_TOOLS,
        firmware_line: "2.1",
    },
    RobotModel {
        model: "Hugo RAS",
        manufacturer: "Medtronic",
        serial_prefix: "HRAS",
        procedures: &[0, 1, 2, 4],
        tools: SOFT_TISSUE_TOOLS,
        firmware_line: "1.8",
    },
    RobotModel {
        model: "Mako",
        manufacturer: "Stryker",
        serial_prefix: "MKO",
        procedures: &[9, 10],
        tools: ORTHO_TOOLS,
        firmware_line: "4.0",
    },
    RobotModel {
        model: "ROSA Knee",
        manufacturer: "Zimmer Biomet",
        serial_prefix: "RK",
        procedures: &[9],
        tools: ORTHO_TOOLS,
        firmware_line: "1.3",
    },
    RobotModel {
        model: "ROSA ONE Brain",
        manufacturer: "Zimmer Biomet",
        serial_prefix: "RB",
        procedures: &[11, 12],
        tools: NEURO_TOOLS,
        firmware_line: "3.1",
    },
];

/// Relative frequency of each model in a fleet (index-aligned with [`MODELS`]).
pub const MODEL_WEIGHTS: &[f64] = &[40.0, 12.0, 5.0, 10.0, 8.0, 12.0, 6.0, 7.0];

/// Hospitals the fleet is installed in.
pub const FACILITIES: &[&str] = &[
    "St. Mary's Medical Center",
    "Riverside University Hospital",
    "Northgate General Hospital",
    "Lakeview Regional Medical Center",
    "Mercy Heart & Vascular Institute",
    "Cedar Valley Hospital",
    "Harborview Surgical Center",
    "Summit Health Academic Hospital",
    "Westbrook Children's & Adult Hospital",
    "Pinecrest Orthopedic Institute",
];

/// Given names for surgeons and technicians.
pub const GIVEN_NAMES: &[&str] = &[
    "Amara", "Ben", "Chen", "Diego", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
    "Liam", "Mei", "Noah", "Olga", "Priya", "Rafael", "Sofia", "Tomas", "Yara",
];

/// Family names for surgeons and technicians.
pub const FAMILY_NAMES: &[&str] = &[
    "Okafor",
    "Schmidt",
    "Nakamura",
    "Rossi",
    "Haddad",
    "Kowalski",
    "Fernandes",
    "Lindqvist",
    "Osei",
    "Moreau",
    "Patel",
    "Novak",
    "Alvarez",
    "Kim",
    "O'Brien",
    "Svensson",
];
