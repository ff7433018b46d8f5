//! The plan and its jobs, on the example repository and edits of it.

use std::path::{Path, PathBuf};

use bbhv_generator::Host;
use bbhv_gitops::plan::{self, Change};

fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn example(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/containers"),
        &dir,
    );
    dir
}

fn edit(dir: &Path, tenant: &str, from: &str, to: &str) {
    let file = dir.join("tenants").join(tenant).join("metadata.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

fn host() -> Host {
    let config = bbhv_host::HostConfig::parse(
        "[network]\nuplink = \"eth0\"\nuplink_network = \"10-uplink.network\"\n",
        "host.toml",
    )
    .unwrap();
    Host {
        file: "host.toml".into(),
        config,
        errors: Vec::new(),
    }
}

#[test]
fn only_what_changed_is_touched() {
    let root = tempfile::tempdir().unwrap();
    let old_dir = example(root.path(), "old");
    let new_dir = example(root.path(), "new");
    let host = host();
    let old = plan::render(&old_dir, None, &host, true).unwrap();

    // Nothing changed: an empty plan, whatever the directory is called.
    let same = plan::render(&new_dir, None, &host, true).unwrap();
    let p = plan::diff(&old, &same);
    assert!(p.tenants.is_empty() && p.shared.is_empty(), "{p:#?}");
    assert_eq!(p.unchanged, 2);
    assert!(plan::actions(&p, &old, &same).is_empty());

    // One container's command: that container restarts, nothing else.
    edit(
        &new_dir,
        "shop",
        "daemon off;",
        "daemon off; worker_processes 1;",
    );
    let new = plan::render(&new_dir, Some(&old_dir), &host, true).unwrap();
    let p = plan::diff(&old, &new);
    assert_eq!(p.unchanged, 1);
    assert_eq!(p.tenants.len(), 1);
    let shop = &p.tenants[0];
    assert_eq!((shop.id.as_str(), shop.change), ("shop", Change::Changed));
    assert!(
        shop.files[0].diff.contains("+") && shop.files[0].diff.contains("worker_processes"),
        "{}",
        shop.files[0].diff
    );
    let a = plan::actions(&p, &old, &new);
    assert_eq!(a.restart, vec!["systemd-nspawn@shop.web.service"]);
    assert_eq!(a.start, vec!["tenant@shop.service"]);
    assert!(a.stop.is_empty() && !a.reload_networks);
    assert!(
        a.health
            .contains(&"systemd-nspawn@shop.worker.service".to_owned())
    );
    assert!(!a.health.iter().any(|u| u.contains("appliance")));

    // Limits only: the reload applies them, no job restarts anything.
    let limits = example(root.path(), "limits");
    edit(&limits, "shop", "\"2G\"", "\"3G\"");
    let new = plan::render(&limits, Some(&old_dir), &host, true).unwrap();
    let p = plan::diff(&old, &new);
    let a = plan::actions(&p, &old, &new);
    assert_eq!(
        p.tenants[0].units.keys().collect::<Vec<_>>(),
        vec!["tenants-09-shop.slice"]
    );
    assert!(a.restart.is_empty() && a.stop.is_empty(), "{a:?}");

    // A removed tenant: all its units stop; an added one starts.
    let moved = example(root.path(), "moved");
    std::fs::rename(moved.join("tenants/appliance"), moved.join("tenants/kiosk")).unwrap();
    edit(&moved, "kiosk", "\"appliance\"", "\"kiosk\"");
    let new = plan::render(&moved, Some(&old_dir), &host, true).unwrap();
    let p = plan::diff(&old, &new);
    let a = plan::actions(&p, &old, &new);
    assert!(
        a.stop.contains(&"tenant@appliance.service".to_owned()),
        "{a:?}"
    );
    assert!(
        a.stop
            .contains(&"systemd-nspawn@appliance.os.service".to_owned()),
        "{a:?}"
    );
    assert!(
        a.start.contains(&"tenant@kiosk.service".to_owned()),
        "{a:?}"
    );
    assert!(
        !a.start.iter().chain(&a.restart).any(|u| u.contains("shop")),
        "{a:?}"
    );

    // A network change reloads networkd and restarts the tenant's network.
    let net = example(root.path(), "net");
    edit(&net, "shop", "\"vlan\": 130", "\"vlan\": 131");
    let new = plan::render(&net, Some(&old_dir), &host, true).unwrap();
    let p = plan::diff(&old, &new);
    let a = plan::actions(&p, &old, &new);
    assert!(a.reload_networks);
    assert!(
        a.restart
            .contains(&"tenant-network@shop.service".to_owned()),
        "{a:?}"
    );
}

#[test]
fn an_invalid_checkout_is_refused_with_every_problem() {
    let root = tempfile::tempdir().unwrap();
    let dir = example(root.path(), "bad");
    edit(&dir, "shop", "\"2G\"", "\"lots\"");
    let e = plan::render(&dir, None, &host(), true).unwrap_err();
    assert!(e.to_string().contains("memoryMax"), "{e}");
    // Not strict (bbhv plan shows what the generator would do): the good tenant renders.
    let tree = plan::render(&dir, None, &host(), false).unwrap();
    assert_eq!(tree.tenants.keys().collect::<Vec<_>>(), vec!["appliance"]);
}
