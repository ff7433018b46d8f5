//! `mount-generator normal-dir [early-dir late-dir]`, per systemd.generator(7):
//! the verified image mounts and the containers' overlay roots of the
//! applied checkout. A thin main over `bbhv_generator::run_mounts`.

use std::path::PathBuf;
use std::process::ExitCode;

use bbhv_generator::{HostPaths, Log, MOUNT_GENERATOR};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let normal_dir = match args.as_slice() {
        [normal] | [normal, _, _] => normal.clone(),
        _ => {
            eprintln!("usage: {MOUNT_GENERATOR} NORMAL-DIR [EARLY-DIR LATE-DIR]");
            return ExitCode::from(2);
        }
    };
    let log = Log::open_as(MOUNT_GENERATOR);
    if bbhv_generator::run_mounts(&HostPaths::from_env(), &normal_dir, &log) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
