//! A dump's own layout: the regions a dump describes itself, read from its partition tables,
//! for a dump checked without a declared layout (and, with one, to say where the two
//! disagree).
//!
//! [`read_layout`] looks for four tables in one pass over the dump (its first [`MAX_SCAN`]
//! bytes; reads of at most 1 MiB):
//!
//! - an **FMAP** (`__FMAP__`, coreboot's flash map): at any byte offset, which covers every
//!   search grid `flashrom` and coreboot use; the first that describes the whole dump
//!   (version 1, `size` the dump's length) is taken, its areas as its table lists them;
//! - an **Intel flash descriptor** (`0x0FF0A55A` at 0x10 of the dump): its regions
//!   (descriptor, BIOS, ME, `GbE`, PDR, EC, …);
//! - **UEFI firmware volumes**: every `_FVH` whose header checksums (a variable store volume
//!   is named as such), and the free space after each FFS volume's last file;
//! - **flattened device trees** (`0xd00dfeed`, 4-aligned) whose `fixed-partitions` nodes list
//!   `partition@…` children (`label`, `reg`, `#address-cells`/`#size-cells` 1 or 2).
//!
//! The readers are the format parsers of [`crate::firmware`]; this module only turns what
//! they find into [`Region`]s, each with its source in [`Region::described_by`] (`FMAP at
//! 0x1000, area RW_VPD`), and flattens them: tables nest (an FMAP's `BIOS` holds `COREBOOT`,
//! a descriptor's BIOS region holds volumes), so each byte belongs to the innermost area that
//! holds it — except that an area the dump calls erased keeps every byte inside it (an area
//! nested in "unused" flash does not make it less strict). Areas that overlap without
//! nesting are noted; areas past the dump's end are cut at it and noted.
//!
//! # The one rule: a dump's own word never masks
//!
//! The dump is untrusted: whoever hides code in a dump writes its FMAP too. A self-described
//! region may name and place bytes, and may make a check *stricter* (an erased area must hold
//! only its fill; a blob area is checked against a `[[blob]]` pin of its name), but it never
//! masks: a self-described `device-data` area is reported as device data and its bytes stay
//! unexplained (counted, not failing), with the hint that declaring it in the recipe's
//! `[flash]` masks it. Only a declared layout (the recipe's `[flash]`, `--flash-layout`)
//! masks. [`super::check_dump`] keeps the rule by [`Region::described_by`]; the tests here
//! hold it over mutated dumps.
//!
//! # Names and kinds
//!
//! | table | name (case-insensitive) | kind | why |
//! | --- | --- | --- | --- |
//! | FMAP | `UNUSED`, `RW_UNUSED`, `*_UNUSED` | `erased` | the image says nothing is there: it must be fill |
//! | FMAP | `COREBOOT`, `FW_MAIN_*` | `release` | coreboot's CBFS and the verified-boot firmware slots: where a release lives |
//! | FMAP | `RO_VPD`, `RW_VPD`, `*VPD*` | `device-data` (never masked) | vital product data: serial number, MAC, written per device |
//! | FMAP | `SI_GBE` | `device-data` (never masked) | the `GbE` region holds the device's MAC address |
//! | FMAP | `SI_ME`, `SI_EC` | `blob` when a `[[blob]]` of that name pins it, else `other` | a vendor binary: checkable only against a pin |
//! | FMAP | `*MRC_CACHE*`, `RW_ELOG`, `RW_NVRAM`, `SMMSTORE`, `RW_SHARED`, `SHARED_DATA` | `config` | written by the firmware on the device |
//! | descriptor | `me`, `ec` | `blob` when pinned, else `other` | as `SI_ME` |
//! | descriptor | `gbe` | `device-data` (never masked) | as `SI_GBE` |
//! | UEFI | a variable store volume (`EFI_SYSTEM_NV_DATA_FV_GUID`) | `config` | UEFI variables, written on the device |
//! | UEFI | a volume's free space | `erased` (its erase polarity) | the volume says it is free |
//! | device tree | `u-boot`, `uboot`, `bootloader`, `spl` | `bootloader` | the boot loader |
//! | device tree | `u-boot-env`, `uboot-env`, `env`, `config`, `nvram`, `rootfs_data` | `config` | written on the device |
//! | device tree | `art`, `factory`, `mac`, `caldata`, `calibration`, `gbe`, `*vpd*` | `device-data` (never masked) | radio calibration, MAC, serial: written per device |
//! | device tree | `firmware`, `kernel`, `rootfs` | `release` | where a release is written |
//! | any | anything else (`SI_DESC`, `BIOS`, `GBB`, a firmware volume, …) | `other` | named, not checked on its own |
//!
//! What each kind then counts as is the dump check's table (`docs/dump.md`); a
//! self-described `release` area names no artifact (artifacts are found by content).
//!
//! # Hostile input
//!
//! Every count is bounded: [`MAX_AREAS`] areas in all, [`MAX_CANDIDATES`] signatures of each
//! kind looked at, [`MAX_WALKS`] device trees and volumes walked whole, [`MAX_NOTES`] notes
//! (the rest counted). An FMAP, descriptor or tree that
//! cannot be read is a note, never an error; only a failing read of the dump is an error.

use std::fs::File;
use std::io;

use serde::Serialize;

use crate::firmware;
use crate::recipe::flash::{FlashLayout, Region, RegionKind};

/// The dump is searched for its tables in its first bytes, at most this many (flash chips
/// are smaller; the FMAP reader has the same bound).
pub(crate) const MAX_SCAN: u64 = 256 << 20;
/// Areas read from all tables together, at most.
pub(crate) const MAX_AREAS: usize = 1024;
/// Signatures of one kind (`__FMAP__`, `_FVH`, the device-tree magic) looked at, at most.
pub(crate) const MAX_CANDIDATES: usize = 4096;
/// Structures walked whole (a device tree, a volume's files), at most: each walk may read as
/// much as the dump, so crafted signatures by the thousand must not each cost one.
pub(crate) const MAX_WALKS: usize = 64;
/// Notes about the tables, at most (the rest counted in one more).
pub(crate) const MAX_NOTES: usize = 16;
/// The dump is read this much at a time.
const CHUNK: usize = 1 << 20;

/// A kind of partition table a dump may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TableFormat {
    Fmap,
    Ifd,
    UefiVolume,
    DeviceTree,
}

impl TableFormat {
    fn name(self) -> &'static str {
        match self {
            TableFormat::Fmap => "FMAP",
            TableFormat::Ifd => "Intel flash descriptor",
            TableFormat::UefiVolume => "UEFI volume",
            TableFormat::DeviceTree => "device tree",
        }
    }
}

/// One table found in the dump: its format, where it starts, how many areas it gave, and
/// whether the dump check used it (not when a declared layout wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Table {
    pub format: TableFormat,
    pub offset: u64,
    pub areas: u64,
    pub used: bool,
}

/// What a dump says about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnLayout {
    /// Flattened: in offset order, without overlap, each with [`Region::described_by`] set.
    pub regions: Vec<Region>,
    pub tables: Vec<Table>,
    /// What was odd: areas past the end, overlaps, tables that could not be read.
    pub notes: Vec<String>,
}

impl OwnLayout {
    /// Where the layout came from, for the report's `layout`: `the dump's FMAP at 0x1000`.
    pub(crate) fn source(&self) -> Option<String> {
        if self.regions.is_empty() {
            return None;
        }
        let mut words: Vec<String> = Vec::new();
        let volumes = self
            .tables
            .iter()
            .filter(|t| t.format == TableFormat::UefiVolume)
            .count();
        for t in &self.tables {
            if t.format == TableFormat::UefiVolume && volumes > 3 {
                continue;
            }
            words.push(format!("{} at {:#x}", t.format.name(), t.offset));
        }
        if volumes > 3 {
            words.push(format!("{volumes} UEFI volumes"));
        }
        Some(format!("the dump's {}", words.join(", ")))
    }

    /// The layout the dump check reads (no flash size: the dump's is its own).
    pub(crate) fn flash(&self) -> Option<FlashLayout> {
        (!self.regions.is_empty()).then(|| FlashLayout {
            size: None,
            regions: self.regions.clone(),
        })
    }
}

/// How a name is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Kind(RegionKind),
    /// `blob` when a `[[blob]]` of the area's name pins it, else `other`.
    PinnedOrOther,
}

/// The name → kind table (the module docs' table, in the order it is tried).
const FMAP_KINDS: &[(&str, Rule, &str)] = &[
    (
        "UNUSED|RW_UNUSED|*_UNUSED",
        Rule::Kind(RegionKind::Erased),
        "the dump's FMAP calls it unused: it must hold only fill",
    ),
    (
        "COREBOOT|FW_MAIN_*",
        Rule::Kind(RegionKind::Release),
        "the dump's FMAP puts the firmware here",
    ),
    (
        "RO_VPD|RW_VPD|*VPD*|SI_GBE",
        Rule::Kind(RegionKind::DeviceData),
        "the dump's FMAP calls it per-device data",
    ),
    (
        "SI_ME|SI_EC",
        Rule::PinnedOrOther,
        "the dump's FMAP calls it a vendor binary",
    ),
    (
        "*MRC_CACHE*|RW_ELOG|RW_NVRAM|SMMSTORE|RW_SHARED|SHARED_DATA",
        Rule::Kind(RegionKind::Config),
        "the dump's FMAP calls it data written on the device",
    ),
];
const IFD_KINDS: &[(&str, Rule, &str)] = &[
    (
        "me|ec",
        Rule::PinnedOrOther,
        "the flash descriptor calls it a vendor binary",
    ),
    (
        "gbe",
        Rule::Kind(RegionKind::DeviceData),
        "the flash descriptor's GbE region holds the MAC address",
    ),
];
const DT_KINDS: &[(&str, Rule, &str)] = &[
    (
        "u-boot|uboot|bootloader|spl",
        Rule::Kind(RegionKind::Bootloader),
        "the device tree calls it the boot loader",
    ),
    (
        "u-boot-env|uboot-env|env|config|nvram|rootfs_data",
        Rule::Kind(RegionKind::Config),
        "the device tree calls it data written on the device",
    ),
    (
        "art|factory|mac|caldata|calibration|gbe|*vpd*",
        Rule::Kind(RegionKind::DeviceData),
        "the device tree calls it per-device data",
    ),
    (
        "firmware|kernel|rootfs",
        Rule::Kind(RegionKind::Release),
        "the device tree puts the firmware here",
    ),
];

/// Whether `name` matches one of the `|`-separated patterns (`*` at either end), ignoring
/// case.
fn matches(patterns: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    patterns.split('|').any(|p| {
        let p = p.to_ascii_lowercase();
        match (p.strip_prefix('*'), p.strip_suffix('*')) {
            (Some(rest), _) if rest.ends_with('*') => name.contains(&rest[..rest.len() - 1]),
            (Some(rest), _) => name.ends_with(rest),
            (None, Some(head)) => name.starts_with(head),
            (None, None) => name == p,
        }
    })
}

/// The rule for `name` in `table`, with its reason; `other` when no row matches.
fn rule(
    table: &[(&str, Rule, &'static str)],
    name: &str,
    other: &'static str,
) -> (Rule, &'static str) {
    table
        .iter()
        .find(|(p, _, _)| matches(p, name))
        .map_or((Rule::Kind(RegionKind::Other), other), |&(_, r, why)| {
            (r, why)
        })
}

/// An area before flattening.
#[derive(Debug, Clone)]
struct Area {
    start: u64,
    end: u64,
    name: String,
    kind: RegionKind,
    reason: &'static str,
    fill: Option<u8>,
    blob: Option<String>,
    source: String,
}

/// Bounded notes.
#[derive(Debug, Default)]
struct Notes {
    listed: Vec<String>,
    more: usize,
}

impl Notes {
    fn push(&mut self, note: String) {
        if self.listed.len() < MAX_NOTES {
            self.listed.push(note);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!(
                "and {} more notes about the dump's own tables",
                self.more
            ));
        }
        self.listed
    }
}

/// A span of the dump as a [`firmware::Source`]: a table that starts inside the dump.
struct Within<'a> {
    dump: &'a dyn firmware::Source,
    start: u64,
    len: u64,
}

impl firmware::Source for Within<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        if pos >= self.len {
            return Ok(Vec::new());
        }
        let len = usize::try_from(self.len - pos).map_or(len, |left| left.min(len));
        self.dump.read_at(self.start + pos, len)
    }
}

/// Where each signature occurs in the first [`MAX_SCAN`] bytes (at most [`MAX_CANDIDATES`]
/// of each; `true` when a list was cut there).
#[derive(Debug, Default)]
struct Found {
    fmap: Vec<u64>,
    fvh: Vec<u64>,
    dtb: Vec<u64>,
    cut: bool,
}

fn scan(dump: &dyn firmware::Source, size: u64) -> io::Result<Found> {
    use memchr::memmem::Finder;
    const OVERLAP: usize = 7;
    let finders = [
        Finder::new(b"__FMAP__"),
        Finder::new(b"_FVH"),
        Finder::new(&[0xd0, 0x0d, 0xfe, 0xed]),
    ];
    let mut found = Found::default();
    let end = size.min(MAX_SCAN);
    let mut at = 0u64;
    while at < end {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let buf = dump.read_at(at, CHUNK + OVERLAP)?;
        if buf.is_empty() {
            break;
        }
        // A signature is counted in the chunk it starts in, so the overlap sees it once.
        let starts = buf.len().min(CHUNK);
        for (k, finder) in finders.iter().enumerate() {
            let list = match k {
                0 => &mut found.fmap,
                1 => &mut found.fvh,
                _ => &mut found.dtb,
            };
            for i in finder.find_iter(&buf).take_while(|&i| i < starts) {
                let pos = at + i as u64;
                if k == 2 && pos % 4 != 0 {
                    continue;
                }
                if list.len() >= MAX_CANDIDATES {
                    found.cut = true;
                    break;
                }
                list.push(pos);
            }
        }
        at += CHUNK as u64;
    }
    Ok(found)
}

/// Reads the dump's own layout (see the module docs). `pinned`: the names of the `[[blob]]`
/// pins known, which make an `SI_ME`-like area a `blob` region.
pub(crate) fn read_layout(dump: &File, size: u64, pinned: &[String]) -> io::Result<OwnLayout> {
    let source: &dyn firmware::Source = dump;
    let found = scan(source, size)?;
    let mut notes = Notes::default();
    let mut areas: Vec<Area> = Vec::new();
    let mut tables = Vec::new();
    if size > MAX_SCAN {
        notes.push(format!(
            "the dump's own tables were looked for in its first {MAX_SCAN} bytes"
        ));
    }
    if found.cut {
        notes.push(format!(
            "more than {MAX_CANDIDATES} signatures of one table kind: the rest were not read"
        ));
    }
    let mut walks = 0usize;
    let mut walk = |notes: &mut Notes| {
        walks += 1;
        if walks == MAX_WALKS + 1 {
            notes.push(format!(
                "more than {MAX_WALKS} device trees and volumes: the rest were not read whole"
            ));
        }
        walks <= MAX_WALKS
    };
    let kind_of = |rule: Rule, name: &str| match rule {
        Rule::Kind(k) => (k, None),
        Rule::PinnedOrOther if pinned.iter().any(|p| p == name) => {
            (RegionKind::Blob, Some(name.to_owned()))
        }
        Rule::PinnedOrOther => (RegionKind::Other, None),
    };
    // FMAP: the first that describes the whole dump.
    for &pos in &found.fmap {
        if !firmware::fmap::describes_at(source, pos)? {
            continue;
        }
        match firmware::fmap::areas_at(source, pos) {
            Ok(list) => {
                let n = list.len();
                for a in list.into_iter().filter(|a| a.size > 0) {
                    let name = if a.name.is_empty() {
                        "(unnamed)".to_owned()
                    } else {
                        a.name
                    };
                    let (rule, reason) = rule(FMAP_KINDS, &name, "named by the dump's FMAP");
                    let (kind, blob) = kind_of(rule, &name);
                    areas.push(Area {
                        start: a.offset,
                        end: a.offset.saturating_add(a.size),
                        kind,
                        reason,
                        fill: None,
                        blob,
                        source: format!("FMAP at {pos:#x}, area {name}"),
                        name,
                    });
                }
                tables.push(Table {
                    format: TableFormat::Fmap,
                    offset: pos,
                    areas: n as u64,
                    used: false,
                });
            }
            Err(e) => notes.push(format!(
                "the dump's FMAP at {pos:#x} could not be read: {e}"
            )),
        }
        break;
    }
    // The Intel flash descriptor, at the start of the dump.
    match firmware::ifd::regions(source) {
        Ok(Some(regions)) => {
            const NAMES: [&str; 16] = [
                "descriptor",
                "bios",
                "me",
                "gbe",
                "pdr",
                "device-exp",
                "bios2",
                "region-7",
                "ec",
                "device-exp2",
                "ie",
                "10gbe-0",
                "10gbe-1",
                "region-13",
                "region-14",
                "ptt",
            ];
            for &(i, base, len) in &regions {
                let name = NAMES.get(i).copied().unwrap_or("region").to_owned();
                let (rule, reason) = rule(IFD_KINDS, &name, "named by the flash descriptor");
                let (kind, blob) = kind_of(rule, &name);
                areas.push(Area {
                    start: base,
                    end: base.saturating_add(len),
                    kind,
                    reason,
                    fill: None,
                    blob,
                    source: format!("Intel flash descriptor, region {name}"),
                    name,
                });
            }
            tables.push(Table {
                format: TableFormat::Ifd,
                offset: 0,
                areas: regions.len() as u64,
                used: false,
            });
        }
        Ok(None) => {}
        Err(e) => notes.push(format!(
            "the dump's flash descriptor could not be read: {e}"
        )),
    }
    // UEFI volumes: each `_FVH` whose header holds.
    for &sig in &found.fvh {
        let Some(base) = sig.checked_sub(0x28) else {
            continue;
        };
        let Some(v) = firmware::uefi::volume_header(source, base)? else {
            continue;
        };
        let end = base.saturating_add(v.len);
        let is_store = v.file_system == firmware::uefi::NV_DATA_GUID;
        let (kind, reason, what) = if is_store {
            (
                RegionKind::Config,
                "the UEFI variable store: written on the device",
                "variable store",
            )
        } else {
            (
                RegionKind::Other,
                "a UEFI firmware volume: code and data, not checked on its own",
                "volume",
            )
        };
        let source_text = format!("UEFI {what} {} at {base:#x}", v.name);
        let mut n = 1;
        if !is_store && end <= size && walk(&mut notes) {
            // The volume's own word on its free space: after its last file, erased.
            let window = Within {
                dump: source,
                start: base,
                len: v.len,
            };
            match firmware::map(firmware::Format::UefiFv, &window) {
                Ok(map) => {
                    for p in map.parts.iter().filter(|p| {
                        p.role == firmware::Role::Padding
                            && p.packed.is_none()
                            && p.name.ends_with("/free")
                    }) {
                        n += 1;
                        areas.push(Area {
                            start: base + p.offset,
                            end: base + p.offset + p.len,
                            name: format!("{}/free", v.name),
                            kind: RegionKind::Erased,
                            reason: "the UEFI volume calls it free space: it must hold only fill",
                            fill: Some(v.erase),
                            blob: None,
                            source: format!("{source_text}, its free space"),
                        });
                    }
                }
                Err(e) => notes.push(format!(
                    "the UEFI volume at {base:#x} could not be read to its end: {e}"
                )),
            }
        }
        areas.push(Area {
            start: base,
            end,
            name: v.name.clone(),
            kind,
            reason,
            fill: None,
            blob: None,
            source: source_text,
        });
        tables.push(Table {
            format: TableFormat::UefiVolume,
            offset: base,
            areas: n,
            used: false,
        });
    }
    // Device trees with `fixed-partitions`.
    for &pos in &found.dtb {
        if !walk(&mut notes) {
            break;
        }
        let window = Within {
            dump: source,
            start: pos,
            len: size - pos,
        };
        // Most magics are not trees (a FIT's, a chance match): only trees that name
        // partitions are worth a word.
        let Ok((parts, faults)) = firmware::fdt::partitions(&window) else {
            continue;
        };
        for f in faults {
            notes.push(format!("the device tree at {pos:#x}: {f}"));
        }
        if parts.is_empty() {
            continue;
        }
        let n = parts.len();
        for p in parts {
            let (rule, reason) = rule(DT_KINDS, &p.label, "named by the dump's device tree");
            let (kind, blob) = kind_of(rule, &p.label);
            areas.push(Area {
                start: p.offset,
                end: p.offset.saturating_add(p.size),
                kind,
                reason,
                fill: None,
                blob,
                source: format!(
                    "device tree at {pos:#x}, partition {} (/{})",
                    p.label, p.node
                ),
                name: p.label,
            });
        }
        tables.push(Table {
            format: TableFormat::DeviceTree,
            offset: pos,
            areas: n as u64,
            used: false,
        });
    }
    if areas.len() > MAX_AREAS {
        notes.push(format!(
            "the dump's tables list {} areas: the first {MAX_AREAS} are read",
            areas.len()
        ));
        areas.truncate(MAX_AREAS);
    }
    // Inside the dump, or cut at its end.
    areas.retain_mut(|a| {
        if a.start >= size {
            notes.push(format!(
                "{}: {:#x}-{:#x} lies past the dump's end {size:#x}",
                a.source, a.start, a.end
            ));
            return false;
        }
        if a.end > size {
            notes.push(format!(
                "{}: {:#x}-{:#x} ends past the dump's end {size:#x}: read up to it",
                a.source, a.start, a.end
            ));
            a.end = size;
        }
        true
    });
    let regions = flatten(&areas, &mut notes);
    Ok(OwnLayout {
        regions,
        tables,
        notes: notes.finish(),
    })
}

/// The areas cut into regions that do not overlap: each byte to the innermost area holding
/// it, or to the innermost `erased` area holding it when there is one. Partial overlaps
/// are noted.
fn flatten(areas: &[Area], notes: &mut Notes) -> Vec<Region> {
    for (i, a) in areas.iter().enumerate() {
        for b in &areas[..i] {
            let overlap = a.start < b.end && b.start < a.end;
            let nested =
                (a.start >= b.start && a.end <= b.end) || (b.start >= a.start && b.end <= a.end);
            if overlap && !nested {
                notes.push(format!(
                    "{} ({:#x}-{:#x}) overlaps {} ({:#x}-{:#x}): the smaller area holds the bytes they share",
                    a.source, a.start, a.end, b.source, b.start, b.end
                ));
            }
        }
    }
    let mut cuts: Vec<u64> = areas.iter().flat_map(|a| [a.start, a.end]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces: Vec<(u64, u64, usize)> = Vec::new();
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        let holding = areas
            .iter()
            .enumerate()
            .filter(|(_, a)| a.start <= from && to <= a.end);
        let owner = holding
            .clone()
            .filter(|(_, a)| a.kind == RegionKind::Erased)
            .min_by_key(|(_, a)| a.end - a.start)
            .or_else(|| holding.min_by_key(|(_, a)| a.end - a.start));
        let Some((i, _)) = owner else { continue };
        match pieces.last_mut() {
            Some(last) if last.2 == i && last.1 == from => last.1 = to,
            _ => pieces.push((from, to, i)),
        }
    }
    pieces
        .into_iter()
        .map(|(from, to, i)| {
            let a = &areas[i];
            Region {
                name: a.name.clone(),
                offset: from,
                size: to - from,
                kind: a.kind,
                reason: Some(a.reason.to_owned()),
                fill: a.fill,
                artifact: None,
                blob: a.blob.clone(),
                described_by: Some(a.source.clone()),
            }
        })
        .collect()
}

/// Where the declared layout and the dump's own disagree: a declared region that overlaps a
/// self-described area of another kind, one line each (at most [`MAX_NOTES`]).
pub(crate) fn disagreements(declared: &FlashLayout, own: &OwnLayout) -> Vec<String> {
    let mut notes = Notes::default();
    for d in &declared.regions {
        for o in own.regions.iter().filter(|o| o.kind != d.kind) {
            let (from, to) = (d.offset.max(o.offset), d.end().min(o.end()));
            if from < to {
                notes.push(format!(
                    "the layout's region `{}` ({}) and the dump's {} ({}) disagree at {from:#x}-{to:#x}: the layout wins",
                    d.name,
                    d.kind.as_str(),
                    o.described_by.as_deref().unwrap_or("own area"),
                    o.kind.as_str()
                ));
            }
        }
    }
    notes.finish()
}

/// Where each artifact found by content lies in the dump's own areas: the areas it covers,
/// and a word when the dump names release areas and the artifact is in none of them.
pub(crate) fn placed_in(report: &super::DumpReport, own: &OwnLayout) -> Vec<String> {
    let mut notes = Notes::default();
    let has_release = own.regions.iter().any(|r| r.kind == RegionKind::Release);
    for p in &report.placements {
        let Some(start) = p.offset.and_then(|o| u64::try_from(o.max(0)).ok()) else {
            continue;
        };
        let end = start.saturating_add(p.size);
        let mut names: Vec<&str> = Vec::new();
        let mut in_release = false;
        for r in own
            .regions
            .iter()
            .filter(|r| r.offset < end && start < r.end())
        {
            in_release |= r.kind == RegionKind::Release;
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
        if !names.is_empty() {
            let shown: Vec<String> = names.iter().take(4).map(|n| format!("`{n}`")).collect();
            let more = if names.len() > 4 {
                format!(" and {} more", names.len() - 4)
            } else {
                String::new()
            };
            notes.push(format!(
                "`{}` lies in the dump's own {} {}{more}",
                p.artifact,
                if names.len() == 1 { "area" } else { "areas" },
                shown.join(", ")
            ));
        }
        if has_release && !in_release {
            notes.push(format!(
                "`{}` lies outside every area the dump calls a release area",
                p.artifact
            ));
        }
    }
    notes.finish()
}

#[cfg(test)]
#[path = "own_tests.rs"]
mod tests;
