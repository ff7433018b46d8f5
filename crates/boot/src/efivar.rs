//! The EFI variables systemd-boot and the firmware set, as efivarfs shows
//! them: 4 bytes of attributes, then the value.

/// systemd-boot's vendor GUID (`LoaderEntrySelected`, ...).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// The UEFI global variables' GUID (`SecureBoot`, `SetupMode`).
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// A string variable (UTF-16LE, NUL-terminated) such as
/// `LoaderEntrySelected`.
pub fn string(data: &[u8]) -> Option<String> {
    let value = data.get(4..)?;
    if value.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = value
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// A one-byte boolean variable such as `SecureBoot`.
pub fn boolean(data: &[u8]) -> Option<bool> {
    match data.get(4..)? {
        [0] => Some(false),
        [1] => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(value: &[u8]) -> Vec<u8> {
        let mut data = vec![7, 0, 0, 0];
        data.extend_from_slice(value);
        data
    }

    #[test]
    fn strings_and_booleans() {
        let utf16: Vec<u8> = "bbhv-a-1.efi\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(string(&var(&utf16)).as_deref(), Some("bbhv-a-1.efi"));
        assert_eq!(string(&var(&[0x61])), None);
        assert_eq!(string(&[1, 2]), None);
        assert_eq!(boolean(&var(&[1])), Some(true));
        assert_eq!(boolean(&var(&[0])), Some(false));
        assert_eq!(boolean(&var(&[2])), None);
        assert_eq!(boolean(&var(&[])), None);
    }
}
