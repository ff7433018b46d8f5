//! `bbhv rollback [--to GEN]`: go back to an earlier generation, offline.
//! The commit left is remembered, so the timer does not apply it again
//! until the branch moves.

use std::process::ExitCode;

use crate::sync::{HostEffects, context, finish};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The generation to go back to: its sequence number, its name
    /// (`SEQ-COMMIT`) or a commit prefix (7+ characters), as `bbhv history`
    /// shows them. Default: `previous`.
    #[arg(long)]
    to: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let effects = match HostEffects::connect() {
        Ok(effects) => effects,
        Err(e) => return Ok(finish(Err(e), args.json)),
    };
    let sync = context(&effects);
    let result = sync
        .lock()
        .and_then(|_lock| sync.rollback(args.to.as_deref()));
    // A rollback the operator asked for that went through is a success.
    let code = matches!(result, Ok(bbhv_gitops::sync::Done::RolledBack { .. }));
    let exit = finish(result, args.json);
    Ok(if code { ExitCode::SUCCESS } else { exit })
}
