//! How the header fields of the U-Boot, device-tree and bzImage readers are decoded and written
//! for people: big- and little-endian integers read from a header already in memory (never
//! past its end: a short header reads as zeros, and callers check spans first), times with
//! their UTC date, text cut at its NUL and escaped, bytes in hex, bounded in length.

use super::Error;

/// The most bytes of a value written out; a longer value is cut and carries its length and a
/// short digest, so two values that differ past the cut still read differently.
pub(super) const MAX_SHOWN: usize = 64;

/// `len` bytes at `at` in `bytes`, zero-filled where `bytes` ends.
fn take<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = at
            .checked_add(i)
            .and_then(|j| bytes.get(j))
            .copied()
            .unwrap_or(0);
    }
    out
}

pub(super) fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(take(bytes, at))
}

pub(super) fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(take(bytes, at))
}

pub(super) fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(take(bytes, at))
}

pub(super) fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(take(bytes, at))
}

/// A count of seconds since 1970 with its UTC date: `1700000000 (2023-11-14 22:13:20 UTC)`.
pub(super) fn epoch(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    match time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
    {
        Some(date) => format!("{secs} ({date} UTC)"),
        None => secs.to_string(),
    }
}

/// Text up to its first NUL, invalid UTF-8 replaced and control characters escaped, cut at
/// [`MAX_SHOWN`] characters when longer.
pub(super) fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let raw = String::from_utf8_lossy(&bytes[..end]);
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == MAX_SHOWN * 4 {
            out.push_str(&format!("… ({} bytes{})", end, digest(&bytes[..end])));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes in hex, cut at [`MAX_SHOWN`] bytes when longer.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(MAX_SHOWN) * 3);
    for (i, b) in bytes.iter().take(MAX_SHOWN).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    if bytes.len() > MAX_SHOWN {
        out.push_str(&format!(" … ({} bytes{})", bytes.len(), digest(bytes)));
    }
    out
}

/// `, blake3 0123456789abcdef`: enough of a digest to tell two long values apart.
fn digest(bytes: &[u8]) -> String {
    format!(", blake3 {}", &blake3::hash(bytes).to_hex()[..16])
}

/// A decimal number and its hex form: `4096 (0x1000)`.
pub(super) fn number(n: u64) -> String {
    format!("{n} ({n:#x})")
}

/// An [`Error::Corrupt`] of `format`.
pub(super) fn corrupt(format: &'static str, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        format,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_for_people() {
        assert_eq!(epoch(1_700_000_000), "1700000000 (2023-11-14 22:13:20 UTC)");
        assert_eq!(text(b"Linux-6.1\0junk"), "Linux-6.1");
        assert_eq!(text(b"a\x1bb"), "a\\u{1b}b");
        assert_eq!(hex(&[0, 0xff]), "00 ff");
        assert!(hex(&[0u8; 100]).contains("(100 bytes, blake3 "));
        assert_ne!(
            hex(&[0u8; 100]),
            hex(&[[0u8; 99].as_slice(), &[1]].concat())
        );
        assert_eq!(be32(&[1, 2], 0), 0x0102_0000);
        assert_eq!(le16(&[1, 2, 3], 1), 0x0302);
        assert_eq!(be32(&[1, 2], usize::MAX), 0);
        assert_eq!(number(4096), "4096 (0x1000)");
    }
}
