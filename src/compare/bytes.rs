//! Streaming byte comparison: exact counts, merged ranges, shifts, bounded memory.
//!
//! [`compare`] reads both inputs with positioned reads. Equal stretches go the **plain path**:
//! pairs of 64 KiB chunks compared on every core at once (each worker reads its chunk of
//! both sides into its own buffers and compares them with one `memcmp`), stopping at the first
//! pair that differs. Only that pair is scanned byte by byte, sequentially, and the plain path
//! takes over again after it.
//!
//! The byte scan is **shift-aware** ([`Mode::ShiftAware`]): at a differing byte that is not
//! followed, within 32 bytes, by 32 equal bytes at the same alignment, it looks for the bytes
//! after the difference on the other side — a 32-byte anchor of one side (of at least four
//! distinct byte values, so padding never anchors) searched within [`SEARCH`] bytes of the
//! other, confirmed by the 64 bytes after it; near the end of both inputs, their common
//! suffix. When the nearest anchor lies at another alignment, the bytes between are a
//! [`Shift`] (bytes inserted on the right, or removed from the left) and the comparison goes on
//! at the new alignment; ranges after it know where they lie on the right
//! (`ByteDiff::right_offset`). Past [`MAX_SHIFTS`] shifts or [`MAX_FAILED_SEARCHES`] searches
//! that found nothing, no more shifts are looked for ([`ByteDiff::shifts_stopped`]) and the
//! rest is compared offset by offset at the alignment reached. After a search that found
//! nothing, the next waits for 32 equal bytes, so two unrelated inputs cost one search.
//!
//! Counts are exact under the alignment the comparison followed: `differing_bytes` is the
//! bytes that differ at their aligned offsets, plus every inserted and removed byte, plus the
//! longer input's tail. Differing bytes closer than [`MERGE_GAP`] equal bytes apart merge into
//! one range, never across a shift; the first [`MAX_RANGES`] ranges are kept, past that only
//! counts grow. Memory is bounded whatever the inputs hold: two buffers of 144 KiB for the scan,
//! two of 64 KiB per worker thread (small: a chunk pair stays in the core's cache between the
//! read and the compare, which halved the cost of the copy out of the page cache against
//! 256 KiB), and at most [`MAX_SHIFTS`] shifts.
//!
//! Allowances must not be judged on a shift-aware result (an insertion plus a trailer would
//! read as a trailer): [`Mode::OffsetByOffset`] gives the plain comparison they are judged on.
//!
//! [`compare_readers`] compares two streams without positioned reads: offset by offset, 1 MiB
//! pieces of both read in parallel.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use memchr::memmem;
use rayon::prelude::*;
use serde::Serialize;

use crate::hash::read_full;

/// Bytes of each side per chunk on the plain path: small enough that both sides' chunks stay in
/// the core's cache between the read and the compare.
const CHUNK: usize = 64 << 10;
/// Bytes of each side per read in [`compare_readers`].
const STREAM_CHUNK: usize = 1 << 20;
/// Differing bytes separated by fewer equal bytes than this belong to one range.
pub(crate) const MERGE_GAP: u64 = 8;
/// How many ranges a [`ByteDiff`] keeps; the count goes on past it.
pub(crate) const MAX_RANGES: usize = 4096;
/// How far past a difference the other alignment is looked for (bytes inserted or removed).
pub(crate) const SEARCH: usize = 64 << 10;
/// Shifts followed in one comparison; past it the rest is compared offset by offset.
pub(crate) const MAX_SHIFTS: usize = 64;
/// Searches for another alignment that may find nothing before no more are tried.
pub(crate) const MAX_FAILED_SEARCHES: u32 = 1024;
/// Bytes of one side searched for in the other.
const ANCHOR: usize = 32;
/// Bytes after an anchor that must match too.
const CONFIRM: usize = 64;
/// A difference followed this soon by [`ANCHOR`] equal bytes is a substitution, no shift.
const SUBSTITUTION: usize = 32;
/// Where anchors are taken, past the first differing byte: a replaced stretch longer than one
/// of these is bridged by the next.
const ANCHOR_AT: [usize; 7] = [0, 8, 32, 128, 512, 2048, 8192];
/// What the byte scan reads past the chunk it scans, so that every search fits in it.
const LOOKAHEAD: usize = 8192 + SEARCH + ANCHOR + CONFIRM;

/// A half-open span of bytes, `offset..offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    /// One past the last byte; saturating, since ranges read from a crafted ELF header can
    /// claim any offset and length.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// Bytes inserted on the right or removed from the left, after which the comparison goes on at
/// another alignment. Exactly one of `inserted` and `removed` is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shift {
    /// Where the inserted bytes go, or the removed bytes start, on the left.
    pub left_offset: u64,
    /// The same place on the right.
    pub right_offset: u64,
    /// Bytes only the right has, from `right_offset`.
    #[serde(skip_serializing_if = "is_zero")]
    pub inserted: u64,
    /// Bytes only the left has, from `left_offset`.
    #[serde(skip_serializing_if = "is_zero")]
    pub removed: u64,
    /// Right offset minus left offset after this shift (all shifts so far).
    pub by: i64,
    /// Bytes that differ after this shift and before the next one (or the end), tail included.
    pub differing_after: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How two byte streams differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ByteDiff {
    pub left_size: u64,
    pub right_size: u64,
    /// Bytes that differ at their aligned offsets, plus the bytes inserted and removed, plus the
    /// longer input's tail.
    pub differing_bytes: u64,
    /// All ranges found (also those past [`MAX_RANGES`]).
    pub range_count: u64,
    /// The first [`MAX_RANGES`] merged ranges, in left offset order, at left offsets.
    pub ranges: Vec<ByteRange>,
    /// The shifts followed, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<Shift>,
    /// The left offset from which no more shifts were looked for (a bound was reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shifts_stopped: Option<u64>,
}

impl ByteDiff {
    pub(crate) fn is_identical(&self) -> bool {
        self.differing_bytes == 0 && self.left_size == self.right_size
    }

    /// True when some ranges were found but not kept.
    pub(crate) fn is_truncated(&self) -> bool {
        self.range_count > self.ranges.len() as u64
    }

    /// Right offset minus left offset at the left offset `offset` (0 before any shift).
    pub(crate) fn shift_at(&self, offset: u64) -> i64 {
        let after = self
            .shifts
            .partition_point(|s| s.left_offset + s.removed <= offset);
        after.checked_sub(1).map_or(0, |i| self.shifts[i].by)
    }

    #[cfg(test)]
    /// Where `range` (at left offsets) lies on the right.
    pub(crate) fn right_offset(&self, range: &ByteRange) -> u64 {
        range
            .offset
            .saturating_add_signed(self.shift_at(range.offset))
    }
}

/// Gathers differing offsets into merged ranges as they stream past.
#[derive(Debug, Default)]
struct Ranges {
    kept: Vec<ByteRange>,
    count: u64,
    /// The range still open for merging (not yet counted).
    open: Option<ByteRange>,
}

impl Ranges {
    fn add(&mut self, offset: u64, len: u64) {
        if let Some(open) = &mut self.open {
            if offset <= open.end() + MERGE_GAP {
                open.len = (offset + len).max(open.end()) - open.offset;
                return;
            }
            let done = *open;
            self.close(done);
        }
        self.open = Some(ByteRange { offset, len });
    }

    /// Close the open range: what comes next lies at another alignment.
    fn cut(&mut self) {
        if let Some(open) = self.open.take() {
            self.close(open);
        }
    }

    fn close(&mut self, range: ByteRange) {
        self.count += 1;
        if self.kept.len() < MAX_RANGES {
            self.kept.push(range);
        }
    }

    fn finish(mut self) -> (Vec<ByteRange>, u64) {
        self.cut();
        (self.kept, self.count)
    }
}

/// Bytes that can be read at any offset: a span of a file, or a slice in memory.
pub(crate) trait Source: Sync {
    fn size(&self) -> u64;
    /// Fill `buf` with the bytes at `pos..pos + buf.len()`, which lie within [`Source::size`].
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let from = usize::try_from(pos).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = self
            .get(from..from + buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// `len` bytes of an open file from `offset`: a whole file or a member inside an archive.
#[derive(Debug)]
pub(crate) struct FileSpan {
    file: File,
    offset: u64,
    len: u64,
}

impl FileSpan {
    pub(crate) fn new(file: File, offset: u64, len: u64) -> Self {
        Self { file, offset, len }
    }
}

impl Source for FileSpan {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let at = self
            .offset
            .checked_add(pos)
            .ok_or(io::ErrorKind::InvalidInput)?;
        self.file.read_exact_at(buf, at).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), "the file shrank while it was compared")
            } else {
                e
            }
        })
    }
}

/// Whether the byte scan follows insertions and removals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Follow insertions and removals ([`Shift`]s).
    ShiftAware,
    /// Compare each offset with the same offset: what allowances are judged on.
    OffsetByOffset,
}

/// Compare two sources to their ends.
pub(crate) fn compare(left: &dyn Source, right: &dyn Source, mode: Mode) -> io::Result<ByteDiff> {
    let scan = CHUNK + LOOKAHEAD;
    Scan {
        left,
        right,
        a: vec![0; scan],
        b: vec![0; scan],
        ranges: Ranges::default(),
        differing: 0,
        shifts: Vec::new(),
        shifting: mode == Mode::ShiftAware,
        failed: 0,
        stopped: None,
        run: 0,
        waiting: false,
    }
    .run()
}

/// The state of one comparison.
struct Scan<'s> {
    left: &'s dyn Source,
    right: &'s dyn Source,
    /// The byte scan's buffers: a chunk and its lookahead, from each side.
    a: Vec<u8>,
    b: Vec<u8>,
    ranges: Ranges,
    differing: u64,
    shifts: Vec<Shift>,
    /// Whether shifts are still looked for.
    shifting: bool,
    failed: u32,
    stopped: Option<u64>,
    /// Equal aligned bytes since the last differing one.
    run: u64,
    /// A search found nothing: the next waits for [`ANCHOR`] equal bytes.
    waiting: bool,
}

impl Scan<'_> {
    fn run(mut self) -> io::Result<ByteDiff> {
        let (left_size, right_size) = (self.left.size(), self.right.size());
        let (mut l, mut r) = (0u64, 0u64);
        while l < left_size && r < right_size {
            crate::interrupt::check()?;
            let avail = (left_size - l).min(right_size - r);
            let equal = self.equal_chunks(l, r, avail)?;
            self.equal(equal);
            l += equal;
            r += equal;
            if equal < avail {
                (l, r) = self.step(l, r)?;
            }
        }
        // One input ended: everything the other holds from here on differs.
        let tail = (left_size - l) + (right_size - r);
        if tail > 0 {
            self.ranges.add(l, tail);
            self.differing += tail;
            if let Some(s) = self.shifts.last_mut() {
                s.differing_after += tail;
            }
        }
        let (ranges, range_count) = self.ranges.finish();
        Ok(ByteDiff {
            left_size,
            right_size,
            differing_bytes: self.differing,
            range_count,
            ranges,
            shifts: self.shifts,
            shifts_stopped: self.stopped,
        })
    }

    /// How many bytes from `l` and `r` are equal, in whole chunks (or all `avail` of them):
    /// the first chunk here, the rest on every core.
    fn equal_chunks(&mut self, l: u64, r: u64, avail: u64) -> io::Result<u64> {
        let first = usize::try_from(avail.min(CHUNK as u64)).unwrap_or(CHUNK);
        self.left.read_exact_at(&mut self.a[..first], l)?;
        self.right.read_exact_at(&mut self.b[..first], r)?;
        if self.a[..first] != self.b[..first] {
            return Ok(0);
        }
        let first = first as u64;
        let rest = avail - first;
        let chunks = usize::try_from(rest.div_ceil(CHUNK as u64)).unwrap_or(usize::MAX);
        let (left, right) = (self.left, self.right);
        let hit = (0..chunks)
            .into_par_iter()
            .map(|k| {
                let at = first + k as u64 * CHUNK as u64;
                let len = usize::try_from((avail - at).min(CHUNK as u64)).unwrap_or(CHUNK);
                (at, chunks_equal(left, right, l + at, r + at, len))
            })
            .find_first(|(_, same)| !matches!(same, Ok(true)));
        match hit {
            None => Ok(avail),
            Some((_, Err(e))) => Err(e),
            Some((at, Ok(_))) => Ok(at),
        }
    }

    /// Scan one chunk from `l` and `r` byte by byte; return where the comparison goes on (at
    /// another alignment after a shift).
    fn step(&mut self, l: u64, r: u64) -> io::Result<(u64, u64)> {
        let (left_size, right_size) = (self.left.size(), self.right.size());
        let want = |rest: u64| usize::try_from(rest.min(self.a.len() as u64)).unwrap_or(0);
        let (na, nb) = (want(left_size - l), want(right_size - r));
        let (mut a, mut b) = (std::mem::take(&mut self.a), std::mem::take(&mut self.b));
        let read = self
            .left
            .read_exact_at(&mut a[..na], l)
            .and_then(|()| self.right.read_exact_at(&mut b[..nb], r));
        let next = read.map(|()| {
            let ends = l + na as u64 == left_size && r + nb as u64 == right_size;
            self.scan(&a[..na], &b[..nb], l, r, ends)
        });
        (self.a, self.b) = (a, b);
        next
    }

    /// Scan `a` (from left offset `l`) against `b` (from right offset `r`).
    #[allow(clippy::many_single_char_names)] // a, b: bytes; l, r: offsets; g, h: resync points
    fn scan(&mut self, a: &[u8], b: &[u8], l: u64, r: u64, ends: bool) -> (u64, u64) {
        let end = a.len().min(b.len()).min(CHUNK);
        let mut i = 0;
        while i < end {
            let same = equal_prefix(&a[i..end], &b[i..end]);
            if same > 0 {
                i += same;
                self.equal(same as u64);
                continue;
            }
            if self.shifting && !self.waiting && !realigns(&a[i..], &b[i..], ends) {
                match resync(&a[i..], &b[i..], ends) {
                    Some((g, h)) if g != h => {
                        // `a[i..i + g]` became `b[i..i + h]`: the shift goes after the `m`
                        // bytes compared aligned, or before them, whichever leaves fewer
                        // differing (a pointer table after a grown string lines up after it).
                        let m = g.min(h);
                        let (dg, dh) = (g - m, h - m);
                        let mismatches =
                            |x: &[u8], y: &[u8]| x.iter().zip(y).filter(|(p, q)| p != q).count();
                        let after = mismatches(&a[i..i + m], &b[i..i + m]);
                        let before = mismatches(&a[i + dg..i + g], &b[i + dh..i + h]);
                        let (inserted, removed) = (dh as u64, dg as u64);
                        if before < after {
                            self.shift(l + i as u64, r + i as u64, inserted, removed);
                            self.compare_aligned(
                                &a[i + dg..i + g],
                                &b[i + dh..i + h],
                                l + (i + dg) as u64,
                            );
                        } else {
                            self.compare_aligned(&a[i..i + m], &b[i..i + m], l + i as u64);
                            let (at_l, at_r) = (l + (i + m) as u64, r + (i + m) as u64);
                            self.shift(at_l, at_r, inserted, removed);
                        }
                        return (l + (i + g) as u64, r + (i + h) as u64);
                    }
                    _ => {
                        self.failed += 1;
                        self.waiting = true;
                        if self.failed >= MAX_FAILED_SEARCHES {
                            self.stop(l + i as u64);
                        }
                    }
                }
            }
            self.differ(l + i as u64);
            i += 1;
        }
        (l + end as u64, r + end as u64)
    }

    /// Count the differing bytes of two slices of one length, at left offset `base`.
    fn compare_aligned(&mut self, x: &[u8], y: &[u8], base: u64) {
        for (j, (p, q)) in x.iter().zip(y).enumerate() {
            if p == q {
                self.equal(1);
            } else {
                self.differ(base + j as u64);
            }
        }
    }

    fn equal(&mut self, n: u64) {
        self.run += n;
        if self.run >= ANCHOR as u64 {
            self.waiting = false;
        }
    }

    fn differ(&mut self, offset: u64) {
        self.run = 0;
        self.differing += 1;
        self.ranges.add(offset, 1);
        if let Some(s) = self.shifts.last_mut() {
            s.differing_after += 1;
        }
    }

    fn shift(&mut self, left_offset: u64, right_offset: u64, inserted: u64, removed: u64) {
        self.ranges.cut();
        let before = self.shifts.last().map_or(0, |s| s.by);
        // Both are below the inputs' sizes, so below 2^63.
        let by =
            before + i64::try_from(inserted).unwrap_or(0) - i64::try_from(removed).unwrap_or(0);
        self.shifts.push(Shift {
            left_offset,
            right_offset,
            inserted,
            removed,
            by,
            differing_after: 0,
        });
        self.differing += inserted + removed;
        if self.shifts.len() >= MAX_SHIFTS {
            self.stop(left_offset + removed);
        }
    }

    fn stop(&mut self, at: u64) {
        self.shifting = false;
        self.stopped = Some(at);
    }
}

thread_local! {
    /// Each worker's pair of chunk buffers, kept for the next comparison.
    static PAIR: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether `len` bytes at `l` on the left equal those at `r` on the right.
fn chunks_equal(
    left: &dyn Source,
    right: &dyn Source,
    l: u64,
    r: u64,
    len: usize,
) -> io::Result<bool> {
    crate::interrupt::check()?;
    PAIR.with(|pair| {
        let (a, b) = &mut *pair.borrow_mut();
        a.resize(CHUNK, 0);
        b.resize(CHUNK, 0);
        left.read_exact_at(&mut a[..len], l)?;
        right.read_exact_at(&mut b[..len], r)?;
        Ok(a[..len] == b[..len])
    })
}

/// How many leading bytes of `x` and `y` are equal.
fn equal_prefix(x: &[u8], y: &[u8]) -> usize {
    let n = x.len().min(y.len());
    let mut i = 0;
    while i + 64 <= n && x[i..i + 64] == y[i..i + 64] {
        i += 64;
    }
    while i + 8 <= n && x[i..i + 8] == y[i..i + 8] {
        i += 8;
    }
    while i < n && x[i] == y[i] {
        i += 1;
    }
    i
}

/// `a` and `b` start at a differing byte: whether the same alignment holds again soon (a
/// substitution), or the rest of both inputs is as long and short.
fn realigns(a: &[u8], b: &[u8], ends: bool) -> bool {
    if ends && a.len() == b.len() && a.len() <= SUBSTITUTION + ANCHOR {
        return true;
    }
    let n = a.len().min(b.len()).min(SUBSTITUTION + ANCHOR);
    let mut run = 0;
    for j in 1..n {
        if a[j] == b[j] {
            run += 1;
            if run >= ANCHOR {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Bytes an anchor can be: at least four distinct values (never padding).
fn is_distinctive(bytes: &[u8]) -> bool {
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &c in bytes {
        if !seen[usize::from(c)] {
            seen[usize::from(c)] = true;
            distinct += 1;
            if distinct >= 4 {
                return true;
            }
        }
    }
    false
}

/// `a` and `b` start at a differing byte: the nearest `(g, h)` such that `a[g..]` lines up with
/// `b[h..]` again, `g + h` smallest (then the smaller shift). `ends`: `a` and `b` run to the
/// ends of both inputs.
#[allow(clippy::many_single_char_names)] // a, b: bytes; g, h: resync points; x, y: either way
fn resync(a: &[u8], b: &[u8], ends: bool) -> Option<(usize, usize)> {
    let key = |(g, h): (usize, usize)| (g + h, g.abs_diff(h));
    let mut best: Option<(usize, usize)> = None;
    for g in ANCHOR_AT {
        if best.is_some_and(|(bg, bh)| g >= bg + bh) {
            break;
        }
        for flip in [false, true] {
            let (x, y) = if flip { (b, a) } else { (a, b) };
            let Some(anchor) = x.get(g..g + ANCHOR) else {
                continue;
            };
            if !is_distinctive(anchor) {
                continue;
            }
            let hay = &y[..y.len().min(g + SEARCH + ANCHOR)];
            let found = memmem::find_iter(hay, anchor)
                .take(4)
                .find(|&h| confirms(&x[g + ANCHOR..], &y[h + ANCHOR..], ends));
            if let Some(h) = found {
                // The match may begin before the anchor: the replaced bytes end there.
                let back = x[..g]
                    .iter()
                    .rev()
                    .zip(y[..h].iter().rev())
                    .take_while(|(p, q)| p == q)
                    .count();
                let (g, h) = (g - back, h - back);
                let c = if flip { (h, g) } else { (g, h) };
                if best.is_none_or(|b| key(c) < key(b)) {
                    best = Some(c);
                }
            }
        }
    }
    if best.is_none() && ends {
        // Too near the end for an anchor: the common suffix of what is left.
        let suffix = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let tip = &a[a.len() - suffix..];
        if is_distinctive(&tip[..tip.len().min(ANCHOR)]) {
            let (g, h) = (a.len() - suffix, b.len() - suffix);
            if g.abs_diff(h) <= SEARCH {
                best = Some((g, h));
            }
        }
    }
    best
}

/// The bytes after an anchor match too: [`CONFIRM`] of them, or all there are at the end.
fn confirms(x: &[u8], y: &[u8], ends: bool) -> bool {
    let n = x.len().min(y.len()).min(CONFIRM);
    x[..n] == y[..n] && (n == CONFIRM || ends)
}

/// Compare two streams to their ends, offset by offset.
pub(crate) fn compare_readers(
    mut left: impl Read + Send,
    mut right: impl Read + Send,
) -> io::Result<ByteDiff> {
    let mut a = vec![0u8; STREAM_CHUNK];
    let mut b = vec![0u8; STREAM_CHUNK];
    let mut ranges = Ranges::default();
    let mut differing = 0u64;
    let mut offset = 0u64;
    let (mut left_size, mut right_size) = (0u64, 0u64);
    loop {
        crate::interrupt::check()?;
        let (na, nb) = rayon::join(
            || read_full(&mut left, &mut a),
            || read_full(&mut right, &mut b),
        );
        let (na, nb) = (na?, nb?);
        left_size += na as u64;
        right_size += nb as u64;
        let common = na.min(nb);
        if a[..common] != b[..common] {
            differing += scan(&a[..common], &b[..common], offset, &mut ranges);
        }
        offset += common as u64;
        if na != nb || na < STREAM_CHUNK {
            if na != nb {
                // One input ended: everything the other holds from here on differs.
                let (rest_left, rest_right) = (drain(&mut left)?, drain(&mut right)?);
                left_size += rest_left;
                right_size += rest_right;
            }
            break;
        }
    }
    let tail = left_size.abs_diff(right_size);
    if tail > 0 {
        ranges.add(left_size.min(right_size), tail);
        differing += tail;
    }
    let (kept, range_count) = ranges.finish();
    Ok(ByteDiff {
        left_size,
        right_size,
        differing_bytes: differing,
        range_count,
        ranges: kept,
        shifts: Vec::new(),
        shifts_stopped: None,
    })
}

/// Record the differing bytes of two equal-length slices starting at `base`; return their count.
fn scan(a: &[u8], b: &[u8], base: u64, ranges: &mut Ranges) -> u64 {
    let mut count = 0u64;
    let mut i = 0;
    while i < a.len() {
        // Skip equal stretches a word at a time; differences are usually sparse.
        i += equal_prefix(&a[i..], &b[i..]);
        if i < a.len() {
            count += 1;
            ranges.add(base + i as u64, 1);
            i += 1;
        }
    }
    count
}

/// Count what is left in a reader without keeping it.
fn drain(reader: &mut impl Read) -> io::Result<u64> {
    io::copy(&mut crate::interrupt::Checked(reader), &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn diff(a: &[u8], b: &[u8]) -> ByteDiff {
        compare_readers(a, b).unwrap()
    }

    #[test]
    fn identical_inputs() {
        let d = diff(b"same", b"same");
        assert!(d.is_identical());
        assert_eq!(d.range_count, 0);
    }

    #[test]
    fn nearby_bytes_merge_and_far_ones_do_not() {
        let a = vec![0u8; 100];
        let mut b = a.clone();
        b[10] = 1;
        b[14] = 1; // 3 equal bytes between: merged
        b[60] = 1; // far: a range of its own
        let d = diff(&a, &b);
        assert_eq!(d.differing_bytes, 3);
        assert_eq!(
            d.ranges,
            [
                ByteRange { offset: 10, len: 5 },
                ByteRange { offset: 60, len: 1 }
            ]
        );
    }

    #[test]
    fn a_longer_input_adds_its_tail() {
        let d = diff(b"abcdef", b"abcxefGHIJ");
        assert_eq!(d.differing_bytes, 5);
        // The tail starts 2 bytes after the change: close enough to merge.
        assert_eq!(d.ranges, [ByteRange { offset: 3, len: 7 }]);
        assert_eq!((d.left_size, d.right_size), (6, 10));
    }

    #[test]
    fn differences_across_a_chunk_boundary_merge() {
        let a = vec![7u8; STREAM_CHUNK * 2 + 10];
        let mut b = a.clone();
        b[STREAM_CHUNK - 1] = 0;
        b[STREAM_CHUNK] = 0;
        let d = diff(&a, &b);
        assert_eq!(
            d.ranges,
            [ByteRange {
                offset: STREAM_CHUNK as u64 - 1,
                len: 2
            }]
        );
    }

    #[test]
    fn ranges_past_the_limit_are_counted_not_kept() {
        let a = vec![0u8; (MAX_RANGES + 10) * 16];
        let b: Vec<u8> = (0..a.len()).map(|i| u8::from(i % 16 == 0)).collect();
        let d = diff(&a, &b);
        assert_eq!(d.range_count, MAX_RANGES as u64 + 10);
        assert_eq!(d.ranges.len(), MAX_RANGES);
        assert!(d.is_truncated());
    }

    /// Deterministic bytes without repeats that could anchor anywhere (xorshift).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect()
    }

    fn shifted(a: &[u8], b: &[u8]) -> ByteDiff {
        let d = compare(&a, &b, Mode::ShiftAware).unwrap();
        accounts(a, b, &d);
        d
    }

    fn plain(a: &[u8], b: &[u8]) -> ByteDiff {
        compare(&a, &b, Mode::OffsetByOffset).unwrap()
    }

    /// Walk the alignment `d` followed: every byte that differs under it lies in a range that
    /// knows its right offset, and `differing_bytes` is exactly those bytes, the inserted and
    /// removed ones and the tail.
    #[allow(clippy::many_single_char_names)]
    fn accounts(a: &[u8], b: &[u8], d: &ByteDiff) {
        let (mut l, mut r, mut count) = (0usize, 0usize, 0u64);
        let aligned = |l0: usize, r0: usize, n: usize, count: &mut u64| {
            for k in 0..n {
                if a[l0 + k] != b[r0 + k] {
                    *count += 1;
                    let at = (l0 + k) as u64;
                    let range = d.ranges.iter().find(|g| g.offset <= at && at < g.end());
                    if !d.is_truncated() {
                        let range = range.unwrap_or_else(|| panic!("{at:#x} in no range"));
                        assert_eq!(
                            d.right_offset(range) + (at - range.offset),
                            (r0 + k) as u64,
                            "{at:#x}"
                        );
                    }
                }
            }
        };
        for s in &d.shifts {
            let (sl, sr) = (
                usize::try_from(s.left_offset).unwrap(),
                usize::try_from(s.right_offset).unwrap(),
            );
            assert_eq!(sl - l, sr - r, "a shift starts at the alignment: {s:?}");
            assert!((s.inserted == 0) != (s.removed == 0), "{s:?}");
            aligned(l, r, sl - l, &mut count);
            count += s.inserted + s.removed;
            l = sl + usize::try_from(s.removed).unwrap();
            r = sr + usize::try_from(s.inserted).unwrap();
            assert_eq!(i64::try_from(r).unwrap() - i64::try_from(l).unwrap(), s.by);
        }
        let n = (a.len() - l).min(b.len() - r);
        aligned(l, r, n, &mut count);
        count += ((a.len() - l - n) + (b.len() - r - n)) as u64;
        assert_eq!(count, d.differing_bytes);
        assert_eq!(
            (d.left_size, d.right_size),
            (a.len() as u64, b.len() as u64)
        );
        for w in d.ranges.windows(2) {
            assert!(w[0].end() <= w[1].offset);
        }
    }

    fn insert(v: &[u8], at: usize, what: &[u8]) -> Vec<u8> {
        [&v[..at], what, &v[at..]].concat()
    }

    fn remove(v: &[u8], at: usize, n: usize) -> Vec<u8> {
        [&v[..at], &v[at + n..]].concat()
    }

    #[test]
    fn an_insertion_is_one_shift_and_the_rest_lines_up() {
        let a = noise(1 << 17, 1);
        let mut b = insert(&a, 0x15f56, b"+deb12u1");
        b[0x18000] ^= 0x40; // one more change after it, at the new alignment
        let d = shifted(&a, &b);
        assert_eq!(
            d.shifts,
            [Shift {
                left_offset: 0x15f56,
                right_offset: 0x15f56,
                inserted: 8,
                removed: 0,
                by: 8,
                differing_after: 1,
            }]
        );
        assert_eq!(
            d.ranges,
            [ByteRange {
                offset: 0x18000 - 8,
                len: 1
            }]
        );
        assert_eq!(d.right_offset(&d.ranges[0]), 0x18000);
        assert_eq!(d.differing_bytes, 9);
        // Offset by offset, everything after the insertion differs.
        assert!(plain(&a, &b).differing_bytes > 10_000);
    }

    #[test]
    fn a_removal_is_a_negative_shift() {
        let a = noise(50_000, 2);
        let b = remove(&a, 30_000, 5);
        let d = shifted(&a, &b);
        assert_eq!(d.shifts.len(), 1);
        let s = d.shifts[0];
        assert_eq!(
            (s.left_offset, s.right_offset, s.removed, s.by),
            (30_000, 30_000, 5, -5)
        );
        assert_eq!(d.differing_bytes, 5);
        assert!(d.ranges.is_empty());
    }

    #[test]
    fn several_shifts_and_a_replacement_of_another_length() {
        let a = noise(300_000, 3);
        let b = insert(&a, 1_000, b"abc");
        let b = remove(&b, 100_000, 40);
        // "Nov 14 2023" → "November 14, 2023": replaced by longer bytes.
        let b = [&b[..200_000], &b"November 14, 2023"[..], &b[200_011..]].concat();
        let b = insert(&b, 299_000, &noise(1000, 9));
        let d = shifted(&a, &b);
        let kinds: Vec<(u64, u64)> = d.shifts.iter().map(|s| (s.inserted, s.removed)).collect();
        assert_eq!(kinds, [(3, 0), (0, 40), (6, 0), (1000, 0)]);
        assert_eq!(d.shifts.last().unwrap().by, 3 - 40 + 6 + 1000);
        assert!(d.differing_bytes <= 3 + 40 + 17 + 1000, "{d:?}");
        assert!(d.shifts_stopped.is_none());
    }

    #[test]
    fn shifts_at_the_start_and_near_the_end() {
        let a = noise(10_000, 4);
        let d = shifted(&a, &insert(&a, 0, b"HDR!"));
        assert_eq!(d.shifts.len(), 1);
        assert_eq!((d.shifts[0].left_offset, d.shifts[0].inserted), (0, 4));
        assert_eq!(d.differing_bytes, 4);
        let d = shifted(&a, &remove(&a, 0, 16));
        assert_eq!((d.shifts[0].removed, d.differing_bytes), (16, 16));
        // Ten bytes before the end: too near for an anchor, found by the common suffix.
        let d = shifted(&a, &insert(&a, 9_990, b"12345678"));
        assert_eq!(d.shifts.len(), 1, "{d:?}");
        assert_eq!((d.shifts[0].left_offset, d.shifts[0].inserted), (9_990, 8));
        assert_eq!(d.differing_bytes, 8);
        // Appended bytes are a tail, not a shift.
        let d = shifted(&a, &[&a[..], b"SIGNATURE"].concat());
        assert!(d.shifts.is_empty());
        assert_eq!(
            d.ranges,
            [ByteRange {
                offset: 10_000,
                len: 9
            }]
        );
    }

    #[test]
    fn a_shift_across_chunk_boundaries() {
        let a = noise(3 * CHUNK + 100, 5);
        let b = insert(&a, CHUNK - 3, b"0123456789");
        let mut b = remove(&b, 2 * CHUNK + 7, 10);
        b[3 * CHUNK - 1] ^= 1;
        let d = shifted(&a, &b);
        assert_eq!(d.shifts.len(), 2);
        assert_eq!(d.shifts[1].by, 0);
        assert_eq!(
            d.ranges,
            [ByteRange {
                offset: 3 * CHUNK as u64 - 1,
                len: 1
            }]
        );
        assert_eq!(d.differing_bytes, 21);
    }

    #[test]
    fn no_shift_for_substitutions_padding_or_unrelated_inputs() {
        let mut a = noise(100_000, 6);
        a[40_000..60_000].fill(0);
        let mut b = a.clone();
        b[10..18].copy_from_slice(b"20261201"); // a timestamp
        b[50_000] = 0xff; // inside padding
        b[70_000..70_100].copy_from_slice(&noise(100, 7)); // a longer substitution
        let d = shifted(&a, &b);
        assert!(d.shifts.is_empty(), "{:?}", d.shifts);
        assert_eq!(d, plain(&a, &b));
        let c = noise(100_000, 8);
        let d = shifted(&a, &c);
        assert!(d.shifts.is_empty());
        assert_eq!(d.differing_bytes, plain(&a, &c).differing_bytes);
    }

    #[test]
    fn past_the_bound_the_rest_is_compared_offset_by_offset() {
        let a = noise(MAX_SHIFTS * 400 + 10_000, 10);
        let mut b = a.clone();
        for k in (0..=MAX_SHIFTS).rev() {
            b = insert(&b, 200 + k * 400, b"x");
        }
        let d = shifted(&a, &b);
        assert_eq!(d.shifts.len(), MAX_SHIFTS);
        let last = d.shifts.last().unwrap();
        assert_eq!(d.shifts_stopped, Some(last.left_offset));
        // The last insertion is not followed: everything after it differs.
        assert!(last.differing_after > 1000);
    }

    #[test]
    fn offset_by_offset_agrees_with_the_streaming_comparison() {
        let a = noise(3 * CHUNK + 5, 11);
        let mut b = a.clone();
        for at in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 3, 3 * CHUNK + 4] {
            b[at] ^= 0x80;
        }
        let b = insert(&b, 1000, b"shifted");
        assert_eq!(plain(&a, &b), compare_readers(&a[..], &b[..]).unwrap());
    }

    proptest! {
        #[test]
        fn counts_match_a_naive_comparison(
            a in proptest::collection::vec(0u8..4, 0..300),
            b in proptest::collection::vec(0u8..4, 0..300),
        ) {
            let d = diff(&a, &b);
            let common = a.len().min(b.len());
            let naive = (0..common).filter(|&i| a[i] != b[i]).count() + a.len().abs_diff(b.len());
            prop_assert_eq!(d.differing_bytes, naive as u64);
            prop_assert_eq!(d.is_identical(), a == b);
            // Every differing offset lies in some range, and ranges are ordered and apart.
            for i in 0..common {
                if a[i] != b[i] {
                    prop_assert!(d.ranges.iter().any(|r| r.offset <= i as u64 && (i as u64) < r.end()));
                }
            }
            for w in d.ranges.windows(2) {
                prop_assert!(w[0].end() + MERGE_GAP < w[1].offset);
            }
        }

        #[test]
        fn offset_by_offset_counts_match_the_streaming_comparison(
            a in proptest::collection::vec(0u8..4, 0..300),
            b in proptest::collection::vec(0u8..4, 0..300),
        ) {
            prop_assert_eq!(plain(&a, &b), diff(&a, &b));
        }

        /// Random edits of random bytes: the result accounts for exactly the bytes that differ
        /// under its alignment, finds no more shifts than there were insertions and removals,
        /// and never counts more than the bytes edited.
        #[test]
        fn random_edits_are_accounted_for_exactly(
            seed in 1u64..u64::MAX,
            len in 1000usize..8000,
            edits in proptest::collection::vec((0u8..3, 1usize..48, any::<u64>()), 0..6),
        ) {
            let a = noise(len, seed);
            let mut b = a.clone();
            let mut edited = 0u64;
            let mut indels = 0usize;
            // From the end, at least 300 bytes apart, so that edits do not touch.
            let step = len / (edits.len() + 1);
            for (k, &(kind, n, s)) in edits.iter().enumerate().rev() {
                let at = step * (k + 1);
                let n = n.min(step.saturating_sub(300)).max(1);
                let bytes = noise(n, s);
                b = match kind {
                    0 => { indels += 1; insert(&b, at, &bytes) }
                    1 if at + n <= b.len() => { indels += 1; remove(&b, at, n) }
                    _ => { let mut c = b.clone(); let end = (at + n).min(c.len()); c[at..end].copy_from_slice(&bytes[..end - at]); c }
                };
                edited += n as u64;
            }
            let d = shifted(&a, &b);
            prop_assert!(d.shifts.len() <= indels, "{:?}", d.shifts);
            prop_assert!(d.differing_bytes <= edited, "{} > {}", d.differing_bytes, edited);
            prop_assert_eq!(d.is_identical(), a == b);
        }

        /// Whatever the bytes (low-entropy ones too): exact accounting, no panic.
        #[test]
        fn any_inputs_are_accounted_for_exactly(
            a in proptest::collection::vec(0u8..6, 0..3000),
            b in proptest::collection::vec(0u8..6, 0..3000),
        ) {
            shifted(&a, &b);
        }
    }
}
