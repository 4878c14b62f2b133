//! Where every entry of an archive lands: the rules that keep it below the root, the bounds on
//! what it may write, and the writes themselves.
//!
//! The readers ([`super::read`]: tar, zip, a directory walk) hand each entry to a [`Sink`] by
//! its raw name. The sink normalises the name ([`super::name`]), refuses what is unsafe,
//! charges the [`Budget`], creates the file, directory or link itself, and remembers what it
//! made, so that later entries are judged against the tree as extracted so far and not
//! against whatever the file system says.
//!
//! Invariants, whatever the [`Policy`]:
//!
//! - **Nothing lands outside the root.** No absolute name, no `..`, nothing written through a
//!   symlink or below a file, no hard link but to a regular file extracted before it. Files
//!   are created with `O_EXCL`.
//! - **One path, one entry.** A name that normalises to a path an earlier entry made (`./a`
//!   and `a`, `a//b` and `a/./b`, a file `a` and a directory `a/`) is refused; only a
//!   directory made implicitly as a parent may be listed later.
//! - **Bounded.** Each entry is charged before it is made and each chunk of file data before
//!   it is written: past a bound, nothing more is written and the caller removes the tree
//!   ([`all_or_nothing`]).
//!
//! [`Policy::Source`] (escrows, shipped bundles) also refuses symlinks whose target leaves
//! the tree and every special file, and writes `0o755`/`0o644` modes only.
//! [`Policy::Root`] (hermetic toolchain roots) keeps symlink targets exactly, absolute ones
//! included (they are resolved inside the sandbox, never on the host), skips device nodes and
//! fifos (the sandbox brings its own `/dev`), and keeps permission bits without set-id.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::limits::{copy_bounded, Budget, CopyError, Exceeded, Limits};
use super::name::{has_control, normalize, shown, Reason};

/// How many symlinks one link target may pass through before it counts as a loop (Linux's own
/// limit).
const MAX_HOPS: usize = 40;

/// What a tree is unpacked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Source or shipped files: links stay inside, no special files, normalised modes.
    Source,
    /// A toolchain root: links kept as they are, special files skipped, modes kept.
    Root,
}

/// Why an archive could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("archive `{}` cannot be read: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// `entry` is the entry's name as the archive spells it, escaped for printing.
    #[error("archive `{}` holds an unsafe entry `{entry}`: {reason}", path.display())]
    UnsafeEntry {
        path: PathBuf,
        entry: String,
        reason: Reason,
    },
    #[error("archive `{archive}` {exceeded}")]
    Bound { archive: String, exceeded: Exceeded },
    #[error("failed to access `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A signal stopped the unpacking; what was extracted is removed as on any error.
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// What a finished extraction made: regular files (hard links count as files) and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub files: u64,
    pub bytes: u64,
}

/// What the sink has made at a path.
#[derive(Debug)]
enum Node {
    /// `explicit`: the archive listed it; otherwise it was made as the parent of an entry.
    Dir {
        explicit: bool,
    },
    File {
        size: u64,
    },
    Link(Vec<u8>),
}

/// The tree being extracted below `root`, keyed by normalised path (`a/b`, no `.` or `..`).
pub(crate) struct Sink<'a> {
    archive: &'a Path,
    root: &'a Path,
    policy: Policy,
    /// Read errors come from a directory on disk (I/O) rather than from an archive (corrupt).
    from_directory: bool,
    budget: Budget,
    nodes: BTreeMap<Vec<u8>, Node>,
    buf: Vec<u8>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(
        archive: &'a Path,
        root: &'a Path,
        policy: Policy,
        limits: Limits,
        from_directory: bool,
    ) -> Self {
        Self {
            archive,
            root,
            policy,
            from_directory,
            budget: Budget::new(limits),
            nodes: BTreeMap::new(),
            buf: vec![0; 64 << 10],
        }
    }

    /// The error for an entry refused for `reason`.
    pub(crate) fn refuse(&self, name: &[u8], reason: Reason) -> Error {
        Error::UnsafeEntry {
            path: self.archive.to_path_buf(),
            entry: shown(name),
            reason,
        }
    }

    /// The error for an archive that cannot be read.
    pub(crate) fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            path: self.archive.to_path_buf(),
            detail,
        }
    }

    /// The error for a bound reached.
    pub(crate) fn exceeded(&self, exceeded: Exceeded) -> Error {
        Error::Bound {
            archive: self.archive.display().to_string(),
            exceeded,
        }
    }

    /// Count one entry read from the archive (every entry, also one that is skipped).
    pub(crate) fn entry(&mut self) -> Result<(), Error> {
        crate::progress::add_entry();
        self.budget.charge_entry().map_err(|e| self.exceeded(e))
    }

    /// Count `n` bytes read from the archive that are not written (a tar stream read on past
    /// its end to check its compression trailer).
    pub(crate) fn charge_read(&mut self, n: u64) -> Result<(), Error> {
        self.budget.charge_bytes(n).map_err(|e| self.exceeded(e))
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// A directory; `mode` is what the archive says (kept under [`Policy::Root`] only).
    pub(crate) fn dir(&mut self, name: &[u8], mode: u32) -> Result<(), Error> {
        let key = normalize(name).map_err(|r| self.refuse(name, r))?;
        if key.is_empty() {
            return Ok(()); // the root itself, as in `./`
        }
        if self.place(name, &key, true)? {
            self.make_dir(&key)?;
        }
        if self.policy == Policy::Root {
            // Owner access stays, so the rest of the archive can be unpacked inside.
            let path = self.path(&key);
            fs::set_permissions(&path, fs::Permissions::from_mode((mode & 0o777) | 0o700))
                .map_err(|source| Error::Io { path, source })?;
        }
        self.nodes.insert(key, Node::Dir { explicit: true });
        Ok(())
    }

    /// A special file (device, fifo, socket): refused under [`Policy::Source`], skipped under
    /// [`Policy::Root`] once its name is checked.
    pub(crate) fn special(&mut self, name: &[u8], what: &'static str) -> Result<(), Error> {
        match self.policy {
            Policy::Source => Err(self.refuse(name, Reason::Special(what))),
            Policy::Root => self.key(name).map(drop),
        }
    }

    /// A regular file with `data`; `size` is what the archive declares, checked against what
    /// its stream actually holds. Every chunk is charged before it is written.
    pub(crate) fn file(
        &mut self,
        name: &[u8],
        mode: u32,
        size: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<(), Error> {
        let key = self.key(name)?;
        self.place(name, &key, false)?;
        let path = self.path(&key);
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err)?;
        // The node is recorded before the data, so that a bound reached midway still leaves
        // one entry per path; the caller removes the whole tree on any error.
        self.nodes.insert(key.clone(), Node::File { size: 0 });
        let written = match copy_bounded(data, &mut out, &mut self.budget, &mut self.buf) {
            Ok(n) => n,
            Err(CopyError::Exceeded(e)) => return Err(self.exceeded(e)),
            Err(CopyError::Interrupted(e)) => return Err(e.into()),
            Err(CopyError::Write(e)) => return Err(io_err(e)),
            Err(CopyError::Read(e)) if self.from_directory => {
                return Err(Error::Io {
                    path: self.archive.join(OsStr::from_bytes(name)),
                    source: e,
                })
            }
            Err(CopyError::Read(e)) => {
                return Err(self.corrupt(format!("entry `{}`: {}", shown(name), chain(&e))))
            }
        };
        if let Some(size) = size.filter(|&s| s != written) {
            return Err(self.corrupt(format!(
                "entry `{}` is truncated: it declares {size} bytes, the archive holds {written}",
                shown(name)
            )));
        }
        let mode = match self.policy {
            Policy::Source if mode & 0o111 != 0 => 0o755,
            Policy::Source => 0o644,
            Policy::Root => mode & 0o777,
        };
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
        self.nodes.insert(key, Node::File { size: written });
        Ok(())
    }

    pub(crate) fn symlink(&mut self, name: &[u8], target: &[u8]) -> Result<(), Error> {
        let key = self.key(name)?;
        check_target(target).map_err(|r| self.refuse(name, r))?;
        if self.policy == Policy::Source {
            check_link(&self.nodes, &key, target).map_err(|r| self.refuse(name, r))?;
        }
        self.place(name, &key, false)?;
        let path = self.path(&key);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
            .map_err(|source| Error::Io { path, source })?;
        self.nodes.insert(key, Node::Link(target.to_vec()));
        Ok(())
    }

    /// A hard link: only to a regular file this sink extracted before.
    pub(crate) fn hard_link(&mut self, name: &[u8], target: &[u8]) -> Result<(), Error> {
        let key = self.key(name)?;
        check_target(target).map_err(|r| self.refuse(name, r))?;
        let to =
            normalize(target).map_err(|_| self.refuse(name, Reason::LinkOutside(shown(target))))?;
        let Some(&Node::File { size }) = self.nodes.get(&to) else {
            return Err(self.refuse(name, Reason::HardLinkTarget(shown(target))));
        };
        self.place(name, &key, false)?;
        let path = self.path(&key);
        fs::hard_link(self.path(&to), &path).map_err(|source| Error::Io { path, source })?;
        self.nodes.insert(key, Node::File { size });
        Ok(())
    }

    /// Check every symlink again against the whole tree (a link may climb out only through
    /// links extracted after it), then count the regular files and their bytes.
    pub(crate) fn finish(self) -> Result<Totals, Error> {
        if self.policy == Policy::Source {
            for (key, node) in &self.nodes {
                if let Node::Link(target) = node {
                    check_link(&self.nodes, key, target).map_err(|r| self.refuse(key, r))?;
                }
            }
        }
        Ok(self
            .nodes
            .values()
            .fold(Totals { files: 0, bytes: 0 }, |totals, node| match node {
                Node::File { size } => Totals {
                    files: totals.files + 1,
                    bytes: totals.bytes + size,
                },
                _ => totals,
            }))
    }

    /// The normalised, non-empty path of an entry that is not a directory.
    fn key(&self, name: &[u8]) -> Result<Vec<u8>, Error> {
        match normalize(name) {
            Ok(key) if key.is_empty() => Err(self.refuse(name, Reason::NoName)),
            Ok(key) => Ok(key),
            Err(reason) => Err(self.refuse(name, reason)),
        }
    }

    /// Make the parents of `key` as needed and check that `key` itself is free. Returns whether
    /// `key` must still be created (false: a directory made earlier as a parent, now listed).
    fn place(&mut self, name: &[u8], key: &[u8], dir: bool) -> Result<bool, Error> {
        for (i, _) in key.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            let parent = &key[..i];
            match self.nodes.get(parent) {
                None => {
                    self.make_dir(parent)?;
                    self.nodes
                        .insert(parent.to_vec(), Node::Dir { explicit: false });
                }
                Some(Node::Dir { .. }) => {}
                Some(Node::Link(_)) => {
                    return Err(self.refuse(name, Reason::ThroughSymlink(shown(parent))))
                }
                Some(Node::File { .. }) => {
                    return Err(self.refuse(name, Reason::UnderFile(shown(parent))))
                }
            }
        }
        match self.nodes.get(key) {
            None => Ok(true),
            Some(Node::Dir { explicit: false }) if dir => Ok(false),
            Some(_) => Err(self.refuse(name, Reason::Duplicate)),
        }
    }

    fn make_dir(&self, key: &[u8]) -> Result<(), Error> {
        let path = self.path(key);
        fs::create_dir(&path)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o755)))
            .map_err(|source| Error::Io { path, source })
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(key))
    }
}

/// Run `extract` into `dest` (created, or checked empty); on error, leave nothing behind:
/// `dest` is removed if it was created here, emptied if it was given empty.
pub(super) fn all_or_nothing<T, E: From<Error>>(
    dest: &Path,
    extract: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let io_error = |source| Error::Io {
        path: dest.to_path_buf(),
        source,
    };
    let created = match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(dest).map_err(io_error)?;
            true
        }
        Err(e) => return Err(io_error(e).into()),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dest).map_err(io_error)?;
            if entries.next().is_some() {
                return Err(io_error(io::Error::new(
                    io::ErrorKind::DirectoryNotEmpty,
                    "the destination is not empty",
                ))
                .into());
            }
            false
        }
        Ok(_) => {
            return Err(io_error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the destination exists and is not a directory",
            ))
            .into())
        }
    };
    let result = extract(dest);
    if result.is_err() {
        if created {
            let _ = fs::remove_dir_all(dest);
        } else if let Ok(entries) = fs::read_dir(dest) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
    result
}

fn check_target(target: &[u8]) -> Result<(), Reason> {
    if target.is_empty() {
        Err(Reason::NoName)
    } else if has_control(target) {
        Err(Reason::ControlChar)
    } else {
        Ok(())
    }
}

/// Follow `target` from the directory of the link at `key` as the kernel would, through the
/// links in `nodes`, and refuse it if it leaves the root. A path not in `nodes` counts as a
/// plain directory, which is what it is if it is ever created.
fn check_link(nodes: &BTreeMap<Vec<u8>, Node>, key: &[u8], target: &[u8]) -> Result<(), Reason> {
    let outside = || Reason::LinkOutside(shown(target));
    if target.starts_with(b"/") {
        return Err(outside());
    }
    let mut at: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
    at.pop();
    let mut todo: Vec<&[u8]> = target.split(|&b| b == b'/').rev().collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part {
            b"" | b"." => {}
            b".." => {
                if at.pop().is_none() {
                    return Err(outside());
                }
            }
            _ => {
                at.push(part);
                if let Some(Node::Link(next)) = nodes.get(&at.join(&b'/')) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Reason::LinkLoop);
                    }
                    if next.starts_with(b"/") {
                        return Err(outside());
                    }
                    at.pop();
                    todo.extend(next.split(|&b| b == b'/').rev());
                }
            }
        }
    }
    Ok(())
}

/// An error and its causes on one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(list: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Node> {
        list.iter()
            .map(|(k, t)| (k.as_bytes().to_vec(), Node::Link(t.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn link_targets_resolve_against_the_links_own_directory() {
        let none = BTreeMap::new();
        assert_eq!(check_link(&none, b"a/b/l", b"../c"), Ok(()));
        assert_eq!(check_link(&none, b"a/b/l", b"../../c"), Ok(()));
        assert!(check_link(&none, b"a/b/l", b"../../../c").is_err());
        assert!(check_link(&none, b"l", b"/etc").is_err());
        assert!(check_link(&none, b"l", b"x/../..").is_err());
        assert_eq!(check_link(&none, b"l", b"./x/./y"), Ok(()));
    }

    #[test]
    fn link_chains_are_followed() {
        // `x/up` points at the root; `x/up/..` is then the root's parent.
        let nodes = links(&[("x/up", "..")]);
        assert_eq!(check_link(&nodes, b"l", b"x/up"), Ok(()));
        assert_eq!(
            check_link(&nodes, b"l", b"x/up/../etc"),
            Err(Reason::LinkOutside("x/up/../etc".into()))
        );
        let looped = links(&[("a", "b"), ("b", "a")]);
        assert_eq!(check_link(&looped, b"l", b"a"), Err(Reason::LinkLoop));
    }
}
