//! An ELF file's layout, to say where a differing byte lies: which section (is it
//! executable? the build-id note?), which segment, and which function covers it.
//!
//! Parsed through `object`'s read cache over the file, so only the headers and the symbol
//! tables are read, never the whole image.

use std::collections::HashMap;
use std::fs::File;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionFlags, SymbolKind};

use super::bytes::ByteRange;
use super::container::Blob;

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub name: String,
    /// File bytes of the section.
    pub file: ByteRange,
    pub address: u64,
    pub executable: bool,
}

#[derive(Debug, Clone)]
struct Symbol {
    name: String,
    address: u64,
    size: u64,
}

/// Sections, segments and function symbols of one ELF file.
#[derive(Debug, Clone, Default)]
pub(super) struct ElfMap {
    pub sections: Vec<Section>,
    /// File ranges of program headers (segments), by index.
    segments: Vec<ByteRange>,
    header_len: u64,
    functions: Vec<Symbol>,
}

/// Where a byte offset lies in an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    Header,
    Section {
        name: String,
        executable: bool,
        /// The function covering the offset, for executable sections.
        symbol: Option<String>,
    },
    Segment(usize),
    Elsewhere,
}

impl ElfMap {
    /// The layout of the ELF file in `blob`, or `None` when it cannot be parsed.
    pub(super) fn read(blob: &Blob) -> Option<ElfMap> {
        let cache = object::ReadCache::new(File::open(&blob.path).ok()?);
        let data = cache.range(blob.offset, blob.len);
        let file = object::File::parse(data).ok()?;
        let mut map = ElfMap {
            header_len: if file.is_64() { 64 } else { 52 },
            ..ElfMap::default()
        };
        for s in file.sections() {
            let Some((offset, len)) = s.file_range() else {
                continue;
            };
            let executable = match s.flags() {
                SectionFlags::Elf { sh_flags } => {
                    sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                }
                _ => false,
            };
            map.sections.push(Section {
                name: s.name().unwrap_or("?").to_owned(),
                file: ByteRange { offset, len },
                address: s.address(),
                executable,
            });
        }
        for seg in file.segments() {
            let (offset, len) = seg.file_range();
            map.segments.push(ByteRange { offset, len });
        }
        let symbols = file.symbols().chain(file.dynamic_symbols());
        map.functions = symbols
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| {
                Some(Symbol {
                    name: s.name().ok()?.to_owned(),
                    address: s.address(),
                    size: s.size(),
                })
            })
            .collect();
        map.functions
            .sort_by_key(|s| (s.address, std::cmp::Reverse(s.size)));
        Some(map)
    }

    pub(super) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Where the byte at file offset `offset` lies.
    pub(super) fn locate(&self, offset: u64) -> Location {
        let inside = |r: &ByteRange| r.offset <= offset && offset < r.end();
        if let Some(s) = self.sections.iter().find(|s| inside(&s.file)) {
            let symbol = s
                .executable
                .then(|| self.function_at(s.address.wrapping_add(offset - s.file.offset)))
                .flatten();
            return Location::Section {
                name: s.name.clone(),
                executable: s.executable,
                symbol,
            };
        }
        if offset < self.header_len {
            return Location::Header;
        }
        match self.segments.iter().position(inside) {
            Some(i) => Location::Segment(i),
            None => Location::Elsewhere,
        }
    }

    /// The function whose extent covers `address`; failing that, the nearest one before it
    /// (assembly symbols often have no size).
    fn function_at(&self, address: u64) -> Option<String> {
        let before = self.functions.partition_point(|s| s.address <= address);
        let candidates = &self.functions[..before];
        candidates
            .iter()
            .rev()
            .find(|s| address < s.address.saturating_add(s.size))
            .or_else(|| candidates.last().filter(|s| s.size == 0))
            .map(|s| s.name.clone())
    }
}

/// Sections that grew, shrank or exist on one side only (the first few): after such a change
/// the byte offsets of what follows shift, and the byte ranges say little on their own.
pub(super) fn layout_changes(left: &ElfMap, right: &ElfMap) -> Vec<String> {
    const SHOWN: usize = 8;
    let by_name = |m: &ElfMap| -> HashMap<String, u64> {
        m.sections
            .iter()
            .map(|s| (s.name.clone(), s.file.len))
            .collect()
    };
    let (lmap, rmap) = (by_name(left), by_name(right));
    let mut notes = Vec::new();
    for l in &left.sections {
        match rmap.get(&l.name) {
            Some(&len) if len != l.file.len => notes.push(format!(
                "section `{}` is {} bytes on the left and {len} on the right: what follows it shifts",
                l.name, l.file.len
            )),
            Some(_) => {}
            None => notes.push(format!("section `{}` is only on the left", l.name)),
        }
    }
    for r in right
        .sections
        .iter()
        .filter(|r| !lmap.contains_key(&r.name))
    {
        notes.push(format!("section `{}` is only on the right", r.name));
    }
    if notes.len() > SHOWN {
        let more = notes.len() - SHOWN;
        notes.truncate(SHOWN);
        notes.push(format!("{more} more sections differ in size or presence"));
    }
    notes
}
