//! `reprove rebuild` results: how the build went and each artifact's digests, as text or as
//! the JSON document `{schema_version: 1, result, build?, artifacts}` (documented in
//! `docs/cli.md`).
//!
//! Artifact names, paths and log lines come from the recipe and the build: text goes through
//! [`sanitize`].

use std::path::PathBuf;

use serde::Serialize;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::hash::Hashes;
use crate::verify::{Report, Verdict};

#[derive(Serialize)]
struct RebuildJson<'a> {
    schema_version: u32,
    result: Verdict,
    /// How the build went, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<BuildJson>,
    artifacts: &'a [RebuiltArtifact],
    /// What the rebuild showed to be wrong with the recipe: each declared part the image
    /// does not hold (the command then exits 2).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    recipe_errors: &'a [String],
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

/// One artifact of the rebuild, as `reprove rebuild` reports it.
#[derive(Debug, Serialize)]
pub(crate) struct RebuiltArtifact {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hashes: Option<Hashes>,
    /// Why the rebuild did not produce it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) absent: Option<String>,
    /// When not produced: files the build made that look like it, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) similar: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) copied_to: Option<PathBuf>,
}

/// What `reprove rebuild` came to.
#[derive(Debug)]
pub(crate) struct RebuildOutcome<'a> {
    pub(crate) report: &'a Report,
    /// The build's result: drift and a mismatched escrow stop it, a failed build is a
    /// negative, anything else is `identical`.
    pub(crate) result: Verdict,
    pub(crate) artifacts: &'a [RebuiltArtifact],
    /// What the rebuild showed to be wrong with the recipe (reported as an error after the
    /// result, in text).
    pub(crate) recipe_errors: &'a [String],
}

impl Output {
    /// Print a rebuild's result on stdout.
    pub(crate) fn rebuild_report(&self, r: &RebuildOutcome<'_>) -> std::io::Result<()> {
        let report = r.report;
        if self.is_json() {
            return self.json(&RebuildJson {
                schema_version: 1,
                result: r.result,
                build: report.rebuilds.first().map(BuildJson::new),
                artifacts: r.artifacts,
                recipe_errors: r.recipe_errors,
            });
        }
        let mut text = String::new();
        for d in &report.drift {
            text.push_str(&format!("{} {d}\n", self.paint(Style::Bad, "drift:")));
        }
        if r.result != Verdict::Identical {
            text.push_str(&format!("{}\n", self.paint(Style::Bad, r.result.as_str())));
        }
        if let Some(first) = report.rebuilds.first().filter(|b| !b.outcome.is_success()) {
            text.push_str(&self.rebuild_failure_text(first));
        }
        for a in r.artifacts {
            match &a.hashes {
                Some(h) => text.push_str(&format!(
                    "{} ({} bytes)\n  {}\n  {}\n",
                    self.paint(Style::Path, &sanitize(&a.name)),
                    h.size,
                    h.sha256,
                    h.blake3
                )),
                None => text.push_str(&super::not_produced_text(
                    &a.name,
                    &a.path,
                    a.absent.as_deref(),
                    &a.similar,
                )),
            }
        }
        self.result(&text)
    }
}
