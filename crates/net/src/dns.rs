//! The tenant's DNS server: dnsmasq, DNS only (networkd serves DHCP), bound
//! to the tenant's gateway addresses. It answers the tenant's own names
//! under `<id>.internal` from its command line (no file, no lease lookup:
//! workload addresses are static) and forwards the rest to the host's
//! upstream. It knows no other tenant's names, and the firewall keeps each
//! tenant away from the others' servers.

use crate::{HostNet, TenantNet};

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";
/// The host's resolvers, as systemd-resolved lists them, when host.toml
/// names no upstream.
pub const HOST_RESOLV: &str = "/run/systemd/resolve/resolv.conf";

/// dnsmasq's arguments (without the program), `None` when the tenant has no
/// gateway address to listen on.
pub fn dnsmasq_args(t: &TenantNet, host: &HostNet) -> Option<Vec<String>> {
    let listen = t.gateways();
    if listen.is_empty() {
        return None;
    }
    let domain = t.domain();
    let mut args = vec![
        "--keep-in-foreground".to_owned(),
        // Nothing from /etc: no dnsmasq.conf, no /etc/hosts (the host's names
        // are not the tenant's), no DHCP.
        "--conf-file=/dev/null".to_owned(),
        "--no-hosts".to_owned(),
        "--pid-file=".to_owned(),
        "--log-facility=-".to_owned(),
        // Only the gateway addresses (`--listen-address` below), bound once
        // at start (`bbhv net up` waits until they can be bound). Not
        // `--bind-dynamic`: with it every server rescans every interface at
        // every address change on the host, which at 1,000 tenants is a
        // storm (bench/README.md). No `--interface=`: with it dnsmasq adds
        // the loopback too, and every tenant's server would claim 127.0.0.1:53.
        "--bind-interfaces".to_owned(),
        "--user=dnsmasq".to_owned(),
        "--group=nogroup".to_owned(),
        format!("--domain={domain}"),
        // Every `.internal` name is answered here or not at all: never
        // forwarded, so no tenant learns another's names from upstream.
        "--local=/internal/".to_owned(),
        "--expand-hosts".to_owned(),
        // Never forward a bare name, or a private address's reverse lookup
        // (another tenant's addresses are private too).
        "--domain-needed".to_owned(),
        "--bogus-priv".to_owned(),
        "--cache-size=1000".to_owned(),
    ];
    for a in &listen {
        args.push(format!("--listen-address={a}"));
    }
    if host.dns_upstream.is_empty() {
        args.push(format!("--resolv-file={HOST_RESOLV}"));
    } else {
        args.push("--no-resolv".to_owned());
        for server in &host.dns_upstream {
            args.push(format!("--server={server}"));
        }
    }
    for (name, addr) in &t.hosts {
        args.push(format!("--host-record={name}.{domain},{name},{addr}"));
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bbhv_spec::names::TenantId;

    #[test]
    fn listens_on_the_gateway_and_answers_its_own_domain_only() {
        let t = TenantNet {
            id: TenantId::new("acme").unwrap(),
            bridge: "bt-acme".into(),
            wireguard: None,
            egress: None,
            gateway4: Some("10.1.0.1/24".parse().unwrap()),
            gateway6: None,
            dhcp: false,
            hosts: vec![("web".into(), "10.1.0.20".parse().unwrap())],
            ports: vec![],
        };
        let host = HostNet {
            uplink: None,
            dns_upstream: vec!["192.0.2.53".parse().unwrap()],
        };
        let args = dnsmasq_args(&t, &host).unwrap();
        assert!(
            !args.iter().any(|a| a.starts_with("--interface")),
            "{args:?}"
        );
        for want in [
            "--listen-address=10.1.0.1",
            "--local=/internal/",
            "--no-resolv",
            "--server=192.0.2.53",
            "--host-record=web.acme.internal,web,10.1.0.20",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        let no_gw = TenantNet {
            gateway4: None,
            ..t
        };
        assert_eq!(dnsmasq_args(&no_gw, &host), None);
    }
}
