//! `attest verify` and `key generate` results: text for people, JSON for programs.
//!
//! Everything shown from an attestation is untrusted text: it is sanitized before it reaches
//! a terminal.
//!
//! JSON output (`--json`), one document:
//!
//! ```text
//! { "schema_version": 1, "file": "…", "verified": true,
//!   "envelopes": [ { "index": 1, "signed_by": "<keyid>", "predicate_type": "…" } ],
//!   "subjects": [ { "name": "…", "digest": { "sha256": "…", "blake3": "…" } } ],
//!   "artifacts": [ { "path": "…", "sha256": "sha256:…", "blake3": "blake3:…", "subject": "…" } ],
//!   "summary": { "verification_result": "PASSED", "verifier_id": "…", "verifier_name": "…",
//!                "time_verified": "…", "verified_levels": ["…"] },
//!   "rebuild_verdict": "identical", "redacted": true,
//!   "blobs": [ { "name": "…", "outcome": "pinned", "pinned": "sha256:…", "shipped": "sha256:…" } ],
//!   "coverage": { "reproduced": 0, "pinned": 0, "masked": 0, "erased": 0, "unexplained": 0 },
//!   "provenance": [ { "text": "…", "file": "…", "sha256": "sha256:…" } ],
//!   "recorded_dump": { "name": "dump.bin", "size": 0, "sha256": "sha256:…", "verdict": "different",
//!                      "placements": [ { "artifact": "…", "offset": 65536, "verdict": "different",
//!                                        "differing": 1, "missing": 0 } ] },
//!   "problems": [ { "code": "bad_signature", "message": "…" } ],
//!   "dump": { … }, "dump_not_checked": { "dump": "…", "reason": "…" } }
//! ```
//!
//! With `--dump`, `dump` holds the dump check (`docs/dump.md`); `recorded_dump` is the one the
//! signed rebuild predicate records, when `verify --dump` wrote it (`offset` `null`: not found).
//!
//! Absent values are left out (`redacted` unless it is true). In text, each verified envelope
//! reads `signed by KEYID (VERIFIER-ID)`: the key and the identity it signs for.
//!
//! `key generate --json`: `{ "schema_version": 1, "private_key": "…", "public_key": "…",
//! "keyid": "…" }` (the private key itself is never printed: only where it is).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::attest::check::Report;
use crate::attest::key::GeneratedKey;
use crate::hash::Checksum;

#[derive(Debug, Serialize)]
struct ReportJson<'a> {
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
    /// Present (`true`) when the rebuild predicate was written with `--redact`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    redacted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    blobs: Vec<BlobJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<crate::coverage::Coverage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provenance: Vec<ProvenanceJson>,
    /// The dump check the signed rebuild predicate records (`verify --dump`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_dump: Option<RecordedDumpJson>,
    problems: Vec<ProblemJson>,
    /// `--dump`: the dump check, as `reprove diff RELEASE DUMP --json` writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump: Option<super::dump::DumpJson<'a>>,
    /// `--dump` given, but no `--artifact` matched a subject: nothing was looked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_not_checked: Option<NotCheckedJson>,
}

/// Why `--dump` was not checked.
const NOTHING_VOUCHED: &str =
    "no `--artifact` matches a subject of the attestation, so it vouches for nothing to look for";

#[derive(Debug, Serialize)]
struct NotCheckedJson {
    dump: String,
    reason: &'static str,
}

#[derive(Debug, Serialize)]
struct RecordedDumpJson {
    name: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    verdict: crate::verify::Verdict,
    placements: Vec<RecordedPlacementJson>,
}

#[derive(Debug, Serialize)]
struct RecordedPlacementJson {
    artifact: String,
    /// `null`: not found in the dump.
    offset: Option<i64>,
    verdict: crate::verify::Verdict,
    differing: u64,
    missing: u64,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    verifier_name: Option<String>,
    time_verified: String,
    verified_levels: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProblemJson {
    code: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct KeyJson {
    schema_version: u32,
    private_key: String,
    public_key: String,
    keyid: String,
}

impl Output {
    /// Print what checking the bundle `file` found, and the dump check of `--dump` (or, as
    /// `not_checked`, the dump that no `--artifact` matching a subject left anything to find in).
    pub(crate) fn attest_report(
        &self,
        file: &Path,
        report: &Report,
        dump: Option<&crate::dump::DumpReport>,
        not_checked: Option<&Path>,
    ) -> std::io::Result<()> {
        let file = file.display().to_string();
        if self.is_json() {
            let mut json = to_json(file, report);
            json.dump = dump.map(super::dump::DumpJson::new);
            json.dump_not_checked = not_checked.map(|d| NotCheckedJson {
                dump: d.display().to_string(),
                reason: NOTHING_VOUCHED,
            });
            self.json(&json)
        } else {
            self.result(&render_human(self, &file, report))?;
            if let Some(d) = not_checked {
                self.result(&format!(
                    "\ndump {}: {}: {NOTHING_VOUCHED}\n",
                    self.paint(
                        Style::Path,
                        &format!("`{}`", sanitize(&d.display().to_string()))
                    ),
                    self.paint(Style::Bad, "not checked")
                ))?;
            }
            match dump {
                Some(d) => self.result(&format!("\n{}", super::dump::render_text(d, self))),
                None => Ok(()),
            }
        }
    }

    /// Print where a generated key pair went, and its keyid.
    pub(crate) fn key_generated(&self, generated: &GeneratedKey) -> std::io::Result<()> {
        let public_key = generated.public_path.display().to_string();
        if self.is_json() {
            self.json(&KeyJson {
                schema_version: 1,
                private_key: generated.private_path.display().to_string(),
                public_key,
                keyid: generated.keyid.clone(),
            })
        } else {
            self.result(&format!(
                "{} {}\n{} {}\n",
                self.paint(Style::Bold, "public key:"),
                self.paint(Style::Path, &format!("`{}`", sanitize(&public_key))),
                self.paint(Style::Bold, "keyid:"),
                generated.keyid,
            ))
        }
    }
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

fn to_json(file: String, report: &Report) -> ReportJson<'static> {
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
            verifier_name: report.verifier_name.clone(),
            time_verified: s.time_verified.clone(),
            verified_levels: s.verified_levels.clone(),
        }),
        rebuild_verdict: report.rebuild_verdict.clone(),
        redacted: report.redacted,
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
        recorded_dump: report
            .rebuild
            .as_ref()
            .and_then(|p| p.dump.as_ref())
            .map(|d| RecordedDumpJson {
                name: d.name.clone(),
                size: d.size,
                sha256: d
                    .digest
                    .as_ref()
                    .map(|g| format!("sha256:{}", crate::hash::hex(&g.sha256.0))),
                verdict: d.verdict,
                placements: d
                    .placements
                    .iter()
                    .map(|p| RecordedPlacementJson {
                        artifact: p.artifact.clone(),
                        offset: p.offset,
                        verdict: p.verdict,
                        differing: p.differing,
                        missing: p.missing,
                    })
                    .collect(),
            }),
        problems: report
            .problems
            .iter()
            .map(|p| ProblemJson {
                code: p.code(),
                message: p.to_string(),
            })
            .collect(),
        dump: None,
        dump_not_checked: None,
    }
}

/// Everything taken from the attestation is untrusted text: it is sanitized before it is shown.
fn render_human(out: &Output, file: &str, report: &Report) -> String {
    let path = |p: &str| out.paint(Style::Path, &format!("`{}`", sanitize(p)));
    let verdict = if report.is_verified() {
        out.paint(Style::Good, "verified")
    } else if report.records_a_failure() {
        // Signed, whole and consistent: what failed is the verification it records.
        out.paint(
            Style::Bad,
            "failed (a valid attestation of a failed verification)",
        )
    } else {
        out.paint(Style::Bad, "rejected")
    };
    let mut text = format!("{}: {verdict}\n", path(file));
    for e in &report.envelopes {
        let signer = e.signed_by.as_deref().map_or_else(
            || out.paint(Style::Bad, "no valid signature"),
            // The key and the verifier it signs for, side by side: who vouches, and as whom.
            |k| match &report.summary {
                Some(s) => format!("signed by {k} ({})", sanitize(&s.verifier_id)),
                None => format!("signed by {k}"),
            },
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
            verifier(&s.verifier_id, report.verifier_name.as_deref()),
            sanitize(&s.time_verified),
            levels.join(", ")
        ));
    }
    if let Some(verdict) = &report.rebuild_verdict {
        text.push_str(&format!("  rebuild verdict: {}\n", sanitize(verdict)));
    }
    if let Some(d) = report.rebuild.as_ref().and_then(|p| p.dump.as_ref()) {
        text.push_str(&recorded_dump_text(out, d));
    }
    if report.redacted {
        text.push_str("  redacted: names, contents and host paths left out, digests kept\n");
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
            super::custody::provenance_text(&p.text)
        ));
    }
    if let Some(c) = &report.custody.coverage {
        text.push_str(&format!("  {}\n", super::custody::coverage_text(c)));
    }
    if !report.problems.is_empty() {
        text.push_str(&format!("{}\n", out.paint(Style::Bad, "problems:")));
        for p in &report.problems {
            text.push_str(&format!("  - {}\n", sanitize(&p.to_string())));
        }
    }
    text
}

/// The signed dump check: `dump `NAME` sha256:…: VERDICT`, then where each artifact was.
fn recorded_dump_text(out: &Output, d: &crate::attest::rebuild::DumpRecord) -> String {
    let path = |p: &str| out.paint(Style::Path, &format!("`{}`", sanitize(p)));
    let style = if d.verdict.passed(false) {
        Style::Good
    } else {
        Style::Bad
    };
    let digest = d
        .digest
        .as_ref()
        .map(|g| format!(" sha256:{}", crate::hash::hex(&g.sha256.0)))
        .unwrap_or_default();
    let mut text = format!(
        "  dump {}{digest}: {}\n",
        path(&d.name),
        out.paint(style, d.verdict.as_str())
    );
    for p in &d.placements {
        let at = p
            .offset
            .map_or_else(|| "not found".to_owned(), |o| format!("at {o:#x}"));
        let bytes = |n: u64, what: &str| match n {
            0 => String::new(),
            1 => format!(", 1 byte {what}"),
            n => format!(", {n} bytes {what}"),
        };
        text.push_str(&format!(
            "    {} {at}: {}{}{}\n",
            path(&p.artifact),
            p.verdict.as_str(),
            bytes(p.differing, "differ"),
            bytes(p.missing, "missing")
        ));
    }
    text
}

/// `ID` or `ID ("NAME")`, sanitized.
fn verifier(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{} (\"{}\")", sanitize(id), sanitize(name)),
        None => sanitize(id),
    }
}
