//! `bbhv boot status`: the slots on the ESP and what the firmware and
//! systemd-boot said about this boot.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::entry::{Entry, Slot, State, Version};
use crate::plan::{default_entry, sorted};

/// What the EFI variables say (each `None` when not set or unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Firmware {
    /// `SecureBoot`: the firmware enforces signatures.
    pub secure_boot: Option<bool>,
    /// `SetupMode`: no platform key enrolled (nothing enforced).
    pub setup_mode: Option<bool>,
    /// `LoaderEntrySelected`: the entry systemd-boot booted.
    pub entry_selected: Option<String>,
    /// `LoaderBootCountPath`: set while the booted entry is on trial.
    pub boot_count_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    pub slot: Slot,
    pub version: Version,
    pub file: String,
    pub id: String,
    pub state: State,
    pub tries_left: Option<u32>,
    pub tries_done: Option<u32>,
    /// systemd-boot booted this one.
    pub booted: bool,
    /// systemd-boot boots this one next (loader.conf's `default bbhv-*`).
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub esp: PathBuf,
    pub firmware: Firmware,
    /// In systemd-boot's order.
    pub slots: Vec<SlotStatus>,
    /// Files named `bbhv-*` that are not slot names (left alone).
    pub unknown_files: Vec<String>,
}

impl Status {
    pub fn new(
        esp: PathBuf,
        firmware: Firmware,
        entries: &[Entry],
        unknown_files: Vec<String>,
    ) -> Status {
        let default = default_entry(entries).map(Entry::file_name);
        let slots = sorted(entries)
            .into_iter()
            .map(|e| SlotStatus {
                slot: e.slot,
                version: e.version.clone(),
                file: e.file_name(),
                id: e.id(),
                state: e.state(),
                tries_left: e.counter.map(|c| c.left),
                tries_done: e.counter.map(|c| c.done.unwrap_or(0)),
                booted: firmware.entry_selected.as_deref() == Some(e.id().as_str()),
                default: default.as_deref() == Some(e.file_name().as_str()),
            })
            .collect();
        Status {
            esp,
            firmware,
            slots,
            unknown_files,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Status serializes")
    }

    /// The human-readable form.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let yes_no = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let _ = writeln!(out, "ESP: {}", self.esp.display());
        let _ = writeln!(
            out,
            "Secure Boot: {} (setup mode: {})",
            yes_no(self.firmware.secure_boot),
            yes_no(self.firmware.setup_mode)
        );
        let _ = writeln!(
            out,
            "booted entry: {}",
            self.firmware
                .entry_selected
                .as_deref()
                .unwrap_or("unknown (not booted by systemd-boot from this ESP)")
        );
        if self.slots.is_empty() {
            let _ = writeln!(out, "no slots (run `bbhv boot install`)");
        }
        for s in &self.slots {
            let state = match (s.state, s.tries_left) {
                (State::Trying, Some(left)) => format!("trying, {left} tries left"),
                (State::Bad, _) => "bad, no tries left".to_owned(),
                _ => "good".to_owned(),
            };
            let mut marks = Vec::new();
            if s.booted {
                marks.push("booted");
            }
            if s.default {
                marks.push("default");
            }
            let _ = writeln!(
                out,
                "slot {}: version {} ({state}) {}{}",
                s.slot,
                s.version,
                s.file,
                if marks.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", marks.join(", "))
                }
            );
        }
        for f in &self.unknown_files {
            let _ = writeln!(out, "unknown file: {f} (not a slot name; left alone)");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(names: &[&str], booted: Option<&str>) -> Status {
        let entries: Vec<Entry> = names
            .iter()
            .map(|n| Entry::parse(n).unwrap().unwrap())
            .collect();
        Status::new(
            "/efi".into(),
            Firmware {
                secure_boot: Some(true),
                setup_mode: Some(false),
                entry_selected: booted.map(str::to_owned),
                boot_count_path: None,
            },
            &entries,
            vec![],
        )
    }

    #[test]
    fn json_shape() {
        let s = status(&["bbhv-a-1.efi", "bbhv-b-2+2-1.efi"], Some("bbhv-b-2.efi"));
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(json["esp"], "/efi");
        assert_eq!(json["firmware"]["secure_boot"], true);
        assert_eq!(json["firmware"]["entry_selected"], "bbhv-b-2.efi");
        let slots = json["slots"].as_array().unwrap();
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0]["slot"], "b");
        assert_eq!(slots[0]["version"], "2");
        assert_eq!(slots[0]["state"], "trying");
        assert_eq!(slots[0]["tries_left"], 2);
        assert_eq!(slots[0]["tries_done"], 1);
        assert_eq!(slots[0]["booted"], true);
        assert_eq!(slots[0]["default"], true);
        assert_eq!(slots[1]["file"], "bbhv-a-1.efi");
        assert_eq!(slots[1]["state"], "good");
        assert_eq!(slots[1]["tries_left"], serde_json::Value::Null);
        assert_eq!(slots[1]["booted"], false);
        assert_eq!(slots[1]["default"], false);
    }

    #[test]
    fn text_marks_booted_and_default() {
        let s = status(&["bbhv-a-1.efi", "bbhv-b-2+0-3.efi"], Some("bbhv-a-1.efi"));
        let text = s.render();
        assert!(text.contains("Secure Boot: yes"), "{text}");
        assert!(
            text.contains("slot a: version 1 (good) bbhv-a-1.efi [booted, default]"),
            "{text}"
        );
        assert!(
            text.contains("slot b: version 2 (bad, no tries left) bbhv-b-2+0-3.efi\n"),
            "{text}"
        );
    }
}
