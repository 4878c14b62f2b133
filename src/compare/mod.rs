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
//! An image of a firmware format ([`crate::firmware`]) is compared part by part, its headers
//! field by field (`parts.rs`).
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

pub(crate) mod allow;
pub(crate) mod bytes;
mod container;
mod elf;
mod explain;
mod imagemap;
mod layout;
mod model;
mod parts;
mod pointer;
pub(crate) mod suggest;
mod walker;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use allow::{Allowance, Rule};
pub(crate) use bytes::{compare_readers, ByteDiff, ByteRange, Shift};
pub(crate) use imagemap::{check_declared, DeclaredPart, Image, ImageParts};
pub(crate) use model::{
    AppliedAllowance, Cause, CauseTally, Change, Comparison, ContentDiff, FieldChange, HexContext,
    LeafDiff, RangeDiff, SectionDiff, ShiftDiff, StringPair, Verdict,
};

use crate::archive::limits::{BadValue, Budget, Exceeded, Limits};
use container::{Blob, Fault, Kind};
use layout::Layout;
use walker::Walker;

/// What a comparison knows beyond the two inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Options {
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
    /// The host and user names the rebuild is known to have had: a differing name at the
    /// same place is [`Cause::HostName`] or [`Cause::UserName`].
    pub names: Names,
    /// Where the parts of a composite left image come from: the rebuilt tree to search by
    /// content, and parts declared. `None`: images are not mapped into parts.
    pub parts: Option<ImageParts>,
}

/// Host and user names a rebuild ran under (the machine's, the sandbox's). Names shorter
/// than 3 bytes are ignored: they would match anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Names {
    pub hosts: Vec<String>,
    pub users: Vec<String>,
}

/// Why a comparison could not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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

/// Compare two files or two directories, recursively.
pub(crate) fn diff_paths(left: &Path, right: &Path, opts: &Options) -> Result<Comparison, Error> {
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
        clues: explain::Clues {
            times,
            names: opts.names.clone(),
        },
        aliases: (name != right_name).then(|| (name.clone(), right_name)),
        layout,
        part_layouts: Vec::new(),
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

#[cfg(test)]
mod allow_shapes;
#[cfg(test)]
mod causes_tests;
#[cfg(test)]
mod shift_tests;
#[cfg(test)]
mod tests;
