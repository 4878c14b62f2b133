//! `reprove rebuild RECIPE [--out-dir DIR]`: rebuild only, and print the artifacts' digests.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::exit::ExitStatus;
use crate::output::rebuild::{RebuildOutcome, RebuiltArtifact};
use crate::output::{Hint, Output};
use crate::verify::{verify, Options, Rebuilds, Verdict};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The recipe (`reprove.toml`), with its `reprove.lock` beside it
    #[arg(default_value = "reprove.toml")]
    recipe: PathBuf,
    /// Copy the rebuilt artifacts into this folder
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Keep the build tree and log in this folder (new or empty)
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Show this many last lines of a failed build's log (0: none; the whole log is kept in
    /// the cache, or in `--work-dir`, and its path printed)
    #[arg(long, value_name = "N", default_value_t = crate::build::failure::DEFAULT_TAIL_LINES)]
    log_lines: usize,
}

/// Copy the artifact from the handle its digests were read from (never by opening its path in
/// the build tree again), whole or not at all.
fn copy_artifact(handle: &std::fs::File, dest: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Seek as _, SeekFrom};
    use std::os::unix::fs::PermissionsExt as _;
    let mode = handle.metadata()?.permissions().mode() & 0o777;
    let mut reader = handle;
    reader.seek(SeekFrom::Start(0))?;
    crate::atomic::copy_atomic(dest, &mut reader, mode, true)?;
    Ok(())
}

pub(crate) fn run(args: &RebuildArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let result = run_to_end(args, out);
    match (&args.work_dir, crate::interrupt::received()) {
        // As `verify` does: an interrupted run leaves the work folder the user named.
        (Some(dir), Some(signal)) => Err(anyhow::Error::new(Hint(format!(
            "the work folder `{}` keeps what the run made before it stopped; remove it when done",
            dir.display()
        )))
        .context(signal.to_string())),
        _ => result,
    }
}

fn run_to_end(args: &RebuildArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    // Without `--work-dir` the verification works in a temporary folder of its own; the
    // artifacts are copied afterwards from the handles their digests were read from.
    let opts = Options {
        recipe: args.recipe.clone(),
        shipped: Vec::new(),
        rebuilds: Rebuilds::Exactly(1),
        work_dir: args.work_dir.clone(),
        log_lines: args.log_lines,
        provenance: Vec::new(),
    };
    let progress = out.reporter();
    let report = verify(&opts, &progress)?;
    progress.finish();
    // With nothing shipped every artifact reads `missing`; what counts here is how the build
    // went: drift and a mismatched escrow stop it (2), a failed build is a negative (1).
    let result = match report.verdict {
        v @ (Verdict::ToolchainDrift | Verdict::SourceMismatch | Verdict::BuildFailed) => v,
        _ => Verdict::Identical,
    };
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let mut artifacts = Vec::new();
    for a in report
        .rebuilds
        .first()
        .map(|r| r.artifacts.as_slice())
        .unwrap_or_default()
    {
        // Stopped by a signal: the copies made so far are whole (each is atomic), the rest
        // are not started.
        crate::interrupt::check()?;
        let copied_to = match (&args.out_dir, &a.opened) {
            (Some(dir), Some(handle)) => {
                let dest = dir.join(&a.name);
                copy_artifact(handle, &dest)
                    .with_context(|| format!("failed to copy `{}`", dest.display()))?;
                Some(dest)
            }
            _ => None,
        };
        artifacts.push(RebuiltArtifact {
            name: a.name.clone(),
            path: a.path.clone(),
            hashes: a.hashes,
            absent: a.absent.clone(),
            similar: a.similar.clone(),
            copied_to,
        });
    }
    let missing = artifacts.iter().any(|a| a.hashes.is_none());
    let recipe_errors = report.recipe_errors();
    out.rebuild_report(&RebuildOutcome {
        report: &report,
        result,
        artifacts: &artifacts,
        recipe_errors: &recipe_errors,
    })?;
    if let Some(e) = wrong_recipe(&args.recipe, &recipe_errors) {
        return Err(e);
    }
    // An artifact the build did not produce is a negative, as in `verify`.
    let produced = if missing {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    };
    Ok(result.exit_status(false).worst(produced))
}

/// The error a run ends with, after its report, when the rebuild showed the recipe to be
/// wrong (a declared part the image does not hold): exit 2, whatever the verdict.
pub(super) fn wrong_recipe(recipe: &Path, errors: &[String]) -> Option<anyhow::Error> {
    if errors.is_empty() {
        return None;
    }
    Some(
        anyhow::Error::new(Hint(
            "correct or remove the recipe's `[[artifact.part]]` entries: they map the image for \
             explaining differences, and the report above stands"
                .to_owned(),
        ))
        .context(format!(
            "the recipe `{}` declares parts the rebuilt image does not hold: {}",
            recipe.display(),
            errors.join("; ")
        )),
    )
}
