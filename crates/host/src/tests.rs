use std::time::Duration;

use super::*;

const FILE: &str = "/etc/bitbuilder/host.toml";

fn errors(text: &str) -> Vec<String> {
    HostConfig::parse(text, FILE)
        .expect_err("must fail")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn one_error(text: &str) -> String {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn empty_is_every_default() {
    let config = HostConfig::parse("", FILE).unwrap();
    assert_eq!(config, HostConfig::default());
    assert_eq!(config.sync.branch, "main");
    assert_eq!(config.sync.interval, Duration::from_secs(60));
    assert_eq!(config.sync.health_deadline, Duration::from_secs(120));
    assert_eq!(config.sync.keep_generations, 10);
    assert_eq!(
        config.trust.allowed_signers,
        PathBuf::from("/etc/bitbuilder/allowed_signers")
    );
    assert!(config.network.uplink.is_none());
}

#[test]
fn a_whole_file() {
    let config = HostConfig::parse(
        r#"
hostname = "hv1.example.org"
[network]
uplink = "eth0"
uplink_network = "10-uplink.network"
dns_upstream = ["192.0.2.53", "2001:db8::53"]
host_subnets = ["192.168.1.0/24", "fd00:1::1/64"]
[sync]
remote = "ssh://git@git.example.org/fleet.git"
branch = "release/2026"
interval = "1min 30s"
health_deadline = "2min"
keep_generations = 1000
[trust]
allowed_signers = "/etc/bitbuilder/signers"
"#,
        FILE,
    )
    .unwrap();
    assert_eq!(config.hostname.as_deref(), Some("hv1.example.org"));
    assert_eq!(config.network.uplink.unwrap().as_str(), "eth0");
    assert_eq!(
        config.network.uplink_network.unwrap().as_str(),
        "10-uplink.network"
    );
    assert_eq!(config.network.dns_upstream.len(), 2);
    assert_eq!(
        config.network.host_subnets,
        vec![
            "192.168.1.0/24".parse::<IpNet>().unwrap(),
            "fd00:1::/64".parse().unwrap()
        ]
    );
    assert_eq!(
        config.sync.remote.unwrap().as_str(),
        "ssh://git@git.example.org/fleet.git"
    );
    assert_eq!(config.sync.branch, "release/2026");
    assert_eq!(config.sync.interval, Duration::from_secs(90));
    assert_eq!(config.sync.health_deadline, Duration::from_secs(120));
    assert_eq!(config.sync.keep_generations, 1000);
    assert_eq!(
        config.trust.allowed_signers,
        PathBuf::from("/etc/bitbuilder/signers")
    );
}

#[test]
fn syntax_errors_have_a_line_and_column() {
    let e = one_error("[network]\nuplink = \"eth0\n");
    assert!(e.starts_with(&format!("{FILE}:2:")), "{e}");
    let e = one_error("[network\n");
    assert!(e.starts_with(&format!("{FILE}:1:")), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let e = one_error("[network]\nuplink = \"eth0\"\ncolour = \"red\"\n");
    assert!(e.starts_with(&format!("{FILE}:3:1: network")), "{e}");
    assert!(e.contains("colour"), "{e}");
    assert!(e.contains("uplink_network"), "the allowed keys: {e}");
    let e = one_error("[netwrk]\n");
    assert!(e.contains("netwrk"), "{e}");
    let e = one_error("[network]\nuplink = 5\n");
    assert!(
        e.starts_with(&format!("{FILE}:2:10: network.uplink: ")),
        "{e}"
    );
    assert!(e.contains("string"), "{e}");
    let e = one_error("[sync]\nkeep_generations = \"ten\"\n");
    assert!(e.contains("sync.keep_generations"), "{e}");
}

#[test]
fn bad_uplinks() {
    for (value, says) in [
        ("", "not an interface name"),
        ("a-very-long-name0", "not an interface name"),
        ("eth/0", "not an interface name"),
        ("eth 0", "not an interface name"),
        ("eth:0", "not an interface name"),
        ("..", "not an interface name"),
        ("bt-acme", "starts with \"bt-\""),
        ("vt-x", "starts with \"vt-\""),
        ("wt-x", "starts with \"wt-\""),
        ("et-x", "starts with \"et-\""),
        ("vw-x", "starts with \"vw-\""),
        ("tv-x", "starts with \"tv-\""),
    ] {
        let e = one_error(&format!("[network]\nuplink = {value:?}\n"));
        assert!(
            e.starts_with(&format!("{FILE}:2:10: network.uplink: {value:?} ")),
            "{e}"
        );
        assert!(e.contains(says), "{value}: {e}");
        assert!(e.contains("allowed:"), "{e}");
    }
    assert!(HostConfig::parse("[network]\nuplink = \"enp1s0f1\"\n", FILE).is_ok());
}

#[test]
fn bad_uplink_networks() {
    for value in [
        "uplink",
        ".network",
        "../10-uplink.network",
        "a/b.network",
        ".hidden.network",
        "bbhv-x.network",
        "a b.network",
        "10-uplink.netdev",
    ] {
        let e = one_error(&format!("[network]\nuplink_network = {value:?}\n"));
        assert!(
            e.starts_with(&format!(
                "{FILE}:2:18: network.uplink_network: {value:?} is not a .network file name; allowed: "
            )),
            "{e}"
        );
    }
}

#[test]
fn bad_lists_name_the_element() {
    let all = errors(
        "[network]\ndns_upstream = [\"192.0.2.1\", \"dns.example\"]\nhost_subnets = [\"10.0.0.0/8\", \"10.0.0.0/33\", \"x\"]\n",
    );
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all[0].starts_with(&format!(
            "{FILE}:2:30: network.dns_upstream[1]: \"dns.example\" is not an address"
        )),
        "{all:?}"
    );
    assert!(
        all[1].starts_with(&format!(
            "{FILE}:3:31: network.host_subnets[1]: \"10.0.0.0/33\" is not a subnet"
        )),
        "{all:?}"
    );
    assert!(all[2].contains("network.host_subnets[2]"), "{all:?}");
}

#[test]
fn bad_sync_and_trust_values() {
    for (key, value, says) in [
        ("remote", "http://example.org/x.git", "not a remote"),
        ("remote", "file://relative", "not a remote"),
        ("remote", "ssh:///path", "not a remote"),
        ("remote", "https://ex ample/x", "not a remote"),
        ("branch", "a..b", "not a branch name"),
        ("branch", "-main", "not a branch name"),
        ("branch", "main.lock", "not a branch name"),
        ("branch", "a b", "not a branch name"),
        ("branch", "", "not a branch name"),
        ("interval", "soon", "not a time span"),
        ("interval", "0s", "not a time span"),
        ("interval", "60 fortnights", "not a time span"),
        ("health_deadline", "8d", "not a time span"),
    ] {
        let e = one_error(&format!("[sync]\n{key} = {value:?}\n"));
        assert!(
            e.starts_with(&format!("{FILE}:2:")) && e.contains(&format!(": sync.{key}: ")),
            "{e}"
        );
        assert!(e.contains(says) && e.contains("allowed:"), "{e}");
    }
    for n in [0, 1001, -1] {
        let e = one_error(&format!("[sync]\nkeep_generations = {n}\n"));
        assert_eq!(
            e,
            format!("{FILE}:2:20: sync.keep_generations: {n} is out of range; allowed: 1 to 1000")
        );
    }
    let e = one_error("[trust]\nallowed_signers = \"signers\"\n");
    assert!(
        e.starts_with(&format!(
            "{FILE}:2:19: trust.allowed_signers: \"signers\" is not an absolute path"
        )),
        "{e}"
    );
    let e = one_error("hostname = \"-hv1\"\n");
    assert!(e.contains("hostname: \"-hv1\" is not a host name"), "{e}");
}

#[test]
fn time_spans() {
    for (text, secs) in [
        ("60s", 60),
        ("2min", 120),
        ("1h 30min", 5400),
        ("1h30min", 5400),
        ("90", 90),
        ("1d", 86400),
    ] {
        assert_eq!(
            parse_timespan(text).unwrap(),
            Duration::from_secs(secs),
            "{text}"
        );
    }
    assert_eq!(parse_timespan("500ms").unwrap(), Duration::from_millis(500));
    for bad in ["", "s", "-1s", "1.5s", "99999999999s", "1y"] {
        assert!(parse_timespan(bad).is_err(), "{bad}");
    }
}

#[test]
fn load_reads_a_file_and_a_missing_one_is_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.toml");
    assert_eq!(load(&path).unwrap(), HostConfig::default());
    std::fs::write(&path, "[network]\nuplink = \"eth0\"\n").unwrap();
    assert_eq!(
        load(&path).unwrap().network.uplink.unwrap().as_str(),
        "eth0"
    );
    std::fs::write(&path, "[network]\nuplink = \"bt-x\"\n").unwrap();
    let e = load(&path).unwrap_err();
    assert!(
        e[0].to_string()
            .starts_with(&format!("{}:2:10: network.uplink:", path.display())),
        "{e:?}"
    );
    std::fs::write(&path, b"\xff").unwrap();
    assert_eq!(
        load(&path).unwrap_err()[0].to_string(),
        format!("{}: is not UTF-8", path.display())
    );
    let e = load(dir.path()).unwrap_err();
    assert!(e[0].to_string().contains("cannot be read"), "{e:?}");
}

#[test]
fn the_path_comes_from_the_environment() {
    assert_eq!(
        HostConfig::path_from_lookup(|_| None),
        PathBuf::from(HOST_CONFIG)
    );
    assert_eq!(
        HostConfig::path_from_lookup(|_| Some("".into())),
        PathBuf::from(HOST_CONFIG)
    );
    assert_eq!(
        HostConfig::path_from_lookup(|n| (n == HOST_CONFIG_ENV).then(|| "/t/h.toml".into())),
        PathBuf::from("/t/h.toml")
    );
}

#[test]
fn a_hostile_key_is_quoted_and_printed_on_one_line() {
    // Found by the host_config fuzz target: an unknown quoted key is the
    // file's text, and a line break or escape in it must not reach the log.
    let e = one_error("[network]\n[\"a\\nb\\u001b[31m\"]\nx = 1\n");
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.contains(r#""a\u000Ab\u001B[31m""#), "{e}");
    let e = one_error("[network]\n[\"m =fa0\\xdf\"]\n");
    assert!(e.contains('"'), "a key with a space is quoted: {e}");
}

#[test]
fn boot_defaults_and_values() {
    let config = HostConfig::parse("", FILE).unwrap();
    assert_eq!(config.boot.esp, PathBuf::from("/efi"));
    assert_eq!(config.boot.tries, 3);
    let config = HostConfig::parse(
        "[boot]\nesp = \"/boot/efi\"\nsigning_key = \"/k\"\nsigning_cert = \"/c\"\ntries = 5\n",
        FILE,
    )
    .unwrap();
    assert_eq!(config.boot.esp, PathBuf::from("/boot/efi"));
    assert_eq!(config.boot.signing_key, PathBuf::from("/k"));
    assert_eq!(config.boot.signing_cert, PathBuf::from("/c"));
    assert_eq!(config.boot.tries, 5);
}

#[test]
fn boot_bad_values_name_key_and_allowed() {
    assert_eq!(
        one_error("[boot]\ntries = 0\n"),
        "/etc/bitbuilder/host.toml:2:9: boot.tries: 0 is out of range; allowed: 1 to 9"
    );
    let e = one_error("[boot]\nesp = \"efi\"\n");
    assert!(
        e.contains("boot.esp") && e.contains("not an absolute path"),
        "{e}"
    );
    let e = one_error("[boot]\nsigning_cert = \"/a\\nb\"\n");
    assert!(e.contains("boot.signing_cert"), "{e}");
    let e = one_error("[boot]\nkey = \"/a\"\n");
    assert!(e.contains("unknown field") && e.contains("boot"), "{e}");
}

/// `trust.image_signers` (#11): the keys images are signed with.
#[test]
fn image_signers() {
    let config = HostConfig::parse("", FILE).unwrap();
    assert_eq!(
        config.trust.image_signers,
        PathBuf::from("/etc/bitbuilder/image_signers")
    );
    let config =
        HostConfig::parse("[trust]\nimage_signers = \"/srv/keys/images\"\n", FILE).unwrap();
    assert_eq!(
        config.trust.image_signers,
        PathBuf::from("/srv/keys/images")
    );
    let e = one_error("[trust]\nimage_signers = \"keys\"\n");
    assert!(
        e.starts_with(&format!(
            "{FILE}:2:17: trust.image_signers: \"keys\" is not an absolute path"
        )),
        "{e}"
    );
}
