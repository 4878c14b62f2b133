//! UEFI firmware volumes (PI spec vol. 3: `EFI_FIRMWARE_VOLUME_HEADER`, `_FVH` at 0x28), the
//! FFS files in them and the sections of each file.
//!
//! A volume is named by its extended header's `FvName` (`FV(48db5e17-…)`), else by its offset
//! (`FV@0x0`); an image may hold several volumes back to back (`OVMF_CODE.fd` holds two). A file
//! is named by its UI section's text when it has one (`FV(…)/DxeCore`), else by its GUID; pad
//! files are `pad`. Each volume header, file header and section header is a header part with
//! its fields (`FvLength`, `Checksum`, `IntegrityCheck.File`, `Size`…); each section's content
//! is a part named by its type (`pe32`, `ui`, `fv`, `guided`…). A volume's free space after
//! its last file is padding (`FV(…)/free`); alignment between files and sections is left for
//! the comparison to compare as gaps.
//!
//! Encapsulation sections: a GUID-defined section of the LZMA GUID (`EE4E5898-…`, what edk2's
//! `LzmaCompress` writes) is unpacked with xz2's LZMA-alone decoder into a packed part
//! (`…/guided/unpacked`) read as a section stream ([`super::Format::UefiSections`]); so is a
//! CRC32 GUID-defined section and an uncompressed compression section (their content is a
//! section stream in place). EFI/Tiano-compressed sections (compression type 1), LZMA-F86 and
//! Brotli GUIDs are listed as opaque parts compared as bytes: no maintained crate decompresses
//! the first, and the others are not handled yet.
//!
//! Why a parser of our own: crates.io has type definitions (`r-efi`, `uefi-raw`) and
//! `patina_ffs` (Microsoft's Patina), which parses volumes, files and sections from one
//! in-memory slice, copies sections out and does not say where each lies in the image — this
//! map needs offsets, reads a volume with positioned reads of bounded size and must not hold
//! a flash image in memory. The structures are fixed-size headers; every size and offset is
//! checked against its container before it is used.

use std::collections::HashMap;
use std::io::{self, Read};

use super::{
    check_span, le, number, span, Error, Field, FieldKind, Format, Packed, Part, Role, Source,
};

const FORMAT: &str = "UEFI firmware volume";
/// The LZMA-compressed GUID-defined section (`EE4E5898-3914-4259-9D6E-DC7BD79403CF`).
const LZMA_GUID: [u8; 16] = [
    0x98, 0x58, 0x4e, 0xee, 0x14, 0x39, 0x59, 0x42, 0x9d, 0x6e, 0xdc, 0x7b, 0xd7, 0x94, 0x03, 0xcf,
];
/// The CRC32 GUID-defined section (`FC1BCDB0-7D31-49AA-936A-A4600D9DD083`): data in place.
const CRC32_GUID: [u8; 16] = [
    0xb0, 0xcd, 0x1b, 0xfc, 0x31, 0x7d, 0xaa, 0x49, 0x93, 0x6a, 0xa4, 0x60, 0x0d, 0x9d, 0xd0, 0x83,
];
/// Volume headers read at once (the block map of a sane volume is a few entries).
const MAX_HEADER: usize = 4096;

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        format: FORMAT,
        detail: detail.to_string(),
    }
}

pub(super) fn identify(source: &dyn Source) -> io::Result<bool> {
    Ok(source.read_at(0x28, 4)? == b"_FVH")
}

/// A GUID in its registry form (`48db5e17-707c-472d-91cd-1613e7ef51b0`).
fn guid(b: &[u8]) -> String {
    if b.len() < 16 {
        return "?".into();
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn field(name: &'static str, offset: u64, len: u64, buf: &[u8], kind: FieldKind) -> Field {
    let v = le(buf, super::to_usize(offset), super::to_usize(len)).unwrap_or(0);
    number(name, offset, len, v, kind)
}

fn text(name: &'static str, offset: u64, len: u64, value: String) -> Field {
    Field {
        name,
        offset,
        len,
        value,
        kind: FieldKind::Text,
    }
}

fn header(name: String, offset: u64, len: u64, fields: Vec<Field>) -> Part {
    Part {
        name,
        offset,
        len,
        role: Role::Header,
        fields,
        packed: None,
    }
}

fn align(v: u64, to: u64) -> Option<u64> {
    v.checked_add(to - 1).map(|x| x / to * to)
}

/// `EFI_SYSTEM_NV_DATA_FV_GUID`: the volume holds the NVRAM variable store (and its
/// fault-tolerant-write areas), not FFS files.
pub(crate) const NV_DATA_GUID: &str = "fff12b8d-7696-4c8b-a985-2747075b4f50";

/// What a volume's header says about it, for a dump's own layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumeHeader {
    /// `FvLength`: the volume's size, header included (checked against nothing but the
    /// header: the caller judges it against the dump).
    pub len: u64,
    /// `FV(<FvName>)` from the extended header, else `FV@<base>`, as [`map_volumes`] names it.
    pub name: String,
    /// `FileSystemGuid`, in registry form ([`NV_DATA_GUID`] for a variable store).
    pub file_system: String,
    /// The erased byte (`EFI_FVB2_ERASE_POLARITY`): 0xff or 0x00.
    pub erase: u8,
}

/// The volume header at `base` of `source`, when one is there: `_FVH` at 0x28, a
/// `HeaderLength` of at least 0x48 (even, within 4 KiB and `FvLength`) and a header whose
/// 16-bit words sum to 0, as the PI spec requires. A `_FVH` that fails these is not a volume
/// (`Ok(None)`): the four bytes occur by chance in code and data.
pub(crate) fn volume_header(source: &dyn Source, base: u64) -> io::Result<Option<VolumeHeader>> {
    let h = source.read_at(base, MAX_HEADER)?;
    if h.get(0x28..0x2c) != Some(b"_FVH") {
        return Ok(None);
    }
    let fv_len = le(&h, 0x20, 8).unwrap_or(0);
    let hdr_len = le(&h, 0x30, 2).unwrap_or(0);
    let attributes = le(&h, 0x2c, 4).unwrap_or(0);
    let ext_off = le(&h, 0x34, 2).unwrap_or(0);
    let Some(header) = h.get(..super::to_usize(hdr_len)) else {
        return Ok(None);
    };
    let sum = header.chunks_exact(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    if hdr_len < 0x48 || hdr_len % 2 != 0 || hdr_len > fv_len || sum != 0 {
        return Ok(None);
    }
    let mut name = format!("FV@{base:#x}");
    if ext_off >= hdr_len && ext_off.checked_add(20).is_some_and(|e| e <= fv_len) {
        let e = source.read_at(base.saturating_add(ext_off), 16)?;
        if e.len() == 16 {
            name = format!("FV({})", guid(&e));
        }
    }
    Ok(Some(VolumeHeader {
        len: fv_len,
        name,
        file_system: guid(&h[0x10..0x20]),
        erase: if attributes & 0x800 != 0 { 0xff } else { 0x00 },
    }))
}

/// Every volume of `source`, one after another from offset 0.
pub(super) fn map_volumes(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut seen = HashMap::new();
    let mut at = 0u64;
    while at < source.len() {
        if source.read_at(at.saturating_add(0x28), 4)? != b"_FVH" {
            break;
        }
        at = volume(source, at, &mut parts, &mut seen)?;
    }
    super::finish(Format::UefiFv, parts, source)
}

/// The volume at `base`: its parts added to `parts`; returns where it ends.
fn volume(
    source: &dyn Source,
    base: u64,
    parts: &mut Vec<Part>,
    seen: &mut HashMap<String, usize>,
) -> Result<u64, Error> {
    let h = source.read_at(base, MAX_HEADER)?;
    let fv_len = le(&h, 0x20, 8).ok_or_else(|| corrupt("short volume header"))?;
    let hdr_len = le(&h, 0x30, 2).unwrap_or(0);
    let ext_off = le(&h, 0x34, 2).unwrap_or(0);
    let attributes = le(&h, 0x2c, 4).unwrap_or(0);
    if hdr_len < 0x48 || hdr_len > fv_len || super::to_usize(hdr_len) > h.len() {
        return Err(corrupt(format!(
            "volume at {base:#x}: HeaderLength {hdr_len} does not fit FvLength {fv_len}"
        )));
    }
    check_span(FORMAT, "volume", base, fv_len, source)?;
    let erase = if attributes & 0x800 != 0 { 0xff } else { 0x00 };
    let mut name = format!("FV@{base:#x}");
    let mut files_at = hdr_len;
    let mut ext = None;
    if ext_off != 0 {
        let e = source.read_at(base + ext_off, 20)?;
        let size = le(&e, 16, 4).unwrap_or(0);
        if size < 20
            || ext_off.checked_add(size).is_none_or(|end| end > fv_len)
            || ext_off < hdr_len
        {
            return Err(corrupt(format!("volume at {base:#x}: bad extended header")));
        }
        name = format!("FV({})", guid(&e));
        files_at = ext_off + size;
        ext = Some((ext_off, size));
    }
    let name = super::unique(seen, name);
    let mut fields = vec![
        field("ZeroVector", 0, 16, &h, FieldKind::Number),
        text("FileSystemGuid", 0x10, 16, guid(&h[0x10..])),
        field("FvLength", 0x20, 8, &h, FieldKind::Length),
        text("Signature", 0x28, 4, "_FVH".into()),
        field("Attributes", 0x2c, 4, &h, FieldKind::Number),
        field("HeaderLength", 0x30, 2, &h, FieldKind::Length),
        field("Checksum", 0x32, 2, &h, FieldKind::Checksum),
        field("ExtHeaderOffset", 0x34, 2, &h, FieldKind::Length),
        field("Reserved", 0x36, 1, &h, FieldKind::Number),
        field("Revision", 0x37, 1, &h, FieldKind::Number),
    ];
    fields.push(Field {
        name: "BlockMap",
        offset: 0x38,
        len: hdr_len - 0x38,
        value: hex(&h[0x38..super::to_usize(hdr_len)]),
        kind: FieldKind::Length,
    });
    parts.push(header(format!("{name}/header"), base, hdr_len, fields));
    if let Some((off, size)) = ext {
        parts.push(span(
            format!("{name}/ext-header"),
            base + off,
            size,
            Role::Other,
        ));
    }
    let end = base + fv_len;
    let mut p = base + align(files_at, 8).ok_or_else(|| corrupt("bad offset"))?;
    let mut fseen = HashMap::new();
    let mut last = p;
    while p.checked_add(24).is_some_and(|e| e <= end) {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let fh = source.read_at(p, 32)?;
        if fh[..24].iter().all(|&b| b == erase) {
            break;
        }
        let attr = fh[19];
        let large = attr & 0x01 != 0;
        let hsize: u64 = if large { 32 } else { 24 };
        let size = if large {
            le(&fh, 24, 8).unwrap_or(0)
        } else {
            le(&fh, 20, 3).unwrap_or(0)
        };
        if size < hsize || p.checked_add(size).is_none_or(|e| e > end) {
            return Err(corrupt(format!(
                "file at {p:#x}: Size {size} runs past its volume"
            )));
        }
        if parts.len() > super::MAX_PARTS {
            return Err(corrupt("too many parts"));
        }
        file(source, p, hsize, size, &name, &mut fseen, parts)?;
        last = p + size;
        p = align(p + size, 8).ok_or_else(|| corrupt("bad offset"))?;
    }
    // From the end of the last file: its alignment is free space too.
    let free = last.max(base + files_at);
    if free < end {
        parts.push(span(
            format!("{name}/free"),
            free,
            end - free,
            Role::Padding,
        ));
    }
    Ok(end)
}

/// One section found in a stream: its offset, header size, total size and type.
struct Sec {
    at: u64,
    hsize: u64,
    size: u64,
    kind: u8,
}

/// The sections in `start..end` of `source`, 4-aligned.
fn sections(source: &dyn Source, start: u64, end: u64) -> Result<Vec<Sec>, Error> {
    let mut out = Vec::new();
    let mut s = start;
    while s.checked_add(4).is_some_and(|e| e <= end) {
        let sh = source.read_at(s, 8)?;
        let small = le(&sh, 0, 3).unwrap_or(0);
        let kind = sh.get(3).copied().unwrap_or(0);
        let (hsize, size) = if small == 0x00ff_ffff {
            (8, le(&sh, 4, 4).unwrap_or(0))
        } else {
            (4, small)
        };
        if size < hsize || s.checked_add(size).is_none_or(|e| e > end) {
            return Err(corrupt(format!(
                "section at {s:#x}: size {size} runs past its file"
            )));
        }
        out.push(Sec {
            at: s,
            hsize,
            size,
            kind,
        });
        if out.len() > super::MAX_PARTS {
            return Err(corrupt("too many sections"));
        }
        s = align(s + size, 4).ok_or_else(|| corrupt("bad offset"))?;
    }
    Ok(out)
}

fn section_name(kind: u8) -> String {
    match kind {
        0x01 => "compressed".into(),
        0x02 => "guided".into(),
        0x03 => "disposable".into(),
        0x10 => "pe32".into(),
        0x11 => "pic".into(),
        0x12 => "te".into(),
        0x13 => "dxe-depex".into(),
        0x14 => "version".into(),
        0x15 => "ui".into(),
        0x16 => "compat16".into(),
        0x17 => "fv".into(),
        0x18 => "freeform".into(),
        0x19 => "raw".into(),
        0x1b => "pei-depex".into(),
        0x1c => "mm-depex".into(),
        k => format!("section-{k:#04x}"),
    }
}

/// The text of a UI section's content (UCS-2, NUL-terminated), cleaned for a part name.
fn ui_text(source: &dyn Source, sec: &Sec) -> io::Result<Option<String>> {
    let len = usize::try_from((sec.size - sec.hsize).min(512)).unwrap_or(512);
    let b = source.read_at(sec.at + sec.hsize, len)?;
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s: String = String::from_utf16_lossy(&units)
        .chars()
        .map(|c| if c.is_control() || c == '/' { '_' } else { c })
        .collect();
    Ok((!s.is_empty()).then_some(s))
}

/// The FFS file at `p` (header `hsize`, total `size`) of volume `fv`.
fn file(
    source: &dyn Source,
    p: u64,
    hsize: u64,
    size: u64,
    fv: &str,
    seen: &mut HashMap<String, usize>,
    parts: &mut Vec<Part>,
) -> Result<(), Error> {
    let fh = source.read_at(p, 32)?;
    let kind = fh[18];
    let has_sections = (0x02..=0x0f).contains(&kind);
    let secs = if has_sections {
        sections(source, p + hsize, p + size)?
    } else {
        Vec::new()
    };
    let mut label = if kind == 0xf0 {
        "pad".to_owned()
    } else {
        guid(&fh)
    };
    for s in secs.iter().filter(|s| s.kind == 0x15) {
        if let Some(t) = ui_text(source, s)? {
            label = t;
            break;
        }
    }
    let name = format!("{fv}/{}", super::unique(seen, label));
    let mut fields = vec![
        text("Name", 0, 16, guid(&fh)),
        field("IntegrityCheck.Header", 16, 1, &fh, FieldKind::Checksum),
        field("IntegrityCheck.File", 17, 1, &fh, FieldKind::Checksum),
        field("Type", 18, 1, &fh, FieldKind::Number),
        field("Attributes", 19, 1, &fh, FieldKind::Number),
        field("Size", 20, 3, &fh, FieldKind::Length),
        field("State", 23, 1, &fh, FieldKind::Number),
    ];
    if hsize == 32 {
        fields.push(field("ExtendedSize", 24, 8, &fh, FieldKind::Length));
    }
    parts.push(header(format!("{name}/header"), p, hsize, fields));
    if !has_sections {
        let role = if kind == 0xf0 {
            Role::Padding
        } else {
            Role::Payload
        };
        if size > hsize {
            parts.push(span(format!("{name}/data"), p + hsize, size - hsize, role));
        }
        return Ok(());
    }
    section_parts(source, &secs, &name, parts)
}

/// Parts for the sections `secs`, named under `prefix` (`""` for a top-level stream).
fn section_parts(
    source: &dyn Source,
    secs: &[Sec],
    prefix: &str,
    parts: &mut Vec<Part>,
) -> Result<(), Error> {
    let mut seen = HashMap::new();
    for s in secs {
        if parts.len() > super::MAX_PARTS {
            return Err(corrupt("too many parts"));
        }
        let label = super::unique(&mut seen, section_name(s.kind));
        let name = if prefix.is_empty() {
            label
        } else {
            format!("{prefix}/{label}")
        };
        let sh = source.read_at(s.at, 32)?;
        let mut fields = vec![
            field("Size", 0, 3, &sh, FieldKind::Length),
            field("Type", 3, 1, &sh, FieldKind::Number),
        ];
        if s.hsize == 8 {
            fields.push(field("ExtendedSize", 4, 4, &sh, FieldKind::Length));
        }
        let h = s.hsize;
        let mut hlen = h;
        // (what unpacks the content, if anything)
        let mut unpack: Option<&'static str> = None;
        match s.kind {
            0x01 => {
                hlen = h + 5;
                fields.push(field("UncompressedLength", h, 4, &sh, FieldKind::Length));
                fields.push(field("CompressionType", h + 4, 1, &sh, FieldKind::Number));
                if sh.get(super::to_usize(h) + 4) == Some(&0) {
                    unpack = Some("none");
                }
            }
            0x02 => {
                let g = sh
                    .get(super::to_usize(h)..super::to_usize(h) + 16)
                    .unwrap_or(&[]);
                let data_off = le(&sh, super::to_usize(h) + 16, 2).unwrap_or(0);
                fields.push(text("SectionDefinitionGuid", h, 16, guid(g)));
                fields.push(field("DataOffset", h + 16, 2, &sh, FieldKind::Length));
                fields.push(field("Attributes", h + 18, 2, &sh, FieldKind::Number));
                if data_off < h + 20 || data_off > s.size {
                    return Err(corrupt(format!(
                        "section at {:#x}: DataOffset {data_off} outside the section",
                        s.at
                    )));
                }
                hlen = data_off;
                if g == LZMA_GUID {
                    unpack = Some("lzma");
                } else if g == CRC32_GUID {
                    unpack = Some("none");
                }
            }
            0x18 => {
                hlen = h + 16;
                fields.push(text(
                    "SubTypeGuid",
                    h,
                    16,
                    guid(sh.get(super::to_usize(h)..).unwrap_or(&[])),
                ));
            }
            0x14 => {
                hlen = h + 2;
                fields.push(field("BuildNumber", h, 2, &sh, FieldKind::Number));
            }
            _ => {}
        }
        let hlen = hlen.min(s.size);
        parts.push(header(format!("{name}/header"), s.at, hlen, fields));
        let (off, len) = (s.at + hlen, s.size - hlen);
        if len == 0 {
            continue;
        }
        let role = match (s.kind, unpack) {
            (0x17, _) => Role::Filesystem,
            (0x01 | 0x02, _) => Role::Other,
            _ => Role::Payload,
        };
        parts.push(span(name.clone(), off, len, role));
        if let Some(how) = unpack {
            parts.push(Part {
                name: format!("{name}/unpacked"),
                offset: off,
                len,
                role: Role::Filesystem,
                fields: vec![text("encoding", 0, 0, how.into())],
                packed: Some(Packed {
                    inner: Some(Format::UefiSections),
                    has_content: true,
                }),
            });
        }
    }
    Ok(())
}

/// A section stream from offset 0 (an encapsulation section's content, unpacked).
pub(super) fn map_sections(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let secs = sections(source, 0, source.len())?;
    let mut parts = Vec::new();
    section_parts(source, &secs, "", &mut parts)?;
    super::finish(Format::UefiSections, parts, source)
}

/// Positioned reads of a span as a stream.
struct SpanReader<'a> {
    source: &'a dyn Source,
    pos: u64,
    end: u64,
}

impl Read for SpanReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.end - self.pos).map_or(buf.len(), |r| r.min(buf.len()));
        let got = self.source.read_at(self.pos, want)?;
        buf[..got.len()].copy_from_slice(&got);
        self.pos += got.len() as u64;
        Ok(got.len())
    }
}

pub(super) fn extract(
    source: &dyn Source,
    part: &Part,
    out: &mut dyn io::Write,
) -> Result<(), Error> {
    let how = part
        .fields
        .iter()
        .find(|f| f.name == "encoding")
        .map(|f| f.value.as_str());
    let reader = SpanReader {
        source,
        pos: part.offset,
        end: part.offset.saturating_add(part.len),
    };
    let mut reader: Box<dyn Read> = match how {
        Some("lzma") => {
            let stream = xz2::stream::Stream::new_lzma_decoder(256 << 20)
                .map_err(|e| corrupt(format!("`{}`: {e}", part.name)))?;
            Box::new(xz2::read::XzDecoder::new_stream(reader, stream))
        }
        Some("none") => Box::new(reader),
        _ => return Err(corrupt(format!("`{}` is not packed", part.name))),
    };
    super::copy_unpacked(&mut reader, out, &part.name, &corrupt)
}
