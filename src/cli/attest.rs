//! `reprove attest verify FILE --key PUB… [--artifact PATH…]`: check an attestation bundle.
//!
//! JSON output (`--json`), one document:
//!
//! ```text
//! { "schema_version": 1, "file": "…", "verified": true,
//!   "envelopes": [ { "index": 1, "signed_by": "<keyid>", "predicate_type": "…" } ],
//!   "subjects": [ { "name": "…", "digest": { "sha256": "…", "blake3": "…" } } ],
//!   "artifacts": [ { "path": "…", "sha256": "sha256:…", "blake3": "blake3:…", "subject": "…" } ],
//!   "summary": { "verification_result": "PASSED", "verifier_id": "…", "time_verified": "…",
//!                "verified_levels": ["…"] },
//!   "rebuild_verdict": "identical",
//!   "problems": [ { "code": "bad_signature", "message": "…" } ] }
//! ```
//!
//! With `--dump`, `dump` holds the dump check (`docs/dump.md`). Absent values are left out. Exit 0 when every check holds, 1 when the attestation is
//! rejected, 2 when the bundle, a key or an artifact cannot be read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::attest::bundle::read_bundle;
use crate::attest::check::{check_bundle, Report};
use crate::attest::key::VerifyingKey;
use crate::exit::ExitStatus;
use crate::hash::Checksum;
use crate::output::sanitize::sanitize;
use crate::output::{Output, Style};

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Check an attestation's signatures, statements and subjects, and print its verdict
    Verify(AttestVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AttestVerifyArgs {
    /// The attestation bundle (`*.intoto.jsonl`)
    file: PathBuf,
    /// A trusted public key (PEM); repeat for several
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
    /// Files to re-hash and match against the attestation's subjects
    #[arg(long = "artifact", value_name = "PATH", num_args = 1..)]
    artifacts: Vec<PathBuf>,
    /// Find the attested artifacts (given with `--artifact`, matched to the subjects by digest)
    /// in this flash dump and account for every byte of it (see `docs/dump.md`)
    #[arg(long, value_name = "FLASH", requires = "artifacts")]
    dump: Option<PathBuf>,
    /// The flash layout of `--dump`, a TOML file with a `[flash]` table
    #[arg(long, value_name = "FILE", requires = "dump")]
    flash_layout: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct ReportJson {
    schema_version: u32,
    file: String,
    verified: bool,
    envelopes: Vec<EnvelopeJson>,
    subjects: Vec<SubjectJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    artifacts: Vec<ArtifactJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<SummaryJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuild_verdict: Option<String>,
    problems: Vec<ProblemJson>,
    /// `--dump`: the dump check, as `reprove diff RELEASE DUMP --json` writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct EnvelopeJson {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicate_type: Option<String>,
}

#[derive(Debug, Serialize)]
struct SubjectJson {
    name: String,
    digest: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ArtifactJson {
    path: String,
    sha256: Checksum,
    blake3: Checksum,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

#[derive(Debug, Serialize)]
struct SummaryJson {
    verification_result: &'static str,
    verifier_id: String,
    time_verified: String,
    verified_levels: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProblemJson {
    code: &'static str,
    message: String,
}

pub(crate) fn run(command: &AttestCommand, out: &Output) -> anyhow::Result<ExitStatus> {
    let AttestCommand::Verify(args) = command;
    // Each error names its file (and line), which is all the context there is to add.
    let envelopes = read_bundle(&args.file)?;
    let keys = args
        .keys
        .iter()
        .map(|path| VerifyingKey::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let report = check_bundle(&envelopes, &keys, &args.artifacts)?;
    let file = args.file.display().to_string();
    let dump = match &args.dump {
        Some(flash) => Some(check_dump(args, flash, &report, out)?),
        None => None,
    };
    if out.is_json() {
        let mut json = to_json(file, &report);
        json.dump = dump
            .as_ref()
            .map(|d| serde_json::to_value(crate::output::dump::DumpJson::new(d)))
            .transpose()?;
        out.json(&json)?;
    } else {
        out.result(&render_human(out, &file, &report))?;
        if let Some(d) = &dump {
            super::dump::print(d, out)?;
        }
    }
    let status = if report.is_verified() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    Ok(match &dump {
        Some(d) => status.worst(super::dump::exit_status(d, false)),
        None => status,
    })
}

/// `--dump`: the artifacts that matched a subject, found in the dump, vouched for by the
/// attested verdict (only a verified attestation vouches for anything).
fn check_dump(
    args: &AttestVerifyArgs,
    flash: &std::path::Path,
    report: &Report,
    out: &Output,
) -> anyhow::Result<crate::dump::DumpReport> {
    let vouched = match (&report.rebuild_verdict, report.is_verified()) {
        (Some(v), true) => serde_json::from_value(serde_json::Value::String(v.clone()))
            .unwrap_or(crate::verify::Verdict::Different),
        _ => crate::verify::Verdict::Different,
    };
    let releases: Vec<crate::dump::Release> = report
        .artifacts
        .iter()
        .filter_map(|a| {
            a.subject.as_ref().map(|name| crate::dump::Release {
                name: name.clone(),
                path: a.path.clone(),
                vouched,
            })
        })
        .collect();
    if releases.is_empty() {
        anyhow::bail!(
            "no `--artifact` matches a subject of the attestation: nothing to look for in the dump"
        );
    }
    let (layout, blobs, layout_source) = match &args.flash_layout {
        Some(path) => {
            let file = super::dump::load_layout(path)?;
            (
                Some(file.flash),
                file.blobs,
                Some(format!("`{}`", path.display())),
            )
        }
        None => (None, Vec::new(), None),
    };
    let opts = crate::dump::Options {
        layout,
        layout_source,
        blobs,
        digest: false,
        ..crate::dump::Options::default()
    };
    super::dump::check(flash, &releases, &opts, out)
}

fn result_name(passed: bool) -> &'static str {
    if passed {
        "PASSED"
    } else {
        "FAILED"
    }
}

fn to_json(file: String, report: &Report) -> ReportJson {
    ReportJson {
        schema_version: 1,
        file,
        verified: report.is_verified(),
        envelopes: report
            .envelopes
            .iter()
            .map(|e| EnvelopeJson {
                index: e.index,
                signed_by: e.signed_by.clone(),
                predicate_type: e.predicate_type.clone(),
            })
            .collect(),
        subjects: report
            .subjects
            .iter()
            .map(|s| SubjectJson {
                name: s.name.clone(),
                digest: s.digest.clone(),
            })
            .collect(),
        artifacts: report
            .artifacts
            .iter()
            .map(|a| ArtifactJson {
                path: a.path.display().to_string(),
                sha256: a.hashes.sha256,
                blake3: a.hashes.blake3,
                subject: a.subject.clone(),
            })
            .collect(),
        summary: report.summary.as_ref().map(|s| SummaryJson {
            verification_result: result_name(s.passed),
            verifier_id: s.verifier_id.clone(),
            time_verified: s.time_verified.clone(),
            verified_levels: s.verified_levels.clone(),
        }),
        rebuild_verdict: report.rebuild_verdict.clone(),
        dump: None,
        problems: report
            .problems
            .iter()
            .map(|p| ProblemJson {
                code: p.code(),
                message: p.to_string(),
            })
            .collect(),
    }
}

/// Everything taken from the attestation is untrusted text: it is sanitized before it is shown.
fn render_human(out: &Output, file: &str, report: &Report) -> String {
    let path = |p: &str| out.paint(Style::Path, &format!("`{}`", sanitize(p)));
    let verdict = if report.is_verified() {
        out.paint(Style::Good, "verified")
    } else {
        out.paint(Style::Bad, "rejected")
    };
    let mut text = format!("{}: {verdict}\n", path(file));
    for e in &report.envelopes {
        let signer = e.signed_by.as_deref().map_or_else(
            || out.paint(Style::Bad, "no valid signature"),
            |k| format!("signed by {k}"),
        );
        let kind = e
            .predicate_type
            .as_deref()
            .map(|t| format!(", {}", sanitize(t)))
            .unwrap_or_default();
        text.push_str(&format!("  envelope {}: {signer}{kind}\n", e.index));
    }
    for s in &report.subjects {
        text.push_str(&format!("  subject {}\n", path(&s.name)));
        for (algorithm, hex) in &s.digest {
            text.push_str(&format!("    {}:{}\n", sanitize(algorithm), sanitize(hex)));
        }
    }
    for a in &report.artifacts {
        let shown = a.path.display().to_string();
        match &a.subject {
            Some(name) => text.push_str(&format!(
                "  artifact {} matches subject {}\n",
                path(&shown),
                path(name)
            )),
            None => text.push_str(&format!(
                "  artifact {} {}\n",
                path(&shown),
                out.paint(Style::Bad, "matches no subject")
            )),
        }
    }
    if let Some(s) = &report.summary {
        let style = if s.passed { Style::Good } else { Style::Bad };
        let levels: Vec<String> = s.verified_levels.iter().map(|l| sanitize(l)).collect();
        text.push_str(&format!(
            "  verification summary: {} by {} at {} (levels: {})\n",
            out.paint(style, result_name(s.passed)),
            sanitize(&s.verifier_id),
            sanitize(&s.time_verified),
            levels.join(", ")
        ));
    }
    if let Some(verdict) = &report.rebuild_verdict {
        text.push_str(&format!("  rebuild verdict: {}\n", sanitize(verdict)));
    }
    if !report.problems.is_empty() {
        text.push_str(&format!("{}\n", out.paint(Style::Bad, "problems:")));
        for p in &report.problems {
            text.push_str(&format!("  - {}\n", sanitize(&p.to_string())));
        }
    }
    text
}
