//! Firmware containers read as maps of named parts.
//!
//! A firmware image is rarely one thing: a header, then a payload, padding, a filesystem, a
//! signature. This module owns reading such images as a [`Map`]: the [`Part`]s an image is
//! made of, each a span of the image with a name unique within the map, and, for headers, the
//! [`Field`]s the header holds (a timestamp, a checksum, a length). Comparison
//! (`crate::compare`) matches two maps part by part, by name, and explains a header field by
//! field; the flash-dump work reads the same maps to say what a dump holds.
//!
//! Every format is read from a [`Source`] with positioned reads of bounded size; nothing
//! holds an image in memory whole. Every parser treats its input as hostile: offsets and
//! lengths are checked against the source (checked arithmetic, no panics on crafted headers),
//! recursion is bounded, and an image that claims more parts than [`MAX_PARTS`] is refused.
//! A format whose header is damaged is not a map ([`Error::Corrupt`]): the comparison then
//! goes on as bytes, with a note.
//!
//! Formats are listed in [`Format`]; [`identify`] finds the format of a source, [`map`] reads
//! it. Each format lives in its own module and says in its docs which crate parses it or why
//! none does.
//!
//! A part whose bytes are not a span of the image (a compressed squashfs file, the content of
//! an LZMA-compressed UEFI section) is *packed* ([`Part::packed`]): its span is the bytes it
//! is unpacked from, shared with the part that holds them (the filesystem's data, the
//! section's compressed stream), and [`Unpacker::extract`] writes its content, never more than a given
//! limit. Packed parts are listed after the spans, may share bytes with them and with each
//! other, and are no part of the offset order.

mod cbfs;
pub(crate) mod fmap;
#[cfg(test)]
mod hostile;
pub(crate) mod ifd;
mod squashfs;
pub(crate) mod uefi;

use std::io;

mod bzimage;
pub(crate) mod fdt;
mod fit;
#[cfg(test)]
pub(crate) mod mutate;
mod show;
mod uimage;

/// The most parts one map may list.
pub(crate) const MAX_PARTS: usize = 65_536;

/// Positioned reads from an image: a file, or a span of one. `Sync`, so that a parser may
/// hand a reader over it to a crate that wants `Send` readers (backhand).
pub(crate) trait Source: Sync {
    /// Length of the source in bytes.
    fn len(&self) -> u64;
    /// Up to `len` bytes from `pos` (fewer at the end, none past it).
    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// The firmware formats this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Format {
    /// A U-Boot legacy image (`mkimage -T kernel|multi|…`): a 64-byte header, then data.
    Uimage,
    /// A U-Boot FIT image: a device tree whose `/images/*` nodes carry the payloads.
    Fit,
    /// A flattened device-tree blob (`dtc -O dtb`).
    Dtb,
    /// A Linux x86 kernel in the boot protocol's format: setup, then a compressed payload.
    Bzimage,
    /// A squashfs 4.0 filesystem (`mksquashfs`): its superblock, then its files by path.
    Squashfs,
    /// UEFI firmware volumes (`_FVH`), one after another: each volume's header, its FFS files
    /// and their sections.
    UefiFv,
    /// A stream of UEFI FFS sections, as an encapsulation section holds them (never found by
    /// [`identify`]: it has no signature; a packed part names it).
    UefiSections,
    /// A flash image described by a coreboot FMAP (`__FMAP__`): its areas by name.
    Fmap,
    /// A coreboot CBFS (`LARCHIVE` file headers): its files by name.
    Cbfs,
    /// An Intel flash descriptor image (`0x0FF0A55A` at 0x10): its regions.
    Ifd,
}

impl Format {
    /// The format's name, as reports print it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Uimage => "uImage",
            Format::Fit => "FIT",
            Format::Dtb => "device tree",
            Format::Bzimage => "bzImage",
            Format::Squashfs => "squashfs",
            Format::UefiFv => "UEFI firmware volume",
            Format::UefiSections => "UEFI section stream",
            Format::Fmap => "FMAP",
            Format::Cbfs => "CBFS",
            Format::Ifd => "Intel flash descriptor",
        }
    }
}

/// What a part is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    /// A header: its bytes are described by its [`Part::fields`].
    Header,
    /// Code or data the image carries (a kernel, a device tree, a volume's file).
    Payload,
    /// Fill between or after parts (0x00, 0xff or a declared fill).
    Padding,
    /// A filesystem or a volume holding files.
    Filesystem,
    /// Anything else the format names.
    Other,
}

/// What a header field holds, which says why it may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FieldKind {
    /// A creation time (a uImage's `ih_time`, a FIT's `timestamp`).
    Timestamp,
    /// A checksum, CRC or hash over other bytes: it changes when they do.
    Checksum,
    /// A length or an offset: it changes when the parts it counts do.
    Length,
    /// A name or other text.
    Text,
    /// Any other number (a load address, an OS or architecture code).
    Number,
}

/// One field of a header part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// The field's name as the format's documentation spells it (`ih_time`, `hcrc`).
    pub name: &'static str,
    /// Where the field's bytes are, relative to the start of its part.
    pub offset: u64,
    pub len: u64,
    /// The value for people: a number in decimal or hex, a time with its UTC date, a name.
    pub value: String,
    pub kind: FieldKind,
}

/// One part of an image: a span with a name unique within its map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// A path-like name (`header`, `images/kernel`, `FV(7cb8bdc9…)/file(…)`), unique within
    /// the map; reports name the part `image//name`.
    pub name: String,
    /// Where the part's bytes are in the source.
    pub offset: u64,
    pub len: u64,
    pub role: Role,
    /// For a header: its fields, in order. Bytes of a header outside every field are compared
    /// as content. For a packed part: its metadata (a file's mode, owner and mtime), compared
    /// by value.
    pub fields: Vec<Field>,
    /// Set when the part's content is not its span but unpacked from it ([`Unpacker::extract`]).
    pub packed: Option<Packed>,
}

/// How a packed part's content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Packed {
    /// The format of the unpacked content when the container says it and the content has no
    /// signature of its own (a UEFI section stream); `None`: found like any other bytes.
    pub inner: Option<Format>,
    /// Whether the part has content at all (a directory or a symlink has only metadata).
    pub has_content: bool,
}

/// An image read as parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Map {
    pub format: Format,
    /// Parts in the order of their offsets; they do not overlap, but need not cover the whole
    /// image (what they leave out is compared as bytes).
    pub parts: Vec<Part>,
}

/// Why an image could not be read as its format.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The image starts like `format` but its structure is damaged or out of bounds.
    #[error("{format}: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },
    /// A packed part unpacks to more than the limit it was given.
    #[error("`{part}` unpacks to more than {limit} bytes")]
    TooLarge { part: String, limit: u64 },
}

/// The format of `source`, if it is one this module reads.
pub(crate) fn identify(source: &dyn Source) -> io::Result<Option<Format>> {
    if uimage::is_uimage(source)? {
        return Ok(Some(Format::Uimage));
    }
    if fdt::is_fdt(source)? {
        return Ok(Some(if fit::is_fit(source) {
            Format::Fit
        } else {
            Format::Dtb
        }));
    }
    if bzimage::is_bzimage(source)? {
        return Ok(Some(Format::Bzimage));
    }
    if squashfs::identify(source)? {
        return Ok(Some(Format::Squashfs));
    }
    if ifd::identify(source)? {
        return Ok(Some(Format::Ifd));
    }
    if uefi::identify(source)? {
        return Ok(Some(Format::UefiFv));
    }
    if cbfs::identify(source)? {
        return Ok(Some(Format::Cbfs));
    }
    if fmap::identify(source)? {
        return Ok(Some(Format::Fmap));
    }
    Ok(None)
}

/// `source` read as `format`.
pub(crate) fn map(format: Format, source: &dyn Source) -> Result<Map, Error> {
    let parts = match format {
        Format::Uimage => return uimage::map(source),
        Format::Fit => return fit::map(source),
        Format::Dtb => return fdt::map(source),
        Format::Bzimage => return bzimage::map(source),
        Format::Squashfs => squashfs::map(source)?,
        Format::UefiFv => uefi::map_volumes(source)?,
        Format::UefiSections => uefi::map_sections(source)?,
        Format::Fmap => fmap::map(source)?,
        Format::Cbfs => cbfs::map(source)?,
        Format::Ifd => ifd::map(source)?,
    };
    if parts.len() > MAX_PARTS {
        return Err(Error::Corrupt {
            format: format.name(),
            detail: format!("more than {MAX_PARTS} parts"),
        });
    }
    Ok(Map { format, parts })
}

#[cfg(test)]
/// Write the content of the packed `part` of `source` (read as `format`) to `out`: at most
/// `limit` bytes, else [`Error::TooLarge`] (what was written before stays the caller's to
/// discard). Returns the bytes written; a part that is not packed is copied from its span.
/// To unpack many parts of one image, an [`Unpacker`] reads its structure once.
pub(crate) fn extract(
    format: Format,
    source: &dyn Source,
    part: &Part,
    out: &mut dyn io::Write,
    limit: u64,
) -> Result<u64, Error> {
    Unpacker::new(format, source).extract(part, out, limit)
}

/// Unpacks the packed parts of one image, reading what they need (a squashfs's tables) once.
pub(crate) struct Unpacker<'a> {
    format: Format,
    source: &'a dyn Source,
    squashfs: Option<Result<squashfs::Session<'a>, String>>,
}

impl<'a> Unpacker<'a> {
    pub(crate) fn new(format: Format, source: &'a dyn Source) -> Self {
        Unpacker {
            format,
            source,
            squashfs: None,
        }
    }

    /// As the free `extract`, for one part of this unpacker's image.
    pub(crate) fn extract(
        &mut self,
        part: &Part,
        out: &mut dyn io::Write,
        limit: u64,
    ) -> Result<u64, Error> {
        let mut out = Bounded {
            out,
            limit,
            written: 0,
            part: &part.name,
        };
        let (format, source) = (self.format, self.source);
        let res = match (format, part.packed) {
            (Format::Squashfs, Some(_)) => {
                let session = self.squashfs.get_or_insert_with(|| {
                    squashfs::Session::open(source).map_err(|e| e.to_string())
                });
                match session {
                    Ok(s) => s.extract(part, &mut out),
                    Err(e) => Err(Error::Corrupt {
                        format: format.name(),
                        detail: e.clone(),
                    }),
                }
            }
            (Format::UefiFv | Format::UefiSections, Some(_)) => {
                uefi::extract(source, part, &mut out)
            }
            // Not packed, or a format whose parts are all spans: the span itself.
            _ => copy_span(source, part.offset, part.len, &mut out),
        };
        match res {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::FileTooLarge => Err(Error::TooLarge {
                part: part.name.clone(),
                limit,
            }),
            Err(e) => Err(e),
            Ok(()) => Ok(out.written),
        }
    }
}

/// A writer that refuses to pass `limit` bytes (with `ErrorKind::FileTooLarge`).
struct Bounded<'a> {
    out: &'a mut dyn io::Write,
    limit: u64,
    written: u64,
    part: &'a str,
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.written.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.limit) {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("`{}` unpacks to more than {} bytes", self.part, self.limit),
            ));
        }
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Copy `len` bytes from `offset` of `source` to `out`, in bounded chunks.
fn copy_span(
    source: &dyn Source,
    offset: u64,
    len: u64,
    out: &mut dyn io::Write,
) -> Result<(), Error> {
    const CHUNK: u64 = 1 << 20;
    let mut at = 0;
    while at < len {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let n = (len - at).min(CHUNK);
        let buf = source.read_at(
            offset.saturating_add(at),
            usize::try_from(n).unwrap_or(usize::MAX),
        )?;
        if buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        out.write_all(&buf)?;
        at += buf.len() as u64;
    }
    Ok(())
}

/// `v` as an index; values past `usize` (on 32-bit targets) saturate, so a slice or read at
/// them finds nothing instead of wrapping.
pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A little-endian integer of `N` bytes at `at` in `buf` (`None` past its end).
pub(crate) fn le(buf: &[u8], at: usize, n: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(n)?)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b)),
    )
}

/// A big-endian integer of `N` bytes at `at` in `buf` (`None` past its end).
pub(crate) fn be(buf: &[u8], at: usize, n: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(n)?)?;
    Some(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

/// A NUL-terminated name from `buf`, escaped for use in a part name (`/` kept out).
pub(crate) fn clean_name(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end])
        .chars()
        .map(|c| if c.is_control() || c == '/' { '_' } else { c })
        .collect()
}

/// A field of `len` bytes at `offset` holding `value`, shown in decimal and hex.
pub(crate) fn number(
    name: &'static str,
    offset: u64,
    len: u64,
    value: u64,
    kind: FieldKind,
) -> Field {
    Field {
        name,
        offset,
        len,
        value: if value < 10 {
            value.to_string()
        } else {
            format!("{value} ({value:#x})")
        },
        kind,
    }
}

/// A part without fields that is a span of the image.
pub(crate) fn span(name: String, offset: u64, len: u64, role: Role) -> Part {
    Part {
        name,
        offset,
        len,
        role,
        fields: Vec::new(),
        packed: None,
    }
}

/// `name`, or `name#2`, `name#3`… when `seen` already holds it: names unique within a map.
pub(crate) fn unique(seen: &mut std::collections::HashMap<String, usize>, name: String) -> String {
    let n = seen.entry(name.clone()).or_default();
    *n += 1;
    if *n == 1 {
        name
    } else {
        format!("{name}#{n}")
    }
}

/// Sorts the span parts of `parts` by offset (packed ones after them, in their order) and
/// checks that every span lies within `source` and none overlaps the next.
pub(crate) fn finish(
    format: Format,
    mut parts: Vec<Part>,
    source: &dyn Source,
) -> Result<Vec<Part>, Error> {
    let (mut spans, packed): (Vec<Part>, Vec<Part>) =
        parts.drain(..).partition(|p| p.packed.is_none());
    spans.sort_by_key(|p| (p.offset, p.len));
    let mut end = 0u64;
    for p in spans.iter().chain(&packed) {
        check_span(format.name(), &p.name, p.offset, p.len, source)?;
    }
    for p in &spans {
        if p.offset < end {
            return Err(Error::Corrupt {
                format: format.name(),
                detail: format!(
                    "`{}` at {:#x} overlaps the part before it",
                    p.name, p.offset
                ),
            });
        }
        end = p.offset + p.len;
    }
    spans.extend(packed);
    Ok(spans)
}

/// A file read in place, as a [`Source`].
impl Source for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }

    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let avail = Source::len(self).saturating_sub(pos);
        let want = usize::try_from(avail).map_or(len, |a| a.min(len));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = FileExt::read_at(self, &mut buf[filled..], pos + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// A bytes buffer as a [`Source`] (tests, small headers).
impl Source for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(len).min(self.len());
        Ok(self[start..end].to_vec())
    }
}

/// Checks that `offset + len` lies within `source`; the error names the part.
pub(crate) fn check_span(
    format: &'static str,
    what: &str,
    offset: u64,
    len: u64,
    source: &dyn Source,
) -> Result<(), Error> {
    match offset.checked_add(len) {
        Some(end) if end <= source.len() => Ok(()),
        _ => Err(Error::Corrupt {
            format,
            detail: format!(
                "{what} at {offset:#x}+{len} runs past the end ({} bytes)",
                source.len()
            ),
        }),
    }
}

/// Copies a packed part's unpacked bytes to `out` in chunks, stopping at a signal; a read
/// error (a damaged stream) is the format's `corrupt` error naming the part.
pub(crate) fn copy_unpacked(
    reader: &mut dyn io::Read,
    out: &mut dyn io::Write,
    name: &str,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(format!("`{name}`: {e}"))),
        };
        out.write_all(&buf[..n])?;
    }
}

/// Unix seconds, with the UTC date for people: `1700000000 (2023-11-14T22:13:20Z)`.
pub(crate) fn unix_time(secs: u64) -> String {
    let date = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    match date {
        Some(d) => format!("{secs} ({d})"),
        None => secs.to_string(),
    }
}
