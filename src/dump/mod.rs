//! Dumps: the bytes read out of a deployed device's flash, checked against a release.
//!
//! [`check_dump`] owns the whole account of one dump. It keeps these invariants:
//!
//! - **One streaming pass, bounded memory.** The dump is never read whole: it is read once in
//!   buffers by the locator ([`locate`]), which also feeds the dump's digests when asked and
//!   classifies every 512-byte block as fill or data ([`locate::Blocks`]). Afterwards only
//!   what needs bytes is read again: a located copy (compared directly, and copied out to be
//!   explained when it differs), a part's candidate alignments, a blob region (hashed), the
//!   data blocks inside an erased or release region (judged byte by byte), the partial blocks
//!   at a span's ends, and whatever lies past the block runs the pass could keep. Gaps, fill
//!   and bootloader-like regions are judged from the blocks alone. Memory depends on the
//!   number of anchors, block runs (capped) and regions, never on the dump's size.
//! - **Parts.** Each payload and filesystem part (at least [`MIN_PART`] bytes) of an
//!   artifact's firmware map ([`crate::firmware`]) votes in the same pass. When the artifact
//!   is not found whole and identical, each part is placed on its own ([`PartPlacement`]). If
//!   the parts, each where it was found, hold more of the artifact than its best whole copy,
//!   the artifact is *not found whole*: its verdict is `missing` however identical the parts
//!   are (nothing vouches for what joins them), and each part found apart is a span of its own
//!   (reproduced where it is equal, vouching for nothing outside its span). `unlocated` counts
//!   the artifact's bytes in no identical copy.
//! - **Allowances** (`Options::compare`, the recipe's `[[allow]]` or `diff --allow-*`) judge a
//!   copy that differs as `reprove diff` judges a file: offset by offset on the window it was
//!   found at. An `equivalent` copy lists them; its allowed bytes are `masked`. Bytes inserted
//!   before a copy under a forged start are outside the window: a `release` region's bytes
//!   that are neither an artifact nor fill fail the region, so with a layout such a copy
//!   cannot pass; without one, they are unexplained data beside it.
//! - **Every byte lands in exactly one class** of [`Coverage`]. The dump is cut into spans, in
//!   offset order, without overlap: a placed artifact first (bytes equal to the release are
//!   `reproduced`, the others `unexplained`), then the layout's regions (`device-data` is
//!   `masked`; `erased` is `erased` where it holds its fill and `unexplained` elsewhere; a
//!   `blob` is `pinned` when its digest matches its `[[blob]]`, `unexplained` otherwise; a
//!   `bootloader`, `config` or `other` region is `unexplained` but for its fill, listed by name), and what is
//!   left are gaps: runs of fill (one 512-byte block of 0xff or 0x00 at a time) are "unlisted
//!   fill" and count as `erased`, anything else is `unexplained`.
//! - **A placement is either declared or found.** A `release` region naming an artifact puts it
//!   at the region's offset; any other artifact is located by content, and the best alignment
//!   is compared byte for byte. A copy that differs is explained by [`crate::compare`]: the
//!   dump's window against the release, as `reprove diff` would.
//! - **The verdict** is the worst of: each artifact (`identical`, or as the comparison says;
//!   `missing` when it is not found or not wholly inside the dump), each erased region
//!   (`different` when anything but the fill is there), each release region (`different`
//!   when anything but artifacts and fill is there), each blob region (`different` when its
//!   digest does not match or no pin is known), each second copy of an artifact that differs
//!   ([`SecondCopy`]: another alignment many anchors voted for, at most a quarter of its bytes
//!   differing, wherever it lies). Unexplained bytes elsewhere are listed and counted, but a
//!   bootloader or an unlisted gap fails nothing on its own (the text's last line counts them).
//! - **Required artifacts**: with a layout whose `release` regions name artifacts, only those;
//!   without, every artifact but an archive beside non-archives (the shipped bundle). One that
//!   is not required and not there identically is not placed. Nothing found: `missing`.
//! - **A misplacing layout**: a declared artifact is looked for by content too; an identical
//!   copy elsewhere is named ([`Placement::found_elsewhere`]), the check still fails, and the
//!   layout's offset reproduces nothing.
//! - **Hostile input**: sizes and offsets are checked or saturating; a layout region past the
//!   dump's end is reported, not read; lists of runs are capped ([`MAX_RUNS`]) with the
//!   remainder counted.

pub(crate) mod locate;
pub(crate) mod own;
pub(crate) mod seek;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::Comparison;
use crate::coverage::Coverage;
use crate::hash::{Algorithm, Hashes};
use crate::recipe::blob::Blob;
use crate::recipe::flash::{FlashLayout, Region, RegionKind};
use crate::verify::Verdict;

use locate::{read_at_most, Alignment, Blocks, Piece, Wanted, BLOCK, CHUNK};

/// Runs listed per span, at most (the rest are counted).
pub(crate) const MAX_RUNS: usize = 16;
/// Parts of an artifact smaller than this are not looked for on their own.
pub(crate) const MIN_PART: u64 = 4096;
/// Non-fill bytes closer than this in an erased region are one run.
const JOIN: u64 = 64;

/// Why a dump could not be checked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the layout's region `{region}` holds `{artifact}`, which is not a release artifact")]
    UnknownArtifact { region: String, artifact: String },
    #[error(transparent)]
    Compare(#[from] crate::compare::Error),
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// One artifact of the release: how reports name it, its file, and what vouches for its bytes
/// (`identical` for a release given as it is; a verification's verdict for the artifact when
/// its shipped file stands for the rebuilt one).
#[derive(Debug, Clone)]
pub(crate) struct Release {
    pub name: String,
    pub path: PathBuf,
    pub vouched: Verdict,
}

/// What a dump check knows beyond the dump and the release.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub layout: Option<FlashLayout>,
    /// Where the layout came from, for reports (`recipe`, a file's path).
    pub layout_source: Option<String>,
    pub blobs: Vec<Blob>,
    /// How the differing copy of an artifact is explained.
    pub compare: crate::compare::Options,
    /// Compute the dump's digests in the locating pass (for an attestation).
    pub digest: bool,
}

/// The account of one dump.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DumpReport {
    pub dump: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Hashes>,
    pub verdict: Verdict,
    /// Where the layout came from, as text shows it (`` `layout.toml` ``); written without
    /// the Markdown backticks (`layout.toml`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "without_backticks"
    )]
    pub layout: Option<String>,
    pub placements: Vec<Placement>,
    /// The dump cut into spans, in offset order, together every byte once.
    pub spans: Vec<Span>,
    pub coverage: Coverage,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The partition tables the dump holds ([`own`]), used or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dump_tables: Vec<own::Table>,
}

/// How a placement was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PlacedBy {
    /// Found by content.
    Content,
    /// A `release` region of the layout names the artifact.
    Layout,
    /// Found by the anchors of its attested locator, without its file ([`seek`]).
    Locator,
}

/// Where one release artifact sits in the dump, and how its copy compares.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Placement {
    pub artifact: String,
    pub size: u64,
    pub sha256: crate::hash::Checksum,
    /// Dump offset of the artifact's first byte; `None`: not found. Negative: the dump starts
    /// inside the artifact.
    pub offset: Option<i64>,
    pub placed_by: PlacedBy,
    /// Anchors that agreed on the offset (found by content).
    pub votes: u32,
    /// Bytes of the artifact that differ in the dump.
    pub differing: u64,
    /// Bytes of the artifact outside the dump.
    pub missing: u64,
    pub verdict: Verdict,
    /// Bytes of the artifact that no identical copy in the dump holds: when the artifact was
    /// found whole, those that differ or fall outside the dump; when it was not, those outside
    /// every part found identical.
    pub unlocated: u64,
    /// The allowances that covered the copy's differences (an `equivalent` copy), with the
    /// byte ranges each covered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<crate::compare::AppliedAllowance>,
    /// Each part of the artifact's map located on its own, when the artifact was not found
    /// whole and identical (see the module docs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartPlacement>,
    /// The dump's copy against the release, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// What vouched for the release file ([`Release::vouched`]); not written, the verdict
    /// already holds it.
    #[serde(skip)]
    pub vouched: Verdict,
    /// Anchors of the attested locator, when the copy was found and checked without the file
    /// ([`seek`]): by its digests alone, so `differing` is every byte inside the dump of a
    /// copy that does not have them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors: Option<u32>,
    /// Why the artifact is not required in the dump (`not in the flash layout`, `not required
    /// (an archive the other artifacts came from)`); `None`: required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_required: Option<String>,
    /// Other strong alignments of the artifact, away from its placement, compared byte for
    /// byte: a second copy (an A/B bank, a recovery image). One that differs fails the check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<SecondCopy>,
    /// Where an identical copy was found by content, when the layout places the artifact
    /// elsewhere and its copy there is not identical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_elsewhere: Option<i64>,
}

/// Another copy of an artifact in the dump, besides the one placed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SecondCopy {
    pub offset: i64,
    pub votes: u32,
    pub differing: u64,
    pub missing: u64,
    /// `identical`, `different`, or `missing` (partly outside the dump).
    pub verdict: Verdict,
}

/// A copy's bytes that may differ, at most, for an alignment to count as a second copy (a
/// quarter of the artifact): fewer equal bytes are chance or a shared part, not a copy.
const COPY_SHARE: u64 = 4;

/// Archive names a shipped bundle has.
const ARCHIVE_ENDINGS: [&str; 9] = [
    ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst", ".zip", ".cpio",
];

/// Whether `name` is an archive's (by its ending).
pub(crate) fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ARCHIVE_ENDINGS.iter().any(|e| lower.ends_with(e))
}

/// Where one part of an artifact (a payload or a filesystem of its firmware map) sits in the
/// dump, located on its own and compared byte for byte.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartPlacement {
    /// `artifact//part`, as comparisons name parts.
    pub part: String,
    /// Where the part lies in the artifact.
    pub part_offset: u64,
    pub size: u64,
    /// Dump offset of the part's first byte; `None`: not found.
    pub offset: Option<i64>,
    pub votes: u32,
    pub differing: u64,
    pub missing: u64,
    /// `identical`, `different` (some bytes differ) or `missing` (not found, or not wholly in
    /// the dump); never better than what vouches for the artifact.
    pub verdict: Verdict,
    /// Whether the part sits where the artifact's whole copy puts it (its bytes are then the
    /// whole copy's, counted there).
    pub in_copy: bool,
}

/// What a span of the dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SpanKind {
    /// A placed release artifact.
    Artifact,
    /// A region of the layout (its kind in `region_kind`).
    Region,
    /// Bytes no region or artifact covers, holding only fill.
    UnlistedFill,
    /// Bytes no region or artifact covers, holding data.
    Unlisted,
}

/// How a span checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// An artifact's bytes equal the release's; a blob matching its pin; fill only.
    Ok,
    /// An artifact's copy that differs; an erased region holding more than its fill; a blob
    /// not matching its pin (or with no pin).
    Failed,
    /// Device data, masked.
    Masked,
    /// Bytes nothing vouches for (a bootloader, config, unlisted data).
    Unexplained,
}

/// A run of bytes inside a span: non-fill bytes of an erased region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Run {
    pub offset: u64,
    pub length: u64,
}

/// One span of the dump.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Span {
    pub offset: u64,
    pub length: u64,
    pub kind: SpanKind,
    /// The region's or the artifact's name (none for gaps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_kind: Option<RegionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<u8>,
    pub status: Status,
    /// What went wrong or what the bytes are, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Non-fill runs of an erased region (at most [`MAX_RUNS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Run>,
    pub coverage: Coverage,
    /// Where the dump describes the region itself ([`Region::described_by`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks `dump` against the release `releases`: places each artifact, accounts for every
/// byte, decides the verdict (see the module docs).
pub(crate) fn check_dump(
    dump_path: &Path,
    shown_as: &str,
    releases: &[Release],
    opts: &Options,
) -> Result<DumpReport, Error> {
    let dump = crate::beneath::open_regular(dump_path).map_err(|e| match e {
        crate::beneath::Error::Io { path, source } => Error::Io { path, source },
        e => io_at(dump_path)(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
    })?;
    let size = dump.metadata().map_err(io_at(dump_path))?.len();
    let mut files = Vec::with_capacity(releases.len());
    for r in releases {
        let f = crate::beneath::open_regular(&r.path).map_err(|e| match e {
            crate::beneath::Error::Io { path, source } => Error::Io { path, source },
            e => io_at(&r.path)(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
        })?;
        let len = f.metadata().map_err(io_at(&r.path))?.len();
        files.push((f, len));
    }
    let regions: &[Region] = opts.layout.as_ref().map_or(&[], |l| &l.regions);
    // Artifacts a `release` region places: compared there, not looked for.
    let mut declared: Vec<Option<u64>> = vec![None; releases.len()];
    for r in regions {
        if let Some(a) = &r.artifact {
            let i = releases.iter().position(|x| x.name == *a).ok_or_else(|| {
                Error::UnknownArtifact {
                    region: r.name.clone(),
                    artifact: a.clone(),
                }
            })?;
            declared[i] = Some(r.offset);
        }
    }
    // Each artifact's parts, indexed in the same pass: looked at when the whole is not found.
    let part_specs: Vec<Vec<PartSpec>> = files
        .iter()
        .zip(&declared)
        .map(|((f, len), d)| {
            if d.is_none() {
                artifact_parts(f, *len)
            } else {
                Vec::new()
            }
        })
        .collect();
    // Every artifact is looked for by content, a declared one too: a copy elsewhere (a second
    // bank, a release the layout misplaces) must be seen.
    let wanted: Vec<Wanted<'_>> = files
        .iter()
        .zip(&part_specs)
        .map(|((f, len), parts)| Wanted {
            file: f,
            len: *len,
            parts: parts.iter().map(|p| (p.offset, p.len)).collect(),
        })
        .collect();
    let mut sha = opts.digest.then(<sha2::Sha256 as sha2::Digest>::new);
    let mut b3 = opts.digest.then(blake3::Hasher::new);
    let found = locate::locate(&dump, size, &wanted, &mut |chunk| {
        if let (Some(sha), Some(b3)) = (sha.as_mut(), b3.as_mut()) {
            rayon::join(
                || sha2::Digest::update(sha, chunk),
                || {
                    b3.update(chunk);
                },
            );
        }
    })
    .map_err(|e| interrupted_or(e, dump_path))?;
    let digest = match (sha, b3) {
        (Some(sha), Some(b3)) => Some(Hashes {
            size,
            sha256: crate::hash::Checksum::sha256(sha2::Digest::finalize(sha).into()),
            blake3: crate::hash::Checksum::blake3(*b3.finalize().as_bytes()),
        }),
        _ => None,
    };
    let notes = found.notes;
    let blocks = found.blocks;
    let mut best = found.best.into_iter();
    let mut part_votes = found.part_votes.into_iter();
    let mut candidates = found.candidates.into_iter();
    let required = required(releases, regions);
    let mut placements = Vec::with_capacity(releases.len());
    for (i, r) in releases.iter().enumerate() {
        let by_content = best.next().flatten();
        let votes = part_votes.next().unwrap_or_default();
        let others = candidates.next().unwrap_or_default();
        let (file, len) = (&files[i].0, files[i].1);
        let w = Wanted {
            file,
            len,
            parts: Vec::new(),
        };
        let (alignment, placed_by, votes) = match declared[i] {
            Some(offset) => {
                let start = i128::from(offset);
                let (differing, missing) = locate::compare_at(&dump, size, &w, start)
                    .map_err(|e| interrupted_or(e, dump_path))?;
                let a = Alignment {
                    start,
                    votes: 0,
                    differing,
                    missing,
                };
                (Some(a), PlacedBy::Layout, Vec::new())
            }
            None => (by_content.clone(), PlacedBy::Content, votes),
        };
        let found_parts = if alignment
            .as_ref()
            .is_some_and(|a| a.differing == 0 && a.missing == 0)
        {
            Vec::new()
        } else {
            locate_parts(
                &dump,
                size,
                r,
                file,
                &part_specs[i],
                &votes,
                alignment.as_ref(),
            )
            .map_err(|e| interrupted_or(e, dump_path))?
        };
        // The parts, each where it was found, hold more of the artifact's bytes than the best
        // whole copy: the artifact is not in the dump as one file, whatever that alignment's
        // window holds (its equal bytes there would be chance).
        let whole_equal = alignment
            .as_ref()
            .map_or(0, |a| len.saturating_sub(a.differing + a.missing));
        let parts_equal: u64 = found_parts
            .iter()
            .filter(|p| p.offset.is_some())
            .map(|p| p.size.saturating_sub(p.differing + p.missing))
            .fold(0, u64::saturating_add);
        let apart = found_parts.iter().any(|p| p.offset.is_some() && !p.in_copy);
        let split = apart && parts_equal > whole_equal;
        let alignment = if split { None } else { alignment };
        let mut p = place(&dump, size, r, &w, alignment, placed_by, shown_as, opts)?;
        p.parts = found_parts;
        if split || p.offset.is_none() {
            for part in &mut p.parts {
                part.in_copy = false;
            }
            p.unlocated = len.saturating_sub(identical_bytes(&p.parts));
        }
        if placed_by == PlacedBy::Layout && p.verdict != Verdict::Identical {
            // The layout may be wrong, or the device: say where the release really is.
            p.found_elsewhere = by_content
                .as_ref()
                .filter(|a| a.differing == 0 && a.missing == 0)
                .and_then(|a| i64::try_from(a.start).ok())
                .filter(|&at| Some(at) != p.offset);
        }
        p.not_required.clone_from(&required[i]);
        if p.not_required.is_some() && p.verdict != Verdict::Identical {
            // Not required and not there as it is: an archive's stored bytes matching partly,
            // or a file the flash does not hold. Nothing is placed.
            p.offset = None;
            p.parts.clear();
            p.comparison = None;
            p.allowances.clear();
            p.differing = 0;
            p.missing = len;
            p.unlocated = len;
        }
        if p.offset.is_some() {
            p.copies = second_copies(&dump, size, &w, &p, &others)
                .map_err(|e| interrupted_or(e, dump_path))?;
        }
        placements.push(p);
    }
    settle(
        &Dump {
            file: &dump,
            path: dump_path,
            shown_as,
            size,
        },
        digest,
        &blocks,
        placements,
        notes,
        opts,
    )
}

/// The dump being checked, as [`settle`] reads it.
pub(super) struct Dump<'a> {
    pub file: &'a File,
    pub path: &'a Path,
    pub shown_as: &'a str,
    pub size: u64,
}

/// The account of a dump once its artifacts are placed: every byte cut into spans (placements,
/// then regions, then gaps) and classed, the verdict the worst of the placements and the
/// failed regions, and the notes on a layout that does not fit the dump. Shared by
/// [`check_dump`] and [`seek::check_dump_by_locators`], so both judge the rest of a dump alike.
pub(super) fn settle(
    dump: &Dump<'_>,
    digest: Option<Hashes>,
    blocks: &locate::Blocks,
    placements: Vec<Placement>,
    mut notes: Vec<String>,
    opts: &Options,
) -> Result<DumpReport, Error> {
    let (size, dump_path) = (dump.size, dump.path);
    let regions: &[Region] = opts.layout.as_ref().map_or(&[], |l| &l.regions);
    let mut spans = Vec::new();
    let mut coverage = Coverage::default();
    let mut verdict = placements
        .iter()
        .filter(|p| p.not_required.is_none())
        .map(|p| p.verdict)
        .chain(placements.iter().flat_map(|p| &p.copies).map(|c| c.verdict))
        .fold(Verdict::Identical, Verdict::worst);
    if !placements.is_empty() && placements.iter().all(|p| p.offset.is_none()) {
        // Not one artifact of the release is in the dump.
        verdict = verdict.worst(Verdict::Missing);
    }
    for span in cut(size, &placements, regions) {
        let span = account(dump.file, dump_path, blocks, span, &placements, opts)?;
        if span.status == Status::Failed && span.kind == SpanKind::Region {
            verdict = verdict.worst(Verdict::Different);
        }
        coverage.add(&span.coverage);
        spans.push(span);
    }
    if let Some(flash) = opts.layout.as_ref().and_then(|l| l.size) {
        if flash != size {
            notes.push(format!(
                "the layout describes a flash of {flash} bytes, the dump has {size}"
            ));
        }
    }
    for r in regions.iter().filter(|r| r.end() > size) {
        notes.push(format!(
            "the region `{}` ends at {:#x}, past the dump's end {size:#x}: its bytes there were not read",
            r.name,
            r.end()
        ));
        if matches!(r.kind, RegionKind::Release | RegionKind::Blob) {
            verdict = verdict.worst(Verdict::Missing);
        }
    }
    Ok(DumpReport {
        dump: dump.shown_as.to_owned(),
        size,
        digest,
        verdict,
        layout: opts.layout_source.clone(),
        placements,
        spans,
        coverage,
        notes,
        dump_tables: Vec::new(),
    })
}

#[allow(clippy::ref_option)]
fn without_backticks<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => serializer.serialize_some(&t.replace('`', "")),
        None => serializer.serialize_none(),
    }
}

/// Deterministic bytes that repeat nowhere a test would look (a linear congruential
/// generator), for the dump tests: one copy for all of them.
#[cfg(test)]
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (s >> 33).to_le_bytes()[0]
        })
        .collect()
}

fn interrupted_or(e: io::Error, path: &Path) -> Error {
    if let Some(i) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::interrupt::Interrupted>())
    {
        return Error::Interrupted(*i);
    }
    io_at(path)(e)
}

#[allow(clippy::too_many_arguments)]
fn place(
    dump: &File,
    size: u64,
    release: &Release,
    w: &Wanted<'_>,
    alignment: Option<Alignment>,
    placed_by: PlacedBy,
    shown_as: &str,
    opts: &Options,
) -> Result<Placement, Error> {
    let sha256 = crate::hash::hash_file(&release.path)
        .map_err(io_at(&release.path))?
        .sha256;
    let Some(a) = alignment else {
        return Ok(Placement {
            artifact: release.name.clone(),
            size: w.len,
            sha256,
            offset: None,
            placed_by,
            votes: 0,
            differing: 0,
            missing: w.len,
            verdict: release.vouched.worst(Verdict::Missing),
            unlocated: w.len,
            allowances: Vec::new(),
            parts: Vec::new(),
            comparison: None,
            vouched: release.vouched,
            anchors: None,
            not_required: None,
            copies: Vec::new(),
            found_elsewhere: None,
        });
    };
    let offset = i64::try_from(a.start).ok();
    let mut verdict = release.vouched;
    let mut comparison = None;
    let mut allowances = Vec::new();
    if a.differing > 0 || a.missing > 0 {
        let c = explain(dump, size, release, w.len, a.start, shown_as, opts)?;
        verdict = verdict.worst(match c.verdict {
            crate::compare::Verdict::Identical => Verdict::Identical,
            crate::compare::Verdict::Equivalent => Verdict::Equivalent,
            crate::compare::Verdict::Different => Verdict::Different,
        });
        if a.missing > 0 {
            verdict = verdict.worst(Verdict::Missing);
        }
        if c.verdict == crate::compare::Verdict::Equivalent {
            allowances = c
                .leaves
                .iter()
                .flat_map(|l| l.allowances.iter().cloned())
                .collect();
        }
        comparison = Some(c);
    }
    Ok(Placement {
        artifact: release.name.clone(),
        size: w.len,
        sha256,
        offset,
        placed_by,
        votes: a.votes,
        differing: a.differing,
        missing: a.missing,
        verdict,
        unlocated: a.differing.saturating_add(a.missing).min(w.len),
        allowances,
        parts: Vec::new(),
        comparison,
        vouched: release.vouched,
        anchors: None,
        not_required: None,
        copies: Vec::new(),
        found_elsewhere: None,
    })
}

/// Why each of `releases` is not required in the dump (`None`: required). With a layout whose
/// `release` regions name artifacts, only those are required; without one, an archive is not
/// when the release has other artifacts (a shipped bundle is not flashed: its members are).
fn required(releases: &[Release], regions: &[Region]) -> Vec<Option<String>> {
    let named: Vec<&str> = regions
        .iter()
        .filter(|r| r.kind == RegionKind::Release)
        .filter_map(|r| r.artifact.as_deref())
        .collect();
    let plain = releases.iter().any(|r| !is_archive(&r.name));
    releases
        .iter()
        .map(|r| {
            if !named.is_empty() {
                (!named.contains(&r.name.as_str())).then(|| "not in the flash layout".to_owned())
            } else if plain && is_archive(&r.name) {
                Some("not required (an archive the other artifacts came from)".to_owned())
            } else {
                None
            }
        })
        .collect()
}

/// The alignments of `others` (the artifact's candidates, most votes first) that hold a copy
/// of it away from its placement `p`: at most a quarter of its bytes differing, not
/// overlapping the placed copy (nor the identical copy a misplacing layout missed).
fn second_copies(
    dump: &File,
    size: u64,
    w: &Wanted<'_>,
    p: &Placement,
    others: &[(i128, u32)],
) -> io::Result<Vec<SecondCopy>> {
    let Some(at) = p.offset else {
        return Ok(Vec::new());
    };
    let len = i128::from(w.len);
    let at = i128::from(at);
    let top = others.iter().map(|c| c.1).max().unwrap_or(0);
    let mut out: Vec<SecondCopy> = Vec::new();
    for &(start, votes) in others {
        // Many anchors, not a few: a second origin most of the artifact votes for.
        if votes < 2 || votes.saturating_mul(8) < top {
            continue;
        }
        let overlaps = |o: i128| start < o.saturating_add(len) && o < start.saturating_add(len);
        if overlaps(at)
            || p.found_elsewhere.is_some_and(|e| overlaps(i128::from(e)))
            || out.iter().any(|c| overlaps(i128::from(c.offset)))
        {
            continue;
        }
        let (differing, missing) = locate::compare_at(dump, size, w, start)?;
        if differing.saturating_add(missing) > w.len / COPY_SHARE {
            continue;
        }
        let verdict = if missing > 0 {
            Verdict::Missing
        } else if differing > 0 {
            Verdict::Different
        } else {
            Verdict::Identical
        };
        if let Ok(offset) = i64::try_from(start) {
            out.push(SecondCopy {
                offset,
                votes,
                differing,
                missing,
                verdict,
            });
        }
    }
    out.sort_by_key(|c| c.offset);
    Ok(out)
}

/// A part of an artifact to look for on its own.
#[derive(Debug, Clone)]
struct PartSpec {
    name: String,
    offset: u64,
    len: u64,
}

/// The parts of an artifact looked for on their own: the payloads and filesystems of its
/// firmware map ([`crate::firmware`]) of at least [`MIN_PART`] bytes, in offset order. Headers
/// and padding are not: a header is rewritten by installers, padding is fill anywhere. An
/// artifact of no format this crate reads, or whose map is damaged, has none.
fn artifact_parts(file: &File, len: u64) -> Vec<PartSpec> {
    use crate::firmware::Role;
    let Ok(Some(format)) = crate::firmware::identify(file) else {
        return Vec::new();
    };
    let Ok(map) = crate::firmware::map(format, file) else {
        return Vec::new();
    };
    let mut parts: Vec<PartSpec> = map
        .parts
        .into_iter()
        .filter(|p| {
            p.packed.is_none()
                && matches!(p.role, Role::Payload | Role::Filesystem)
                && p.len >= MIN_PART
                && p.offset.checked_add(p.len).is_some_and(|end| end <= len)
        })
        .map(|p| PartSpec {
            name: p.name,
            offset: p.offset,
            len: p.len,
        })
        .collect();
    parts.sort_by_key(|p| p.offset);
    // The map's spans never overlap; a part as large as the artifact says nothing new.
    parts.retain(|p| p.len < len);
    parts
}

impl PartPlacement {
    /// Found, wholly inside the dump, every byte equal.
    pub(crate) fn is_found(&self) -> bool {
        self.offset.is_some() && self.differing == 0 && self.missing == 0
    }
}

/// Bytes of the artifact that its parts found identical hold.
fn identical_bytes(parts: &[PartPlacement]) -> u64 {
    parts
        .iter()
        .filter(|p| p.is_found())
        .map(|p| p.size)
        .fold(0, u64::saturating_add)
}

/// Each part of `specs` located on its own: the alignments its own anchors voted for (and the
/// whole copy's, when there is one) compared byte for byte, the fewest differing bytes winning.
fn locate_parts(
    dump: &File,
    size: u64,
    release: &Release,
    file: &File,
    specs: &[PartSpec],
    votes: &[Vec<(i128, u32)>],
    whole: Option<&Alignment>,
) -> io::Result<Vec<PartPlacement>> {
    let mut out = Vec::with_capacity(specs.len());
    for (j, spec) in specs.iter().enumerate() {
        let mut candidates = votes.get(j).cloned().unwrap_or_default();
        if let Some(w) = whole {
            if !candidates.iter().any(|c| c.0 == w.start) {
                candidates.push((w.start, 0));
            }
        }
        let best = locate::best_of(dump, size, file, (spec.offset, spec.len), &candidates)?;
        let part = format!("{}//{}", release.name, spec.name);
        let placement = match best {
            None => PartPlacement {
                part,
                part_offset: spec.offset,
                size: spec.len,
                offset: None,
                votes: 0,
                differing: 0,
                missing: spec.len,
                verdict: release.vouched.worst(Verdict::Missing),
                in_copy: false,
            },
            Some(a) => {
                let verdict = if a.missing > 0 {
                    Verdict::Missing
                } else if a.differing > 0 {
                    Verdict::Different
                } else {
                    Verdict::Identical
                };
                PartPlacement {
                    part,
                    part_offset: spec.offset,
                    size: spec.len,
                    offset: i64::try_from(a.start).ok(),
                    votes: a.votes,
                    differing: a.differing,
                    missing: a.missing,
                    verdict: release.vouched.worst(verdict),
                    in_copy: whole.is_some_and(|w| {
                        w.start.saturating_add(i128::from(spec.offset)) == a.start
                    }),
                }
            }
        };
        out.push(placement);
    }
    Ok(out)
}

/// The dump's window at `start` against the release, as `reprove diff` explains it. The window
/// is copied to a temporary file (as large as the artifact at most).
fn explain(
    dump: &File,
    size: u64,
    release: &Release,
    len: u64,
    start: i128,
    shown_as: &str,
    opts: &Options,
) -> Result<Comparison, Error> {
    let from = u64::try_from(start.clamp(0, i128::from(size))).unwrap_or(0);
    let to = u64::try_from(
        start
            .saturating_add(i128::from(len))
            .clamp(0, i128::from(size)),
    )
    .unwrap_or(0);
    let tmp_dir = tempfile::tempdir().map_err(io_at(Path::new("a temporary folder")))?;
    let window_path = tmp_dir.path().join(&release.name);
    let mut window = File::create(&window_path).map_err(io_at(&window_path))?;
    let mut buf = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        crate::interrupt::check()?;
        let want = usize::try_from((to - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = read_at_most(dump, at, &mut buf[..want]).map_err(io_at(&window_path))?;
        if n == 0 {
            break;
        }
        window.write_all(&buf[..n]).map_err(io_at(&window_path))?;
        at += n as u64;
    }
    drop(window);
    let mut compare = opts.compare.clone();
    compare.shown_as = Some((
        release.path.to_string_lossy().into_owned(),
        format!("{shown_as}@{from:#x}"),
        compare
            .layout
            .as_ref()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ));
    compare.layout_name = Some(release.name.clone());
    // A recipe's allowances name artifacts by their shipped name; the comparison names the
    // leaf by the release file's name, so those about this artifact are handed over as about
    // that file. Judged offset by offset on the window, as `reprove diff` judges them.
    let file_name = release
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    compare.allowances = std::mem::take(&mut compare.allowances)
        .into_iter()
        .filter(|a| a.artifact.as_deref().is_none_or(|n| n == release.name))
        .map(|mut a| {
            if a.artifact.is_some() && file_name.as_deref() != Some(&release.name) {
                a.artifact = None;
            }
            a
        })
        .collect();
    Ok(crate::compare::diff_paths(
        &release.path,
        &window_path,
        &compare,
    )?)
}

/// A piece of the dump before it is read: who owns it.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Placement(usize),
    /// Part `.1` of placement `.0`, found apart from the artifact's whole copy.
    Part(usize, usize),
    Region(usize),
    Gap,
}

/// The dump `[0, size)` cut into owned pieces, in order: placements (the earlier of two that
/// overlap keeps its bytes; whole copies before parts found apart), then regions, then gaps.
fn cut(size: u64, placements: &[Placement], regions: &[Region]) -> Vec<(u64, u64, Owner)> {
    let mut placed: Vec<(u64, u64, Owner)> = Vec::new();
    let mut take = |offset: Option<i64>, len: u64, owner: Owner| {
        let Some(start) = offset else { return };
        let end = start.saturating_add(i64::try_from(len).unwrap_or(i64::MAX));
        let (start, end) = (
            u64::try_from(start.max(0)).unwrap_or(0).min(size),
            u64::try_from(end.max(0)).unwrap_or(0).min(size),
        );
        if start < end && !placed.iter().any(|&(s, e, _)| start < e && s < end) {
            placed.push((start, end, owner));
        }
    };
    for (i, p) in placements.iter().enumerate() {
        take(p.offset, p.size, Owner::Placement(i));
    }
    for (i, p) in placements.iter().enumerate() {
        for (j, part) in p.parts.iter().enumerate() {
            if !part.in_copy && part.missing == 0 {
                take(part.offset, part.size, Owner::Part(i, j));
            }
        }
    }
    placed.sort_unstable_by_key(|&(s, _, _)| s);
    let mut pieces = Vec::new();
    let mut at = 0u64;
    while at < size {
        if let Some(&(_, end, owner)) = placed.iter().find(|&&(s, e, _)| s <= at && at < e) {
            pieces.push((at, end, owner));
            at = end;
            continue;
        }
        let next_placed = placed
            .iter()
            .map(|&(s, _, _)| s)
            .filter(|&s| s > at)
            .min()
            .unwrap_or(size);
        if let Some((i, r)) = regions
            .iter()
            .enumerate()
            .find(|(_, r)| r.offset <= at && at < r.end())
        {
            let end = r.end().min(next_placed).min(size);
            pieces.push((at, end, Owner::Region(i)));
            at = end;
            continue;
        }
        let next_region = regions
            .iter()
            .map(|r| r.offset)
            .filter(|&s| s > at)
            .min()
            .unwrap_or(size);
        let end = next_placed.min(next_region).min(size);
        pieces.push((at, end, Owner::Gap));
        at = end;
    }
    pieces
}

fn account(
    dump: &File,
    path: &Path,
    blocks: &Blocks,
    (start, end, owner): (u64, u64, Owner),
    placements: &[Placement],
    opts: &Options,
) -> Result<Span, Error> {
    let length = end - start;
    let mut span = Span {
        offset: start,
        length,
        kind: SpanKind::Region,
        name: None,
        region_kind: None,
        reason: None,
        fill: None,
        status: Status::Ok,
        detail: None,
        runs: Vec::new(),
        coverage: Coverage::default(),
        source: None,
    };
    match owner {
        Owner::Placement(i) => {
            let p = &placements[i];
            span.kind = SpanKind::Artifact;
            span.name = Some(p.artifact.clone());
            // Bytes of an artifact that was not reproduced vouch for nothing; nor do those of a
            // copy the layout misplaces (its equal bytes there are chance, often fill).
            let differing = if p.vouched.passed(false) && p.found_elsewhere.is_none() {
                p.differing.min(length)
            } else {
                length
            };
            span.coverage.reproduced = length - differing;
            if p.verdict == Verdict::Equivalent && p.vouched.passed(false) {
                // Every differing byte is one an allowance covers: masked, as the coverage of
                // a verification counts an equivalent artifact's allowed bytes.
                span.coverage.masked = differing;
                span.detail = Some(format!(
                    "equivalent: {differing} bytes differ where an allowance covers them"
                ));
            } else {
                span.coverage.unexplained = differing;
                if p.verdict != Verdict::Identical {
                    span.status = Status::Failed;
                    span.detail = Some(format!("{}: {differing} bytes differ", p.verdict));
                }
            }
        }
        Owner::Part(i, j) => {
            let p = &placements[i];
            let part = &p.parts[j];
            span.kind = SpanKind::Artifact;
            span.name = Some(part.part.clone());
            // A part vouches for its own bytes only, and only when the artifact's do.
            let differing = if p.vouched.passed(false) {
                part.differing.min(length)
            } else {
                length
            };
            span.coverage.reproduced = length - differing;
            span.coverage.unexplained = differing;
            if part.verdict == Verdict::Identical {
                span.detail = Some(format!("a part of `{}`, found apart", p.artifact));
            } else {
                span.status = Status::Failed;
                span.detail = Some(format!(
                    "a part of `{}`, found apart: {}: {differing} bytes differ",
                    p.artifact, part.verdict
                ));
            }
        }
        Owner::Gap => {
            let mut classes = gap_runs(dump, path, blocks, start, end)?;
            trim_runs(dump, path, &mut classes)?;
            let what = classes.listed.first().map(|run| describe(dump, run.offset));
            let mut span = merge_gap(start, length, classes);
            if let (Some(detail), Some(what)) = (span.detail.as_mut(), what) {
                let _ = write!(detail, ": {what}");
            }
            return Ok(span);
        }
        Owner::Region(i) => {
            let regions = opts.layout.as_ref().map_or(&[][..], |l| &l.regions[..]);
            let r = &regions[i];
            span.name = Some(r.name.clone());
            span.region_kind = Some(r.kind);
            span.reason.clone_from(&r.reason);
            span.source.clone_from(&r.described_by);
            match r.kind {
                // Only a declared region masks: a dump's word about itself never does.
                RegionKind::DeviceData if r.described_by.is_none() => {
                    span.status = Status::Masked;
                    span.coverage.masked = length;
                }
                RegionKind::Erased => {
                    let fill = r.fill_byte();
                    span.fill = Some(fill);
                    let (foreign, runs, more) =
                        foreign_runs(dump, path, blocks, (start, end), fill)?;
                    span.coverage.erased = length - foreign;
                    span.coverage.unexplained = foreign;
                    if foreign > 0 {
                        span.status = Status::Failed;
                        let what = match runs.first() {
                            Some(run) => describe(dump, run.offset),
                            None => "data".to_owned(),
                        };
                        let more = if more > 0 {
                            format!(" (and {more} more runs)")
                        } else {
                            String::new()
                        };
                        span.detail = Some(format!(
                            "{foreign} bytes are not the fill {fill:#04x}{more}: {what}, hidden in flash declared empty"
                        ));
                    }
                    span.runs = runs;
                }
                RegionKind::Blob => {
                    let name = r.blob.clone().unwrap_or_default();
                    if let Some(pin) = opts.blobs.iter().find(|b| b.name == name) {
                        let got = digest_span(dump, path, start, end, pin.digest.algorithm)?;
                        if got == pin.digest && end == r.end() {
                            span.coverage.pinned = length;
                            span.detail = Some(format!(
                                "pinned, not reproduced: `{name}` matches {}",
                                pin.digest
                            ));
                            span.reason = Some(pin.reason.clone());
                        } else {
                            span.status = Status::Failed;
                            span.coverage.unexplained = length;
                            span.detail = Some(format!(
                                "the blob `{name}` does not match its pin: {got}, pinned {}",
                                pin.digest
                            ));
                        }
                    } else {
                        span.status = Status::Failed;
                        span.coverage.unexplained = length;
                        span.detail = Some(format!("no `[[blob]]` pins `{name}`"));
                    }
                }
                RegionKind::Release => {
                    // The part of a release region no artifact covers: padding, or not.
                    let (foreign, runs, _) = foreign_runs(dump, path, blocks, (start, end), 0xff)?;
                    let zeros = if foreign > 0 {
                        foreign_runs(dump, path, blocks, (start, end), 0x00)?.0
                    } else {
                        0
                    };
                    let odd = foreign.min(zeros);
                    span.coverage.erased = length - odd;
                    span.coverage.unexplained = odd;
                    if odd > 0 && r.described_by.is_some() {
                        // The dump's own table names the area: it may hold more than the
                        // release (a CBFS holds many files), so its other data is counted
                        // unexplained, not failed: only a declared layout makes it strict.
                        span.status = Status::Unexplained;
                        span.detail = Some(format!(
                            "named by the dump, not checked: {odd} bytes beside the release"
                        ));
                        span.runs = runs;
                    } else if odd > 0 {
                        // The layout says the region holds the release: data beside the
                        // artifacts is what an insertion before or after a copy leaves (and a
                        // copy whose first bytes an allowance covers cannot show where it
                        // began).
                        span.status = Status::Failed;
                        span.detail = Some(format!(
                            "{odd} bytes of the release region are neither an artifact nor fill"
                        ));
                        span.runs = runs;
                    } else {
                        span.detail = Some("fill after the release".to_owned());
                    }
                }
                RegionKind::Bootloader
                | RegionKind::Config
                | RegionKind::Other
                | RegionKind::DeviceData => {
                    // Declared, not checked: its fill is erased, the rest unexplained.
                    let runs = gap_runs(dump, path, blocks, start, end)?;
                    span.coverage.erased = length - runs.data;
                    span.coverage.unexplained = runs.data;
                    span.status = if runs.data > 0 {
                        Status::Unexplained
                    } else {
                        Status::Ok
                    };
                    span.detail = Some(match (r.kind, runs.data) {
                        (RegionKind::DeviceData, 0) => {
                            "the dump calls it device data: fill only".to_owned()
                        }
                        (RegionKind::DeviceData, data) => format!(
                            "the dump calls it device data, so it is not masked: {data} bytes of data; declare it in the recipe's `[flash]` to mask it"
                        ),
                        (_, 0) => "fill only".to_owned(),
                        (_, data) if r.described_by.is_some() => {
                            format!("named by the dump, not checked: {data} bytes of data")
                        }
                        (_, data) => format!("declared, not checked: {data} bytes of data"),
                    });
                }
            }
        }
    }
    Ok(span)
}

/// A gap as one span: fill if every block is fill, else unlisted data, with its fill runs
/// counted as erased.
fn merge_gap(start: u64, length: u64, runs: GapRuns) -> Span {
    let data = runs.data;
    let kind = if data == 0 {
        SpanKind::UnlistedFill
    } else {
        SpanKind::Unlisted
    };
    Span {
        offset: start,
        length,
        kind,
        name: None,
        region_kind: None,
        reason: None,
        fill: runs.fill,
        status: if data == 0 {
            Status::Ok
        } else {
            Status::Unexplained
        },
        detail: (data > 0).then(|| {
            format!(
                "{} of data in {}, {} of fill",
                plural(data, "byte"),
                plural(runs.data_runs, "run"),
                plural(length - data, "byte")
            )
        }),
        runs: runs.listed,
        coverage: Coverage {
            erased: length - data,
            unexplained: data,
            ..Coverage::default()
        },
        source: None,
    }
}

#[derive(Debug, Default)]
struct GapRuns {
    data: u64,
    data_runs: u64,
    fill: Option<u8>,
    /// The data runs, at most [`MAX_RUNS`].
    listed: Vec<Run>,
}

/// A gap judged a [`BLOCK`] at a time: blocks of one byte 0xff or 0x00 are fill. What the
/// locating pass classified ([`Blocks`]) is taken from it; only the rest is read (a piece of a
/// data block at the gap's ends, or what lies past the blocks it could keep).
fn gap_runs(
    dump: &File,
    path: &Path,
    blocks: &Blocks,
    start: u64,
    end: u64,
) -> Result<GapRuns, Error> {
    let mut out = GapRuns::default();
    let mut open: Option<Run> = None;
    let mut block = |out: &mut GapRuns, offset: u64, len: u64, fill: Option<u8>| {
        if let Some(b) = fill {
            out.fill.get_or_insert(b);
            if let Some(run) = open.take() {
                close_run(out, run);
            }
            return;
        }
        out.data += len;
        match &mut open {
            Some(run) if run.offset + run.length == offset => run.length += len,
            _ => {
                if let Some(run) = open.take() {
                    close_run(out, run);
                }
                open = Some(Run {
                    offset,
                    length: len,
                });
            }
        }
    };
    let mut buf = vec![0u8; CHUNK];
    for piece in blocks.pieces(start, end) {
        match piece {
            Piece::Fill(s, e, b) => block(&mut out, s, e - s, Some(b)),
            Piece::Data(s, e) => block(&mut out, s, e - s, None),
            Piece::Unknown(s, e) => {
                // Read in chunks that end on a block boundary, judged block by block as the
                // pass judges them: blocks are counted from the dump's first byte.
                let mut at = s;
                while at < e {
                    crate::interrupt::check()?;
                    let to = ((at + CHUNK as u64) / BLOCK * BLOCK).min(e);
                    let want = usize::try_from(to - at).unwrap_or(CHUNK);
                    let n = read_at_most(dump, at, &mut buf[..want]).map_err(io_at(path))?;
                    if n == 0 {
                        break;
                    }
                    let mut i = 0usize;
                    while i < n {
                        let offset = at + i as u64;
                        let next = usize::try_from((offset / BLOCK + 1) * BLOCK - at)
                            .unwrap_or(n)
                            .min(n);
                        let bytes = &buf[i..next];
                        let first = bytes[0];
                        let is_fill =
                            (first == 0xff || first == 0) && bytes.iter().all(|&b| b == first);
                        block(
                            &mut out,
                            offset,
                            bytes.len() as u64,
                            is_fill.then_some(first),
                        );
                        i = next;
                    }
                    at += n as u64;
                }
            }
        }
    }
    if let Some(run) = open.take() {
        close_run(&mut out, run);
    }
    Ok(out)
}

/// `1 byte`, `2 bytes`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The listed runs of a gap cut to their first and last byte that is not the gap's fill (the
/// blocks they were judged by start where the dump's blocks do, not where the data does); the
/// bytes cut off are fill, counted as such. Only a run's first and last block are read.
fn trim_runs(dump: &File, path: &Path, runs: &mut GapRuns) -> Result<(), Error> {
    let fill = runs.fill.unwrap_or(0xff);
    let mut buf = vec![0u8; usize::try_from(BLOCK).unwrap_or(512)];
    let mut cut = 0u64;
    for run in &mut runs.listed {
        let end = run.offset + run.length;
        // Leading fill, within the first block.
        let head = (run.length).min(BLOCK);
        let n = read_at_most(
            dump,
            run.offset,
            &mut buf[..usize::try_from(head).unwrap_or(0)],
        )
        .map_err(io_at(path))?;
        let lead = buf[..n].iter().take_while(|&&b| b == fill).count() as u64;
        if lead == run.length {
            continue;
        }
        // Trailing fill, within the last block.
        let tail_from = end.saturating_sub(BLOCK).max(run.offset + lead);
        let want = usize::try_from(end - tail_from).unwrap_or(0);
        let n = read_at_most(dump, tail_from, &mut buf[..want]).map_err(io_at(path))?;
        let trail = buf[..n].iter().rev().take_while(|&&b| b == fill).count() as u64;
        run.offset += lead;
        run.length -= lead + trail;
        cut += lead + trail;
    }
    runs.data = runs.data.saturating_sub(cut);
    Ok(())
}

fn close_run(out: &mut GapRuns, run: Run) {
    out.data_runs += 1;
    if out.listed.len() < MAX_RUNS {
        out.listed.push(run);
    }
}

/// Bytes of `[start, end)` that are not `fill`, the runs they form (joined across fewer than
/// [`JOIN`] fill bytes; at most [`MAX_RUNS`] listed) and how many more runs there are. Blocks
/// the locating pass saw holding only `fill` are not read again.
fn foreign_runs(
    dump: &File,
    path: &Path,
    blocks: &Blocks,
    (start, end): (u64, u64),
    fill: u8,
) -> Result<(u64, Vec<Run>, u64), Error> {
    let mut count = 0u64;
    let mut runs: Vec<Run> = Vec::new();
    let mut more = 0u64;
    let mut last: Option<Run> = None;
    let mut buf = vec![0u8; CHUNK];
    for piece in blocks.pieces(start, end) {
        let (s, e) = match piece {
            Piece::Fill(_, _, b) if b == fill => continue,
            Piece::Fill(s, e, _) | Piece::Data(s, e) | Piece::Unknown(s, e) => (s, e),
        };
        let mut at = s;
        while at < e {
            crate::interrupt::check()?;
            let want = usize::try_from((e - at).min(CHUNK as u64)).unwrap_or(CHUNK);
            let n = read_at_most(dump, at, &mut buf[..want]).map_err(io_at(path))?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let mut i = 0;
            while let Some(k) = chunk[i..].iter().position(|&b| b != fill) {
                let pos = i + k;
                let off = at + pos as u64;
                count += 1;
                match &mut last {
                    Some(run) if off - (run.offset + run.length) < JOIN => {
                        run.length = off + 1 - run.offset;
                    }
                    _ => {
                        if let Some(run) = last.take() {
                            if runs.len() < MAX_RUNS {
                                runs.push(run);
                            } else {
                                more += 1;
                            }
                        }
                        last = Some(Run {
                            offset: off,
                            length: 1,
                        });
                    }
                }
                i = pos + 1;
            }
            at += n as u64;
        }
    }
    if let Some(run) = last {
        if runs.len() < MAX_RUNS {
            runs.push(run);
        } else {
            more += 1;
        }
    }
    Ok((count, runs, more))
}

/// What the bytes at `offset` look like, by their first bytes.
fn describe(dump: &File, offset: u64) -> String {
    let mut head = [0u8; 16];
    let n = read_at_most(dump, offset, &mut head).unwrap_or(0);
    let head = &head[..n];
    let what = if head.starts_with(b"\x7fELF") {
        "an ELF file"
    } else if head.starts_with(&[0x27, 0x05, 0x19, 0x56]) {
        "a uImage"
    } else if head.starts_with(&[0xd0, 0x0d, 0xfe, 0xed]) {
        "a device tree or FIT image"
    } else if head.starts_with(b"hsqs") {
        "a squashfs"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "a gzip stream"
    } else if head.starts_with(b"MZ") {
        "a PE executable"
    } else if !head.is_empty() && head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        "text"
    } else {
        "data"
    };
    format!("{what} at {offset:#x} ({})", crate::hash::hex(head))
}

/// The digest of `[start, end)` of the dump with `algorithm`.
fn digest_span(
    dump: &File,
    path: &Path,
    start: u64,
    end: u64,
    algorithm: Algorithm,
) -> Result<crate::hash::Checksum, Error> {
    use sha2::Digest as _;
    let mut sha = sha2::Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < end {
        crate::interrupt::check()?;
        let want = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = read_at_most(dump, at, &mut buf[..want]).map_err(io_at(path))?;
        if n == 0 {
            break;
        }
        match algorithm {
            Algorithm::Sha256 => sha.update(&buf[..n]),
            Algorithm::Blake3 => {
                b3.update(&buf[..n]);
            }
        }
        at += n as u64;
    }
    Ok(match algorithm {
        Algorithm::Sha256 => crate::hash::Checksum::sha256(sha.finalize().into()),
        Algorithm::Blake3 => crate::hash::Checksum::blake3(*b3.finalize().as_bytes()),
    })
}

#[cfg(test)]
mod tests;
