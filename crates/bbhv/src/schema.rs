//! `bbhv schema [--check FILE]`: the JSON Schema generated from the types.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instead of printing, fail when FILE differs from the generated schema.
    #[arg(long)]
    check: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let schema = bbhv_spec::schema::metadata_schema_text();
    let Some(file) = args.check else {
        print!("{schema}");
        return Ok(ExitCode::SUCCESS);
    };
    let on_disk =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    if on_disk == schema {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} is stale: run `bbhv schema > {}`",
            file.display(),
            file.display()
        );
        Ok(ExitCode::FAILURE)
    }
}
