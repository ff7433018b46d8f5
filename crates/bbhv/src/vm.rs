//! `bbhv vm run` and `bbhv vm stop`: what `tenant-vm@<tenant>_<vm>.service`
//! runs. `run` reads the VM's image from the generation the unit was made
//! from, verifies every file of it (a mismatch refuses to start, naming both
//! digests), keeps the verified files open and execs the monitor on them
//! (`/proc/self/fd/N`: what was hashed is what boots), so the monitor is the
//! unit's main process, in the tenant's slice. `stop` presses the ACPI power
//! button over QMP and waits for the guest to power off, then quits qemu.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bbhv_generator::{Checkout, escape};
use bbhv_spec::Image;
use bbhv_spec::image::{ImageFormat, VmImage};
use ipnet::Ipv4Net;

/// qemu as Debian installs it.
pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";
/// systemd-vmspawn (systemd 256 and later; sid's systemd-container).
pub const VMSPAWN: &str = "/usr/bin/systemd-vmspawn";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify the VM's image and exec its monitor (tenant-vm@.service):
    /// systemd-vmspawn where the host has it and it can run this VM, else
    /// qemu; KVM when usable, TCG otherwise.
    Run(RunArgs),
    /// Power the guest off cleanly: the ACPI power button over QMP, then up
    /// to TIMEOUT seconds for the guest to power off, then `quit`. Without
    /// a QMP socket (systemd-vmspawn runs the VM), `machinectl poweroff
    /// MACHINE` (vmspawn presses the power button) and up to TIMEOUT
    /// seconds for the unit's main process ($MAINPID) to exit.
    Stop {
        #[arg(long)]
        qmp: PathBuf,
        /// The machine name, `<tenant>.<vm>`, as registered with machined.
        #[arg(long)]
        machine: Option<String>,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The generation the unit was made from (images/IMAGE.json is read there).
    #[arg(long)]
    checkout: PathBuf,
    /// The machine name, `<tenant>.<vm>`.
    #[arg(long)]
    name: String,
    #[arg(long)]
    image: String,
    #[arg(long)]
    cpus: u32,
    /// Bytes.
    #[arg(long)]
    memory: u64,
    /// The QMP socket `bbhv vm stop` talks to.
    #[arg(long)]
    qmp: PathBuf,
    /// The tap on the tenant's bridge (made by `bbhv net attach --tap`).
    #[arg(long)]
    tap: Option<String>,
    #[arg(long, requires = "tap")]
    mac: Option<String>,
    /// The guest's address (kernel `ip=` for direct kernel boot).
    #[arg(long, requires = "tap")]
    address: Option<Ipv4Net>,
    #[arg(long, requires = "address")]
    gateway: Option<std::net::Ipv4Addr>,
    /// Which monitor: `auto` (vmspawn when it can run this VM, else qemu).
    #[arg(long, value_enum, default_value_t = Monitor::Auto)]
    monitor: Monitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Monitor {
    Auto,
    Qemu,
    Vmspawn,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_vm(args),
        Command::Stop {
            qmp,
            machine,
            timeout,
        } => stop(&qmp, machine.as_deref(), Duration::from_secs(timeout)),
    }
}

/// The VM as the monitor sees it: typed, with the verified files' paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub kvm: bool,
    pub qmp: PathBuf,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub disk: Option<String>,
    /// The image's own command line part.
    pub cmdline: Option<String>,
    pub tap: Option<String>,
    pub mac: Option<String>,
    pub address: Option<Ipv4Net>,
    pub gateway: Option<std::net::Ipv4Addr>,
}

impl Spec {
    /// The kernel command line: the serial console, no reboot on panic,
    /// `ip=` for the tenant's network, then the image's part.
    pub fn kernel_cmdline(&self) -> String {
        let mut parts = vec!["console=ttyS0".to_owned(), "panic=-1".to_owned()];
        if let Some(address) = self.address {
            // ip=<client>::<gateway>:<netmask>::<device>:<autoconf>
            parts.push(format!(
                "ip={}::{}:{}::eth0:off",
                address.addr(),
                self.gateway.map(|g| g.to_string()).unwrap_or_default(),
                address.netmask()
            ));
        }
        parts.extend(self.cmdline.clone());
        parts.join(" ")
    }

    /// qemu's arguments (the program is [`QEMU`]).
    pub fn qemu_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-name".into(), format!("guest={}", self.name)];
        if self.kvm {
            a.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]);
        } else {
            a.extend([
                "-accel".into(),
                "tcg,thread=multi".into(),
                "-cpu".into(),
                "max".into(),
            ]);
        }
        a.extend([
            "-machine".into(),
            "q35".into(),
            "-smp".into(),
            self.cpus.to_string(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            // No default devices, no user config, no display or monitor:
            // the serial console is stdout (the journal), QMP the socket.
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-chardev".into(),
            "stdio,id=console,signal=off".into(),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", self.qmp.display()),
            // A guest reboot ends qemu; systemd's Restart= decides.
            "-no-reboot".into(),
            // qemu's own seccomp filter, installed once its devices are
            // open (the tap included): no obsolete system calls, no
            // setuid/setgid, no fork/exec, no changes of scheduling or
            // CPU affinity. What a guest escape into qemu could still do
            // is bounded by this and by the unit's sandbox.
            "-sandbox".into(),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
        ]);
        if let Some(kernel) = &self.kernel {
            a.extend(["-kernel".into(), kernel.clone()]);
            if let Some(initrd) = &self.initrd {
                a.extend(["-initrd".into(), initrd.clone()]);
            }
            a.extend(["-append".into(), self.kernel_cmdline()]);
        }
        if let Some(disk) = &self.disk {
            // The verified disk stays untouched: writes go to a throw-away
            // overlay.
            a.extend([
                "-drive".into(),
                format!(
                    "file={},if=virtio,format=raw,snapshot=on",
                    disk.replace(',', ",,")
                ),
            ]);
        }
        match &self.tap {
            Some(tap) => {
                a.extend([
                    "-netdev".into(),
                    format!("tap,id=net0,ifname={tap},script=no,downscript=no"),
                    "-device".into(),
                    // romfile=: no PXE option ROM (direct boot needs none,
                    // and a host without ipxe-qemu would refuse to start).
                    format!(
                        "virtio-net-pci,netdev=net0,mac={},romfile=",
                        self.mac.as_deref().unwrap_or("")
                    ),
                ]);
            }
            None => a.extend(["-nic".into(), "none".into()]),
        }
        a
    }

    /// Why systemd-vmspawn cannot run this VM (`None`: it can). vmspawn
    /// boots an image (`--image=`), not a bare kernel, and makes its own tap
    /// (`--network-tap`) rather than opening ours on the tenant's bridge.
    pub fn vmspawn_refusal(&self) -> Option<&'static str> {
        if self.disk.is_none() {
            Some("the image has no disk (systemd-vmspawn boots an --image=)")
        } else if self.tap.is_some() {
            Some("the VM has a tap on the tenant's bridge (systemd-vmspawn makes its own tap)")
        } else {
            None
        }
    }

    /// systemd-vmspawn's arguments (the program is [`VMSPAWN`]), for a VM
    /// it can run ([`Spec::vmspawn_refusal`]).
    pub fn vmspawn_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--quiet".into(),
            "--keep-unit".into(),
            "--register=yes".into(),
            format!("--machine={}", self.name),
            format!("--cpus={}", self.cpus),
            format!("--ram={}M", self.memory_mib),
            format!("--kvm={}", if self.kvm { "yes" } else { "no" }),
            "--console=read-only".into(),
            // The console on the guest's first serial port, as with qemu
            // (the command line says console=ttyS0); its default is a
            // virtio console (hvc0).
            "--console-transport=serial".into(),
            // No EFI variable store: its default path is beside the image
            // (`<image>.efinvramstate`), and the image is a verified
            // descriptor (/proc/self/fd/N) in a read-only tree.
            "--efi-nvram-state=off".into(),
            // No swtpm, no vsock device and no SSH key (262 makes one with
            // ssh-keygen by default and fails without it): the guest uses
            // none of them.
            "--tpm=no".into(),
            "--vsock=no".into(),
            "--pass-ssh-key=no".into(),
        ];
        if let Some(disk) = &self.disk {
            // A throw-away snapshot, as qemu's `snapshot=on`: without it
            // vmspawn opens the image read-write, and the verified file
            // is read-only (and must stay byte-identical).
            a.push("--ephemeral".into());
            a.push(format!("--image={disk}"));
        }
        if let Some(kernel) = &self.kernel {
            a.push(format!("--linux={kernel}"));
            if let Some(initrd) = &self.initrd {
                a.push(format!("--initrd={initrd}"));
            }
            // The remaining arguments are the kernel command line.
            a.extend(self.kernel_cmdline().split(' ').map(String::from));
        }
        a
    }
}

fn run_vm(args: RunArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let checkout = Checkout::open(&args.checkout)?;
    let file = Image::source_file(&args.image);
    let text = bbhv_repo::read_image(&checkout.root, &args.image)
        .map_err(|e| anyhow::anyhow!("VM {name}: image {}: {file}: {e}", args.image))?;
    let image = Image::parse(&file, &args.image, &text).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{}", escape(&d.to_string()));
        }
        anyhow::anyhow!(
            "VM {name}: {file} is invalid ({} problems)",
            diagnostics.len()
        )
    })?;
    let Some(vm_image) = image.vm() else {
        bail!(
            "VM {name}: {file} is a {} image, not \"format\": \"vm\"",
            image.format
        );
    };
    debug_assert_eq!(image.format, ImageFormat::Vm);
    let files = verify_files(&image, vm_image, checkout.commit.as_deref())?;
    let path_of = |key: &str| {
        files
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| format!("/proc/self/fd/{}", f.as_raw_fd()))
    };
    let (kvm, why) = kvm_usable();
    println!(
        "VM {name}: {} ({why})",
        if kvm { "KVM" } else { "TCG (no KVM)" }
    );
    let spec = Spec {
        name: name.clone(),
        cpus: args.cpus,
        memory_mib: args.memory.div_ceil(1 << 20),
        kvm,
        qmp: args.qmp.clone(),
        kernel: path_of("kernel"),
        initrd: path_of("initrd"),
        disk: path_of("disk"),
        cmdline: vm_image.cmdline.clone(),
        tap: args.tap.clone(),
        mac: args.mac.clone(),
        address: args.address,
        gateway: args.gateway,
    };
    let use_vmspawn = match args.monitor {
        Monitor::Qemu => false,
        Monitor::Vmspawn => {
            if let Some(why) = spec.vmspawn_refusal() {
                bail!("VM {name}: systemd-vmspawn cannot run it: {why}");
            }
            true
        }
        Monitor::Auto => match (vmspawn_version(), spec.vmspawn_refusal()) {
            (Some(v), None) if v >= 256 => match vmspawn_missing_option() {
                None => true,
                Some(option) => {
                    println!("VM {name}: qemu (systemd-vmspawn {v} has no {option})");
                    false
                }
            },
            (Some(v), None) => {
                println!("VM {name}: qemu (systemd-vmspawn {v} is older than 256)");
                false
            }
            (Some(_), Some(why)) => {
                println!("VM {name}: qemu (not systemd-vmspawn: {why})");
                false
            }
            (None, _) => {
                println!("VM {name}: qemu (this host has no systemd-vmspawn)");
                false
            }
        },
    };
    let (program, argv) = if use_vmspawn {
        // vmspawn starts qemu as a child with its own descriptors, so
        // /proc/self/fd/N of ours means nothing there for the kernel and
        // the initrd (it opens the disk itself). They go to private
        // copies in the unit's runtime directory, each hashed again.
        let dir = args
            .qmp
            .parent()
            .context("the --qmp socket has no directory")?;
        let mut spec = spec;
        for (key, slot) in [("kernel", &mut spec.kernel), ("initrd", &mut spec.initrd)] {
            if let Some((_, file)) = files.iter().find(|(k, _)| *k == key) {
                *slot = Some(private_copy(&image, key, file, dir)?);
            }
        }
        (VMSPAWN, spec.vmspawn_args())
    } else {
        (QEMU, spec.qemu_args())
    };
    println!("VM {name}: exec {program} {}", argv.join(" "));
    std::io::stdout().flush().ok();
    // The verified files stay open across exec (their close-on-exec flag
    // is cleared in verify_files).
    let error = std::process::Command::new(program).args(&argv).exec();
    drop(files);
    bail!("VM {name}: cannot run {program}: {error}")
}

/// A copy of a verified file (from its descriptor) in `dir`, mode 0400,
/// hashed again: its path, for a monitor that cannot inherit descriptors.
fn private_copy(
    image: &Image,
    key: &str,
    file: &std::fs::File,
    dir: &Path,
) -> anyhow::Result<String> {
    use std::io::Seek;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(key);
    let _ = std::fs::remove_file(&path);
    let mut input = file;
    input.seek(std::io::SeekFrom::Start(0))?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::copy(&mut input, &mut output)
        .with_context(|| format!("copying the {key} to {}", path.display()))?;
    drop(output);
    let (_, digest) = crate::image::hash_file(&path)?;
    let Some(part) = image
        .vm()
        .and_then(|vm| vm.files().into_iter().find(|(k, _)| *k == key))
    else {
        bail!("image {}: no {key}", image.name);
    };
    if digest != part.1.sha256.as_str() {
        bail!(
            "image {}: the copy {} of the {key} has sha256 {digest}, not {}; refusing to start",
            image.name,
            path.display(),
            part.1.sha256
        );
    }
    Ok(path.display().to_string())
}

/// Opens and hashes every file of the VM image; each that matches stays
/// open (without close-on-exec) for the monitor.
fn verify_files(
    image: &Image,
    vm: &VmImage,
    commit: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, std::fs::File)>> {
    let dir = bbhv_generator::HostPaths::from_env().images_dir;
    let mut open = Vec::new();
    for (key, part) in vm.files() {
        let path = dir.join(part.file.as_str());
        let (file, actual) = crate::image::hash_file(&path)
            .with_context(|| format!("image {}: the {key}", image.name))?;
        if actual != part.sha256.as_str() {
            bail!(
                "image {}: the {key} {} has sha256 {actual}, but {} (commit {}) declares {}; refusing to start",
                image.name,
                path.display(),
                image.source,
                commit.unwrap_or("unknown"),
                part.sha256
            );
        }
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty())
            .with_context(|| format!("keeping {} open for the monitor", path.display()))?;
        println!(
            "image {}: {key} {} sha256 {actual} verified",
            image.name,
            path.display()
        );
        open.push((key, file));
    }
    Ok(open)
}

/// systemd-vmspawn's version, when the host has it.
pub(crate) fn vmspawn_version() -> Option<u32> {
    if !Path::new(VMSPAWN).exists() {
        return None;
    }
    let output = std::process::Command::new(VMSPAWN)
        .arg("--version")
        .output()
        .ok()?;
    parse_systemd_version(&String::from_utf8_lossy(&output.stdout))
}

/// The options of [`Spec::vmspawn_args`] that not every vmspawn since 256
/// has; the host's vmspawn is used only when its `--help` lists them all.
pub const VMSPAWN_NEEDED_OPTIONS: [&str; 3] = [
    "--console-transport=",
    "--efi-nvram-state=",
    "--pass-ssh-key=",
];

/// The first of [`VMSPAWN_NEEDED_OPTIONS`] the host's vmspawn lacks
/// (`None`: it has them all).
pub(crate) fn vmspawn_missing_option() -> Option<&'static str> {
    let help = std::process::Command::new(VMSPAWN)
        .arg("--help")
        .env("SYSTEMD_PAGER", "cat")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    missing_option(&help)
}

/// The first of [`VMSPAWN_NEEDED_OPTIONS`] that `help` does not name.
pub fn missing_option(help: &str) -> Option<&'static str> {
    VMSPAWN_NEEDED_OPTIONS
        .into_iter()
        .find(|o| !help.contains(o.trim_end_matches('=')))
}

/// "systemd 257 (257.13-1)" -> 257.
pub fn parse_systemd_version(text: &str) -> Option<u32> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Whether KVM can run a stock kernel here, and why (or why not). `/dev/kvm`
/// must open read-write, speak API version 12 and create a VM, and the CPU
/// must have hardware virtualization (vmx or svm): `kvm_pvm` passes the
/// ioctls without it but cannot run a stock kernel (qemu aborts on
/// `-cpu host`), which is what this project's build machines have.
pub(crate) fn kvm_usable() -> (bool, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    kvm_probe(Path::new("/dev/kvm"), &cpuinfo)
}

fn kvm_probe(device: &Path, cpuinfo: &str) -> (bool, String) {
    let dev = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
    {
        Ok(dev) => dev,
        Err(e) => return (false, format!("{} does not open: {e}", device.display())),
    };
    match kvm::api_version(&dev) {
        Ok(12) => {}
        Ok(v) => return (false, format!("KVM API version {v}, not 12")),
        Err(e) => return (false, format!("KVM_GET_API_VERSION failed: {e}")),
    }
    if let Err(e) = kvm::create_vm(&dev) {
        return (false, format!("KVM_CREATE_VM failed: {e}"));
    }
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    if !flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
        return (
            false,
            format!(
                "{} creates VMs, but the CPU has no vmx or svm (kvm_pvm?): a stock kernel cannot run on it",
                device.display()
            ),
        );
    }
    (
        true,
        format!("{} works and the CPU has vmx or svm", device.display()),
    )
}

/// The two KVM ioctls of the probe. `unsafe` only here: rustix's `ioctl`
/// trusts the opcode and the argument; both are KVM's fixed `_IO(0xAE, n)`
/// with no argument, and the fd KVM_CREATE_VM returns is owned at once.
#[allow(unsafe_code)]
mod kvm {
    use std::os::fd::{AsFd, FromRawFd as _, OwnedFd};

    use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, ioctl, opcode};

    struct NoArgInt(Opcode);

    // SAFETY: the opcodes are KVM ioctls that take no argument (the pointer
    // is null) and return an integer.
    unsafe impl Ioctl for NoArgInt {
        type Output = IoctlOutput;
        const IS_MUTATING: bool = false;
        fn opcode(&self) -> Opcode {
            self.0
        }
        fn as_ptr(&mut self) -> *mut core::ffi::c_void {
            core::ptr::null_mut()
        }
        unsafe fn output_from_ptr(
            out: IoctlOutput,
            _: *mut core::ffi::c_void,
        ) -> rustix::io::Result<IoctlOutput> {
            Ok(out)
        }
    }

    pub fn api_version(dev: impl AsFd) -> rustix::io::Result<i32> {
        // SAFETY: KVM_GET_API_VERSION = _IO(0xAE, 0x00): no argument.
        unsafe { ioctl(dev, NoArgInt(opcode::none(0xAE, 0x00))) }
    }

    pub fn create_vm(dev: impl AsFd) -> rustix::io::Result<OwnedFd> {
        // SAFETY: KVM_CREATE_VM = _IO(0xAE, 0x01), machine type 0 (the
        // null argument); it returns a new fd, owned here and closed on drop.
        let fd = unsafe { ioctl(dev, NoArgInt(opcode::none(0xAE, 0x01)))? };
        // SAFETY: a successful KVM_CREATE_VM returns a fresh fd nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `bbhv vm stop`: `system_powerdown` over QMP, wait for the guest to power
/// off (qemu then exits and closes the socket), else `quit` at the deadline.
fn stop(qmp: &Path, machine: Option<&str>, timeout: Duration) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let stream = match UnixStream::connect(qmp) {
        Ok(s) => s,
        Err(e) => {
            // vmspawn (no socket of ours) or a monitor already gone.
            let main_pid = std::env::var("MAINPID")
                .ok()
                .and_then(|p| p.parse::<i32>().ok());
            if let (Some(machine), Some(pid)) = (machine, main_pid) {
                return stop_machine(machine, pid, timeout);
            }
            println!(
                "no QMP socket at {} ({e}): leaving the stop to SIGTERM",
                qmp.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut qmp_conn = Qmp::new(stream)?;
    qmp_conn.command("qmp_capabilities")?;
    qmp_conn.command("system_powerdown")?;
    println!("ACPI power button pressed; waiting up to {timeout:?} for the guest to power off");
    match qmp_conn.wait_for_close(timeout.saturating_sub(start.elapsed()))? {
        Some(event) => {
            println!(
                "guest powered off cleanly after {:.1} s ({event})",
                start.elapsed().as_secs_f64()
            );
        }
        None => {
            println!("guest did not power off within {timeout:?}: quitting qemu (a hard stop)");
            let _ = qmp_conn.command("quit");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stop of a VM systemd-vmspawn runs: `machinectl poweroff` (machined
/// asks vmspawn, which presses the ACPI power button over its own QMP),
/// then wait for the unit's main process (vmspawn; it exits when qemu
/// does) until the deadline; after it, the unit's SIGTERM.
fn stop_machine(machine: &str, pid: i32, timeout: Duration) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let status = std::process::Command::new("/usr/bin/machinectl")
        .args(["poweroff", "--", machine])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            println!("machinectl poweroff {machine} failed ({s}): leaving the stop to SIGTERM");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            println!("cannot run machinectl ({e}): leaving the stop to SIGTERM");
            return Ok(ExitCode::SUCCESS);
        }
    }
    println!("machinectl poweroff {machine}: waiting up to {timeout:?} for the guest to power off");
    let alive = || Path::new(&format!("/proc/{pid}")).exists();
    while alive() && start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive() {
        println!("guest did not power off within {timeout:?}: leaving the stop to SIGTERM");
    } else {
        println!(
            "guest powered off cleanly after {:.1} s (machinectl poweroff)",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A QMP connection: one JSON object per line.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The SHUTDOWN event, once seen.
    shutdown: Option<String>,
}

impl Qmp {
    fn new(stream: UnixStream) -> anyhow::Result<Qmp> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            shutdown: None,
        };
        let greeting = qmp.read()?.context("QMP closed before its greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        Ok(qmp)
    }

    /// The next message, `None` at the end of the stream.
    fn read(&mut self) -> anyhow::Result<Option<serde_json::Value>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => {
                let value: serde_json::Value = serde_json::from_str(line.trim())
                    .with_context(|| format!("QMP sent {line:?}"))?;
                if value.get("event").and_then(|e| e.as_str()) == Some("SHUTDOWN") {
                    let reason = value
                        .pointer("/data/reason")
                        .and_then(|r| r.as_str())
                        .unwrap_or("unknown");
                    self.shutdown = Some(format!("SHUTDOWN event, reason {reason}"));
                }
                Ok(Some(value))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a command and waits for its return (events in between are
    /// noted).
    fn command(&mut self, name: &str) -> anyhow::Result<()> {
        writeln!(self.writer, "{}", serde_json::json!({ "execute": name }))?;
        loop {
            let Some(reply) = self.read()? else {
                // quit: qemu closes the socket instead of answering.
                return Ok(());
            };
            if reply.get("return").is_some() {
                return Ok(());
            }
            if let Some(error) = reply.get("error") {
                bail!("QMP {name}: {error}");
            }
        }
    }

    /// Waits until qemu closes the socket (it exits when the guest powers
    /// off); `Some(what was seen)`, or `None` when `timeout` passed first.
    fn wait_for_close(&mut self, timeout: Duration) -> anyhow::Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            match self.read() {
                Ok(None) => {
                    return Ok(Some(
                        self.shutdown
                            .clone()
                            .unwrap_or_else(|| "qemu closed QMP".into()),
                    ));
                }
                Ok(Some(_)) => {}
                Err(e)
                    if e.downcast_ref::<std::io::Error>().is_some_and(|e| {
                        matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        )
                    }) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            name: "acme.db".into(),
            cpus: 2,
            memory_mib: 512,
            kvm: false,
            qmp: "/run/bitbuilder/vm/acme_db/qmp.sock".into(),
            kernel: Some("/proc/self/fd/3".into()),
            initrd: Some("/proc/self/fd/4".into()),
            disk: None,
            cmdline: Some("quiet".into()),
            tap: Some("tv-abcdefghijkl".into()),
            mac: Some("02:01:02:03:04:05".into()),
            address: Some("10.0.0.5/24".parse().unwrap()),
            gateway: Some("10.0.0.1".parse().unwrap()),
        }
    }

    fn pairs(args: &[String]) -> String {
        args.join(" ")
    }

    #[test]
    fn qemu_runs_tcg_with_the_kernel_the_tap_and_qmp() {
        let args = pairs(&spec().qemu_args());
        for want in [
            "-accel tcg,thread=multi -cpu max",
            "-smp 2 -m 512M",
            "-kernel /proc/self/fd/3 -initrd /proc/self/fd/4",
            "-append console=ttyS0 panic=-1 ip=10.0.0.5::10.0.0.1:255.255.255.0::eth0:off quiet",
            "-qmp unix:/run/bitbuilder/vm/acme_db/qmp.sock,server=on,wait=off",
            "-netdev tap,id=net0,ifname=tv-abcdefghijkl,script=no,downscript=no",
            "-device virtio-net-pci,netdev=net0,mac=02:01:02:03:04:05,romfile=",
            "-no-reboot",
            "-serial chardev:console",
            "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ] {
            assert!(args.contains(want), "{want}\n{args}");
        }
        let kvm = pairs(
            &Spec {
                kvm: true,
                tap: None,
                address: None,
                ..spec()
            }
            .qemu_args(),
        );
        assert!(kvm.contains("-accel kvm -cpu host"), "{kvm}");
        assert!(kvm.contains("-nic none"), "{kvm}");
        assert!(!kvm.contains("ip="), "{kvm}");
    }

    #[test]
    fn a_disk_is_attached_read_only_through_an_overlay() {
        let args = Spec {
            disk: Some("/proc/self/fd/5".into()),
            ..spec()
        }
        .qemu_args();
        assert!(
            args.contains(&"file=/proc/self/fd/5,if=virtio,format=raw,snapshot=on".to_owned()),
            "{args:?}"
        );
    }

    #[test]
    fn vmspawn_only_for_what_it_can_run() {
        assert!(spec().vmspawn_refusal().unwrap().contains("no disk"));
        let disk_and_tap = Spec {
            disk: Some("/proc/self/fd/5".into()),
            ..spec()
        };
        assert!(disk_and_tap.vmspawn_refusal().unwrap().contains("tap"));
        let ok = Spec {
            tap: None,
            mac: None,
            address: None,
            gateway: None,
            ..disk_and_tap
        };
        assert_eq!(ok.vmspawn_refusal(), None);
        let args = ok.vmspawn_args();
        for want in [
            "--machine=acme.db",
            "--cpus=2",
            "--ram=512M",
            "--kvm=no",
            "--image=/proc/self/fd/5",
            "--linux=/proc/self/fd/3",
            "--initrd=/proc/self/fd/4",
            "console=ttyS0",
            "quiet",
            "--console-transport=serial",
            "--efi-nvram-state=off",
            "--ephemeral",
        ] {
            assert!(args.iter().any(|a| a == want), "{want}: {args:?}");
        }
        // Every option it needs beyond 256's is one the host's --help is
        // checked for.
        for a in &args {
            if [
                "--console-transport=",
                "--efi-nvram-state=",
                "--pass-ssh-key=",
            ]
            .iter()
            .any(|o| a.starts_with(o))
            {
                assert!(
                    VMSPAWN_NEEDED_OPTIONS.iter().any(|o| a.starts_with(o)),
                    "{a}"
                );
            }
        }
        assert_eq!(
            missing_option(
                "  --efi-nvram-state=off|auto|PATH\n  --console-transport=TRANSPORT\n  --pass-ssh-key=BOOL"
            ),
            None
        );
        assert_eq!(
            missing_option("  --efi-nvram-template=PATH\n  --console=MODE"),
            Some("--console-transport=")
        );
        assert_eq!(
            parse_systemd_version("systemd 262 (262.1-1)\n+PAM"),
            Some(262)
        );
        assert_eq!(parse_systemd_version(""), None);
    }

    #[test]
    fn kvm_probe_refuses_a_missing_device_and_a_cpu_without_vmx() {
        let (ok, why) = kvm_probe(Path::new("/nonexistent/kvm"), "flags : fpu vmx");
        assert!(!ok && why.contains("does not open"), "{why}");
        // /dev/null opens but is no KVM device.
        let (ok, why) = kvm_probe(Path::new("/dev/null"), "flags : fpu vmx");
        assert!(!ok && why.contains("KVM_GET_API_VERSION failed"), "{why}");
        // The real device, when there is one, with a CPU that has no vmx/svm.
        if Path::new("/dev/kvm").exists() {
            let (ok, why) = kvm_probe(Path::new("/dev/kvm"), "flags : fpu sse");
            assert!(!ok, "{why}");
        }
    }
}
