//! The recursive walk of a comparison: byte comparison first, then containers member by
//! member, then each differing leaf explained range by range with its allowances applied.

use std::collections::HashMap;
use std::path::Path;

use super::bytes::{self, FileSpan, Mode};
use super::container::{self, Blob, Content, Fault, Kind, Member, METADATA_FIELDS};
use super::elf::{self, ElfMap, Location};
use super::layout::Layout;
use super::parts;
use super::pointer;
use super::{
    allow, compare_readers, explain, io_error, Allowance, AppliedAllowance, ByteDiff, ByteRange,
    Cause, CauseTally, Change, ContentDiff, Error, FieldChange, LeafDiff, Options, RangeDiff, Rule,
    SectionDiff, ShiftDiff, Verdict,
};
use crate::archive::limits::Budget;
use crate::archive::Format;

/// Ranges per leaf given a cause (the count of all ranges is always exact).
const MAX_EXPLAINED: usize = 1024;
/// Ranges with a cause shown with hex context, per leaf.
const CONTEXT_RANGES: usize = 16;
/// Ranges shown with hex context when few have a cause: unexplained ones fill up to this.
const UNKNOWN_CONTEXT: usize = 3;

pub(super) struct Walker<'o> {
    pub(super) opts: &'o Options,
    /// Reference times and names for the patterns of [`explain`].
    pub(super) clues: explain::Clues,
    /// For a file pair with two names: the left name (used in paths) and the right one.
    pub(super) aliases: Option<(String, String)>,
    pub(super) layout: Option<Layout>,
    /// Raw leaves laid out by an ELF file of the rebuilt tree, by leaf path: the parts of
    /// image maps made from an ELF (`imagemap.rs`), with the ELF file as reports name it.
    pub(super) part_layouts: Vec<(String, ElfMap, String)>,
    /// What the comparison has spooled and listed so far, against its bounds.
    pub(super) budget: Budget,
    pub(super) identical: u64,
    pub(super) leaves: Vec<LeafDiff>,
}

impl Walker<'_> {
    /// The allowances for the leaf at `path`. A file pair is named after the left file, but
    /// an allowance may name either side (verify puts the shipped name on the right).
    fn allowances(&self, path: &str) -> impl Iterator<Item = &Allowance> {
        let path = path.to_owned();
        let other = self.aliases.as_ref().and_then(|(left, right)| {
            let rest = path.strip_prefix(left.as_str())?;
            (rest.is_empty() || rest.starts_with("//")).then(|| format!("{right}{rest}"))
        });
        self.opts
            .allowances
            .iter()
            .filter(move |a| a.applies_to(&path) || other.as_ref().is_some_and(|o| a.applies_to(o)))
    }

    /// A leaf without content; `equivalent` when it is only archive metadata, order or a
    /// compression header and an `archive-metadata` allowance applies.
    pub(super) fn leaf(
        &self,
        path: &str,
        change: Change,
        causes: Vec<Cause>,
        metadata: Vec<FieldChange>,
    ) -> LeafDiff {
        let metadata_only = !causes.is_empty()
            && causes.iter().all(|c| {
                matches!(
                    c,
                    Cause::ArchiveMetadata | Cause::Ordering | Cause::CompressionHeader
                )
            });
        let special_bits = metadata
            .iter()
            .any(|f| !allow::is_harmless_field(&f.field, &f.left, &f.right));
        let harmless = metadata_only && !special_bits;
        let mut notes = Vec::new();
        if metadata_only && special_bits {
            if let Some(a) = self
                .allowances(path)
                .find(|a| a.rule == Rule::ArchiveMetadata)
            {
                notes.push(format!(
                    "`{}` not applied: a setuid, setgid or sticky bit changed",
                    a.rule
                ));
            }
        }
        let allowances: Vec<AppliedAllowance> = self
            .allowances(path)
            .filter(|a| harmless && a.rule == Rule::ArchiveMetadata)
            .take(1)
            .map(|a| AppliedAllowance {
                allowance: a.clone(),
                ranges: Vec::new(),
            })
            .collect();
        LeafDiff {
            path: path.to_owned(),
            change,
            verdict: if allowances.is_empty() {
                Verdict::Different
            } else {
                Verdict::Equivalent
            },
            causes,
            metadata,
            content: None,
            allowances,
            notes,
        }
    }

    /// Compare two spans of bytes at `path`; look inside when both are the same container.
    pub(super) fn blobs(
        &mut self,
        path: &str,
        left: &Blob,
        right: &Blob,
        depth: usize,
    ) -> Result<(), Error> {
        let bytes = compare_blobs(left, right, Mode::ShiftAware)?;
        if bytes.is_identical() {
            self.identical += 1;
            return Ok(());
        }
        let mut notes = Vec::new();
        let mut members_match = false;
        // Allowed bytes are judged before looking inside: a signed bundle is still a tar, but
        // its signature trailer is no member of it.
        let allowances: Vec<&Allowance> = self.allowances(path).collect();
        // Allowances are judged offset by offset, never on a shifted result: bytes inserted in
        // the middle plus a signature would otherwise read as a trailer alone.
        let plain = if bytes.shifts.is_empty() || allowances.is_empty() {
            None
        } else {
            Some(compare_blobs(left, right, Mode::OffsetByOffset)?)
        };
        let judged = plain.as_ref().unwrap_or(&bytes);
        let byte_allowed = allow::cover(&allowances, &shape(judged), |_| None).complete;
        if !byte_allowed {
            let lf = left.format().map_err(io_error(&left.path))?;
            let rf = right.format().map_err(io_error(&right.path))?;
            if lf.is_none() && rf.is_none() {
                let (leaves, identical) = (self.leaves.len(), self.identical);
                let (mapped, image_notes) = self.image_map(path, left, right, depth)?;
                match mapped {
                    Some(Ok(parts::Found::Leaves)) => return Ok(()),
                    Some(Ok(parts::Found::Nothing)) => notes.push(
                        "every part of the image map matches: bytes outside it differ".to_owned(),
                    ),
                    Some(Err(note)) => {
                        self.leaves.truncate(leaves);
                        self.identical = identical;
                        notes.push(note);
                    }
                    None => {}
                }
                notes.extend(image_notes);
                if let Some(format) = crate::firmware::identify(left)
                    .map_err(io_error(&left.path))?
                    .filter(|f| crate::firmware::identify(right).ok().flatten() == Some(*f))
                {
                    self.budget
                        .check_depth(depth as u64)
                        .map_err(|e| Error::from_fault(path, e.into()))?;
                    let (leaves, identical) = (self.leaves.len(), self.identical);
                    match self.parts(path, format, left, right, depth)? {
                        Ok(parts::Found::Leaves) => return Ok(()),
                        Ok(parts::Found::Nothing) => notes.push(format!(
                            "every part of the {} image matches: bytes outside its map differ",
                            format.name()
                        )),
                        Err(note) => {
                            self.leaves.truncate(leaves);
                            self.identical = identical;
                            notes.push(note);
                        }
                    }
                }
            }
            if let Some(format) = lf.filter(|f| Some(*f) == rf && *f != Format::Elf) {
                self.budget
                    .check_depth(depth as u64)
                    .map_err(|e| Error::from_fault(path, e.into()))?;
                let (leaves, identical) = (self.leaves.len(), self.identical);
                match self.expand(path, format, left, right, judged, depth) {
                    Ok(()) if self.leaves.len() > leaves => return Ok(()),
                    Ok(()) => {
                        members_match = true;
                        notes.push(
                            "every member matches: the container's own bytes differ (headers, padding)"
                                .to_owned(),
                        );
                    }
                    Err(Error::Corrupt { detail, .. }) => {
                        // A decompression cut short by a signal reads as corrupt: not a reason
                        // to go on comparing bytes.
                        crate::interrupt::check()?;
                        self.leaves.truncate(leaves);
                        self.identical = identical;
                        notes.push(format!(
                            "could not read as {}: {detail}; compared as bytes",
                            format.name()
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let mut leaf = self.content_leaf(path, left, right, (&bytes, judged), notes)?;
        if members_match {
            // Same members, same contents, same compared metadata: what differs is the
            // container's own bookkeeping (pax times, inode numbers, extra fields, padding).
            for r in leaf.content.iter_mut().flat_map(|c| &mut c.ranges) {
                r.cause = Cause::ArchiveMetadata;
            }
            leaf.causes = vec![Cause::ArchiveMetadata];
            let allowed = self.leaf(
                path,
                Change::Changed,
                vec![Cause::ArchiveMetadata],
                Vec::new(),
            );
            // The container's own bytes, never bytes one side has and the other lacks (data
            // appended to a tar, a stub in front of a zip).
            let same_size = bytes.left_size == bytes.right_size;
            match allowed.allowances.into_iter().next() {
                Some(mut applied) if same_size && !judged.is_truncated() => {
                    applied.ranges.clone_from(&judged.ranges);
                    leaf.allowances.push(applied);
                    leaf.verdict = Verdict::Equivalent;
                }
                Some(applied) => leaf.notes.push(format!(
                    "`{}` not applied: the containers differ in size ({} and {} bytes)",
                    applied.allowance.rule, bytes.left_size, bytes.right_size
                )),
                None => {}
            }
        }
        self.leaves.push(leaf);
        Ok(())
    }

    fn expand(
        &mut self,
        path: &str,
        format: Format,
        left: &Blob,
        right: &Blob,
        bytes: &ByteDiff,
        depth: usize,
    ) -> Result<(), Error> {
        let corrupt = |fault: Fault| Error::from_fault(path, fault);
        let tmp = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
        if matches!(format, Format::Gzip | Format::Xz) {
            let l = container::decompress(format, left, tmp.path(), &mut self.budget)
                .map_err(corrupt)?;
            let r = container::decompress(format, right, tmp.path(), &mut self.budget)
                .map_err(corrupt)?;
            let before = self.leaves.len();
            self.blobs(path, &l, &r, depth + 1)?;
            let headers = (format == Format::Gzip)
                .then(|| container::gzip_header(left).zip(container::gzip_header(right)))
                .flatten();
            let fields = headers
                .as_ref()
                .map(|((lf, _), (rf, _))| changed_fields(lf, rf))
                .unwrap_or_default();
            let header_only = headers.is_some_and(|((_, ll), (_, rl))| {
                ll == rl && bytes.shifts.is_empty() && bytes.ranges.iter().all(|r| r.end() <= ll)
            });
            if self.leaves.len() == before {
                // Same content: the leaf is the stream itself, not a decompressed member.
                self.identical = self.identical.saturating_sub(1);
                let cause = if header_only {
                    Cause::CompressionHeader
                } else {
                    Cause::Compression
                };
                let leaf = self.leaf(path, Change::Changed, vec![cause], fields);
                self.leaves.push(leaf);
            } else if !fields.is_empty() {
                let leaf = self.leaf(
                    path,
                    Change::Changed,
                    vec![Cause::CompressionHeader],
                    fields,
                );
                self.leaves.insert(before, leaf);
            }
            return Ok(());
        }
        let l = container::list(format, left, &mut self.budget).map_err(corrupt)?;
        let r = container::list(format, right, &mut self.budget).map_err(corrupt)?;
        let sides = Some((left, right, tmp.path()));
        self.members(&format!("{path}//"), &l, &r, sides, depth + 1)
    }

    /// Match members by path and compare each pair. `zip` gives the archives and a scratch
    /// folder, for compressed zip entries.
    pub(super) fn members(
        &mut self,
        prefix: &str,
        left: &[Member],
        right: &[Member],
        zip: Option<(&Blob, &Blob, &Path)>,
        depth: usize,
    ) -> Result<(), Error> {
        let (lkeys, rkeys) = (keys(left), keys(right));
        let rindex: HashMap<&str, usize> = rkeys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let lset: std::collections::HashSet<&str> = lkeys.iter().map(String::as_str).collect();
        let common_l: Vec<&str> = lkeys
            .iter()
            .map(String::as_str)
            .filter(|k| rindex.contains_key(k))
            .collect();
        let common_r: Vec<&str> = rkeys
            .iter()
            .map(String::as_str)
            .filter(|k| lset.contains(k))
            .collect();
        if common_l != common_r {
            let container = prefix.strip_suffix("//").unwrap_or(prefix);
            let container = if container.is_empty() { "." } else { container };
            let mut leaf = self.leaf(
                container,
                Change::Reordered,
                vec![Cause::Ordering],
                Vec::new(),
            );
            if let Some(i) = common_l.iter().zip(&common_r).position(|(a, b)| a != b) {
                leaf.notes.push(format!(
                    "member {} is `{}` on the left and `{}` on the right",
                    i + 1,
                    common_l[i],
                    common_r[i]
                ));
            }
            self.leaves.push(leaf);
        }
        for (lm, key) in left.iter().zip(&lkeys) {
            crate::interrupt::check()?;
            let child = format!("{prefix}{key}");
            let Some(&ri) = rindex.get(key.as_str()) else {
                let leaf = self.leaf(&child, Change::Removed, Vec::new(), Vec::new());
                self.leaves.push(leaf);
                continue;
            };
            let rm = &right[ri];
            if lm.kind != rm.kind {
                let field = FieldChange {
                    field: "kind".into(),
                    left: lm.kind.name().into(),
                    right: rm.kind.name().into(),
                };
                let leaf = self.leaf(&child, Change::Changed, vec![Cause::Unknown], vec![field]);
                self.leaves.push(leaf);
                continue;
            }
            let fields = changed_fields(&lm.meta, &rm.meta);
            let same_meta = fields.is_empty();
            if !same_meta {
                let cause = metadata_cause(&fields);
                let leaf = self.leaf(&child, Change::Changed, vec![cause], fields);
                self.leaves.push(leaf);
            }
            if let (Content::Zip(_, l), Content::Zip(_, r)) = (&lm.content, &rm.content) {
                // Equal compressed bytes decompress to equal content: no need to extract.
                let same = compare_readers(
                    l.reader().map_err(io_error(&l.path))?,
                    r.reader().map_err(io_error(&r.path))?,
                )
                .map_err(io_error(&l.path))?;
                if same.is_identical() {
                    self.identical += 1;
                    continue;
                }
            }
            let l = materialize(&lm.content, zip, true, &mut self.budget)
                .map_err(|f| Error::from_fault(&child, f))?;
            let r = materialize(&rm.content, zip, false, &mut self.budget)
                .map_err(|f| Error::from_fault(&child, f))?;
            let (Some(l), Some(r)) = (l, r) else {
                if same_meta && lm.kind != Kind::Dir {
                    self.identical += 1;
                }
                continue;
            };
            self.blobs(&child, &l, &r, depth)?;
        }
        for key in &rkeys {
            if !lset.contains(key.as_str()) {
                let leaf = self.leaf(
                    &format!("{prefix}{key}"),
                    Change::Added,
                    Vec::new(),
                    Vec::new(),
                );
                self.leaves.push(leaf);
            }
        }
        Ok(())
    }

    /// A leaf for differing bytes: each range explained, allowances applied. `bytes` is what
    /// is shown, `judged` (offset by offset when `bytes` has shifts) what allowances see.
    pub(super) fn content_leaf(
        &self,
        path: &str,
        left: &Blob,
        right: &Blob,
        (bytes, judged): (&ByteDiff, &ByteDiff),
        notes: Vec<String>,
    ) -> Result<LeafDiff, Error> {
        let mut notes = notes;
        let is_elf = |b: &Blob| b.format().map(|f| f == Some(Format::Elf));
        let left_elf = is_elf(left).map_err(io_error(&left.path))?;
        let (elf, right_elf) = if left_elf && is_elf(right).map_err(io_error(&right.path))? {
            (ElfMap::read(left), ElfMap::read(right))
        } else {
            (None, None)
        };
        let part_layout = self.part_layouts.iter().find(|(p, _, _)| p == path);
        let image = match (part_layout, &self.layout, left_elf) {
            (Some((_, map, elf)), _, false) => {
                notes.push(format!("offsets located by the sections of `{elf}`"));
                Some(map)
            }
            (None, Some(layout), false) => layout.map_for(path, left, &mut notes),
            _ => None,
        };
        let elf = elf.as_ref().or(image);
        let mut causes: Vec<Cause> = Vec::new();
        let mut ranges = Vec::new();
        if let (Some(l), Some(r)) = (elf, &right_elf) {
            notes.extend(elf::layout_changes(l, r));
        }
        let why = explain::Explainer::new(left, right, elf, bytes, &self.clues);
        for r in bytes.ranges.iter().take(MAX_EXPLAINED) {
            let shift = bytes.shift_at(r.offset);
            let mut explained = why.explain(*r, shift).map_err(io_error(&left.path))?;
            if explained.cause == Cause::Unknown {
                if let Some(by) = pointer::moved_by(*r, shift, &bytes.shifts, left, right)
                    .map_err(io_error(&left.path))?
                {
                    explained.cause = Cause::Shifted { by };
                } else if let Some(fill) =
                    taken_up_fill(*r, shift, bytes, left, right).map_err(io_error(&left.path))?
                {
                    explained.cause = Cause::Padding { fill };
                }
            }
            if !causes.contains(&explained.cause) {
                causes.push(explained.cause.clone());
            }
            ranges.push(RangeDiff {
                offset: r.offset,
                len: r.len,
                shift,
                cause: explained.cause,
                location: explained.location.map(|l| match l {
                    Location::Header => "ELF header".to_owned(),
                    Location::Section { name, .. } => name,
                    Location::Segment(i) => format!("segment {i}"),
                    Location::Elsewhere => "outside sections".to_owned(),
                }),
                string: explained.string,
                context: None,
            });
        }
        // Context where the cause is: the ranges with one first, then (for a leaf with few
        // of them) the first unexplained ones.
        let with_cause: Vec<usize> = (0..ranges.len())
            .filter(|&i| ranges[i].cause != Cause::Unknown)
            .collect();
        let mut chosen: Vec<usize> = with_cause.iter().copied().take(CONTEXT_RANGES).collect();
        if chosen.len() < UNKNOWN_CONTEXT {
            let room = UNKNOWN_CONTEXT - chosen.len();
            chosen.extend(
                (0..ranges.len())
                    .filter(|&i| ranges[i].cause == Cause::Unknown)
                    .take(room),
            );
            chosen.sort_unstable();
        }
        if with_cause.len() > CONTEXT_RANGES {
            notes.push(format!(
                "{} more ranges with a cause shown without hex context",
                with_cause.len() - CONTEXT_RANGES
            ));
        }
        for (i, ctx) in explain::contexts(
            &bytes.ranges,
            &chosen,
            &|i| bytes.shift_at(bytes.ranges[i].offset),
            left,
            right,
        )
        .map_err(io_error(&left.path))?
        {
            ranges[i].context = Some(ctx);
        }
        let shifts = shift_diffs(bytes, left, right, &why)?;
        for s in &shifts {
            if !causes.contains(&s.cause) {
                causes.push(s.cause.clone());
            }
        }
        let tally = tally(&ranges, &shifts);
        let summary = summary(bytes, &tally, ranges.len() as u64, shifts.len());
        let tally = tally.into_iter().map(|(t, _)| t).collect();
        if let Some(at) = bytes.shifts_stopped {
            notes.push(format!(
                "no more insertions or removals looked for from {at:#x} (more than {} shifts, \
                 or {} searches that found no alignment): compared offset by offset from there",
                bytes::MAX_SHIFTS,
                bytes::MAX_FAILED_SEARCHES
            ));
        }
        if bytes.range_count > ranges.len() as u64 {
            notes.push(format!(
                "{} more ranges not explained",
                bytes.range_count - ranges.len() as u64
            ));
        }
        let mut sections: Vec<SectionDiff> = Vec::new();
        for s in elf.iter().flat_map(|m| &m.sections) {
            let n = bytes
                .ranges
                .iter()
                .filter(|r| r.offset < s.file.end() && s.file.offset < r.end())
                .count() as u64;
            if n > 0 {
                sections.push(SectionDiff {
                    name: s.name.clone(),
                    executable: s.executable,
                    ranges: n,
                });
            }
        }
        // Both ELF files: the section at the same place in both. A raw image: its layout's
        // section (the sizes are checked by `cover`).
        let section = |name: &str| {
            let own = elf.and_then(|m| m.sole_section(name))?;
            match &right_elf {
                Some(r) if r.sole_section(name)? != own => None,
                _ => Some(own),
            }
        };
        let candidates: Vec<&Allowance> = self.allowances(path).collect();
        let coverage = allow::cover(&candidates, &shape(judged), section);
        let allowances: Vec<AppliedAllowance> = coverage
            .applied
            .into_iter()
            .map(|(a, ranges)| AppliedAllowance {
                allowance: a.clone(),
                ranges,
            })
            .collect();
        let verdict = if coverage.complete {
            Verdict::Equivalent
        } else {
            notes.extend(coverage.notes);
            Verdict::Different
        };
        Ok(LeafDiff {
            path: path.to_owned(),
            change: Change::Changed,
            verdict,
            causes,
            metadata: Vec::new(),
            content: Some(ContentDiff {
                left_size: bytes.left_size,
                right_size: bytes.right_size,
                differing_bytes: bytes.differing_bytes,
                range_count: bytes.range_count,
                summary,
                tally,
                ranges,
                sections,
                shifts,
            }),
            allowances,
            notes,
        })
    }
}

/// Ranges and bytes per cause kind, in first-seen order, with the kind's nouns.
/// A shift counts as one range of its inserted or removed bytes.
fn tally(
    ranges: &[RangeDiff],
    shifts: &[ShiftDiff],
) -> Vec<(CauseTally, (&'static str, &'static str))> {
    let mut tally: Vec<(CauseTally, (&str, &str))> = Vec::new();
    let spans = ranges.iter().map(|r| (&r.cause, r.len)).chain(
        shifts
            .iter()
            .map(|s| (&s.cause, s.shift.inserted + s.shift.removed)),
    );
    for (cause, len) in spans {
        let kind = cause.kind();
        match tally.iter_mut().find(|(t, _)| t.kind == kind) {
            Some((t, _)) => {
                t.ranges += 1;
                t.bytes += len;
            }
            None => tally.push((
                CauseTally {
                    kind,
                    ranges: 1,
                    bytes: len,
                },
                cause.noun(),
            )),
        }
    }
    tally
}

/// "99 bytes differ in 12 ranges: 1 toolchain string, 11 shifted ranges", counted over the
/// `explained` ranges (the rest said as not explained).
fn summary(
    bytes: &ByteDiff,
    tally: &[(CauseTally, (&str, &str))],
    explained: u64,
    shifts: usize,
) -> String {
    let count = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut places = Vec::new();
    if bytes.range_count > 0 || shifts == 0 {
        places.push(count(bytes.range_count, "range", "ranges"));
    }
    if shifts > 0 {
        places.push(count(shifts as u64, "shift", "shifts"));
    }
    let verb = if bytes.differing_bytes == 1 {
        "differs"
    } else {
        "differ"
    };
    let mut line = format!(
        "{} {verb} in {}",
        count(bytes.differing_bytes, "byte", "bytes"),
        places.join(" and ")
    );
    let mut parts: Vec<String> = tally
        .iter()
        .map(|(t, (one, many))| count(t.ranges, one, many))
        .collect();
    if bytes.range_count > explained {
        parts.push(format!("{} not explained", bytes.range_count - explained));
    }
    if !parts.is_empty() {
        line.push_str(": ");
        line.push_str(&parts.join(", "));
    }
    line
}

/// The shifts of `bytes`, the first few with hex context from both sides at the shift.
///
/// Each shift is explained like a range: the bytes at the place it starts (the removed ones,
/// or the byte the insertion comes before), aligned as before it. Inserted into a toolchain
/// string, it is the string's version that changed; in code, it is code. When nothing else
/// explains it, its cause is [`Cause::Shifted`].
fn shift_diffs(
    bytes: &ByteDiff,
    left: &Blob,
    right: &Blob,
    why: &explain::Explainer<'_>,
) -> Result<Vec<ShiftDiff>, Error> {
    let mut shifts = Vec::new();
    for (i, s) in bytes.shifts.iter().enumerate() {
        let at = ByteRange {
            offset: s.left_offset,
            len: s.removed.max(1),
        };
        // Offsets are below 2^63 (file sizes).
        let before = i64::try_from(s.right_offset).unwrap_or(i64::MAX)
            - i64::try_from(s.left_offset).unwrap_or(i64::MAX);
        let explained = why.explain(at, before).map_err(io_error(&left.path))?;
        let (cause, string) = match explained.cause {
            Cause::Unknown => (Cause::Shifted { by: s.by }, None),
            cause => (cause, explained.string),
        };
        let context = if i < CONTEXT_RANGES {
            explain::contexts(&[at], &[0], &|_| before, left, right)
                .map_err(io_error(&left.path))?
                .pop()
                .map(|(_, c)| c)
        } else {
            None
        };
        shifts.push(ShiftDiff {
            shift: *s,
            cause,
            string,
            context,
        });
    }
    Ok(shifts)
}

/// The fill byte of a range that only one side has at its end, after a shift, when every
/// byte of it there is that fill (0x00 or 0xff): the other side's content moved into it.
fn taken_up_fill(
    r: ByteRange,
    shift: i64,
    bytes: &ByteDiff,
    left: &Blob,
    right: &Blob,
) -> std::io::Result<Option<u8>> {
    /// A longer tail is no padding a shift took up.
    const MAX_FILL: u64 = 4096;
    if bytes.shifts.is_empty() || r.len > MAX_FILL {
        return Ok(None);
    }
    let right_at = r.offset.saturating_add_signed(shift);
    let len = usize::try_from(r.len).unwrap_or(0);
    let held = if r.offset >= left.len {
        right.read_at(right_at, len)?
    } else if right_at >= right.len {
        left.read_at(r.offset, len)?
    } else {
        return Ok(None);
    };
    Ok(match held.first() {
        Some(&fill @ (0x00 | 0xff)) if held.len() == len && held.iter().all(|&b| b == fill) => {
            Some(fill)
        }
        _ => None,
    })
}

/// Compare two spans of bytes with positioned reads.
fn compare_blobs(left: &Blob, right: &Blob, mode: Mode) -> Result<ByteDiff, Error> {
    let span = |b: &Blob| {
        let file = b.reader().map_err(io_error(&b.path))?.into_inner();
        Ok::<_, Error>(FileSpan::new(file, b.offset, b.len))
    };
    let (l, r) = (span(left)?, span(right)?);
    bytes::compare(&l, &r, mode).map_err(io_error(&left.path))
}

/// What allowances are judged against: the sizes and the differing ranges.
fn shape(bytes: &ByteDiff) -> allow::Shape<'_> {
    allow::Shape {
        left_size: bytes.left_size,
        right_size: bytes.right_size,
        ranges: &bytes.ranges,
        complete: !bytes.is_truncated(),
    }
}

/// Matching keys for members: the path, with `#2`, `#3`… for repeats of a path.
fn keys(members: &[Member]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    members
        .iter()
        .map(|m| {
            let n = seen.entry(&m.path).or_default();
            *n += 1;
            if *n == 1 {
                m.path.clone()
            } else {
                format!("{}#{n}", m.path)
            }
        })
        .collect()
}

/// `archive_metadata` when every changed field is archive metadata proper (mtime, mode,
/// owner), `unknown` otherwise (a kind or link target is content).
pub(super) fn metadata_cause(fields: &[FieldChange]) -> Cause {
    if fields
        .iter()
        .all(|f| METADATA_FIELDS.contains(&f.field.as_str()))
    {
        Cause::ArchiveMetadata
    } else {
        Cause::Unknown
    }
}

pub(super) fn changed_fields(
    left: &[(&str, String)],
    right: &[(&str, String)],
) -> Vec<FieldChange> {
    left.iter()
        .filter_map(|(name, lv)| {
            let (_, rv) = right.iter().find(|(n, _)| n == name)?;
            (lv != rv).then(|| FieldChange {
                field: (*name).to_owned(),
                left: lv.clone(),
                right: rv.clone(),
            })
        })
        .collect()
}

/// The bytes of a member as a span on disk (`None` for entries without content).
fn materialize(
    content: &Content,
    zip: Option<(&Blob, &Blob, &Path)>,
    is_left: bool,
    budget: &mut Budget,
) -> Result<Option<Blob>, Fault> {
    match content {
        Content::None => Ok(None),
        Content::Blob(b) => Ok(Some(b.clone())),
        Content::Zip(i, _) => {
            let (l, r, dir) = zip.ok_or_else(|| "a zip entry outside a zip".to_owned())?;
            container::extract_zip(if is_left { l } else { r }, *i, dir, budget).map(Some)
        }
    }
}
