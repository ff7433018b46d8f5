//! VMs: per `vms.<name>` the whole instance file
//! `tenant-vm@<tenant>_<name>.service` (an instance's own file beats the
//! static template, which only skips undeclared VMs). It runs `bbhv vm run`,
//! which verifies the image's files and execs systemd-vmspawn or qemu as
//! the unit's main process, in the tenant's slice; `bbhv vm stop` powers
//! the guest off cleanly (ACPI), within the deadline. Pure, like the rest
//! of the renderer.

use std::path::PathBuf;

use bbhv_spec::names::{InterfacePrefix, Template};
use bbhv_spec::tenant::{Tenant, Vm};
use bbhv_unit::{Line, Syntax, Token, Value};

use crate::container::{
    BBHV, RESTART_MAX_DELAY, RESTART_SEC, RESTART_STEPS, join, journal_fields,
    workload_description, workload_needs,
};
use crate::{Entry, Facts, Root, provenance};

/// Each VM's runtime directory is `<dir>/<tenant>_<vm>` (its QMP socket).
pub const VM_RUN_DIR: &str = "/run/bitbuilder/vm";
/// How long the guest has to power off after the ACPI power button
/// (`bbhv vm stop --timeout`), in seconds.
pub const POWERDOWN_SECS: u32 = 60;
/// `TimeoutStopSec=`: the power-off deadline plus time for qemu's `quit`.
pub const STOP_TIMEOUT: &str = "90s";

/// Every VM of the tenant: its unit.
pub fn render_vms(tenant: &Tenant, facts: &Facts, source: &Line) -> Vec<Entry> {
    tenant
        .vms
        .iter()
        .map(|vm| Entry::File {
            root: Root::Units,
            path: PathBuf::from(tenant.id.vm_unit(vm.name.as_str())),
            content: unit(tenant, vm, facts, source),
        })
        .collect()
}

/// The VMs' units, for the tenant's `Wants=`.
pub fn vm_units(tenant: &Tenant) -> Vec<Token> {
    tenant
        .vms
        .iter()
        .map(|v| Token::new(tenant.id.vm_unit(v.name.as_str())).expect("a unit name is a token"))
        .collect()
}

/// `/run/bitbuilder/vm/<tenant>_<vm>/qmp.sock`.
pub fn qmp_socket(tenant: &Tenant, vm: &Vm) -> String {
    format!(
        "{VM_RUN_DIR}/{}/qmp.sock",
        tenant.id.vm_instance(vm.name.as_str())
    )
}

/// `tenant-vm@<tenant>_<vm>.service`.
fn unit(tenant: &Tenant, vm: &Vm, facts: &Facts, source: &Line) -> String {
    let id = &tenant.id;
    let name = vm.name.as_str();
    let instance = id.vm_instance(name);
    let mut unit = provenance(facts, source, Syntax::Unit);
    let description = workload_description("VM", name, tenant);
    let needs = workload_needs(tenant);
    unit.section("Unit")
        .set("Description", description.into())
        .set(
            "Documentation",
            Line::constant("man:qemu-system-x86_64(1) man:systemd-vmspawn(1)").into(),
        )
        .set("SourcePath", Value::line(source))
        // Stopped and restarted with the tenant.
        .set("PartOf", id.unit_token(Template::Tenant).into())
        .set("Requires", join(&needs))
        .set("After", join(&needs));

    let tap = tenant.network.as_ref().map(|_| id.vm_tap(name));
    unit.section("Service")
        .set("Slice", id.slice_token().into())
        // exec: the start fails when the monitor cannot be executed; `bbhv
        // vm run` verifies the image, then execs it (the main process).
        .set("Type", Token::constant("exec").into())
        // ExecStop= powers the guest off; then only the main process gets
        // SIGTERM, and what is left is killed at the deadline.
        .set("KillMode", Token::constant("mixed").into())
        .set("TimeoutStopSec", Token::constant(STOP_TIMEOUT).into())
        .set("Restart", Token::constant("on-failure").into())
        .set("RestartSec", Token::constant(RESTART_SEC).into())
        .set("RestartSteps", Value::number(RESTART_STEPS))
        .set(
            "RestartMaxDelaySec",
            Token::constant(RESTART_MAX_DELAY).into(),
        )
        // /run/bitbuilder/vm/<tenant>_<vm>: the QMP socket; removed when
        // the unit stops.
        .set(
            "RuntimeDirectory",
            Token::new(format!("bitbuilder/vm/{instance}"))
                .expect("an instance makes a token path")
                .into(),
        )
        .set("RuntimeDirectoryMode", Token::constant("0700").into())
        .set(
            "SyslogIdentifier",
            Token::new(id.machine(name))
                .expect("a machine name is a token")
                .into(),
        );
    journal_fields(&mut unit, tenant, name);
    if let Some(tap) = &tap {
        // The tap lives in the host's namespace, on the tenant's bridge
        // (no PrivateNetwork=: qemu opens it by name).
        let bridge = id.interface(InterfacePrefix::Bridge);
        // `+`: outside the sandbox below (it needs CAP_NET_ADMIN and `ip`).
        unit.set(
            "ExecStartPre",
            Value::privileged_command(&[BBHV, "net", "attach", "--bridge", &bridge, "--tap", tap])
                .expect("an absolute program and interface names"),
        );
    }
    unit.set("ExecStart", run_command(tenant, vm, facts, tap.as_deref()));
    let timeout = POWERDOWN_SECS.to_string();
    let qmp = qmp_socket(tenant, vm);
    unit.set(
        "ExecStop",
        Value::command(&[
            BBHV,
            "vm",
            "stop",
            "--qmp",
            &qmp,
            "--machine",
            tenant.id.machine(vm.name.as_str()).as_str(),
            "--timeout",
            &timeout,
        ])
        .expect("an absolute program and plain arguments"),
    );
    if let Some(tap) = &tap {
        unit.set(
            "ExecStopPost",
            Value::privileged_command(&[BBHV, "net", "detach", "--tap", tap])
                .expect("an absolute program and an interface name"),
        );
    }
    sandbox(&mut unit, tap.is_some());
    unit.render()
}

/// What the monitor may touch: the tap device and KVM, no other device; a
/// read-only host but its runtime directory and a private /tmp and
/// /var/tmp (a disk's throw-away overlay); only `CAP_NET_ADMIN` (to open
/// the tap) of root's capabilities. No `MemoryDenyWriteExecute=` (TCG
/// generates code) and no system call filter (not lab-proven for qemu).
fn sandbox(unit: &mut bbhv_unit::UnitFile, tap: bool) {
    unit.set("DevicePolicy", Token::constant("closed").into())
        .set(
            "DeviceAllow",
            Value::literals(["/dev/kvm", "rw"]).expect("tokens"),
        )
        .set(
            "DeviceAllow",
            Value::literals(["/dev/net/tun", "rw"]).expect("tokens"),
        )
        .set(
            "CapabilityBoundingSet",
            if tap {
                Token::constant("CAP_NET_ADMIN").into()
            } else {
                Value::empty()
            },
        )
        .set("NoNewPrivileges", Value::boolean(true))
        .set("ProtectSystem", Token::constant("strict").into())
        .set("ProtectHome", Value::boolean(true))
        .set("PrivateTmp", Value::boolean(true))
        .set("ProtectKernelModules", Value::boolean(true))
        .set("ProtectKernelTunables", Value::boolean(true))
        .set("ProtectKernelLogs", Value::boolean(true))
        .set("ProtectControlGroups", Value::boolean(true))
        .set("ProtectClock", Value::boolean(true))
        .set("ProtectHostname", Value::boolean(true))
        .set("RestrictNamespaces", Value::boolean(true))
        .set("RestrictRealtime", Value::boolean(true))
        .set("RestrictSUIDSGID", Value::boolean(true))
        .set("LockPersonality", Value::boolean(true))
        .set("SystemCallArchitectures", Token::constant("native").into());
}

/// `bbhv vm run --checkout GEN --name <tenant>.<vm> --image IMAGE --cpus N
/// --memory BYTES --qmp SOCKET [--tap tv-… --mac M [--address A/P
/// --gateway G]]`: typed values only; the image's files are read from the
/// generation the unit was made from.
fn run_command(tenant: &Tenant, vm: &Vm, facts: &Facts, tap: Option<&str>) -> Value {
    let id = &tenant.id;
    let name = vm.name.as_str();
    let mut argv: Vec<String> = vec![
        BBHV.into(),
        "vm".into(),
        "run".into(),
        "--checkout".into(),
        facts.source_root.as_str().into(),
        "--name".into(),
        id.machine(name),
        "--image".into(),
        vm.image.as_str().into(),
        "--cpus".into(),
        vm.cpus.to_string(),
        "--memory".into(),
        vm.memory.bytes().to_string(),
        "--qmp".into(),
        qmp_socket(tenant, vm),
    ];
    if let Some(tap) = tap {
        argv.extend(["--tap".into(), tap.into(), "--mac".into(), id.vm_mac(name)]);
        let net = tenant.network.as_ref().expect("a tap means a network");
        if let (Some(gw), Some(addr)) = (net.ipv4, tenant.workload_addresses().get(&vm.name)) {
            argv.extend([
                "--address".into(),
                format!("{addr}/{}", gw.prefix_len()),
                "--gateway".into(),
                gw.addr().to_string(),
            ]);
        }
    }
    Value::command(&argv).expect("an absolute program and checked arguments")
}
