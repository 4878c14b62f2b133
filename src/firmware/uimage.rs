//! U-Boot legacy images (`mkimage -T kernel|ramdisk|multi|script …`), read as a map.
//!
//! The format is U-Boot's `include/image.h`: a 64-byte big-endian header (`ih_magic`
//! 0x27051956, `ih_hcrc` over the header, `ih_time`, `ih_size` of the data, `ih_load`, `ih_ep`,
//! `ih_dcrc` over the data, then one byte each of `ih_os`, `ih_arch`, `ih_type`, `ih_comp`, and
//! the 32-byte `ih_name`), then `ih_size` bytes of data. No maintained Rust crate reads it
//! (the header is 64 bytes of fixed fields), so it is read here.
//!
//! Parts: `header` (its twelve fields: `ih_time` a timestamp, `ih_hcrc` and `ih_dcrc`
//! checksums, `ih_size` a length), then `data` — or, for a multi-file or script image
//! (`ih_type` 4 or 6), `sizes` (the zero-terminated table of sub-image lengths, one length
//! field) and `image-0`, `image-1`, … (each sub-image, in the table's order; the padding to 4
//! bytes after each is a padding part, `image-0:pad`, passed over when it is fill on both
//! sides). Bytes after the data are not a part.
//! Invariants: every part lies within the source (`ih_size` and every table entry are checked
//! with checked arithmetic), the table is read in bounded chunks and holds at most
//! [`MAX_PARTS`] entries.

use super::show::{be32, corrupt, epoch, number, text};
use super::{check_span, Field, FieldKind, Format, Map, Part, Role, Source, MAX_PARTS};

const NAME: &str = "uImage";
const MAGIC: u32 = 0x2705_1956;
const HEADER_LEN: u64 = 64;
/// `ih_type` of a multi-file image and of a script: both start their data with a size table.
const TYPE_MULTI: u8 = 4;
const TYPE_SCRIPT: u8 = 6;

pub(super) fn is_uimage(source: &dyn Source) -> std::io::Result<bool> {
    let head = source.read_at(0, 4)?;
    Ok(source.len() >= HEADER_LEN && be32(&head, 0) == MAGIC)
}

fn os_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "openbsd",
        2 => "netbsd",
        3 => "freebsd",
        5 => "linux",
        17 => "u-boot",
        20 => "openrtos",
        22 => "tee",
        23 => "opensbi",
        24 => "efi",
        25 => "elf",
        _ => return None,
    })
}

fn arch_name(code: u8) -> Option<&'static str> {
    Some(match code {
        2 => "arm",
        3 => "x86",
        5 => "mips",
        7 => "powerpc",
        15 => "sh",
        20 => "x86_64",
        22 => "arm64",
        26 => "riscv",
        _ => return None,
    })
}

fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "standalone",
        2 => "kernel",
        3 => "ramdisk",
        4 => "multi",
        5 => "firmware",
        6 => "script",
        7 => "filesystem",
        8 => "flat_dt",
        14 => "kernel_noload",
        _ => return None,
    })
}

fn comp_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "none",
        1 => "gzip",
        2 => "bzip2",
        3 => "lzma",
        4 => "lzo",
        5 => "lz4",
        6 => "zstd",
        _ => return None,
    })
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

fn code(name: &'static str, offset: u64, code: u8, names: fn(u8) -> Option<&'static str>) -> Field {
    let value = match names(code) {
        Some(n) => format!("{code} ({n})"),
        None => code.to_string(),
    };
    field(name, offset, 1, value, FieldKind::Number)
}

fn header_fields(h: &[u8]) -> Vec<Field> {
    vec![
        field(
            "ih_magic",
            0,
            4,
            format!("{:#010x}", be32(h, 0)),
            FieldKind::Number,
        ),
        field(
            "ih_hcrc",
            4,
            4,
            format!("{:#010x}", be32(h, 4)),
            FieldKind::Checksum,
        ),
        field(
            "ih_time",
            8,
            4,
            epoch(i64::from(be32(h, 8))),
            FieldKind::Timestamp,
        ),
        field(
            "ih_size",
            12,
            4,
            number(u64::from(be32(h, 12))),
            FieldKind::Length,
        ),
        field(
            "ih_load",
            16,
            4,
            format!("{:#010x}", be32(h, 16)),
            FieldKind::Number,
        ),
        field(
            "ih_ep",
            20,
            4,
            format!("{:#010x}", be32(h, 20)),
            FieldKind::Number,
        ),
        field(
            "ih_dcrc",
            24,
            4,
            format!("{:#010x}", be32(h, 24)),
            FieldKind::Checksum,
        ),
        code("ih_os", 28, h[28], os_name),
        code("ih_arch", 29, h[29], arch_name),
        code("ih_type", 30, h[30], type_name),
        code("ih_comp", 31, h[31], comp_name),
        field("ih_name", 32, 32, text(&h[32..64]), FieldKind::Text),
    ]
}

pub(super) fn map(source: &dyn Source) -> Result<Map, super::Error> {
    let h = source.read_at(0, 64)?;
    if h.len() < 64 || be32(&h, 0) != MAGIC {
        return Err(corrupt(NAME, "no uImage header (magic 0x27051956)"));
    }
    let size = u64::from(be32(&h, 12));
    check_span(NAME, "the data (`ih_size`)", HEADER_LEN, size, source)?;
    let mut parts = vec![Part {
        name: "header".into(),
        offset: 0,
        len: HEADER_LEN,
        role: Role::Header,
        fields: header_fields(&h),
        packed: None,
    }];
    if h[30] == TYPE_MULTI || h[30] == TYPE_SCRIPT {
        sub_images(source, size, &mut parts)?;
    } else {
        parts.push(Part {
            name: "data".into(),
            offset: HEADER_LEN,
            len: size,
            role: Role::Payload,
            fields: Vec::new(),
            packed: None,
        });
    }
    Ok(Map {
        format: Format::Uimage,
        parts,
    })
}

/// The size table at the start of a multi-file image's data, and the sub-images after it.
fn sub_images(source: &dyn Source, size: u64, parts: &mut Vec<Part>) -> Result<(), super::Error> {
    const CHUNK: usize = 4096;
    let mut sizes: Vec<u64> = Vec::new();
    let mut at = HEADER_LEN;
    let end = HEADER_LEN + size;
    'table: loop {
        let chunk = source.read_at(at, CHUNK)?;
        for word in chunk.chunks(4) {
            if word.len() < 4 || at + 4 > end {
                return Err(corrupt(NAME, "the multi-file size table has no end"));
            }
            at += 4;
            let n = u64::from(be32(word, 0));
            if n == 0 {
                break 'table;
            }
            if sizes.len() >= MAX_PARTS {
                return Err(corrupt(NAME, format!("more than {MAX_PARTS} sub-images")));
            }
            sizes.push(n);
        }
        if chunk.is_empty() {
            return Err(corrupt(NAME, "the multi-file size table has no end"));
        }
    }
    let table = sizes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    parts.push(Part {
        name: "sizes".into(),
        offset: HEADER_LEN,
        len: at - HEADER_LEN,
        role: Role::Header,
        fields: vec![field("sizes", 0, at - HEADER_LEN, table, FieldKind::Length)],
        packed: None,
    });
    for (i, &n) in sizes.iter().enumerate() {
        let what = format!("sub-image {i}");
        check_span(NAME, &what, at, n, source)?;
        if at + n > end {
            return Err(corrupt(
                NAME,
                format!("{what} at {at:#x}+{n} runs past the data (`ih_size` {size})"),
            ));
        }
        parts.push(Part {
            name: format!("image-{i}"),
            offset: at,
            len: n,
            role: Role::Payload,
            fields: Vec::new(),
            packed: None,
        });
        // Sub-images are padded to 4 bytes (not past the data).
        let next = (at + n).next_multiple_of(4).min(end).max(at + n);
        super::fdt::pad_part(&format!("image-{i}"), at + n, next, parts);
        at = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::mutate::{self, Bytes};
    use super::*;

    const KERNEL: &[u8] = include_bytes!("../../testdata/firmware/kernel.uimg");
    const MULTI: &[u8] = include_bytes!("../../testdata/firmware/multi.uimg");

    fn names(m: &Map) -> Vec<(&str, u64, u64)> {
        m.parts
            .iter()
            .map(|p| (p.name.as_str(), p.offset, p.len))
            .collect()
    }

    #[test]
    fn a_kernel_image_is_its_header_and_data() {
        assert!(is_uimage(&Bytes(KERNEL)).unwrap());
        assert_eq!(
            super::super::identify(&Bytes(KERNEL)).unwrap(),
            Some(Format::Uimage)
        );
        let m = map(&Bytes(KERNEL)).unwrap();
        assert_eq!(names(&m), [("header", 0, 64), ("data", 64, 54)]);
        let f = |name: &str| m.parts[0].fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(f("ih_time").value, "1700000000 (2023-11-14 22:13:20 UTC)");
        assert_eq!(f("ih_time").kind, FieldKind::Timestamp);
        assert_eq!(f("ih_hcrc").kind, FieldKind::Checksum);
        assert_eq!(f("ih_dcrc").kind, FieldKind::Checksum);
        assert_eq!(f("ih_size").kind, FieldKind::Length);
        assert_eq!(f("ih_comp").value, "1 (gzip)");
        assert_eq!(f("ih_arch").value, "2 (arm)");
        assert_eq!(f("ih_name").value, "reprove test");
    }

    #[test]
    fn a_multi_file_image_lists_its_sub_images() {
        let m = map(&Bytes(MULTI)).unwrap();
        assert_eq!(
            names(&m),
            [
                ("header", 0, 64),
                ("sizes", 64, 16),
                ("image-0", 80, 2600),
                ("image-1", 2680, 16),
                ("image-2", 2696, 377),
            ]
        );
        assert_eq!(m.parts[1].fields[0].value, "2600, 16, 377");
    }

    #[test]
    fn a_size_past_the_end_is_corrupt() {
        let mut bad = KERNEL.to_vec();
        bad[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = map(&Bytes(&bad)).unwrap_err().to_string();
        assert!(err.contains("runs past the end"), "{err}");
        // A table whose terminator is cut off.
        let mut bad = MULTI[..76].to_vec();
        bad[12..16].copy_from_slice(&12u32.to_be_bytes());
        let err = map(&Bytes(&bad)).unwrap_err().to_string();
        assert!(err.contains("no end"), "{err}");
    }

    proptest! {
        #[test]
        fn mutated_images_never_break_the_reader(
            m in mutate::mutations(),
            multi in any::<bool>(),
        ) {
            let image = mutate::apply(if multi { MULTI } else { KERNEL }, &m);
            mutate::check(Format::Uimage, &Bytes(&image));
        }
    }
}
