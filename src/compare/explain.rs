//! A likely cause for one differing byte range, from the usual roots of non-reproducible
//! builds (see `docs/diff.md`), the string it lies in, and the hex context shown with it.
//!
//! The bytes around a range are read from both sides with positioned reads (a window of
//! [`WINDOW`] bytes on each side of at most [`RANGE_CAP`] bytes of the range, never the whole
//! input), all through [`read_sides`]. The only whole-input reads are the ROM checksum sum and
//! the CRC32 spans, each bounded ([`ROM_MAX`], [`CRC_BUDGET`]) and done once per leaf.
//!
//! Order matters, and keeps what is loud loud:
//! 1. `.note.gnu.build-id` → `build_id`;
//! 2. a toolchain identification string holding the whole range on both sides → `toolchain`
//!    (also inside an executable section: firmware keeps strings in `.text`) — never when a
//!    differing byte lies outside the string (only NUL padding may follow it on one side);
//! 3. an executable section → `code`, whatever the bytes look like;
//! 4. a data object (`STT_OBJECT` with a size) in an allocated section → `data`;
//! 5. the patterns: timestamps, build paths, host and user names, checksums and lengths;
//! 6. an allocated data section (`.rodata*`, `.data*`, …) without an object → `data`;
//! 7. `unknown`.
//!
//! So no pattern can hide a change to machine code or to a named constant table.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read as _, Seek as _};
use std::ops::Range;

use super::bytes::{ByteDiff, ByteRange};
use super::container::Blob;
use super::elf::{ElfMap, Location};
use super::{Cause, HexContext, Names, StringPair};

/// Bytes read on each side of a range to see the string or integer it belongs to.
const WINDOW: u64 = 256;
/// The most of a long range looked at; a longer range is no string or number.
const RANGE_CAP: u64 = 512;
/// A value this close to a reference time (in seconds) is taken for a timestamp: a month.
const NEAR: i64 = 31 * 86_400;
/// Strings shorter than this are not taken for strings.
const MIN_STRING: usize = 4;
/// The largest input whose bytes are summed for a ROM checksum.
const ROM_MAX: u64 = 16 << 20;
/// Bytes (both sides together) a leaf may hash looking for CRC32 fields.
const CRC_BUDGET: u64 = 256 << 20;
/// The longest span a CRC32 field is checked against.
const CRC_SPAN_MAX: u64 = 16 << 20;
/// Hex context: at least this many bytes per range (three rows of 16), at most
/// [`CONTEXT_MAX`] per range, and merged windows of at most [`CONTEXT_MERGED`].
const CONTEXT_MIN: u64 = 48;
const CONTEXT_MAX: u64 = 64;
const CONTEXT_MERGED: u64 = 256;

/// Marks of a toolchain identification string: compilers' `.comment`/`.ident`, linkers',
/// assemblers' and binutils' version banners.
const TOOLCHAIN_MARKS: &[&str] = &[
    "GCC: (",
    "gcc: (",
    "clang version ",
    "GNU ld ",
    "GNU assembler ",
    "GNU Binutils",
    "Linker: LLD ",
    "LLD ",
    "GNU gold ",
    "rustc version ",
];

/// Names of allocated sections holding data: a symbol-less change there is still data.
const DATA_SECTIONS: &[&str] = &[
    ".rodata", ".data", ".sdata", ".srodata", ".tdata", ".ldata", ".lrodata",
];

/// What the patterns compare against: reference times (Unix seconds) and known names.
#[derive(Debug, Clone, Default)]
pub(super) struct Clues {
    pub times: Vec<i64>,
    pub names: Names,
}

/// A range explained: its cause, where it is in an ELF file, the string it lies in.
#[derive(Debug)]
pub(super) struct Explained {
    pub cause: Cause,
    pub location: Option<Location>,
    pub string: Option<StringPair>,
}

/// The bytes of both sides from `start`, `len` of them, around `range`. The one place the
/// right side's position of a range is decided.
/// `shift`: the range's bytes are that many bytes later on the right (see `bytes::Shift`).
fn read_sides(
    left: &Blob,
    right: &Blob,
    shift: i64,
    start: u64,
    len: usize,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let right_start = start.saturating_add_signed(shift);
    Ok((left.read_at(start, len)?, right.read_at(right_start, len)?))
}

/// The earliest left offset a window may start at so that its right side starts at 0 or
/// later.
fn first_start(shift: i64) -> u64 {
    shift
        .checked_neg()
        .map_or(0, |s| u64::try_from(s).unwrap_or(0))
}

/// Explains the ranges of one leaf; what is costly to learn (the ROM sum, CRCs) is learnt
/// once, on first need.
pub(super) struct Explainer<'a> {
    left: &'a Blob,
    right: &'a Blob,
    elf: Option<&'a ElfMap>,
    bytes: &'a ByteDiff,
    clues: &'a Clues,
    /// The span whose bytes sum to 0 mod 256 on both sides, when there is one.
    rom: OnceCell<Option<Range<u64>>>,
    crc_left: Cell<u64>,
    crcs: RefCell<HashMap<(bool, u64, u64), u32>>,
}

impl<'a> Explainer<'a> {
    pub(super) fn new(
        left: &'a Blob,
        right: &'a Blob,
        elf: Option<&'a ElfMap>,
        bytes: &'a ByteDiff,
        clues: &'a Clues,
    ) -> Self {
        Explainer {
            left,
            right,
            elf,
            bytes,
            clues,
            rom: OnceCell::new(),
            crc_left: Cell::new(CRC_BUDGET),
            crcs: RefCell::new(HashMap::new()),
        }
    }

    /// The likely cause of the differing `range` (at left offsets; on the right `shift` bytes
    /// later), where it lies in an ELF file, and the string holding it.
    pub(super) fn explain(&self, range: ByteRange, shift: i64) -> io::Result<Explained> {
        let location = self.elf.map(|m| m.locate(range.offset));
        let start = range
            .offset
            .saturating_sub(WINDOW)
            .max(first_start(shift))
            .min(range.offset);
        let span_len = usize::try_from(range.len.min(RANGE_CAP)).unwrap_or(0);
        let before = usize::try_from(range.offset - start).unwrap_or(0);
        let want = before + span_len + usize::try_from(WINDOW).unwrap_or(0);
        let (l, r) = read_sides(self.left, self.right, shift, start, want)?;
        let span = before..before + span_len;
        let whole = range.len <= RANGE_CAP;
        let strings = if whole {
            string_at(&l, &span).zip(string_at(&r, &span))
        } else {
            None
        };
        let pair = strings.as_ref().map(|(a, b)| StringPair {
            left: String::from_utf8_lossy(&l[a.clone()]).into_owned(),
            right: String::from_utf8_lossy(&r[b.clone()]).into_owned(),
        });
        let done = |cause: Cause, string: Option<StringPair>| Explained {
            cause,
            location: location.clone(),
            string,
        };
        if let Some(Location::Section { name, .. }) = &location {
            if name == ".note.gnu.build-id" {
                return Ok(done(Cause::BuildId, None));
            }
        }
        if let Some(p) = &pair {
            if let Some((left, right)) = toolchain_versions(&p.left, &p.right) {
                return Ok(done(Cause::Toolchain { left, right }, pair));
            }
        }
        if let Some(Location::Section {
            name,
            executable,
            allocated,
            symbol,
        }) = &location
        {
            if *executable {
                let cause = Cause::Code {
                    section: name.clone(),
                    symbol: symbol.clone(),
                };
                return Ok(done(cause, None));
            }
            if *allocated && symbol.is_some() {
                let cause = Cause::Data {
                    section: name.clone(),
                    symbol: symbol.clone(),
                };
                return Ok(done(cause, pair));
            }
        }
        let times = &self.clues.times;
        let cause = if is_date_string(&l, &r, &span)
            || (whole && is_decimal_time(&l, &r, &span, times))
            || is_time_integer(&l, &r, &span, times)
        {
            Cause::Timestamp
        } else if is_build_path(&l, &span) && is_build_path(&r, &span) {
            Cause::BuildPath
        } else if let Some(cause) = whole
            .then(|| name_cause(&l, &r, &span, &self.clues.names))
            .flatten()
        {
            cause
        } else if let Some(field) = self.checksum(range, start, &l, &r, &span)? {
            Cause::Checksum { field: Some(field) }
        } else {
            match &location {
                Some(Location::Section {
                    name,
                    allocated: true,
                    ..
                }) if is_data_section(name) => Cause::Data {
                    section: name.clone(),
                    symbol: None,
                },
                _ => Cause::Unknown,
            }
        };
        Ok(done(cause, pair))
    }

    /// A checksum or length field that followed other changes: a ROM checksum byte, a CRC32
    /// of a span next to it, the length of the file or of what follows the field.
    fn checksum(
        &self,
        range: ByteRange,
        start: u64,
        l: &[u8],
        r: &[u8],
        span: &Range<usize>,
    ) -> io::Result<Option<String>> {
        if self.bytes.range_count < 2 {
            // Nothing else changed: nothing for a checksum to follow.
            return Ok(None);
        }
        if range.len == 1 {
            if let Some(rom) = self.rom_span()? {
                if self.is_rom_checksum(range, &rom) {
                    return Ok(Some("ROM checksum byte".to_owned()));
                }
            }
        }
        if let Some(field) = length_field(self.bytes, start, l, r, span) {
            return Ok(Some(field));
        }
        if range.len <= 4 {
            return self.crc_field(start, l, r, span);
        }
        Ok(None)
    }

    fn is_rom_checksum(&self, range: ByteRange, rom: &Range<u64>) -> bool {
        if !rom.contains(&range.offset) {
            return false;
        }
        let in_rom = |r: &&ByteRange| r.offset < rom.end && rom.start < r.end();
        let others = self.bytes.ranges.iter().filter(in_rom).count() > 1;
        let singles = self
            .bytes
            .ranges
            .iter()
            .filter(in_rom)
            .filter(|r| r.len == 1)
            .count();
        // The option ROM header keeps it at offset 6 (SeaBIOS, iPXE); BIOS images in their
        // last byte; otherwise it is the one lone byte that changed.
        let place = range.offset + 1 == rom.end || (range.offset == 6 && self.has_rom_header());
        others && (place || singles == 1)
    }

    fn has_rom_header(&self) -> bool {
        let head = self.left.read_at(0, 2).unwrap_or_default();
        head == [0x55, 0xaa]
    }

    /// The span summing to 0 mod 256 on both sides: a legacy option ROM (`55 aa`, its size
    /// in 512-byte blocks at byte 2) or the whole input, when both sides have one size of at
    /// most [`ROM_MAX`] bytes.
    fn rom_span(&self) -> io::Result<Option<Range<u64>>> {
        if let Some(span) = self.rom.get() {
            return Ok(span.clone());
        }
        let span = self.find_rom_span()?;
        let _ = self.rom.set(span.clone());
        Ok(span)
    }

    fn find_rom_span(&self) -> io::Result<Option<Range<u64>>> {
        let len = self.left.len;
        if len != self.right.len || len == 0 || len > ROM_MAX {
            return Ok(None);
        }
        let (lh, rh) = (self.left.read_at(0, 3)?, self.right.read_at(0, 3)?);
        let blocks = |h: &[u8]| (h.len() == 3 && h[..2] == [0x55, 0xaa]).then(|| u64::from(h[2]));
        let end = match (blocks(&lh), blocks(&rh)) {
            (Some(a), Some(b)) if a == b && a > 0 && a * 512 <= len => a * 512,
            _ => len,
        };
        let sum = |blob: &Blob| -> io::Result<u8> {
            let mut reader = blob.reader()?.take(end);
            let mut buf = vec![0u8; 64 << 10];
            let mut sum = 0u8;
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok(sum);
                }
                sum = buf[..n].iter().fold(sum, |s, &b| s.wrapping_add(b));
            }
        };
        let zero = sum(self.left)? == 0 && sum(self.right)? == 0;
        Ok(zero.then_some(0..end))
    }

    /// A 4-byte value covering the span that is, on both sides and in the same byte order,
    /// the CRC32 of the same kind of span: the rest of the input after it, everything before
    /// it, or the N bytes after it where N is the 4-byte value next to it.
    fn crc_field(
        &self,
        start: u64,
        l: &[u8],
        r: &[u8],
        span: &Range<usize>,
    ) -> io::Result<Option<String>> {
        for at in span.end.saturating_sub(4)..=span.start {
            let (Some(a), Some(b)) = (l.get(at..at + 4), r.get(at..at + 4)) else {
                continue;
            };
            let pos = start + at as u64;
            for big in [false, true] {
                let (va, vb) = (int(a, big), int(b, big));
                for rule in 0..6 {
                    let (Some(sa), Some(sb)) = (
                        crc_span(rule, pos, self.left.len, l, at, big),
                        crc_span(rule, pos, self.right.len, r, at, big),
                    ) else {
                        continue;
                    };
                    let (Some(ca), Some(cb)) = (self.crc(true, sa)?, self.crc(false, sb)?) else {
                        return Ok(None);
                    };
                    if i64::from(ca) == va && i64::from(cb) == vb {
                        let what = match rule {
                            0 => "CRC32 of the rest of the file".to_owned(),
                            1 => "CRC32 of the bytes before it".to_owned(),
                            _ => format!("CRC32 of the {} bytes after it", sa.1),
                        };
                        return Ok(Some(what));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The CRC32 of `span` (start, length) of one side; `None` once the budget is spent.
    fn crc(&self, is_left: bool, span: (u64, u64)) -> io::Result<Option<u32>> {
        if let Some(&c) = self.crcs.borrow().get(&(is_left, span.0, span.1)) {
            return Ok(Some(c));
        }
        let Some(left) = self.crc_left.get().checked_sub(span.1) else {
            return Ok(None);
        };
        self.crc_left.set(left);
        let blob = if is_left { self.left } else { self.right };
        let mut file = blob.reader()?.into_inner();
        file.seek(io::SeekFrom::Current(
            i64::try_from(span.0).unwrap_or(i64::MAX),
        ))?;
        let mut reader = file.take(span.1);
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let c = hasher.finalize();
        self.crcs.borrow_mut().insert((is_left, span.0, span.1), c);
        Ok(Some(c))
    }
}

/// The span (start, length) a CRC32 field at file offset `pos` (window index `at`) may cover
/// under `rule`: 0 the rest of the input, 1 everything before it, 2..6 the N bytes after it
/// with N read next to it (4 or 8 bytes before or after the field).
fn crc_span(rule: u8, pos: u64, size: u64, buf: &[u8], at: usize, big: bool) -> Option<(u64, u64)> {
    let after = pos.checked_add(4)?;
    let span = match rule {
        0 => (after, size.checked_sub(after)?),
        1 => (0, pos),
        _ => {
            let field = match rule {
                2 => at.checked_sub(4)?,
                3 => at.checked_sub(8)?,
                4 => at + 4,
                _ => at + 8,
            };
            let n = u64::try_from(int(buf.get(field..field + 4)?, big)).ok()?;
            (after, n)
        }
    };
    let fits = span.0.checked_add(span.1).is_some_and(|end| end <= size);
    (fits && span.1 >= 16 && span.1 <= CRC_SPAN_MAX).then_some(span)
}

/// A 2-, 4- or 8-byte integer covering the span that holds, on each side, that side's size,
/// or the count of bytes after the field, when the sizes differ.
fn length_field(
    bytes: &ByteDiff,
    start: u64,
    l: &[u8],
    r: &[u8],
    span: &Range<usize>,
) -> Option<String> {
    let (ls, rs) = (bytes.left_size, bytes.right_size);
    if ls == rs {
        return None;
    }
    for width in [4usize, 8, 2] {
        if span.len() > width {
            continue;
        }
        for at in span.end.saturating_sub(width)..=span.start {
            let (Some(a), Some(b)) = (l.get(at..at + width), r.get(at..at + width)) else {
                continue;
            };
            let end = start + (at + width) as u64;
            for big in [false, true] {
                let (va, vb) = (int(a, big), int(b, big));
                let is = |v: i64, n: u64| i64::try_from(n).is_ok_and(|n| n == v);
                if is(va, ls) && is(vb, rs) {
                    return Some("length of the file".to_owned());
                }
                if let (Some(la), Some(ra)) = (ls.checked_sub(end), rs.checked_sub(end)) {
                    if is(va, la) && is(vb, ra) {
                        return Some("length of what follows".to_owned());
                    }
                }
            }
        }
    }
    None
}

fn is_data_section(name: &str) -> bool {
    DATA_SECTIONS
        .iter()
        .any(|d| name == *d || name.strip_prefix(d).is_some_and(|r| r.starts_with('.')))
}

/// Windows of hex context for the ranges at `chosen` (indices into `ranges`, ascending):
/// each from its range's 16-aligned start, [`CONTEXT_MIN`] to [`CONTEXT_MAX`] bytes;
/// overlapping windows merged (up to [`CONTEXT_MERGED`] bytes), so no row appears twice. The
/// context of a merged window goes to its first range.
///
/// `shift_of(i)`: how much later range `i`'s bytes are on the right; windows of ranges with
/// other shifts are never merged.
pub(super) fn contexts(
    ranges: &[ByteRange],
    chosen: &[usize],
    shift_of: &dyn Fn(usize) -> i64,
    left: &Blob,
    right: &Blob,
) -> io::Result<Vec<(usize, HexContext)>> {
    let mut windows: Vec<(usize, u64, u64)> = Vec::new();
    for &i in chosen {
        let r = ranges[i];
        let shift = shift_of(i);
        let mut from = (r.offset & !15).max(first_start(shift));
        let to = r.end().min(r.offset.saturating_add(CONTEXT_MAX));
        let mut to = to.saturating_add(15) & !15;
        to = to.max(from.saturating_add(CONTEXT_MIN));
        if let Some(last) = windows.last_mut().filter(|w| shift_of(w.0) == shift) {
            if from <= last.2 {
                if to.min(last.1 + CONTEXT_MERGED) > last.2 {
                    last.2 = to.min(last.1 + CONTEXT_MERGED);
                }
                if to <= last.2 {
                    continue;
                }
                // Too long to merge: the rest of the window starts where the last one ends.
                from = last.2;
            }
        }
        windows.push((i, from, to));
    }
    windows
        .into_iter()
        .map(|(i, from, to)| {
            let len = usize::try_from(to - from).unwrap_or(0);
            let shift = shift_of(i);
            let (l, r) = read_sides(left, right, shift, from, len)?;
            Ok((
                i,
                HexContext {
                    offset: from,
                    left: hex(&l),
                    right: hex(&r),
                    right_offset: (shift != 0).then(|| from.saturating_add_signed(shift)),
                },
            ))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn is_printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || c == b'\t'
}

/// The printable string (at least [`MIN_STRING`] bytes) holding the bytes of `span` that this
/// side has: they are printable, except that NUL padding may follow the string inside the
/// span. A span past this side's end holds the string that ends there.
fn string_at(buf: &[u8], span: &Range<usize>) -> Option<Range<usize>> {
    let end = span.end.min(buf.len());
    let start = span.start.min(end);
    let inside = &buf[start..end];
    let text = inside.iter().take_while(|&&c| is_printable(c)).count();
    if inside[text..].iter().any(|&c| c != 0) {
        return None;
    }
    let mut s = start;
    while s > 0 && is_printable(buf[s - 1]) {
        s -= 1;
    }
    let mut e = start + text;
    if text == inside.len() {
        while e < buf.len() && is_printable(buf[e]) {
            e += 1;
        }
    }
    (e - s >= MIN_STRING && (text > 0 || e == start)).then_some(s..e)
}

/// The differing version words of two toolchain identification strings
/// (`12.2.0-14`, `12.2.0-14+deb12u1`), when both are such strings and they differ.
fn toolchain_versions(left: &str, right: &str) -> Option<(String, String)> {
    let marked = |s: &str| TOOLCHAIN_MARKS.iter().any(|m| s.contains(m));
    if left == right || !marked(left) || !marked(right) {
        return None;
    }
    let (lb, rb) = (left.as_bytes(), right.as_bytes());
    let mut first = lb.iter().zip(rb).take_while(|(x, y)| x == y).count();
    let room = lb.len().min(rb.len()) - first;
    let same_end = lb
        .iter()
        .rev()
        .zip(rb.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let word = |c: u8| !matches!(c, b' ' | b'(' | b')' | b',' | b'"' | b'\'' | b'\t');
    while first > 0 && word(lb[first - 1]) {
        first -= 1;
    }
    let end = |text: &[u8]| {
        let mut at = text.len() - same_end;
        while at < text.len() && word(text[at]) {
            at += 1;
        }
        at
    };
    let (left_end, right_end) = (end(lb), end(rb));
    Some((
        left.get(first..left_end).unwrap_or(left).to_owned(),
        right.get(first..right_end).unwrap_or(right).to_owned(),
    ))
}

/// Shapes of date and time strings: `A` upper, `a` lower, `9` digit, `_` digit or space.
const DATE_SHAPES: &[&[u8]] = &[
    b"Aaa _9 9999",
    b"99 Aaa 9999",
    b"Aaa _9 99:99",
    b"9999-99-99",
    b"99:99:99",
];

fn fits(s: &[u8], at: usize, shape: &[u8]) -> bool {
    s.get(at..at + shape.len()).is_some_and(|w| {
        w.iter().zip(shape).all(|(&c, &p)| match p {
            b'A' => c.is_ascii_uppercase(),
            b'a' => c.is_ascii_lowercase(),
            b'9' => c.is_ascii_digit(),
            b'_' => c.is_ascii_digit() || c == b' ',
            lit => c == lit,
        })
    })
}

/// Both sides hold a date or time string, at the same place, overlapping the span.
fn is_date_string(l: &[u8], r: &[u8], span: &Range<usize>) -> bool {
    DATE_SHAPES.iter().any(|shape| {
        let first = (span.start + 1).saturating_sub(shape.len());
        (first..span.end).any(|at| fits(l, at, shape) && fits(r, at, shape))
    })
}

/// The digits around the span on one side, when every byte of the span it has is one.
fn digit_run(buf: &[u8], span: &Range<usize>) -> Option<Range<usize>> {
    let end = span.end.min(buf.len());
    if span.start >= end || !buf[span.start..end].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut s = span.start;
    while s > 0 && buf[s - 1].is_ascii_digit() {
        s -= 1;
    }
    let mut e = end;
    while e < buf.len() && buf[e].is_ascii_digit() {
        e += 1;
    }
    Some(s..e)
}

/// A decimal number as a time in Unix seconds, by its digit count: seconds (9–10),
/// milliseconds (12–13), microseconds (15–16), nanoseconds (`date +%s%N`, 18–19), or
/// `%Y%m%d%H%M%S` (14).
fn decimal_seconds(digits: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(digits).ok()?;
    let v: u64 = text.parse().ok()?;
    let secs = match digits.len() {
        9 | 10 => v,
        12 | 13 => v / 1_000,
        15 | 16 => v / 1_000_000,
        18..=19 => v / 1_000_000_000,
        14 => {
            let n = |r: Range<usize>| text.get(r)?.parse::<u8>().ok();
            let year: i32 = text.get(..4)?.parse().ok()?;
            let month = time::Month::try_from(n(4..6)?).ok()?;
            let date = time::Date::from_calendar_date(year, month, n(6..8)?).ok()?;
            let t = date.with_hms(n(8..10)?, n(10..12)?, n(12..14)?).ok()?;
            return Some(t.assume_utc().unix_timestamp());
        }
        _ => return None,
    };
    i64::try_from(secs).ok()
}

/// `near`: up to a month before a reference time (stamps are not taken after the build) and a
/// day after; `plausible`: between 1980 and two years after the latest reference (a second
/// rebuild's varied clock runs 400 days ahead).
fn time_tests(times: &[i64]) -> (impl Fn(i64) -> bool + '_, impl Fn(i64) -> bool) {
    const DAY: i64 = 86_400;
    const AHEAD: i64 = 2 * 366 * DAY;
    let near = move |v: i64| {
        times
            .iter()
            .any(|&t| (t.saturating_sub(NEAR)..=t.saturating_add(DAY)).contains(&v))
    };
    let latest = times.iter().max().map_or(0, |t| t.saturating_add(AHEAD));
    let plausible = move |v: i64| (315_532_800..=latest).contains(&v);
    (near, plausible)
}

/// The span lies in a decimal number on both sides that reads, on one side, as a time near a
/// reference and on the other as a plausible time.
fn is_decimal_time(l: &[u8], r: &[u8], span: &Range<usize>, times: &[i64]) -> bool {
    let (Some(a), Some(b)) = (digit_run(l, span), digit_run(r, span)) else {
        return false;
    };
    let (Some(va), Some(vb)) = (decimal_seconds(&l[a]), decimal_seconds(&r[b])) else {
        return false;
    };
    let (near, plausible) = time_tests(times);
    (near(va) && plausible(vb)) || (near(vb) && plausible(va))
}

/// A 4- or 8-byte integer (either byte order) covering the span reads, on one side, as a time
/// near a reference (`SOURCE_DATE_EPOCH`, the build time, now, the files' mtimes) and on the
/// other as a plausible time.
fn is_time_integer(l: &[u8], r: &[u8], span: &Range<usize>, times: &[i64]) -> bool {
    let (near, plausible) = time_tests(times);
    for width in [4usize, 8] {
        if span.len() > width {
            continue;
        }
        for at in span.end.saturating_sub(width)..=span.start {
            let (Some(a), Some(b)) = (l.get(at..at + width), r.get(at..at + width)) else {
                continue;
            };
            for big in [false, true] {
                let (va, vb) = (int(a, big), int(b, big));
                if (near(va) && plausible(vb)) || (near(vb) && plausible(va)) {
                    return true;
                }
            }
        }
    }
    false
}

fn int(bytes: &[u8], big: bool) -> i64 {
    let mut v: u64 = 0;
    for i in 0..bytes.len() {
        let b = if big {
            bytes[i]
        } else {
            bytes[bytes.len() - 1 - i]
        };
        v = (v << 8) | u64::from(b);
    }
    i64::try_from(v).unwrap_or(i64::MIN)
}

/// The span lies in an absolute path string after its first `/`.
fn is_build_path(s: &[u8], span: &Range<usize>) -> bool {
    let path_char = |c: u8| c.is_ascii_graphic() && !b"\"'<>`|".contains(&c);
    if span.start >= s.len() || !path_char(s[span.start]) {
        return false;
    }
    let begin = s[..span.start]
        .iter()
        .rposition(|&c| !path_char(c))
        .map_or(0, |i| i + 1);
    let token = &s[begin..=span.start];
    // The path starts the token, or follows `=` or `:` (`-I/usr/…`, `DIR=/build/…`).
    let Some(slash) = token.iter().position(|&c| c == b'/') else {
        return false;
    };
    let absolute = slash == 0 || matches!(token[slash - 1], b'=' | b':' | b'I' | b'L');
    absolute && slash < token.len() - 1
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')
}

/// The name-like token (letters, digits, `-_.`) holding the bytes of the span this side has,
/// NUL padding allowed after it.
fn name_token(buf: &[u8], span: &Range<usize>) -> Option<Range<usize>> {
    let end = span.end.min(buf.len());
    let start = span.start.min(end);
    let inside = &buf[start..end];
    let text = inside.iter().take_while(|&&c| is_name_char(c)).count();
    if inside[text..].iter().any(|&c| c != 0) {
        return None;
    }
    let mut s = start;
    while s > 0 && is_name_char(buf[s - 1]) {
        s -= 1;
    }
    let mut e = start + text;
    while e < buf.len() && is_name_char(buf[e]) {
        e += 1;
    }
    (e > s).then_some(s..e)
}

/// On one side the span lies in a known host or user name, on the other in another name.
/// Host names are tried first: a machine named after its user reads as a host name.
fn name_cause(l: &[u8], r: &[u8], span: &Range<usize>, names: &Names) -> Option<Cause> {
    let (Some(in_left), Some(in_right)) = (name_token(l, span), name_token(r, span)) else {
        return None;
    };
    // A sentence's full stop is no part of a name.
    let trim = |t: &'_ [u8]| -> Vec<u8> {
        let end = t.iter().rposition(|&c| c != b'.').map_or(0, |i| i + 1);
        t[..end].to_vec()
    };
    let (ta, tb) = (trim(&l[in_left]), trim(&r[in_right]));
    if ta == tb {
        return None;
    }
    // The name itself, or the first label of a qualified name (`buildd.debian.org`).
    let known = |list: &[String], t: &[u8]| {
        list.iter().any(|name| {
            let name = name.as_bytes();
            name.len() >= 3
                && (t == name || (t.starts_with(name) && t.get(name.len()) == Some(&b'.')))
        })
    };
    let (ta, tb) = (ta.as_slice(), tb.as_slice());
    if known(&names.hosts, ta) || known(&names.hosts, tb) {
        return Some(Cause::HostName);
    }
    if known(&names.users, ta) || known(&names.users, tb) {
        return Some(Cause::UserName);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_strings_are_timestamps() {
        assert!(is_date_string(
            b"built Nov 14 2023 x",
            b"built Nov 15 2023 x",
            &(10..11)
        ));
        assert!(is_date_string(b"at 12:34:56.", b"at 12:35:01.", &(7..8)));
        assert!(is_date_string(b"2026-11-22", b"2026-11-23", &(9..10)));
        assert!(is_date_string(
            b"Tue, 01 Dec 2026 x",
            b"Wed, 02 Dec 2026 x",
            &(0..7)
        ));
        assert!(!is_date_string(b"version 1.2", b"version 1.3", &(10..11)));
    }

    #[test]
    fn integers_near_a_reference_are_timestamps() {
        let sde: i64 = 1_700_000_000;
        let mut l = vec![0u8; 16];
        let mut r = l.clone();
        l[4..8].copy_from_slice(&u32::try_from(sde).unwrap().to_le_bytes());
        r[4..8].copy_from_slice(&u32::try_from(sde + 3600).unwrap().to_le_bytes());
        assert!(is_time_integer(&l, &r, &(5..6), &[sde]));
        l[4..8].copy_from_slice(&u32::try_from(sde).unwrap().to_be_bytes());
        r[4..8].copy_from_slice(&u32::try_from(sde + 7).unwrap().to_be_bytes());
        assert!(is_time_integer(&l, &r, &(7..8), &[sde]));
        assert!(!is_time_integer(
            &[0, 1, 2, 3],
            &[0, 1, 2, 4],
            &(3..4),
            &[sde]
        ));
    }

    #[test]
    fn decimal_epochs_in_every_unit_are_timestamps() {
        let now: i64 = 1_764_632_375;
        let cases: [(&[u8], &[u8], Range<usize>); 5] = [
            (b"t=1764632375;", b"t=1764632399;", 10..12),
            (b"t=1764632375123;", b"t=1764632375456;", 12..15),
            (b"t=1764632375123456;", b"t=1764632375123999;", 16..18),
            (
                b"t=1764632375123456789\n",
                b"t=1764632377987654321\n",
                11..21,
            ),
            (b"t=20251201233935;", b"t=20251201234010;", 13..15),
        ];
        for (l, r, span) in cases {
            assert!(
                is_decimal_time(l, r, &span, &[now]),
                "{}",
                String::from_utf8_lossy(l)
            );
        }
        // Far from every reference on both sides: a counter, not a clock.
        assert!(!is_decimal_time(
            b"n=1000000001;",
            b"n=1000000002;",
            &(11..12),
            &[now]
        ));
        // Not all digits: no number.
        assert!(!is_decimal_time(
            b"1764632375",
            b"17646323x5",
            &(8..9),
            &[now]
        ));
    }

    #[test]
    fn absolute_paths_are_build_paths() {
        let s = b"\0/home/alice/src/fw/main.c\0";
        assert!(is_build_path(s, &(9..10)));
        assert!(is_build_path(b"-I/build/abc/include", &(9..10)));
        assert!(!is_build_path(b"\0hello world\0", &(3..4)));
        assert!(!is_build_path(b"a/b", &(0..1)));
    }

    #[test]
    fn toolchain_strings_quote_both_versions() {
        let (l, r) = toolchain_versions(
            "GCC: (Debian 12.2.0-14) 12.2.0",
            "GCC: (Debian 12.2.0-14+deb12u1) 12.2.0",
        )
        .unwrap();
        assert_eq!((l.as_str(), r.as_str()), ("12.2.0-14", "12.2.0-14+deb12u1"));
        let (l, r) =
            toolchain_versions("Debian clang version 14.0.6", "Debian clang version 16.0.6")
                .unwrap();
        assert_eq!((l.as_str(), r.as_str()), ("14.0.6", "16.0.6"));
        assert!(toolchain_versions("version 1.2", "version 1.3").is_none());
        assert!(toolchain_versions("GCC: (x) 1", "GCC: (x) 1").is_none());
    }

    #[test]
    fn a_string_holds_the_whole_span_or_none() {
        let buf = b"\x90\x90GCC: (Debian 12.2.0-14) 12.2.0\0\0\x90";
        // Inside the string, and with NUL padding after it.
        assert_eq!(string_at(buf, &(22..24)), Some(2..32));
        assert_eq!(string_at(buf, &(30..34)), Some(2..32));
        // A code byte after the padding is outside any string.
        assert_eq!(string_at(buf, &(30..35)), None);
        // Past this side's end: the string that ends there.
        assert_eq!(string_at(b"xxGCC: (x) 1", &(12..20)), Some(0..12));
        assert_eq!(string_at(b"\x01\x02\x03", &(1..2)), None);
    }

    #[test]
    fn a_known_name_against_another_is_a_host_or_user_name() {
        let names = Names {
            hosts: vec!["reprove".into()],
            users: vec!["alice".into()],
        };
        assert_eq!(
            name_cause(
                b"host=reprove\0\0\0\0;",
                b"host=buildbox42\0;",
                &(5..15),
                &names
            ),
            Some(Cause::HostName)
        );
        assert_eq!(
            name_cause(b"by alice.", b"by bobby.", &(3..8), &names),
            Some(Cause::UserName)
        );
        assert_eq!(
            name_cause(b"by carol.", b"by bobby.", &(3..8), &names),
            None
        );
    }

    #[test]
    fn section_names_of_data() {
        assert!(is_data_section(".rodata"));
        assert!(is_data_section(".rodata.str1.1"));
        assert!(is_data_section(".data"));
        assert!(!is_data_section(".data1x"));
        assert!(!is_data_section(".eh_frame"));
    }
}
