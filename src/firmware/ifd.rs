//! Intel flash descriptors (`0x0FF0A55A` at 0x10): the flash regions the descriptor declares.
//!
//! FLMAP0 (at 0x14) gives the region section's base (FRBA, bits 16..23, times 16); each
//! `FLREGn` there holds a region's base (bits 0..14) and limit (bits 16..30) in 4 KiB units; a
//! region whose base is above its limit is unused. Regions 0–4 are named `descriptor`, `bios`,
//! `me`, `gbe`, `pdr`, later ones `region-N`; the descriptor region is a header part whose
//! fields are the descriptor's map words and region words. Regions that overlap each other
//! or run past the image are refused (the image is then compared as bytes). Parsed here: the
//! format is a few fixed words, and no maintained crate reads it.

use std::io;

use super::{le, number, span, Error, Field, FieldKind, Format, Part, Role, Source};

const FORMAT: &str = "Intel flash descriptor";
const SIGNATURE: u64 = 0x0FF0_A55A;
const NAMES: &[&str] = &["descriptor", "bios", "me", "gbe", "pdr"];
/// Regions a descriptor may declare (FLREG0..FLREG15 on recent chipsets).
const MAX_REGIONS: usize = 16;

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        format: FORMAT,
        detail: detail.to_string(),
    }
}

pub(super) fn identify(source: &dyn Source) -> io::Result<bool> {
    let h = source.read_at(0x10, 4)?;
    Ok(le(&h, 0, 4) == Some(SIGNATURE))
}

/// The region words' names, `FLREG0`…, as static strings for fields.
const FLREG: [&str; MAX_REGIONS] = [
    "FLREG0", "FLREG1", "FLREG2", "FLREG3", "FLREG4", "FLREG5", "FLREG6", "FLREG7", "FLREG8",
    "FLREG9", "FLREG10", "FLREG11", "FLREG12", "FLREG13", "FLREG14", "FLREG15",
];

/// The region words of the descriptor `h` (its first 4 KiB): (index, offset, word) of each
/// word present, in order. A region section may list fewer regions: the words stop at the
/// end of `h`; words past the chipset's count read as 0 or all ones and are left out.
fn words(h: &[u8]) -> Result<Vec<(usize, u64, u64)>, Error> {
    let flmap0 = le(h, 0x14, 4).ok_or_else(|| corrupt("short descriptor"))?;
    let frba = ((flmap0 >> 16) & 0xff) * 16;
    let mut out = Vec::new();
    for i in 0..MAX_REGIONS {
        let at = super::to_usize(frba) + i * 4;
        let Some(word) = le(h, at, 4) else { break };
        if word == 0xffff_ffff || (i >= NAMES.len() && word == 0) {
            continue;
        }
        out.push((i, at as u64, word));
    }
    Ok(out)
}

/// A region word's span: `(base, length)`, or `None` for an unused region (base above limit).
fn decode(word: u64) -> Option<(u64, u64)> {
    let base = (word & 0x7fff) << 12;
    let limit = ((word >> 16) & 0x7fff) << 12 | 0xfff;
    (base <= limit).then(|| (base, limit + 1 - base))
}

/// A region a descriptor declares: (index, base, length).
pub(crate) type FlashRegion = (usize, u64, u64);

/// The regions the descriptor at the start of `source` declares: (index, base, length), in
/// index order, unused ones left out, *not* checked against the source (a dump check reports
/// a region past its end instead of refusing the descriptor). `Ok(None)`: no descriptor.
pub(crate) fn regions(source: &dyn Source) -> Result<Option<Vec<FlashRegion>>, Error> {
    if !identify(source)? {
        return Ok(None);
    }
    let h = source.read_at(0, 0x1000)?;
    Ok(Some(
        words(&h)?
            .into_iter()
            .filter_map(|(i, _, word)| decode(word).map(|(base, len)| (i, base, len)))
            .collect(),
    ))
}

pub(super) fn map(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let h = source.read_at(0, 0x1000)?;
    let flmap0 = le(&h, 0x14, 4).ok_or_else(|| corrupt("short descriptor"))?;
    let mut regions = Vec::new();
    let mut fields: Vec<Field> = vec![
        number("FLVALSIG", 0x10, 4, SIGNATURE, FieldKind::Number),
        number("FLMAP0", 0x14, 4, flmap0, FieldKind::Number),
        number(
            "FLMAP1",
            0x18,
            4,
            le(&h, 0x18, 4).unwrap_or(0),
            FieldKind::Number,
        ),
        number(
            "FLMAP2",
            0x1c,
            4,
            le(&h, 0x1c, 4).unwrap_or(0),
            FieldKind::Number,
        ),
    ];
    for (i, at, word) in words(&h)? {
        fields.push(number(FLREG[i], at, 4, word, FieldKind::Length));
        let Some((base, len)) = decode(word) else {
            continue;
        };
        let name = NAMES
            .get(i)
            .map_or_else(|| format!("region-{i}"), |n| (*n).to_owned());
        super::check_span(FORMAT, &format!("region `{name}`"), base, len, source)?;
        regions.push((i, name, base, len));
    }
    let Some(desc) = regions.iter().position(|r| r.0 == 0) else {
        return Err(corrupt("no descriptor region"));
    };
    let mut parts = Vec::new();
    for (i, name, base, len) in regions {
        if i == 0 {
            parts.push(Part {
                name,
                offset: base,
                len,
                role: Role::Header,
                fields: std::mem::take(&mut fields),
                packed: None,
            });
        } else {
            parts.push(span(
                name,
                base,
                len,
                if i == 1 {
                    Role::Filesystem
                } else {
                    Role::Payload
                },
            ));
        }
    }
    let _ = desc;
    super::finish(Format::Ifd, parts, source)
}
