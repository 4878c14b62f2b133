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
//!   "blobs": [ { "name": "…", "outcome": "pinned", "pinned": "sha256:…", "shipped": "sha256:…" } ],
//!   "coverage": { "reproduced": 0, "pinned": 0, "masked": 0, "erased": 0, "unexplained": 0 },
//!   "provenance": [ { "text": "…", "file": "…", "sha256": "sha256:…" } ],
//!   "problems": [ { "code": "bad_signature", "message": "…" } ] }
//! ```
//!
//! Absent values are left out. Exit 0 when every check holds, 1 when the attestation is
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    blobs: Vec<BlobJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<crate::coverage::Coverage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provenance: Vec<ProvenanceJson>,
    problems: Vec<ProblemJson>,
}

#[derive(Debug, Serialize)]
struct BlobJson {
    name: String,
    outcome: crate::verify::BlobOutcome,
    pinned: Checksum,
    shipped: String,
}

#[derive(Debug, Serialize)]
struct ProvenanceJson {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
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
    if out.is_json() {
        out.json(&to_json(file, &report))?;
    } else {
        out.result(&render_human(out, &file, &report))?;
    }
    Ok(if report.is_verified() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The digest a blob's shipped file has, in its pin's algorithm.
fn shipped_digest(b: &crate::attest::custody::RecordedBlob) -> String {
    let hex = match b.pinned.algorithm {
        crate::hash::Algorithm::Sha256 => &b.shipped.digest.sha256,
        crate::hash::Algorithm::Blake3 => &b.shipped.digest.blake3,
    };
    format!("{}:{}", b.pinned.algorithm, crate::hash::hex(&hex.0))
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
        blobs: report
            .custody
            .blobs
            .iter()
            .map(|b| BlobJson {
                name: b.name.clone(),
                outcome: b.outcome,
                pinned: b.pinned,
                shipped: shipped_digest(b),
            })
            .collect(),
        coverage: report.custody.coverage,
        provenance: report
            .custody
            .provenance
            .iter()
            .map(|p| ProvenanceJson {
                text: p.text.clone(),
                file: p.file.as_ref().map(|f| f.name.clone()),
                sha256: p
                    .file
                    .as_ref()
                    .map(|f| format!("sha256:{}", crate::hash::hex(&f.digest.sha256.0))),
            })
            .collect(),
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
    for b in &report.custody.blobs {
        text.push_str(&format!(
            "  blob {}: {} (pinned {}, shipped {})\n",
            path(&b.name),
            b.outcome.describe(),
            b.pinned,
            sanitize(&shipped_digest(b))
        ));
    }
    for p in &report.custody.provenance {
        let from = p
            .file
            .as_ref()
            .map(|f| {
                format!(
                    " (from {}, sha256:{})",
                    path(&f.name),
                    crate::hash::hex(&f.digest.sha256.0)
                )
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "  provenance: {}{from}\n",
            crate::output::custody::provenance_text(&p.text)
        ));
    }
    if let Some(c) = &report.custody.coverage {
        text.push_str(&format!("  {}\n", crate::output::custody::coverage_text(c)));
    }
    if !report.problems.is_empty() {
        text.push_str(&format!("{}\n", out.paint(Style::Bad, "problems:")));
        for p in &report.problems {
            text.push_str(&format!("  - {}\n", sanitize(&p.to_string())));
        }
    }
    text
}
