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
    /// Write the man pages below this directory (uncompressed roff):
    /// man1/bbhv.1 and one man1/bbhv-VERB.1 per verb, man8/tenant-generator.8
    /// and man8/mount-generator.8.
    #[arg(long, value_name = "MANDIR")]
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
        anyhow::bail!("nothing to do: give --man MANDIR, --completions DATADIR or both");
    }
    if let Some(mandir) = &args.man {
        let man1 = mandir.join("man1");
        create(&man1)?;
        let mut command = crate::Cli::command().disable_help_subcommand(true);
        command.build();
        write_pages(&command, &man1)?;
        let man8 = mandir.join("man8");
        create(&man8)?;
        for generator in GENERATORS {
            let path = man8.join(format!("{}.8", generator.name));
            std::fs::write(&path, generator.page())
                .with_context(|| format!("writing {}", path.display()))?;
        }
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

/// A generator's manual: what clap_mangen makes of its two usage lines,
/// plus the environment and the files it reads and writes.
struct GeneratorPage {
    name: &'static str,
    about: &'static str,
    description: &'static str,
    environment: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static str)],
}

const COMMON_ENVIRONMENT: [(&str, &str); 5] = [
    (
        "BITBUILDER_STATE_DIR",
        "Where current, previous and generations/ are (default /var/lib/bitbuilder).",
    ),
    (
        "BITBUILDER_CURRENT",
        "The applied checkout to read (default $BITBUILDER_STATE_DIR/current).",
    ),
    (
        "BITBUILDER_HOST_CONFIG",
        "The host's settings (default /etc/bitbuilder/host.toml).",
    ),
    (
        "BITBUILDER_RUN_DIR",
        "The lock and the report (default /run/bitbuilder).",
    ),
    (
        "BITBUILDER_LOCK_WAIT_MS",
        "How long to wait for the lock a sync holds while it flips current (default 10000).",
    ),
];

const GENERATORS: [GeneratorPage; 2] = [
    GeneratorPage {
        name: "tenant-generator",
        about: "the units of every tenant of the applied checkout",
        description: "A systemd generator (systemd.generator(7)): at every boot and daemon-reload it reads the applied checkout of the tenant repository, checks every tenant against the schema and the fleet, and writes per tenant its slice tenants-BUCKET-ID.slice with the resource limits, tenant@ID.service, and, when enabled, the link that starts it with tenants.target; the units of its containers (systemd-nspawn@TENANT.NAME.service) and VMs (tenant-vm@TENANT_VM.service); tenant-network@ID.service and the systemd-networkd files of its bridge, VLAN and WireGuard link. A tenant that fails a check is skipped and reported; the others are written. Every generated file names its source file and commit. The report is in the journal and in /run/bitbuilder/generator-report.json (bbhv report).",
        environment: &[
            (
                "BITBUILDER_NETWORK_DIR",
                "Where the networkd files go (default /run/systemd/network).",
            ),
            (
                "BITBUILDER_NSPAWN_DIR",
                "Where the .nspawn files go (default /run/systemd/nspawn).",
            ),
        ],
        files: &[
            (
                "/var/lib/bitbuilder/current",
                "The applied checkout (a link to generations/SEQ-COMMIT/).",
            ),
            ("/etc/bitbuilder/host.toml", "The host's settings."),
            (
                "/run/bitbuilder/generator-report.json",
                "What the last run wrote and skipped, and why.",
            ),
            (
                "/run/systemd/network/bbhv-*",
                "The tenants' networkd files (only those names; others are left alone).",
            ),
            ("/run/systemd/nspawn/*.nspawn", "The containers' settings."),
        ],
    },
    GeneratorPage {
        name: "mount-generator",
        about: "the image mounts and container roots of the applied checkout",
        description: "A systemd generator (systemd.generator(7)): at every boot and daemon-reload it writes the mount units of the applied checkout: each verified image under /var/lib/bitbuilder/images, the overlay root of each container (the image, the tenant's extensions and a per-tenant upper directory), and the state file system of each tenant with a storageQuota. It reads the same checkout as tenant-generator and skips what that skips.",
        environment: &[
            (
                "BITBUILDER_IMAGES_DIR",
                "Where images are stored and mounted (default /var/lib/bitbuilder/images).",
            ),
            (
                "BITBUILDER_TENANTS_DIR",
                "The tenants' state (default /var/lib/tenants).",
            ),
            (
                "BITBUILDER_STORAGE_DIR",
                "The storageQuota image files (default /var/lib/bitbuilder/storage).",
            ),
        ],
        files: &[
            (
                "/var/lib/bitbuilder/current",
                "The applied checkout (a link to generations/SEQ-COMMIT/).",
            ),
            (
                "/var/lib/tenants/ID/",
                "A tenant's state: the containers' upper and work directories.",
            ),
        ],
    },
];

impl GeneratorPage {
    fn page(&self) -> Vec<u8> {
        let command = clap::Command::new(self.name)
            .about(self.about)
            .long_about(self.description)
            .disable_help_flag(true)
            .arg(
                clap::Arg::new("normal-dir")
                    .value_name("NORMAL-DIR")
                    .required(true)
                    .help("Where the units go (systemd passes /run/systemd/generator)"),
            )
            .arg(
                clap::Arg::new("early-dir")
                    .value_name("EARLY-DIR")
                    .help("Passed by systemd; not written"),
            )
            .arg(
                clap::Arg::new("late-dir")
                    .value_name("LATE-DIR")
                    .help("Passed by systemd; not written"),
            );
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .section("8")
            .source(concat!("bbhv ", env!("CARGO_PKG_VERSION")))
            .manual("BitBuilder Hypervisor")
            .render(&mut page)
            .expect("rendering into memory");
        let mut extra = String::from(
            ".SH \"EXIT STATUS\"\n0 when everything was written, 1 when something was skipped or the run failed, 2 on wrong arguments.\n.SH ENVIRONMENT\n",
        );
        for (name, what) in COMMON_ENVIRONMENT.iter().chain(self.environment) {
            extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(what)));
        }
        extra.push_str(".SH FILES\n");
        for (path, what) in self.files {
            extra.push_str(&format!(".TP\n\\fI{}\\fR\n{}\n", roff(path), roff(what)));
        }
        extra.push_str(".SH \"SEE ALSO\"\n\\fBbbhv\\fR(1), \\fBbbhv\\-report\\fR(1), \\fBsystemd.generator\\fR(7), \\fBsystemd.slice\\fR(5), \\fBsystemd.nspawn\\fR(5)\n");
        page.extend_from_slice(extra.as_bytes());
        page
    }
}

/// Text of our own (no line starts with a dot or quote) as roff: a
/// backslash and a dash escaped.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}
