//! `reprove lock` results: what was pinned, or with `--check` which pins no longer hold, as
//! text or as the JSON document `{schema_version: 1, lock, tools, pins, drift?}` (`drift`
//! only with `--check`: each entry as [`Drift`] serializes it, by `kind`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Output, Style};
use crate::toolchain::{Drift, Lock};

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
    fn new(path: &Path, lock: &Lock, drift: Option<&'a [Drift]>) -> Self {
        LockJson {
            schema_version: 1,
            lock: path.display().to_string(),
            tools: lock.tools.len(),
            pins: lock.pins.len(),
            drift,
        }
    }
}

/// How a written lock came to be, for its summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// Traced: every file the build read is pinned.
    Traced,
    /// The build runs in a hermetic root, pinned whole by its digest.
    Hermetic,
    /// The recipe's tools and what they load only.
    Declared,
}

/// What `lock --check` found, for its report.
#[derive(Debug)]
pub(crate) struct LockCheck<'a> {
    /// The recipe as the user named it (for the command to run again).
    pub(crate) recipe: &'a Path,
    pub(crate) lock_path: &'a Path,
    pub(crate) lock: &'a Lock,
    pub(crate) drift: &'a [Drift],
    /// For each tool the lock lacks, the file it resolves to on the build PATH now.
    pub(crate) unlocked_resolved: BTreeMap<String, PathBuf>,
}

impl Output {
    /// Print what `reprove lock` wrote.
    pub(crate) fn lock_written(
        &self,
        path: &Path,
        lock: &Lock,
        kind: LockKind,
    ) -> std::io::Result<()> {
        if self.is_json() {
            return self.json(&LockJson::new(path, lock, None));
        }
        self.result(&format!(
            "locked {} tools, {} files and {} links pinned{}: `{}`\n",
            lock.tools.len(),
            lock.pins.len(),
            lock.links.len(),
            match kind {
                LockKind::Traced => " (traced: every file the build read)",
                LockKind::Hermetic => " (the hermetic root is pinned whole by its digest)",
                LockKind::Declared =>
                    " (declared only: the build sees these files and nothing else)",
            },
            path.display()
        ))
    }

    /// Print what `reprove lock --check` found.
    pub(crate) fn lock_checked(&self, check: &LockCheck<'_>) -> std::io::Result<()> {
        if self.is_json() {
            return self.json(&LockJson::new(
                check.lock_path,
                check.lock,
                Some(check.drift),
            ));
        }
        if check.drift.is_empty() {
            return self.result(&format!(
                "{} {} tools and {} pins hold (`{}`)\n",
                self.paint(Style::Good, "ok:"),
                check.lock.tools.len(),
                check.lock.pins.len(),
                check.lock_path.display()
            ));
        }
        self.result(&drift_text(self, check))
    }
}

/// What `lock --check` found, in words: how many pins and tools, each one named (a tool the
/// lock lacks with the file it resolves to), and what to run.
fn drift_text(out: &Output, check: &LockCheck<'_>) -> String {
    let drift = check.drift;
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
        counts.push(format!(
            "{pins} of {} pins no longer hold",
            check.lock.pins.len()
        ));
    }
    let mut text = format!(
        "{} the lock `{}` no longer holds: {}\n",
        out.paint(Style::Bad, "toolchain-drift:"),
        check.lock_path.display(),
        counts.join(", ")
    );
    for d in drift {
        match d {
            Drift::Unlocked { tool } => {
                let file = check
                    .unlocked_resolved
                    .get(tool)
                    .map(|t| format!(" (`{}`)", t.display()))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "  tool `{tool}`{file} is in the recipe but missing from the lock\n"
                ));
            }
            d => text.push_str(&format!("  {d}\n")),
        }
    }
    let again = format!("`reprove lock {}`", check.recipe.display());
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
