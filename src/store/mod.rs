//! The store: a content-addressed copy of exactly the bytes a lock pins, and the lock's view.
//!
//! In the sandbox the build sees the lock and nothing else of the host. [`Store::check`] makes
//! sure the store holds every pinned file: an object already there is re-hashed (it is what
//! the build will see), a missing or damaged one is copied from the host while it is hashed,
//! in one read, and only renamed into place when it matches its pin. So what the build sees is
//! what was hashed: no window between checking a pin and exposing it, and a host file that
//! changes after the check changes nothing. [`Store::view`] then lays out a fresh folder
//! holding each pinned file at its path (a hard link to its object, read-only) and each of the
//! lock's symbolic links, and nothing else; the sandbox shows that folder as `/`.
//!
//! Invariants:
//! - an object is named by the sha256 of its bytes (`objects/sha256/<hex>`, `<hex>.x` when
//!   executable), is read-only, and is written whole (a temporary file, then a rename) or not
//!   at all; a damaged one is replaced by a rename over it, never removed, so an object that
//!   existed never disappears: several reprove processes share one store, each checking,
//!   repairing and linking the same objects at once (tests/cli/batch.rs);
//! - a view is built beneath its own folder only: every folder of it is made by us, component
//!   by component, never through a link (a lock's link is created last and never followed);
//! - the store needs nothing of the host once filled: the same store rebuilds on a machine
//!   that has none of the toolchain.
//!
//! Layout, under the cache folder (`REPROVE_CACHE_DIR`, else `XDG_CACHE_HOME/reprove`, else
//! `~/.cache/reprove`): `store/objects/sha256/…`, `store/tmp/` for objects being written,
//! `store/views/` for the views of running builds (each removed when its build is done).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::hash::{hash_reader, Algorithm};
use crate::toolchain::{Drift, Lock, Pin};

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to use the toolchain store at `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the lock cannot be laid out as a file tree: `{}` {reason}", path.display())]
    Layout { path: PathBuf, reason: &'static str },
    #[error("no cache directory: set `REPROVE_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`")]
    NoCacheDir,
    /// A signal stopped the check; objects being written are removed with their temporary files.
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The content-addressed store of pinned files.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

/// A lock laid out as a file tree, for the sandbox to show as `/`. Removed when dropped.
#[derive(Debug)]
pub(crate) struct View {
    dir: tempfile::TempDir,
}

impl View {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Store {
    /// The store in the user's cache folder.
    pub(crate) fn open_default() -> Result<Store, Error> {
        let dir = crate::sandbox::rootfs::cache_root().ok_or(Error::NoCacheDir)?;
        Ok(Store::at(dir.join("store")))
    }

    /// The store in `dir`.
    pub(crate) fn at(dir: PathBuf) -> Store {
        Store { dir }
    }

    fn object(&self, pin: &Pin) -> PathBuf {
        let name = if pin.executable {
            format!("{}.x", pin.digest.hex())
        } else {
            pin.digest.hex()
        };
        self.dir
            .join("objects")
            .join(pin.digest.algorithm.name())
            .join(name)
    }

    /// Make sure the store holds every pin of `lock`, byte for byte, and return the pins that
    /// do not hold (their host file changed or is gone and the store has no good copy).
    pub(crate) fn check(&self, lock: &Lock) -> Result<Vec<Drift>, Error> {
        let tmp = self.dir.join("tmp");
        for algorithm in [Algorithm::Sha256, Algorithm::Blake3] {
            let dir = self.dir.join("objects").join(algorithm.name());
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let results: Vec<Result<Option<Drift>, Error>> = lock
            .pins
            .par_iter()
            .map(|pin| self.check_one(pin, &tmp))
            .collect();
        let mut drift = Vec::new();
        for result in results {
            drift.extend(result?);
        }
        Ok(drift)
    }

    fn check_one(&self, pin: &Pin, tmp: &Path) -> Result<Option<Drift>, Error> {
        crate::interrupt::check()?;
        let object = self.object(pin);
        match File::open(&object) {
            Ok(file) => {
                let good = file.metadata().is_ok_and(|m| m.is_file())
                    && hash_reader(&file).is_ok_and(|h| h.get(pin.digest.algorithm) == pin.digest);
                if good {
                    return Ok(None);
                }
                // A damaged object is replaced from the host, never shown to a build: by a
                // good copy renamed over it below, never removed first. Another process may be
                // checking or linking the same object at this moment; it must find the damaged
                // copy (and repair it too) or the good one, never nothing.
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&object)(e)),
        }
        let host = match File::open(&pin.path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => f,
            Ok(_) => return Ok(Some(missing(pin, "not a regular file".to_owned()))),
            Err(e) => return Ok(Some(missing(pin, e.to_string()))),
        };
        let mode = if pin.executable { 0o555 } else { 0o444 };
        let mut copy = tempfile::Builder::new()
            .prefix(".object-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(tmp)
            .map_err(io_err(tmp))?;
        let hashes = hash_reader(Tee {
            from: host,
            to: copy.as_file_mut(),
        })
        .map_err(io_err(&pin.path))?;
        let found = hashes.get(pin.digest.algorithm);
        if found != pin.digest {
            return Ok(Some(Drift::Changed {
                path: pin.path.clone(),
                expected: pin.digest,
                found,
            }));
        }
        copy.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err(copy.path()))?;
        copy.persist(&object)
            .map_err(|e| io_err(&object)(e.error))?;
        Ok(None)
    }

    /// Lay `lock` out as a fresh folder: each pinned file at its path, each link as recorded.
    /// Call [`Store::check`] first: a pin the store does not hold is an error here.
    pub(crate) fn view(&self, lock: &Lock) -> Result<View, Error> {
        let views = self.dir.join("views");
        fs::create_dir_all(&views).map_err(io_err(&views))?;
        let dir = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(&views)
            .map_err(io_err(&views))?;
        let root = dir.path();
        for pin in &lock.pins {
            let at = inside(root, &pin.path)?;
            make_parents(root, &at)?;
            let object = self.object(pin);
            fs::hard_link(&object, &at)
                .or_else(|_| fs::copy(&object, &at).map(drop))
                .map_err(io_err(&at))?;
        }
        for link in &lock.links {
            let at = inside(root, &link.path)?;
            make_parents(root, &at)?;
            match symlink(&link.target, &at) {
                Ok(()) => {}
                // The same link reached twice through a parent that is itself a pinned folder.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::Layout {
                        path: link.path.clone(),
                        reason: "is both a link and a pinned file or folder",
                    })
                }
                Err(e) => return Err(io_err(&at)(e)),
            }
        }
        Ok(View { dir })
    }
}

fn missing(pin: &Pin, reason: String) -> Drift {
    Drift::Missing {
        path: pin.path.clone(),
        expected: pin.digest,
        reason,
    }
}

/// `path` (absolute, as the lock has it) beneath `root`, refusing `..` and relative paths.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, Error> {
    let refused = || Error::Layout {
        path: path.to_path_buf(),
        reason: "is not a plain absolute path",
    };
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return Err(refused());
    }
    let mut at = root.to_path_buf();
    for component in components {
        match component {
            Component::Normal(name) => at.push(name),
            Component::CurDir => {}
            _ => return Err(refused()),
        }
    }
    if at == root {
        return Err(refused());
    }
    Ok(at)
}

/// Create the folders above `at` beneath `root`, one component at a time, refusing to pass
/// through anything that is not a folder we made (a link laid out earlier is never followed).
fn make_parents(root: &Path, at: &Path) -> Result<(), Error> {
    let Some(parent) = at.parent() else {
        return Ok(());
    };
    let rel = parent.strip_prefix(root).unwrap_or(Path::new(""));
    let mut dir = root.to_path_buf();
    for component in rel.components() {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Layout {
                    path: at.strip_prefix(root).unwrap_or(at).to_path_buf(),
                    reason: "lies beneath a link or a file of the lock",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(io_err(&dir))?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(&dir))?;
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
    Ok(())
}

/// A reader that writes what it reads to a file: one read both hashes and copies.
struct Tee<'a> {
    from: File,
    to: &'a mut File,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.from.read(buf)?;
        self.to.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Checksum;
    use crate::toolchain::Link;
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    fn pin_for(path: &Path, bytes: &[u8], executable: bool) -> Pin {
        Pin {
            path: path.to_path_buf(),
            digest: Checksum::of(Algorithm::Sha256, bytes),
            executable,
        }
    }

    fn lock(pins: Vec<Pin>, links: Vec<Link>) -> Lock {
        Lock {
            tools: BTreeMap::new(),
            pins,
            links,
            traced: true,
        }
    }

    #[test]
    fn a_view_holds_exactly_the_pinned_bytes_and_links() {
        let host = tempfile::tempdir().unwrap();
        let cc = host.path().join("usr/bin/cc-12");
        fs::create_dir_all(cc.parent().unwrap()).unwrap();
        fs::write(&cc, b"compiler").unwrap();
        let header = host.path().join("usr/include/a.h");
        fs::create_dir_all(header.parent().unwrap()).unwrap();
        fs::write(&header, b"#define A 1").unwrap();
        let store = Store::at(host.path().join("cache/store"));
        let lock = lock(
            vec![
                pin_for(&cc, b"compiler", true),
                pin_for(&header, b"#define A 1", false),
            ],
            vec![Link {
                path: "/usr/bin/cc".into(),
                target: "cc-12".into(),
            }],
        );
        assert!(store.check(&lock).unwrap().is_empty());
        // The host changes after the check: the view still shows the pinned bytes.
        fs::write(&header, b"#define A 2").unwrap();
        let view = store.view(&lock).unwrap();
        let seen = |p: &Path| view.path().join(p.strip_prefix("/").unwrap());
        assert_eq!(fs::read(seen(&header)).unwrap(), b"#define A 1");
        assert_eq!(fs::read(seen(&cc)).unwrap(), b"compiler");
        let mode = fs::metadata(seen(&cc)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o555);
        assert_eq!(
            fs::read_link(view.path().join("usr/bin/cc")).unwrap(),
            Path::new("cc-12")
        );
        let dir = view.path().to_path_buf();
        drop(view);
        assert!(!dir.exists());
        // A second check finds the objects without the host: it needs nothing of it.
        fs::remove_file(&cc).unwrap();
        assert!(store.check(&lock).unwrap().is_empty());
    }

    #[test]
    fn a_changed_host_file_without_an_object_is_drift_and_nothing_is_stored() {
        let host = tempfile::tempdir().unwrap();
        let file = host.path().join("tool");
        fs::write(&file, b"changed").unwrap();
        let store = Store::at(host.path().join("store"));
        let lock = lock(vec![pin_for(&file, b"original", false)], Vec::new());
        let drift = store.check(&lock).unwrap();
        assert!(
            matches!(drift.as_slice(), [Drift::Changed { .. }]),
            "{drift:?}"
        );
        assert_eq!(
            fs::read_dir(host.path().join("store/tmp")).unwrap().count(),
            0
        );
        assert!(store.view(&lock).is_err());
    }

    #[test]
    fn a_damaged_object_is_replaced_from_the_host() {
        let host = tempfile::tempdir().unwrap();
        let file = host.path().join("lib.so");
        fs::write(&file, b"library").unwrap();
        let store = Store::at(host.path().join("store"));
        let pin = pin_for(&file, b"library", false);
        let lock = lock(vec![pin.clone()], Vec::new());
        assert!(store.check(&lock).unwrap().is_empty());
        let object = store.object(&pin);
        fs::set_permissions(&object, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&object, b"tampered").unwrap();
        assert!(store.check(&lock).unwrap().is_empty());
        assert_eq!(fs::read(&object).unwrap(), b"library");
    }

    #[test]
    fn a_lock_that_would_lay_a_file_beneath_a_link_is_refused() {
        let host = tempfile::tempdir().unwrap();
        let file = host.path().join("f");
        fs::write(&file, b"x").unwrap();
        let store = Store::at(host.path().join("store"));
        let mut pin = pin_for(&file, b"x", false);
        assert!(store
            .check(&lock(vec![pin.clone()], Vec::new()))
            .unwrap()
            .is_empty());
        pin.path = "/lib/evil/f".into();
        let bad = lock(
            vec![pin],
            vec![Link {
                path: "/lib".into(),
                target: "/etc".into(),
            }],
        );
        // The pin is laid out first, then the link cannot take the folder's place.
        assert!(store.view(&bad).is_err());
        let dotdot = lock(
            vec![Pin {
                path: "/usr/../../etc/passwd".into(),
                ..pin_for(&file, b"x", false)
            }],
            Vec::new(),
        );
        assert!(matches!(store.view(&dotdot), Err(Error::Layout { .. })));
    }
}
