//! Dumps: the bytes read out of a deployed device's flash, checked against a release.
//!
//! [`check_dump`] owns the whole account of one dump. It keeps these invariants:
//!
//! - **One streaming pass, bounded memory.** The dump is never read whole: it is read once in
//!   buffers by the locator ([`locate`]), which also feeds the dump's digests when asked, and
//!   then only the windows that need it are read again (a located copy, a region). Memory
//!   depends on the number of anchors and regions, never on the dump's size.
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
//!   (`different` when anything but the fill is there), each blob region (`different` when its
//!   digest does not match or no pin is known). Unexplained bytes elsewhere are listed and
//!   counted, but a bootloader or an unlisted gap fails nothing on its own.
//! - **Hostile input**: sizes and offsets are checked or saturating; a layout region past the
//!   dump's end is reported, not read; lists of runs are capped ([`MAX_RUNS`]) with the
//!   remainder counted.

pub(crate) mod locate;
pub(crate) mod seek;

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

use locate::{read_at_most, Alignment, Wanted, CHUNK};

/// Runs listed per span, at most (the rest are counted).
pub(crate) const MAX_RUNS: usize = 16;
/// Gaps are classified a block at a time.
const BLOCK: u64 = 512;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    pub placements: Vec<Placement>,
    /// The dump cut into spans, in offset order, together every byte once.
    pub spans: Vec<Span>,
    pub coverage: Coverage,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    let wanted: Vec<Wanted<'_>> = files
        .iter()
        .zip(&declared)
        .filter(|(_, d)| d.is_none())
        .map(|((f, len), _)| Wanted { file: f, len: *len })
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
    let mut notes = found.notes;
    let mut best = found.best.into_iter();
    let mut placements = Vec::with_capacity(releases.len());
    for (i, r) in releases.iter().enumerate() {
        let (file, len) = (&files[i].0, files[i].1);
        let w = Wanted { file, len };
        let (alignment, placed_by) = match declared[i] {
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
                (Some(a), PlacedBy::Layout)
            }
            None => (best.next().flatten(), PlacedBy::Content),
        };
        placements.push(place(
            &dump, size, r, &w, alignment, placed_by, shown_as, opts,
        )?);
    }
    let mut spans = Vec::new();
    let mut coverage = Coverage::default();
    let mut verdict = placements
        .iter()
        .map(|p| p.verdict)
        .fold(Verdict::Identical, Verdict::worst);
    for span in cut(size, &placements, regions) {
        let span = account(&dump, dump_path, span, &placements, opts)?;
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
        dump: shown_as.to_owned(),
        size,
        digest,
        verdict,
        layout: opts.layout_source.clone(),
        placements,
        spans,
        coverage,
        notes,
    })
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
            comparison: None,
            vouched: release.vouched,
            anchors: None,
        });
    };
    let offset = i64::try_from(a.start).ok();
    let mut verdict = release.vouched;
    let mut comparison = None;
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
        comparison,
        vouched: release.vouched,
        anchors: None,
    })
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
    Region(usize),
    Gap,
}

/// The dump `[0, size)` cut into owned pieces, in order: placements (the earlier of two that
/// overlap keeps its bytes), then regions, then gaps.
fn cut(size: u64, placements: &[Placement], regions: &[Region]) -> Vec<(u64, u64, Owner)> {
    let mut placed: Vec<(u64, u64, usize)> = Vec::new();
    for (i, p) in placements.iter().enumerate() {
        let Some(start) = p.offset else { continue };
        let end = start.saturating_add(i64::try_from(p.size).unwrap_or(i64::MAX));
        let (start, end) = (
            u64::try_from(start.max(0)).unwrap_or(0).min(size),
            u64::try_from(end.max(0)).unwrap_or(0).min(size),
        );
        if start < end && !placed.iter().any(|&(s, e, _)| start < e && s < end) {
            placed.push((start, end, i));
        }
    }
    placed.sort_unstable();
    let mut pieces = Vec::new();
    let mut at = 0u64;
    while at < size {
        if let Some(&(_, end, i)) = placed.iter().find(|&&(s, e, _)| s <= at && at < e) {
            pieces.push((at, end, Owner::Placement(i)));
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
    };
    match owner {
        Owner::Placement(i) => {
            let p = &placements[i];
            span.kind = SpanKind::Artifact;
            span.name = Some(p.artifact.clone());
            // Bytes of an artifact that was not reproduced vouch for nothing.
            let differing = if p.vouched.passed(false) {
                p.differing.min(length)
            } else {
                length
            };
            span.coverage.reproduced = length - differing;
            span.coverage.unexplained = differing;
            if p.verdict != Verdict::Identical {
                span.status = Status::Failed;
                span.detail = Some(format!("{}: {differing} bytes differ", p.verdict));
            }
        }
        Owner::Gap => {
            let classes = gap_runs(dump, path, start, end)?;
            // A gap is returned as one span per class run: the caller sees them in order.
            return Ok(merge_gap(start, length, classes));
        }
        Owner::Region(i) => {
            let regions = opts.layout.as_ref().map_or(&[][..], |l| &l.regions[..]);
            let r = &regions[i];
            span.name = Some(r.name.clone());
            span.region_kind = Some(r.kind);
            span.reason.clone_from(&r.reason);
            match r.kind {
                RegionKind::DeviceData => {
                    span.status = Status::Masked;
                    span.coverage.masked = length;
                }
                RegionKind::Erased => {
                    let fill = r.fill_byte();
                    span.fill = Some(fill);
                    let (foreign, runs, more) = foreign_runs(dump, path, start, end, fill)?;
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
                    let (foreign, runs, _) = foreign_runs(dump, path, start, end, 0xff)?;
                    let zeros = if foreign > 0 {
                        foreign_runs(dump, path, start, end, 0x00)?.0
                    } else {
                        0
                    };
                    let odd = foreign.min(zeros);
                    span.coverage.erased = length - odd;
                    span.coverage.unexplained = odd;
                    if odd > 0 {
                        span.status = Status::Unexplained;
                        span.detail = Some(format!(
                            "{odd} bytes of the release region are neither an artifact nor fill"
                        ));
                        span.runs = runs;
                    } else {
                        span.detail = Some("fill after the release".to_owned());
                    }
                }
                RegionKind::Bootloader | RegionKind::Config | RegionKind::Other => {
                    // Declared, not checked: its fill is erased, the rest unexplained.
                    let runs = gap_runs(dump, path, start, end)?;
                    span.coverage.erased = length - runs.data;
                    span.coverage.unexplained = runs.data;
                    span.status = if runs.data > 0 {
                        Status::Unexplained
                    } else {
                        Status::Ok
                    };
                    span.detail = Some(if runs.data > 0 {
                        format!("declared, not checked: {} bytes of data", runs.data)
                    } else {
                        "fill only".to_owned()
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
                "{data} bytes of data in {} runs, {} bytes of fill",
                runs.data_runs,
                length - data
            )
        }),
        runs: runs.listed,
        coverage: Coverage {
            erased: length - data,
            unexplained: data,
            ..Coverage::default()
        },
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

/// A gap read a [`BLOCK`] at a time: blocks of one byte 0xff or 0x00 are fill.
fn gap_runs(dump: &File, path: &Path, start: u64, end: u64) -> Result<GapRuns, Error> {
    let mut out = GapRuns::default();
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    let mut open: Option<Run> = None;
    while at < end {
        crate::interrupt::check()?;
        let want = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = read_at_most(dump, at, &mut buf[..want]).map_err(io_at(path))?;
        if n == 0 {
            break;
        }
        for (k, block) in buf[..n]
            .chunks(usize::try_from(BLOCK).unwrap_or(512))
            .enumerate()
        {
            let offset = at + (k as u64) * BLOCK;
            let first = block[0];
            let is_fill = (first == 0xff || first == 0) && block.iter().all(|&b| b == first);
            if is_fill {
                out.fill.get_or_insert(first);
                if let Some(run) = open.take() {
                    close_run(&mut out, run);
                }
            } else {
                out.data += block.len() as u64;
                match &mut open {
                    Some(run) => run.length += block.len() as u64,
                    None => {
                        open = Some(Run {
                            offset,
                            length: block.len() as u64,
                        });
                    }
                }
            }
        }
        at += n as u64;
    }
    if let Some(run) = open.take() {
        close_run(&mut out, run);
    }
    Ok(out)
}

fn close_run(out: &mut GapRuns, run: Run) {
    out.data_runs += 1;
    if out.listed.len() < MAX_RUNS {
        out.listed.push(run);
    }
}

/// Bytes of `[start, end)` that are not `fill`, the runs they form (joined across fewer than
/// [`JOIN`] fill bytes; at most [`MAX_RUNS`] listed) and how many more runs there are.
fn foreign_runs(
    dump: &File,
    path: &Path,
    start: u64,
    end: u64,
    fill: u8,
) -> Result<(u64, Vec<Run>, u64), Error> {
    let mut count = 0u64;
    let mut runs: Vec<Run> = Vec::new();
    let mut more = 0u64;
    let mut last: Option<Run> = None;
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < end {
        crate::interrupt::check()?;
        let want = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
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
