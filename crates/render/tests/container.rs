//! A container's command and environment reach nspawn exactly as declared:
//! hostile values go through metadata.json, the spec, the renderer and
//! nspawn's own parsing rules (`config_parse_strv()`, read back by
//! `bbhv_unit::unquote_verbatim`) and come back equal, and the `.nspawn`
//! file keeps exactly the sections and keys the renderer wrote.

use bbhv_render::{Entry, Facts, Root, render_tenant};
use bbhv_spec::Tenant;
use bbhv_unit::{Reader, unquote_verbatim, unquote_words};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\t", "\\", "\"", "'", "\"'", "%", "%i", "%%", "$", "$HOME", "${X}", ";", " ", "=",
        "[Exec]", "Boot=yes", "#", "\u{7f}", "\u{1b}", "\u{85}", "é", "\\n", "\\x41", "",
    ]);
    prop::collection::vec(
        prop_oneof![pieces.prop_map(String::from), "\\PC{0,4}"],
        0..10,
    )
    .prop_map(|parts| parts.concat())
}

fn render(json: serde_json::Value) -> Result<Vec<Entry>, String> {
    let tenant = Tenant::parse("tenants/t/metadata.json", "t", &json.to_string())
        .map_err(|d| format!("{d:?}"))?;
    let facts = Facts::new(
        "tenant-generator",
        "/var/lib/bitbuilder/generations/1-abc",
        None,
    )
    .unwrap();
    Ok(render_tenant(&tenant, &facts))
}

fn file<'a>(entries: &'a [Entry], root: Root, name: &str) -> &'a str {
    entries
        .iter()
        .find_map(|e| match e {
            Entry::File {
                root: r,
                path,
                content,
            } if *r == root && path.to_str() == Some(name) => Some(content.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} not rendered"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn command_and_environment_round_trip(
        args in prop::collection::vec(hostile(), 0..6),
        value in hostile(),
    ) {
        let mut argv = vec!["/bin/prog".to_owned()];
        argv.extend(args.into_iter().map(|a| a.replace(['\0', '\n', '\r'], "")));
        let json = serde_json::json!({
            "schemaVersion": 1, "id": "t",
            "network": { "ipv4": "10.0.0.1/24" },
            "containers": { "c": { "image": "i", "command": argv, "environment": { "V": value } } }
        });
        match render(json) {
            Ok(entries) => {
                let text = file(&entries, Root::Nspawn, "t.c.nspawn");
                let reader = Reader::parse(text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(reader.section_names(), vec!["Exec", "Files", "Network"], "{}", text);
                let keys: Vec<&str> = reader.sections[0].1.iter().map(|(k, _)| k.as_str()).collect();
                prop_assert_eq!(keys, vec!["ProcessTwo", "Parameters", "KillSignal", "Environment", "PrivateUsers", "DropCapability"], "{}", text);
                // A stop is a power-off of the stub init, not a SIGKILL.
                prop_assert_eq!(reader.values("Exec", "KillSignal"), vec!["SIGRTMIN+3"]);
                let params = unquote_verbatim(reader.values("Exec", "Parameters")[0]).unwrap();
                prop_assert_eq!(&params, &argv);
                let env = unquote_verbatim(reader.values("Exec", "Environment")[0]).unwrap();
                prop_assert_eq!(env, vec![format!("V={value}")]);
                // The unit's attach line reads back as plain words too.
                let unit = file(&entries, Root::Units, "systemd-nspawn@t.c.service");
                let unit_reader = Reader::parse(unit).unwrap();
                let pre = unquote_words(unit_reader.values("Service", "ExecStartPre")[0], true, true).unwrap();
                prop_assert_eq!(&pre[..3], &["/usr/bin/bbhv", "net", "attach"]);
            }
            // Only what the format cannot carry is refused.
            Err(e) => prop_assert!(value.chars().any(|c| c.is_control() && c != '\t'), "{}", e),
        }
    }
}

#[test]
fn a_container_without_a_command_boots_and_without_a_network_has_no_link() {
    let entries = render(serde_json::json!({
        "schemaVersion": 1, "id": "t", "containers": { "os": { "image": "i" } }
    }))
    .unwrap();
    let nspawn = file(&entries, Root::Nspawn, "t.os.nspawn");
    assert!(nspawn.contains("\nBoot=yes\n"), "{nspawn}");
    assert!(
        !nspawn.contains("CAP_SYS_ADMIN"),
        "an init keeps CAP_SYS_ADMIN: {nspawn}"
    );
    let unit = file(&entries, Root::Units, "systemd-nspawn@t.os.service");
    assert!(unit.contains("\nPrivateNetwork=yes\n"), "{unit}");
    assert!(!unit.contains("ExecStartPre"), "{unit}");
    assert!(!unit.contains("tenant-network@"), "{unit}");
    let tenant = file(&entries, Root::Units, "tenant@t.service");
    assert!(
        tenant.contains("\nWants=systemd-nspawn@t.os.service\n"),
        "{tenant}"
    );
}

#[test]
fn the_attach_line_names_the_bridge_link_and_addresses() {
    let entries = render(serde_json::json!({
        "schemaVersion": 1, "id": "t",
        "network": { "ipv4": "10.0.0.1/24", "ipv6": "fd00::1/64" },
        "containers": { "c": { "image": "i", "address": "10.0.0.9", "command": ["/bin/true"] } }
    }))
    .unwrap();
    let unit = file(&entries, Root::Units, "systemd-nspawn@t.c.service");
    let reader = Reader::parse(unit).unwrap();
    let pre = unquote_words(reader.values("Service", "ExecStartPre")[0], true, true).unwrap();
    let link = bbhv_spec::TenantId::new("t")
        .unwrap()
        .workload_interface("c");
    assert_eq!(
        pre[..11],
        [
            "/usr/bin/bbhv",
            "net",
            "attach",
            "--bridge",
            "bt-t",
            "--link",
            link.as_str(),
            "--address",
            "10.0.0.9/24",
            "--gateway",
            "10.0.0.1",
        ]
    );
    assert_eq!(pre[11], "--address6");
    assert!(
        pre[12].starts_with("fd00::") && pre[12].ends_with("/64"),
        "{pre:?}"
    );
    assert_eq!(pre[13..], ["--gateway6", "fd00::1"]);
    assert_eq!(
        reader.values("Unit", "Requires"),
        ["tenant-infra@t.service tenant-network@t.service"]
    );
}

#[test]
fn the_sync_timer_period_resets_and_sets_every_timer() {
    let bbhv_render::Entry::File { path, content, .. } =
        bbhv_render::render_sync_interval(std::time::Duration::from_secs(90))
    else {
        panic!("a file");
    };
    assert_eq!(
        path.to_str(),
        Some("bitbuilder-sync.timer.d/50-interval.conf")
    );
    let timer: Vec<&str> = content.lines().skip_while(|l| *l != "[Timer]").collect();
    assert_eq!(
        timer,
        [
            "[Timer]",
            "OnUnitInactiveSec=",
            "OnActiveSec=1s",
            "OnUnitInactiveSec=90000ms",
            "AccuracySec=1000ms"
        ]
    );
}
