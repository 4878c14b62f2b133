//! Finding attested subjects in a dump without their files: `attest verify ATT --dump DUMP`
//! with no `--artifact`.
//!
//! A lab engineer often holds a flash dump and an attestation, not the shipped binary. A digest
//! and a size alone would make the search O(dump × size) (hash `size` bytes at every offset):
//! hours on a 4 GiB eMMC image. So the attestation carries, per shipped file, a small signed
//! [`Locator`]: [`ANCHORS`] *anchor windows* — the offset of a [`WINDOW`]-byte window inside the
//! file and the 64-bit gear hash of its bytes (the rolling hash of [`super::locate`], the same
//! `roll`: a window's hash is the roll over its 64 bytes from zero, so it is the same whether
//! computed alone or in a stream). The writer ([`locator_of`], called when the shipped set is
//! hashed) picks the windows as the locator of a file picks its anchors: evenly spread over the
//! file, each holding at least 8 distinct byte values (fill never anchors) and occurring only
//! once in the whole file (a repeated window says nothing about where the file starts).
//!
//! The search ([`check_dump_by_locators`]) keeps these invariants:
//!
//! - **No false pass.** Anchors only propose where a subject may start. A placement is
//!   `identical` only when the sha256 *and* the blake3 of exactly `size` bytes at that origin
//!   equal the subject's digests. Anchors that agree on an origin whose bytes do not have
//!   the digests make it `different` ("found by K of N anchors, content differs"): which bytes
//!   differ cannot be told without the file, so every byte of that copy counts as unexplained
//!   and the user is told to pass `--artifact`. A hostile locator or dump can make a subject
//!   `missing` or `different`, never `identical`: the digests decide, and they are what the
//!   attestation's signature and the statement's subjects bind.
//! - **One streaming pass, bounded memory.** The dump is read once in [`CHUNK`]-byte buffers,
//!   rolling the hash; a small bit filter in front of the anchor index makes most positions
//!   cost one memory read. Every anchor hit votes for an origin (dump offset minus anchor
//!   offset). Memory is the index (at most [`MAX_ANCHORS_PER_LOCATOR`] per subject), the votes
//!   ([`MAX_ORIGINS`] kept, an anchor votes at most [`MAX_HITS_PER_ANCHOR`] times: a dump that
//!   repeats one window a million times cannot grow it) and two buffers: a few MiB whatever
//!   the dump's size. Then, per subject, the [`MAX_CONFIRMED`] origins with most votes are
//!   hashed (`size` bytes each, streamed) until one matches; the rest of the dump is accounted
//!   for as `check_dump` does (regions, erased space, gaps: [`super::cut`], [`super::account`]).
//! - **Declared places win.** A `release` region of the layout that names a subject puts it
//!   there: its bytes are hashed there and nowhere else is searched.
//! - **Untrusted locators are checked first**: a known hash name and window, at most
//!   [`MAX_ANCHORS_PER_LOCATOR`] anchors, each window inside the file; anything else is an
//!   error naming the field, before the dump is read.
//!
//! The locator is part of the signed rebuild predicate (`artifacts[].shipped.locator`,
//! `docs/attestation.md`) and is kept by `--redact`: it reveals a weak 64-bit hash of 32
//! windows of 64 bytes of the *shipped* binary, which every device carries in its flash and
//! every operator receives; nothing of the escrowed source.
//!
//! The window hash is a format: it is pinned by a known-answer test here, so a change to
//! `locate`'s gear table or `roll` (which would make every signed locator find nothing) fails
//! the suite instead of passing silently.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::locate::{distinct, read_at_most, roll, CHUNK, MIN_DISTINCT, WINDOW};
use super::{DumpReport, Error, Options, PlacedBy, Placement, SpanKind};
use crate::recipe::flash::Region;
use crate::verify::Verdict;

/// The name of the window hash a locator uses: `locate`'s gear hash over 64-byte windows.
pub(crate) const ALGORITHM: &str = "gear64";
/// Anchors a locator holds, at most, when it is written.
pub(crate) const ANCHORS: usize = 32;
/// Windows considered when a locator is written (the unique, varied ones become anchors).
const CANDIDATES: usize = 4 * ANCHORS;
/// Anchors of one locator read from an attestation, at most (a bound on untrusted input).
pub(crate) const MAX_ANCHORS_PER_LOCATOR: usize = 1024;
/// Votes one anchor may cast.
pub(crate) const MAX_HITS_PER_ANCHOR: u32 = 4096;
/// Distinct (subject, origin) pairs kept, over all subjects.
pub(crate) const MAX_ORIGINS: usize = 1 << 18;
/// Origins of one subject whose bytes are hashed, at most.
pub(crate) const MAX_CONFIRMED: usize = 4;

/// A 64-bit window hash, written as 16 lowercase hex digits (JSON numbers lose precision
/// past 2^53 in many readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowHash(pub u64);

impl Serialize for WindowHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for WindowHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u64::from_str_radix(&s, 16).ok())
            .flatten()
            .map(WindowHash)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("expected 16 lowercase hex digits, found `{s}`"))
            })
    }
}

/// One anchor: the hash of the window of [`Locator::window`] bytes at `offset` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatorAnchor {
    pub offset: u64,
    pub hash: WindowHash,
}

/// How to find a shipped file in a dump without its bytes (see the module docs). The file's
/// size and digests are beside it, in the predicate's `shipped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locator {
    /// The window hash: [`ALGORITHM`] (kept as written, so that a later one still reads).
    pub algorithm: String,
    /// Bytes per window: [`WINDOW`].
    pub window: u32,
    /// In offset order; empty when the file has no window worth anchoring (fill, or smaller
    /// than a window).
    pub anchors: Vec<LocatorAnchor>,
}

/// The hash of one window, as the dump's rolling pass computes it at the window's end.
pub(crate) fn window_hash(window: &[u8]) -> u64 {
    window.iter().fold(0, |h, &b| roll(h, b))
}

/// The locator of `file` (of `len` bytes): [`CANDIDATES`] evenly spread windows, read alone;
/// then one streaming pass over the file counting where each candidate's hash occurs; the
/// varied, unique ones, at most [`ANCHORS`] spread over the file, become the anchors.
pub(crate) fn locator_of(file: &File, len: u64) -> io::Result<Locator> {
    let mut locator = Locator {
        algorithm: ALGORITHM.to_owned(),
        window: u32::try_from(WINDOW).unwrap_or(u32::MAX),
        anchors: Vec::new(),
    };
    let w = WINDOW as u64;
    if len < w {
        return Ok(locator);
    }
    let span = len - w;
    let n = u64::try_from(CANDIDATES)
        .unwrap_or(u64::MAX)
        .min(len / w)
        .max(1);
    // (offset, hash, distinct bytes)
    let mut candidates: Vec<(u64, u64, usize)> = Vec::new();
    let mut window = [0u8; WINDOW];
    for i in 0..n {
        let offset = if n == 1 {
            0
        } else {
            u64::try_from(u128::from(i) * u128::from(span) / u128::from(n - 1)).unwrap_or(span)
        };
        if read_at_most(file, offset, &mut window)? < WINDOW {
            // The file shrank: what is written names what was read.
            break;
        }
        let varied = distinct(&window);
        if varied >= MIN_DISTINCT {
            candidates.push((offset, window_hash(&window), varied));
        }
    }
    candidates.dedup_by_key(|c| c.0);
    if candidates.is_empty() {
        return Ok(locator);
    }
    let mut counts: HashMap<u64, u32> = candidates.iter().map(|c| (c.1, 0)).collect();
    let filter = Filter::of(counts.keys().copied());
    let mut buf = vec![0u8; CHUNK];
    let (mut hash, mut pos) = (0u64, 0u64);
    while pos < len {
        crate::interrupt::check().map_err(io::Error::other)?;
        let n = read_at_most(file, pos, &mut buf)?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            hash = roll(hash, b);
            if filter.may_hold(hash) && pos + i as u64 + 1 >= w {
                if let Some(c) = counts.get_mut(&hash) {
                    *c = c.saturating_add(1);
                }
            }
        }
        pos += n as u64;
    }
    let unique: Vec<&(u64, u64, usize)> = candidates
        .iter()
        .filter(|c| counts.get(&c.1) == Some(&1))
        .collect();
    // Spread: the unique candidates cut into ANCHORS runs by position, the most varied window
    // of each run (the earliest among equals).
    let runs = unique.len().clamp(1, ANCHORS);
    let mut chosen: Vec<Option<&(u64, u64, usize)>> = vec![None; runs];
    for (i, c) in unique.iter().enumerate() {
        let slot = &mut chosen[i * runs / unique.len().max(1)];
        if slot.is_none_or(|s| c.2 > s.2) {
            *slot = Some(c);
        }
    }
    locator.anchors = chosen
        .into_iter()
        .flatten()
        .map(|c| LocatorAnchor {
            offset: c.0,
            hash: WindowHash(c.1),
        })
        .collect();
    Ok(locator)
}

/// A bit filter of anchor hashes, sized to the anchors (a few KiB: it stays in the L1 cache).
struct Filter {
    bits: Vec<u64>,
    shift: u32,
}

impl Filter {
    fn of(hashes: impl Iterator<Item = u64> + Clone) -> Filter {
        let n = hashes.clone().count().max(1);
        // About 64 bits per hash: one position in a thousand looks the index up in vain.
        let log = (n * 64).next_power_of_two().trailing_zeros().clamp(12, 24);
        let mut f = Filter {
            bits: vec![0u64; 1 << (log - 6)],
            shift: 64 - log,
        };
        for h in hashes {
            let (word, mask) = f.slot(h);
            f.bits[word] |= mask;
        }
        f
    }

    #[inline]
    fn slot(&self, hash: u64) -> (usize, u64) {
        let bit = hash >> self.shift;
        (usize::try_from(bit >> 6).unwrap_or(0), 1u64 << (bit & 63))
    }

    #[inline]
    fn may_hold(&self, hash: u64) -> bool {
        let (word, mask) = self.slot(hash);
        self.bits[word] & mask != 0
    }
}

/// A subject to look for: its name, size, both digests, its locator, and what vouches for it.
#[derive(Debug, Clone)]
pub(crate) struct Sought {
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
    pub blake3: [u8; 32],
    pub locator: Locator,
    pub vouched: Verdict,
}

/// Why a locator read from an attestation cannot be used: the field, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("the locator of `{subject}` is unusable: {what}")]
pub(crate) struct BadLocator {
    pub subject: String,
    pub what: String,
}

/// Checks a locator from an attestation before anything is read with it.
pub(crate) fn check_locator(s: &Sought) -> Result<(), BadLocator> {
    let bad = |what: String| BadLocator {
        subject: s.name.clone(),
        what,
    };
    let l = &s.locator;
    if l.algorithm != ALGORITHM || l.window as usize != WINDOW {
        return Err(bad(format!(
            "`algorithm` `{}` over {}-byte windows, this version knows `{ALGORITHM}` over {WINDOW}",
            l.algorithm, l.window
        )));
    }
    if l.anchors.len() > MAX_ANCHORS_PER_LOCATOR {
        return Err(bad(format!(
            "{} anchors, at most {MAX_ANCHORS_PER_LOCATOR} are read",
            l.anchors.len()
        )));
    }
    for (i, a) in l.anchors.iter().enumerate() {
        if a.offset
            .checked_add(WINDOW as u64)
            .is_none_or(|end| end > s.size)
        {
            return Err(bad(format!(
                "`anchors[{i}].offset` {} leaves no {WINDOW}-byte window in a file of {} bytes",
                a.offset, s.size
            )));
        }
    }
    Ok(())
}

/// Where one subject was decided to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decided {
    /// Dump offset of the subject's first byte; `None`: not found.
    start: Option<i128>,
    /// Anchors that agreed on `start`.
    votes: u32,
    /// Both digests of the `size` bytes at `start` match.
    matches: bool,
    /// Bytes of the subject outside the dump at `start`.
    missing: u64,
}

/// Anchors agreeing on an origin, by (subject, origin).
type Votes = HashMap<(u32, i128), u32>;

/// The one pass over the dump: votes for origins, per subject. `declared[i]` set: subject `i`
/// is not searched (a layout places it). Returns the votes and the notes on caps reached.
fn vote(
    dump: &File,
    dump_len: u64,
    sought: &[Sought],
    declared: &[Option<u64>],
) -> io::Result<(Votes, Vec<String>)> {
    // hash → (subject, anchor offset, hits); a hash two anchors share is kept for both.
    let mut index: HashMap<u64, Vec<(u32, u64, u32)>> = HashMap::new();
    for (i, s) in sought.iter().enumerate() {
        if declared[i].is_some() {
            continue;
        }
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        for a in &s.locator.anchors {
            index.entry(a.hash.0).or_default().push((i, a.offset, 0));
        }
    }
    let mut votes: Votes = HashMap::new();
    let mut notes = Vec::new();
    if index.is_empty() {
        return Ok((votes, notes));
    }
    let filter = Filter::of(index.keys().copied());
    let (mut capped_anchor, mut capped_origins) = (false, false);
    let mut buf = vec![0u8; CHUNK];
    let (mut hash, mut pos) = (0u64, 0u64);
    let w = WINDOW as u64;
    loop {
        crate::interrupt::check().map_err(io::Error::other)?;
        let n = read_at_most(dump, pos, &mut buf)?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            hash = roll(hash, b);
            if !filter.may_hold(hash) {
                continue;
            }
            let end = pos + i as u64 + 1;
            if end < w {
                continue;
            }
            let Some(anchors) = index.get_mut(&hash) else {
                continue;
            };
            for (subject, offset, hits) in anchors.iter_mut() {
                if *hits >= MAX_HITS_PER_ANCHOR {
                    capped_anchor = true;
                    continue;
                }
                *hits += 1;
                let key = (*subject, i128::from(end - w) - i128::from(*offset));
                if let Some(v) = votes.get_mut(&key) {
                    *v = v.saturating_add(1);
                } else if votes.len() < MAX_ORIGINS {
                    votes.insert(key, 1);
                } else {
                    capped_origins = true;
                }
            }
        }
        pos += n as u64;
    }
    if pos != dump_len {
        notes.push(format!(
            "the dump changed size while it was read: {dump_len} bytes, then {pos}"
        ));
    }
    if capped_anchor {
        notes.push(format!(
            "some anchors occur more than {MAX_HITS_PER_ANCHOR} times in the dump: only their first occurrences were counted"
        ));
    }
    if capped_origins {
        notes.push(format!(
            "more than {MAX_ORIGINS} candidate origins: the later ones were not counted"
        ));
    }
    Ok((votes, notes))
}

/// Whether the `s.size` bytes at `start` have both of `s`'s digests, and how many of them lie
/// outside a dump of `dump_len` bytes (a copy not wholly inside cannot match).
fn confirm(dump: &File, dump_len: u64, s: &Sought, start: i128) -> io::Result<(bool, u64)> {
    let end = start.saturating_add(i128::from(s.size));
    let inside = end.clamp(0, i128::from(dump_len)) - start.clamp(0, i128::from(dump_len));
    let missing = s.size - u64::try_from(inside).unwrap_or(0).min(s.size);
    let Ok(from) = u64::try_from(start) else {
        return Ok((false, missing));
    };
    if missing > 0 {
        return Ok((false, missing));
    }
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < s.size {
        crate::interrupt::check().map_err(io::Error::other)?;
        let want = usize::try_from((s.size - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = read_at_most(dump, from + done, &mut buf[..want])?;
        if n == 0 {
            // Shorter than it said: the rest is missing, and it cannot match.
            return Ok((false, s.size - done));
        }
        let chunk = &buf[..n];
        rayon::join(
            || sha2::Digest::update(&mut sha, chunk),
            || {
                b3.update(chunk);
            },
        );
        done += n as u64;
    }
    let sha: [u8; 32] = sha2::Digest::finalize(sha).into();
    Ok((sha == s.sha256 && *b3.finalize().as_bytes() == s.blake3, 0))
}

/// Decides each subject's place: the declared one, else the origins with most votes hashed in
/// turn until one matches (the most voted one when none does). An origin that fewer than two
/// anchors agree on (one, for a locator of one anchor) is not "found" unless its bytes match.
fn decide(
    dump: &File,
    dump_len: u64,
    sought: &[Sought],
    declared: &[Option<u64>],
    votes: &Votes,
) -> io::Result<Vec<Decided>> {
    let mut out = Vec::with_capacity(sought.len());
    for (i, s) in sought.iter().enumerate() {
        let key = u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(at) = declared[i] {
            let start = i128::from(at);
            let (matches, missing) = confirm(dump, dump_len, s, start)?;
            out.push(Decided {
                start: Some(start),
                votes: 0,
                matches,
                missing,
            });
            continue;
        }
        let mut candidates: Vec<(i128, u32)> = votes
            .iter()
            .filter(|((subject, _), _)| *subject == key)
            .map(|(&(_, start), &v)| (start, v))
            .collect();
        // Most votes first; among equals the earliest, so the answer never depends on hashing.
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(MAX_CONFIRMED);
        let quorum = u32::try_from(s.locator.anchors.len().min(2)).unwrap_or(2);
        let mut decided = Decided {
            start: None,
            votes: 0,
            matches: false,
            missing: s.size,
        };
        for (rank, &(start, v)) in candidates.iter().enumerate() {
            let (matches, missing) = confirm(dump, dump_len, s, start)?;
            if matches {
                decided = Decided {
                    start: Some(start),
                    votes: v,
                    matches,
                    missing,
                };
                break;
            }
            if rank == 0 && v >= quorum {
                decided = Decided {
                    start: Some(start),
                    votes: v,
                    matches,
                    missing,
                };
            }
        }
        out.push(decided);
    }
    Ok(out)
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| super::interrupted_or(e, path)
}

/// The placement of subject `s` as decided, in the shape `check_dump` gives its own.
fn placement(s: &Sought, d: Decided, placed_by: PlacedBy) -> Placement {
    let anchors = Some(u32::try_from(s.locator.anchors.len()).unwrap_or(u32::MAX));
    let sha256 = crate::hash::Checksum::sha256(s.sha256);
    let Some(start) = d.start else {
        return Placement {
            artifact: s.name.clone(),
            size: s.size,
            sha256,
            offset: None,
            placed_by,
            votes: 0,
            differing: 0,
            missing: s.size,
            verdict: s.vouched.worst(Verdict::Missing),
            comparison: None,
            vouched: s.vouched,
            anchors,
            allowances: Vec::new(),
            parts: Vec::new(),
            unlocated: 0,
            not_required: None,
            copies: Vec::new(),
            found_elsewhere: None,
        };
    };
    let mut verdict = s.vouched;
    if !d.matches {
        verdict = verdict.worst(Verdict::Different);
    }
    if d.missing > 0 {
        verdict = verdict.worst(Verdict::Missing);
    }
    Placement {
        artifact: s.name.clone(),
        size: s.size,
        sha256,
        offset: i64::try_from(start).ok(),
        placed_by,
        votes: d.votes,
        // Without the file, no byte of a copy that does not have the digests is vouched for.
        differing: if d.matches { 0 } else { s.size - d.missing },
        missing: d.missing,
        verdict,
        comparison: None,
        vouched: s.vouched,
        anchors,
        allowances: Vec::new(),
        parts: Vec::new(),
        unlocated: 0,
        not_required: None,
        copies: Vec::new(),
        found_elsewhere: None,
    }
}

/// Checks `dump` against subjects known only by their digests and locators: each placed (by
/// a `release` region of the layout naming it, else by its anchors) and confirmed by both
/// digests, then every byte accounted for as [`super::check_dump`] does.
pub(crate) fn check_dump_by_locators(
    dump_path: &Path,
    shown_as: &str,
    sought: &[Sought],
    opts: &Options,
) -> Result<DumpReport, Error> {
    let dump = crate::beneath::open_regular(dump_path).map_err(|e| match e {
        crate::beneath::Error::Io { path, source } => Error::Io { path, source },
        e => io_at(dump_path)(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
    })?;
    let size = dump.metadata().map_err(io_at(dump_path))?.len();
    let regions: &[Region] = opts.layout.as_ref().map_or(&[], |l| &l.regions);
    let mut declared: Vec<Option<u64>> = vec![None; sought.len()];
    for r in regions {
        if let Some(a) = &r.artifact {
            let i =
                sought
                    .iter()
                    .position(|s| s.name == *a)
                    .ok_or_else(|| Error::UnknownArtifact {
                        region: r.name.clone(),
                        artifact: a.clone(),
                    })?;
            declared[i] = Some(r.offset);
        }
    }
    let (votes, notes) = vote(&dump, size, sought, &declared).map_err(io_at(dump_path))?;
    let decided = decide(&dump, size, sought, &declared, &votes).map_err(io_at(dump_path))?;
    drop(votes);
    let placements: Vec<Placement> = sought
        .iter()
        .zip(decided)
        .zip(&declared)
        .map(|((s, d), at)| {
            let by = if at.is_some() {
                PlacedBy::Layout
            } else {
                PlacedBy::Locator
            };
            placement(s, d, by)
        })
        .collect();
    // The locators' pass kept no blocks: the account reads what it needs.
    let mut report = super::settle(
        &super::Dump {
            file: &dump,
            path: dump_path,
            shown_as,
            size,
        },
        None,
        &super::locate::Blocks::default(),
        placements,
        notes,
        opts,
    )?;
    for span in &mut report.spans {
        let differs = report.placements.iter().any(|p| {
            p.differing > 0
                && span.kind == SpanKind::Artifact
                && span.name.as_ref() == Some(&p.artifact)
        });
        if differs {
            let verdict = report
                .placements
                .iter()
                .find(|p| span.name.as_ref() == Some(&p.artifact))
                .map_or(Verdict::Different, |p| p.verdict);
            span.detail = Some(format!(
                "{verdict}: not the attested bytes (their sha256 and blake3 differ); which bytes differ cannot be told without the file"
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    use crate::dump::noise;

    fn sought(release: &[u8]) -> Sought {
        use sha2::Digest as _;
        Sought {
            name: "fw.img".to_owned(),
            size: release.len() as u64,
            sha256: sha2::Sha256::digest(release).into(),
            blake3: *blake3::hash(release).as_bytes(),
            locator: locator_of(&file(release), release.len() as u64).unwrap(),
            vouched: Verdict::Identical,
        }
    }

    fn find(s: &Sought, dump: &[u8]) -> Decided {
        let d = file(dump);
        let sought = std::slice::from_ref(s);
        let (votes, _) = vote(&d, dump.len() as u64, sought, &[None]).unwrap();
        decide(&d, dump.len() as u64, sought, &[None], &votes).unwrap()[0]
    }

    /// The window hash is a signed format: pinned, so a change to `locate`'s gear table or
    /// `roll` fails here instead of making every attested locator find nothing.
    #[test]
    fn the_window_hash_is_pinned_and_equals_the_rolling_one() {
        let window: Vec<u8> = (0u8..64).collect();
        assert_eq!(format!("{:016x}", window_hash(&window)), "0d29e586473a6572");
        let stream = noise(1000, 9);
        let mut h = 0u64;
        for (i, &b) in stream.iter().enumerate() {
            h = roll(h, b);
            if i + 1 >= WINDOW {
                assert_eq!(h, window_hash(&stream[i + 1 - WINDOW..=i]));
            }
        }
    }

    #[test]
    fn a_locator_anchors_varied_unique_windows_only() {
        let release = noise(200_000, 1);
        let l = locator_of(&file(&release), release.len() as u64).unwrap();
        assert_eq!(l.anchors.len(), ANCHORS);
        assert!(l.anchors.windows(2).all(|w| w[0].offset < w[1].offset));
        for a in &l.anchors {
            let at = usize::try_from(a.offset).unwrap();
            assert_eq!(a.hash.0, window_hash(&release[at..at + WINDOW]));
        }
        // Fill, and a file smaller than a window, have no anchor.
        let fill = vec![0xffu8; 100_000];
        assert!(locator_of(&file(&fill), 100_000)
            .unwrap()
            .anchors
            .is_empty());
        assert!(locator_of(&file(b"short"), 5).unwrap().anchors.is_empty());
        // A file that is one block twice: every window occurs twice, none anchors.
        let block = noise(8192, 2);
        let twice = [block.clone(), block].concat();
        let l = locator_of(&file(&twice), twice.len() as u64).unwrap();
        assert!(l.anchors.is_empty(), "{l:?}");
    }

    #[test]
    fn found_where_it_is_and_confirmed_by_both_digests() {
        let release = noise(100_000, 3);
        let s = sought(&release);
        let mut dump = vec![0xffu8; 400_000];
        dump[..5000].copy_from_slice(&noise(5000, 4));
        dump[123_457..223_457].copy_from_slice(&release);
        let d = find(&s, &dump);
        assert_eq!(
            (d.start, d.matches, d.missing),
            (Some(123_457), true, 0),
            "{d:?}"
        );
        assert_eq!(d.votes as usize, s.locator.anchors.len());
    }

    /// No false pass: a copy with one byte changed away from every anchor window gets every
    /// anchor's vote, and is still not the attested bytes.
    #[test]
    fn a_byte_changed_away_from_every_anchor_does_not_pass() {
        let release = noise(100_000, 5);
        let s = sought(&release);
        let at = (0..release.len())
            .find(|&i| {
                s.locator
                    .anchors
                    .iter()
                    .all(|a| !(a.offset..a.offset + WINDOW as u64).contains(&(i as u64)))
            })
            .unwrap();
        let mut copy = release.clone();
        copy[at] ^= 0x01;
        let mut dump = vec![0xffu8; 300_000];
        dump[50_000..150_000].copy_from_slice(&copy);
        let d = find(&s, &dump);
        assert_eq!((d.start, d.matches), (Some(50_000), false), "{d:?}");
        assert_eq!(d.votes as usize, s.locator.anchors.len());
        let p = placement(&s, d, PlacedBy::Locator);
        assert_eq!(p.verdict, Verdict::Different);
        assert_eq!(p.differing, release.len() as u64);
    }

    #[test]
    fn absent_cut_short_and_a_wrong_blake3() {
        let release = noise(100_000, 6);
        let s = sought(&release);
        assert_eq!(find(&s, &noise(300_000, 7)).start, None);
        // The dump ends inside the copy: found, missing bytes, no match.
        let mut dump = vec![0xffu8; 150_000];
        dump[100_000..].copy_from_slice(&release[..50_000]);
        let d = find(&s, &dump);
        assert_eq!(
            (d.start, d.matches, d.missing),
            (Some(100_000), false, 50_000)
        );
        // The sha256 alone matching is not enough.
        let mut wrong = s.clone();
        wrong.blake3[0] ^= 1;
        let mut dump = vec![0xffu8; 200_000];
        dump[1000..101_000].copy_from_slice(&release);
        let d = find(&wrong, &dump);
        assert_eq!((d.start, d.matches), (Some(1000), false));
    }

    #[test]
    fn a_hostile_dump_repeating_an_anchor_is_bounded_and_the_copy_still_found() {
        let release = noise(50_000, 8);
        let s = sought(&release);
        let a = s.locator.anchors[3];
        let at = usize::try_from(a.offset).unwrap();
        let piece = &release[at..at + WINDOW];
        let mut dump = Vec::new();
        for _ in 0..20_000 {
            dump.extend_from_slice(piece);
        }
        let real = dump.len();
        dump.extend_from_slice(&release);
        let d = find(&s, &dump);
        assert_eq!((d.start, d.matches), (Some(real as i128), true));
    }

    #[test]
    fn bad_locators_are_refused_naming_the_field() {
        let release = noise(10_000, 10);
        let mut s = sought(&release);
        s.locator.anchors[1].offset = 9_990;
        let err = check_locator(&s).unwrap_err().to_string();
        assert!(err.contains("`anchors[1].offset` 9990"), "{err}");
        let mut s = sought(&release);
        s.locator.algorithm = "md5".to_owned();
        assert!(check_locator(&s).unwrap_err().to_string().contains("`md5`"));
        assert!(check_locator(&sought(&release)).is_ok());
        let bad: Result<WindowHash, _> = serde_json::from_str("\"ABCDEF0123456789\"");
        assert!(bad.unwrap_err().to_string().contains("16 lowercase hex"));
    }
}
