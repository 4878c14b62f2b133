//! Finding release artifacts inside a dump by content, in one streaming pass.
//!
//! Each artifact is read once into an index of *anchors*: the gear hash of the [`WINDOW`]
//! bytes ending at every `stride`-th offset (the stride grows with the artifact so that all
//! artifacts together have at most [`MAX_ANCHORS`] anchors), kept only when the window holds at
//! least [`MIN_DISTINCT`] distinct byte values (fill never anchors) and no other window of the
//! artifacts has the same hash (a repeated pattern says nothing about where it came from).
//! The dump is then read once, in [`CHUNK`]-byte buffers, with the same rolling hash; a bit
//! filter in front of the index makes most positions cost one memory read. Every anchor hit
//! votes for an *alignment* (dump offset minus artifact offset). The alignments with most votes
//! ([`MAX_VERIFIED`] per artifact) are then checked by direct comparison of the bytes, and the
//! one with the fewest differing bytes wins: a copy that differs in some bytes is still found,
//! since the anchors away from the differences still agree on where it starts.
//!
//! The same pass classifies every [`BLOCK`] of the dump (counted from offset 0) as fill (one
//! byte, 0xff or 0x00) or data and keeps them as runs ([`Blocks`], at most [`MAX_BLOCK_RUNS`]):
//! the gaps and regions are judged from them afterwards, so the dump is not read a second time
//! but where a span needs bytes (see `crate::dump`). A block of one repeated byte costs its
//! first [`WINDOW`] bytes in the rolling hash: after them every window is the same one.
//!
//! Each artifact may name *parts* (spans of it, [`Wanted::parts`]): an anchor whose window lies
//! inside a part also votes for the part, so that a part the dump holds apart from the rest of
//! its artifact is found in the same pass ([`Found::part_votes`], checked with [`best_of`]).
//!
//! Memory is bounded whatever the sizes: the index ([`MAX_ANCHORS`]), the hits an anchor may
//! cast ([`MAX_HITS_PER_ANCHOR`]: an anchor repeated thousands of times in a hostile dump stops
//! voting), the alignments kept ([`MAX_ALIGNMENTS`]) and the block runs ([`MAX_BLOCK_RUNS`],
//! 1.5 MiB; past it the rest is read again where needed) are all capped, and the report says
//! when a vote cap was reached. The dump is never read whole; it may be smaller than an artifact (an
//! alignment may then start before the dump or end after it: the bytes outside are counted as
//! missing). All offset arithmetic is checked or saturating.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

/// Bytes the rolling hash covers: a byte leaves the gear hash 64 shifts after it entered.
pub(crate) const WINDOW: usize = 64;
/// A window holds at least this many distinct byte values to anchor.
pub(crate) const MIN_DISTINCT: usize = 8;
/// Anchors of all artifacts together, at most (each about 40 bytes in the index).
pub(crate) const MAX_ANCHORS: usize = 1 << 18;
/// The smallest distance between two anchors of one artifact.
const MIN_STRIDE: u64 = 256;
/// Votes one anchor may cast.
pub(crate) const MAX_HITS_PER_ANCHOR: u32 = 16;
/// Distinct alignments kept, over all artifacts.
pub(crate) const MAX_ALIGNMENTS: usize = 1 << 16;
/// Alignments of one artifact checked by direct comparison.
pub(crate) const MAX_VERIFIED: usize = 4;
/// Bytes read at a time.
pub(crate) const CHUNK: usize = 1 << 20;
/// Bits of the anchor filter (4 Mi bits: 512 KiB).
const FILTER_BITS: u32 = 22;

/// The gear table: one pseudo-random word per byte value (splitmix64 from a fixed seed).
static GEAR: [u64; 256] = gear_table();

const fn gear_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut state: u64 = 0x5265_7072_6f76_6521;
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
}

#[inline]
pub(crate) fn roll(hash: u64, byte: u8) -> u64 {
    (hash << 1).wrapping_add(GEAR[byte as usize])
}

/// One artifact to look for: its file, its length, and the spans of it (its parts) that are
/// looked for on their own too.
#[derive(Debug)]
pub(crate) struct Wanted<'a> {
    pub file: &'a File,
    pub len: u64,
    /// `(offset, len)` of each part in the artifact, in offset order, not overlapping.
    pub parts: Vec<(u64, u64)>,
}

/// Where an artifact was found, after direct comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alignment {
    /// Dump offset of the artifact's first byte (negative: it starts before the dump).
    pub start: i128,
    /// Anchors that agreed on it.
    pub votes: u32,
    /// Bytes of the artifact inside the dump that differ there.
    pub differing: u64,
    /// Bytes of the artifact that fall outside the dump.
    pub missing: u64,
}

/// What the pass found, per artifact (in the order given), and which caps were reached.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub best: Vec<Option<Alignment>>,
    /// Per artifact, per part of [`Wanted::parts`]: the alignments of the artifact that the
    /// part's own anchors voted for, most votes first (at most [`MAX_VERIFIED`]), to be checked
    /// with [`best_of`] when the artifact is not found whole.
    pub part_votes: Vec<Vec<Vec<(i128, u32)>>>,
    /// Per artifact: its whole alignments, most votes first (at most [`MAX_VERIFIED`]), for
    /// second copies.
    pub candidates: Vec<Vec<(i128, u32)>>,
    /// What every block of the dump holds.
    pub blocks: Blocks,
    pub notes: Vec<String>,
}

/// No part: an anchor outside every part of its artifact.
const NO_PART: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Anchor {
    artifact: u32,
    /// The part of the artifact its window lies in, or [`NO_PART`].
    part: u32,
    /// Offset of the window's first byte in the artifact.
    offset: u64,
    hits: u32,
}

/// Bytes of a block: the unit in which fill is told from data.
pub(crate) const BLOCK: u64 = 512;
/// Runs of blocks kept, at most (each 24 bytes): past it, what the rest holds is unknown and
/// is read again when a span needs it.
pub(crate) const MAX_BLOCK_RUNS: usize = 1 << 16;

/// What a run of blocks holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Every byte is this one, 0xff or 0x00.
    Fill(u8),
    /// Anything else.
    Data,
}

/// The dump's [`BLOCK`]-byte blocks (counted from offset 0; the last may be shorter),
/// classified in the locating pass and kept as runs, so that the gaps and regions need no
/// second read: `[start, end)` of each run, in order, without holes, from offset 0 to where the
/// runs stopped (the end of the dump, or where [`MAX_BLOCK_RUNS`] was reached).
#[derive(Debug, Default)]
pub(crate) struct Blocks {
    runs: Vec<(u64, u64, Class)>,
    /// The runs reached [`MAX_BLOCK_RUNS`]: nothing more is recorded.
    full: bool,
}

/// A piece of a span, as the blocks know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// `[start, end)` holds only this fill byte.
    Fill(u64, u64, u8),
    /// `[start, end)` is whole blocks of data.
    Data(u64, u64),
    /// `[start, end)` must be read to be told (part of a data block, or past what is known).
    Unknown(u64, u64),
}

impl Blocks {
    fn push(&mut self, start: u64, end: u64, class: Class) {
        if self.full {
            return;
        }
        let full = self.runs.len() >= MAX_BLOCK_RUNS;
        match self.runs.last_mut() {
            Some(last) if last.2 == class && last.1 == start => last.1 = end,
            _ if full => self.full = true,
            _ => self.runs.push((start, end, class)),
        }
    }

    /// `[start, end)` cut into pieces, in order: fill and whole data blocks as the locating
    /// pass saw them, the rest to be read.
    pub(crate) fn pieces(&self, start: u64, end: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        let first = self.runs.partition_point(|r| r.1 <= start);
        let mut at = start;
        for &(s, e, class) in &self.runs[first..] {
            if s >= end || at >= end {
                break;
            }
            let (from, to) = (s.max(at), e.min(end));
            if from >= to {
                continue;
            }
            match class {
                Class::Fill(b) => out.push(Piece::Fill(from, to, b)),
                Class::Data => {
                    // Only whole blocks of a data run are known to be data: a piece of one
                    // may be fill.
                    let head = from.next_multiple_of(BLOCK).min(to);
                    let tail = if to == e {
                        to
                    } else {
                        (to / BLOCK * BLOCK).max(head)
                    };
                    if from < head {
                        out.push(Piece::Unknown(from, head));
                    }
                    if head < tail {
                        out.push(Piece::Data(head, tail));
                    }
                    if tail < to {
                        out.push(Piece::Unknown(tail, to));
                    }
                }
            }
            at = to;
        }
        if at < end {
            out.push(Piece::Unknown(at, end));
        }
        out
    }
}

/// The index: hashes of anchor windows, and a bit filter of them.
struct Index {
    anchors: HashMap<u64, Option<Anchor>>,
    filter: Vec<u64>,
}

impl Index {
    fn filter_slot(hash: u64) -> (usize, u64) {
        let bit = hash >> (64 - FILTER_BITS);
        (usize::try_from(bit >> 6).unwrap_or(0), 1u64 << (bit & 63))
    }

    fn may_hold(&self, hash: u64) -> bool {
        let (word, mask) = Self::filter_slot(hash);
        self.filter[word] & mask != 0
    }
}

/// Reads `buf.len()` bytes at `offset`, or fewer at the end of the file.
pub(crate) fn read_at_most(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let at = offset.saturating_add(filled as u64);
        match file.read_at(&mut buf[filled..], at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(crate) fn distinct(window: &[u8]) -> usize {
    let mut seen = [false; 256];
    let mut n = 0;
    for &b in window {
        if !seen[b as usize] {
            seen[b as usize] = true;
            n += 1;
        }
    }
    n
}

/// The index of every artifact's anchors. Each artifact is read once, streaming.
fn build_index(wanted: &[Wanted<'_>]) -> io::Result<Index> {
    let total: u64 = wanted.iter().map(|w| w.len).fold(0, u64::saturating_add);
    let per_byte = (MAX_ANCHORS as u64).max(1);
    let stride = (total / per_byte).max(MIN_STRIDE);
    let mut anchors: HashMap<u64, Option<Anchor>> = HashMap::new();
    let mut buf = vec![0u8; CHUNK];
    for (artifact, w) in wanted.iter().enumerate() {
        let artifact = u32::try_from(artifact).unwrap_or(u32::MAX);
        let mut hash = 0u64;
        let mut ring = [0u8; WINDOW];
        let mut pos = 0u64;
        // The parts come in offset order: the one an anchor may lie in is at `cursor` or after.
        let mut cursor = 0usize;
        loop {
            crate::interrupt::check().map_err(io::Error::other)?;
            let n = read_at_most(w.file, pos, &mut buf)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                hash = roll(hash, b);
                ring[usize::try_from(pos % WINDOW as u64).unwrap_or(0)] = b;
                pos += 1;
                if pos < WINDOW as u64 || pos % stride != 0 {
                    continue;
                }
                if distinct(&ring) < MIN_DISTINCT {
                    continue;
                }
                let offset = pos - WINDOW as u64;
                while w
                    .parts
                    .get(cursor)
                    .is_some_and(|&(o, l)| o.saturating_add(l) < pos)
                {
                    cursor += 1;
                }
                let part = match w.parts.get(cursor) {
                    Some(&(o, _)) if o <= offset => u32::try_from(cursor).unwrap_or(NO_PART),
                    _ => NO_PART,
                };
                let full = anchors.len() >= MAX_ANCHORS;
                match anchors.get_mut(&hash) {
                    // The same window twice: it cannot say where it came from.
                    Some(slot) => *slot = None,
                    None if !full => {
                        anchors.insert(
                            hash,
                            Some(Anchor {
                                artifact,
                                part,
                                offset,
                                hits: 0,
                            }),
                        );
                    }
                    None => {}
                }
            }
            if pos >= w.len {
                break;
            }
        }
    }
    let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)];
    for (&hash, anchor) in &anchors {
        if anchor.is_some() {
            let (word, mask) = Index::filter_slot(hash);
            filter[word] |= mask;
        }
    }
    Ok(Index { anchors, filter })
}

/// The votes of one pass: alignments per (artifact, part), and whether a cap was reached.
struct Votes {
    counts: HashMap<(u32, u32, i128), u32>,
    capped_anchor: bool,
    capped_alignments: bool,
}

impl Votes {
    /// The window ending at `end` (exclusive, in the dump) hashed to `hash`: a vote if it is an
    /// anchor that may still vote.
    #[inline]
    fn cast(&mut self, index: &mut Index, hash: u64, end: u64) {
        if end < WINDOW as u64 {
            return;
        }
        let Some(Some(anchor)) = index.anchors.get_mut(&hash) else {
            return;
        };
        if anchor.hits >= MAX_HITS_PER_ANCHOR {
            self.capped_anchor = true;
            return;
        }
        anchor.hits += 1;
        let start = i128::from(end - WINDOW as u64) - i128::from(anchor.offset);
        let key = (anchor.artifact, anchor.part, start);
        if let Some(v) = self.counts.get_mut(&key) {
            *v = v.saturating_add(1);
        } else if self.counts.len() < MAX_ALIGNMENTS {
            self.counts.insert(key, 1);
        } else {
            self.capped_alignments = true;
        }
    }
}

/// Rolls `bytes` (the dump's, from offset `pos`) through the hash, casting votes.
#[inline]
fn scan(index: &mut Index, votes: &mut Votes, hash: &mut u64, bytes: &[u8], pos: u64) {
    for (i, &b) in bytes.iter().enumerate() {
        *hash = roll(*hash, b);
        if index.may_hold(*hash) {
            votes.cast(index, *hash, pos + i as u64 + 1);
        }
    }
}

/// Most votes first; among equals the earliest, so the answer never depends on hashing.
fn ranked(mut candidates: Vec<(i128, u32)>) -> Vec<(i128, u32)> {
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates.truncate(MAX_VERIFIED);
    candidates
}

/// Finds every artifact of `wanted` in `dump` (of `dump_len` bytes): one pass to vote (and to
/// classify every [`BLOCK`] as fill or data), then a direct comparison of the best alignments.
/// `on_chunk` sees every chunk of the dump in order (to hash it in the same pass).
///
/// A block of one repeated byte costs its first [`WINDOW`] bytes only: after them the rolling
/// hash stands still (every window is the same), so one look at the filter settles the rest.
pub(crate) fn locate(
    dump: &File,
    dump_len: u64,
    wanted: &[Wanted<'_>],
    on_chunk: &mut dyn FnMut(&[u8]),
) -> io::Result<Found> {
    let mut index = build_index(wanted)?;
    let mut votes = Votes {
        counts: HashMap::new(),
        capped_anchor: false,
        capped_alignments: false,
    };
    let mut blocks = Blocks::default();
    let mut notes = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut hash = 0u64;
    let mut pos = 0u64;
    let block = usize::try_from(BLOCK).unwrap_or(512);
    loop {
        crate::interrupt::check().map_err(io::Error::other)?;
        let n = read_at_most(dump, pos, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        on_chunk(chunk);
        // Chunks start on a block boundary (CHUNK is a multiple of BLOCK; only the last chunk
        // is short).
        for (k, bytes) in chunk.chunks(block).enumerate() {
            let at = pos + (k * block) as u64;
            let first = bytes[0];
            let uniform = bytes.iter().all(|&b| b == first);
            let class = if uniform && (first == 0xff || first == 0) {
                Class::Fill(first)
            } else {
                Class::Data
            };
            blocks.push(at, at + bytes.len() as u64, class);
            if uniform && bytes.len() > WINDOW {
                scan(&mut index, &mut votes, &mut hash, &bytes[..WINDOW], at);
                // The hash now covers WINDOW copies of `first`, and stays so for the rest.
                if index.may_hold(hash) {
                    let rest = &bytes[WINDOW..];
                    scan(&mut index, &mut votes, &mut hash, rest, at + WINDOW as u64);
                }
            } else {
                scan(&mut index, &mut votes, &mut hash, bytes, at);
            }
        }
        pos += n as u64;
    }
    if pos != dump_len {
        notes.push(format!(
            "the dump changed size while it was read: {dump_len} bytes, then {pos}"
        ));
    }
    if votes.capped_anchor {
        notes.push(format!(
            "some anchors occur more than {MAX_HITS_PER_ANCHOR} times in the dump: only their first occurrences were counted"
        ));
    }
    if votes.capped_alignments {
        notes.push(format!(
            "more than {MAX_ALIGNMENTS} candidate alignments: the later ones were not counted"
        ));
    }
    // Per artifact: the whole artifact's votes (every anchor's), and each part's own.
    let mut whole: Vec<HashMap<i128, u32>> = vec![HashMap::new(); wanted.len()];
    let mut parts: Vec<Vec<Vec<(i128, u32)>>> = wanted
        .iter()
        .map(|w| vec![Vec::new(); w.parts.len()])
        .collect();
    for (&(artifact, part, start), &v) in &votes.counts {
        let a = artifact as usize;
        if let Some(m) = whole.get_mut(a) {
            let e = m.entry(start).or_default();
            *e = e.saturating_add(v);
        }
        if let Some(p) = parts.get_mut(a).and_then(|p| p.get_mut(part as usize)) {
            p.push((start, v));
        }
    }
    let part_votes = parts
        .into_iter()
        .map(|per| per.into_iter().map(ranked).collect())
        .collect();
    let mut best = Vec::with_capacity(wanted.len());
    let mut all = Vec::with_capacity(wanted.len());
    for (w, votes) in wanted.iter().zip(whole) {
        let candidates = ranked(votes.into_iter().collect());
        best.push(best_of(dump, pos, w.file, (0, w.len), &candidates)?);
        all.push(candidates);
    }
    Ok(Found {
        best,
        part_votes,
        candidates: all,
        blocks,
        notes,
    })
}

/// The best of `candidates` (artifact alignments with their votes) for the span `(offset, len)`
/// of `file`: the one where the fewest of its bytes differ or fall outside the dump. The
/// alignment returned is the span's own: the dump offset of its first byte.
pub(crate) fn best_of(
    dump: &File,
    dump_len: u64,
    file: &File,
    (offset, len): (u64, u64),
    candidates: &[(i128, u32)],
) -> io::Result<Option<Alignment>> {
    let mut chosen: Option<Alignment> = None;
    for &(start, votes) in candidates {
        let start = start.saturating_add(i128::from(offset));
        let (differing, missing) = compare_span(dump, dump_len, file, (offset, len), start)?;
        let better = chosen.as_ref().is_none_or(|c| {
            differing.saturating_add(missing) < c.differing.saturating_add(c.missing)
        });
        if better {
            chosen = Some(Alignment {
                start,
                votes,
                differing,
                missing,
            });
        }
    }
    Ok(chosen)
}

/// Bytes of `w` that differ from the dump when it starts at `start`, and bytes that fall
/// outside a dump of `dump_len` bytes.
pub(crate) fn compare_at(
    dump: &File,
    dump_len: u64,
    w: &Wanted<'_>,
    start: i128,
) -> io::Result<(u64, u64)> {
    compare_span(dump, dump_len, w.file, (0, w.len), start)
}

/// Bytes of the span `(from, len)` of `file` that differ from the dump when the span starts at
/// dump offset `start`, and bytes of it that fall outside a dump of `dump_len` bytes.
pub(crate) fn compare_span(
    dump: &File,
    dump_len: u64,
    file: &File,
    (from, len): (u64, u64),
    start: i128,
) -> io::Result<(u64, u64)> {
    let end = start.saturating_add(i128::from(len));
    let inside_start = start.clamp(0, i128::from(dump_len));
    let inside_end = end.clamp(0, i128::from(dump_len));
    let inside = u64::try_from(inside_end - inside_start).unwrap_or(0);
    let mut missing = len - inside.min(len);
    let mut differing = 0u64;
    let (Ok(dump_from), Ok(art_from)) = (
        u64::try_from(inside_start),
        u64::try_from(inside_start - start),
    ) else {
        return Ok((0, len));
    };
    let art_from = art_from.saturating_add(from);
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut done = 0u64;
    while done < inside {
        crate::interrupt::check().map_err(io::Error::other)?;
        let want = usize::try_from((inside - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        let na = read_at_most(file, art_from + done, &mut a[..want])?;
        let nb = read_at_most(dump, dump_from + done, &mut b[..want])?;
        let n = na.min(nb);
        differing += count_differing(&a[..n], &b[..n]);
        if n < want {
            // Either file was shorter than it said: the rest is missing.
            missing += inside - done - n as u64;
            break;
        }
        done += n as u64;
    }
    Ok((differing, missing))
}

/// Positions where `a` and `b` differ (equal lengths), skipping equal blocks at memory speed.
pub(crate) fn count_differing(a: &[u8], b: &[u8]) -> u64 {
    let mut n = 0u64;
    for (x, y) in a.chunks(4096).zip(b.chunks(4096)) {
        if x != y {
            n += x.iter().zip(y).filter(|(p, q)| p != q).count() as u64;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write as _;

    fn file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    use crate::dump::noise;

    fn find(release: &[u8], dump: &[u8]) -> Option<Alignment> {
        let (r, d) = (file(release), file(dump));
        let wanted = [Wanted {
            file: &r,
            len: release.len() as u64,
            parts: Vec::new(),
        }];
        locate(&d, dump.len() as u64, &wanted, &mut |_| {})
            .unwrap()
            .best
            .remove(0)
    }

    #[test]
    fn finds_an_intact_copy_and_a_changed_one() {
        let release = noise(100_000, 1);
        let mut dump = vec![0xff; 300_000];
        dump[..5000].copy_from_slice(&noise(5000, 2));
        dump[123_457..223_457].copy_from_slice(&release);
        let found = find(&release, &dump).unwrap();
        assert_eq!(
            (found.start, found.differing, found.missing),
            (123_457, 0, 0)
        );
        dump[123_457 + 777] ^= 0x40;
        dump[123_457 + 50_000] ^= 0x01;
        let found = find(&release, &dump).unwrap();
        assert_eq!(
            (found.start, found.differing, found.missing),
            (123_457, 2, 0)
        );
    }

    #[test]
    fn a_dump_cut_short_or_smaller_than_the_release() {
        let release = noise(100_000, 3);
        // The dump holds the release's middle only: it starts before the dump and ends after.
        let dump = release[20_000..70_000].to_vec();
        let found = find(&release, &dump).unwrap();
        assert_eq!(found.start, -20_000);
        assert_eq!((found.differing, found.missing), (0, 50_000));
        assert!(find(&release, &[]).is_none());
        assert!(find(&release, &[0xff; 10]).is_none());
    }

    #[test]
    fn fill_and_repeated_anchors_are_bounded() {
        // A release of one repeated pattern anchors nowhere; a dump repeating one window of the
        // release thousands of times casts at most a capped number of votes, and the real copy
        // is still found.
        assert!(find(&vec![0xff; 50_000], &vec![0xff; 200_000]).is_none());
        let release = noise(8192, 4);
        let piece = &release[256 - WINDOW..256];
        let mut dump = Vec::new();
        for _ in 0..5000 {
            dump.extend_from_slice(piece);
        }
        let at = dump.len();
        dump.extend_from_slice(&release);
        let found = find(&release, &dump).unwrap();
        assert_eq!((found.start, found.differing), (at as i128, 0));
    }

    #[test]
    fn blocks_past_the_cap_are_read_again() {
        let mut b = Blocks::default();
        let runs = MAX_BLOCK_RUNS as u64 + 10;
        for i in 0..runs {
            let class = if i % 2 == 0 {
                Class::Data
            } else {
                Class::Fill(0xff)
            };
            b.push(i * BLOCK, (i + 1) * BLOCK, class);
        }
        let end = runs * BLOCK;
        let kept = MAX_BLOCK_RUNS as u64 * BLOCK;
        // Before the cap, what the pass saw (a partial data block is read); after it, nothing.
        assert_eq!(
            b.pieces(100, 3 * BLOCK),
            [
                Piece::Unknown(100, BLOCK),
                Piece::Fill(BLOCK, 2 * BLOCK, 0xff),
                Piece::Data(2 * BLOCK, 3 * BLOCK)
            ]
        );
        assert_eq!(
            b.pieces(kept - BLOCK, end),
            [
                Piece::Fill(kept - BLOCK, kept, 0xff),
                Piece::Unknown(kept, end)
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(release in proptest::collection::vec(any::<u8>(), 0..3000),
                        dump in proptest::collection::vec(any::<u8>(), 0..6000)) {
            if let Some(a) = find(&release, &dump) {
                prop_assert!(a.differing + a.missing <= release.len() as u64);
            }
        }
    }
}
