//! Unit names from paths, as `systemd-escape --path` and systemd's
//! `unit_name_from_path()` make them (mount units must be named after
//! their mount point).

/// The longest unit name systemd loads (`UNIT_NAME_MAX`).
pub const UNIT_NAME_MAX: usize = 255;

/// A path that names no unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathNameError {
    #[error("{0:?} is not an absolute path")]
    Relative(String),
    #[error("{0:?} is not a normalized path (it has a \"..\" component)")]
    NotNormalized(String),
    #[error("{0:?} contains a NUL character")]
    Nul(String),
    #[error("the unit name for {0:?} is longer than {UNIT_NAME_MAX} characters")]
    TooLong(String),
}

/// `systemd-escape --path --suffix=SUFFIX PATH`: the path simplified
/// (repeated and trailing `/`, `.` components dropped), its outer slashes
/// removed (`/` alone is `-`), `/` written as `-`, and every byte but ASCII
/// letters, digits, `:`, `_` and `.` (a leading `.` too) as `\xNN`.
pub fn unit_name_from_path(path: &str, suffix: &str) -> Result<String, PathNameError> {
    if !path.starts_with('/') {
        return Err(PathNameError::Relative(path.to_owned()));
    }
    if path.contains('\0') {
        return Err(PathNameError::Nul(path.to_owned()));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(PathNameError::NotNormalized(path.to_owned())),
            part => parts.push(part),
        }
    }
    let mut name = String::new();
    if parts.is_empty() {
        name.push('-');
    }
    for (i, byte) in parts.join("/").bytes().enumerate() {
        match byte {
            b'/' => name.push('-'),
            b'.' if i == 0 => name.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                name.push(char::from(b));
            }
            b => name.push_str(&format!("\\x{b:02x}")),
        }
    }
    name.push('.');
    name.push_str(suffix);
    if name.len() > UNIT_NAME_MAX {
        return Err(PathNameError::TooLong(path.to_owned()));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected name is what `systemd-escape --path --suffix=mount`
    /// (systemd 252) printed for the path.
    #[test]
    fn names_equal_systemd_escape() {
        for (path, expected) in [
            (
                "/var/lib/tenants/acme/root/web",
                "var-lib-tenants-acme-root-web.mount",
            ),
            (
                "/var/lib/tenants/acme-prod/upper/web",
                "var-lib-tenants-acme\\x2dprod-upper-web.mount",
            ),
            (
                "/run/bitbuilder/images/debian-base.v1_x",
                "run-bitbuilder-images-debian\\x2dbase.v1_x.mount",
            ),
            ("/a/.hidden/b", "a-.hidden-b.mount"),
            ("/.hidden", "\\x2ehidden.mount"),
            ("/a b/é:c", "a\\x20b-\\xc3\\xa9:c.mount"),
            ("/", "-.mount"),
            ("//a//b/", "a-b.mount"),
            ("/a/./b", "a-b.mount"),
            ("/a\\b", "a\\x5cb.mount"),
        ] {
            assert_eq!(
                unit_name_from_path(path, "mount").unwrap(),
                expected,
                "{path}"
            );
        }
        assert!(unit_name_from_path("/a/../b", "mount").is_err());
        assert!(unit_name_from_path("a/b", "mount").is_err());
        assert!(unit_name_from_path(&format!("/{}", "a".repeat(300)), "mount").is_err());
    }
}
