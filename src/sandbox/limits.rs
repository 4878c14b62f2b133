//! The bounds of a build: how many processes it may run and how much disk its tree may use.
//!
//! A build is someone else's program: a fork bomb or a runaway output must end as
//! `build-failed` with the limit named, not take the machine down. Both backends apply both
//! bounds to everything the command starts:
//!
//! - **processes**: a `pids` cgroup made for the build (cgroup v2, or v1's `pids` hierarchy),
//!   joined by the child before it runs the command, so every process the build starts counts
//!   and none can leave it; `pids.max` refuses the fork past the limit, and the build is
//!   stopped as soon as `pids.events` records a refusal. Where no cgroup can be made (not
//!   root and nothing delegated), `RLIMIT_NPROC` is set instead, which counts the user's
//!   processes; as root, where that rlimit does not apply, the build runs without a process
//!   bound. [`ProcessBound`] says which one held; the attestation records it.
//! - **disk**: the build tree is measured (allocated blocks) while the build runs, at an
//!   interval that grows with the time a measurement takes, and the build is stopped once it
//!   passes the limit; `RLIMIT_FSIZE` at the same limit stops a single file from outrunning the
//!   measurement. The sandbox's `/tmp` is a tmpfs of the same size.
//!
//! A cgroup made here is removed when the build is over; nothing of it outlives the run.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What a build may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Processes (and threads) alive at once.
    pub processes: u32,
    /// Bytes the build tree may take on disk.
    pub disk: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            processes: DEFAULT_PROCESSES,
            disk: DEFAULT_DISK,
        }
    }
}

/// Enough for `make -j` of a large firmware on a big machine; a fork bomb passes it in
/// milliseconds.
pub(crate) const DEFAULT_PROCESSES: u32 = 4096;
/// 64 GiB: more than any firmware tree (a Linux kernel build takes a few GiB).
pub(crate) const DEFAULT_DISK: u64 = 64 << 30;

/// Which mechanism bounded the processes of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessBound {
    /// A `pids` cgroup of the build's own.
    CgroupPids,
    /// `RLIMIT_NPROC`, which counts every process of the user.
    RlimitNproc,
    /// Nothing could bound them (root without a usable cgroup).
    None,
}

/// What bounded one build, as the attestation records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub max_processes: u32,
    pub process_bound: ProcessBound,
    pub max_disk_bytes: u64,
}

/// A build's `pids` cgroup, or the fallback in its place. Removed when dropped.
#[derive(Debug)]
pub(crate) struct ProcessGuard {
    limit: u32,
    cgroup: Option<Cgroup>,
}

#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened before the fork: the child writes its own pid to it.
    procs: File,
}

impl ProcessGuard {
    pub(crate) fn new(limit: u32) -> ProcessGuard {
        ProcessGuard {
            limit,
            cgroup: make_cgroup(limit).ok(),
        }
    }

    pub(crate) fn bound(&self) -> ProcessBound {
        if self.cgroup.is_some() {
            ProcessBound::CgroupPids
        } else if is_root() {
            ProcessBound::None
        } else {
            ProcessBound::RlimitNproc
        }
    }

    /// What the child does before it runs the command (async-signal-safe: no allocation):
    /// join the cgroup, or set `RLIMIT_NPROC`.
    pub(crate) fn child_setup(&self) -> ChildSetup {
        ChildSetup {
            procs: self.cgroup.as_ref().map(|c| c.procs.as_raw_fd()),
            nproc: (self.cgroup.is_none() && !is_root()).then_some(u64::from(self.limit)),
        }
    }

    /// Whether the cgroup has refused a fork: the build hit the limit.
    pub(crate) fn was_hit(&self) -> bool {
        let Some(cgroup) = &self.cgroup else {
            return false;
        };
        fs::read_to_string(cgroup.dir.join("pids.events")).is_ok_and(|events| {
            events
                .lines()
                .filter_map(|l| l.strip_prefix("max "))
                .any(|n| n.trim() != "0")
        })
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(cgroup) = &self.cgroup {
            // The build's group is killed before this; give the kernel a moment to reap.
            for _ in 0..200 {
                if fs::remove_dir(&cgroup.dir).is_ok() {
                    return;
                }
                kill_all(&cgroup.dir);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Kill what is left in a cgroup (the build's group is gone; stragglers that left it are not).
fn kill_all(dir: &Path) {
    let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs
        .lines()
        .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
    {
        // SAFETY: signalling a process of the build's own cgroup.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The child's half of the bounds, copied into the `pre_exec` closure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSetup {
    procs: Option<RawFd>,
    nproc: Option<u64>,
    // RLIMIT_FSIZE is set by the caller with the disk limit.
}

impl ChildSetup {
    /// Run in the child between fork and exec: only async-signal-safe calls.
    pub(crate) fn apply(&self, max_file: u64) -> io::Result<()> {
        if let Some(fd) = self.procs {
            // "0" is the writing process itself, in cgroup v1 and v2 alike.
            // SAFETY: writing a static buffer to an open descriptor.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(n) = self.nproc {
            set_rlimit(libc::RLIMIT_NPROC, n)?;
        }
        set_rlimit(libc::RLIMIT_FSIZE, max_file)
    }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit is async-signal-safe and only reads `limit`.
    if unsafe { libc::setrlimit(resource, &raw const limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Make a `pids` cgroup for one build beneath this process's own, with `pids.max = limit`.
fn make_cgroup(limit: u32) -> io::Result<Cgroup> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = pids_cgroup_dir()?;
    let dir = parent.join(format!(
        "reprove-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir)?;
    let made = (|| {
        fs::write(dir.join("pids.max"), limit.to_string())?;
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?;
        Ok(Cgroup {
            dir: dir.clone(),
            procs,
        })
    })();
    if made.is_err() {
        let _ = fs::remove_dir(&dir);
    }
    made
}

/// The folder of this process's cgroup in a hierarchy that has the `pids` controller: cgroup
/// v1's `pids` hierarchy, or the unified (v2) one when `pids` is enabled there.
fn pids_cgroup_dir() -> io::Result<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "no pids cgroup");
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let v1 = controllers.split(',').any(|c| c == "pids");
        let v2 = controllers.is_empty();
        if !v1 && !v2 {
            continue;
        }
        let Some(mount) = mounts.lines().find_map(|m| cgroup_mount(m, v1)) else {
            continue;
        };
        let dir = mount.join(path.trim_start_matches('/'));
        if v2 {
            let enabled = fs::read_to_string(dir.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
            if !enabled {
                continue;
            }
        }
        return Ok(dir);
    }
    Err(not_found())
}

/// The mount point of a `mountinfo` line for the pids v1 hierarchy (`v1`) or for cgroup2.
fn cgroup_mount(line: &str, v1: bool) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    let mut right = right.split_whitespace();
    let fstype = right.next()?;
    let options = right.nth(1).unwrap_or("");
    let wanted = if v1 {
        fstype == "cgroup" && options.split(',').any(|o| o == "pids")
    } else {
        fstype == "cgroup2"
    };
    // Only a hierarchy mounted at its own root maps our cgroup path onto a folder.
    let mut fields = left.split_whitespace();
    let root = fields.nth(3)?;
    let point = fields.next()?;
    (wanted && root == "/").then(|| PathBuf::from(point))
}

/// Watches a build tree's size on disk.
#[derive(Debug)]
pub(crate) struct DiskWatch {
    limit: u64,
    next: Instant,
    every: Duration,
}

impl DiskWatch {
    pub(crate) fn new(limit: u64) -> DiskWatch {
        DiskWatch {
            limit,
            next: Instant::now(),
            every: Duration::from_millis(100),
        }
    }

    /// Measure `tree` when it is time to (never more than a fifth of the wall clock goes to
    /// measuring); whether it is past the limit.
    pub(crate) fn is_over(&mut self, tree: &Path) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        let used = disk_usage(tree);
        let took = now.elapsed();
        self.every = (took * 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        self.next = Instant::now() + self.every;
        used > self.limit
    }
}

/// The bytes allocated to the files beneath `tree` (each inode once), not following links.
pub(crate) fn disk_usage(tree: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(tree)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.nlink() <= 1 || seen.insert((m.dev(), m.ino())))
        .map(|m| m.blocks() * 512)
        .sum()
}

/// Parse a size: bytes, or a number with a unit (`K`, `M`, `G`, `T`, with or without `iB`,
/// powers of 1024), as in `"64G"` or `"512 MiB"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (for example `64G` or `512MiB`)"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" | "k" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`: use K, M, G or T (powers of 1024)"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is out of range: give a size from 1 byte to 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_strictly() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64G"), Ok(64 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216T")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn mountinfo_lines_are_read() {
        let v1 = "38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids";
        assert_eq!(
            cgroup_mount(v1, true),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(cgroup_mount(v1, false), None);
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            cgroup_mount(v2, false),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let nested = "29 23 0:26 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        assert_eq!(cgroup_mount(nested, false), None);
    }

    #[test]
    fn disk_usage_counts_allocated_bytes_once_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, vec![b'x'; 1 << 20]).unwrap();
        File::open(&file).unwrap().sync_all().unwrap();
        fs::hard_link(&file, dir.path().join("b")).unwrap();
        let used = disk_usage(dir.path());
        assert!((1 << 20..3 << 20).contains(&used), "{used}");
    }
}
