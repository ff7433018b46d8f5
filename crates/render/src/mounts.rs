//! What `mount-generator` writes: per image a container uses, the verified
//! read-only mount of its file; per container the overlay that is its root
//! file system. Pure, like the rest of the renderer.
//!
//! The layers of `/var/lib/tenants/<id>/root/<name>` (overlayfs, top first):
//! the upper directory `/var/lib/tenants/<id>/upper/<name>` (the container's
//! writes), the container's extensions (`extensions/<name>/` of the applied
//! checkout, read-only, the last listed on top), the image (its verified
//! mount `/run/bitbuilder/images/<image>`, or a directory image as it is).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bbhv_spec::Image;
use bbhv_spec::names::Template;
use bbhv_spec::tenant::Tenant;
use bbhv_spec::values::ImageName;
use bbhv_unit::{Line, Syntax, Token, Value, unit_name_from_path};

use crate::container::state_path;
use crate::{CURRENT, Entry, Facts, Root, provenance};

/// Tenants' state file systems: `<dir>/<id>.img` (fixed).
pub const STORAGE_DIR: &str = "/var/lib/bitbuilder/storage";

/// `bitbuilder-storage@<id>.service`: creates or grows the image file.
pub fn storage_unit(tenant: &Tenant) -> Token {
    Token::new(format!("bitbuilder-storage@{}.service", tenant.id)).expect("an id makes a unit")
}

/// With `storageQuota`: `/var/lib/tenants/<id>` is an ext4 file system of
/// that size in `/var/lib/bitbuilder/storage/<id>.img`, so the containers'
/// upper and work directories (and everything else of the tenant's state)
/// count against it and nothing else of the host does.
pub fn render_storage(tenant: &Tenant, facts: &Facts) -> Vec<Entry> {
    if tenant.resources.storage_quota.is_none() {
        return Vec::new();
    }
    let id = &tenant.id;
    let source = Line::join(&facts.source_root, "/", &Line::from(id.metadata_file()));
    let state = Token::new(format!("{}/{id}", crate::container::TENANTS_DIR))
        .expect("an id makes a token path");
    let file = Token::new(format!("{STORAGE_DIR}/{id}.img")).expect("an id makes a token path");
    let mut unit = provenance(facts, &source, Syntax::Unit);
    let description = Line::join(
        &Line::constant("State of tenant"),
        " ",
        &Line::join(
            &Line::from(id.token()),
            " ",
            &Line::constant("(storageQuota)"),
        ),
    );
    let storage = storage_unit(tenant);
    unit.section("Unit")
        .set("Description", description.into())
        .set(
            "Documentation",
            Line::constant("man:systemd.mount(5)").into(),
        )
        .set("SourcePath", Value::line(&source))
        .set("PartOf", id.unit_token(Template::Tenant).into())
        // Without loop devices (a container) the quota cannot be a file
        // system: skipped, and the state stays on the host's /var.
        .set(
            "ConditionPathExists",
            Token::constant("/dev/loop-control").into(),
        )
        .set("Requires", storage.clone().into())
        .set("After", storage.into());
    no_default_dependencies(&mut unit);
    unit.section("Mount")
        .set("What", file.into())
        .set("Where", state.clone().into())
        .set("Type", Token::constant("ext4").into())
        .set("Options", Token::constant("nodev,nosuid").into());
    vec![Entry::File {
        root: Root::Units,
        path: PathBuf::from(mount_unit(&state).as_str()),
        content: unit.render(),
    }]
}

/// `bitbuilder-image@<name>.service`: verifies the image before it is mounted.
pub fn verify_unit(name: &ImageName) -> Token {
    Token::new(format!("bitbuilder-image@{name}.service")).expect("an image name makes a unit")
}

/// The mount unit of a path (`systemd-escape --path --suffix=mount`).
pub fn mount_unit(path: &Token) -> Token {
    Token::new(
        unit_name_from_path(path.as_str(), "mount")
            .expect("a checked absolute path of at most a few hundred bytes"),
    )
    .expect("an escaped unit name is a token")
}

/// The image mounts (once each, for the images any good tenant uses that
/// are files; a directory image needs no mount).
pub fn render_image_mounts(images: &BTreeMap<ImageName, Image>, facts: &Facts) -> Vec<Entry> {
    let mut entries = Vec::new();
    for image in images.values() {
        let (Some(fs_type), Some(what), Some(tree)) =
            (image.format.fs_type(), image.host_path(), image.tree())
        else {
            continue;
        };
        let source = Line::join(
            &facts.source_root,
            "/",
            &Line::from(
                Token::new(Image::source_file(image.name.as_str())).expect("an image file name"),
            ),
        );
        let mut unit = provenance(facts, &source, Syntax::Unit);
        let description = Line::join(
            &Line::constant("BitBuilder image"),
            " ",
            &Line::join(
                &Line::from(Token::new(image.name.as_str()).expect("a name")),
                " ",
                &Line::constant("(verified, read-only)"),
            ),
        );
        let verify = verify_unit(&image.name);
        unit.section("Unit")
            .set("Description", description.into())
            .set(
                "Documentation",
                Line::constant("man:systemd.mount(5)").into(),
            )
            .set("SourcePath", Value::line(&source))
            // Verified first: a digest mismatch fails the verification and
            // nothing is mounted.
            .set("Requires", verify.clone().into())
            .set("After", verify.into());
        no_default_dependencies(&mut unit);
        unit.section("Mount")
            .set("What", what.into())
            .set("Where", tree.clone().into())
            .set("Type", Token::constant(fs_type).into())
            .set("Options", Token::constant("ro,nodev,nosuid").into());
        entries.push(Entry::File {
            root: Root::Units,
            path: PathBuf::from(mount_unit(&tree).as_str()),
            content: unit.render(),
        });
    }
    entries
}

/// The overlay root of each of the tenant's containers.
pub fn render_overlays(
    tenant: &Tenant,
    images: &BTreeMap<ImageName, Image>,
    facts: &Facts,
) -> Vec<Entry> {
    let id = &tenant.id;
    let source = Line::join(&facts.source_root, "/", &Line::from(id.metadata_file()));
    let mut entries = Vec::new();
    for container in &tenant.containers {
        // The plan fails a tenant whose image is missing or not a tree.
        let Some(tree) = images.get(&container.image).and_then(Image::tree) else {
            continue;
        };
        let image = &images[&container.image];
        let root = state_path(tenant, "root", container);
        let mut lower: Vec<String> = container
            .extensions
            .iter()
            .rev()
            .map(|e| format!("{CURRENT}/extensions/{e}"))
            .collect();
        lower.push(tree.to_string());
        // metacopy=on: a change of owner or mode copies up the inode, not
        // the data. nspawn's user namespace needs the root's files owned by
        // the container's UID range: it maps them with an idmapped mount
        // where the file system allows it, which overlayfs does not, so it
        // chowns the tree once (the range is derived from the machine name,
        // so the same at every start); without metacopy that copied the
        // whole image into the upper directory (the lab's container-overlay
        // caught it).
        let options = format!(
            "lowerdir={},upperdir={},workdir={},metacopy=on,nodev,nosuid",
            lower.join(":"),
            state_path(tenant, "upper", container),
            state_path(tenant, "work", container),
        );
        let mut needs = vec![id.unit_token(Template::Infra)];
        if image.format.fs_type().is_some() {
            needs.push(mount_unit(&tree));
        }
        let mut unit = provenance(facts, &source, Syntax::Unit);
        let description = Line::join(
            &Line::join(
                &Line::constant("Root of container"),
                " ",
                &Line::from(Token::new(container.name.as_str()).expect("a name")),
            ),
            " of tenant ",
            &Line::from(id.token()),
        );
        unit.section("Unit")
            .set("Description", description.into())
            .set(
                "Documentation",
                Line::constant("man:systemd.mount(5)").into(),
            )
            .set("SourcePath", Value::line(&source))
            // Unmounted with the tenant, and when no container needs it.
            .set("PartOf", id.unit_token(Template::Tenant).into())
            .set("StopWhenUnneeded", Value::boolean(true))
            // tenant-infra@ makes upper/<name> and work/<name>.
            .set("Requires", tokens(&needs))
            .set("After", tokens(&needs));
        no_default_dependencies(&mut unit);
        unit.section("Mount")
            .set("What", Token::constant("overlay").into())
            .set("Where", root.clone().into())
            .set("Type", Token::constant("overlay").into())
            .set(
                "Options",
                Token::new(options)
                    .expect("paths of ids and names make a token")
                    .into(),
            );
        entries.push(Entry::File {
            root: Root::Units,
            path: PathBuf::from(mount_unit(&root).as_str()),
            content: unit.render(),
        });
    }
    entries
}

/// The mounts are ordered after the units that prepare them, which come
/// after `local-fs.target`: default dependencies (`Before=local-fs.target`)
/// would make a cycle. Unmounted at shutdown as usual.
fn no_default_dependencies(unit: &mut bbhv_unit::UnitFile) {
    unit.set("DefaultDependencies", Value::boolean(false))
        .set("After", Token::constant("local-fs.target").into())
        .set("Conflicts", Token::constant("umount.target").into())
        .set("Before", Token::constant("umount.target").into());
}

fn tokens(tokens: &[Token]) -> Value {
    Value::literals(tokens.iter().map(Token::as_str)).expect("unit names are tokens")
}
