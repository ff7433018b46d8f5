//! Records to the journal in its native protocol (systemd's `sd_journal_send`, without
//! libsystemd): one datagram of fields to `/run/systemd/journal/socket`. Structured fields
//! (`BITBUILDER_TENANT=`, `BITBUILDER_COMMIT=`) are what make `journalctl
//! BITBUILDER_TENANT=acme` and `bbhv logs` work. The journal stamps the time itself.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::Priority;

/// Where journald reads native records.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Field names: uppercase ASCII letters, digits and `_`, not starting with `_` (those are
/// journald's trusted fields) or a digit, at most 64 bytes.
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The datagram: `NAME=value\n` for simple values, and the binary form (`NAME\n`, a 64-bit
/// little-endian length, the bytes, `\n`) for any value with a newline, so no value can
/// start a field of its own. Fields with invalid names are left out.
pub fn encode(
    priority: Priority,
    identifier: &str,
    message: &str,
    fields: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = Vec::new();
    let syslog = priority.syslog().to_string();
    let all = [
        ("MESSAGE", message),
        ("PRIORITY", syslog.as_str()),
        ("SYSLOG_IDENTIFIER", identifier),
    ];
    for (name, value) in all.iter().chain(fields) {
        if !valid_field(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Where native records go, when the journal is there.
#[derive(Debug)]
pub struct Journal {
    socket: UnixDatagram,
    identifier: String,
}

impl Journal {
    /// The journal of this machine, when its socket exists and can be reached.
    pub fn open(identifier: &str) -> Option<Journal> {
        Journal::open_at(Path::new(JOURNAL_SOCKET), identifier)
    }

    pub fn open_at(path: &Path, identifier: &str) -> Option<Journal> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(path).ok()?;
        Some(Journal {
            socket,
            identifier: identifier.to_owned(),
        })
    }

    /// Sends one record; false when the journal did not take it (the caller then prints it).
    pub fn send(&self, priority: Priority, message: &str, fields: &[(&str, &str)]) -> bool {
        let record = encode(priority, &self.identifier, message, fields);
        self.socket.send(&record).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_simple_and_binary() {
        let r = encode(
            Priority::Err,
            "bbhv",
            "two\nlines",
            &[
                ("BITBUILDER_TENANT", "acme"),
                ("bad name", "x"),
                ("_PID", "1"),
            ],
        );
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(
            b"two\nlines\nPRIORITY=3\nSYSLOG_IDENTIFIER=bbhv\nBITBUILDER_TENANT=acme\n",
        );
        assert_eq!(r, want);
    }

    #[test]
    fn records_arrive_on_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let j = Journal::open_at(&path, "t").unwrap();
        assert!(j.send(Priority::Info, "hi", &[("BITBUILDER_COMMIT", "abc")]));
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"MESSAGE=hi\nPRIORITY=6\nSYSLOG_IDENTIFIER=t\nBITBUILDER_COMMIT=abc\n"
        );
        assert!(Journal::open_at(&dir.path().join("none"), "t").is_none());
    }
}
