//! Escrow intake: the source as deposited, checked against its pinned digest and unpacked into
//! a fresh tree that holds nothing it should not.
//!
//! An escrow is a directory or an archive — tar, tar.gz, tar.xz or zip — recognised by its
//! content, never by its name (a gzip or xz stream must hold a tar). [`digest`] says what to
//! pin; [`unpack`] checks the pin and unpacks, through [`crate::archive`] (which owns the
//! rules below on names, links and bounds, shared with shipped bundles, hermetic roots and
//! `diff`). `docs/escrow.md` is the user-facing account.
//!
//! Invariants of [`unpack`]:
//!
//! - **Checked before use.** An archive is opened once; all its bytes are hashed and compared
//!   with the pin before a single entry is extracted, and extraction reads the same open file,
//!   rewound. (Not one read teed into both: that would write entries of an unchecked archive;
//!   the hash pass costs 0.3 s of CPU on a 138 MB tar.xz whose decoding costs 11 s.) A
//!   directory is copied first and the *copy* is tree-hashed and compared, so what is checked
//!   is what the build will see, whatever happens to the original meanwhile.
//! - **Nothing lands outside `dest`.** No absolute path, no `..`, no symlink whose target
//!   leaves the tree (resolved against the link's own directory, through the tree's other
//!   links, as the kernel would), no hard link but to a regular file extracted before it, and
//!   nothing written through a symlink or below a file. Files are created with `O_EXCL`.
//! - **Only files, directories and symlinks.** Devices, fifos, sockets, sparse files and
//!   encrypted zip entries are refused, and so are names with control characters and an entry
//!   whose path an earlier entry already used (`./a`, `a/` and `a`, or `a//b` and `a/./b`,
//!   are one path), in a zip too.
//! - **Bounded.** What is written, the entries and the bytes, is charged as it is written
//!   against [`Limits::from_env`] (`REPROVE_MAX_UNPACKED_BYTES`, `REPROVE_MAX_ENTRIES`);
//!   past a bound, [`Error::Bound`] and nothing is left.
//! - **No metadata from the escrow.** Files are `0o755` when any execute bit is set and
//!   `0o644` otherwise, directories `0o755`; mtimes and owners are not restored. The tree
//!   digest ignores them too.
//! - **All or nothing.** On any error once `dest` was touched, what was extracted is removed:
//!   `dest` is removed if [`unpack`] created it, emptied if it was given empty. A signal is
//!   such an error: unpacking checks for one per entry and per chunk of an entry's data
//!   ([`Error::Interrupted`]).
//! - **Errors, not panics.** A corrupt, truncated or unsupported archive is
//!   [`Error::Corrupt`]; an entry's data must be as long as its header says.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::limits::BadValue;
pub(crate) use crate::archive::Reason;
use crate::archive::{all_or_nothing, Exceeded, Format, Limits, Policy, Totals};
use crate::hash::{hash_reader, hash_tree, Algorithm, Checksum};

/// What an escrow is, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Directory,
    Tar,
    TarGz,
    TarXz,
    Zip,
}

/// An escrow and its digests: of the archive's bytes, or the tree digest of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escrow {
    pub path: PathBuf,
    pub kind: Kind,
    pub sha256: Checksum,
    pub blake3: Checksum,
}

impl Escrow {
    /// The digest in `algorithm`.
    pub fn checksum(&self, algorithm: Algorithm) -> Checksum {
        match algorithm {
            Algorithm::Sha256 => self.sha256,
            Algorithm::Blake3 => self.blake3,
        }
    }
}

/// An escrow unpacked: the regular files written (hard links count as files) and their bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Unpacked {
    pub escrow: Escrow,
    pub files: u64,
    pub bytes: u64,
}

/// Why an escrow could not be taken in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("escrow `{}` does not match its pinned digest: expected `{expected}`, found `{found}`", path.display())]
    SourceMismatch {
        path: PathBuf,
        expected: Checksum,
        found: Checksum,
    },
    #[error("escrow `{}` cannot be read: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// `entry` is the entry's name as the escrow spells it, escaped for printing.
    #[error("escrow `{}` holds an unsafe entry `{entry}`: {reason}", path.display())]
    UnsafeEntry {
        path: PathBuf,
        entry: String,
        reason: Reason,
    },
    /// A bound on what unpacking may write was reached.
    #[error("escrow `{archive}` {exceeded}")]
    Bound { archive: String, exceeded: Exceeded },
    #[error(transparent)]
    BadLimit(#[from] BadValue),
    #[error("escrow `{}` is neither a directory nor a tar, tar.gz, tar.xz or zip archive", path.display())]
    UnknownFormat { path: PathBuf },
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

impl From<crate::archive::Error> for Error {
    fn from(e: crate::archive::Error) -> Self {
        use crate::archive::Error as A;
        match e {
            A::Corrupt { path, detail } => Error::Corrupt { path, detail },
            A::UnsafeEntry {
                path,
                entry,
                reason,
            } => Error::UnsafeEntry {
                path,
                entry,
                reason,
            },
            A::Bound { archive, exceeded } => Error::Bound { archive, exceeded },
            A::Io { path, source } => Error::Io { path, source },
            A::Interrupted(e) => Error::Interrupted(e),
        }
    }
}

/// The digests of the escrow at `path` and its kind, without unpacking or vetting its entries.
pub(crate) fn digest(path: &Path) -> Result<Escrow, Error> {
    let Some(mut file) = open(path)? else {
        let tree = hash_tree(path).map_err(|e| tree_error(path, e))?;
        return Ok(escrow(path, Kind::Directory, tree.sha256, tree.blake3));
    };
    let hashes = hash_reader(&mut file).map_err(io_error(path))?;
    let kind = detect(path, &mut file)?;
    Ok(escrow(path, kind, hashes.sha256, hashes.blake3))
}

/// Check the escrow at `path` against `expected` (compared in `expected`'s algorithm) and
/// unpack it into `dest`, which is created, or must be an empty directory, within the bounds
/// the environment sets ([`Limits::from_env`]).
pub(crate) fn unpack(path: &Path, expected: &Checksum, dest: &Path) -> Result<Unpacked, Error> {
    unpack_within(path, expected, dest, Limits::from_env()?)
}

/// [`unpack`] within `limits`.
pub(crate) fn unpack_within(
    path: &Path,
    expected: &Checksum,
    dest: &Path,
    limits: Limits,
) -> Result<Unpacked, Error> {
    let Some(mut file) = open(path)? else {
        return unpack_directory(path, expected, dest, limits);
    };
    let hashes = hash_reader(&mut file).map_err(io_error(path))?;
    let found = hashes.get(expected.algorithm);
    if found != *expected {
        return Err(Error::SourceMismatch {
            path: path.to_path_buf(),
            expected: *expected,
            found,
        });
    }
    let kind = detect(path, &mut file)?;
    let escrow = escrow(path, kind, hashes.sha256, hashes.blake3);
    let format = match kind {
        Kind::Tar => Format::Tar,
        Kind::TarGz => Format::Gzip,
        Kind::TarXz => Format::Xz,
        Kind::Zip => Format::Zip,
        Kind::Directory => unreachable!("directories are copied, not read"),
    };
    let Totals { files, bytes } =
        crate::archive::unpack(path, &mut file, format, dest, Policy::Source, limits)?;
    Ok(Unpacked {
        escrow,
        files,
        bytes,
    })
}

/// Copy the tree, then hash the copy: the digest is of exactly what was copied.
fn unpack_directory(
    path: &Path,
    expected: &Checksum,
    dest: &Path,
    limits: Limits,
) -> Result<Unpacked, Error> {
    all_or_nothing(dest, |dest| {
        let inside = fs::canonicalize(dest)
            .and_then(|d| Ok(d.starts_with(fs::canonicalize(path)?)))
            .map_err(io_error(dest))?;
        if inside {
            return Err(Error::Io {
                path: dest.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the destination lies inside the escrow directory",
                ),
            });
        }
        crate::archive::copy_directory(path, dest, limits)?;
        let tree = hash_tree(dest).map_err(|e| tree_error(dest, e))?;
        let escrow = escrow(path, Kind::Directory, tree.sha256, tree.blake3);
        let found = escrow.checksum(expected.algorithm);
        if found != *expected {
            return Err(Error::SourceMismatch {
                path: path.to_path_buf(),
                expected: *expected,
                found,
            });
        }
        let (files, bytes) = tree.file_totals();
        Ok(Unpacked {
            escrow,
            files,
            bytes,
        })
    })
}

/// Open `path` (without blocking, should it be a fifo): `None` for a directory, the file for a
/// regular file.
fn open(path: &Path) -> Result<Option<File>, Error> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    if meta.is_dir() {
        Ok(None)
    } else if meta.is_file() {
        Ok(Some(file))
    } else {
        Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// The kind of archive in `file`, from its first bytes (decompressed for gzip and xz); leaves
/// the file rewound.
fn detect(path: &Path, file: &mut File) -> Result<Kind, Error> {
    match crate::archive::unpackable_format(path, file)? {
        Some(Format::Tar) => Ok(Kind::Tar),
        Some(Format::Gzip) => Ok(Kind::TarGz),
        Some(Format::Xz) => Ok(Kind::TarXz),
        Some(Format::Zip) => Ok(Kind::Zip),
        _ => Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

fn escrow(path: &Path, kind: Kind, sha256: Checksum, blake3: Checksum) -> Escrow {
    Escrow {
        path: path.to_path_buf(),
        kind,
        sha256,
        blake3,
    }
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A tree digest that failed. (`hash::TreeError` is not exported, so it travels as a cause.)
fn tree_error(root: &Path, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Io {
        path: root.to_path_buf(),
        source: io::Error::other(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use tar::EntryType;
    use zip::write::SimpleFileOptions;

    /// An entry of a test tree.
    enum Spec {
        D(&'static str),
        F(&'static str, &'static [u8], bool),
        L(&'static str, &'static str),
    }
    use Spec::{D, F, L};

    const TREE: &[Spec] = &[
        D("src"),
        F("src/main.c", b"int main(void) { return 0; }\n", false),
        F("build.sh", b"#!/bin/sh\nmake\n", true),
        D("empty"),
        L("link", "src/main.c"),
        F("README", b"hello\n", false),
    ];

    fn make_dir(root: &Path, spec: &[Spec]) {
        for s in spec {
            match *s {
                D(n) => fs::create_dir_all(root.join(n)).unwrap(),
                F(n, data, exec) => {
                    fs::write(root.join(n), data).unwrap();
                    let mode = if exec { 0o700 } else { 0o600 };
                    fs::set_permissions(root.join(n), fs::Permissions::from_mode(mode)).unwrap();
                }
                L(n, t) => symlink(t, root.join(n)).unwrap(),
            }
        }
    }

    /// A tar entry written header byte by header byte, whatever its name.
    fn raw(
        tar: &mut tar::Builder<Vec<u8>>,
        name: &[u8],
        kind: EntryType,
        link: &[u8],
        data: &[u8],
    ) {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_cksum();
        tar.append(&h, data).unwrap();
    }

    /// A tar entry: name, type, link target, data.
    type RawEntry<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

    fn tar_raw(entries: &[RawEntry]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for &(name, kind, link, data) in entries {
            raw(&mut tar, name, kind, link, data);
        }
        tar.into_inner().unwrap()
    }

    fn tar_of(spec: &[Spec]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for s in spec {
            match *s {
                D(n) => raw(
                    &mut tar,
                    format!("./{n}/").as_bytes(),
                    EntryType::Directory,
                    b"",
                    b"",
                ),
                F(n, data, exec) => {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(if exec { 0o775 } else { 0o664 });
                    tar.append_data(&mut h, n, data).unwrap();
                }
                L(n, t) => raw(
                    &mut tar,
                    n.as_bytes(),
                    EntryType::Symlink,
                    t.as_bytes(),
                    b"",
                ),
            }
        }
        tar.into_inner().unwrap()
    }

    fn zip_of(spec: &[Spec]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for s in spec {
            match *s {
                D(n) => zip.add_directory(n, SimpleFileOptions::default()).unwrap(),
                F(n, data, exec) => {
                    let mode = if exec { 0o755 } else { 0o644 };
                    zip.start_file(n, SimpleFileOptions::default().unix_permissions(mode))
                        .unwrap();
                    zip.write_all(data).unwrap();
                }
                L(n, t) => zip.add_symlink(n, t, SimpleFileOptions::default()).unwrap(),
            }
        }
        zip.finish().unwrap().into_inner()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn sha256(data: &[u8]) -> Checksum {
        Checksum::of(Algorithm::Sha256, data)
    }

    /// Unpack `bytes`, pinned by their own digest, from a temporary folder holding
    /// `escrow.bin` (a name that says nothing about the format) into its `out`.
    fn unpack_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Unpacked, Error>) {
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        fs::write(&escrow, bytes).unwrap();
        let result = unpack(&escrow, &sha256(bytes), &dir.path().join("out"));
        (dir, result)
    }

    /// What is left in a test folder after a failed unpack: only the escrow itself.
    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn every_kind_unpacks_to_the_same_tree() {
        let src = tempfile::tempdir().unwrap();
        make_dir(src.path(), TREE);
        let want = hash_tree(src.path()).unwrap();
        let tar = tar_of(TREE);
        let cases = [
            (Kind::Tar, tar.clone()),
            (Kind::TarGz, gz(&tar)),
            (Kind::TarXz, xz(&tar)),
            (Kind::Zip, zip_of(TREE)),
        ];
        for (kind, bytes) in cases {
            let (dir, result) = unpack_bytes(&bytes);
            let out = dir.path().join("out");
            let unpacked = result.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(unpacked.escrow.kind, kind);
            assert_eq!(unpacked.escrow.sha256, sha256(&bytes));
            assert_eq!(
                unpacked.escrow.blake3,
                Checksum::of(Algorithm::Blake3, &bytes)
            );
            assert_eq!((unpacked.files, unpacked.bytes), (3, 50), "{kind:?}");
            assert_eq!(hash_tree(&out).unwrap().sha256, want.sha256, "{kind:?}");
            assert_eq!(mode(&out.join("build.sh")), 0o755, "{kind:?}");
            assert_eq!(mode(&out.join("README")), 0o644, "{kind:?}");
            assert_eq!(mode(&out.join("src")), 0o755, "{kind:?}");
            assert_eq!(digest(&unpacked.escrow.path).unwrap(), unpacked.escrow);
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let unpacked = unpack(src.path(), &want.sha256, &out).unwrap();
        assert_eq!(unpacked.escrow.kind, Kind::Directory);
        assert_eq!(unpacked.escrow.blake3, want.blake3);
        assert_eq!((unpacked.files, unpacked.bytes), (3, 50));
        assert_eq!(hash_tree(&out).unwrap().sha256, want.sha256);
        assert_eq!(mode(&out.join("build.sh")), 0o755);
        assert_eq!(mode(&out.join("README")), 0o644);
        assert_eq!(
            fs::read_link(out.join("link")).unwrap(),
            Path::new("src/main.c")
        );
        assert_eq!(digest(src.path()).unwrap(), unpacked.escrow);
    }

    #[test]
    fn kinds_serialize_in_snake_case() {
        let names: Vec<String> = [
            Kind::Directory,
            Kind::Tar,
            Kind::TarGz,
            Kind::TarXz,
            Kind::Zip,
        ]
        .iter()
        .map(|k| serde_json::to_string(k).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                r#""directory""#,
                r#""tar""#,
                r#""tar_gz""#,
                r#""tar_xz""#,
                r#""zip""#
            ]
        );
    }

    #[test]
    fn a_blake3_pin_is_compared_in_blake3() {
        let bytes = gz(&tar_of(TREE));
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        fs::write(&escrow, &bytes).unwrap();
        let pin = Checksum::of(Algorithm::Blake3, &bytes);
        assert!(unpack(&escrow, &pin, &dir.path().join("ok")).is_ok());
        let wrong = Checksum::of(Algorithm::Blake3, b"other");
        let err = unpack(&escrow, &wrong, &dir.path().join("bad")).unwrap_err();
        assert!(
            matches!(err, Error::SourceMismatch { expected, found, .. } if expected == wrong && found == pin),
            "{err}"
        );
    }

    #[test]
    fn a_mismatch_extracts_nothing() {
        let bytes = gz(&tar_of(TREE));
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        fs::write(&escrow, &bytes).unwrap();
        let wrong = sha256(b"not the escrow");
        let fresh = dir.path().join("fresh");
        let err = unpack(&escrow, &wrong, &fresh).unwrap_err();
        assert!(
            matches!(&err, Error::SourceMismatch { found, .. } if *found == sha256(&bytes)),
            "{err}"
        );
        assert!(err.to_string().starts_with(&format!(
            "escrow `{}` does not match its pinned digest: expected `sha256:",
            escrow.display()
        )));
        assert!(!fresh.exists());
        let given = dir.path().join("given");
        fs::create_dir(&given).unwrap();
        assert!(unpack(&escrow, &wrong, &given).is_err());
        assert_eq!(fs::read_dir(&given).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_mismatch_empties_dest() {
        let src = tempfile::tempdir().unwrap();
        make_dir(src.path(), TREE);
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().join("given");
        fs::create_dir(&given).unwrap();
        let wrong = sha256(b"not the tree");
        let err = unpack(src.path(), &wrong, &given).unwrap_err();
        let want = hash_tree(src.path()).unwrap().sha256;
        assert!(
            matches!(err, Error::SourceMismatch { found, .. } if found == want),
            "{err}"
        );
        assert_eq!(fs::read_dir(&given).unwrap().count(), 0);
    }

    #[test]
    fn dest_must_be_new_or_empty_and_outside_a_directory_escrow() {
        let bytes = tar_of(TREE);
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        fs::write(&escrow, &bytes).unwrap();
        let busy = dir.path().join("busy");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("keep"), b"mine").unwrap();
        let err = unpack(&escrow, &sha256(&bytes), &busy).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if *path == busy),
            "{err}"
        );
        assert_eq!(fs::read(busy.join("keep")).unwrap(), b"mine");

        let src = tempfile::tempdir().unwrap();
        make_dir(src.path(), TREE);
        let pin = hash_tree(src.path()).unwrap().sha256;
        let inner = src.path().join("out");
        let err = unpack(src.path(), &pin, &inner).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(!inner.exists());
    }

    /// One hostile tar per case: refused with `reason`, naming `entry`, leaving nothing behind.
    macro_rules! refused {
        ($($test:ident: [$($entry:expr),+ $(,)?] => $named:expr, $reason:pat),+ $(,)?) => {$(
            #[test]
            fn $test() {
                let (dir, result) = unpack_bytes(&tar_raw(&[$($entry),+]));
                let err = result.expect_err("a hostile archive must be refused");
                match &err {
                    Error::UnsafeEntry { entry, reason, .. } => {
                        assert_eq!(entry, $named, "{err}");
                        assert!(matches!(reason, $reason), "{err}");
                    }
                    other => panic!("expected an unsafe entry, got: {other}"),
                }
                assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
            }
        )+};
    }

    const REG: EntryType = EntryType::Regular;
    const DIR: EntryType = EntryType::Directory;
    const SYM: EntryType = EntryType::Symlink;
    const HARD: EntryType = EntryType::Link;

    refused! {
        tar_parent_dir: [(b"../evil", REG, b"", b"x")] => "../evil", Reason::ParentDir,
        tar_parent_dir_inside: [(b"a/../../evil", REG, b"", b"x")] => "a/../../evil", Reason::ParentDir,
        tar_absolute: [(b"/tmp/evil", REG, b"", b"x")] => "/tmp/evil", Reason::Absolute,
        tar_symlink_absolute: [(b"l", SYM, b"/etc", b"")] => "l", Reason::LinkOutside(_),
        tar_symlink_climbs: [(b"a/l", SYM, b"../../x", b"")] => "a/l", Reason::LinkOutside(_),
        tar_symlink_chain: [(b"x/up", SYM, b"..", b""), (b"l", SYM, b"x/up/../etc", b"")]
            => "l", Reason::LinkOutside(_),
        tar_symlink_chain_completed_later: [(b"l", SYM, b"x/up/..", b""), (b"x/up", SYM, b"..", b"")]
            => "l", Reason::LinkOutside(_),
        tar_symlink_loop: [(b"a", SYM, b"b", b""), (b"b", SYM, b"a/c", b"")] => "a", Reason::LinkLoop,
        tar_hard_link_outside: [(b"h", HARD, b"../../etc/passwd", b"")] => "h", Reason::LinkOutside(_),
        tar_hard_link_absolute: [(b"h", HARD, b"/etc/passwd", b"")] => "h", Reason::LinkOutside(_),
        tar_hard_link_forward: [(b"h", HARD, b"a", b""), (b"a", REG, b"", b"x")]
            => "h", Reason::HardLinkTarget(_),
        tar_hard_link_to_dir: [(b"d/", DIR, b"", b""), (b"h", HARD, b"d", b"")]
            => "h", Reason::HardLinkTarget(_),
        tar_through_symlink: [(b"d/", DIR, b"", b""), (b"l", SYM, b"d", b""), (b"l/f", REG, b"", b"x")]
            => "l/f", Reason::ThroughSymlink(_),
        tar_below_a_file: [(b"f", REG, b"", b"x"), (b"f/g", REG, b"", b"y")] => "f/g", Reason::UnderFile(_),
        tar_char_device: [(b"dev/null", EntryType::Char, b"", b"")]
            => "dev/null", Reason::Special("character device"),
        tar_fifo: [(b"p", EntryType::Fifo, b"", b"")] => "p", Reason::Special("fifo"),
        tar_duplicate: [(b"./a", REG, b"", b"1"), (b"a", REG, b"", b"2")] => "a", Reason::Duplicate,
        tar_symlink_over_file: [(b"a", REG, b"", b"1"), (b"a", SYM, b"b", b"")] => "a", Reason::Duplicate,
        tar_dir_over_file: [(b"a", REG, b"", b"1"), (b"a/", DIR, b"", b"")] => "a/", Reason::Duplicate,
        tar_dir_twice: [(b"a/", DIR, b"", b""), (b"./a", DIR, b"", b"")] => "./a", Reason::Duplicate,
        tar_control_char: [(b"a\x1b[2Jb", REG, b"", b"x")] => "a\\u{1b}[2Jb", Reason::ControlChar,
        tar_no_name: [(b"./", REG, b"", b"x")] => "./", Reason::NoName,
    }

    #[test]
    fn what_is_odd_but_safe_is_tolerated() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut global = tar::Header::new_ustar();
        global.set_entry_type(EntryType::XGlobalHeader);
        let pax = b"52 comment=0123456789012345678901234567890123456789\n";
        global.set_size(pax.len() as u64);
        global.set_cksum();
        tar.append(&global, &pax[..]).unwrap();
        for &(name, kind, link, data) in &[
            (&b"./"[..], DIR, &b""[..], &b""[..]),
            (b"a/b/f", REG, b"", b"data"),
            (b"a/", DIR, b"", b""),
            (b"a/b/h", HARD, b"./a/b/f", b""),
            (b"a/b/up", SYM, b"../../a", b""),
            (b"caf\xc3\xa9 \xff", REG, b"", b"latin"),
        ] {
            raw(&mut tar, name, kind, link, data);
        }
        let (dir, result) = unpack_bytes(&tar.into_inner().unwrap());
        let unpacked = result.unwrap();
        let out = dir.path().join("out");
        assert_eq!((unpacked.files, unpacked.bytes), (3, 13));
        assert_eq!(fs::read(out.join("a/b/h")).unwrap(), b"data");
        assert_eq!(
            fs::read_link(out.join("a/b/up")).unwrap(),
            Path::new("../../a")
        );
        assert!(out
            .join(std::ffi::OsStr::from_bytes(b"caf\xc3\xa9 \xff"))
            .is_file());
    }

    #[test]
    fn unsafe_entry_message_names_escrow_entry_and_reason() {
        let (dir, result) = unpack_bytes(&tar_raw(&[(b"../etc/passwd", REG, b"", b"x")]));
        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "escrow `{}` holds an unsafe entry `../etc/passwd`: it climbs out of the tree with `..`",
                dir.path().join("escrow.bin").display()
            )
        );
    }

    /// Offsets of each signature `sig` in `data`.
    fn find_all(data: &[u8], sig: &[u8]) -> Vec<usize> {
        data.windows(sig.len())
            .enumerate()
            .filter(|(_, w)| *w == sig)
            .map(|(i, _)| i)
            .collect()
    }

    fn zip_files(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn unsafe_reason(result: Result<Unpacked, Error>) -> (String, Reason) {
        match result {
            Err(Error::UnsafeEntry { entry, reason, .. }) => (entry, reason),
            other => panic!("expected an unsafe entry, got: {other:?}"),
        }
    }

    #[test]
    fn zip_slip_and_absolute_names_are_refused() {
        let (dir, result) = unpack_bytes(&zip_files(&[("ok.txt", b"1"), ("../../evil.txt", b"2")]));
        assert_eq!(
            unsafe_reason(result),
            ("../../evil.txt".to_owned(), Reason::ParentDir)
        );
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
        let (_dir, result) = unpack_bytes(&zip_files(&[("/tmp/evil.txt", b"2")]));
        assert_eq!(unsafe_reason(result).1, Reason::Absolute);
        let (_dir, result) = unpack_bytes(&zip_files(&[("./a", b"1"), ("a", b"2")]));
        assert_eq!(unsafe_reason(result), ("a".to_owned(), Reason::Duplicate));
    }

    /// A zip naming `name` for each of `data`: written under placeholders of the same length
    /// (the zip crate refuses a name twice), then patched in the local and central headers.
    fn zip_twice(name: &str, data: &[&[u8]]) -> Vec<u8> {
        let tags: Vec<String> = (0..data.len())
            .map(|i| format!("{i:0width$}", width = name.len()))
            .collect();
        let entries: Vec<(&str, &[u8])> = tags
            .iter()
            .map(String::as_str)
            .zip(data.iter().copied())
            .collect();
        let mut bytes = zip_files(&entries);
        for tag in &tags {
            for at in find_all(&bytes, tag.as_bytes()) {
                bytes[at..at + name.len()].copy_from_slice(name.as_bytes());
            }
        }
        bytes
    }

    // See: issue 8. The zip crate keys members by name: a name listed twice showed up once,
    // and the last one was unpacked.
    #[test]
    fn a_zip_naming_a_member_twice_is_refused() {
        let (dir, result) = unpack_bytes(&zip_twice("Makefile", &[b"evil", b"good"]));
        assert_eq!(
            unsafe_reason(result),
            ("Makefile".to_owned(), Reason::Duplicate)
        );
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
        for (a, b) in [("a//b", "a/b"), ("a/./b", "a/b"), ("d/", "d")] {
            let (dir, result) = unpack_bytes(&zip_files(&[(a, b"1"), (b, b"2")]));
            assert_eq!(unsafe_reason(result), (b.to_owned(), Reason::Duplicate));
            assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
        }
    }

    /// Unpack `bytes` within `limits`; the error must be the bound `bound`, with nothing left.
    fn assert_bound(bytes: &[u8], limits: Limits, bound: crate::archive::Bound) {
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        fs::write(&escrow, bytes).unwrap();
        let err =
            unpack_within(&escrow, &sha256(bytes), &dir.path().join("out"), limits).unwrap_err();
        match &err {
            Error::Bound { exceeded, .. } => assert_eq!(exceeded.bound, bound, "{err}"),
            other => panic!("expected a bound, got: {other}"),
        }
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
    }

    #[test]
    fn unpacking_stops_at_each_bound_and_leaves_nothing() {
        let zeros = tar_raw(&[(b"z", REG, b"", &vec![0u8; 1 << 20])]);
        let small = Limits {
            max_bytes: 4096,
            ..Limits::default()
        };
        assert_bound(&gz(&zeros), small, crate::archive::Bound::Bytes);
        assert_bound(&xz(&zeros), small, crate::archive::Bound::Bytes);
        assert_bound(
            &zip_files(&[("z", &vec![0u8; 1 << 20])]),
            small,
            crate::archive::Bound::Bytes,
        );
        // Past the tar's end: read to check the trailer, and counted all the same.
        let mut padded = tar_raw(&[(b"a", REG, b"", b"x")]);
        padded.extend_from_slice(&vec![0u8; 1 << 20]);
        assert_bound(&gz(&padded), small, crate::archive::Bound::Bytes);
        let few = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        assert_bound(&tar_of(TREE), few, crate::archive::Bound::Entries);
        assert_bound(&zip_of(TREE), few, crate::archive::Bound::Entries);
        // Exactly at the bound is within it.
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        let bytes = tar_raw(&[(b"a", REG, b"", &[1u8; 100])]);
        fs::write(&escrow, &bytes).unwrap();
        let exact = Limits {
            max_bytes: 100 + 1024,
            max_entries: 1,
            ..Limits::default()
        };
        // 1024: the tar's two end blocks, read past its last entry.
        unpack_within(&escrow, &sha256(&bytes), &dir.path().join("out"), exact).unwrap();
    }

    #[test]
    fn a_bound_error_names_the_escrow_the_bound_and_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = dir.path().join("escrow.bin");
        let bytes = gz(&tar_raw(&[(b"z", REG, b"", &vec![0u8; 1 << 16])]));
        fs::write(&escrow, &bytes).unwrap();
        let limits = Limits {
            max_bytes: 1000,
            ..Limits::default()
        };
        let err =
            unpack_within(&escrow, &sha256(&bytes), &dir.path().join("out"), limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "escrow `{}` unpacks to more than 1000 bytes: set `REPROVE_MAX_UNPACKED_BYTES` to raise the bound",
                escrow.display()
            )
        );
    }

    #[test]
    fn zip_symlinks_that_escape_are_refused() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_symlink("d/l", "../../etc", SimpleFileOptions::default())
            .unwrap();
        let (dir, result) = unpack_bytes(&zip.finish().unwrap().into_inner());
        assert_eq!(
            unsafe_reason(result),
            (
                "d/l".to_owned(),
                Reason::LinkOutside("../../etc".to_owned())
            )
        );
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
    }

    #[test]
    fn zip_device_nodes_are_refused() {
        let mut bytes = zip_files(&[("dev", b"")]);
        // The unix mode is the high half of the central directory's external attributes.
        let at = find_all(&bytes, b"PK\x01\x02")[0] + 38;
        bytes[at..at + 4].copy_from_slice(&(0o020_644u32 << 16).to_le_bytes());
        let (_dir, result) = unpack_bytes(&bytes);
        assert_eq!(
            unsafe_reason(result),
            ("dev".to_owned(), Reason::Special("character device"))
        );
    }

    #[test]
    fn zip_encrypted_entries_are_refused() {
        let mut bytes = zip_files(&[("plain", b"1"), ("secret", b"2")]);
        // Set the "encrypted" flag of the second entry in its local and central headers.
        let local = find_all(&bytes, b"PK\x03\x04")[1];
        let central = find_all(&bytes, b"PK\x01\x02")[1];
        bytes[local + 6] |= 1;
        bytes[central + 8] |= 1;
        let (dir, result) = unpack_bytes(&bytes);
        assert_eq!(
            unsafe_reason(result),
            ("secret".to_owned(), Reason::Encrypted)
        );
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
    }

    /// Data that deflate cannot shrink away, so a flipped byte lands in real compressed data.
    fn noisy(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn big_tar() -> Vec<u8> {
        let data = noisy(64 << 10);
        tar_raw(&[
            (b"a/", DIR, b"", b""),
            (b"a/blob", REG, b"", &data),
            (b"b", REG, b"", b"end"),
        ])
    }

    fn assert_corrupt(bytes: &[u8], what: &str) {
        let (dir, result) = unpack_bytes(bytes);
        assert!(
            matches!(result, Err(Error::Corrupt { .. })),
            "{what}: {result:?}"
        );
        assert_eq!(leftovers(dir.path()), ["escrow.bin"], "{what}");
    }

    #[test]
    fn damaged_archives_are_corrupt_not_panics() {
        let tar = big_tar();
        let mut flipped = gz(&tar);
        let mid = flipped.len() / 2;
        for b in &mut flipped[mid..mid + 16] {
            *b ^= 0x5a;
        }
        assert_corrupt(&flipped, "gzip with flipped bytes");
        let tgz = gz(&tar);
        assert_corrupt(&tgz[..tgz.len() / 2], "truncated tar.gz");
        assert_corrupt(&tgz[..tgz.len() - 4], "tar.gz without its size trailer");
        let txz = xz(&tar);
        assert_corrupt(&txz[..txz.len() / 2], "truncated tar.xz");
        assert_corrupt(&tar[..2048], "tar cut inside a file");
        let zip = zip_files(&[("a", &noisy(4096)), ("b", b"x")]);
        assert_corrupt(&zip[..zip.len() / 2], "truncated zip");
        let mut zip_bad_crc = zip.clone();
        zip_bad_crc[200] ^= 0xff;
        assert_corrupt(&zip_bad_crc, "zip with a damaged member");
    }

    #[test]
    fn an_entry_longer_than_the_stream_is_corrupt() {
        let mut tar = tar_raw(&[(b"giant", REG, b"", b"only this")]);
        // Claim a terabyte in the header; the stream ends after nine bytes.
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(&tar[..512]);
        header.set_size(1 << 40);
        header.set_cksum();
        tar[..512].copy_from_slice(header.as_bytes());
        let (dir, result) = unpack_bytes(&tar);
        match result {
            Err(Error::Corrupt { detail, .. }) => assert!(detail.contains("giant"), "{detail}"),
            other => panic!("expected corrupt, got: {other:?}"),
        }
        assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
    }

    #[test]
    fn the_format_is_read_from_the_content() {
        for (bytes, what) in [
            (noisy(4096), "random bytes"),
            (Vec::new(), "an empty file"),
            (gz(b"just some text, not a tar"), "gzip of text"),
            (xz(&noisy(1024)), "xz of noise"),
        ] {
            let (dir, result) = unpack_bytes(&bytes);
            assert!(
                matches!(result, Err(Error::UnknownFormat { .. })),
                "{what}: {result:?}"
            );
            assert_eq!(leftovers(dir.path()), ["escrow.bin"], "{what}");
        }
    }

    #[test]
    fn a_directory_with_an_escaping_symlink_or_a_fifo_is_refused() {
        let src = tempfile::tempdir().unwrap();
        make_dir(src.path(), TREE);
        symlink("/etc/passwd", src.path().join("src/passwd")).unwrap();
        let pin = hash_tree(src.path()).unwrap().sha256;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let (entry, reason) = unsafe_reason(unpack(src.path(), &pin, &out));
        assert_eq!(entry, "src/passwd");
        assert_eq!(reason, Reason::LinkOutside("/etc/passwd".to_owned()));
        assert!(!out.exists());

        fs::remove_file(src.path().join("src/passwd")).unwrap();
        let fifo = std::ffi::CString::new(src.path().join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let (entry, reason) = unsafe_reason(unpack(src.path(), &pin, &out));
        assert_eq!((entry.as_str(), reason), ("pipe", Reason::Special("fifo")));
        assert!(!out.exists());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the bytes, `unpack` returns; when it refuses, it leaves nothing behind.
        #[test]
        fn random_bytes_never_panic(
            magic in 0usize..5,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500),
        ) {
            let mut bytes = match magic {
                0 => Vec::new(),
                1 => vec![0x1f, 0x8b, 8, 0],
                2 => b"\xfd7zXZ\x00".to_vec(),
                3 => b"PK\x03\x04".to_vec(),
                _ => tar_raw(&[(b"a", REG, b"", b"0123456789")])[..512].to_vec(),
            };
            bytes.extend_from_slice(&body);
            let (dir, result) = unpack_bytes(&bytes);
            if result.is_err() {
                proptest::prop_assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
            }
        }

        /// A valid archive with one byte changed anywhere: no panic, and all or nothing.
        #[test]
        fn damaged_archives_never_panic(kind in 0usize..3, at in 0usize..usize::MAX, byte in 0u8..) {
            let tar = tar_of(TREE);
            let mut bytes = match kind {
                0 => tar,
                1 => gz(&tar),
                _ => zip_of(TREE),
            };
            let at = at % bytes.len();
            bytes[at] ^= byte | 1;
            let (dir, result) = unpack_bytes(&bytes);
            if result.is_err() {
                proptest::prop_assert_eq!(leftovers(dir.path()), ["escrow.bin"]);
            }
        }
    }
}
