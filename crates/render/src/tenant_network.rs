//! `tenant-network@<id>.service`, generated for a tenant with a network
//! (the static template only skips undeclared tenants). It names the
//! generation it was made from, so a `current` that moves without a reload
//! cannot mix two generations: `bbhv net up` and `bbhv net dns` read the
//! tenant from that directory.

use bbhv_spec::Tenant;
use bbhv_spec::names::Template;
use bbhv_unit::{Line, Token, UnitFile, Value};

use crate::Facts;

const BBHV: &str = "/usr/bin/bbhv";

pub(crate) fn render(
    tenant: &Tenant,
    facts: &Facts,
    mut unit: UnitFile,
    source: &Line,
) -> Option<String> {
    let net = tenant.network.as_ref()?;
    let id = &tenant.id;
    let tenant_unit = id.unit_token(Template::Tenant);
    let title = Line::join(
        &Line::constant("Network of tenant"),
        " ",
        &Line::from(id.token()),
    );
    unit.section("Unit")
        .set("Description", title.into())
        .set("SourcePath", source.clone().into())
        .set("PartOf", tenant_unit.clone().into())
        .set("Before", tenant_unit.into())
        // The table must exist before any tenant rule goes into it, and
        // stopping it (it removes the table) stops the tenants' networks.
        .set(
            "Requires",
            Token::constant("bitbuilder-firewall.service").into(),
        )
        .set(
            "After",
            Token::constant("bitbuilder-firewall.service").into(),
        )
        .set("Wants", Token::constant("systemd-networkd.service").into())
        .set("After", Token::constant("systemd-networkd.service").into());
    let checkout = facts.source_root.as_str();
    let command = |verb: &str| {
        Value::command(&[BBHV, "net", verb, "--checkout", checkout, id.as_str()])
            .expect("constant program, a checked path and an id make a command")
    };
    // `+`: the firewall and tc steps run with full privileges; the sandbox
    // below is the DNS server's.
    let privileged = |verb: &str| {
        Value::privileged_command(&[BBHV, "net", verb, "--checkout", checkout, id.as_str()])
            .expect("constant program, a checked path and an id make a command")
    };
    // A DNS server needs a gateway address to listen on.
    let serves_dns = net.ipv4.is_some() || net.ipv6.is_some();
    unit.section("Service")
        .set("Slice", id.slice_token().into());
    if serves_dns {
        unit.set("Type", Token::constant("exec").into())
            .set("ExecStartPre", privileged("up"))
            .set("ExecStart", command("dns"))
            .set("Restart", Token::constant("on-failure").into())
            .set("RestartSec", Token::constant("2s").into());
    } else {
        unit.set("Type", Token::constant("oneshot").into())
            .set("RemainAfterExit", Value::boolean(true))
            .set("ExecStart", privileged("up"));
    }
    unit.set(
        "ExecStopPost",
        Value::privileged_command(&[BBHV, "net", "down", id.as_str()])
            .expect("an id makes a command"),
    )
    .set(
        "LogExtraFields",
        Value::literal(format!("BITBUILDER_TENANT={id}")).expect("an id is a literal"),
    );
    // The DNS server's sandbox: only what binding port 53 and dropping to
    // the dnsmasq user take. No mount namespace and no BPF (IPAddressDeny=,
    // DeviceAllow=): per unit they cost PID 1 a mount-table copy and a
    // program at every tenant's start (docs/architecture.md).
    for (key, value) in [
        (
            "CapabilityBoundingSet",
            "CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID",
        ),
        ("NoNewPrivileges", "yes"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        ),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        unit.set(
            key,
            Value::literals(value.split(' ')).expect("constant words"),
        );
    }
    Some(unit.render())
}
