//! Where every entry of an escrow lands: the rules that keep it below the root, and the writes.
//!
//! The readers (tar, zip, a directory walk) hand each entry to a [`Sink`] by its raw name.
//! The sink normalises the name, refuses what is unsafe, creates the file, directory or link
//! itself, and remembers what it made, so that later entries are judged against the tree as
//! extracted so far and not against whatever the file system says.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Error, Reason};

/// How many symlinks one link target may pass through before it counts as a loop (Linux's own
/// limit).
const MAX_HOPS: usize = 40;

/// What the sink has made at a path.
#[derive(Debug)]
enum Node {
    /// `explicit`: the escrow listed it; otherwise it was made as the parent of an entry.
    Dir {
        explicit: bool,
    },
    File {
        size: u64,
    },
    Link(Vec<u8>),
}

/// The tree being extracted below `root`, keyed by normalised path (`a/b`, no `.` or `..`).
pub(super) struct Sink<'a> {
    escrow: &'a Path,
    root: &'a Path,
    /// Read errors come from a directory on disk (I/O) rather than from an archive (corrupt).
    from_directory: bool,
    nodes: BTreeMap<Vec<u8>, Node>,
    buf: Vec<u8>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(escrow: &'a Path, root: &'a Path, from_directory: bool) -> Self {
        Self {
            escrow,
            root,
            from_directory,
            nodes: BTreeMap::new(),
            buf: vec![0; 64 << 10],
        }
    }

    /// The error for an entry refused for `reason`.
    pub(super) fn refuse(&self, name: &[u8], reason: Reason) -> Error {
        Error::UnsafeEntry {
            path: self.escrow.to_path_buf(),
            entry: shown(name),
            reason,
        }
    }

    /// The error for an archive that cannot be read.
    pub(super) fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            path: self.escrow.to_path_buf(),
            detail,
        }
    }

    pub(super) fn dir(&mut self, name: &[u8]) -> Result<(), Error> {
        let key = normalize(name).map_err(|r| self.refuse(name, r))?;
        if key.is_empty() {
            return Ok(()); // the root itself, as in `./`
        }
        if self.place(name, &key, true)? {
            self.make_dir(&key)?;
        }
        self.nodes.insert(key, Node::Dir { explicit: true });
        Ok(())
    }

    /// A regular file with `data`; `size` is what the archive declares, checked against what
    /// its stream actually holds.
    pub(super) fn file(
        &mut self,
        name: &[u8],
        executable: bool,
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
        let mut written = 0u64;
        loop {
            crate::interrupt::check()?;
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.from_directory => {
                    return Err(Error::Io {
                        path: self.escrow.join(OsStr::from_bytes(name)),
                        source: e,
                    })
                }
                Err(e) => {
                    return Err(self.corrupt(format!("entry `{}`: {}", shown(name), chain(&e))))
                }
            };
            out.write_all(&self.buf[..n]).map_err(io_err)?;
            written += n as u64;
        }
        if let Some(size) = size.filter(|&s| s != written) {
            return Err(self.corrupt(format!(
                "entry `{}` is truncated: it declares {size} bytes, the archive holds {written}",
                shown(name)
            )));
        }
        let mode = if executable { 0o755 } else { 0o644 };
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
        self.nodes.insert(key, Node::File { size: written });
        Ok(())
    }

    pub(super) fn symlink(&mut self, name: &[u8], target: &[u8]) -> Result<(), Error> {
        let key = self.key(name)?;
        check_target(target).map_err(|r| self.refuse(name, r))?;
        check_link(&self.nodes, &key, target).map_err(|r| self.refuse(name, r))?;
        self.place(name, &key, false)?;
        let path = self.path(&key);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
            .map_err(|source| Error::Io { path, source })?;
        self.nodes.insert(key, Node::Link(target.to_vec()));
        Ok(())
    }

    /// A hard link: only to a regular file this sink extracted before.
    pub(super) fn hard_link(&mut self, name: &[u8], target: &[u8]) -> Result<(), Error> {
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
    pub(super) fn finish(self) -> Result<(u64, u64), Error> {
        for (key, node) in &self.nodes {
            if let Node::Link(target) = node {
                check_link(&self.nodes, key, target).map_err(|r| self.refuse(key, r))?;
            }
        }
        Ok(self
            .nodes
            .values()
            .fold((0, 0), |(files, bytes), node| match node {
                Node::File { size } => (files + 1, bytes + size),
                _ => (files, bytes),
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

/// `name` as a path below the root: `/`-separated, without empty or `.` components. Refuses
/// control characters, absolute paths and `..`. The root itself normalises to empty.
fn normalize(name: &[u8]) -> Result<Vec<u8>, Reason> {
    if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(Reason::ControlChar);
    }
    if name.starts_with(b"/") {
        return Err(Reason::Absolute);
    }
    let mut key = Vec::with_capacity(name.len());
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Reason::ParentDir),
            _ => {
                if !key.is_empty() {
                    key.push(b'/');
                }
                key.extend_from_slice(part);
            }
        }
    }
    Ok(key)
}

fn check_target(target: &[u8]) -> Result<(), Reason> {
    if target.is_empty() {
        Err(Reason::NoName)
    } else if target.iter().any(|&b| b < 0x20 || b == 0x7f) {
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

/// An untrusted name made safe to print: control and invisible characters escaped, bytes that
/// are not UTF-8 as `\xNN`.
pub(super) fn shown(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if matches!(c, '\\' | '\'' | '"') {
                out.push(c);
            } else {
                out.extend(c.escape_debug());
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// An error and its causes on one line.
pub(super) fn chain(err: &dyn std::error::Error) -> String {
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
    fn normalize_strips_dots_and_refuses_escapes() {
        assert_eq!(normalize(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"/etc/passwd"), Err(Reason::Absolute));
        assert_eq!(normalize(b"a/../../b"), Err(Reason::ParentDir));
        assert_eq!(normalize(b"a/.."), Err(Reason::ParentDir));
        assert_eq!(normalize(b"a\nb"), Err(Reason::ControlChar));
        assert_eq!(normalize(b"caf\xe9").unwrap(), b"caf\xe9");
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

    #[test]
    fn shown_escapes_what_misleads() {
        assert_eq!(shown(b"ok/it's.c"), "ok/it's.c");
        assert_eq!(shown(b"a\x1b[31m"), "a\\u{1b}[31m");
        assert_eq!(shown("evil\u{202e}txt".as_bytes()), "evil\\u{202e}txt");
        assert_eq!(shown(b"\xffx"), "\\xffx");
    }
}
