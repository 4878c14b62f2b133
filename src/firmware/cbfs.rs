//! coreboot CBFS (what `cbfstool` writes into an FMAP area, or a legacy ROM): its files, by
//! name.
//!
//! A CBFS is read from offset 0 of its source: `LARCHIVE` file headers one after another, each
//! aligned to 64 bytes (big-endian `len`, `type`, `attributes_offset`, `offset`, then the
//! NUL-terminated name). Each file gives a header part (`name/header`: those fields and the
//! name; attribute bytes, a compression attribute included, are compared as content) and its
//! data (`name`), then the fill up to the next 64-byte boundary (`name/align`, padding); the
//! unused space cbfstool lists as `(empty)` files is padding too. The walk
//! stops at the first offset without a header; what follows is compared as a gap. Compressed
//! files (LZMA, LZ4 stages and payloads) are compared as their compressed bytes. Parsed here:
//! the format is a fixed-size header, and no maintained crate reads it.

use std::collections::HashMap;
use std::io;

use super::{be, number, span, Error, Field, FieldKind, Format, Part, Role, Source};

const FORMAT: &str = "CBFS";
const MAGIC: &[u8] = b"LARCHIVE";
const ALIGN: u64 = 64;
/// Header plus name read at once; a longer name is refused.
const MAX_HEADER: usize = 1024;

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        format: FORMAT,
        detail: detail.to_string(),
    }
}

pub(super) fn identify(source: &dyn Source) -> io::Result<bool> {
    Ok(source.read_at(0, 8)? == MAGIC)
}

fn type_name(t: u64) -> &'static str {
    match t {
        0xffff_ffff => "null",
        0x01 => "bootblock",
        0x02 => "cbfs header",
        0x10 => "stage",
        0x20 => "simple elf",
        0x30 => "fit",
        0x40 => "optionrom",
        0x50 => "raw",
        0x51 => "vsa",
        0x52 => "mbi",
        0x53 => "microcode",
        0x54 => "fsp",
        0x55 => "mrc",
        0x62 => "mma",
        0x63 => "efi",
        0x64 => "struct",
        0xaa => "cmos default",
        0x1aa => "cmos layout",
        _ => "other",
    }
}

pub(super) fn map(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut seen = HashMap::new();
    let mut p = 0u64;
    let end = source.len();
    while p.checked_add(24).is_some_and(|e| e <= end) {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let h = source.read_at(p, MAX_HEADER)?;
        if !h.starts_with(MAGIC) {
            break;
        }
        let len = be(&h, 8, 4).unwrap_or(0);
        let kind = be(&h, 12, 4).unwrap_or(0);
        let attr = be(&h, 16, 4).unwrap_or(0);
        let off = be(&h, 20, 4).unwrap_or(0);
        let name_end = h[24..].iter().position(|&b| b == 0).map(|i| 24 + i);
        let Some(name_end) = name_end.filter(|&e| (e as u64) < off) else {
            return Err(corrupt(format!(
                "file at {p:#x}: its name runs past its data offset {off}"
            )));
        };
        if super::to_usize(off) > MAX_HEADER
            || p.checked_add(off)
                .and_then(|d| d.checked_add(len))
                .is_none_or(|e| e > end)
        {
            return Err(corrupt(format!(
                "file at {p:#x}: offset {off} and len {len} run past the image"
            )));
        }
        // CBFS names are path-like (`fallback/romstage`): `/` is kept, control characters not.
        let raw: String = String::from_utf8_lossy(&h[24..name_end])
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let label = match (kind, raw.is_empty()) {
            (0xffff_ffff, _) => "(empty)".to_owned(),
            (_, true) => "(unnamed)".to_owned(),
            _ => raw.clone(),
        };
        let name = super::unique(&mut seen, label);
        let fields = vec![
            Field {
                name: "magic",
                offset: 0,
                len: 8,
                value: "LARCHIVE".into(),
                kind: FieldKind::Text,
            },
            number("len", 8, 4, len, FieldKind::Length),
            Field {
                name: "type",
                offset: 12,
                len: 4,
                value: format!("{kind:#x} ({})", type_name(kind)),
                kind: FieldKind::Number,
            },
            number("attributes_offset", 16, 4, attr, FieldKind::Length),
            number("offset", 20, 4, off, FieldKind::Length),
            Field {
                name: "filename",
                offset: 24,
                len: (name_end + 1 - 24) as u64,
                value: raw,
                kind: FieldKind::Text,
            },
        ];
        parts.push(Part {
            name: format!("{name}/header"),
            offset: p,
            len: off,
            role: Role::Header,
            fields,
            packed: None,
        });
        if len > 0 {
            let role = if kind == 0xffff_ffff {
                Role::Padding
            } else {
                Role::Payload
            };
            parts.push(span(name.clone(), p + off, len, role));
        }
        if parts.len() > super::MAX_PARTS {
            return Err(corrupt("too many files"));
        }
        let data_end = p + off + len;
        let next = data_end.div_ceil(ALIGN) * ALIGN;
        if next <= p {
            break;
        }
        if next > data_end && next <= end {
            // The fill up to the next 64-byte boundary: it grows and shrinks with the file.
            parts.push(span(
                format!("{name}/align"),
                data_end,
                next - data_end,
                Role::Padding,
            ));
        }
        p = next;
    }
    if parts.is_empty() {
        return Err(corrupt("no file header at offset 0"));
    }
    super::finish(Format::Cbfs, parts, source)
}
