//! `reprove lock RECIPE [--check]`: write or check the toolchain pins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::build::traced_files;
use crate::exit::ExitStatus;
use crate::output::lock::{LockCheck, LockKind};
use crate::output::{Hint, Output};
use crate::recipe::Recipe;
use crate::recipe::Vary;
use crate::toolchain::{canonical_files, lock_files, lock_from, lock_tools, Drift, Lock};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The recipe (`reprove.toml`); the lock is written beside it
    #[arg(default_value = "reprove.toml")]
    recipe: PathBuf,
    /// List the pins that no longer hold instead of writing the lock (exit 1 if any)
    #[arg(long)]
    check: bool,
    /// Pin only the recipe's tools and what they load, without running the build: a lock
    /// marked declared-only, whose view lacks every file the build reads that no tool pins
    /// (the default runs the build once under strace and pins every file it read or ran)
    #[arg(long, conflicts_with = "check")]
    no_trace: bool,
    /// The default, kept for older scripts: run the build once under strace
    #[arg(long, hide = true, conflicts_with_all = ["check", "no_trace"])]
    trace: bool,
}

pub(crate) fn run(args: &LockArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let recipe = Recipe::load(&args.recipe)?;
    let path = recipe.lock_path();
    let tools = recipe.spec.host_tools();
    if args.check {
        let lock = Lock::load(&path)?;
        let drift = lock.check(tools);
        // A tool the lock lacks is named with the file it resolves to now.
        let unlocked_resolved = drift
            .iter()
            .filter_map(|d| match d {
                Drift::Unlocked { tool } => crate::toolchain::find_on_path(tool)
                    .ok()
                    .map(|t| (tool.clone(), t.resolved)),
                _ => None,
            })
            .collect();
        out.lock_checked(&LockCheck {
            recipe: &args.recipe,
            lock_path: &path,
            lock: &lock,
            drift: &drift,
            unlocked_resolved,
        })?;
        return Ok(if drift.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        });
    }
    out.progress(&format!(
        "resolving {} tools on the build PATH",
        tools.len()
    ));
    let (resolved, mut files) = lock_tools(tools)?;
    // A hermetic root is pinned whole by its digest: there is nothing of the host to trace.
    let hermetic = recipe.spec.toolchain.root.is_some();
    if args.trace && hermetic {
        anyhow::bail!(
            "`--trace` pins host files, and this recipe builds in a hermetic root pinned whole"
        );
    }
    let trace = !args.no_trace && !hermetic;
    files.extend(clock_files(&recipe, hermetic)?);
    if trace {
        out.progress("running the build once under strace");
        let work = tempfile::Builder::new()
            .prefix("reprove-trace-")
            .tempdir()?;
        let traced = traced_files(&recipe, work.path()).map_err(|e| {
            anyhow::Error::new(Hint(
                "the lock runs the build once (under strace) to pin every file it reads: fix \
                 the build or raise its `[build]` limits; where tracing cannot run, \
                 `reprove lock --no-trace` writes a declared-only lock"
                    .to_owned(),
            ))
            .context(format!("{e:#}"))
        })?;
        files.extend(canonical_files(traced.iter().map(PathBuf::as_path)));
    }
    out.progress(&format!("pinning {} files", files.len()));
    let lock = lock_from(resolved, &files, trace)?;
    lock.write(&path)?;
    let kind = if lock.traced {
        LockKind::Traced
    } else if hermetic {
        LockKind::Hermetic
    } else {
        LockKind::Declared
    };
    out.lock_written(&path, &lock, kind)?;
    Ok(ExitStatus::Success)
}

/// What the clock variation of `verify`'s second rebuild loads: libfaketime and its libraries,
/// pinned so that the sandbox's view holds them (a preload the build cannot open is ignored,
/// and the clock would silently not vary). Nothing when the recipe leaves `clock` out of
/// `[verify] vary` or builds in a hermetic root; when libfaketime is not installed, nothing,
/// unless the recipe names `clock` itself.
fn clock_files(recipe: &Recipe, hermetic: bool) -> anyhow::Result<BTreeSet<PathBuf>> {
    let libfaketime = Path::new(crate::build::LIBFAKETIME);
    if hermetic || !recipe.spec.verify.allows(Vary::Clock) {
        return Ok(BTreeSet::new());
    }
    if !libfaketime.is_file() {
        if recipe.spec.verify.demands(Vary::Clock) {
            return Err(anyhow::Error::new(Hint(
                "install it (`apt-get install libfaketime`), or leave `clock` out of \
                 `[verify] vary`"
                    .to_owned(),
            ))
            .context(format!(
                "the recipe's `[verify] vary` names `clock`, which needs libfaketime: `{}` is \
                 not installed",
                libfaketime.display()
            )));
        }
        return Ok(BTreeSet::new());
    }
    Ok(lock_files(&[libfaketime])?)
}
