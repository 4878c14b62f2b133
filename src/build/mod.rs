//! One rebuild: the recipe's command run in a fresh tree through a sandbox backend.
//!
//! The environment is made of the recipe's variables plus the fixed ones ([`fixed_env`]):
//! nothing of the caller's environment reaches the build. The log is kept in a file and
//! digested; every artifact is hashed (sha256 and blake3, in parallel). A [`Variation`] says
//! what the rebuild changes of what must not matter (host build directory, umask, wall clock,
//! environment order), as `[verify] vary` chooses: the second rebuild of `verify` uses one to
//! tell a non-reproducible build from a shipped binary that is the odd one out. The clock is
//! varied only where libfaketime is pinned by the lock ([`clock_available`]): a preload the
//! build cannot load is ignored by the loader, and a variation that silently did not happen
//! must not be recorded as applied.

pub(crate) mod failure;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::beneath::{Links, Tree};
use crate::hash::{hash_reader, Hashes};
use crate::recipe::{Recipe, Vary, VerifySpec};
use crate::sandbox::bwrap::Bwrap;
use crate::sandbox::host::Host;
use crate::sandbox::limits::Limits;
use crate::sandbox::rootfs::{default_cache_dir, prepare_root};
use crate::sandbox::{Invocation, Isolation, Outcome, Sandbox};
use crate::store::{Store, View};
use crate::toolchain::{Drift, Lock, BUILD_PATH};

/// Where libfaketime lives on Debian; the clock variation needs it, pinned by the lock.
pub(crate) const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// How far on the varied clock stands from the verification's start.
const CLOCK_SHIFT_DAYS: u32 = 400;

/// What one rebuild varies of what must not matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variation {
    pub umask: u32,
    /// Shift of the wall clock the build sees, in days (libfaketime), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_shift_days: Option<u32>,
    /// With the clock varied: the instant (Unix seconds) the build's wall clock shows,
    /// stopped there (see [`build_env`] for why it does not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_stopped_at: Option<i64>,
    /// The environment handed over in reverse order (where the backend can order it).
    pub env_reversed: bool,
    /// A deeper folder on the host for the build tree.
    pub nested_build_dir: bool,
    /// The variations applied, by their names in `[verify] vary`.
    pub varied: Vec<Vary>,
}

impl Variation {
    /// The first rebuild: nothing varied.
    pub fn none() -> Self {
        Variation {
            umask: 0o022,
            clock_shift_days: None,
            clock_stopped_at: None,
            env_reversed: false,
            nested_build_dir: false,
            varied: Vec::new(),
        }
    }

    /// The second rebuild: each variation `spec` allows (all of them when the recipe has no
    /// `vary`), except the clock when `clock_from` is `None` (no libfaketime the build can
    /// load: see [`clock_available`]). With the clock varied, the build's wall clock shows
    /// `clock_from` (the verification's start, Unix seconds) plus 400 days.
    pub fn varied(spec: &VerifySpec, clock_from: Option<i64>) -> Self {
        let mut v = Variation::none();
        for what in Vary::ALL {
            if !spec.allows(what) {
                continue;
            }
            match what {
                Vary::BuildDir => v.nested_build_dir = true,
                Vary::Umask => v.umask = 0o077,
                Vary::EnvOrder => v.env_reversed = true,
                Vary::Clock => {
                    let Some(from) = clock_from else { continue };
                    v.clock_shift_days = Some(CLOCK_SHIFT_DAYS);
                    v.clock_stopped_at =
                        Some(from.saturating_add(i64::from(CLOCK_SHIFT_DAYS) * 86_400));
                }
            }
            v.varied.push(what);
        }
        v
    }
}

/// Whether `recipe`'s builds can run under another clock: libfaketime is pinned by the lock
/// (so the sandbox's view holds it, and on the host it is checked like any pin). Never in a
/// hermetic root, which shows nothing of the host.
pub(crate) fn clock_available(recipe: &Recipe, lock: &Lock) -> bool {
    recipe.spec.toolchain.root.is_none()
        && lock.pins.iter().any(|p| p.path == Path::new(LIBFAKETIME))
}

/// The variables every build gets besides the recipe's.
pub(crate) fn fixed_env(source_date_epoch: i64) -> BTreeMap<String, String> {
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
///
/// The clock variation is libfaketime with a stopped clock (`FAKETIME` an absolute instant,
/// not an offset) and file times left alone (`NO_FAKE_STAT`, no `FAKE_UTIME`). Why stopped:
/// Debian's libfaketime (0.9.10) fakes "now" for `utimes(path, NULL)` from an uninitialised
/// value whenever its clock runs (the `+400d` and `@…` forms), so the kernel gets a nanosecond
/// field out of range and says `EINVAL`: Perl's `utime(undef, undef, …)`, which
/// `dpkg-source -x` calls, fails under it (upstream libfaketime issue 535, fixed after 0.9.10).
/// A stopped clock overwrites that value. `FAKE_UTIME` would avoid the call too, but shifts
/// every time a build sets (`touch -d`, `tar -x`, `cp -p`) by the offset, which is not the
/// clock. The monotonic clocks stay real, so timeouts and `sleep` work; a build that waits
/// for the wall clock to move does not, and leaves `clock` out of `[verify] vary`.
pub(crate) fn build_env(recipe: &Recipe, variation: &Variation) -> BTreeMap<String, String> {
    let mut env = fixed_env(recipe.spec.source_date_epoch());
    env.extend(recipe.spec.build.env.clone());
    for name in &recipe.spec.build.secret_env {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.clone(), value);
        }
    }
    if let Some(at) = variation.clock_stopped_at {
        env.insert("LD_PRELOAD".to_owned(), LIBFAKETIME.to_owned());
        env.insert("FAKETIME_FMT".to_owned(), "%s".to_owned());
        env.insert("FAKETIME".to_owned(), at.to_string());
        env.insert("NO_FAKE_STAT".to_owned(), "1".to_owned());
        // Timeouts and make's own bookkeeping keep the real monotonic clock.
        env.insert("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned());
    }
    env
}

/// What stands in for a secret variable's value in everything recorded.
pub(crate) const SECRET: &str = "[secret]";

/// `env` as a report records it: each secret variable's value replaced by [`SECRET`], so that
/// no output can show it.
fn recorded_env(recipe: &Recipe, mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for name in &recipe.spec.build.secret_env {
        if let Some(value) = env.get_mut(name) {
            SECRET.clone_into(value);
        }
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
    /// When it was not produced: files the build did make that look like it, best first
    /// ([`failure::rank_similar`]).
    pub similar: Vec<PathBuf>,
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
    /// When the build failed: the program its log says could not be found or run (a tool the
    /// lock does not pin is not in the sandbox).
    pub missing_program: Option<String>,
    /// When the build failed: its log's last lines and where the whole log is kept (set by
    /// the caller, who knows where to keep it: [`failure::failure_log`]).
    pub failure: Option<failure::FailureLog>,
}

/// Check every pin `recipe`'s builds will trust and return those that no longer hold. In the
/// sandbox without a hermetic root the build sees the lock's view, so the pins are checked
/// where the view takes its bytes from: the store, filled from the host as needed (see
/// [`crate::store`]); then only a tool the lock does not know, or a pinned file the store lacks
/// and the host no longer has as pinned, is drift. With `isolation = "none"` the build runs on
/// the host, whose tools and files are checked in place.
pub(crate) fn check_pins(recipe: &Recipe, lock: &Lock) -> Result<Vec<Drift>, crate::store::Error> {
    match (recipe.spec.toolchain.isolation, &recipe.spec.toolchain.root) {
        (Isolation::Sandbox, None) => {
            let mut drift = lock.unlocked(recipe.spec.host_tools());
            drift.extend(Store::open_default()?.check(lock)?);
            Ok(drift)
        }
        _ => Ok(lock.check(recipe.spec.host_tools())),
    }
}

/// The backend `recipe` asks for, ready to run builds: the host; bubblewrap showing a hermetic
/// root, checked against its pin (a mismatch is [`crate::sandbox::Error::RootMismatch`]) and
/// unpacked into the cache; or bubblewrap showing the lock's view, laid out from the store
/// (call [`check_pins`] first).
pub(crate) fn sandbox_for(recipe: &Recipe, lock: &Lock) -> anyhow::Result<Box<dyn Sandbox>> {
    match recipe.spec.toolchain.isolation {
        Isolation::None => Ok(Box::new(Host)),
        Isolation::Sandbox => {
            if let Some(root) = &recipe.spec.toolchain.root {
                let root = prepare_root(
                    &recipe.resolve(&root.path),
                    &root.digest,
                    &default_cache_dir()?,
                )?;
                return Ok(Box::new(Bwrap::detect(Some(&root))?));
            }
            let view = Store::open_default()?.view(lock)?;
            let bwrap = Bwrap::detect(Some(view.path()))?;
            Ok(Box::new(InView { bwrap, _view: view }))
        }
    }
}

/// bubblewrap showing a lock's view, which lives as long as the builds that use it.
struct InView {
    bwrap: Bwrap,
    _view: View,
}

impl Sandbox for InView {
    fn version(&self) -> Option<String> {
        self.bwrap.version()
    }
    fn build_path(&self, host_dir: &Path) -> PathBuf {
        self.bwrap.build_path(host_dir)
    }
    fn run(&self, invocation: &Invocation<'_>) -> Result<Outcome, crate::sandbox::Error> {
        self.bwrap.run(invocation)
    }
}

/// Run the recipe's build once in the sandbox under a tracer and return every file it opened
/// or executed from outside the build tree (`reprove lock --trace`). The escrow is checked and
/// unpacked into `work` first; a build that fails is an error, since its reads are partial.
pub(crate) fn traced_files(recipe: &Recipe, work: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let tree = work.join("tree");
    crate::escrow::unpack(
        &recipe.resolve(&recipe.spec.source.path),
        &recipe.spec.source.digest,
        &tree,
    )?;
    check_build_dir(recipe, &tree)?;
    let bwrap = Bwrap::detect(None)?;
    let env = build_env(recipe, &Variation::none());
    let log = work.join("build.log");
    let invocation = Invocation {
        argv: &recipe.spec.build.command,
        env: &env,
        env_reversed: false,
        build_dir: &tree,
        workdir: recipe.spec.build.dir.as_deref(),
        log: &log,
        timeout: recipe.spec.build.timeout,
        umask: Variation::none().umask,
        limits: limits_of(recipe),
    };
    let (outcome, files) =
        crate::sandbox::trace::trace(&bwrap, &invocation, &work.join("trace.log"))?;
    if !outcome.is_success() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        if tail.is_empty() {
            anyhow::bail!(
                "the traced build {} (its log is empty)",
                outcome.termination
            );
        }
        anyhow::bail!(
            "the traced build {}; its last lines:\n{}",
            outcome.termination,
            tail.join("\n")
        );
    }
    Ok(files)
}

/// Check that the recipe's `[build] dir`, if any, is a directory beneath the unpacked `tree`,
/// reached without a symlink: the tree is the escrow's, and the build must start inside it.
/// (The recipe has already refused an absolute path and `..`.)
fn check_build_dir(recipe: &Recipe, tree: &Path) -> Result<(), Error> {
    let Some(dir) = &recipe.spec.build.dir else {
        return Ok(());
    };
    Tree::open(tree, "unpacked escrow")
        .and_then(|t| t.check_dir(dir))
        .map_err(Error::BuildDir)
}

/// The bounds `recipe` sets on its builds (`[build] max-processes`, `max-disk`).
fn limits_of(recipe: &Recipe) -> Limits {
    Limits {
        processes: recipe.spec.build.max_processes,
        disk: recipe.spec.build.max_disk,
    }
}

/// The last `max` bytes of `log`, as text (empty when it cannot be read).
fn log_tail(log: &Path, max: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let size = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(size.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The program a failed build's log says it could not find or run, from the last line that
/// says so in one of the ways shells, `make`, `env` and compiler drivers do:
/// `sh: 1: cc: not found`, `bash: cc: command not found`, `make: cc: No such file or
/// directory`, `env: 'cc': No such file or directory`, `gcc: fatal error: cannot execute
/// 'cc1': execvp: No such file or directory`.
pub(crate) fn missing_program(log: &str) -> Option<String> {
    let plausible = |name: &str| {
        let name = name.trim().trim_matches(['\'', '"', '`']);
        (!name.is_empty() && name.len() <= 255 && !name.contains(char::is_whitespace))
            .then(|| name.to_owned())
    };
    log.lines().rev().find_map(|line| {
        let line = line.trim();
        if let Some(rest) = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))
        {
            return plausible(rest.rsplit(": ").next()?);
        }
        // bwrap's own: `bwrap: execvp make: No such file or directory`.
        if let Some(rest) = line
            .strip_prefix("bwrap: execvp ")
            .and_then(|r| r.strip_suffix(": No such file or directory"))
        {
            return plausible(rest);
        }
        if line.ends_with("execvp: No such file or directory") {
            let quoted = line.split('\'').nth(1)?;
            return plausible(quoted);
        }
        let rest = line.strip_suffix(": No such file or directory")?;
        let rest = ["make: ", "env: ", "xargs: ", "nice: ", "timeout: "]
            .iter()
            .find_map(|p| rest.strip_prefix(p))?;
        plausible(rest)
    })
}

/// Why a rebuild could not be run (a command that runs and fails is a [`Rebuild`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::Error),
    /// A variable of `[build] secret-env` is not set in the verifier's environment.
    #[error(
        "the recipe's secret variable `{name}` (`[build] secret-env`) is not set in the \
         environment: set it where `reprove` runs"
    )]
    SecretUnset { name: String },
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The recipe's `[build] dir` is not a directory beneath the unpacked escrow.
    #[error("`[build] dir` is not a directory beneath the unpacked escrow: {0}")]
    BuildDir(crate::beneath::Error),
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
                similar: Vec::new(),
            })
        }
        Err(e) if e.is_refusal() => Ok(RebuiltArtifact {
            name,
            path: rel.to_path_buf(),
            file,
            hashes: None,
            absent: Some(e.to_string()),
            opened: None,
            similar: Vec::new(),
        }),
        Err(e) => Err(Error::Beneath {
            path: file,
            source: e,
        }),
    }
}

/// Run `recipe`'s command in `tree` (already holding the source) through `sandbox`, log to
/// `log`, then hash what it produced.
pub(crate) fn rebuild(
    recipe: &Recipe,
    tree: &Path,
    log: &Path,
    sandbox: &dyn Sandbox,
    variation: &Variation,
) -> Result<Rebuild, Error> {
    check_build_dir(recipe, tree)?;
    if let Some(name) = recipe
        .spec
        .build
        .secret_env
        .iter()
        .find(|name| std::env::var_os(name).is_none())
    {
        return Err(Error::SecretUnset { name: name.clone() });
    }
    let env = build_env(recipe, variation);
    let invocation = Invocation {
        argv: &recipe.spec.build.command,
        env: &env,
        env_reversed: variation.env_reversed,
        build_dir: tree,
        workdir: recipe.spec.build.dir.as_deref(),
        log,
        timeout: recipe.spec.build.timeout,
        umask: variation.umask,
        limits: limits_of(recipe),
    };
    let outcome = sandbox.run(&invocation)?;
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
        .collect::<Result<Vec<RebuiltArtifact>, Error>>()?;
    let mut artifacts = artifacts;
    if artifacts.iter().any(|a| a.absent.is_some()) {
        // One bounded listing of the tree serves every missing artifact.
        let listing = tree_handle.list_files(failure::LIST_ENTRIES, failure::LIST_DEPTH);
        for a in artifacts.iter_mut().filter(|a| a.absent.is_some()) {
            a.similar = failure::rank_similar(&listing.files, &a.path);
        }
    }
    let missing_program = if outcome.is_success() {
        None
    } else {
        missing_program(&log_tail(log, 64 * 1024))
    };
    Ok(Rebuild {
        missing_program,
        failure: None,
        variation: variation.clone(),
        tree: tree.to_path_buf(),
        build_path: sandbox.build_path(tree),
        env: recorded_env(recipe, env),
        outcome,
        log: log.to_path_buf(),
        log_hashes,
        artifacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_rebuild_varies_what_vary_allows_and_the_clock_only_where_it_loads() {
        let all = VerifySpec::default();
        let v = Variation::varied(&all, Some(1_700_000_000));
        assert_eq!(v.varied, Vary::ALL);
        assert_eq!(
            (v.umask, v.env_reversed, v.nested_build_dir),
            (0o077, true, true)
        );
        assert_eq!(v.clock_shift_days, Some(400));
        assert_eq!(v.clock_stopped_at, Some(1_700_000_000 + 400 * 86_400));
        // No libfaketime the build can load: the clock is neither varied nor recorded.
        let v = Variation::varied(&all, None);
        assert_eq!(v.varied, [Vary::BuildDir, Vary::Umask, Vary::EnvOrder]);
        assert_eq!((v.clock_shift_days, v.clock_stopped_at), (None, None));
        let umask_only = VerifySpec {
            vary: Some(vec![Vary::Umask]),
        };
        let v = Variation::varied(&umask_only, Some(0));
        assert_eq!(v.varied, [Vary::Umask]);
        assert_eq!((v.env_reversed, v.nested_build_dir), (false, false));
        assert_eq!(v.clock_stopped_at, None);
        let nothing = VerifySpec { vary: Some(vec![]) };
        assert_eq!(
            Variation::varied(&nothing, Some(0)),
            Variation::none(),
            "an empty `vary` reruns unvaried"
        );
        assert_eq!(
            Variation::varied(&all, Some(i64::MAX)).clock_stopped_at,
            Some(i64::MAX),
            "no overflow"
        );
    }

    #[test]
    fn the_program_a_failed_build_could_not_find_is_named() {
        let cases = [
            (
                "cc -c a.c\nmake: cc: No such file or directory\nmake: *** [Makefile:2: a.o] Error 127\n",
                Some("cc"),
            ),
            ("sh: 1: objcopy: not found\n", Some("objcopy")),
            ("bwrap: execvp make: No such file or directory\n", Some("make")),
            ("/bin/sh: 1: gzip: not found\n", Some("gzip")),
            ("bash: line 1: xz: command not found\n", Some("xz")),
            ("env: 'python3': No such file or directory\n", Some("python3")),
            (
                "gcc: fatal error: cannot execute 'cc1': execvp: No such file or directory\n",
                Some("cc1"),
            ),
            ("cp: cannot stat 'out/x': No such file or directory\n", None),
            ("main.c:1:10: fatal error: stdio.h: No such file or directory\n", None),
            ("all good\n", None),
        ];
        for (log, want) in cases {
            assert_eq!(missing_program(log).as_deref(), want, "{log}");
        }
    }
}
