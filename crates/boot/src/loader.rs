//! `loader/loader.conf`, as `bbhv boot install` writes it.

/// The whole file. `default bbhv-*` with systemd-boot's own order (entries
/// out of tries last, newest version first) is what makes the newest good
/// slot boot and a failed one fall back: no state of ours decides it.
pub fn render() -> String {
    "# Written by `bbhv boot install` (docs/boot.md). systemd-boot boots the first\n\
     # EFI/Linux/bbhv-*.efi in its order: entries with no tries left last, then\n\
     # the newest version. A new UKI is staged as bbhv-<slot>-<version>+N.efi.\n\
     default bbhv-*\n\
     timeout 0\n\
     editor no\n\
     auto-entries no\n\
     auto-firmware no\n\
     secure-boot-enroll off\n\
     console-mode keep\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_to_our_entries_and_locks_the_menu() {
        let text = super::render();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "default bbhv-*",
                "timeout 0",
                "editor no",
                "auto-entries no",
                "auto-firmware no",
                "secure-boot-enroll off",
                "console-mode keep"
            ]
        );
        assert!(text.ends_with('\n'));
    }
}
