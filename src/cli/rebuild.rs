//! `reprove rebuild RECIPE [--out-dir DIR]`: rebuild only, and print the artifacts' digests.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::exit::ExitStatus;
use crate::hash::Hashes;
use crate::output::{Hint, Output, Style};
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

#[derive(Serialize)]
struct RebuildJson {
    schema_version: u32,
    result: Verdict,
    /// How the build went, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<BuildJson>,
    artifacts: Vec<ArtifactJson>,
}

#[derive(Serialize)]
struct BuildJson {
    termination: crate::sandbox::Termination,
    seconds: f64,
    log: LogJson,
}

#[derive(Serialize)]
struct LogJson {
    sha256: crate::hash::Checksum,
    size: u64,
    /// A failed build's last lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tail: Vec<String>,
    /// Where a failed build's whole log is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept: Option<PathBuf>,
    /// Why it could not be kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_kept: Option<String>,
}

impl BuildJson {
    fn new(r: &crate::build::Rebuild) -> Self {
        let failure = r.failure.as_ref();
        BuildJson {
            termination: r.outcome.termination,
            seconds: r.outcome.elapsed.as_secs_f64(),
            log: LogJson {
                sha256: r.log_hashes.sha256,
                size: r.log_hashes.size,
                tail: failure.map(|f| f.tail.clone()).unwrap_or_default(),
                kept: failure.and_then(|f| f.kept.clone().ok()),
                not_kept: failure.and_then(|f| f.kept.clone().err()),
            },
        }
    }
}

#[derive(Serialize)]
struct ArtifactJson {
    name: String,
    path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    hashes: Option<Hashes>,
    /// Why the rebuild did not produce it.
    #[serde(skip_serializing_if = "Option::is_none")]
    absent: Option<String>,
    /// When not produced: files the build made that look like it, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    similar: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    copied_to: Option<PathBuf>,
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
        artifacts.push(ArtifactJson {
            name: a.name.clone(),
            path: a.path.clone(),
            hashes: a.hashes,
            absent: a.absent.clone(),
            similar: a.similar.clone(),
            copied_to,
        });
    }
    let missing = artifacts.iter().any(|a| a.hashes.is_none());
    if out.is_json() {
        out.json(&RebuildJson {
            schema_version: 1,
            result,
            build: report.rebuilds.first().map(BuildJson::new),
            artifacts,
        })?;
    } else {
        let mut text = String::new();
        for d in &report.drift {
            text.push_str(&format!("{} {d}\n", out.paint(Style::Bad, "drift:")));
        }
        if result != Verdict::Identical {
            text.push_str(&format!("{}\n", out.paint(Style::Bad, result.as_str())));
        }
        if let Some(r) = report.rebuilds.first().filter(|r| !r.outcome.is_success()) {
            text.push_str(&out.rebuild_failure_text(r));
        }
        for a in &artifacts {
            match &a.hashes {
                Some(h) => text.push_str(&format!(
                    "{} ({} bytes)\n  {}\n  {}\n",
                    out.paint(Style::Path, &crate::output::sanitize::sanitize(&a.name)),
                    h.size,
                    h.sha256,
                    h.blake3
                )),
                None => text.push_str(&crate::output::not_produced_text(
                    &a.name,
                    &a.path,
                    a.absent.as_deref(),
                    &a.similar,
                )),
            }
        }
        out.result(&text)?;
    }
    // An artifact the build did not produce is a negative, as in `verify`.
    let produced = if missing {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    };
    Ok(result.exit_status(false).worst(produced))
}
