//! Hermetic toolchain roots: a rootfs directory or tar archive, pinned by digest, made ready
//! for the bubblewrap backend.
//!
//! A directory is pinned by its tree digest and used in place; it must hold no device nodes
//! (the sandbox brings its own `/dev`). An archive (tar, tar.gz or tar.xz, recognised by its
//! magic bytes, as made by debootstrap or exported from a container image) is pinned by its file
//! digest and unpacked once into `CACHE/<hex of the digest>`. The pin of the input is checked on
//! every call — hashing even a large root takes well under a second — but unpacking happens only
//! when the cache entry is missing. An entry is unpacked into a temporary directory in the cache
//! and renamed into place, so an entry that exists is complete: the rename is the marker. A
//! signal stops the unpacking between two entries or two chunks, and the temporary directory
//! goes with the error.
//!
//! A root is unpacked as a root, not as escrowed source: symlinks are kept exactly as they are,
//! absolute ones included (they are resolved inside the sandbox, never on the host), device
//! nodes and fifos are skipped, execute bits are kept and set-id bits dropped. An entry whose
//! name is absolute or holds `..`, or whose parent path (or hard-link source) would go through a
//! symlink on the host, is refused.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::Error;
use crate::archive::{sniff, Format, SNIFF_LEN};
use crate::hash::{hash_file, hash_tree, Algorithm, Checksum};

/// The cache of unpacked roots: `$REPROVE_CACHE_DIR/roots`, else `$XDG_CACHE_HOME/reprove/roots`,
/// else `~/.cache/reprove/roots`.
pub fn default_cache_dir() -> Result<PathBuf, Error> {
    cache_dir_from(|key| std::env::var_os(key))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, Error> {
    let set = |key| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("REPROVE_CACHE_DIR") {
        Ok(dir.join("roots"))
    } else if let Some(dir) = set("XDG_CACHE_HOME") {
        Ok(dir.join("reprove/roots"))
    } else {
        let home = set("HOME").ok_or(Error::NoCacheDir)?;
        Ok(home.join(".cache/reprove/roots"))
    }
}

/// Check the root at `path` against `expected` and return the directory to use as `/`: `path`
/// itself for a directory, the unpacked copy in `cache` for an archive.
pub fn prepare_root(path: &Path, expected: &Checksum, cache: &Path) -> Result<PathBuf, Error> {
    let read_err = |source| Error::RootRead {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
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
        hash_file(path).map_err(read_err)?.get(expected.algorithm)
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
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(cache)
        .map_err(unpack_err)?;
    unpack(path, tmp.path()).map_err(|e| match e {
        Unpack::Io(source) => unpack_err(source),
        Unpack::Entry { entry, reason } => Error::RootEntry {
            path: path.to_path_buf(),
            entry,
            reason,
        },
        Unpack::Format => Error::RootFormat {
            path: path.to_path_buf(),
        },
    })?;
    match fs::rename(tmp.path(), &dest) {
        Ok(()) => {}
        // Another process unpacked the same root first; ours is dropped.
        Err(_) if dest.is_dir() => {}
        Err(source) => return Err(unpack_err(source)),
    }
    Ok(dest)
}

enum Unpack {
    Io(io::Error),
    Entry { entry: String, reason: &'static str },
    Format,
}

impl From<io::Error> for Unpack {
    fn from(e: io::Error) -> Self {
        Unpack::Io(e)
    }
}

/// A signal mid-unpack travels as an I/O error; the temporary directory is dropped with it.
impl From<crate::interrupt::Interrupted> for Unpack {
    fn from(e: crate::interrupt::Interrupted) -> Self {
        Unpack::Io(e.into())
    }
}

fn refuse(raw: &[u8], reason: &'static str) -> Unpack {
    Unpack::Entry {
        entry: String::from_utf8_lossy(raw).into_owned(),
        reason,
    }
}

fn unpack(archive: &Path, dest: &Path) -> Result<(), Unpack> {
    let mut file = File::open(archive)?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file).take(SNIFF_LEN as u64).read_to_end(&mut head)?;
    file.rewind()?;
    let file = BufReader::new(file);
    let reader: Box<dyn Read> = match sniff(&head) {
        Some(Format::Tar) => Box::new(file),
        Some(Format::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some(Format::Xz) => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        _ => return Err(Unpack::Format),
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        crate::interrupt::check()?;
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) = entry_path(&raw)? else {
            continue; // the root itself
        };
        let target = dest.join(&rel);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode()? & 0o777;
        check_parents(dest, &rel, &raw)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        match kind {
            EntryType::Directory => {
                // Never `is_dir`: it follows a symlink, and the chmod below would land on the host.
                if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    remove_leaf(&target)?;
                    fs::create_dir(&target)?;
                }
                // Owner access stays, so the rest of the archive can be unpacked inside.
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))?;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_leaf(&target)?;
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&target)?;
                io::copy(&mut crate::interrupt::Checked(&mut entry), &mut out)?;
                out.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(&raw, "a symlink without a target"))?;
                remove_leaf(&target)?;
                symlink(Path::new(std::ffi::OsStr::from_bytes(&link)), &target)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(&raw, "a hard link without a source"))?;
                let source =
                    entry_path(&link)?.ok_or_else(|| refuse(&raw, "a hard link to the root"))?;
                check_parents(dest, &source, &raw)?;
                remove_leaf(&target)?;
                fs::hard_link(dest.join(source), &target)?;
            }
            // The sandbox provides `/dev`; nodes in a root are left over from making it.
            EntryType::Char | EntryType::Block | EntryType::Fifo => {}
            _ => return Err(refuse(&raw, "an unsupported entry type")),
        }
    }
    Ok(())
}

/// The relative path an entry name stands for, or `None` for the root (`.`, `./`).
fn entry_path(raw: &[u8]) -> Result<Option<PathBuf>, Unpack> {
    if raw.starts_with(b"/") {
        return Err(refuse(raw, "an absolute path"));
    }
    let mut rel = PathBuf::new();
    for component in Path::new(std::ffi::OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(name) => rel.push(name),
            Component::CurDir => {}
            _ => return Err(refuse(raw, "a path with `..`")),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Refuse `rel` when a directory on its way down from `dest` is a symlink: following it would
/// write on the host, outside the root.
fn check_parents(dest: &Path, rel: &Path, raw: &[u8]) -> Result<(), Unpack> {
    let mut at = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        at.push(component);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(raw, "its parent path goes through a symlink"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Make room for a file or link: an archive may hold the same name twice, and the later wins.
fn remove_leaf(target: &Path) -> io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("`{}` is already a directory", target.display()),
        )),
        Ok(_) => fs::remove_file(target),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hashes;
    use std::io::Write;
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
        (path.clone(), hash_file(&path).unwrap())
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
    fn a_directory_replaces_a_symlink_of_the_same_name() {
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
        let root = prepare_root(&path, &hashes.sha256, &tmp.path().join("cache")).unwrap();
        assert!(fs::symlink_metadata(root.join("opt")).unwrap().is_dir());
        let mode = fs::metadata(&host).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the host folder is untouched");
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
        let cases: [(&str, Extra); 4] = [
            ("a path with `..`", |b| {
                add(b, b"./usr/../../evil", EntryType::Regular, 0o644, b"x");
            }),
            ("an absolute path", |b| {
                add(b, b"/etc/evil", EntryType::Regular, 0o644, b"x");
            }),
            // `bin` is a symlink to `usr/bin`: legitimate inside the sandbox, but writing
            // through it on the host is what an attack through `lib64 -> /` would do.
            ("its parent path goes through a symlink", |b| {
                add(b, b"./bin/evil", EntryType::Regular, 0o644, b"x");
            }),
            ("its parent path goes through a symlink", |b| {
                link(b, b"./evil", EntryType::Link, b"./lib64/ld.so/x");
            }),
        ];
        for (reason, extra) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let cache = tmp.path().join("cache");
            let (path, hashes) = write(tmp.path(), "root.tar", &root_tar(extra));
            let err = prepare_root(&path, &hashes.sha256, &cache).unwrap_err();
            assert!(
                matches!(&err, Error::RootEntry { reason: r, .. } if *r == reason),
                "{err}"
            );
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
            cache_dir_from(move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.into()))
        };
        let all = &[
            ("REPROVE_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(env(all).unwrap(), Path::new("/c/roots"));
        assert_eq!(env(&all[1..]).unwrap(), Path::new("/x/reprove/roots"));
        assert_eq!(
            env(&all[2..]).unwrap(),
            Path::new("/h/.cache/reprove/roots")
        );
        assert_eq!(
            env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")]).unwrap(),
            Path::new("/h/.cache/reprove/roots")
        );
        assert!(matches!(env(&[]), Err(Error::NoCacheDir)));
    }
}
