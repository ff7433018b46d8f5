//! `bbhv manuals`: the man pages (clap_mangen) and shell completions
//! (clap_complete) generated from this very command line, so they cannot drift
//! from it. Hidden: `make install` and `scripts/package` run it at build time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write bbhv.1 and one bbhv-VERB.1 per verb here (uncompressed roff).
    #[arg(long, value_name = "DIR")]
    man: Option<PathBuf>,
    /// Write the bash, zsh and fish completions below this data directory
    /// (/usr/share on Debian), where each shell looks for them:
    /// bash-completion/completions/bbhv, zsh/vendor-completions/_bbhv,
    /// fish/vendor_completions.d/bbhv.fish.
    #[arg(long, value_name = "DATADIR")]
    completions: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.man.is_none() && args.completions.is_none() {
        anyhow::bail!("nothing to do: give --man DIR, --completions DIR or both");
    }
    if let Some(dir) = &args.man {
        create(dir)?;
        let mut command = crate::Cli::command().disable_help_subcommand(true);
        command.build();
        write_pages(&command, dir)?;
    }
    if let Some(datadir) = &args.completions {
        for (shell, file) in [
            (Shell::Bash, "bash-completion/completions/bbhv"),
            (Shell::Zsh, "zsh/vendor-completions/_bbhv"),
            (Shell::Fish, "fish/vendor_completions.d/bbhv.fish"),
        ] {
            let path = datadir.join(file);
            create(path.parent().expect("a relative path with a directory"))?;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::Cli::command(), "bbhv", &mut script);
            std::fs::write(&path, script)
                .with_context(|| format!("writing the {shell} completion {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// clap_mangen's own `generate_to`, with the program and version in every
/// page's footer (a verb's page would otherwise say only "status").
fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    clap_mangen::Man::new(command.clone())
        .source(concat!("bbhv ", env!("CARGO_PKG_VERSION")))
        .manual("BitBuilder Hypervisor")
        .generate_to(dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(())
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}
