//! Hermetic toolchain roots: a rootfs directory or tar archive, pinned by digest, made ready
//! for the bubblewrap backend.
//!
//! A directory is pinned by its tree digest and used in place; it must hold no device nodes
//! (the sandbox brings its own `/dev`). An archive (tar, tar.gz or tar.xz, recognised by its
//! magic bytes, as made by debootstrap or exported from a container image) is pinned by its file
//! digest and unpacked once into `CACHE/<hex of the digest>`. The pin of the input is checked on
//! every call — hashing even a large root takes well under a second — but unpacking happens only
//! when the cache entry is missing. An entry is unpacked into a temporary directory in the cache
//! and renamed into place, so an entry that exists is complete: the rename is the marker; and
//! it is unpacked under an exclusive lock on the `CACHE` folder itself (`flock`), so that of
//! several processes sharing the cache one unpacks and the others wait and use its tree. A
//! signal stops the unpacking between two entries or two chunks, and the temporary directory
//! goes with the error.
//!
//! A root is unpacked through [`crate::archive`] as a root ([`Policy::Root`]), not as escrowed
//! source: symlinks are kept exactly as they are, absolute ones included (they are resolved
//! inside the sandbox, never on the host), device nodes and fifos are skipped, execute bits
//! are kept and set-id bits dropped. The archive rules hold as everywhere: an entry whose name
//! is absolute or holds `..`, that would be written through a symlink on the host, that is a
//! hard link to anything but a file unpacked before it, or whose path an earlier entry already
//! used (`./a` and `a` are one path) is refused, and the bounds on bytes and entries
//! (`REPROVE_MAX_UNPACKED_BYTES`, `REPROVE_MAX_ENTRIES`) apply.
//!
//! A root directory is hashed with [`crate::hash::hash_tree`], which reads each file beneath the
//! root through no symlink; a root named as a FIFO or a device is refused before it is opened.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use super::Error;
use crate::archive::{sniff, Format, Limits, Policy, SNIFF_LEN};
use crate::hash::{hash_reader, hash_tree, Algorithm, Checksum};

/// The cache of unpacked roots: `$REPROVE_CACHE_DIR/roots`, else `$XDG_CACHE_HOME/reprove/roots`,
/// else `~/.cache/reprove/roots`.
pub(crate) fn default_cache_dir() -> Result<PathBuf, Error> {
    cache_root()
        .map(|dir| dir.join("roots"))
        .ok_or(Error::NoCacheDir)
}

/// reprove's cache folder: `REPROVE_CACHE_DIR`, else `XDG_CACHE_HOME/reprove`, else
/// `~/.cache/reprove`. Everything in it is keyed by digest and safe to share.
pub(crate) fn cache_root() -> Option<PathBuf> {
    cache_root_from(|key| std::env::var_os(key))
}

fn cache_root_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |key| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("REPROVE_CACHE_DIR") {
        Some(dir)
    } else if let Some(dir) = set("XDG_CACHE_HOME") {
        Some(dir.join("reprove"))
    } else {
        Some(set("HOME")?.join(".cache/reprove"))
    }
}

/// Check the root at `path` against `expected` and return the directory to use as `/`: `path`
/// itself for a directory, the unpacked copy in `cache` for an archive.
/// An archive is unpacked within the bounds the environment sets ([`Limits::from_env`]).
pub(crate) fn prepare_root(
    path: &Path,
    expected: &Checksum,
    cache: &Path,
) -> Result<PathBuf, Error> {
    prepare_root_within(path, expected, cache, Limits::from_env()?)
}

fn prepare_root_within(
    path: &Path,
    expected: &Checksum,
    cache: &Path,
    limits: Limits,
) -> Result<PathBuf, Error> {
    let read_err = |source| Error::RootRead {
        path: path.to_path_buf(),
        source,
    };
    // Only a directory or a regular file: a FIFO or a device named as the root is refused
    // before anything opens it.
    let as_io = |e: crate::beneath::Error| match e {
        crate::beneath::Error::Io { source, .. } => source,
        e => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    };
    let meta = crate::beneath::stat_file_or_dir(path)
        .map_err(as_io)
        .map_err(read_err)?;
    let actual = if meta.is_dir() {
        let tree = hash_tree(path).map_err(|source| Error::RootTree {
            path: path.to_path_buf(),
            source,
        })?;
        match expected.algorithm {
            Algorithm::Sha256 => tree.sha256,
            Algorithm::Blake3 => tree.blake3,
        }
    } else {
        let file = crate::beneath::open_regular(path)
            .map_err(as_io)
            .map_err(read_err)?;
        hash_reader(&file)
            .map_err(read_err)?
            .get(expected.algorithm)
    };
    if actual != *expected {
        return Err(Error::RootMismatch {
            path: path.to_path_buf(),
            expected: *expected,
            actual,
        });
    }
    if meta.is_dir() {
        return Ok(path.to_path_buf());
    }
    let dest = cache.join(expected.hex());
    if dest.is_dir() {
        return Ok(dest);
    }
    let unpack_err = |source| Error::RootUnpack {
        path: path.to_path_buf(),
        dest: dest.clone(),
        source,
    };
    fs::create_dir_all(cache).map_err(unpack_err)?;
    // One process unpacks a root while the others sharing the cache wait for it, then use its
    // tree (`--jobs`, parallel CI jobs): not each a copy of gigabytes at once.
    let _lock = crate::atomic::EntryLock::acquire(cache).map_err(unpack_err)?;
    if dest.is_dir() {
        return Ok(dest);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(cache)
        .map_err(unpack_err)?;
    let mut file = File::open(path).map_err(read_err)?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .and_then(|_| file.rewind())
        .map_err(read_err)?;
    let Some(format @ (Format::Tar | Format::Gzip | Format::Xz)) = sniff(&head) else {
        return Err(Error::RootFormat {
            path: path.to_path_buf(),
        });
    };
    crate::archive::unpack(path, &mut file, format, tmp.path(), Policy::Root, limits).map_err(
        |e| match e {
            crate::archive::Error::UnsafeEntry { entry, reason, .. } => Error::RootEntry {
                path: path.to_path_buf(),
                entry,
                reason,
            },
            crate::archive::Error::Io { source, .. } => unpack_err(source),
            source => Error::RootArchive {
                path: path.to_path_buf(),
                source,
            },
        },
    )?;
    match fs::rename(tmp.path(), &dest) {
        Ok(()) => {}
        // Another process unpacked the same root first; ours is dropped.
        Err(_) if dest.is_dir() => {}
        Err(source) => return Err(unpack_err(source)),
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Reason;
    use crate::hash::Hashes;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use tar::EntryType;
    use tar::{Builder, Header};

    /// A tar entry: a name written as raw bytes (so hostile names can be made), a type, a
    /// mode, and the data or link target.
    fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h
    }

    /// More entries for [`root_tar`].
    type Extra = fn(&mut Builder<Vec<u8>>);

    fn add(b: &mut Builder<impl Write>, name: &[u8], kind: EntryType, mode: u32, data: &[u8]) {
        let mut h = header(name, kind, mode, data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut Builder<impl Write>, name: &[u8], kind: EntryType, target: &[u8]) {
        let mut h = header(name, kind, 0o777, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }

    /// A small root as debootstrap would make it: merged /usr, an absolute loader link, a
    /// hard link, a device node.
    fn root_tar(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        add(&mut b, b"./", EntryType::Directory, 0o755, b"");
        add(&mut b, b"./usr/", EntryType::Directory, 0o755, b"");
        add(&mut b, b"./usr/bin/", EntryType::Directory, 0o755, b"");
        add(
            &mut b,
            b"./usr/bin/tool",
            EntryType::Regular,
            0o4755,
            b"#!/bin/sh\n",
        );
        add(
            &mut b,
            b"./usr/lib/ld.so",
            EntryType::Regular,
            0o644,
            b"loader",
        );
        link(&mut b, b"./bin", EntryType::Symlink, b"usr/bin");
        link(
            &mut b,
            b"./lib64/ld.so",
            EntryType::Symlink,
            b"/usr/lib/ld.so",
        );
        link(
            &mut b,
            b"./usr/bin/tool2",
            EntryType::Link,
            b"./usr/bin/tool",
        );
        add(&mut b, b"./dev/null", EntryType::Char, 0o666, b"");
        extra(&mut b);
        b.into_inner().unwrap()
    }

    fn write(dir: &Path, name: &str, data: &[u8]) -> (PathBuf, Hashes) {
        let path = dir.join(name);
        fs::write(&path, data).unwrap();
        (path.clone(), crate::hash::hash_file(&path).unwrap())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(data).unwrap();
        xz.finish().unwrap()
    }

    #[test]
    fn unpacks_a_root_once_and_keeps_its_links() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let tar = root_tar(|_| {});
        for (name, data) in [
            ("root.tar", tar.clone()),
            ("root.tar.gz", gzip(&tar)),
            ("root.tar.xz", xz(&tar)),
        ] {
            let (path, hashes) = write(tmp.path(), name, &data);
            let root = prepare_root(&path, &hashes.sha256, &cache).unwrap();
            assert_eq!(root, cache.join(hashes.sha256.hex()));
            let tool = root.join("usr/bin/tool");
            assert_eq!(fs::read(&tool).unwrap(), b"#!/bin/sh\n");
            let mode = fs::metadata(&tool).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o755, "exec bits kept, set-id dropped");
            assert_eq!(
                fs::read_link(root.join("bin")).unwrap(),
                Path::new("usr/bin")
            );
            assert_eq!(
                fs::read_link(root.join("lib64/ld.so")).unwrap(),
                Path::new("/usr/lib/ld.so")
            );
            assert_eq!(
                fs::read(root.join("usr/bin/tool2")).unwrap(),
                b"#!/bin/sh\n"
            );
            assert!(!root.join("dev/null").exists(), "device nodes are skipped");
        }
        // Only finished entries are in the cache.
        let names: Vec<_> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn second_call_uses_the_cache_but_checks_the_pin() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (path, hashes) = write(tmp.path(), "root.tar.gz", &gzip(&root_tar(|_| {})));
        let root = prepare_root(&path, &hashes.blake3, &cache).unwrap();
        fs::write(root.join("usr/bin/tool"), "changed in the cache").unwrap();
        assert_eq!(prepare_root(&path, &hashes.blake3, &cache).unwrap(), root);
        assert_eq!(
            fs::read(root.join("usr/bin/tool")).unwrap(),
            b"changed in the cache"
        );
        // The archive changes under its pin: refused, though the cache holds the old one.
        fs::write(
            &path,
            gzip(&root_tar(|b| {
                add(b, b"./new", EntryType::Regular, 0o644, b"");
            })),
        )
        .unwrap();
        let err = prepare_root(&path, &hashes.blake3, &cache).unwrap_err();
        assert!(matches!(err, Error::RootMismatch { .. }), "{err}");
    }

    #[test]
    fn a_symlink_and_a_directory_of_the_same_name_are_refused() {
        // See: issue 8. An archive that names a path twice is refused; it used to be unpacked
        // "later wins", which let a root say one thing to a reader and another to the sandbox.
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        fs::create_dir(&host).unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o700)).unwrap();
        let target = host.as_os_str().as_bytes().to_vec();
        let tar = root_tar(move |b| {
            link(b, b"./opt", EntryType::Symlink, &target);
            add(b, b"./opt/", EntryType::Directory, 0o755, b"");
        });
        let (path, hashes) = write(tmp.path(), "root.tar", &tar);
        let cache = tmp.path().join("cache");
        let err = prepare_root(&path, &hashes.sha256, &cache).unwrap_err();
        assert!(
            matches!(&err, Error::RootEntry { entry, reason: Reason::Duplicate, .. } if entry == "./opt/"),
            "{err}"
        );
        let mode = fs::metadata(&host).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the host folder is untouched");
        assert_eq!(
            fs::read_dir(&cache).unwrap().count(),
            0,
            "nothing left in the cache"
        );
    }

    #[test]
    fn a_root_past_a_bound_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (path, hashes) = write(tmp.path(), "root.tar", &root_tar(|_| {}));
        for (limits, bound) in [
            (
                Limits {
                    max_bytes: 8,
                    ..Limits::default()
                },
                crate::archive::Bound::Bytes,
            ),
            (
                Limits {
                    max_entries: 3,
                    ..Limits::default()
                },
                crate::archive::Bound::Entries,
            ),
        ] {
            let err = prepare_root_within(&path, &hashes.sha256, &cache, limits).unwrap_err();
            assert!(
                matches!(&err, Error::RootArchive { source: crate::archive::Error::Bound { exceeded, .. }, .. } if exceeded.bound == bound),
                "{err}"
            );
            assert_eq!(fs::read_dir(&cache).unwrap().count(), 0);
        }
    }

    #[test]
    fn digest_mismatch_is_refused_before_unpacking() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (path, _) = write(tmp.path(), "root.tar", &root_tar(|_| {}));
        let wrong = Checksum::of(Algorithm::Sha256, b"something else");
        let err = prepare_root(&path, &wrong, &cache).unwrap_err();
        assert!(err.to_string().contains("does not match its pin"), "{err}");
        assert!(!cache.exists());
    }

    #[test]
    fn hostile_entries_are_refused() {
        let cases: [(Reason, Extra); 8] = [
            (Reason::ParentDir, |b| {
                add(b, b"./usr/../../evil", EntryType::Regular, 0o644, b"x");
            }),
            (Reason::Absolute, |b| {
                add(b, b"/etc/evil", EntryType::Regular, 0o644, b"x");
            }),
            // `bin` is a symlink to `usr/bin`: legitimate inside the sandbox, but writing
            // through it on the host is what an attack through `lib64 -> /` would do.
            (Reason::ThroughSymlink("bin".into()), |b| {
                add(b, b"./bin/evil", EntryType::Regular, 0o644, b"x");
            }),
            (Reason::HardLinkTarget("./lib64/ld.so/x".into()), |b| {
                link(b, b"./evil", EntryType::Link, b"./lib64/ld.so/x");
            }),
            // The same path twice, spelt alike or not: refused, not "the later wins".
            (Reason::Duplicate, |b| {
                add(b, b"./usr/bin/tool", EntryType::Regular, 0o755, b"evil");
            }),
            (Reason::Duplicate, |b| {
                add(b, b"usr/./bin/tool", EntryType::Regular, 0o755, b"evil");
            }),
            (Reason::Duplicate, |b| {
                add(b, b"usr//lib/ld.so", EntryType::Regular, 0o644, b"evil");
            }),
            (Reason::Duplicate, |b| {
                add(b, b"./usr/bin/tool/", EntryType::Directory, 0o755, b"");
            }),
        ];
        for (reason, extra) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let cache = tmp.path().join("cache");
            let (path, hashes) = write(tmp.path(), "root.tar", &root_tar(extra));
            let err = prepare_root(&path, &hashes.sha256, &cache).unwrap_err();
            assert!(
                matches!(&err, Error::RootEntry { reason: r, .. } if *r == reason),
                "{reason}: {err}"
            );
            assert!(fs::read_dir(&cache).unwrap().count() == 0, "{err}");
            assert!(!cache.join(hashes.sha256.hex()).exists());
            assert!(!Path::new("/etc/evil").exists());
        }
    }

    #[test]
    fn a_directory_is_used_in_place_after_its_tree_digest() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("root/usr/bin")).unwrap();
        fs::write(tmp.path().join("root/usr/bin/tool"), "x").unwrap();
        symlink("usr/bin", tmp.path().join("root/bin")).unwrap();
        let dir = tmp.path().join("root");
        let tree = hash_tree(&dir).unwrap();
        let cache = tmp.path().join("cache");
        assert_eq!(prepare_root(&dir, &tree.sha256, &cache).unwrap(), dir);
        assert!(!cache.exists(), "a directory is not copied");
        let err = prepare_root(&dir, &Checksum::of(Algorithm::Sha256, b""), &cache).unwrap_err();
        assert!(matches!(err, Error::RootMismatch { .. }), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, hashes) = write(tmp.path(), "root.zip", b"PK\x03\x04 not a root");
        let err = prepare_root(&path, &hashes.sha256, &tmp.path().join("cache")).unwrap_err();
        assert!(matches!(err, Error::RootFormat { .. }), "{err}");
    }

    #[test]
    fn cache_dir_follows_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            cache_root_from(move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.into()))
        };
        let all = &[
            ("REPROVE_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(env(all).unwrap(), Path::new("/c"));
        assert_eq!(env(&all[1..]).unwrap(), Path::new("/x/reprove"));
        assert_eq!(env(&all[2..]).unwrap(), Path::new("/h/.cache/reprove"));
        assert_eq!(
            env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")]).unwrap(),
            Path::new("/h/.cache/reprove")
        );
        assert!(env(&[]).is_none());
    }
}
