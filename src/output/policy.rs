//! Rendering of a policy decision (`attest verify --policy`): human text or one JSON document.
//!
//! Human text lists each attestation, then each requirement with the attestations that met it
//! and, for the others, why not; then the releases (sets of subject digests) and who attests
//! each; the last line is the decision. Everything taken from an attestation is untrusted text
//! and is sanitized before it is shown.
//!
//! JSON (`--json`), one document, `schema_version` 1:
//!
//! ```text
//! { "schema_version": 1, "policy": "…", "accepted": true, "threshold": 2,
//!   "now": "2026-12-01T00:00:00Z",
//!   "verifiers": [ { "id": "…", "name": "…", "keyid": "…" } ],
//!   "attestations": [ { "file": "…", "verifier": "<id>", "verdict": "identical",
//!       "time_verified": "…", "redacted": true, "qualifies": true, "counted": true, "release": 0,
//!       "requirements": [ { "requirement": "signature", "outcome": "met", "detail": "…" } ] } ],
//!   "releases": [ { "subjects": [ { "name": "…", "digest": { "sha256": "…" } } ],
//!       "verifiers": ["<id>"], "meets_threshold": true } ],
//!   "decision": "accepted: …" }
//! ```
//!
//! `outcome` is `met`, `not_met` or `not_checked` (an earlier requirement failed, so nothing
//! the attestation says is trusted); `requirement` is one of `signature`, `verifier`,
//! `verdict`, `isolation`, `traced_lock`, `age`, `artifacts`. Absent values are left out.

use std::collections::BTreeMap;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::attest::policy::{
    verifier_list, Decision, Outcome, Policy, RequiredIsolation, Requirement,
};

#[derive(Serialize)]
struct DecisionJson {
    schema_version: u32,
    policy: String,
    accepted: bool,
    threshold: usize,
    now: String,
    verifiers: Vec<VerifierJson>,
    attestations: Vec<AttestationJson>,
    releases: Vec<ReleaseJson>,
    decision: String,
}

#[derive(Serialize)]
struct VerifierJson {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    keyid: String,
}

#[derive(Serialize)]
struct AttestationJson {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    verifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_verified: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    redacted: bool,
    qualifies: bool,
    counted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<usize>,
    requirements: Vec<RequirementJson>,
}

#[derive(Serialize)]
struct RequirementJson {
    requirement: &'static str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
}

#[derive(Serialize)]
struct ReleaseJson {
    subjects: Vec<SubjectJson>,
    verifiers: Vec<String>,
    meets_threshold: bool,
}

#[derive(Serialize)]
struct SubjectJson {
    name: String,
    digest: BTreeMap<String, String>,
}

/// Write `decision` to stdout, as text or JSON.
pub(crate) fn emit(out: &Output, policy: &Policy, decision: &Decision) -> std::io::Result<()> {
    if out.is_json() {
        out.json(&to_json(policy, decision))
    } else {
        out.result(&render_human(out, policy, decision))
    }
}

fn time_text(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn to_json(policy: &Policy, d: &Decision) -> DecisionJson {
    DecisionJson {
        schema_version: 1,
        policy: policy.path.display().to_string(),
        accepted: d.is_accepted(),
        threshold: policy.threshold,
        now: time_text(d.now),
        verifiers: policy
            .verifiers
            .iter()
            .map(|v| VerifierJson {
                id: v.id.clone(),
                name: v.name.clone(),
                keyid: v.key.keyid().to_owned(),
            })
            .collect(),
        attestations: d
            .assessments
            .iter()
            .map(|a| AttestationJson {
                file: a.path.display().to_string(),
                verifier: a.verifier.map(|v| policy.verifiers[v].id.clone()),
                verdict: a.verdict.map(|v| v.to_string()),
                time_verified: a.time_verified.map(time_text),
                redacted: a.redacted,
                qualifies: a.qualifies(),
                counted: a.counted,
                release: a.release,
                requirements: a
                    .outcomes
                    .iter()
                    .map(|(r, o)| {
                        let (outcome, detail) = match o {
                            Outcome::Met(d) => ("met", d.clone()),
                            Outcome::NotMet(d) => ("not_met", d.clone()),
                            Outcome::NotChecked => ("not_checked", String::new()),
                        };
                        RequirementJson {
                            requirement: r.code(),
                            outcome,
                            detail,
                        }
                    })
                    .collect(),
            })
            .collect(),
        releases: d
            .releases
            .iter()
            .map(|r| ReleaseJson {
                subjects: r
                    .subjects
                    .iter()
                    .map(|s| SubjectJson {
                        name: s.name.clone(),
                        digest: s.digest.clone(),
                    })
                    .collect(),
                verifiers: r
                    .verifiers
                    .iter()
                    .map(|&v| policy.verifiers[v].id.clone())
                    .collect(),
                meets_threshold: r.verifiers.len() >= policy.threshold,
            })
            .collect(),
        decision: d.reason.clone(),
    }
}

/// What a requirement asks, for its heading.
fn heading(policy: &Policy, r: Requirement) -> String {
    match r {
        Requirement::Signature => "signed by a listed key, and whole".to_owned(),
        Requirement::Verifier => "by a listed verifier, under its own name".to_owned(),
        Requirement::Verdict => {
            let verdicts: Vec<String> = policy.verdicts.iter().map(|v| format!("`{v}`")).collect();
            let mut text = format!("verdict {}", verdicts.join(" or "));
            if !policy.allowances.is_empty() {
                let kinds: Vec<String> =
                    policy.allowances.iter().map(|k| format!("`{k}`")).collect();
                text.push_str(&format!(" (allowances: {})", kinds.join(", ")));
            }
            text
        }
        Requirement::Isolation => match policy.isolation {
            RequiredIsolation::Sandbox => "rebuilt in a sandbox, not `isolation = \"none\"`",
            RequiredIsolation::Any => "any isolation",
        }
        .to_owned(),
        Requirement::TracedLock => "a complete (traced) lock".to_owned(),
        Requirement::Age => policy
            .max_age
            .as_ref()
            .map(|(_, text)| format!("verified at most `{text}` ago"))
            .unwrap_or_default(),
        Requirement::Artifacts => "of the artifacts given".to_owned(),
    }
}

fn render_human(out: &Output, policy: &Policy, d: &Decision) -> String {
    let path = |p: &str| out.paint(Style::Path, &format!("`{}`", sanitize(p)));
    let file = |i: usize| path(&d.assessments[i].path.display().to_string());
    let mut text = format!(
        "policy {}: {} of {} listed verifiers must attest the same digests (now: {})\n",
        path(&policy.path.display().to_string()),
        policy.threshold,
        policy.verifiers.len(),
        time_text(d.now)
    );
    text.push_str("attestations:\n");
    for (i, a) in d.assessments.iter().enumerate() {
        let who = a.verifier.map_or_else(
            || out.paint(Style::Bad, "counts for nobody"),
            |v| {
                let v = &policy.verifiers[v];
                match &v.name {
                    Some(name) => format!("by {} ({})", sanitize(name), path(&v.id)),
                    None => format!("by {}", path(&v.id)),
                }
            },
        );
        let mut line = format!("  {}: {who}", file(i));
        if let Some(verdict) = a.verdict {
            line.push_str(&format!(", `{verdict}`"));
        }
        if let Some(t) = a.time_verified {
            line.push_str(&format!(", verified at {}", time_text(t)));
        }
        if a.redacted {
            line.push_str(", redacted");
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("requirements:\n");
    for &r in &d.requirements {
        text.push_str(&format!("  {}:\n", heading(policy, r)));
        let outcomes: Vec<(usize, &Outcome)> = d
            .assessments
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                a.outcomes
                    .iter()
                    .find(|(q, _)| *q == r)
                    .map(|(_, o)| (i, o))
            })
            .collect();
        for (i, o) in &outcomes {
            let line = match o {
                Outcome::Met(detail) if detail.is_empty() => {
                    format!("{} {}", out.paint(Style::Good, "met by"), file(*i))
                }
                Outcome::Met(detail) => format!(
                    "{} {}: {}",
                    out.paint(Style::Good, "met by"),
                    file(*i),
                    sanitize(detail)
                ),
                Outcome::NotMet(detail) => format!(
                    "{} {}: {}",
                    out.paint(Style::Bad, "not met by"),
                    file(*i),
                    sanitize(detail)
                ),
                Outcome::NotChecked => format!(
                    "{} {}: an earlier requirement failed",
                    out.paint(Style::Dim, "not checked for"),
                    file(*i)
                ),
            };
            text.push_str(&format!("    {line}\n"));
        }
    }
    text.push_str("releases:\n");
    if d.releases.is_empty() {
        text.push_str("  none: no attestation met every requirement\n");
    }
    for (n, r) in d.releases.iter().enumerate() {
        let subjects: Vec<String> = r
            .subjects
            .iter()
            .map(|s| {
                let sha = s
                    .digest
                    .get("sha256")
                    .map(String::as_str)
                    .unwrap_or_default();
                format!("{} sha256:{}", path(&s.name), sanitize(sha))
            })
            .collect();
        text.push_str(&format!(
            "  {}\n    attested by {} ({} needed, {} met)\n",
            subjects.join(", "),
            sanitize(&verifier_list(policy, &r.verifiers)),
            policy.threshold,
            r.verifiers.len()
        ));
        for (i, a) in d.assessments.iter().enumerate() {
            if a.release == Some(n) && !a.counted {
                let who = a
                    .verifier
                    .map(|v| policy.verifiers[v].label())
                    .unwrap_or_default();
                text.push_str(&format!(
                    "    {} by {} counted once: {} attests this release already\n",
                    file(i),
                    sanitize(who),
                    sanitize(who)
                ));
            }
        }
    }
    let style = if d.is_accepted() {
        Style::Good
    } else {
        Style::Bad
    };
    text.push_str(&out.paint(style, &sanitize(&d.reason)));
    text.push('\n');
    text
}

/// `attest export` refused a bundle that does not hold: say why, on stdout (a result, like
/// `attest verify`'s rejection).
pub(crate) fn export_refused(out: &Output, file: &str, problems: &[String]) -> std::io::Result<()> {
    let mut text = format!(
        "{}: {}\n",
        out.paint(Style::Path, &format!("`{}`", sanitize(file))),
        out.paint(Style::Bad, "rejected, not exported")
    );
    for p in problems {
        text.push_str(&format!("  - {}\n", sanitize(p)));
    }
    out.result(&text)
}
