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

use std::io;

mod bzimage;
mod fdt;
mod fit;
#[cfg(test)]
mod mutate;
mod show;
mod uimage;

/// The most parts one map may list.
pub const MAX_PARTS: usize = 65_536;

/// Positioned reads from an image: a file, or a span of one.
pub trait Source {
    /// Length of the source in bytes.
    fn len(&self) -> u64;
    /// Up to `len` bytes from `pos` (fewer at the end, none past it).
    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The firmware formats this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A U-Boot legacy image (`mkimage -T kernel|multi|…`): a 64-byte header, then data.
    Uimage,
    /// A U-Boot FIT image: a device tree whose `/images/*` nodes carry the payloads.
    Fit,
    /// A flattened device-tree blob (`dtc -O dtb`).
    Dtb,
    /// A Linux x86 kernel in the boot protocol's format: setup, then a compressed payload.
    Bzimage,
}

impl Format {
    /// The format's name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Uimage => "uImage",
            Format::Fit => "FIT",
            Format::Dtb => "device tree",
            Format::Bzimage => "bzImage",
        }
    }
}

/// What a part is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A header: its bytes are described by its [`Part::fields`].
    Header,
    /// Code or data the image carries (a kernel, a device tree, a volume's file).
    Payload,
    /// Fill between or after parts (0x00, 0xff or a declared fill).
    Padding,
    /// A filesystem or a volume holding files.
    Filesystem,
    /// A signature, a hash or a certificate over other parts.
    Signature,
    /// Anything else the format names.
    Other,
}

/// What a header field holds, which says why it may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
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
pub struct Field {
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
pub struct Part {
    /// A path-like name (`header`, `images/kernel`, `FV(7cb8bdc9…)/file(…)`), unique within
    /// the map; reports name the part `image//name`.
    pub name: String,
    /// Where the part's bytes are in the source.
    pub offset: u64,
    pub len: u64,
    pub role: Role,
    /// For a header: its fields, in order. Bytes of a header outside every field are compared
    /// as content.
    pub fields: Vec<Field>,
}

/// An image read as parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub format: Format,
    /// Parts in the order of their offsets; they do not overlap, but need not cover the whole
    /// image (what they leave out is compared as bytes).
    pub parts: Vec<Part>,
}

/// Why an image could not be read as its format.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The image starts like `format` but its structure is damaged or out of bounds.
    #[error("{format}: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },
}

/// The format of `source`, if it is one this module reads.
pub fn identify(source: &dyn Source) -> io::Result<Option<Format>> {
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
    Ok(None)
}

/// `source` read as `format`.
pub fn map(format: Format, source: &dyn Source) -> Result<Map, Error> {
    match format {
        Format::Uimage => uimage::map(source),
        Format::Fit => fit::map(source),
        Format::Dtb => fdt::map(source),
        Format::Bzimage => bzimage::map(source),
    }
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
pub fn check_span(
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
