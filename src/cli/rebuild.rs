//! `reprove rebuild RECIPE [--out-dir DIR]`: rebuild only, and print the artifacts' digests.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::exit::ExitStatus;
use crate::hash::Hashes;
use crate::output::{Output, Style};
use crate::verify::{verify, Options, Rebuilds, Verdict};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The recipe (`reprove.toml`), with its `reprove.lock` beside it
    #[arg(default_value = "reprove.toml")]
    recipe: PathBuf,
    /// Copy the rebuilt artifacts into this folder
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct RebuildJson {
    schema_version: u32,
    result: Verdict,
    artifacts: Vec<ArtifactJson>,
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
    let work = tempfile::Builder::new()
        .prefix("reprove-rebuild-")
        .tempdir()?;
    let opts = Options {
        recipe: args.recipe.clone(),
        shipped: Vec::new(),
        rebuilds: Rebuilds::Exactly(1),
        work_dir: Some(work.path().join("work")),
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
            copied_to,
        });
    }
    let missing = artifacts.iter().any(|a| a.hashes.is_none());
    if out.is_json() {
        out.json(&RebuildJson {
            schema_version: 1,
            result,
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
        for a in &artifacts {
            match &a.hashes {
                Some(h) => text.push_str(&format!(
                    "{} ({} bytes)\n  {}\n  {}\n",
                    out.paint(Style::Path, &crate::output::sanitize::sanitize(&a.name)),
                    h.size,
                    h.sha256,
                    h.blake3
                )),
                None => text.push_str(&format!(
                    "{}: not produced{}\n",
                    crate::output::sanitize::sanitize(&a.name),
                    a.absent
                        .as_deref()
                        .map(|why| format!(": {}", crate::output::sanitize::sanitize(why)))
                        .unwrap_or_default()
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
