//! Containers: per `containers.<name>` a `.nspawn` settings file
//! (`/run/systemd/nspawn/<tenant>.<name>.nspawn`) and the whole instance
//! file `systemd-nspawn@<tenant>.<name>.service` (an instance's own file
//! beats systemd's template, so `machinectl start/stop/status` reach it,
//! and it carries the tenant's slice, the network attachment and the
//! restart policy). Pure, like the rest of the renderer.

use std::path::PathBuf;

use bbhv_spec::names::{InterfacePrefix, Template};
use bbhv_spec::tenant::{Container, Tenant};
use bbhv_unit::{Line, Syntax, Token, Value};

use crate::{Entry, Facts, Root, provenance};

/// Where tenants' state lives (fixed): `<dir>/<id>/{upper,work,root}/<name>`.
pub const TENANTS_DIR: &str = "/var/lib/tenants";
/// The settings directory nspawn reads trusted `.nspawn` files from.
pub const NSPAWN_DIR: &str = "/run/systemd/nspawn";
/// The project's CLI (its `net attach` makes a workload's link).
pub const BBHV: &str = "/usr/bin/bbhv";
/// systemd-nspawn, as Debian installs it.
pub const SYSTEMD_NSPAWN: &str = "/usr/bin/systemd-nspawn";

/// Capabilities dropped from nspawn's default set in every container:
/// audit (refused in a user namespace anyway), immutable flags, device
/// nodes (no host devices), broadcast (unused by Linux), TTY configuration
/// (no host console). `CAP_NET_ADMIN` is never granted: nspawn only adds it
/// with a private network of its own, and the container shares the unit's.
pub const DROPPED_CAPABILITIES: [&str; 6] = [
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_WRITE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MKNOD",
    "CAP_NET_BROADCAST",
    "CAP_SYS_TTY_CONFIG",
];

/// Dropped too when the container runs a command, not an init: mounting
/// and namespaces (`CAP_SYS_ADMIN`), tracing other processes
/// (`CAP_SYS_PTRACE`), raising limits (`CAP_SYS_RESOURCE`). A booted init
/// needs these to set up its own system. `CAP_SYS_BOOT` stays: nspawn's
/// stub init powers the container off with `reboot(2)` when it is stopped
/// (nspawn's seccomp filter and the kernel allow that call only with it),
/// and without it a stop ends with status 255, "failed", like a crash. In
/// the container's user namespace it reaches no further than its own PID
/// namespace: `reboot(2)` there ends the container, `kexec_load(2)` needs
/// the capability in the host's namespace.
pub const DROPPED_FOR_COMMANDS: [&str; 3] = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_RESOURCE"];

/// First delay before a restart; it grows in [`RESTART_STEPS`] steps to
/// [`RESTART_MAX_DELAY`] (systemd 254+).
pub const RESTART_SEC: &str = "2s";
pub const RESTART_STEPS: u32 = 6;
pub const RESTART_MAX_DELAY: &str = "5min";

/// `/var/lib/tenants/<id>/<kind>/<name>`: the container's overlay upper
/// (`upper`), work (`work`) directory, or its root file system (`root`),
/// where the overlay is mounted.
pub fn state_path(tenant: &Tenant, kind: &'static str, container: &Container) -> Token {
    Token::new(format!(
        "{TENANTS_DIR}/{}/{kind}/{}",
        tenant.id, container.name
    ))
    .expect("ids and names make a token path")
}

/// Every container of the tenant: its `.nspawn` file and its unit.
pub fn render_containers(tenant: &Tenant, facts: &Facts, source: &Line) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(2 * tenant.containers.len());
    for container in &tenant.containers {
        let machine = tenant.id.machine(container.name.as_str());
        entries.push(Entry::File {
            root: Root::Nspawn,
            path: PathBuf::from(format!("{machine}.nspawn")),
            content: settings(container, facts, source),
        });
        entries.push(Entry::File {
            root: Root::Units,
            path: PathBuf::from(tenant.id.machine_unit(container.name.as_str())),
            content: unit(tenant, container, facts, source),
        });
    }
    entries
}

/// The container's units, for the tenant's `Wants=`.
pub fn container_units(tenant: &Tenant) -> Vec<Token> {
    tenant
        .containers
        .iter()
        .map(|c| {
            Token::new(tenant.id.machine_unit(c.name.as_str())).expect("a unit name is a token")
        })
        .collect()
}

/// `<machine>.nspawn`: what runs, as whom, with which capabilities. No
/// network settings of its own: nspawn keeps the unit's namespace.
fn settings(container: &Container, facts: &Facts, source: &Line) -> String {
    let mut file = provenance(facts, source, Syntax::Plain);
    file.section("Exec");
    match &container.command {
        None => {
            file.set("Boot", Value::boolean(true));
        }
        Some(command) => {
            // A stub init as PID 1 reaps the command's orphans and passes
            // signals on; the command itself is PID 2.
            file.set("ProcessTwo", Value::boolean(true)).set(
                "Parameters",
                Value::nspawn_words(command.argv()).expect("a checked command has no line break"),
            );
            // What nspawn sends PID 1 when `systemctl stop` sends it
            // SIGTERM. Without a boot its default is SIGKILL, which ends
            // the unit "failed"; the stub init takes SIGRTMIN+3 as
            // "power off": SIGTERM and SIGHUP to the command, then
            // reboot(RB_POWER_OFF), which nspawn reports as a clean
            // shut-down (exit 0). A command that exits by itself still
            // passes its status on, so a crash restarts.
            file.set("KillSignal", Token::constant("SIGRTMIN+3").into());
        }
    }
    for (name, value) in &container.environment {
        file.set(
            "Environment",
            Value::nspawn_env(name.as_str(), value).expect("checked environment values"),
        );
    }
    file.set("PrivateUsers", Token::constant("pick").into());
    let mut dropped: Vec<&str> = DROPPED_CAPABILITIES.to_vec();
    if container.command.is_some() {
        dropped.extend(DROPPED_FOR_COMMANDS);
    }
    file.set(
        "DropCapability",
        Value::literals(dropped).expect("capability names are tokens"),
    );
    file.section("Files")
        // Files owned by host root appear as the container's root through
        // an idmapped mount where the file system allows it, else nspawn
        // chowns the tree once; the overlay root is mounted with
        // metacopy=on, so that copies inodes, not the image's data, into
        // the upper directory (mounts.rs).
        .set("PrivateUsersOwnership", Token::constant("auto").into());
    file.section("Network")
        .set("Private", Value::boolean(false))
        .set("VirtualEthernet", Value::boolean(false));
    file.render()
}

/// `systemd-nspawn@<tenant>.<name>.service`.
fn unit(tenant: &Tenant, container: &Container, facts: &Facts, source: &Line) -> String {
    let id = &tenant.id;
    let name = container.name.as_str();
    let machine = id.machine(name);
    let machine_token = Token::new(machine.as_str()).expect("a machine name is a token");
    let root = state_path(tenant, "root", container);
    let mut unit = provenance(facts, source, Syntax::Unit);
    let description = workload_description("Container", name, tenant);
    let needs = workload_needs(tenant);
    let settings_file = Token::new(format!("{NSPAWN_DIR}/{machine}.nspawn"))
        .expect("a machine name makes a token path");
    unit.section("Unit")
        .set("Description", description.into())
        .set(
            "Documentation",
            Line::constant("man:systemd-nspawn(1)").into(),
        )
        .set("SourcePath", Value::line(source))
        // Stopped and restarted with the tenant.
        .set("PartOf", id.unit_token(Template::Tenant).into())
        .set("Requires", join(&needs))
        .set("After", join(&needs))
        // The overlay root (mount-generator); it requires the verified image.
        .set("RequiresMountsFor", root.clone().into())
        // Without its settings nspawn would run unconfined defaults.
        .set("AssertPathExists", settings_file.into());

    unit.section("Service")
        .set("Slice", id.slice_token().into())
        .set("Type", Token::constant("notify").into())
        .set("KillMode", Token::constant("mixed").into())
        .set("Delegate", Value::boolean(true))
        .set("TasksMax", Value::number(16384u32))
        .set("WatchdogSec", Token::constant("3min").into())
        // 133: the container asked to be rebooted.
        .set("RestartForceExitStatus", Value::number(133u32))
        .set("SuccessExitStatus", Value::number(133u32))
        .set("Restart", Token::constant("on-failure").into())
        .set("RestartSec", Token::constant(RESTART_SEC).into())
        .set("RestartSteps", Value::number(RESTART_STEPS))
        .set(
            "RestartMaxDelaySec",
            Token::constant(RESTART_MAX_DELAY).into(),
        )
        // No host devices: nspawn's own pseudo-devices and its console only.
        .set("DevicePolicy", Token::constant("closed").into())
        .set(
            "DeviceAllow",
            Value::literals(["char-pts", "rw"]).expect("tokens"),
        )
        // The workload's own network namespace, held by the unit: loopback
        // only, plus the veth `bbhv net attach` makes when the tenant has a
        // network (docs/architecture.md, "Where workloads meet the network").
        .set("PrivateNetwork", Value::boolean(true))
        .set("SyslogIdentifier", machine_token.clone().into());
    journal_fields(&mut unit, tenant, name);
    if let Some(attach) = attach_command(tenant, container) {
        unit.set("ExecStartPre", attach);
    }
    let machine_arg = format!("--machine={machine}");
    let directory_arg = format!("--directory={root}");
    unit.set(
        "ExecStart",
        Value::command(&[
            SYSTEMD_NSPAWN,
            "--quiet",
            "--keep-unit",
            "--register=yes",
            machine_arg.as_str(),
            directory_arg.as_str(),
        ])
        .expect("an absolute program and plain arguments"),
    );
    unit.render()
}

/// `bbhv net attach --bridge bt-<id> --link vw-<hash> [--address A/P
/// --gateway G] [--address6 A/P --gateway6 G]` when the tenant has a
/// network.
fn attach_command(tenant: &Tenant, container: &Container) -> Option<Value> {
    let net = tenant.network.as_ref()?;
    let id = &tenant.id;
    let mut argv: Vec<String> = vec![
        BBHV.into(),
        "net".into(),
        "attach".into(),
        "--bridge".into(),
        id.interface(InterfacePrefix::Bridge),
        "--link".into(),
        id.workload_interface(container.name.as_str()),
    ];
    if let (Some(gw), Some(addr)) = (
        net.ipv4,
        tenant.workload_addresses().get(&container.name).copied(),
    ) {
        argv.extend([
            "--address".into(),
            format!("{addr}/{}", gw.prefix_len()),
            "--gateway".into(),
            gw.addr().to_string(),
        ]);
    }
    if let (Some(gw), Some(addr)) = (
        net.ipv6,
        tenant.workload_addresses6().get(&container.name).copied(),
    ) {
        argv.extend([
            "--address6".into(),
            format!("{addr}/{}", gw.prefix_len()),
            "--gateway6".into(),
            gw.addr().to_string(),
        ]);
    }
    Some(Value::command(&argv).expect("an absolute program and checked arguments"))
}

/// The journal fields that say whose a workload's lines are
/// (`journalctl BITBUILDER_TENANT=<id>`).
pub(crate) fn journal_fields(unit: &mut bbhv_unit::UnitFile, tenant: &Tenant, name: &str) {
    unit.set(
        "LogExtraFields",
        Token::new(format!("BITBUILDER_TENANT={}", tenant.id))
            .expect("an id makes a token")
            .into(),
    )
    .set(
        "LogExtraFields",
        Token::new(format!("BITBUILDER_WORKLOAD={name}"))
            .expect("a name makes a token")
            .into(),
    );
}

/// Units as one space-separated value (`Requires=`, `After=`).
pub(crate) fn join(tokens: &[Token]) -> Value {
    Value::literals(tokens.iter().map(Token::as_str)).expect("unit names are tokens")
}

/// "`<kind>` `<name>` of tenant `<id>`", a workload unit's description.
pub(crate) fn workload_description(kind: &'static str, name: &str, tenant: &Tenant) -> Line {
    Line::join(
        &Line::join(
            &Line::constant(kind),
            " ",
            &Line::from(Token::new(name).expect("a name is a token")),
        ),
        " of tenant ",
        &Line::from(tenant.id.token()),
    )
}

/// What every workload unit requires and follows: the tenant's state
/// directories, and its network when it has one.
pub(crate) fn workload_needs(tenant: &Tenant) -> Vec<Token> {
    let mut needs = vec![tenant.id.unit_token(Template::Infra)];
    if tenant.network.is_some() {
        needs.push(tenant.id.unit_token(Template::Network));
    }
    needs
}
