//! How a batch of verifications reads (`verify --manifest FILE` or several recipes).
//!
//! Each release is shown as it ends: in text, its whole report (as a single `verify` prints
//! it), or its error on stderr, named by where the release was listed; then, once all have
//! ended, a summary table on stdout (package, version, verdict, time, attestation). With
//! `--json`, stdout is JSON Lines: one record per release as it ends, and nothing else.
//!
//! # Wire format (one line per release)
//!
//! ```json
//! {"schema_version": 1, "index": 0, "origin": "`m.toml`, line 1",
//!  "recipe": "a/reprove.toml", "exit_code": 0, "seconds": 1.25,
//!  "package": {"name": "fw", "version": "1.0"}, "verdict": "identical",
//!  "attestation": "out/fw-1.0.intoto.jsonl", "report": { … }}
//! ```
//!
//! `index` is the release's place in the batch (0-based; lines come in the order releases
//! end); `exit_code` is what a single `verify` of it would exit with; `report` is the document
//! a single `verify --json` prints (the rebuild predicate plus `attestation`). A release that
//! could not be decided has `error` (the message and its causes, joined by `: `) instead of
//! `package`, `verdict`, `attestation` and `report`.

use std::io::Write as _;

use serde::Serialize;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::exit::ExitStatus;
use crate::verify::batch::Outcome;

#[derive(Serialize)]
struct Record<'a> {
    schema_version: u32,
    index: usize,
    origin: &'a str,
    recipe: String,
    exit_code: u8,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<&'a crate::recipe::Package>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<crate::verify::Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attestation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn exit_code(status: ExitStatus) -> u8 {
    match status {
        ExitStatus::Success => 0,
        ExitStatus::Failure => 1,
        ExitStatus::Error => 2,
        ExitStatus::Interrupted(signal) => signal.exit_code(),
    }
}

fn error_chain(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl Output {
    /// Show one release of a batch as it ends: a JSON line, or its report (its error on
    /// stderr).
    pub(crate) fn batch_release(&self, outcome: &Outcome) -> std::io::Result<()> {
        if self.is_json() {
            return batch_record(outcome);
        }
        match &outcome.result {
            Ok(attested) => self.verify_report(
                &attested.report,
                attested.predicate(),
                &attested.attestation,
                None,
            ),
            Err(err) => {
                self.error_in(
                    &format!("{} could not be verified", outcome.release.origin),
                    err,
                );
                Ok(())
            }
        }
    }
}

fn batch_record(outcome: &Outcome) -> std::io::Result<()> {
    let attested = outcome.result.as_ref().ok();
    let record = Record {
        schema_version: 1,
        index: outcome.index,
        origin: &outcome.release.origin,
        recipe: outcome.release.recipe.display().to_string(),
        exit_code: exit_code(outcome.status),
        seconds: outcome.elapsed.as_secs_f64(),
        package: attested.map(|a| &a.report.package),
        verdict: attested.map(|a| a.report.verdict),
        attestation: attested.map(|a| a.attestation.display().to_string()),
        report: attested.map(|a| {
            let mut doc = a.predicate().clone();
            doc["attestation"] = serde_json::Value::String(a.attestation.display().to_string());
            doc
        }),
        error: outcome.result.as_ref().err().map(error_chain),
    };
    let mut line = serde_json::to_vec(&record)?;
    line.push(b'\n');
    // One write per record, under the lock: lines of releases ending at once never mix.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&line)?;
    stdout.flush()
}

impl Output {
    /// The table that ends a batch in text (nothing with `--json`).
    pub(crate) fn batch_summary(&self, outcomes: &[Outcome]) -> std::io::Result<()> {
        if self.is_json() {
            return Ok(());
        }
        let rows: Vec<[String; 5]> = outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(a) => [
                    sanitize(&a.report.package.name),
                    sanitize(&a.report.package.version),
                    a.report.verdict.as_str().to_owned(),
                    format!("{:.1} s", o.elapsed.as_secs_f64()),
                    sanitize(&a.attestation.display().to_string()),
                ],
                Err(_) => [
                    sanitize(&o.release.recipe.display().to_string()),
                    "-".to_owned(),
                    "error".to_owned(),
                    format!("{:.1} s", o.elapsed.as_secs_f64()),
                    "-".to_owned(),
                ],
            })
            .collect();
        let header = ["package", "version", "verdict", "time", "attestation"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 5], verdict_style: Option<Style>| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                let shown = match verdict_style {
                    None => self.paint(Style::Bold, cell),
                    Some(style) if i == 2 => self.paint(style, cell),
                    Some(_) => cell.clone(),
                };
                if i == 4 {
                    s.push_str(&shown);
                } else {
                    s.push_str(&format!("{shown}{pad}  "));
                }
            }
            s.push('\n');
            s
        };
        let mut text = format!("\n{}", line(&header, None));
        for (row, outcome) in rows.iter().zip(outcomes) {
            let style = if outcome.status == ExitStatus::Success {
                Style::Good
            } else {
                Style::Bad
            };
            text.push_str(&line(row, Some(style)));
        }
        let passed = outcomes
            .iter()
            .filter(|o| o.status == ExitStatus::Success)
            .count();
        text.push_str(&format!(
            "{passed} of {} releases verified\n",
            outcomes.len()
        ));
        self.result(&text)
    }
}
