//! The tree digest of a directory, as specified in `docs/tree-digest.md`.
//!
//! A tree's listing is one line per entry below the root (the root itself is not listed),
//! sorted by the bytes of the relative path (`/`-separated):
//!
//! ```text
//! reprove-tree-v1
//! <kind> <exec> <size> <content> <path>
//! ```
//!
//! `kind` is `file`, `dir` or `link`; `exec` is `x` when any execute bit is set on a file and
//! `-` otherwise; `size` is the file's length or the link target's length in bytes (0 for a
//! directory); `content` is the file's digest in lowercase hex, the escaped link target, or `-`;
//! `path` is escaped. Escaping keeps bytes `0x21..=0x7e` except `%` and writes every other
//! byte as `%XX` (uppercase hex), so a line never holds a space, a newline or a byte that is
//! not ASCII. The sha256 tree digest is sha256 of the listing with sha256 file digests; the
//! blake3 tree digest is blake3 of the listing with blake3 file digests. Not hashed: mtimes,
//! owners, modes other than the execute bit, and the order the file system lists entries in —
//! none of them survive an escrow deposit reliably. Anything other than a file, a directory or
//! a symlink (a device, a fifo, a socket) is an error: escrowed source has no use for them.
//! A link is listed, never read through; each file is opened beneath the root's handle through
//! no symlink ([`crate::beneath`]), so the digest is of bytes inside the tree only.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::FileType;
use serde::Serialize;

use super::{hash_reader, Algorithm, Checksum, Hashes};
use crate::beneath::{Folder, Links, Tree};

/// A file of the tree that cannot be opened beneath it, as a [`TreeError`].
fn tree_read_error(path: &Path, e: crate::beneath::Error) -> TreeError {
    let source = match e {
        crate::beneath::Error::Io { source, .. } => source,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    };
    TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an entry in a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeEntryKind {
    File,
    Dir,
    Link,
}

/// One entry of a tree, with the file's digests when it is a file.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Relative path, `/`-separated, as raw bytes.
    pub path: Vec<u8>,
    pub kind: TreeEntryKind,
    pub executable: bool,
    /// The file's digests (files only).
    pub hashes: Option<Hashes>,
    /// The link's target (links only), as raw bytes.
    pub target: Option<Vec<u8>>,
}

/// The digests of a directory tree, and what went into them.
#[derive(Debug, Clone)]
pub struct TreeHash {
    pub sha256: Checksum,
    pub blake3: Checksum,
    /// Entries in listing order.
    pub entries: Vec<TreeEntry>,
}

impl TreeHash {
    /// The number of regular files and their total size in bytes.
    pub fn file_totals(&self) -> (u64, u64) {
        self.entries
            .iter()
            .filter_map(|e| e.hashes)
            .fold((0, 0), |(n, bytes), h| (n + 1, bytes + h.size))
    }
}

/// Why a tree could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("`{}` is neither a file, a directory nor a symlink", .0.display())]
    Special(PathBuf),
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// Files hashed by one task: enough that a task's hand-off is noise beside the files' own
/// open, read and hash; few enough that a folder of many files spreads over every core.
const FILES_PER_TASK: usize = 16;

/// What the walk's tasks share: the tree, what they found, and the first error.
struct Walk<'a> {
    root: &'a Path,
    beneath: &'a Tree,
    found: Mutex<Vec<TreeEntry>>,
    error: Mutex<Option<TreeError>>,
    failed: AtomicBool,
}

impl Walk<'_> {
    /// Whether the walk should stop: an error was found or a signal arrived.
    fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || crate::interrupt::received().is_some()
    }

    /// Keep the first error (an interrupt before any other) and stop every task.
    fn fail(&self, e: TreeError) {
        self.failed.store(true, Ordering::Relaxed);
        let mut slot = self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keep_old = match (&*slot, &e) {
            (None, _) => false,
            (Some(_), TreeError::Interrupted(_)) => {
                matches!(*slot, Some(TreeError::Interrupted(_)))
            }
            (Some(_), _) => true,
        };
        if !keep_old {
            *slot = Some(e);
        }
    }

    fn add(&self, entries: Vec<TreeEntry>) {
        if entries.is_empty() {
            return;
        }
        self.found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(entries);
    }

    /// The path of the entry `rel` as the user names it (the root joined with it).
    fn shown(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }
}

thread_local! {
    /// This thread's `getdents64` buffer, kept between folders.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Hash the directory `root` as a tree: files hashed in parallel, each read once.
///
/// The walk and the hashing are one pass across every core: each folder is a task that lists
/// its entries (`getdents64`, through the folder's own handle), hands each sub-folder to a new
/// task and its files, [`FILES_PER_TASK`] at a time, to others; a file is opened by name
/// relative to the folder's handle ([`crate::beneath::Folder`]), so no path is resolved twice
/// and no task waits for the whole walk. The entries are sorted once at the end.
pub fn hash_tree(root: &Path) -> Result<TreeHash, TreeError> {
    let meta = fs::symlink_metadata(root).map_err(|source| TreeError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(TreeError::NotADirectory(root.to_path_buf()));
    }
    let beneath = Tree::open(root, "tree").map_err(|e| tree_read_error(root, e))?;
    let top = beneath.root_folder().map_err(|e| TreeError::Io {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    let walk = Walk {
        root,
        beneath: &beneath,
        found: Mutex::new(Vec::new()),
        error: Mutex::new(None),
        failed: AtomicBool::new(false),
    };
    rayon::scope(|scope| walk_folder(scope, &walk, top, &[]));
    crate::interrupt::check()?;
    if let Some(e) = walk
        .error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    let mut entries = walk
        .found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Paths are unique: a stable sort would order nothing more.
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let (sha_listing, b3_listing) = listings(&entries);
    let (sha256, blake3) = rayon::join(
        || Checksum::of(Algorithm::Sha256, &sha_listing),
        || Checksum::of(Algorithm::Blake3, &b3_listing),
    );
    Ok(TreeHash {
        sha256,
        blake3,
        entries,
    })
}

/// `prefix` joined with `name` by `/` (just `name` at the root).
fn child_path(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        rel.extend_from_slice(prefix);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

/// List `folder` (at `prefix` below the root): record its sub-folders and links, spawn a task
/// per sub-folder and per batch of files, hash the last batch here.
fn walk_folder<'s>(scope: &rayon::Scope<'s>, walk: &'s Walk<'s>, folder: Folder, prefix: &[u8]) {
    if walk.stopped() {
        return;
    }
    let mut names = Vec::new();
    let listed = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut kept) => folder.entries(&mut names, &mut kept),
        // Borrowed further up this thread's stack (a task run while another waits).
        Err(_) => folder.entries(&mut names, &mut Vec::new()),
    });
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            walk.fail(TreeError::Io {
                path: walk.shown(prefix),
                source: e.into(),
            });
            return;
        }
    };
    let folder = Arc::new(folder);
    let mut here = Vec::new();
    let mut files: Vec<Vec<u8>> = Vec::new();
    let name_at = |i: usize| {
        let end = listed.get(i + 1).map_or(names.len(), |next| next.start);
        &names[listed[i].start..end]
    };
    for (i, entry) in listed.iter().enumerate() {
        let name = name_at(i);
        let rel = child_path(prefix, name);
        match entry.kind {
            FileType::RegularFile => {
                files.push(rel);
                if files.len() == FILES_PER_TASK {
                    let batch = std::mem::take(&mut files);
                    let folder = Arc::clone(&folder);
                    scope.spawn(move |_| hash_files(walk, &folder, batch));
                }
            }
            FileType::Directory => {
                here.push(TreeEntry {
                    path: rel.clone(),
                    kind: TreeEntryKind::Dir,
                    executable: false,
                    hashes: None,
                    target: None,
                });
                let parent = Arc::clone(&folder);
                let name = name.to_vec();
                scope.spawn(move |scope| {
                    if walk.stopped() {
                        return;
                    }
                    let opened = parent.folder(&name);
                    // The parent's handle is not held while the sub-folder's tree is walked.
                    drop(parent);
                    match opened {
                        Ok(sub) => walk_folder(scope, walk, sub, &rel),
                        Err(e) => walk.fail(TreeError::Io {
                            path: walk.shown(&rel),
                            source: e.into(),
                        }),
                    }
                });
            }
            FileType::Symlink => match folder.read_link(name) {
                Ok(target) => here.push(TreeEntry {
                    path: rel,
                    kind: TreeEntryKind::Link,
                    executable: false,
                    hashes: None,
                    target: Some(target),
                }),
                Err(e) => {
                    walk.fail(TreeError::Io {
                        path: walk.shown(&rel),
                        source: e.into(),
                    });
                    return;
                }
            },
            _ => {
                walk.fail(TreeError::Special(walk.shown(&rel)));
                return;
            }
        }
    }
    walk.add(here);
    hash_files(walk, &folder, files);
}

/// Open each file of `batch` (paths below the root, each a name in `folder`) and hash it.
fn hash_files(walk: &Walk<'_>, folder: &Folder, batch: Vec<Vec<u8>>) {
    let mut done = Vec::with_capacity(batch.len());
    for rel in batch {
        if walk.stopped() {
            return;
        }
        let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(&rel);
        match hash_one(walk, folder, name, &rel) {
            Ok((executable, hashes)) => done.push(TreeEntry {
                path: rel,
                kind: TreeEntryKind::File,
                executable,
                hashes: Some(hashes),
                target: None,
            }),
            Err(e) => {
                walk.fail(e);
                return;
            }
        }
    }
    walk.add(done);
}

/// Whether the file `name` of `folder` (at `rel`) is executable, and its digests.
fn hash_one(
    walk: &Walk<'_>,
    folder: &Folder,
    name: &[u8],
    rel: &[u8],
) -> Result<(bool, Hashes), TreeError> {
    // Read beneath the root, through no symlink at all, and only as a regular file: a folder on
    // the way swapped for a link since the walk cannot lead out of the tree (the walk holds the
    // folder), nor a FIFO put in the file's place block the hash.
    let (file, mode) = match folder.open_file(name) {
        Ok(opened) => opened,
        Err(errno) => {
            // The walk from the root names what is wrong (a link, a FIFO, gone).
            let path = walk.shown(rel);
            return Err(
                match walk
                    .beneath
                    .open_file(Path::new(OsStr::from_bytes(rel)), Links::None)
                {
                    Err(e) => tree_read_error(&path, e),
                    Ok(_) => TreeError::Io {
                        path,
                        source: errno.into(),
                    },
                },
            );
        }
    };
    let hashes = hash_reader(&file).map_err(|source| TreeError::Io {
        path: walk.shown(rel),
        source,
    })?;
    Ok((mode & 0o111 != 0, hashes))
}

/// Both listings (sha256 and blake3) in one pass over entries already in listing order.
fn listings(entries: &[TreeEntry]) -> (Vec<u8>, Vec<u8>) {
    // A line is the path, a 64-digit digest and some 20 bytes more.
    let guess = entries.iter().map(|e| e.path.len() + 90).sum::<usize>() + 16;
    let mut sha = Vec::with_capacity(guess);
    let mut b3 = Vec::with_capacity(guess);
    sha.extend_from_slice(HEADER);
    b3.extend_from_slice(HEADER);
    for e in entries {
        write_line(&mut sha, e, Algorithm::Sha256);
        write_line(&mut b3, e, Algorithm::Blake3);
    }
    (sha, b3)
}

const HEADER: &[u8] = b"reprove-tree-v1\n";

/// The listing whose digest is the tree digest, for entries already in listing order.
pub fn tree_listing(entries: &[TreeEntry], algorithm: Algorithm) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for e in entries {
        write_line(&mut out, e, algorithm);
    }
    out
}

/// One line of the listing: `<kind> <exec> <size> <content> <path>\n`.
fn write_line(out: &mut Vec<u8>, e: &TreeEntry, algorithm: Algorithm) {
    use std::io::Write as _;
    match e.kind {
        TreeEntryKind::File => {
            let h = e.hashes.expect("a file entry carries its digests");
            out.extend_from_slice(if e.executable { b"file x " } else { b"file - " });
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{} ", h.size);
            push_hex(out, &h.get(algorithm).bytes);
        }
        TreeEntryKind::Dir => out.extend_from_slice(b"dir - 0 -"),
        TreeEntryKind::Link => {
            let target = e.target.as_deref().unwrap_or_default();
            let _ = write!(out, "link - {} ", target.len());
            escape_into(out, target);
        }
    }
    out.push(b' ');
    escape_into(out, &e.path);
    out.push(b'\n');
}

/// Lowercase hex of `bytes`, appended.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Keep `0x21..=0x7e` but `%`; write every other byte as `%XX`.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 0xf)],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::fs::PermissionsExt;

    fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The tree of the known-answer vector in `docs/tree-digest.md`.
    fn vector_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Makefile", b"all:\n\ttrue\n", 0o644);
        write(root, "src/main.c", b"int main(void) { return 0; }\n", 0o600);
        write(root, "build.sh", b"#!/bin/sh\nmake\n", 0o755);
        write(root, "odd name%.txt", b"", 0o644);
        fs::create_dir(root.join("empty")).unwrap();
        symlink("src/main.c", root.join("link")).unwrap();
        dir
    }

    /// The known-answer vector of `docs/tree-digest.md`: a change of format fails here.
    #[test]
    fn known_answer_vector() {
        let dir = vector_tree();
        let t = hash_tree(dir.path()).unwrap();
        let listing = String::from_utf8(tree_listing(&t.entries, Algorithm::Sha256)).unwrap();
        assert_eq!(
            listing,
            "reprove-tree-v1\n\
file - 11 54fc1cc2a93eecec504e0cef2173878efa87a76fe793f8ef7dc5e0a0e6b60648 Makefile\n\
file x 15 1b1f5c68cd5e6781b20ff468ba97fb722b3a8f2aa5c1662f2b00216ab92e5fc9 build.sh\n\
dir - 0 - empty\n\
link - 10 src/main.c link\n\
file - 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 odd%20name%25.txt\n\
dir - 0 - src\n\
file - 29 2ad75d95660563887d8d3f1d0ae1dcf18c2379cbd83a5c72f5ab276351ee6949 src/main.c\n"
        );
        assert_eq!(
            t.sha256.to_string(),
            "sha256:6d14f214a729c7444f70231a5bf56ecd4f8a7121385c668b63de1f7a3b2969e9"
        );
        assert_eq!(
            t.blake3.to_string(),
            "blake3:ef2dda7a7907856e03d5e8c860201b47b3eaf7a42894d10046aa44d1c9705414"
        );
    }

    #[test]
    fn independent_of_mtimes_and_non_exec_modes() {
        let dir = vector_tree();
        let before = hash_tree(dir.path()).unwrap();
        let f = dir.path().join("src/main.c");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let file = fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        let after = hash_tree(dir.path()).unwrap();
        assert_eq!(before.sha256, after.sha256);
        assert_eq!(before.blake3, after.blake3);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o744)).unwrap();
        assert_ne!(hash_tree(dir.path()).unwrap().sha256, before.sha256);
    }

    /// Folders of more files than one task takes, nested deep, with links and execute bits:
    /// the parallel walk lists every entry once, in order, as a plain serial walk does.
    #[test]
    fn the_parallel_walk_lists_what_a_serial_walk_lists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for i in 0..(3 * FILES_PER_TASK + 5) {
            let mode = if i % 3 == 0 { 0o755 } else { 0o644 };
            write(
                root,
                &format!("wide/f{i:03}"),
                format!("{i}").as_bytes(),
                mode,
            );
        }
        let mut deep = String::from("d");
        for i in 0..40 {
            write(root, &format!("{deep}/x{i}"), b"deep", 0o644);
            deep.push_str(&format!("/d{i}"));
        }
        write(root, "a-b", b"dash sorts before the slash", 0o644);
        symlink("wide/f000", root.join("a.link")).unwrap();
        let want: Vec<(Vec<u8>, TreeEntryKind, bool)> = {
            let mut v: Vec<_> = walkdir::WalkDir::new(root)
                .min_depth(1)
                .into_iter()
                .map(|e| {
                    let e = e.unwrap();
                    let rel = e
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec();
                    let ft = e.file_type();
                    let kind = if ft.is_dir() {
                        TreeEntryKind::Dir
                    } else if ft.is_symlink() {
                        TreeEntryKind::Link
                    } else {
                        TreeEntryKind::File
                    };
                    let exec = kind == TreeEntryKind::File
                        && e.metadata().unwrap().permissions().mode() & 0o111 != 0;
                    (rel, kind, exec)
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let t = hash_tree(root).unwrap();
        let got: Vec<_> = t
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.kind, e.executable))
            .collect();
        assert_eq!(got, want);
        for e in &t.entries {
            if let Some(h) = e.hashes {
                let bytes = fs::read(root.join(OsStr::from_bytes(&e.path))).unwrap();
                assert_eq!(h, super::super::hash_bytes(&bytes));
            }
        }
        assert_eq!(hash_tree(root).unwrap().sha256, t.sha256);
    }

    #[test]
    fn refuses_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(hash_tree(dir.path()), Err(TreeError::Special(_))));
    }
}
