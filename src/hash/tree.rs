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

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{hash_reader, Algorithm, Checksum, Hashes};
use crate::beneath::{Links, Tree};

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

/// Hash the directory `root` as a tree: files hashed in parallel, each read once.
pub fn hash_tree(root: &Path) -> Result<TreeHash, TreeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Io { path, source }
    };
    let meta = fs::symlink_metadata(root).map_err(io_err(root))?;
    if !meta.is_dir() {
        return Err(TreeError::NotADirectory(root.to_path_buf()));
    }
    let beneath = Tree::open(root, "tree").map_err(|e| tree_read_error(root, e))?;
    let mut found = Vec::new();
    for item in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        crate::interrupt::check()?;
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            TreeError::Io {
                path,
                source: e.into(),
            }
        })?;
        let ft = item.file_type();
        let kind = if ft.is_dir() {
            TreeEntryKind::Dir
        } else if ft.is_file() {
            TreeEntryKind::File
        } else if ft.is_symlink() {
            TreeEntryKind::Link
        } else {
            return Err(TreeError::Special(item.path().to_path_buf()));
        };
        found.push((item.into_path(), kind));
    }
    let mut entries = found
        .par_iter()
        .map(|(path, kind)| {
            crate::interrupt::check()?;
            let rel = path
                .strip_prefix(root)
                .expect("walkdir yields paths below its root");
            let mut entry = TreeEntry {
                path: rel.as_os_str().as_bytes().to_vec(),
                kind: *kind,
                executable: false,
                hashes: None,
                target: None,
            };
            match kind {
                TreeEntryKind::File => {
                    // Read beneath the root, through no symlink at all, and only as a regular
                    // file: a folder on the way swapped for a link since the walk cannot lead
                    // out of the tree, nor a FIFO put in the file's place block the hash.
                    let opened = beneath
                        .open_file(rel, Links::None)
                        .map_err(|e| tree_read_error(path, e))?;
                    entry.executable = opened.mode & 0o111 != 0;
                    entry.hashes = Some(hash_reader(&opened.file).map_err(io_err(path))?);
                }
                TreeEntryKind::Link => {
                    let target = fs::read_link(path).map_err(io_err(path))?;
                    entry.target = Some(target.as_os_str().as_bytes().to_vec());
                }
                TreeEntryKind::Dir => {}
            }
            Ok(entry)
        })
        .collect::<Result<Vec<_>, TreeError>>()?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(TreeHash {
        sha256: Checksum::of(
            Algorithm::Sha256,
            &tree_listing(&entries, Algorithm::Sha256),
        ),
        blake3: Checksum::of(
            Algorithm::Blake3,
            &tree_listing(&entries, Algorithm::Blake3),
        ),
        entries,
    })
}

/// The listing whose digest is the tree digest, for entries already in listing order.
pub fn tree_listing(entries: &[TreeEntry], algorithm: Algorithm) -> Vec<u8> {
    let mut out = b"reprove-tree-v1\n".to_vec();
    for e in entries {
        let (kind, exec, size, content) = match e.kind {
            TreeEntryKind::File => {
                let h = e.hashes.expect("a file entry carries its digests");
                let exec = if e.executable { "x" } else { "-" };
                ("file", exec, h.size, h.get(algorithm).hex())
            }
            TreeEntryKind::Dir => ("dir", "-", 0, "-".to_owned()),
            TreeEntryKind::Link => {
                let target = e.target.as_deref().unwrap_or_default();
                ("link", "-", target.len() as u64, escape(target))
            }
        };
        out.extend_from_slice(format!("{kind} {exec} {size} {content} ").as_bytes());
        out.extend_from_slice(escape(&e.path).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Keep `0x21..=0x7e` but `%`; write every other byte as `%XX`.
fn escape(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
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

    #[test]
    fn refuses_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(hash_tree(dir.path()), Err(TreeError::Special(_))));
    }
}
