//! Archive and stream formats, recognised by their magic bytes rather than their names.
//!
//! Escrow intake and `diff` both open what they are given by content: a vendor bundle
//! called `.bin` is still a tar.gz. Reading and extracting live in the modules that need them.

use serde::Serialize;

/// A container or compression format the tool understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Tar,
    Gzip,
    Xz,
    Zip,
    /// cpio, "new ASCII" (`070701`) or with CRCs (`070702`).
    Cpio,
    Elf,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zip => "zip",
            Format::Cpio => "cpio",
            Format::Elf => "elf",
        }
    }
}

/// How many leading bytes [`sniff`] needs to see every format (tar's magic sits at 257).
pub const SNIFF_LEN: usize = 512;

/// The format of data starting with `head` (give it [`SNIFF_LEN`] bytes when there are that
/// many), or `None` for plain bytes.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Format::Xz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.starts_with(b"\x7fELF") {
        Some(Format::Elf)
    } else if head.starts_with(b"070701") || head.starts_with(b"070702") {
        Some(Format::Cpio)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(sniff(b"\xfd7zXZ\x00rest"), Some(Format::Xz));
        assert_eq!(sniff(b"PK\x03\x04...."), Some(Format::Zip));
        assert_eq!(sniff(b"\x7fELF\x02\x01"), Some(Format::Elf));
        assert_eq!(sniff(b"070701000000"), Some(Format::Cpio));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Format::Tar));
        assert_eq!(sniff(b"\x00\x01firmware"), None);
        assert_eq!(sniff(b""), None);
    }
}
