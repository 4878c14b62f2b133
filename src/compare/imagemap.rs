//! Image maps: a composite image (a header, the raw binary `objcopy` made from an ELF file, a
//! `rootfs.tar.gz`, fill, a trailer) read as the parts the rebuilt tree also holds on its own,
//! so each part is explained with its own structure.
//!
//! **Finding the parts (the rebuilt side).** The candidates are the regular files of the
//! rebuilt tree ([`ImageParts::tree`], walked without following a link, every file opened
//! beneath the tree with [`crate::beneath`]: the tree is the build's, and hostile), and the
//! parts a recipe or the command line declares. An ELF executable stands both for itself and
//! for the raw image `objcopy -O binary` makes of it: its loaded sections laid out by load
//! address ([`ElfMap::image_pieces`]), the gaps between them not compared (objcopy may fill
//! them with any byte). Each candidate gets one anchor: the first [`WINDOW`]-byte window of
//! its first [`HEAD`] bytes (inside one section, for an image) holding at least
//! [`MIN_DISTINCT`] distinct bytes, so that fill never anchors. The left image is read once,
//! streaming, with a rolling hash over [`WINDOW`] bytes looked up in an index of the anchors
//! (a bit filter first, so most positions cost one memory read). Every anchor hit is then
//! checked byte for byte against the whole candidate. Memory stays bounded whatever the image
//! size: the candidates ([`MAX_CANDIDATES`]), the files walked ([`MAX_ENTRIES`]), the hits
//! ([`MAX_HITS`], at most [`MAX_OCCURRENCES`] per candidate) and the bytes checked are all
//! capped, and a note says when a cap was reached.
//!
//! **The map.** Matches are kept greedily without overlap: declared parts first, then the
//! raw images of ELF files (they explain by section, function and object), then containers
//! (gzip, tar, …, explained member by member), then other blobs; larger before smaller. A
//! match covering the whole image is no part (it is the image itself; an ELF file whose raw
//! image it is lays it out instead, as `elf =` would). The bytes before the first part are the
//! `header`, between parts `padding-N` when they are one repeated byte (fill) or `gap-N`
//! otherwise, after the last part the `trailer`. A header of at most [`MAX_HEADER`] bytes is
//! read for 32-bit fields (either byte order) holding a length, an offset or a CRC-32 of the
//! parts or of everything after the header: such a field is compared as a field, and when the
//! shipped image's value is again the same function of the shipped bytes, its change is a
//! checksum or a length following other changes.
//!
//! **The shipped side** is cut at the same offsets when both images have one size. Otherwise
//! each part is looked for where it is expected (its offset moved by what the parts before it
//! moved), at its own offset, and then forward (at most [`SEARCH`] bytes) for its first
//! [`PREFIX`] bytes or, for a container, its format's magic. A part whose shipped bytes start
//! with the whole rebuilt part keeps its length; otherwise it runs to the next part less the
//! fill before it. A part not found ends the map: what follows is compared as one span.
//!
//! An image of a format [`crate::firmware`] reads (a uImage, a FIT, …) is read by its own
//! header instead, unless parts are declared for it.
//!
//! A declared part that is not where it is declared (or nowhere, without an offset) is an
//! error in the report, never passed over: the image's leaf carries a note starting `error:`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::archive::{sniff, Format as ArchiveFormat, SNIFF_LEN};
use crate::beneath::{Links, Tree};
use crate::firmware::{Field, FieldKind, Part, Role};

use super::bytes::ByteRange;
use super::container::Blob;
use super::elf::ElfMap;
use super::parts::Found;
use super::walker::Walker;
use super::{io_error, Cause, Change, Error};

/// Bytes of a candidate's anchor, and of the rolling hash's window.
pub(super) const WINDOW: usize = 32;
/// A candidate's anchor is taken from its first bytes.
const HEAD: usize = 4096;
/// An anchor holds at least this many distinct byte values (fill never anchors).
const MIN_DISTINCT: usize = 6;
/// Candidate files searched for, at most.
pub(super) const MAX_CANDIDATES: usize = 2048;
/// Entries of the rebuilt tree walked, at most, and how deep.
pub(super) const MAX_ENTRIES: usize = 100_000;
const MAX_DEPTH: usize = 32;
/// Anchor hits checked, at most, and per candidate.
pub(super) const MAX_HITS: usize = 4096;
pub(super) const MAX_OCCURRENCES: usize = 16;
/// Bytes of candidates checked against the image, at most, beyond 4 times the image's size.
const CHECK_ALLOWANCE: u64 = 256 << 20;
/// A header longer than this is not read for fields.
pub(super) const MAX_HEADER: u64 = 4096;
/// How far past where it is expected a part is looked for in the shipped image.
pub(super) const SEARCH: u64 = 64 << 20;
/// Leading bytes of a part that locate it in the shipped image.
pub(super) const PREFIX: usize = 16;
/// Bytes read at a time.
const CHUNK: usize = 1 << 16;
/// Bits of the anchor filter (a bit set of hashes; 128 KiB).
const FILTER_BITS: u32 = 20;
/// The multiplier of the rolling hash (odd: a unit modulo 2^64).
const BASE: u64 = 0x0100_0000_01b3;

/// Where the parts of composite images come from ([`super::Options::parts`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ImageParts {
    /// The rebuilt tree, searched for parts by content (`None`: declared parts only).
    pub tree: Option<PathBuf>,
    /// Files of the tree that are never parts (the artifacts themselves), relative to it.
    pub exclude: Vec<PathBuf>,
    /// The images mapped: leaves whose file name is one of an image's names.
    pub images: Vec<Image>,
}

/// One image that is mapped into parts, and the parts declared for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Image {
    /// File names the image goes by (in the build tree, in the shipped set).
    pub names: Vec<String>,
    pub declared: Vec<DeclaredPart>,
}

/// A part declared by a recipe (`[[artifact.part]]`) or on the command line (`--part`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeclaredPart {
    /// How reports name the part: its path as written.
    pub name: String,
    /// The file to read its bytes from, or why it cannot be read.
    pub file: Result<PathBuf, String>,
    /// Where it starts in the image (`None`: found by content).
    pub offset: Option<u64>,
    /// The ELF file it was made from (`objcopy -O binary`), as written and where to read it.
    pub elf: Option<(String, Result<PathBuf, String>)>,
}

/// What a candidate's bytes are.
#[derive(Debug, Clone)]
enum Shape {
    /// The file's bytes.
    File,
    /// The raw image of an ELF file: `(image range, file offset)` of each loaded section.
    Image(Vec<(ByteRange, u64)>),
}

/// How well a kind of part is explained: lower is kept first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Declared,
    ElfImage,
    Container,
    Blob,
}

#[derive(Debug)]
struct Candidate {
    name: String,
    /// Where its bytes are read: beneath the tree (relative) or at a path given.
    rel: Option<PathBuf>,
    path: PathBuf,
    len: u64,
    shape: Shape,
    class: Class,
    /// For a raw ELF image: its layout and the ELF file as reports name it.
    layout: Option<(ElfMap, String)>,
    /// A declared offset.
    offset: Option<u64>,
    /// For a declared part: its index, to say when it was not found.
    declared: Option<usize>,
}

/// A candidate found at `start` of the left image.
#[derive(Debug, Clone, Copy)]
struct Match {
    cand: usize,
    start: u64,
}

/// What the search of one image found.
struct Finding {
    cands: Vec<Candidate>,
    matches: Vec<Match>,
    notes: Vec<String>,
    errors: Vec<String>,
}

/// Opens candidates for reading: beneath the tree, or at the path given.
struct Opener {
    tree: Option<Tree>,
}

impl Opener {
    fn open(&self, c: &Candidate) -> io::Result<File> {
        let refused = |e: crate::beneath::Error| match e {
            crate::beneath::Error::Io { source, .. } => source,
            e => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        };
        match (&self.tree, &c.rel) {
            (Some(tree), Some(rel)) => tree
                .open_file(rel, Links::None)
                .map(|o| o.file)
                .map_err(refused),
            _ => crate::beneath::open_regular(&c.path).map_err(refused),
        }
    }
}

/// Up to `len` bytes of `file` from `pos`.
fn read_file(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = file.read_at(&mut buf[filled..], pos + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

impl Candidate {
    /// The first bytes of its content, and where an anchor may lie in them (for an image:
    /// inside one section, so that a gap objcopy filled with another byte does not matter).
    fn head(&self, file: &File) -> io::Result<(Vec<u8>, Vec<std::ops::Range<usize>>)> {
        let want = usize::try_from(self.len.min(HEAD as u64)).unwrap_or(HEAD);
        match &self.shape {
            Shape::File => {
                let head = read_file(file, 0, want)?;
                let n = head.len();
                Ok((head, std::iter::once(0..n).collect()))
            }
            Shape::Image(pieces) => {
                let mut head = vec![0u8; want];
                let mut ranges = Vec::new();
                for (range, at) in pieces {
                    if range.offset >= want as u64 {
                        break;
                    }
                    let start = usize::try_from(range.offset).unwrap_or(want);
                    let n = usize::try_from(range.len)
                        .unwrap_or(usize::MAX)
                        .min(want - start);
                    let bytes = read_file(file, *at, n)?;
                    head[start..start + bytes.len()].copy_from_slice(&bytes);
                    ranges.push(start..start + bytes.len());
                }
                Ok((head, ranges))
            }
        }
    }
}

/// The anchor of a head: `(offset in the candidate, bytes)`.
fn anchor(head: &[u8], ranges: &[std::ops::Range<usize>]) -> Option<(usize, [u8; WINDOW])> {
    for r in ranges {
        if r.len() < WINDOW {
            continue;
        }
        for at in r.start..=r.end - WINDOW {
            let w = &head[at..at + WINDOW];
            let mut seen = [false; 256];
            let distinct = w
                .iter()
                .filter(|&&b| !std::mem::replace(&mut seen[usize::from(b)], true));
            if distinct.count() >= MIN_DISTINCT {
                let mut a = [0u8; WINDOW];
                a.copy_from_slice(w);
                return Some((at, a));
            }
        }
    }
    None
}

fn hash_window(w: &[u8]) -> u64 {
    w.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

#[inline]
fn filter_bit(h: u64) -> usize {
    usize::try_from(h >> (64 - FILTER_BITS)).unwrap_or(0)
}

/// Whether `len` bytes of `left` from `at` equal those of `file` from `file_at`; every byte
/// compared is charged to `budget`.
fn equal_at(
    left: &Blob,
    at: u64,
    file: &File,
    file_at: u64,
    len: u64,
    budget: &mut u64,
) -> io::Result<bool> {
    let Some(span) = left.slice(at, len) else {
        return Ok(false);
    };
    let mut reader = span.reader()?;
    let mut done = 0u64;
    let mut a = vec![0u8; CHUNK];
    while done < len {
        let n = usize::try_from((len - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        if *budget < n as u64 {
            return Ok(false);
        }
        *budget -= n as u64;
        reader.read_exact(&mut a[..n])?;
        let b = read_file(file, file_at + done, n)?;
        if a[..n] != b[..] {
            return Ok(false);
        }
        done += n as u64;
    }
    Ok(true)
}

/// Whether candidate `c` (open as `file`) lies at `start` of `left`.
fn lies_at(
    c: &Candidate,
    file: &File,
    left: &Blob,
    start: u64,
    budget: &mut u64,
) -> io::Result<bool> {
    if start.checked_add(c.len).is_none_or(|end| end > left.len) {
        return Ok(false);
    }
    match &c.shape {
        Shape::File => equal_at(left, start, file, 0, c.len, budget),
        Shape::Image(pieces) => {
            for (range, at) in pieces {
                if !equal_at(left, start + range.offset, file, *at, range.len, budget)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// The candidates of the rebuilt tree: its regular files, ELF executables also as their raw
/// images. Files larger than the image cannot be in it (an ELF file's image may be smaller).
fn tree_candidates(
    tree: &Tree,
    exclude: &[PathBuf],
    max_len: u64,
    cands: &mut Vec<Candidate>,
    notes: &mut Vec<String>,
) {
    let root = tree.root().to_path_buf();
    let mut files = 0usize;
    let walk = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .max_depth(MAX_DEPTH)
        .follow_links(false)
        .sort_by_file_name();
    for (n, entry) in walk.into_iter().enumerate() {
        if n >= MAX_ENTRIES || files >= MAX_CANDIDATES {
            notes.push(format!(
                "only the first {files} files of the rebuilt tree were searched for parts"
            ));
            return;
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&root) else {
            continue;
        };
        if exclude.iter().any(|e| e == rel) {
            continue;
        }
        let Ok(opened) = tree.open_file(rel, Links::None) else {
            continue;
        };
        let Ok(len) = opened.file.metadata().map(|m| m.len()) else {
            continue;
        };
        if len < WINDOW as u64 {
            continue;
        }
        files += 1;
        let name = rel.to_string_lossy().into_owned();
        let path = root.join(rel);
        let magic = read_file(&opened.file, 0, SNIFF_LEN).unwrap_or_default();
        let format = sniff(&magic);
        if format == Some(ArchiveFormat::Elf) {
            let blob = Blob {
                path: path.clone(),
                offset: 0,
                len,
            };
            let elf = ElfMap::read(&blob);
            let image = elf.as_ref().and_then(ElfMap::image);
            let pieces = elf.as_ref().and_then(ElfMap::image_pieces);
            if let (Some(image), Some(pieces)) = (image, pieces) {
                let image_size = image.image_len();
                if image_size >= WINDOW as u64 && image_size <= max_len {
                    cands.push(Candidate {
                        name: name.clone(),
                        rel: Some(rel.to_path_buf()),
                        path: path.clone(),
                        len: image_size,
                        shape: Shape::Image(pieces),
                        class: Class::ElfImage,
                        layout: Some((image, name.clone())),
                        offset: None,
                        declared: None,
                    });
                }
            }
        }
        if len <= max_len {
            cands.push(Candidate {
                name,
                rel: Some(rel.to_path_buf()),
                path,
                len,
                shape: Shape::File,
                class: if format.is_some() {
                    Class::Container
                } else {
                    Class::Blob
                },
                layout: None,
                offset: None,
                declared: None,
            });
        }
    }
}

/// The declared parts as candidates; what cannot be read is an error.
fn declared_candidates(
    declared: &[DeclaredPart],
    cands: &mut Vec<Candidate>,
    errors: &mut Vec<String>,
) {
    for (i, d) in declared.iter().enumerate() {
        let path = match &d.file {
            Ok(p) => p.clone(),
            Err(why) => {
                errors.push(format!("error: declared part `{}` {why}", d.name));
                continue;
            }
        };
        let len = match crate::beneath::open_regular(&path).and_then(|f| {
            f.metadata()
                .map(|m| m.len())
                .map_err(|source| crate::beneath::Error::Io {
                    path: path.clone(),
                    source,
                })
        }) {
            Ok(len) => len,
            Err(e) => {
                errors.push(format!(
                    "error: declared part `{}` cannot be read: {e}",
                    d.name
                ));
                continue;
            }
        };
        let layout = match &d.elf {
            None => None,
            Some((shown, file)) => {
                let map = file
                    .as_ref()
                    .ok()
                    .and_then(|p| ElfMap::read(&Blob::file(p).ok()?).and_then(|m| m.image()));
                if let Some(m) = map {
                    Some((m, shown.clone()))
                } else {
                    let why = file
                        .as_ref()
                        .err()
                        .cloned()
                        .unwrap_or_else(|| "is no ELF file that loads a section".into());
                    errors.push(format!(
                        "error: `{shown}`, the ELF of declared part `{}`, {why}",
                        d.name
                    ));
                    None
                }
            }
        };
        cands.push(Candidate {
            name: d.name.clone(),
            rel: None,
            path,
            len,
            shape: Shape::File,
            class: Class::Declared,
            layout,
            offset: d.offset,
            declared: Some(i),
        });
    }
}

/// Every place of `left` where a candidate lies (declared offsets checked there only).
fn find(
    left: &Blob,
    cands: &[Candidate],
    opener: &Opener,
    notes: &mut Vec<String>,
) -> io::Result<Vec<Match>> {
    let mut budget = left.len.saturating_mul(4).saturating_add(CHECK_ALLOWANCE);
    let mut matches = Vec::new();
    let mut anchors: HashMap<u64, Vec<(usize, usize, [u8; WINDOW])>> = HashMap::new();
    let mut filter = vec![0u64; (1usize << FILTER_BITS) / 64];
    let mut files: HashMap<usize, File> = HashMap::new();
    for (i, c) in cands.iter().enumerate() {
        let Ok(file) = opener.open(c) else { continue };
        if let Some(offset) = c.offset {
            if lies_at(c, &file, left, offset, &mut budget)? {
                matches.push(Match {
                    cand: i,
                    start: offset,
                });
            }
            continue;
        }
        let (head, ranges) = c.head(&file)?;
        if let Some((at, bytes)) = anchor(&head, &ranges) {
            let h = hash_window(&bytes);
            filter[filter_bit(h) / 64] |= 1 << (filter_bit(h) % 64);
            anchors.entry(h).or_default().push((i, at, bytes));
        }
    }
    if anchors.is_empty() {
        return Ok(matches);
    }
    let mut hits: Vec<Match> = Vec::new();
    let mut per_cand: HashMap<usize, usize> = HashMap::new();
    let mut capped = false;
    let mut pow = 1u64;
    for _ in 0..WINDOW {
        pow = pow.wrapping_mul(BASE);
    }
    let mut reader = left.reader()?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 16 + WINDOW);
    let mut base = 0u64; // image offset of buf[0]
    let mut h = 0u64;
    let mut chunk = vec![0u8; CHUNK * 16];
    loop {
        crate::interrupt::check()
            .map_err(|e| io::Error::new(io::ErrorKind::Interrupted, e.to_string()))?;
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        // Keep the last WINDOW bytes hashed, for the bytes that leave the window.
        let keep = buf.len().min(WINDOW);
        let drop = buf.len() - keep;
        buf.drain(..drop);
        base += drop as u64;
        let from = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        // After the first chunk `buf` starts with the last WINDOW bytes hashed, so `j` is
        // below WINDOW only at the very start, where no byte leaves the window yet.
        for j in from..buf.len() {
            let out = if j >= WINDOW { buf[j - WINDOW] } else { 0 };
            h = h
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(buf[j]))
                .wrapping_sub(u64::from(out).wrapping_mul(pow));
            let bit = filter_bit(h);
            if j + 1 < WINDOW || filter[bit >> 6] & (1 << (bit & 63)) == 0 {
                continue;
            }
            let Some(list) = anchors.get(&h) else {
                continue;
            };
            let at = base + (j + 1 - WINDOW) as u64;
            for (cand, k, bytes) in list {
                if buf[j + 1 - WINDOW..=j] != bytes[..] {
                    continue;
                }
                let Some(start) = at.checked_sub(*k as u64) else {
                    continue;
                };
                let count = per_cand.entry(*cand).or_default();
                if *count >= MAX_OCCURRENCES || hits.len() >= MAX_HITS {
                    capped = true;
                    continue;
                }
                *count += 1;
                hits.push(Match { cand: *cand, start });
            }
        }
    }
    if capped {
        notes.push(format!(
            "the search for parts stopped counting at {MAX_HITS} places, {MAX_OCCURRENCES} per file"
        ));
    }
    for m in hits {
        let c = &cands[m.cand];
        let file = match files.entry(m.cand) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match opener.open(c) {
                Ok(f) => v.insert(f),
                Err(_) => continue,
            },
        };
        if lies_at(c, file, left, m.start, &mut budget)? {
            matches.push(m);
        }
        if files.len() > 64 {
            files.clear();
        }
    }
    if budget == 0 {
        notes
            .push("the search for parts stopped checking places: too many bytes to compare".into());
    }
    Ok(matches)
}

/// Search `left` for the parts of `image` (and the tree's files).
fn search(spec: &ImageParts, image: &Image, left: &Blob) -> io::Result<Finding> {
    let mut cands = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    declared_candidates(&image.declared, &mut cands, &mut errors);
    let tree = spec
        .tree
        .as_ref()
        .and_then(|root| Tree::open_named(root, "build tree").ok());
    if let Some(tree) = &tree {
        tree_candidates(tree, &spec.exclude, left.len, &mut cands, &mut notes);
    }
    let opener = Opener { tree };
    let matches = find(left, &cands, &opener, &mut notes)?;
    for (i, d) in image.declared.iter().enumerate() {
        let Some(ci) = cands.iter().position(|c| c.declared == Some(i)) else {
            continue;
        };
        if !matches.iter().any(|m| m.cand == ci) {
            errors.push(match d.offset {
                Some(at) => format!(
                    "error: declared part `{}` is not at {at:#x} of the rebuilt image",
                    d.name
                ),
                None => format!(
                    "error: declared part `{}` is nowhere in the rebuilt image",
                    d.name
                ),
            });
        }
    }
    Ok(Finding {
        cands,
        matches,
        notes,
        errors,
    })
}

/// Check the declared parts of an image that was not compared (it matched its shipped file):
/// the errors, as [`ImageParts`] would report them.
pub(crate) fn check_declared(
    image_file: &Path,
    declared: &[DeclaredPart],
) -> io::Result<Vec<String>> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    let left = Blob::file(image_file)?;
    let spec = ImageParts::default();
    let image = Image {
        names: Vec::new(),
        declared: declared.to_vec(),
    };
    Ok(search(&spec, &image, &left)?.errors)
}

/// What a slot of the map is.
#[derive(Debug, Clone)]
enum Slot {
    Header,
    Found(usize),
    /// Between parts (`index`): fill of one byte, other bytes, or nothing.
    Between(Option<u8>),
    Trailer(Option<u8>),
}

#[derive(Debug, Clone)]
struct Placed {
    slot: Slot,
    name: String,
    left: ByteRange,
    right: ByteRange,
}

/// The byte every one of `len` bytes from `at` holds, if they are all one.
fn uniform(blob: &Blob, at: u64, len: u64) -> io::Result<Option<u8>> {
    if len == 0 {
        return Ok(None);
    }
    let Some(span) = blob.slice(at, len) else {
        return Ok(None);
    };
    let mut r = span.reader()?;
    let mut buf = vec![0u8; CHUNK];
    let mut byte = None;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(byte);
        }
        let b = *byte.get_or_insert(buf[0]);
        if buf[..n].iter().any(|&x| x != b) {
            return Ok(None);
        }
    }
}

/// How many bytes of `byte` end the span `at..end` of `blob`.
fn trailing_run(blob: &Blob, at: u64, end: u64, byte: u8) -> io::Result<u64> {
    let mut run = 0u64;
    let mut pos = end;
    while pos > at {
        let n = (pos - at).min(CHUNK as u64);
        let bytes = blob.read_at(pos - n, usize::try_from(n).unwrap_or(CHUNK))?;
        match bytes.iter().rposition(|&b| b != byte) {
            Some(i) => return Ok(run + (bytes.len() - i - 1) as u64),
            None => run += bytes.len() as u64,
        }
        pos -= n;
    }
    Ok(run)
}

/// Whether two spans hold the same bytes.
fn same_bytes(a: &Blob, a_at: u64, b: &Blob, b_at: u64, len: u64) -> io::Result<bool> {
    let (Some(x), Some(y)) = (a.slice(a_at, len), b.slice(b_at, len)) else {
        return Ok(false);
    };
    Ok(super::compare_readers(x.reader()?, y.reader()?)?.is_identical())
}

/// The first position in `from..to` of `right` where `accept` holds, reading forward.
fn search_forward(
    right: &Blob,
    from: u64,
    to: u64,
    prefix: &[u8],
    accept: &dyn Fn(u64) -> io::Result<bool>,
) -> io::Result<Option<u64>> {
    if prefix.is_empty() {
        return Ok(None);
    }
    let mut pos = from;
    while pos < to {
        let n = usize::try_from((to - pos).min(CHUNK as u64)).unwrap_or(CHUNK) + prefix.len();
        let bytes = right.read_at(pos, n)?;
        if bytes.len() < prefix.len() {
            return Ok(None);
        }
        for i in 0..=bytes.len() - prefix.len() {
            if pos + i as u64 >= to {
                break;
            }
            if bytes[i..i + prefix.len()] == *prefix && accept(pos + i as u64)? {
                return Ok(Some(pos + i as u64));
            }
        }
        pos += (bytes.len() - prefix.len() + 1) as u64;
    }
    Ok(None)
}

/// The map of both images: the left's slots from the matches, the right's located.
fn place(
    finding: &Finding,
    kept: &[Match],
    left: &Blob,
    right: &Blob,
    notes: &mut Vec<String>,
) -> io::Result<Vec<Placed>> {
    let mut slots: Vec<Placed> = Vec::new();
    let zero = ByteRange { offset: 0, len: 0 };
    let first = kept.first().map_or(left.len, |m| m.start);
    slots.push(Placed {
        slot: Slot::Header,
        name: "header".into(),
        left: ByteRange {
            offset: 0,
            len: first,
        },
        right: zero,
    });
    let mut names: HashSet<String> = ["header".to_owned(), "trailer".to_owned()].into();
    for (i, m) in kept.iter().enumerate() {
        let c = &finding.cands[m.cand];
        let mut name = c.name.clone();
        let mut n = 1;
        while !names.insert(name.clone()) {
            n += 1;
            name = format!("{}#{n}", c.name);
        }
        slots.push(Placed {
            slot: Slot::Found(m.cand),
            name,
            left: ByteRange {
                offset: m.start,
                len: c.len,
            },
            right: zero,
        });
        let end = m.start + c.len;
        let next = kept.get(i + 1).map_or(left.len, |m| m.start);
        let fill = uniform(left, end, next - end)?;
        let (slot, name) = if i + 1 == kept.len() {
            (Slot::Trailer(fill), "trailer".to_owned())
        } else if fill.is_some() {
            (Slot::Between(fill), format!("padding-{}", i + 1))
        } else {
            (Slot::Between(None), format!("gap-{}", i + 1))
        };
        // `trailer` is reserved: no part takes it.
        let name = if name == "trailer" || names.insert(name.clone()) {
            name
        } else {
            format!("({name})")
        };
        slots.push(Placed {
            slot,
            name,
            left: ByteRange {
                offset: end,
                len: next - end,
            },
            right: zero,
        });
    }
    if left.len == right.len {
        for s in &mut slots {
            s.right = s.left;
        }
        return Ok(slots);
    }
    // Locate each found part on the right.
    let mut shift: i128 = 0;
    let mut from = 0u64;
    let mut located: Vec<Option<u64>> = vec![None; slots.len()];
    let mut lost = None;
    for (si, s) in slots.iter().enumerate() {
        let Slot::Found(ci) = s.slot else { continue };
        let head = left.read_at(
            s.left.offset,
            usize::try_from(s.left.len)
                .unwrap_or(SNIFF_LEN)
                .min(SNIFF_LEN),
        )?;
        let format = sniff(&head).filter(|f| *f != ArchiveFormat::Elf);
        let _ = ci;
        let prefix: Vec<u8> = match format {
            Some(ArchiveFormat::Gzip) => head[..head.len().min(3)].to_vec(),
            Some(ArchiveFormat::Xz) => head[..head.len().min(6)].to_vec(),
            Some(ArchiveFormat::Zip | ArchiveFormat::Cpio) => head[..head.len().min(4)].to_vec(),
            _ => head[..head.len().min(PREFIX)].to_vec(),
        };
        let accept = |pos: u64| -> io::Result<bool> {
            let r = right.read_at(pos, SNIFF_LEN)?;
            Ok(match format {
                Some(f) => sniff(&r) == Some(f) && r.starts_with(&prefix),
                None => r.starts_with(&prefix),
            })
        };
        let expected = u64::try_from((i128::from(s.left.offset) + shift).max(0)).unwrap_or(0);
        let mut pos = None;
        for p in [expected, s.left.offset] {
            if p >= from && p < right.len && accept(p)? {
                pos = Some(p);
                break;
            }
        }
        if pos.is_none() {
            let to = right.len.min(expected.saturating_add(SEARCH));
            pos = search_forward(right, from, to, &prefix, &accept)?;
        }
        if pos.is_none() && expected < right.len && expected >= from {
            // Its first bytes changed (code that addresses a table that moved, say): where the
            // parts before it say it must be, as long as that lies in the image.
            notes.push(format!(
                "`{}` is taken to start at {expected:#x} of the shipped image, where the parts \
                 before it place it: its first bytes differ",
                s.name
            ));
            pos = Some(expected);
        }
        let Some(p) = pos else {
            lost = Some(si);
            break;
        };
        located[si] = Some(p);
        shift = i128::from(p) - i128::from(s.left.offset);
        from = p + 1;
    }
    if let Some(si) = lost {
        notes.push(format!(
            "`{}` and what follows it were not found in the shipped image: compared as one span",
            slots[si].name
        ));
        let offset = slots[si].left.offset;
        slots.truncate(si);
        slots.push(Placed {
            slot: Slot::Trailer(None),
            name: "rest".into(),
            left: ByteRange {
                offset,
                len: left.len - offset,
            },
            right: zero,
        });
        located.truncate(si);
        located.push(None);
    }
    // Lengths: each found part with the slot after it shares the span up to the next part.
    let anchors: Vec<(usize, u64)> = located
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    let header_end = anchors.first().map_or(0, |a| a.1);
    slots[0].right = ByteRange {
        offset: 0,
        len: header_end.min(right.len),
    };
    for (k, &(si, at)) in anchors.iter().enumerate() {
        let next = match anchors.get(k + 1) {
            Some(&(_, p)) => p,
            None if lost.is_some() => {
                // The part after could not be found: this one keeps its length.
                let len = slots[si].left.len.min(right.len - at);
                slots[si].right = ByteRange { offset: at, len };
                let rest = slots.len() - 1;
                slots[rest].right = ByteRange {
                    offset: at + len,
                    len: right.len - at - len,
                };
                continue;
            }
            None => right.len,
        };
        let span = next - at;
        let l = slots[si].left.len;
        let after = &slots[si + 1];
        let part = if span >= l && same_bytes(left, slots[si].left.offset, right, at, l)? {
            l
        } else {
            match after.slot {
                Slot::Between(Some(b)) | Slot::Trailer(Some(b)) => {
                    span - trailing_run(right, at, next, b)?
                }
                _ => span - after.left.len.min(span),
            }
        };
        slots[si].right = ByteRange {
            offset: at,
            len: part,
        };
        slots[si + 1].right = ByteRange {
            offset: at + part,
            len: span - part,
        };
    }
    if anchors.is_empty() {
        let rest = slots.len() - 1;
        slots[rest].right = ByteRange {
            offset: 0,
            len: right.len,
        };
    }
    Ok(slots)
}

/// A field name that lives as long as the process (the map model names fields with
/// `&'static str`); bounded: past that many, fields share one name.
fn intern(name: String) -> &'static str {
    const MAX: usize = 16_384;
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = names.get(name.as_str()) {
        return n;
    }
    if names.len() >= MAX {
        return "field";
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A value of the image a header field may hold.
struct Quantity {
    kind: FieldKind,
    short: &'static str,
    what: String,
    left: u64,
    right: u64,
}

fn crc32(blob: &Blob, range: ByteRange) -> io::Result<crc32fast::Hasher> {
    let mut h = crc32fast::Hasher::new();
    if let Some(span) = blob.slice(range.offset, range.len) {
        let mut r = span.reader()?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h)
}

/// The CRC-32 of each range, and of all of them in order, reading each byte once when the
/// ranges follow each other (as the slots after a header do).
fn crc32s(blob: &Blob, ranges: &[ByteRange], after: ByteRange) -> io::Result<(Vec<u64>, u64)> {
    let mut all = crc32fast::Hasher::new();
    let mut each = Vec::with_capacity(ranges.len());
    let mut at = after.offset;
    let mut contiguous = true;
    for r in ranges {
        let h = crc32(blob, *r)?;
        contiguous &= r.offset == at;
        at = r.end();
        each.push(u64::from(h.clone().finalize()));
        all.combine(&h);
    }
    let all = if contiguous && at == after.end() {
        all
    } else {
        crc32(blob, after)?
    };
    Ok((each, u64::from(all.finalize())))
}

/// The fields of both headers: 32-bit words holding a length, an offset or a CRC-32 of the
/// rest of the image on the left.
fn header_fields(
    slots: &[Placed],
    left: &Blob,
    right: &Blob,
) -> io::Result<(Vec<Field>, Vec<Field>)> {
    let lh = slots[0].left;
    if lh.len < 4 || lh.len > MAX_HEADER {
        return Ok((Vec::new(), Vec::new()));
    }
    let rh = slots[0].right;
    let mut qs: Vec<Quantity> = Vec::new();
    let after = |r: ByteRange, total: u64| ByteRange {
        offset: r.len,
        len: total - r.len.min(total),
    };
    qs.push(Quantity {
        kind: FieldKind::Length,
        short: "length",
        what: "length of the image".into(),
        left: left.len,
        right: right.len,
    });
    qs.push(Quantity {
        kind: FieldKind::Length,
        short: "length",
        what: "length of the image after the header".into(),
        left: left.len - lh.len,
        right: right.len - rh.len.min(right.len),
    });
    let body = &slots[1..];
    let (lcrc, lall) = crc32s(
        left,
        &body.iter().map(|s| s.left).collect::<Vec<_>>(),
        after(lh, left.len),
    )?;
    let (rcrc, rall) = crc32s(
        right,
        &body.iter().map(|s| s.right).collect::<Vec<_>>(),
        after(rh, right.len),
    )?;
    qs.push(Quantity {
        kind: FieldKind::Checksum,
        short: "crc32",
        what: "CRC-32 of the image after the header".into(),
        left: lall,
        right: rall,
    });
    for (i, s) in body.iter().enumerate() {
        if s.left.len == 0 {
            continue;
        }
        qs.push(Quantity {
            kind: FieldKind::Length,
            short: "length",
            what: format!("length of `{}`", s.name),
            left: s.left.len,
            right: s.right.len,
        });
        qs.push(Quantity {
            kind: FieldKind::Length,
            short: "offset",
            what: format!("offset of `{}`", s.name),
            left: s.left.offset,
            right: s.right.offset,
        });
        qs.push(Quantity {
            kind: FieldKind::Checksum,
            short: "crc32",
            what: format!("CRC-32 of `{}`", s.name),
            left: lcrc[i],
            right: rcrc[i],
        });
    }
    let lbytes = left.read_at(0, usize::try_from(lh.len).unwrap_or(0))?;
    let rbytes = right.read_at(0, usize::try_from(rh.len).unwrap_or(0))?;
    let word = |b: &[u8], at: usize, big: bool| -> Option<u64> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }))
    };
    let (mut lf, mut rf) = (Vec::new(), Vec::new());
    let mut at = 0usize;
    'scan: while at + 4 <= lbytes.len() {
        for big in [false, true] {
            let Some(v) = word(&lbytes, at, big) else {
                break;
            };
            let Some(q) = qs.iter().find(|q| {
                q.left == v
                    && match q.kind {
                        FieldKind::Checksum => v != 0 && v != 0xffff_ffff,
                        _ => v >= 16,
                    }
            }) else {
                continue;
            };
            let name = intern(format!("{} at {at:#x}", q.short));
            let rv = word(&rbytes, at, big);
            let consistent = rv == Some(q.right);
            let kind = if consistent {
                q.kind
            } else {
                FieldKind::Number
            };
            lf.push(Field {
                name,
                offset: at as u64,
                len: 4,
                value: format!("{v:#x} ({})", q.what),
                kind,
            });
            if let Some(rv) = rv {
                rf.push(Field {
                    name,
                    offset: at as u64,
                    len: 4,
                    value: if consistent {
                        format!("{rv:#x} ({})", q.what)
                    } else {
                        format!("{rv:#x} (not the {} here, {:#x})", q.what, q.right)
                    },
                    kind,
                });
            }
            at += 4;
            continue 'scan;
        }
        at += 1;
    }
    Ok((lf, rf))
}

/// An image map's comparison (`None`: not mapped) and the notes for the image's leaf.
type Mapped = (Option<Result<Found, String>>, Vec<String>);

impl Walker<'_> {
    /// Compare `left` and `right` through the image map of `left`, when the leaf at `path` is
    /// an image [`ImageParts`] names and parts are found in it. `None`: not mapped (the
    /// comparison goes on as before); the notes are for the leaf that stands for the image.
    pub(super) fn image_map(
        &mut self,
        path: &str,
        left: &Blob,
        right: &Blob,
        depth: usize,
    ) -> Result<Mapped, Error> {
        let Some(spec) = &self.opts.parts else {
            return Ok((None, Vec::new()));
        };
        let file_name = path.rsplit('/').next().unwrap_or(path);
        let Some(image) = spec
            .images
            .iter()
            .find(|i| i.names.iter().any(|n| n == file_name))
        else {
            return Ok((None, Vec::new()));
        };
        // An image of a firmware format is read by its own header (`parts.rs`), unless the
        // user declared its parts.
        let format = |b: &Blob| crate::firmware::identify(b).map_err(io_error(&b.path));
        if image.declared.is_empty() && format(left)?.is_some() && format(left)? == format(right)? {
            return Ok((None, Vec::new()));
        }
        self.budget
            .check_depth(depth as u64)
            .map_err(|e| Error::from_fault(path, e.into()))?;
        let finding = search(spec, image, left).map_err(io_error(&left.path))?;
        let mut notes = finding.notes.clone();
        notes.extend(finding.errors.iter().cloned());
        // Declared parts first, then the best explained, larger before smaller.
        let mut order = finding.matches.clone();
        order.sort_by_key(|m| {
            let c = &finding.cands[m.cand];
            (c.class, std::cmp::Reverse(c.len), m.start, c.name.clone())
        });
        let mut kept: Vec<Match> = Vec::new();
        let mut whole: Option<usize> = None;
        for m in order {
            let c = &finding.cands[m.cand];
            if m.start == 0 && c.len == left.len && c.class != Class::Declared {
                if c.layout.is_some() && whole.is_none() {
                    whole = Some(m.cand);
                }
                continue;
            }
            let end = m.start + c.len;
            let overlaps = kept.iter().any(|k| {
                let kend = k.start + finding.cands[k.cand].len;
                m.start < kend && k.start < end
            });
            if !overlaps {
                kept.push(m);
            }
        }
        kept.sort_by_key(|m| m.start);
        if kept.is_empty() {
            if let Some(ci) = whole {
                let applies = self.layout.as_ref().is_some_and(|l| l.name == file_name);
                if let (false, Some((map, elf))) = (applies, &finding.cands[ci].layout) {
                    notes.push(format!(
                        "the image is the raw image of `{elf}`, found by content in the rebuilt tree"
                    ));
                    self.part_layouts
                        .push((path.to_owned(), map.clone(), elf.clone()));
                }
            }
            return Ok((None, notes));
        }
        let slots =
            place(&finding, &kept, left, right, &mut notes).map_err(io_error(&left.path))?;
        let slots: Vec<Placed> = slots
            .into_iter()
            .filter(|s| s.left.len > 0 || s.right.len > 0)
            .collect();
        let (lfields, rfields) = if matches!(slots.first().map(|s| &s.slot), Some(Slot::Header)) {
            header_fields(&slots, left, right).map_err(io_error(&left.path))?
        } else {
            (Vec::new(), Vec::new())
        };
        let role = |s: &Placed| match s.slot {
            Slot::Header => Role::Header,
            Slot::Found(ci) => match finding.cands[ci].class {
                Class::Container => Role::Filesystem,
                _ => Role::Payload,
            },
            Slot::Between(Some(_)) | Slot::Trailer(Some(_)) => Role::Padding,
            Slot::Between(None) | Slot::Trailer(None) => Role::Other,
        };
        let part = |s: &Placed, r: ByteRange, fields: &[Field]| Part {
            name: s.name.clone(),
            offset: r.offset,
            len: r.len,
            role: role(s),
            fields: if matches!(s.slot, Slot::Header) {
                fields.to_vec()
            } else {
                Vec::new()
            },
            packed: None,
        };
        let lparts: Vec<Part> = slots.iter().map(|s| part(s, s.left, &lfields)).collect();
        let rparts: Vec<Part> = slots.iter().map(|s| part(s, s.right, &rfields)).collect();
        let layouts_before = self.part_layouts.len();
        let mut part_notes: Vec<(String, String)> = Vec::new();
        for s in &slots {
            let child = format!("{path}//{}", s.name);
            let at = |r: ByteRange| format!("{:#x}+{}", r.offset, r.len);
            let note = match &s.slot {
                Slot::Header => format!(
                    "header: the bytes before the first part, {} in the rebuilt image, {} in the shipped one",
                    at(s.left),
                    at(s.right)
                ),
                Slot::Found(ci) => {
                    let c = &finding.cands[*ci];
                    if let Some((map, elf)) = &c.layout {
                        self.part_layouts.push((child.clone(), map.clone(), elf.clone()));
                    }
                    let how = match (c.class, &c.layout) {
                        (Class::Declared, _) => "declared part".to_owned(),
                        (Class::ElfImage, Some((_, elf))) => {
                            format!("the raw image (`objcopy -O binary`) of `{elf}`, found by content")
                        }
                        _ => "a file of the rebuilt tree, found by content".to_owned(),
                    };
                    format!(
                        "part: {how}, at {} in the rebuilt image, {} in the shipped one",
                        at(s.left),
                        at(s.right)
                    )
                }
                Slot::Between(Some(b)) | Slot::Trailer(Some(b)) => format!(
                    "padding: fill of {b:#04x} in the rebuilt image at {}; {} in the shipped one",
                    at(s.left),
                    at(s.right)
                ),
                Slot::Between(None) | Slot::Trailer(None) => format!(
                    "bytes outside every part, {} in the rebuilt image, {} in the shipped one",
                    at(s.left),
                    at(s.right)
                ),
            };
            part_notes.push((child, note));
        }
        let before = self.leaves.len();
        let found = self.compare_maps(
            path,
            ("image header", None),
            &lparts,
            &rparts,
            (left, right),
            depth,
        );
        self.part_layouts.truncate(layouts_before);
        let found = found?;
        for leaf in &mut self.leaves[before..] {
            if let Some((_, note)) = part_notes.iter().find(|(child, _)| {
                leaf.path == *child
                    || leaf
                        .path
                        .strip_prefix(child.as_str())
                        .is_some_and(|rest| rest.starts_with("//"))
            }) {
                leaf.notes.push(note.clone());
            }
        }
        if matches!(found, Ok(Found::Leaves)) {
            if finding.errors.is_empty() {
                if let Some(first) = self.leaves.get_mut(before) {
                    first.notes.append(&mut notes);
                }
            } else {
                // A declaration that does not hold is a leaf of its own, never a mere aside.
                let mut leaf = self.leaf(path, Change::Changed, vec![Cause::Unknown], Vec::new());
                leaf.notes = std::mem::take(&mut notes);
                self.leaves.insert(before, leaf);
            }
        }
        Ok((Some(found), notes))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::super::{diff_paths, Cause, Comparison, Options};
    use super::{Image, ImageParts};

    /// Bytes that look like code or compressed data: no fill, no repeats.
    fn noise(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn write(dir: &Path, rel: &str, data: &[u8]) -> std::path::PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// `left` (in `tree`, as `img`) against `right`, its parts searched in `tree`.
    fn compare(tree: &Path, left: &[u8], right: &[u8]) -> Comparison {
        let l = write(tree, "img", left);
        let r = write(&tree.join("../shipped"), "img", right);
        let opts = Options {
            parts: Some(ImageParts {
                tree: Some(tree.to_path_buf()),
                exclude: vec!["img".into()],
                images: vec![Image {
                    names: vec!["img".into()],
                    declared: Vec::new(),
                }],
            }),
            ..Options::default()
        };
        diff_paths(&l, &r, &opts).unwrap()
    }

    /// header (magic, CRC-32 of the rest, little-endian) + a + 0xff fill + b + trailer.
    fn image(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut rest = a.to_vec();
        rest.extend([0xff; 40]);
        rest.extend(b);
        rest.extend(b"SIGNATURE");
        let mut img = b"IMG1".to_vec();
        img.extend(crc32fast::hash(&rest).to_le_bytes());
        img.extend([0u8; 8]);
        img.extend(rest);
        img
    }

    #[test]
    fn parts_are_found_by_content_and_the_header_crc_is_a_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let (a, b) = (noise(1, 300), noise(2, 500));
        write(&tree, "out/a.bin", &a);
        write(&tree, "out/b.bin", &b);
        let mut b2 = b.clone();
        b2[100] ^= 0x40;
        let c = compare(&tree, &image(&a, &b), &image(&a, &b2));
        let paths: Vec<&str> = c.leaves.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["img//header", "img//out/b.bin"], "{c:#?}");
        let header = &c.leaves[0];
        assert_eq!(header.metadata[0].field, "crc32 at 0x4");
        assert!(
            matches!(header.causes[..], [Cause::Checksum { .. }]),
            "{header:?}"
        );
        let part = c.leaves[1].content.as_ref().unwrap();
        assert_eq!((part.ranges[0].offset, part.ranges[0].len), (100, 1));
        // 4 parts and 1 fill matched: a, fill, the trailer.
        assert_eq!(c.identical, 3);
    }

    #[test]
    fn a_crc_that_does_not_match_the_shipped_bytes_is_not_explained_away() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let (a, b) = (noise(3, 300), noise(4, 500));
        write(&tree, "out/a.bin", &a);
        write(&tree, "out/b.bin", &b);
        let mut right = image(&a, &b);
        right[4] ^= 1;
        let c = compare(&tree, &image(&a, &b), &right);
        let header = &c.leaves[0];
        assert_eq!(header.path, "img//header");
        assert_eq!(header.causes, [Cause::Unknown], "{header:?}");
        assert!(
            header.metadata[0].right.contains("not the CRC-32"),
            "{header:?}"
        );
    }

    #[test]
    fn fill_and_tiny_files_are_never_parts() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        write(&tree, "zeros.bin", &[0u8; 4096]);
        write(&tree, "ff.bin", &[0xffu8; 4096]);
        write(&tree, "tiny.bin", &noise(5, 31));
        let mut left = vec![0u8; 8192];
        left.extend(noise(5, 31));
        left.extend([0xffu8; 8192]);
        let mut right = left.clone();
        right[9000] = 1;
        let c = compare(&tree, &left, &right);
        assert_eq!(c.leaves.len(), 1);
        assert_eq!(c.leaves[0].path, "img");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_the_tree_is_passed_over_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let a = noise(6, 300);
        write(&tree, "a.bin", &a);
        let fifo = tree.join("pipe");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let mut left = b"HEADER..".to_vec();
        left.extend(&a);
        let mut right = left.clone();
        right[50] ^= 1;
        let c = compare(&tree, &left, &right);
        assert_eq!(c.leaves[0].path, "img//a.bin");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the parts, cuts and edits: a comparison, never a panic, and a differing
        /// pair always has a differing leaf.
        #[test]
        fn image_maps_never_panic(
            seed in any::<u32>(),
            len in 64usize..3000,
            cuts in proptest::collection::vec((any::<proptest::sample::Index>(), 32usize..400), 1..4),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
            insert in proptest::collection::vec(any::<u8>(), 0..40),
            at in any::<proptest::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let tree = dir.path().join("tree");
            let left = noise(seed, len);
            for (i, (start, n)) in cuts.iter().enumerate() {
                let s = start.index(len);
                let e = (s + n).min(len);
                write(&tree, &format!("p{i}.bin"), &left[s..e]);
            }
            let mut right = left.clone();
            for (i, b) in &edits {
                let i = i.index(right.len());
                right[i] ^= b | 1;
            }
            let at = at.index(right.len());
            right.splice(at..at, insert);
            let c = compare(&tree, &left, &right);
            prop_assert!(!c.leaves.is_empty());
        }
    }
}
