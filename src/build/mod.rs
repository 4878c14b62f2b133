//! One rebuild: the recipe's command run in a fresh tree through a sandbox backend.
//!
//! The environment is made of the recipe's variables plus the fixed ones ([`fixed_env`]):
//! nothing of the caller's environment reaches the build. The log is kept in a file and
//! digested; every artifact is hashed (sha256 and blake3, in parallel). A [`Variation`] says
//! what the rebuild changes of what must not matter (host build directory, umask, wall clock,
//! environment order): the second rebuild of `verify` uses one to tell a non-reproducible
//! build from a shipped binary that is the odd one out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::beneath::{Links, Tree};
use crate::hash::{hash_reader, Hashes};
use crate::recipe::Recipe;
use crate::sandbox::bwrap::Bwrap;
use crate::sandbox::host::Host;
use crate::sandbox::rootfs::{default_cache_dir, prepare_root};
use crate::sandbox::{Invocation, Isolation, Outcome, Sandbox};
use crate::toolchain::BUILD_PATH;

/// Where libfaketime lives on Debian; the clock variation needs it.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// What one rebuild varies of what must not matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variation {
    pub umask: u32,
    /// Shift of the wall clock the build sees, in days (libfaketime), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_shift_days: Option<u32>,
    /// The environment handed over in reverse order (where the backend can order it).
    pub env_reversed: bool,
    /// A deeper folder on the host for the build tree.
    pub nested_build_dir: bool,
}

impl Variation {
    /// The first rebuild: nothing varied.
    pub fn none() -> Self {
        Variation {
            umask: 0o022,
            clock_shift_days: None,
            env_reversed: false,
            nested_build_dir: false,
        }
    }

    /// Every variation this build supports: another umask, another host folder, the
    /// environment reversed, and the clock 400 days on when libfaketime is installed on the
    /// host and the build sees the host's `/usr` (a hermetic root has its own, or none).
    pub fn varied(hermetic_root: bool) -> Self {
        Variation {
            umask: 0o077,
            clock_shift_days: (!hermetic_root && Path::new(LIBFAKETIME).is_file()).then_some(400),
            env_reversed: true,
            nested_build_dir: true,
        }
    }
}

/// The variables every build gets besides the recipe's.
pub fn fixed_env(source_date_epoch: i64) -> BTreeMap<String, String> {
    [
        ("PATH", BUILD_PATH.to_owned()),
        ("HOME", "/nonexistent".to_owned()),
        ("TZ", "UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("LC_ALL", "C.UTF-8".to_owned()),
        ("SOURCE_DATE_EPOCH", source_date_epoch.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The complete environment of a build of `recipe` with `variation`.
pub fn build_env(recipe: &Recipe, variation: &Variation) -> BTreeMap<String, String> {
    let mut env = fixed_env(recipe.spec.source_date_epoch());
    env.extend(recipe.spec.build.env.clone());
    if let Some(days) = variation.clock_shift_days {
        env.insert("LD_PRELOAD".to_owned(), LIBFAKETIME.to_owned());
        env.insert("FAKETIME".to_owned(), format!("+{days}d"));
        // Timeouts and make's own bookkeeping keep the real monotonic clock.
        env.insert("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned());
    }
    env
}

/// An artifact after a rebuild.
#[derive(Debug, Clone)]
pub struct RebuiltArtifact {
    /// Its name in the shipped set.
    pub name: String,
    /// Its path in the build tree, as the recipe gives it.
    pub path: PathBuf,
    /// Where it is on the host with every in-tree symlink resolved (meaningful while the work
    /// folder exists): what a comparison reads.
    pub file: PathBuf,
    /// `None` when the build did not produce it.
    pub hashes: Option<Hashes>,
    /// Why it counts as not produced (`None` exactly when `hashes` is set).
    pub absent: Option<String>,
    /// The handle its digests were read from, kept so that a copy reads the same file.
    pub opened: Option<Arc<File>>,
}

/// One finished rebuild.
#[derive(Debug, Clone)]
pub struct Rebuild {
    pub variation: Variation,
    pub tree: PathBuf,
    /// The build tree as the build saw it (`/build` in the sandbox).
    pub build_path: PathBuf,
    pub env: BTreeMap<String, String>,
    pub outcome: Outcome,
    pub log: PathBuf,
    pub log_hashes: Hashes,
    pub artifacts: Vec<RebuiltArtifact>,
}

/// The backend `recipe` asks for, ready to run builds. A hermetic root is checked against its
/// pin (a mismatch is [`crate::sandbox::Error::RootMismatch`]) and unpacked into the cache.
pub fn sandbox_for(recipe: &Recipe) -> Result<Box<dyn Sandbox>, crate::sandbox::Error> {
    match recipe.spec.toolchain.isolation {
        Isolation::None => Ok(Box::new(Host)),
        Isolation::Sandbox => {
            let root = match &recipe.spec.toolchain.root {
                Some(root) => Some(prepare_root(
                    &recipe.resolve(&root.path),
                    &root.digest,
                    &default_cache_dir()?,
                )?),
                None => None,
            };
            Ok(Box::new(Bwrap::detect(root.as_deref())?))
        }
    }
}

/// Run the recipe's build once in the sandbox under a tracer and return every file it opened
/// or executed from outside the build tree (`reprove lock --trace`). The escrow is checked and
/// unpacked into `work` first; a build that fails is an error, since its reads are partial.
pub fn traced_files(recipe: &Recipe, work: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let tree = work.join("tree");
    crate::escrow::unpack(
        &recipe.resolve(&recipe.spec.source.path),
        &recipe.spec.source.digest,
        &tree,
    )?;
    let bwrap = Bwrap::detect(None)?;
    let env = build_env(recipe, &Variation::none());
    let log = work.join("build.log");
    let invocation = Invocation {
        argv: &recipe.spec.build.command,
        env: &env,
        env_reversed: false,
        build_dir: &tree,
        log: &log,
        timeout: recipe.spec.build.timeout,
        umask: Variation::none().umask,
    };
    let (outcome, files) =
        crate::sandbox::trace::trace(&bwrap, &invocation, &work.join("trace.log"))?;
    if !outcome.is_success() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!(
            "the traced build {}; its last lines:\n{}",
            outcome.termination,
            tail.join("\n")
        );
    }
    Ok(files)
}

/// Follow `log` as the build writes it, handing each complete line to `show`, until `done`.
fn tail_log(log: &Path, done: &AtomicBool, show: &(dyn Fn(&str) + Sync)) {
    use std::io::Read as _;
    let mut pending = Vec::new();
    let mut file = None;
    loop {
        let finished = done.load(Ordering::Acquire);
        if file.is_none() {
            // Never through a link, and never blocking on a FIFO put in its place.
            file = crate::beneath::open_regular_nofollow(log).ok();
        }
        if let Some(f) = file.as_mut() {
            let _ = f.read_to_end(&mut pending);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                show(String::from_utf8_lossy(&line[..nl]).trim_end());
            }
        }
        if finished {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Why a rebuild could not be run (a command that runs and fails is a [`Rebuild`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::Error),
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read `{}`", path.display())]
    Beneath {
        path: PathBuf,
        #[source]
        source: crate::beneath::Error,
    },
}

/// The build log's digests. The log is reprove's own file beside the tree, but the build could
/// have replaced it (with `isolation = "none"`): it is read only as a regular file, opened
/// without following a symlink and without blocking.
fn hash_log(log: &Path) -> Result<Hashes, Error> {
    let beneath = |source| Error::Beneath {
        path: log.to_path_buf(),
        source,
    };
    let parent = log.parent().unwrap_or(Path::new("."));
    let name = log.file_name().unwrap_or(log.as_os_str());
    let opened = Tree::open(parent, "work folder")
        .and_then(|dir| dir.open_file(Path::new(name), Links::None))
        .map_err(beneath)?;
    hash_reader(&opened.file).map_err(|source| Error::Io {
        path: log.to_path_buf(),
        source,
    })
}

/// Open the artifact at `rel` beneath the build tree and hash it from that handle. A path that
/// is no regular file beneath the tree (a symlink out of it in any component, a directory, a
/// FIFO, nothing) is an artifact the build did not produce, with the reason kept.
fn rebuilt_artifact(tree: &Tree, name: String, rel: &Path) -> Result<RebuiltArtifact, Error> {
    let file = tree.root().join(rel);
    match tree.open_file(rel, Links::Inside) {
        Ok(opened) => {
            let mut handle = opened.file;
            let hashes = hash_reader(&handle).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            handle
                .seek(SeekFrom::Start(0))
                .map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })?;
            Ok(RebuiltArtifact {
                name,
                path: rel.to_path_buf(),
                file: opened
                    .resolved
                    .map_or(file, |resolved| tree.root().join(resolved)),
                hashes: Some(hashes),
                absent: None,
                opened: Some(Arc::new(handle)),
            })
        }
        Err(e) if e.is_refusal() => Ok(RebuiltArtifact {
            name,
            path: rel.to_path_buf(),
            file,
            hashes: None,
            absent: Some(e.to_string()),
            opened: None,
        }),
        Err(e) => Err(Error::Beneath {
            path: file,
            source: e,
        }),
    }
}

/// Run `recipe`'s command in `tree` (already holding the source) through `sandbox`, log to
/// `log`, then hash what it produced.
pub fn rebuild(
    recipe: &Recipe,
    tree: &Path,
    log: &Path,
    sandbox: &dyn Sandbox,
    variation: &Variation,
    log_line: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<Rebuild, Error> {
    let env = build_env(recipe, variation);
    let invocation = Invocation {
        argv: &recipe.spec.build.command,
        env: &env,
        env_reversed: variation.env_reversed,
        build_dir: tree,
        log,
        timeout: recipe.spec.build.timeout,
        umask: variation.umask,
    };
    let outcome = match log_line {
        None => sandbox.run(&invocation)?,
        Some(show) => {
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| tail_log(log, &done, show));
                let outcome = sandbox.run(&invocation);
                done.store(true, Ordering::Release);
                outcome
            })?
        }
    };
    let log_hashes = hash_log(log)?;
    let tree_handle = Tree::open(tree, "build tree").map_err(|e| Error::Beneath {
        path: tree.to_path_buf(),
        source: e,
    })?;
    let artifacts = recipe
        .spec
        .artifacts
        .par_iter()
        .map(|a| rebuilt_artifact(&tree_handle, a.shipped_name(), &a.path))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Rebuild {
        variation: variation.clone(),
        tree: tree.to_path_buf(),
        build_path: sandbox.build_path(tree),
        env,
        outcome,
        log: log.to_path_buf(),
        log_hashes,
        artifacts,
    })
}
