//! Setting rebuilt bytes against shipped ones: where they differ, and why.
//!
//! [`bytes`] is the streaming core: two inputs read side by side in chunks, equal chunks
//! skipped at memory speed, differing bytes counted exactly and gathered into merged ranges.
//! Memory stays bounded whatever the input size.
//!
//! [`diff_paths`] builds on it. Two inputs are first compared as bytes; only when they differ
//! is anything looked into. Directories, tar, cpio and zip archives are matched member by
//! member (by path, as [`crate::archive::name::key`] spells it), gzip and xz streams by their
//! decompressed content, recursively; a differing member that is no container is a *leaf*, whose byte
//! ranges are each given a likely [`Cause`] (ELF files by section, segment and function).
//! A nested archive that cannot be read is compared as bytes, with a note: one corrupt member
//! never aborts the whole comparison. Allowances ([`allow`]) turn differences that a recipe
//! declares harmless into `equivalent`. Leaf paths join nesting levels with `//`:
//! `bundle.tar.gz//inner.tar//fw.img`. The JSON form of [`Comparison`] is documented in
//! `docs/diff.md`.
//!
//! A comparison is bounded ([`Options::limits`], by default from the environment): the bytes
//! it spools (both sides), the members it lists and the container levels it opens are charged
//! to one [`Budget`]. Past a bound it stops with [`Error::Bound`], never a verdict; the
//! spooled files live in temporary folders removed on the way out. An archive naming one path
//! twice is not matched member by member (which member would stand for the path?): it is
//! compared as bytes, with a note.
//!
//! A signal stops a comparison between two chunks or two members ([`Error::Interrupted`]); the
//! temporary files of decompressed streams go with it.

pub mod allow;
pub mod bytes;
mod container;
mod elf;
mod explain;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use allow::{Allowance, Rule};
pub use bytes::{compare_files, compare_readers, ByteDiff, ByteRange};

use crate::archive::limits::{BadValue, Budget, Exceeded, Limits};
use crate::archive::Format;
use container::{Blob, Content, Fault, Kind, Member, METADATA_FIELDS};
use elf::{ElfMap, Location};

/// Ranges per leaf given a cause (the count of all ranges is always exact).
const MAX_EXPLAINED: usize = 64;
/// Ranges per leaf shown with hex context.
const CONTEXT_RANGES: usize = 3;

/// What a comparison knows beyond the two inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// The rebuild's `SOURCE_DATE_EPOCH`: integers near it are taken for timestamps.
    pub source_date_epoch: Option<i64>,
    /// When the rebuild ran (Unix seconds), for the same purpose.
    pub build_time: Option<i64>,
    pub allowances: Vec<Allowance>,
    /// The bounds on what the comparison may spool, list and open (a tar in a tar.gz is 2
    /// levels); `None`: [`Limits::from_env`].
    pub limits: Option<Limits>,
    /// The ELF file a raw image was made from (`objcopy -O binary`): differing bytes of a raw
    /// top-level file (or of a member with the same file name) are then located by its
    /// sections and functions. Used only when the left side has the size the ELF file's
    /// loaded sections give.
    pub layout: Option<PathBuf>,
    /// The file name of the leaves `layout` describes (default: the top-level left file's).
    pub layout_name: Option<String>,
    /// How reports name the two inputs and the layout (default: their paths), when the paths
    /// are a work folder's that means nothing to a reader: `(left, right, layout)`.
    pub shown_as: Option<(String, String, String)>,
}

/// How two inputs, or one leaf of them, relate. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    /// Different only where allowances say it is harmless.
    Equivalent,
    Different,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Equivalent => "equivalent",
            Verdict::Different => "different",
        }
    }
}

/// The likely root of a difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// An integer near `SOURCE_DATE_EPOCH`, the build time, now or the files' mtimes, or a
    /// date or time string.
    Timestamp,
    /// An absolute path that differs after its first `/`.
    BuildPath,
    /// Inside `.note.gnu.build-id`: a consequence of another difference.
    BuildId,
    /// Archive member metadata (mtime, mode, owner) with the same content.
    ArchiveMetadata,
    /// A gzip header (mtime, name, OS) with the same decompressed content.
    CompressionHeader,
    /// Another compressed stream of the same decompressed content.
    Compression,
    /// The same members in another order.
    Ordering,
    /// Bytes of machine code: an executable section, and the function covering them.
    Code {
        section: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<String>,
    },
    Unknown,
}

impl Cause {
    /// A few words for people.
    pub fn describe(&self) -> String {
        match self {
            Cause::Timestamp => "timestamp".into(),
            Cause::BuildPath => "build path".into(),
            Cause::BuildId => "ELF build-id".into(),
            Cause::ArchiveMetadata => "archive metadata only".into(),
            Cause::CompressionHeader => "compression header".into(),
            Cause::Compression => "compressed differently, same content".into(),
            Cause::Ordering => "member order".into(),
            Cause::Code { section, symbol } => match symbol {
                Some(s) => format!("EXECUTABLE CODE in `{section}`, function `{s}`"),
                None => format!("EXECUTABLE CODE in `{section}`"),
            },
            Cause::Unknown => "unknown".into(),
        }
    }

    pub fn is_code(&self) -> bool {
        matches!(self, Cause::Code { .. })
    }
}

/// Two inputs compared: the verdict and every leaf that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub left: String,
    pub right: String,
    pub verdict: Verdict,
    /// Leaves (files, members) found byte-identical.
    pub identical: u64,
    pub leaves: Vec<LeafDiff>,
}

/// What happened to a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only on the right.
    Added,
    /// Only on the left.
    Removed,
    /// On both sides, differing in content or metadata.
    Changed,
    /// A container whose common members come in another order.
    Reordered,
}

/// One differing leaf: a file, an archive member, a stream, or a container's member order.
#[derive(Debug, Clone, Serialize)]
pub struct LeafDiff {
    pub path: String,
    pub change: Change,
    pub verdict: Verdict,
    /// Distinct likely causes, in the order first seen.
    pub causes: Vec<Cause>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<AppliedAllowance>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A metadata field that differs (`mtime`, `mode`, `uid`, `gzip mtime`, `kind`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub left: String,
    pub right: String,
}

/// How a leaf's bytes differ.
#[derive(Debug, Clone, Serialize)]
pub struct ContentDiff {
    pub left_size: u64,
    pub right_size: u64,
    pub differing_bytes: u64,
    /// All merged ranges, also those not listed.
    pub range_count: u64,
    /// The first ranges, each with a cause.
    pub ranges: Vec<RangeDiff>,
    /// ELF sections holding differing ranges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionDiff>,
}

/// One merged range of differing bytes.
#[derive(Debug, Clone, Serialize)]
pub struct RangeDiff {
    pub offset: u64,
    pub len: u64,
    pub cause: Cause,
    /// In an ELF file: the section name, `ELF header`, `segment N` or `outside sections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<HexContext>,
}

/// Bytes around a range, from both sides, in lowercase hex (up to 48 bytes from `offset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HexContext {
    pub offset: u64,
    pub left: String,
    pub right: String,
}

/// An ELF section with differing ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionDiff {
    pub name: String,
    pub executable: bool,
    pub ranges: u64,
}

/// An allowance that covered some of a leaf's differences, and which byte ranges.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedAllowance {
    pub allowance: Allowance,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<ByteRange>,
}

/// Why a comparison could not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A path named for comparison that is neither a file nor a directory (a FIFO, a socket,
    /// a device): refused before anything opens it, so nothing blocks.
    #[error("{0}: only files and directories are compared")]
    NotAFile(crate::beneath::Error),
    /// A container that cannot be read. Inside a comparison this degrades to a byte
    /// comparison with a note.
    #[error("corrupt archive `{path}`: {detail}")]
    Corrupt { path: String, detail: String },
    /// A bound on what the comparison may spool, list or open was reached.
    #[error("archive `{archive}` {exceeded}")]
    Bound { archive: String, exceeded: Exceeded },
    #[error(transparent)]
    BadLimit(#[from] BadValue),
    /// A signal stopped the comparison; its temporary files are removed on the way out.
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl Error {
    /// `fault` while reading the container at `path`.
    fn from_fault(path: &str, fault: Fault) -> Error {
        match fault {
            Fault::Corrupt(detail) => Error::Corrupt {
                path: path.to_owned(),
                detail,
            },
            Fault::Bound(exceeded) => Error::Bound {
                archive: path.to_owned(),
                exceeded,
            },
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl Comparison {
    /// One line: the verdict, the counts and the causes.
    pub fn summary(&self) -> String {
        let mut causes: Vec<String> = Vec::new();
        for c in self.leaves.iter().flat_map(|l| &l.causes) {
            let d = c.describe();
            if !causes.contains(&d) {
                causes.push(d);
            }
        }
        let metadata_only = self
            .leaves
            .iter()
            .filter(|l| l.content.is_none() && l.causes == [Cause::ArchiveMetadata])
            .count();
        let mut line = format!(
            "{}: {} differing, ",
            self.verdict.name(),
            self.leaves.len() - metadata_only
        );
        if metadata_only > 0 {
            line.push_str(&format!("{metadata_only} metadata-only, "));
        }
        line.push_str(&format!("{} identical", self.identical));
        if !causes.is_empty() {
            line.push_str(&format!(" ({})", causes.join("; ")));
        }
        line
    }
}

/// Compare two files or two directories, recursively.
pub fn diff_paths(left: &Path, right: &Path, opts: &Options) -> Result<Comparison, Error> {
    let limits = match opts.limits {
        Some(limits) => limits,
        None => Limits::from_env()?,
    };
    let stat = |p: &Path| {
        crate::beneath::stat_file_or_dir(p).map_err(|e| match e {
            crate::beneath::Error::Io { path, source } => Error::Io { path, source },
            e => Error::NotAFile(e),
        })
    };
    let (lm, rm) = (stat(left)?, stat(right)?);
    let now = unix_time(std::time::SystemTime::now());
    let mtimes = [&lm, &rm].map(|m| m.modified().ok().and_then(unix_time));
    let times: Vec<i64> = [opts.source_date_epoch, opts.build_time, now]
        .into_iter()
        .chain(mtimes)
        .flatten()
        .collect();
    let file_name = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.to_string_lossy(), |n| n.to_string_lossy())
            .into_owned()
    };
    let (name, right_name) = (file_name(left), file_name(right));
    let layout = match (&opts.layout, lm.is_dir() || rm.is_dir()) {
        (Some(elf), false) => Some(Layout::read(
            elf,
            opts.layout_name.as_deref().unwrap_or(&name),
            opts.shown_as.as_ref().map(|s| s.2.clone()),
        )),
        _ => None,
    };
    let mut walker = Walker {
        opts,
        times,
        aliases: (name != right_name).then(|| (name.clone(), right_name)),
        layout,
        budget: Budget::new(limits),
        identical: 0,
        leaves: Vec::new(),
    };
    match (lm.is_dir(), rm.is_dir()) {
        (true, true) => {
            let (l, r) = (container::list_dir(left)?, container::list_dir(right)?);
            walker.members("", &l, &r, None, 0)?;
        }
        (false, false) => {
            let l = Blob::file(left).map_err(io_error(left))?;
            let r = Blob::file(right).map_err(io_error(right))?;
            walker.blobs(&name, &l, &r, 0)?;
        }
        (l, r) => {
            let kind = |d: bool| if d { Kind::Dir } else { Kind::File }.name().to_owned();
            let field = FieldChange {
                field: "kind".into(),
                left: kind(l),
                right: kind(r),
            };
            walker.leaves.push(walker.leaf(
                &name,
                Change::Changed,
                vec![Cause::Unknown],
                vec![field],
            ));
        }
    }
    let verdict = walker
        .leaves
        .iter()
        .map(|l| l.verdict)
        .max()
        .unwrap_or(Verdict::Identical);
    let (left, right) = match &opts.shown_as {
        Some((l, r, _)) => (l.clone(), r.clone()),
        None => (
            left.to_string_lossy().into_owned(),
            right.to_string_lossy().into_owned(),
        ),
    };
    Ok(Comparison {
        left,
        right,
        verdict,
        identical: walker.identical,
        leaves: walker.leaves,
    })
}

fn unix_time(t: std::time::SystemTime) -> Option<i64> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// The layout of a raw image ([`Options::layout`]), read once per comparison.
struct Layout {
    /// The ELF file, as reports name it.
    elf: String,
    /// The top-level left file's name: the leaves the layout describes.
    name: String,
    /// The image's map, or why there is none.
    map: Result<ElfMap, &'static str>,
}

impl Layout {
    fn read(elf: &Path, name: &str, shown_as: Option<String>) -> Layout {
        let map = match Blob::file(elf) {
            Err(_) => Err("cannot be read"),
            Ok(blob) => ElfMap::read(&blob)
                .ok_or("is no ELF file")
                .and_then(|m| m.image().ok_or("loads no section")),
        };
        Layout {
            elf: shown_as.unwrap_or_else(|| elf.display().to_string()),
            name: name.to_owned(),
            map,
        }
    }

    /// The image map for the leaf at `path` whose left side is `left`: the top-level file,
    /// its decompressed content, or a member named like it. A note says whether it was used.
    fn map_for(&self, path: &str, left: &Blob, notes: &mut Vec<String>) -> Option<&ElfMap> {
        if path.rsplit('/').next() != Some(self.name.as_str()) {
            return None;
        }
        let elf = &self.elf;
        match &self.map {
            Err(why) => notes.push(format!("layout `{elf}` {why}: not used")),
            Ok(m) if m.image_len() != left.len => notes.push(format!(
                "layout `{elf}` describes an image of {} bytes, not {}: not used",
                m.image_len(),
                left.len
            )),
            Ok(m) => {
                notes.push(format!("offsets located by the sections of `{elf}`"));
                return Some(m);
            }
        }
        None
    }
}

struct Walker<'o> {
    opts: &'o Options,
    /// Reference times for timestamp detection.
    times: Vec<i64>,
    /// For a file pair with two names: the left name (used in paths) and the right one.
    aliases: Option<(String, String)>,
    layout: Option<Layout>,
    /// What the comparison has spooled and listed so far, against its bounds.
    budget: Budget,
    identical: u64,
    leaves: Vec<LeafDiff>,
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
    fn leaf(
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
    fn blobs(&mut self, path: &str, left: &Blob, right: &Blob, depth: usize) -> Result<(), Error> {
        let bytes = compare_readers(
            left.reader().map_err(io_error(&left.path))?,
            right.reader().map_err(io_error(&right.path))?,
        )
        .map_err(io_error(&left.path))?;
        if bytes.is_identical() {
            self.identical += 1;
            return Ok(());
        }
        let mut notes = Vec::new();
        let mut members_match = false;
        // Allowed bytes are judged before looking inside: a signed bundle is still a tar, but
        // its signature trailer is no member of it.
        let allowances: Vec<&Allowance> = self.allowances(path).collect();
        let byte_allowed = allow::cover(&allowances, &shape(&bytes), |_| None).complete;
        if !byte_allowed {
            let lf = left.format().map_err(io_error(&left.path))?;
            let rf = right.format().map_err(io_error(&right.path))?;
            if let Some(format) = lf.filter(|f| Some(*f) == rf && *f != Format::Elf) {
                self.budget
                    .check_depth(depth as u64)
                    .map_err(|e| Error::from_fault(path, e.into()))?;
                let (leaves, identical) = (self.leaves.len(), self.identical);
                match self.expand(path, format, left, right, &bytes, depth) {
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
        let mut leaf = self.content_leaf(path, left, right, &bytes, notes)?;
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
                Some(mut applied) if same_size && !bytes.is_truncated() => {
                    applied.ranges.clone_from(&bytes.ranges);
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
                ll == rl && bytes.ranges.iter().all(|r| r.end() <= ll)
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
    fn members(
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
                let cause = if fields
                    .iter()
                    .all(|f| METADATA_FIELDS.contains(&f.field.as_str()))
                {
                    Cause::ArchiveMetadata
                } else {
                    Cause::Unknown
                };
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

    /// A leaf for differing bytes: each range explained, allowances applied.
    fn content_leaf(
        &self,
        path: &str,
        left: &Blob,
        right: &Blob,
        bytes: &ByteDiff,
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
        let image = match (&self.layout, left_elf) {
            (Some(layout), false) => layout.map_for(path, left, &mut notes),
            _ => None,
        };
        let elf = elf.as_ref().or(image);
        let mut causes: Vec<Cause> = Vec::new();
        let mut ranges = Vec::new();
        if let (Some(l), Some(r)) = (elf, &right_elf) {
            notes.extend(elf::layout_changes(l, r));
        }
        for (i, r) in bytes.ranges.iter().take(MAX_EXPLAINED).enumerate() {
            let (cause, location) = explain::explain(*r, left, right, elf, &self.times)
                .map_err(io_error(&left.path))?;
            let context = if i < CONTEXT_RANGES {
                Some(explain::context(*r, left, right).map_err(io_error(&left.path))?)
            } else {
                None
            };
            if !causes.contains(&cause) {
                causes.push(cause.clone());
            }
            ranges.push(RangeDiff {
                offset: r.offset,
                len: r.len,
                cause,
                location: location.map(|l| match l {
                    Location::Header => "ELF header".to_owned(),
                    Location::Section { name, .. } => name,
                    Location::Segment(i) => format!("segment {i}"),
                    Location::Elsewhere => "outside sections".to_owned(),
                }),
                context,
            });
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
        let coverage = allow::cover(&candidates, &shape(bytes), section);
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
                ranges,
                sections,
            }),
            allowances,
            notes,
        })
    }
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

fn changed_fields(left: &[(&str, String)], right: &[(&str, String)]) -> Vec<FieldChange> {
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

#[cfg(test)]
mod allow_shapes;
#[cfg(test)]
mod tests;
