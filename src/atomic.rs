//! Files that appear whole or not at all.
//!
//! Everything the tool writes for a user (locks, attestations, reports, keys) goes to a
//! temporary file in the destination's folder, is flushed to disk, and is then renamed over
//! the destination: a crash or a full disk leaves the old file or none, never half of one.
//! Nothing is left behind on failure: the temporary file removes itself when dropped. An
//! interrupt ([`crate::interrupt`]) is checked before the temporary file is made and again
//! just before the rename: a run stopped by a signal leaves the old file or none.
//!
//! A cache entry that is costly to make (an unpacked hermetic root) is made under an
//! [`EntryLock`] on the cache's folder: one process makes it while the others sharing the
//! cache wait, then find it made. The lock is advisory (`flock` on the folder itself, so no
//! lock file is left), held until dropped (or the process ends), and waiting for it is
//! interrupted by a signal like any other stage.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The mode every report, attestation, lock, public key and kept log is created with: read
/// and write for all, less the umask, as other tools write files (0644 under a 022 umask,
/// 0600 under 077). Only a private key is narrower (0600, whatever the umask).
pub const REPORT_MODE: u32 = 0o666;

/// Write `contents` to `path` atomically with permission bits `mode` less the umask (set when
/// the temporary file is created, so a private key is never readable by others, not even
/// briefly). Without
/// `overwrite`, an existing `path` is an error and is left alone.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, overwrite: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    crate::interrupt::check()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".reprove-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    // The last moment to give up: once renamed, the file is the user's.
    crate::interrupt::checkpoint("atomic-write")?;
    if overwrite {
        tmp.persist(path)?;
    } else {
        tmp.persist_noclobber(path)?;
    }
    Ok(())
}

/// Copy everything `source` yields to `path` atomically, as [`write_atomic`] does: a copy
/// read from a handle already opened and checked, never by opening a path again.
pub fn copy_atomic(
    path: &Path,
    source: &mut impl io::Read,
    mode: u32,
    overwrite: bool,
) -> io::Result<u64> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".reprove-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    let copied = io::copy(source, &mut tmp)?;
    tmp.as_file().sync_all()?;
    if overwrite {
        tmp.persist(path)?;
    } else {
        tmp.persist_noclobber(path)?;
    }
    Ok(copied)
}

/// An exclusive `flock` on a lock file, released when dropped.
#[derive(Debug)]
pub(crate) struct EntryLock {
    _file: std::fs::File,
}

impl EntryLock {
    /// Wait for the exclusive lock on the folder `dir` itself (a cache the user may have made a
    /// link to, so links are followed):
    /// nothing is added to the folder, so a cache holds only its entries. Polls rather than
    /// blocks, so that a signal ends the wait ([`crate::interrupt`]).
    pub(crate) fn acquire(dir: &Path) -> io::Result<EntryLock> {
        use rustix::fs::{flock, FlockOperation};
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(EntryLock { _file: file }),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                    crate::interrupt::check()?;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lock_is_held_until_dropped() {
        use rustix::fs::{flock, FlockOperation};
        let dir = tempfile::tempdir().unwrap();
        let held = EntryLock::acquire(dir.path()).unwrap();
        // Another open file description (another process, or another thread) cannot take it.
        let other = std::fs::File::open(dir.path()).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(held);
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_ok());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no lock file"
        );
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_atomic(&p, b"first", 0o644, true).unwrap();
        assert!(write_atomic(&p, b"clobber", 0o644, false).is_err());
        write_atomic(&p, b"second", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("no/such/file"), b"x", 0o644, true).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
