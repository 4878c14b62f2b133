//! An ELF file's layout, to say where a differing byte lies: which section (is it
//! executable? allocated? the build-id note?), which segment, and which function (`STT_FUNC`)
//! or data object (`STT_OBJECT`, in a non-executable section) covers it.
//!
//! Parsed through `object`'s read cache over the file, so only the headers and the symbol
//! tables are read, never the whole image.
//!
//! The same map can describe a raw image made from the ELF file (`objcopy -O binary`):
//! [`ElfMap::image`] places each loaded section at its load address (LMA) less the lowest
//! one, so an image offset is located exactly as a file offset of the ELF file would be.

use std::collections::HashMap;
use std::fs::File;

use object::elf::{PT_LOAD, SHF_ALLOC, SHF_EXECINSTR};
use object::read::elf::{ElfFile, FileHeader, ProgramHeader as _};
use object::{
    Endianness, Object, ObjectSection, ObjectSegment, ObjectSymbol, ReadRef, SectionFlags,
    SymbolKind,
};

use super::bytes::ByteRange;
use super::container::Blob;

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub name: String,
    /// File bytes of the section.
    pub file: ByteRange,
    pub address: u64,
    pub executable: bool,
    /// `SHF_ALLOC`: part of the loaded image (`.rodata`, `.data`), not metadata (`.comment`).
    pub allocated: bool,
    /// The load address, for a section with contents that is loaded (`SHF_ALLOC`): what
    /// places it in a raw image.
    lma: Option<u64>,
}

/// A `PT_LOAD` program header: where a segment is in the file, in memory, and loaded from.
#[derive(Debug, Clone, Copy)]
struct Load {
    file: ByteRange,
    vaddr: u64,
    memsz: u64,
    paddr: u64,
}

impl Load {
    /// The load address of a section with these file bytes and this address, when this
    /// segment holds it (as BFD decides: file bytes and addresses both inside).
    fn lma(&self, file: ByteRange, address: u64) -> Option<u64> {
        // Saturating: the headers are untrusted input.
        let end = |start: u64, len: u64| start.saturating_add(len);
        let in_file = self.file.offset <= file.offset
            && end(file.offset, file.len) <= end(self.file.offset, self.file.len);
        let in_memory =
            self.vaddr <= address && end(address, file.len) <= end(self.vaddr, self.memsz);
        (in_file && in_memory).then(|| self.paddr.wrapping_add(address - self.vaddr))
    }
}

fn loads<'data, Elf, R>(file: &ElfFile<'data, Elf, R>) -> Vec<Load>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let e = file.endian();
    file.elf_program_headers()
        .iter()
        .filter(|p| p.p_type(e) == PT_LOAD)
        .map(|p| Load {
            file: ByteRange {
                offset: p.p_offset(e).into(),
                len: p.p_filesz(e).into(),
            },
            vaddr: p.p_vaddr(e).into(),
            memsz: p.p_memsz(e).into(),
            paddr: p.p_paddr(e).into(),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Symbol {
    name: String,
    address: u64,
    size: u64,
}

/// Sections, segments, function and data object symbols of one ELF file.
#[derive(Debug, Clone, Default)]
pub(super) struct ElfMap {
    pub sections: Vec<Section>,
    /// File ranges of program headers (segments), by index.
    segments: Vec<ByteRange>,
    header_len: u64,
    functions: Vec<Symbol>,
    /// Data objects with a size, by address.
    objects: Vec<Symbol>,
}

/// Where a byte offset lies in an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    Header,
    Section {
        name: String,
        executable: bool,
        allocated: bool,
        /// The function covering the offset, for executable sections; the data object
        /// covering it, for others.
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
        let loads = match &file {
            object::File::Elf32(f) => loads(f),
            object::File::Elf64(f) => loads(f),
            _ => Vec::new(),
        };
        for s in file.sections() {
            let Some((offset, len)) = s.file_range() else {
                continue;
            };
            let sh_flags = match s.flags() {
                SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            let file = ByteRange { offset, len };
            let address = s.address();
            // Outside every segment, the load address is the address (as objcopy takes it).
            let lma = (sh_flags & u64::from(SHF_ALLOC) != 0 && len > 0).then(|| {
                loads
                    .iter()
                    .find_map(|l| l.lma(file, address))
                    .unwrap_or(address)
            });
            map.sections.push(Section {
                name: s.name().unwrap_or("?").to_owned(),
                file,
                address,
                executable: sh_flags & u64::from(SHF_EXECINSTR) != 0,
                allocated: sh_flags & u64::from(SHF_ALLOC) != 0,
                lma,
            });
        }
        for seg in file.segments() {
            let (offset, len) = seg.file_range();
            map.segments.push(ByteRange { offset, len });
        }
        let symbols = |kind: SymbolKind| -> Vec<Symbol> {
            let mut list: Vec<Symbol> = file
                .symbols()
                .chain(file.dynamic_symbols())
                .filter(|s| s.kind() == kind && s.is_definition())
                .filter_map(|s| {
                    Some(Symbol {
                        name: s.name().ok()?.to_owned(),
                        address: s.address(),
                        size: s.size(),
                    })
                })
                .collect();
            list.sort_by_key(|s| (s.address, std::cmp::Reverse(s.size)));
            list
        };
        map.functions = symbols(SymbolKind::Text);
        // An object without a size says nothing about which bytes are its own.
        map.objects = symbols(SymbolKind::Data);
        map.objects.retain(|s| s.size > 0);
        Some(map)
    }

    /// The layout of the raw image `objcopy -O binary` makes from this ELF file: every loaded
    /// section with contents at its load address less the lowest one, and nothing else (no
    /// header, no segments). Its `file` ranges are image offsets; addresses, and so functions,
    /// stay. `None` when nothing is loaded.
    pub(super) fn image(&self) -> Option<ElfMap> {
        let base = self.sections.iter().filter_map(|s| s.lma).min()?;
        let sections = self
            .sections
            .iter()
            .filter_map(|s| {
                let offset = s.lma? - base;
                offset.checked_add(s.file.len)?;
                Some(Section {
                    file: ByteRange {
                        offset,
                        len: s.file.len,
                    },
                    lma: None,
                    ..s.clone()
                })
            })
            .collect();
        Some(ElfMap {
            sections,
            segments: Vec::new(),
            header_len: 0,
            functions: self.functions.clone(),
            objects: self.objects.clone(),
        })
    }

    /// The size of the image [`ElfMap::image`] describes: the end of its last section.
    pub(super) fn image_len(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| s.file.end())
            .max()
            .unwrap_or(0)
    }

    /// The file bytes of the one section called `name`, when no other section has that name
    /// and it overlaps neither the ELF header nor another section's bytes: what an
    /// `elf-section` allowance may cover.
    pub(super) fn sole_section(&self, name: &str) -> Option<ByteRange> {
        let mut named = self.sections.iter().filter(|s| s.name == name);
        let span = named.next()?.file;
        // Saturating: the section headers are untrusted input.
        let end = |r: &ByteRange| r.offset.saturating_add(r.len);
        let overlaps = |r: &ByteRange| r.offset < end(&span) && span.offset < end(r);
        let alone = named.next().is_none()
            && span.offset >= self.header_len
            && self
                .sections
                .iter()
                .filter(|s| s.name != name && s.file.len > 0)
                .all(|s| !overlaps(&s.file));
        alone.then_some(span)
    }

    /// Where the byte at file offset `offset` lies.
    pub(super) fn locate(&self, offset: u64) -> Location {
        let inside = |r: &ByteRange| r.offset <= offset && offset < r.end();
        if let Some(s) = self.sections.iter().find(|s| inside(&s.file)) {
            let address = s.address.wrapping_add(offset - s.file.offset);
            let symbol = if s.executable {
                self.function_at(address)
            } else if s.allocated {
                self.object_at(address)
            } else {
                None
            };
            return Location::Section {
                name: s.name.clone(),
                executable: s.executable,
                allocated: s.allocated,
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

impl ElfMap {
    /// The data object whose extent covers `address` (objects without a size never do).
    fn object_at(&self, address: u64) -> Option<String> {
        let before = self.objects.partition_point(|s| s.address <= address);
        self.objects[..before]
            .iter()
            .rev()
            .find(|s| address < s.address.saturating_add(s.size))
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
