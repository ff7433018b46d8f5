//! `tenant-generator normal-dir [early-dir late-dir]`, per systemd.generator(7).
//!
//! A thin main over `bbhv_generator::run`: arguments, environment, exit
//! status. Synchronous, no D-Bus, no network: it runs at every boot and reload.

use std::path::PathBuf;
use std::process::ExitCode;

use bbhv_generator::{GENERATOR, HostPaths, Log};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let normal_dir = match args.as_slice() {
        [normal] | [normal, _, _] => normal.clone(),
        _ => {
            eprintln!("usage: {GENERATOR} NORMAL-DIR [EARLY-DIR LATE-DIR]");
            return ExitCode::from(2);
        }
    };
    let report = bbhv_generator::run(&HostPaths::from_env(), &normal_dir, &Log::open());
    if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
