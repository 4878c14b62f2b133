//! `reprove lock RECIPE [--check]`: write or check the toolchain pins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::build::traced_files;
use crate::exit::ExitStatus;
use crate::output::{Hint, Output, Style};
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

#[derive(Serialize)]
struct LockJson<'a> {
    schema_version: u32,
    lock: String,
    tools: usize,
    pins: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'a [Drift]>,
}

impl<'a> LockJson<'a> {
    fn new(path: &std::path::Path, lock: &Lock, drift: Option<&'a [Drift]>) -> Self {
        LockJson {
            schema_version: 1,
            lock: path.display().to_string(),
            tools: lock.tools.len(),
            pins: lock.pins.len(),
            drift,
        }
    }
}

pub(crate) fn run(args: &LockArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let recipe = Recipe::load(&args.recipe)?;
    let path = recipe.lock_path();
    let tools = recipe.spec.host_tools();
    if args.check {
        let lock = Lock::load(&path)?;
        let drift = lock.check(tools);
        if out.is_json() {
            out.json(&LockJson::new(&path, &lock, Some(&drift)))?;
        } else if drift.is_empty() {
            out.result(&format!(
                "{} {} tools and {} pins hold (`{}`)\n",
                out.paint(Style::Good, "ok:"),
                lock.tools.len(),
                lock.pins.len(),
                path.display()
            ))?;
        } else {
            out.result(&drift_text(out, &args.recipe, &path, &lock, &drift))?;
        }
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
    if out.is_json() {
        out.json(&LockJson::new(&path, &lock, None))?;
    } else {
        out.result(&format!(
            "locked {} tools, {} files and {} links pinned{}: `{}`\n",
            lock.tools.len(),
            lock.pins.len(),
            lock.links.len(),
            if lock.traced {
                " (traced: every file the build read)"
            } else if hermetic {
                " (the hermetic root is pinned whole by its digest)"
            } else {
                " (declared only: the build sees these files and nothing else)"
            },
            path.display()
        ))?;
    }
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

/// What `lock --check` found, in words: how many pins and tools, each one named (a tool the
/// lock lacks with the file it resolves to), and what to run.
fn drift_text(
    out: &Output,
    recipe: &std::path::Path,
    lock_path: &std::path::Path,
    lock: &Lock,
    drift: &[Drift],
) -> String {
    let pins = drift
        .iter()
        .filter(|d| matches!(d, Drift::Changed { .. } | Drift::Missing { .. }))
        .count();
    let unlocked = drift
        .iter()
        .filter(|d| matches!(d, Drift::Unlocked { .. }))
        .count();
    let moved = drift.len() - pins - unlocked;
    let mut counts = Vec::new();
    if unlocked > 0 {
        counts.push(format!(
            "{unlocked} {} in the recipe but missing from the lock",
            if unlocked == 1 { "tool" } else { "tools" }
        ));
    }
    if moved > 0 {
        counts.push(format!(
            "{moved} {} elsewhere on the build PATH",
            if moved == 1 {
                "tool resolves"
            } else {
                "tools resolve"
            }
        ));
    }
    if pins > 0 {
        counts.push(format!("{pins} of {} pins no longer hold", lock.pins.len()));
    }
    let mut text = format!(
        "{} the lock `{}` no longer holds: {}\n",
        out.paint(Style::Bad, "toolchain-drift:"),
        lock_path.display(),
        counts.join(", ")
    );
    for d in drift {
        match d {
            Drift::Unlocked { tool } => {
                let file = crate::toolchain::find_on_path(tool)
                    .map(|t| format!(" (`{}`)", t.resolved.display()))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "  tool `{tool}`{file} is in the recipe but missing from the lock\n"
                ));
            }
            d => text.push_str(&format!("  {d}\n")),
        }
    }
    let again = format!("`reprove lock {}`", recipe.display());
    if unlocked + moved > 0 {
        text.push_str(&format!(
            "run {again} again to pin the tools as the recipe names them\n"
        ));
    }
    if pins > 0 {
        text.push_str(&format!(
            "a pinned file changed: if that is an expected toolchain update, run {again} again; \
             otherwise find out what changed it before building\n"
        ));
    }
    text
}
