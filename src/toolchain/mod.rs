//! The toolchain lock: every file the build trusts, pinned by digest.
//!
//! `reprove lock` resolves each of the recipe's tools on the fixed build `PATH` ([`BUILD_PATH`],
//! the same one every build gets, so the lock pins exactly what the build will run), follows
//! symlinks, and pins the binary and what it loads and runs: its ELF interpreter and shared
//! libraries (transitively), a script's interpreter, and for a GCC driver the programs it
//! names with `-print-prog-name` (cc1, collect2, `as`, `ld`, …) with its libexec and library
//! folders whole. `--trace` adds every file a real build opened (see the sandbox's tracer).
//! The lock file is sorted and stable so that its diffs read well; [`Lock::check`] re-resolves
//! every tool and re-hashes every pin and reports each one that moved.

mod closure;
mod lockfile;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt as _;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::{hash_file, hash_file_one, Checksum};

pub(crate) use closure::{find_on_path, lock_files, lock_tools};
pub(crate) use lockfile::Lock;

/// The `PATH` every build runs with, and the one tools are resolved on.
pub(crate) const BUILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A tool as the build finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Where it is found on [`BUILD_PATH`].
    pub path: PathBuf,
    /// That path with every symlink followed.
    pub resolved: PathBuf,
}

/// One file pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub path: PathBuf,
    pub digest: Checksum,
    /// The file is executable: the store keeps it so, and the build sees it so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// A symbolic link the build finds on its way to a pinned file (`/usr/bin/cc` → `gcc`, the
/// merged-`/usr` `/lib` → `usr/lib`, a library's soname link). The sandbox's view of the lock
/// recreates it as recorded, whatever the host has at that path now.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Link {
    pub path: PathBuf,
    /// What the link says, as `readlink` gives it (relative or absolute).
    pub target: PathBuf,
}

/// A pin or a tool that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Drift {
    /// The file's bytes changed.
    Changed {
        path: PathBuf,
        expected: Checksum,
        found: Checksum,
    },
    /// The file is gone or unreadable.
    Missing {
        path: PathBuf,
        expected: Checksum,
        reason: String,
    },
    /// The tool now resolves elsewhere (or nowhere).
    Moved {
        tool: String,
        expected: PathBuf,
        found: Option<PathBuf>,
    },
    /// The recipe names a tool the lock does not know: the lock is older than the recipe.
    Unlocked { tool: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Changed {
                path,
                expected,
                found,
            } => write!(
                f,
                "`{}` changed: expected {expected}, found {found}",
                path.display()
            ),
            Drift::Missing {
                path,
                expected,
                reason,
            } => {
                write!(
                    f,
                    "`{}` is missing ({reason}): expected {expected}",
                    path.display()
                )
            }
            Drift::Moved {
                tool,
                expected,
                found: Some(found),
            } => write!(
                f,
                "tool `{tool}` now resolves to `{}`, not `{}`",
                found.display(),
                expected.display()
            ),
            Drift::Moved {
                tool,
                expected,
                found: None,
            } => write!(
                f,
                "tool `{tool}` is no longer on the build PATH (was `{}`)",
                expected.display()
            ),
            Drift::Unlocked { tool } => {
                write!(
                    f,
                    "tool `{tool}` is in the recipe but missing from the lock: run `reprove \
                     lock` again to pin it"
                )
            }
        }
    }
}

/// Why a toolchain could not be locked or checked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("tool `{0}` is not on the build PATH (`{BUILD_PATH}`)")]
    ToolNotFound(String),
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid lock `{}`, line {line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("lock `{}` has version {found}; this reprove reads version {}: run `reprove lock` to write it anew", path.display(), lockfile::VERSION)]
    Version { path: PathBuf, found: u32 },
}

impl Lock {
    /// Every tool re-resolved and every pin re-hashed (in parallel); what no longer holds.
    pub(crate) fn check(&self, tools: &[String]) -> Vec<Drift> {
        let mut drift: Vec<Drift> = self.unlocked(tools);
        drift.extend(tools.iter().filter_map(|name| match self.tools.get(name) {
            None => None,
            Some(locked) => {
                let found = find_on_path(name).ok();
                let same = found
                    .as_ref()
                    .is_some_and(|f| f.path == locked.path && f.resolved == locked.resolved);
                (!same).then(|| Drift::Moved {
                    tool: name.clone(),
                    expected: locked.resolved.clone(),
                    found: found.map(|f| f.resolved),
                })
            }
        }));
        drift.extend(check_pins(&self.pins));
        drift
    }

    /// The tools `tools` names that the lock does not know: the lock is older than the recipe.
    pub(crate) fn unlocked(&self, tools: &[String]) -> Vec<Drift> {
        tools
            .iter()
            .filter(|name| !self.tools.contains_key(*name))
            .map(|name| Drift::Unlocked { tool: name.clone() })
            .collect()
    }
}

/// Re-hash `pins` in parallel and return those that no longer hold, in pin order.
pub(crate) fn check_pins(pins: &[Pin]) -> Vec<Drift> {
    pins.par_iter()
        .filter_map(|pin| match hash_file_one(&pin.path, pin.digest.algorithm) {
            Ok(found) => (found != pin.digest).then(|| Drift::Changed {
                path: pin.path.clone(),
                expected: pin.digest,
                found,
            }),
            Err(e) => Some(Drift::Missing {
                path: pin.path.clone(),
                expected: pin.digest,
                reason: e.to_string(),
            }),
        })
        .collect()
}

/// Pin each file of `paths` by its sha256, in parallel, sorted and deduplicated.
pub(crate) fn pin_files(paths: &BTreeSet<PathBuf>) -> Result<Vec<Pin>, Error> {
    let paths: Vec<&PathBuf> = paths.iter().collect();
    paths
        .par_iter()
        .map(|p| {
            let h = hash_file(p).map_err(|source| Error::Io {
                path: (*p).clone(),
                source,
            })?;
            let executable = std::fs::metadata(p)
                .map_err(|source| Error::Io {
                    path: (*p).clone(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o111
                != 0;
            Ok(Pin {
                path: (*p).clone(),
                digest: h.sha256,
                executable,
            })
        })
        .collect()
}

/// Build a lock from resolved tools and the files they need.
pub(crate) fn lock_from(
    tools: BTreeMap<String, Tool>,
    files: &BTreeSet<PathBuf>,
    traced: bool,
) -> Result<Lock, Error> {
    let pins = pin_files(files)?;
    let links = closure::links_to(&pins, &tools);
    Ok(Lock {
        tools,
        pins,
        links,
        traced,
    })
}

/// Pin a set of files under `Path`s (used when adding traced files).
pub(crate) fn canonical_files<'a>(paths: impl IntoIterator<Item = &'a Path>) -> BTreeSet<PathBuf> {
    paths
        .into_iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.is_file())
        .collect()
}
