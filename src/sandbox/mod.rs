//! Where a build runs: the [`Sandbox`] trait and its backends.
//!
//! A backend runs one command with exactly the environment it is given (nothing inherited),
//! in the build tree, with its output in a log file, and guarantees that when [`Sandbox::run`]
//! returns no process the build started is left running — on success, on failure and on
//! timeout alike. [`host::Host`] (`isolation = "none"`) runs on the host in a process group of
//! its own; [`bwrap::Bwrap`] (`isolation = "sandbox"`) adds namespaces, a read-only toolchain
//! and no network. [`rootfs`] makes a pinned hermetic root ready for it, and [`trace`] runs a
//! build in it under `strace` to learn which toolchain files the build reads.

pub(crate) mod bwrap;
pub(crate) mod host;
pub(crate) mod limits;
pub(crate) mod rootfs;
pub(crate) mod trace;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::hash::{Checksum, TreeError};

/// The isolation a recipe asks for, and the backend that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Isolation {
    /// bubblewrap: namespaces, no network, read-only toolchain.
    Sandbox,
    /// The host, with a cleared environment: explicit, and recorded as such.
    None,
}

/// One command to run.
#[derive(Debug, Clone)]
pub(crate) struct Invocation<'a> {
    pub argv: &'a [String],
    /// The complete environment: nothing else is passed.
    pub env: &'a BTreeMap<String, String>,
    /// Hand the environment over in reverse order, where the backend can order it (a
    /// variation of the second rebuild: order must not matter).
    pub env_reversed: bool,
    /// The build tree on the host; the command runs in it (seen at [`Sandbox::build_path`]).
    pub build_dir: &'a Path,
    /// Where in the build tree the command starts (`[build] dir`, checked by the caller to be
    /// a directory beneath it); `None` for the tree's root.
    pub workdir: Option<&'a Path>,
    /// Receives the command's stdout and stderr.
    pub log: &'a Path,
    pub timeout: Duration,
    pub umask: u32,
    /// How many processes the build may run and how much disk its tree may take.
    pub limits: limits::Limits,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Termination {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// Stopped when it tried to run more processes than this.
    ProcessLimit(u32),
    /// Stopped when its tree took more bytes on disk than this.
    DiskLimit(u64),
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Termination::Exited(code) => write!(f, "exited {code}"),
            Termination::Signalled(sig) => write!(f, "killed by signal {sig}"),
            Termination::TimedOut => f.write_str("timed out"),
            Termination::ProcessLimit(n) => {
                write!(
                    f,
                    "reached the process limit ({n}, `[build] max-processes`)"
                )
            }
            Termination::DiskLimit(n) => {
                write!(f, "reached the disk limit ({n} bytes, `[build] max-disk`)")
            }
        }
    }
}

/// What [`Sandbox::run`] observed.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub termination: Termination,
    pub elapsed: Duration,
    /// What bounded the build.
    pub limits: limits::Applied,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.termination == Termination::Exited(0)
    }
}

/// Why a command could not be run at all (a command that runs and fails is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to open the build log `{}`", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to wait for the build")]
    Wait(#[source] io::Error),
    #[error("the build command is empty")]
    EmptyCommand,
    /// A signal (SIGINT, SIGTERM, SIGHUP) stopped the run; a build's processes were killed.
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
    #[error("{0}")]
    Unavailable(String),
    #[error("failed to read the toolchain root `{}`", path.display())]
    RootRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to hash the toolchain root `{}`", path.display())]
    RootTree {
        path: PathBuf,
        #[source]
        source: TreeError,
    },
    #[error("the toolchain root `{}` does not match its pin: expected `{expected}`, found `{actual}`", path.display())]
    RootMismatch {
        path: PathBuf,
        expected: Checksum,
        actual: Checksum,
    },
    #[error("the toolchain root `{}` is neither a directory nor a tar, tar.gz or tar.xz archive", path.display())]
    RootFormat { path: PathBuf },
    #[error("refusing entry `{entry}` of the toolchain root `{}`: {reason}", path.display())]
    RootEntry {
        path: PathBuf,
        entry: String,
        reason: crate::archive::Reason,
    },
    /// A damaged root, or one past a bound on what unpacking may write.
    #[error("failed to unpack the toolchain root `{}`", path.display())]
    RootArchive {
        path: PathBuf,
        #[source]
        source: crate::archive::Error,
    },
    #[error(transparent)]
    BadLimit(#[from] crate::archive::limits::BadValue),
    #[error("failed to unpack the toolchain root `{}` into `{}`", path.display(), dest.display())]
    RootUnpack {
        path: PathBuf,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cache directory: set `REPROVE_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`")]
    NoCacheDir,
    #[error("failed to read the trace log `{}`", path.display())]
    TraceLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A place to run builds.
pub(crate) trait Sandbox: Send + Sync {
    /// The backend's own version, where it has one.
    fn version(&self) -> Option<String>;
    /// The path at which the build sees the tree that is `host_dir` on the host.
    fn build_path(&self, host_dir: &Path) -> PathBuf;
    /// Run one command to its end (or its timeout) and leave nothing of it running.
    fn run(&self, invocation: &Invocation<'_>) -> Result<Outcome, Error>;
}
