//! Linux x86 kernels in the boot protocol's format (`bzImage`, Debian's `vmlinuz-*`), read as
//! a map; the format is the kernel's `Documentation/arch/x86/boot.rst`.
//!
//! The image starts with `setup_sects + 1` sectors of 512 bytes of real-mode setup (a
//! `setup_sects` of 0 means 4), holding the setup header at 0x1f1 (`boot_flag` 0xaa55 at
//! 0x1fe, `HdrS` at 0x202); then the protected-mode code, which for protocol 2.08 and later
//! holds the compressed kernel at `payload_offset`, `payload_length` bytes long. No maintained
//! Rust crate reads the header without also booting it, so it is read here: fixed
//! little-endian fields, bounds checked.
//!
//! Parts: `setup` (a header part: `setup_sects`, `syssize`, `version`, `code32_start`,
//! `kernel_alignment`, `xloadflags`, `cmdline_size`, `payload_offset`, `payload_length`,
//! `pref_address`, `init_size` — counts, sizes and offsets are lengths, the rest numbers — and
//! `kernel_version`, the version string the `kernel_version` pointer names, as text; the setup
//! code around them is compared as content), then `payload` (the compressed kernel: the walk
//! opens it when it is gzip or xz; LZ4, zstd, LZMA and bzip2 kernels are compared as bytes).
//! The decompressor's code around the payload is left to the comparison's gaps
//! (`after:setup`, `after:payload`). A kernel older than protocol 2.08 has no payload fields:
//! its protected-mode code is one part, `kernel`.
//!
//! Invariants: the setup and the payload lie within the source (checked arithmetic); the
//! version string is read within the setup, at most [`MAX_VERSION`] bytes, and only when it
//! does not overlap another field.

use super::show::{corrupt, le16, le32, le64, number, text};
use super::{check_span, Error, Field, FieldKind, Format, Map, Part, Role, Source};

const NAME: &str = "bzImage";
/// The longest kernel version string read.
const MAX_VERSION: u64 = 256;
/// The setup header ends before this offset in every protocol version so far.
const HEADER_END: usize = 0x270;

pub(super) fn is_bzimage(source: &dyn Source) -> std::io::Result<bool> {
    let h = source.read_at(0x1fe, 8)?;
    Ok(h.len() == 8 && le16(&h, 0) == 0xaa55 && &h[4..8] == b"HdrS")
}

fn field(name: &'static str, offset: u64, len: u64, value: String, kind: FieldKind) -> Field {
    Field {
        name,
        offset,
        len,
        value,
        kind,
    }
}

pub(super) fn map(source: &dyn Source) -> Result<Map, Error> {
    let h = source.read_at(0, HEADER_END)?;
    if h.len() < HEADER_END || le16(&h, 0x1fe) != 0xaa55 || &h[0x202..0x206] != b"HdrS" {
        return Err(corrupt(NAME, "no boot-protocol header (`HdrS` at 0x202)"));
    }
    let version = le16(&h, 0x206);
    let sects = match h[0x1f1] {
        0 => 4,
        n => u64::from(n),
    };
    let setup_len = (sects + 1) * 512;
    check_span(NAME, "the setup (`setup_sects`)", 0, setup_len, source)?;
    let n32 = |at: usize| u64::from(le32(&h, at));
    let mut fields = vec![
        field(
            "setup_sects",
            0x1f1,
            1,
            h[0x1f1].to_string(),
            FieldKind::Length,
        ),
        field("syssize", 0x1f4, 4, number(n32(0x1f4)), FieldKind::Length),
        field(
            "boot_flag",
            0x1fe,
            2,
            format!("{:#06x}", le16(&h, 0x1fe)),
            FieldKind::Number,
        ),
        field(
            "version",
            0x206,
            2,
            format!("{}.{:02}", version >> 8, version & 0xff),
            FieldKind::Number,
        ),
        field(
            "kernel_version_offset",
            0x20e,
            2,
            number(u64::from(le16(&h, 0x20e))),
            FieldKind::Length,
        ),
        field(
            "code32_start",
            0x214,
            4,
            format!("{:#010x}", le32(&h, 0x214)),
            FieldKind::Number,
        ),
    ];
    if version >= 0x205 {
        fields.push(field(
            "kernel_alignment",
            0x230,
            4,
            number(n32(0x230)),
            FieldKind::Number,
        ));
    }
    if version >= 0x20c {
        fields.push(field(
            "xloadflags",
            0x236,
            2,
            format!("{:#06x}", le16(&h, 0x236)),
            FieldKind::Number,
        ));
    }
    if version >= 0x206 {
        fields.push(field(
            "cmdline_size",
            0x238,
            4,
            number(n32(0x238)),
            FieldKind::Number,
        ));
    }
    let payload = if version >= 0x208 {
        fields.push(field(
            "payload_offset",
            0x248,
            4,
            number(n32(0x248)),
            FieldKind::Length,
        ));
        fields.push(field(
            "payload_length",
            0x24c,
            4,
            number(n32(0x24c)),
            FieldKind::Length,
        ));
        fields.push(field(
            "pref_address",
            0x258,
            8,
            format!("{:#x}", le64(&h, 0x258)),
            FieldKind::Number,
        ));
        fields.push(field(
            "init_size",
            0x260,
            4,
            number(n32(0x260)),
            FieldKind::Length,
        ));
        Some((n32(0x248), n32(0x24c)))
    } else {
        None
    };
    // The version string: a pointer less 0x200, within the setup, not over another field.
    let ptr = u64::from(le16(&h, 0x20e));
    if ptr > 0 {
        let at = ptr + 0x200;
        let room = setup_len.saturating_sub(at).min(MAX_VERSION);
        let bytes = source.read_at(at, usize::try_from(room).unwrap_or(0))?;
        if let Some(n) = bytes.iter().position(|&b| b == 0) {
            let len = n as u64;
            let clear = fields
                .iter()
                .all(|f| f.offset + f.len <= at || f.offset >= at + len);
            if len > 0 && clear {
                fields.push(field(
                    "kernel_version",
                    at,
                    len,
                    text(&bytes[..n]),
                    FieldKind::Text,
                ));
            }
        }
    }
    fields.sort_by_key(|f| f.offset);
    let mut parts = vec![Part {
        name: "setup".into(),
        offset: 0,
        len: setup_len,
        role: Role::Header,
        fields,
        packed: None,
    }];
    match payload {
        Some((_, 0)) => {}
        Some((offset, len)) => {
            let at = setup_len
                .checked_add(offset)
                .ok_or_else(|| corrupt(NAME, "the payload lies past any image"))?;
            check_span(
                NAME,
                "the payload (`payload_offset`, `payload_length`)",
                at,
                len,
                source,
            )?;
            parts.push(Part {
                name: "payload".into(),
                offset: at,
                len,
                role: Role::Payload,
                fields: Vec::new(),
                packed: None,
            });
        }
        None => parts.push(Part {
            name: "kernel".into(),
            offset: setup_len,
            len: source.len() - setup_len,
            role: Role::Payload,
            fields: Vec::new(),
            packed: None,
        }),
    }
    Ok(Map {
        format: Format::Bzimage,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::mutate::{self, Padded};
    use super::*;

    /// The first 20480 bytes (the setup) of Debian's `vmlinuz-6.1.0-57-cloud-amd64`
    /// (14190528 bytes in all, from `linux-image-6.1.0-57-cloud-amd64` 6.1.192-3).
    const SETUP: &[u8] = include_bytes!("../../testdata/firmware/vmlinuz-setup.bin");
    const LEN: u64 = 14_190_528;

    fn kernel(head: Vec<u8>) -> Padded {
        Padded { head, len: LEN }
    }

    #[test]
    fn a_debian_kernel_is_its_setup_and_payload() {
        let k = kernel(SETUP.to_vec());
        assert_eq!(super::super::identify(&k).unwrap(), Some(Format::Bzimage));
        let m = map(&k).unwrap();
        let parts: Vec<(&str, u64, u64)> = m
            .parts
            .iter()
            .map(|p| (p.name.as_str(), p.offset, p.len))
            .collect();
        assert_eq!(
            parts,
            [("setup", 0, 20480), ("payload", 20480 + 716, 14_065_015)]
        );
        let f = |name: &str| m.parts[0].fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(f("version").value, "2.15");
        assert_eq!(f("kernel_version").kind, FieldKind::Text);
        assert!(
            f("kernel_version")
                .value
                .starts_with("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP"),
            "{}",
            f("kernel_version").value
        );
        assert_eq!(f("payload_length").kind, FieldKind::Length);
    }

    #[test]
    fn a_payload_past_the_end_is_corrupt() {
        let mut head = SETUP.to_vec();
        head[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = map(&kernel(head)).unwrap_err().to_string();
        assert!(err.contains("the payload"), "{err}");
    }

    proptest! {
        #[test]
        fn mutated_kernels_never_break_the_reader(m in mutate::mutations()) {
            // Mutations land in the header, where the reader looks.
            let head = mutate::apply(&SETUP[..0x1000], &m);
            let mut full = head.clone();
            full.extend_from_slice(&SETUP[head.len().min(0x1000)..]);
            let len = if head.len() < 0x1000 { head.len() as u64 } else { LEN };
            mutate::check(Format::Bzimage, &Padded { head: if len == LEN { full } else { head }, len });
        }
    }
}
