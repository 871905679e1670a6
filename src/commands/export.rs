//! `surgstream export`: one procedure's case file, as JSON lines or as Parquet with a JSON
//! beside it.

use std::io::Write;

use anyhow::{Context, Result, bail};

use crate::cli::{ExportArgs, ExportFormat};
use crate::setup::{migrated_db, open_lake, warehouse};

pub async fn run(a: ExportArgs) -> Result<()> {
    let lake = open_lake(&a.lake)?;
    let store = migrated_db(&a.db, a.skip_migrate).await?;
    let wh = warehouse(&lake, &store, &a.group, 256 << 20, None)?;
    let case = wh.case_file(a.procedure).await?;
    match a.format {
        ExportFormat::Jsonl => match &a.output {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                case.write_jsonl(&mut out)?;
                out.flush()
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                case.write_jsonl(&mut out)?;
                out.flush().context("cannot write to standard output")?;
            }
        },
        ExportFormat::Parquet => {
            let Some(dir) = &a.output else {
                bail!("--format parquet writes a directory: give it with --output DIR");
            };
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let json = serde_json::to_vec_pretty(&case.relational_json())?;
            std::fs::write(dir.join("case.json"), json)
                .with_context(|| format!("cannot write {}/case.json", dir.display()))?;
            let bytes =
                surgstream_lake::compact::encode_compacted("telemetry.parquet", &case.frames)?;
            std::fs::write(dir.join("telemetry.parquet"), bytes)
                .with_context(|| format!("cannot write {}/telemetry.parquet", dir.display()))?;
        }
    }
    eprintln!(
        "export: procedure {}: {} status changes, {} outcome, {} frames",
        a.procedure,
        case.lifecycle.len(),
        if case.outcome.is_some() { "an" } else { "no" },
        case.frames.num_rows()
    );
    Ok(())
}
