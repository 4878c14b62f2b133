//! coreboot flash maps (`__FMAP__`, what `fmaptool` compiles from an `.fmd` file and
//! `cbfstool create -M` writes into an image): the image's areas, by name.
//!
//! The FMAP may sit anywhere in the image; it is searched for in images of at most
//! [`MAX_SEARCH`] bytes (flash chips are smaller), and taken only when it describes this
//! image: version 1, `size` equal to the image's length, every area inside it. Areas nest
//! (`BIOS` holds `FMAP` and `COREBOOT`): the parts are the areas that hold no other area, named
//! by their own name; what a holding area has beyond its children is compared as a gap. The
//! FMAP's own area is a header part: its `base`, `size`, `name` and area table are fields (a
//! table that changed is a layout that changed). Parsed here: the format is a fixed-size
//! header and table, and no maintained crate reads it.

use std::collections::HashMap;
use std::io;

use super::{clean_name, le, number, span, Error, Field, FieldKind, Format, Part, Role, Source};

const FORMAT: &str = "FMAP";
/// Images larger than this are not searched for an FMAP (the search reads the whole image).
pub(super) const MAX_SEARCH: u64 = 256 << 20;
const SIGNATURE: &[u8] = b"__FMAP__";
/// The search reads this much at a time.
const CHUNK: u64 = 1 << 20;
const HEADER: usize = 56;
const AREA: usize = 42;

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        format: FORMAT,
        detail: detail.to_string(),
    }
}

/// Where an FMAP describing all of `source` starts, if one does.
fn find(source: &dyn Source) -> io::Result<Option<u64>> {
    let len = source.len();
    if len > MAX_SEARCH || len < HEADER as u64 {
        return Ok(None);
    }
    let mut at = 0u64;
    while at < len {
        let buf = source.read_at(at, super::to_usize(CHUNK) + SIGNATURE.len())?;
        let mut from = 0;
        while let Some(i) = buf[from..]
            .windows(SIGNATURE.len())
            .position(|w| w == SIGNATURE)
        {
            let pos = at + (from + i) as u64;
            if describes_at(source, pos)? {
                return Ok(Some(pos));
            }
            from += i + 1;
        }
        at += CHUNK;
    }
    Ok(None)
}

pub(super) fn identify(source: &dyn Source) -> io::Result<bool> {
    Ok(find(source)?.is_some())
}

/// One area of an FMAP as its table lists it: nested, overlapping and out-of-bounds areas are
/// kept as written (the caller judges them; see `crate::dump::own`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Area {
    pub offset: u64,
    pub size: u64,
    /// The area's name, cleaned ([`clean_name`]).
    pub name: String,
}

/// Whether the `__FMAP__` at `pos` heads an FMAP that describes all of `source` (version 1,
/// `size` the source's length), as [`map`] requires.
pub(crate) fn describes_at(source: &dyn Source, pos: u64) -> io::Result<bool> {
    let head = source.read_at(pos, HEADER)?;
    Ok(head.len() == HEADER
        && head.starts_with(SIGNATURE)
        && head[8] == 1
        && le(&head, 18, 4) == Some(source.len()))
}

/// The areas of the FMAP at `at` (one [`describes_at`] accepted), in table order. A table
/// that runs past the source is [`Error::Corrupt`]. At most 65535 areas (the count is 16
/// bits), 2.7 MB, read at once.
pub(crate) fn areas_at(source: &dyn Source, at: u64) -> Result<Vec<Area>, Error> {
    let head = source.read_at(at, HEADER)?;
    let count = super::to_usize(le(&head, 54, 2).unwrap_or(0));
    let table = source.read_at(at + HEADER as u64, count * AREA)?;
    if table.len() != count * AREA {
        return Err(corrupt(format!("{count} areas run past the image")));
    }
    Ok(table
        .chunks_exact(AREA)
        .map(|a| Area {
            offset: le(a, 0, 4).unwrap_or(0),
            size: le(a, 4, 4).unwrap_or(0),
            name: clean_name(&a[8..40]),
        })
        .collect())
}

pub(super) fn map(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let at = find(source)?.ok_or_else(|| corrupt("no FMAP describes the image"))?;
    let head = source.read_at(at, HEADER)?;
    let count = le(&head, 54, 2).unwrap_or(0);
    let table_len = (super::to_usize(count)) * AREA;
    let table = source.read_at(at + HEADER as u64, table_len)?;
    if table.len() != table_len {
        return Err(corrupt(format!("{count} areas run past the image")));
    }
    let mut areas = Vec::new();
    for i in 0..super::to_usize(count) {
        let a = &table[i * AREA..(i + 1) * AREA];
        let off = le(a, 0, 4).unwrap_or(0);
        let size = le(a, 4, 4).unwrap_or(0);
        let name = clean_name(&a[8..40]);
        super::check_span(FORMAT, &format!("area `{name}`"), off, size, source)?;
        areas.push((off, size, name));
    }
    let table_text = areas
        .iter()
        .map(|(o, s, n)| format!("{n}@{o:#x}+{s:#x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let fields = vec![
        Field {
            name: "signature",
            offset: 0,
            len: 8,
            value: "__FMAP__".into(),
            kind: FieldKind::Text,
        },
        number("ver_major", 8, 1, u64::from(head[8]), FieldKind::Number),
        number("ver_minor", 9, 1, u64::from(head[9]), FieldKind::Number),
        number(
            "base",
            10,
            8,
            le(&head, 10, 8).unwrap_or(0),
            FieldKind::Number,
        ),
        number(
            "size",
            18,
            4,
            le(&head, 18, 4).unwrap_or(0),
            FieldKind::Length,
        ),
        Field {
            name: "name",
            offset: 22,
            len: 32,
            value: clean_name(&head[22..54]),
            kind: FieldKind::Text,
        },
        number("nareas", 54, 2, count, FieldKind::Length),
        Field {
            name: "areas",
            offset: HEADER as u64,
            len: table_len as u64,
            value: table_text,
            kind: FieldKind::Length,
        },
    ];
    let fmap_len = (HEADER + table_len) as u64;
    // Leaves: areas that hold no other area (an area listed twice counts once).
    let mut parts = Vec::new();
    let mut seen = HashMap::new();
    let mut fmap_done = false;
    for (i, (off, size, name)) in areas.iter().enumerate() {
        let holds = areas.iter().enumerate().any(|(j, (o, s, _))| {
            j != i && *o >= *off && o + s <= off + size && (o, s) != (off, size)
        });
        let twin = areas[..i].iter().any(|(o, s, _)| (o, s) == (off, size));
        if holds || twin || *size == 0 {
            continue;
        }
        let label = super::unique(
            &mut seen,
            if name.is_empty() {
                "(unnamed)".into()
            } else {
                name.clone()
            },
        );
        if !fmap_done && *off <= at && at + fmap_len <= off + size {
            // The FMAP's own area: the structure, then what follows it in the area.
            fmap_done = true;
            if at > *off {
                parts.push(span(
                    format!("{label}/before"),
                    *off,
                    at - off,
                    Role::Padding,
                ));
            }
            parts.push(Part {
                name: label.clone(),
                offset: at,
                len: fmap_len,
                role: Role::Header,
                fields: fields.clone(),
                packed: None,
            });
            let rest = off + size - (at + fmap_len);
            if rest > 0 {
                parts.push(span(
                    format!("{label}/after"),
                    at + fmap_len,
                    rest,
                    Role::Padding,
                ));
            }
            continue;
        }
        parts.push(span(label, *off, *size, Role::Payload));
    }
    if !fmap_done {
        parts.push(Part {
            name: "FMAP".into(),
            offset: at,
            len: fmap_len,
            role: Role::Header,
            fields,
            packed: None,
        });
    }
    super::finish(Format::Fmap, parts, source)
}
