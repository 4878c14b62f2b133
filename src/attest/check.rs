//! `attest verify`'s logic: does a bundle hold, for these keys and these artifacts?
//!
//! Every envelope must carry a signature that one of the trusted keys verifies (the keyid is a
//! hint, never trusted); nothing an envelope says counts until it does. Each signed payload must
//! be an in-toto Statement v1 whose subjects have a `name` and a `digest` with `sha256` (and
//! `blake3` when present) in lowercase hex; every statement of a bundle must name the same
//! subjects, so a statement spliced in from another attestation is caught. The bundle holds
//! exactly one SLSA verification summary and one rebuild predicate, each of which must parse (the
//! rebuild predicate by its typed layout, [`RebuildPredicate`]), and the summary must record
//! `PASSED`, agreeing with the rebuild verdict: `PASSED` exactly when the verdict is
//! `identical` or `equivalent` and the dump check the predicate records (`verify --dump`), if
//! any, passed. A `FAILED` summary that agrees is a valid record of a failed verification (its
//! only problem is [`Problem::VerificationFailed`]); one that disagrees is a splice. The rebuild predicate must not contradict itself
//! (its verdicts follow from the digests and comparisons it records, and the subjects are its
//! shipped files: see the `consistency` module). Each artifact given is hashed once (sha256 and blake3) and must match a subject by
//! digest: sha256 always, blake3 too when the subject has it.
//!
//! A rejection is a value, [`Report::problems`]; an [`Error`] means an artifact could not be read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::dsse::{Envelope, PAYLOAD_TYPE};
use super::key::VerifyingKey;
use super::rebuild::RebuildPredicate;
use super::{vsa, Error, STATEMENT_TYPE};
use crate::hash::{hash_files, parse_hex32, Hashes};

/// The predicate type of `reprove`'s own rebuild record.
pub const REBUILD_PREDICATE_TYPE: &str = "https://reprove.dev/attestation/rebuild/v1";

/// What checking a bundle found.
#[derive(Debug, Clone)]
pub struct Report {
    /// One entry per envelope, in bundle order.
    pub envelopes: Vec<EnvelopeCheck>,
    /// The subjects the signed statements agree on (those of the first signed statement).
    pub subjects: Vec<StatementSubject>,
    /// The artifacts given, with the subject each matched.
    pub artifacts: Vec<ArtifactCheck>,
    /// The verification summary, when a signed one was found.
    pub summary: Option<Summary>,
    /// The rebuild predicate's `verdict`, when a signed one was found.
    pub rebuild_verdict: Option<String>,
    /// The rebuild predicate's display name of its verifier, when it has one.
    pub verifier_name: Option<String>,
    /// The rebuild predicate says it was written with `--redact`.
    pub redacted: bool,
    /// The signed rebuild predicate, when one parsed (whatever else was found wrong).
    pub rebuild: Option<RebuildPredicate>,
    /// The signed rebuild predicate's custody: pinned blobs, coverage and provenance.
    pub custody: Custody,
    /// Every reason to reject the bundle; empty when it holds.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when every check held.
    pub fn is_verified(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when the bundle holds and what it records is a failed verification: its one
    /// problem is the summary's `FAILED`, which agrees with the rebuild predicate.
    pub fn records_a_failure(&self) -> bool {
        !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|p| *p == Problem::VerificationFailed)
    }
}

/// What a signed rebuild predicate says of custody (empty when it says nothing).
#[derive(Debug, Clone, Default)]
pub struct Custody {
    pub blobs: Vec<super::custody::RecordedBlob>,
    pub coverage: Option<crate::coverage::Coverage>,
    pub provenance: Vec<super::custody::ProvenanceRecord>,
}

/// One envelope, as checked.
#[derive(Debug, Clone)]
pub struct EnvelopeCheck {
    /// 1-based position in the bundle.
    pub index: usize,
    /// The keyid of the trusted key that verified a signature.
    pub signed_by: Option<String>,
    /// The statement's `predicateType`, when the envelope is signed and holds a statement.
    pub predicate_type: Option<String>,
}

/// A subject of a statement: a name and its digest set (algorithm → lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct StatementSubject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

/// An artifact given on the command line, hashed.
#[derive(Debug, Clone)]
pub struct ArtifactCheck {
    pub path: PathBuf,
    pub hashes: Hashes,
    /// The name of the subject whose digests it matched.
    pub subject: Option<String>,
}

/// The fields of a SLSA verification summary worth showing.
#[derive(Debug, Clone)]
pub struct Summary {
    pub passed: bool,
    pub verifier_id: String,
    pub time_verified: String,
    pub verified_levels: Vec<String>,
    /// `resourceUri`: the package verified, `pkg:generic/NAME@VERSION`.
    pub resource_uri: String,
    /// `policy.digest.sha256`: binds the recipe and the lock.
    pub policy_sha256: Option<String>,
}

/// Why a bundle is rejected. Envelopes are numbered from 1, in bundle order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No signature verifies with a trusted key (`signatures` is how many there were).
    BadSignature {
        envelope: usize,
        signatures: usize,
    },
    PayloadType {
        envelope: usize,
        found: String,
    },
    Statement {
        envelope: usize,
        reason: String,
    },
    Predicate {
        envelope: usize,
        predicate_type: &'static str,
        reason: String,
    },
    /// Envelope `envelope` verifies with no key that verifies envelope `first`: two signers.
    SignersDiffer {
        envelope: usize,
        first: usize,
    },
    /// The summary and the rebuild predicate describe different verifications: `field` of the
    /// summary says `summary`, the rebuild predicate implies `predicate`.
    SummaryDisagrees {
        field: &'static str,
        summary: String,
        predicate: String,
    },
    /// The statement's subjects differ from those of envelope `first`.
    SubjectsDiffer {
        envelope: usize,
        first: usize,
    },
    MissingPredicate {
        predicate_type: &'static str,
    },
    DuplicatePredicate {
        envelope: usize,
        predicate_type: &'static str,
    },
    /// The verification summary records `FAILED`.
    VerificationFailed,
    /// The summary's result contradicts what the rebuild predicate records: `PASSED` exactly
    /// when the rebuild verdict passes and the dump check (`dump`, when one is recorded)
    /// passed too.
    VerdictsDisagree {
        passed: bool,
        verdict: String,
        dump: Option<String>,
    },
    /// An artifact whose digests match no subject.
    ArtifactUnmatched {
        path: PathBuf,
    },
    /// The rebuild predicate contradicts itself: a verdict that does not follow from the
    /// digests or comparisons it records (see `consistency`).
    SelfContradiction {
        what: String,
    },
}

impl Problem {
    /// A stable `snake_case` name for the kind of problem (for JSON).
    pub fn code(&self) -> &'static str {
        match self {
            Problem::BadSignature { .. } => "bad_signature",
            Problem::PayloadType { .. } => "payload_type",
            Problem::Statement { .. } => "statement",
            Problem::Predicate { .. } => "predicate",
            Problem::SignersDiffer { .. } => "signers_differ",
            Problem::SummaryDisagrees { .. } => "summary_disagrees",
            Problem::SubjectsDiffer { .. } => "subjects_differ",
            Problem::MissingPredicate { .. } => "missing_predicate",
            Problem::DuplicatePredicate { .. } => "duplicate_predicate",
            Problem::VerificationFailed => "verification_failed",
            Problem::VerdictsDisagree { .. } => "verdicts_disagree",
            Problem::ArtifactUnmatched { .. } => "artifact_unmatched",
            Problem::SelfContradiction { .. } => "self_contradiction",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadSignature {
                envelope,
                signatures: 0,
            } => write!(f, "envelope {envelope}: unsigned"),
            Problem::BadSignature { envelope, .. } => write!(
                f,
                "envelope {envelope}: no signature verifies with the given keys"
            ),
            Problem::PayloadType { envelope, found } => write!(
                f,
                "envelope {envelope}: payload type `{found}`, expected `{PAYLOAD_TYPE}`"
            ),
            Problem::Statement { envelope, reason } => write!(
                f,
                "envelope {envelope}: not an in-toto statement v1: {reason}"
            ),
            Problem::Predicate {
                envelope,
                predicate_type,
                reason,
            } => write!(
                f,
                "envelope {envelope}: invalid `{predicate_type}` predicate: {reason}"
            ),
            Problem::SignersDiffer { envelope, first } => write!(
                f,
                "envelope {envelope}: signed by another key than envelope {first} (one \
                 attestation has one signer: a statement from another verifier?)"
            ),
            Problem::SummaryDisagrees {
                field,
                summary,
                predicate,
            } => write!(
                f,
                "the verification summary's {field} is `{summary}` but the rebuild predicate's \
                 is `{predicate}` (statements of two verifications?)"
            ),
            Problem::SubjectsDiffer { envelope, first } => write!(
                f,
                "envelope {envelope}: its subjects differ from those of envelope {first} \
                 (a statement from another attestation?)"
            ),
            Problem::MissingPredicate { predicate_type } => {
                write!(f, "no signed `{predicate_type}` statement")
            }
            Problem::DuplicatePredicate {
                envelope,
                predicate_type,
            } => write!(
                f,
                "envelope {envelope}: a second `{predicate_type}` statement"
            ),
            Problem::VerdictsDisagree {
                passed,
                verdict,
                dump,
            } => {
                write!(
                    f,
                    "the verification summary records `{}` but the rebuild verdict is `{verdict}`",
                    if *passed { "PASSED" } else { "FAILED" }
                )?;
                match dump {
                    Some(dump) => write!(f, " and the dump's is `{dump}`"),
                    None => write!(f, " and no dump was checked"),
                }
            }
            Problem::VerificationFailed => {
                write!(f, "the verification summary records `FAILED`")
            }
            Problem::SelfContradiction { what } => {
                write!(f, "the rebuild predicate contradicts itself: {what}")
            }
            Problem::ArtifactUnmatched { path } => write!(
                f,
                "`{}` matches no subject of the attestation",
                path.display()
            ),
        }
    }
}

#[derive(Deserialize)]
struct RawStatement {
    subject: Vec<StatementSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVsa {
    verifier: RawVerifier,
    time_verified: String,
    resource_uri: String,
    policy: RawPolicy,
    verification_result: VerificationResult,
    verified_levels: Vec<String>,
    #[allow(dead_code)]
    slsa_version: String,
}

#[derive(Deserialize)]
struct RawVerifier {
    id: String,
}

#[derive(Deserialize)]
struct RawPolicy {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum VerificationResult {
    Passed,
    Failed,
}

/// Check `envelopes` against the trusted `keys` and the `artifacts` to re-hash.
pub fn check_bundle(
    envelopes: &[Envelope],
    keys: &[VerifyingKey],
    artifacts: &[PathBuf],
) -> Result<Report, Error> {
    let mut report = Report {
        envelopes: Vec::new(),
        subjects: Vec::new(),
        artifacts: Vec::new(),
        summary: None,
        rebuild_verdict: None,
        verifier_name: None,
        redacted: false,
        rebuild: None,
        custody: Custody::default(),
        problems: Vec::new(),
    };
    // The subjects of the first signed statement, and its envelope number.
    let mut first_subjects: Option<(usize, Vec<StatementSubject>)> = None;
    let mut summary_at: Option<usize> = None;
    let mut rebuild_at: Option<usize> = None;
    // The rebuild predicate, with the subjects of its own statement.
    let mut rebuild: Option<(RebuildPredicate, Vec<StatementSubject>)> = None;
    // The first signed envelope, and the keys that sign every signed envelope.
    let mut signer: Option<(usize, BTreeSet<usize>)> = None;
    let mut signer_sets: Vec<BTreeSet<usize>> = Vec::with_capacity(envelopes.len());

    for (i, envelope) in envelopes.iter().enumerate() {
        let index = i + 1;
        let mut check = EnvelopeCheck {
            index,
            signed_by: None,
            predicate_type: None,
        };
        // Every trusted key that verifies one of its signatures (the keyid is only a hint).
        let message = envelope.pae();
        let signers: BTreeSet<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| {
                envelope
                    .signatures
                    .iter()
                    .any(|s| k.verify(&message, &s.sig))
            })
            .map(|(i, _)| i)
            .collect();
        let statement =
            check_envelope(index, envelope, &signers, &mut signer, &mut report.problems);
        signer_sets.push(signers);
        if let Some(statement) = &statement {
            check.predicate_type = Some(statement.predicate_type.clone());
        }
        report.envelopes.push(check);
        let Some(statement) = statement else { continue };

        let mut subjects = statement.subject;
        subjects.sort();
        let own_subjects = subjects.clone();
        match &first_subjects {
            None => first_subjects = Some((index, subjects)),
            Some((first, expected)) if *expected != subjects => {
                report.problems.push(Problem::SubjectsDiffer {
                    envelope: index,
                    first: *first,
                });
            }
            Some(_) => {}
        }

        let (predicate_type, seen) = match statement.predicate_type.as_str() {
            vsa::PREDICATE_TYPE => (vsa::PREDICATE_TYPE, &mut summary_at),
            REBUILD_PREDICATE_TYPE => (REBUILD_PREDICATE_TYPE, &mut rebuild_at),
            // Other predicates may ride along; in-toto consumers ignore what they don't know.
            _ => continue,
        };
        if seen.is_some() {
            report.problems.push(Problem::DuplicatePredicate {
                envelope: index,
                predicate_type,
            });
            continue;
        }
        *seen = Some(index);
        let parsed = if predicate_type == vsa::PREDICATE_TYPE {
            parse_vsa(statement.predicate).map(|summary| report.summary = Some(summary))
        } else {
            RebuildPredicate::parse(Value::Object(statement.predicate)).map(|parsed| {
                report.rebuild_verdict = Some(parsed.verdict.to_string());
                report.verifier_name.clone_from(&parsed.verifier.name);
                report.redacted = parsed.redacted;
                report.custody = Custody {
                    blobs: parsed.blobs.clone(),
                    coverage: parsed.coverage.map(|c| c.coverage()),
                    provenance: parsed
                        .provenance
                        .as_ref()
                        .map(|p| p.records.clone())
                        .unwrap_or_default(),
                };
                rebuild = Some((parsed, own_subjects));
            })
        };
        if let Err(reason) = parsed {
            report.problems.push(Problem::Predicate {
                envelope: index,
                predicate_type,
                reason,
            });
        }
    }

    // Each envelope is shown as signed by the bundle's one signer where it can be.
    let common = signer.map(|(_, keys)| keys).unwrap_or_default();
    for (check, signers) in report.envelopes.iter_mut().zip(&signer_sets) {
        check.signed_by = signers
            .intersection(&common)
            .chain(signers)
            .next()
            .map(|&i| keys[i].keyid().to_owned());
    }
    for (seen, predicate_type) in [
        (summary_at, vsa::PREDICATE_TYPE),
        (rebuild_at, REBUILD_PREDICATE_TYPE),
    ] {
        if seen.is_none() {
            report
                .problems
                .push(Problem::MissingPredicate { predicate_type });
        }
    }
    if let (Some(summary), Some((predicate, _))) = (&report.summary, &rebuild) {
        // Both statements are signed, but they are two claims: they must tell one story. A
        // dump check that failed fails the verification (`verify --dump`), and only that or
        // the rebuild verdict may.
        let dump = predicate.dump.as_ref().map(|d| d.verdict);
        let expected = predicate.verdict.passed(false) && dump.is_none_or(|d| d.passed(false));
        if summary.passed != expected {
            report.problems.push(Problem::VerdictsDisagree {
                passed: summary.passed,
                verdict: predicate.verdict.as_str().to_owned(),
                dump: dump.map(|d| d.as_str().to_owned()),
            });
        }
    }
    if report.summary.as_ref().is_some_and(|s| !s.passed) {
        report.problems.push(Problem::VerificationFailed);
    }

    report.subjects = first_subjects.map(|(_, s)| s).unwrap_or_default();
    if let (Some(summary), Some((rebuild, _))) = (&report.summary, &rebuild) {
        report
            .problems
            .extend(summary_disagreements(summary, rebuild));
    }
    if let Some((rebuild, subjects)) = rebuild {
        // Signed is not true: each verdict must follow from what the predicate records.
        for what in super::consistency::contradictions(&rebuild, &subjects) {
            report.problems.push(Problem::SelfContradiction { what });
        }
        report.rebuild = Some(rebuild);
    }
    for (path, hashes) in artifacts.iter().zip(hash_files(artifacts)) {
        let hashes = hashes.map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let subject = report
            .subjects
            .iter()
            .find(|s| subject_matches(s, &hashes))
            .map(|s| s.name.clone());
        if subject.is_none() {
            report
                .problems
                .push(Problem::ArtifactUnmatched { path: path.clone() });
        }
        report.artifacts.push(ArtifactCheck {
            path: path.clone(),
            hashes,
            subject,
        });
    }
    Ok(report)
}

/// Signature, payload type and statement shape of one envelope; the statement when all hold.
///
/// `signers` are the trusted keys that verify one of its signatures (indexes); `signer` is the
/// first signed envelope's number and the keys that sign every signed envelope so far; an
/// envelope that none of them signs is refused.
fn check_envelope(
    index: usize,
    envelope: &Envelope,
    signers: &BTreeSet<usize>,
    signer: &mut Option<(usize, BTreeSet<usize>)>,
    problems: &mut Vec<Problem>,
) -> Option<RawStatement> {
    if signers.is_empty() {
        problems.push(Problem::BadSignature {
            envelope: index,
            signatures: envelope.signatures.len(),
        });
        return None;
    }
    // One attestation has one signer: a key that signs every envelope read so far.
    match signer {
        None => *signer = Some((index, signers.clone())),
        Some((first, common)) => {
            let both: BTreeSet<usize> = common.intersection(signers).copied().collect();
            if both.is_empty() {
                problems.push(Problem::SignersDiffer {
                    envelope: index,
                    first: *first,
                });
                return None;
            }
            *common = both;
        }
    }
    if envelope.payload_type != PAYLOAD_TYPE {
        problems.push(Problem::PayloadType {
            envelope: index,
            found: envelope.payload_type.clone(),
        });
        return None;
    }
    match parse_statement(&envelope.payload) {
        Ok(statement) => Some(statement),
        Err(reason) => {
            problems.push(Problem::Statement {
                envelope: index,
                reason,
            });
            None
        }
    }
}

fn parse_statement(payload: &[u8]) -> Result<RawStatement, String> {
    let value = strict::parse(payload)?;
    match value.get("_type") {
        Some(Value::String(t)) if t == STATEMENT_TYPE => {}
        Some(Value::String(t)) => return Err(format!("`_type` is `{t}`")),
        _ => return Err("no string field `_type`".to_owned()),
    }
    let statement: RawStatement = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if statement.subject.is_empty() {
        return Err("no subject".to_owned());
    }
    for subject in &statement.subject {
        check_digest(subject).map_err(|e| format!("subject `{}`: {e}", subject.name))?;
    }
    Ok(statement)
}

fn check_digest(subject: &StatementSubject) -> Result<(), String> {
    if !subject.digest.contains_key("sha256") {
        return Err("no `sha256` digest".to_owned());
    }
    for algorithm in ["sha256", "blake3"] {
        if let Some(hex) = subject.digest.get(algorithm) {
            if parse_hex32(hex).is_none() {
                return Err(format!(
                    "`{algorithm}` is not 64 lowercase hex digits: `{hex}`"
                ));
            }
        }
    }
    Ok(())
}

fn parse_vsa(predicate: serde_json::Map<String, Value>) -> Result<Summary, String> {
    let raw: RawVsa =
        serde_json::from_value(Value::Object(predicate)).map_err(|e| e.to_string())?;
    OffsetDateTime::parse(&raw.time_verified, &Rfc3339)
        .map_err(|e| format!("`timeVerified` is not an RFC 3339 time: {e}"))?;
    Ok(Summary {
        passed: raw.verification_result == VerificationResult::Passed,
        verifier_id: raw.verifier.id,
        time_verified: raw.time_verified,
        verified_levels: raw.verified_levels,
        resource_uri: raw.resource_uri,
        policy_sha256: raw.policy.digest.get("sha256").cloned(),
    })
}

/// Where the summary and the rebuild predicate, both signed by the bundle's one signer, tell of
/// two verifications: another verifier, another package, another recipe or lock. Each is a
/// statement spliced in from another attestation of the same subjects.
fn summary_disagreements(summary: &Summary, p: &RebuildPredicate) -> Vec<Problem> {
    let resource = super::predicate::resource_uri(&p.package.name, &p.package.version);
    let policy = super::predicate::policy_digest_of(
        &p.recipe.digest.sha256.hex(),
        &p.lock.digest.sha256.hex(),
    );
    [
        (
            "`verifier.id`",
            summary.verifier_id.clone(),
            p.verifier.id.clone(),
        ),
        ("`resourceUri`", summary.resource_uri.clone(), resource),
        (
            "`policy.digest.sha256` (of the recipe and the lock)",
            summary.policy_sha256.clone().unwrap_or_default(),
            policy,
        ),
    ]
    .into_iter()
    .filter(|(_, summary, predicate)| summary != predicate)
    .map(|(field, summary, predicate)| Problem::SummaryDisagrees {
        field,
        summary,
        predicate,
    })
    .collect()
}

/// True when `hashes` match the subject's sha256, and its blake3 when it has one.
fn subject_matches(subject: &StatementSubject, hashes: &Hashes) -> bool {
    let same = |algorithm: &str, hex: String| subject.digest.get(algorithm) == Some(&hex);
    same("sha256", hashes.sha256.hex())
        && (!subject.digest.contains_key("blake3") || same("blake3", hashes.blake3.hex()))
}

/// JSON read as `serde_json` reads it, except that an object with a key written twice is
/// refused. `serde_json` keeps the last value of such a key, other readers the first: a payload
/// that two readers would read as two statements is no statement. Nesting is bounded by
/// `serde_json`'s own recursion limit, which drives this visitor.
mod strict {
    use std::collections::BTreeSet;
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    /// `payload` as a JSON value, or why not (a key written twice is named).
    pub(super) fn parse(payload: &[u8]) -> Result<Value, String> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let value = de.deserialize_any(Strict).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(value)
    }

    struct Strict;

    impl<'de> de::DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(Strict)
        }
    }

    impl<'de> Visitor<'de> for Strict {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(Strict)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut seen = BTreeSet::new();
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(de::Error::custom(format!(
                        "the key `{key}` is written twice in one object"
                    )));
                }
                let value = map.next_value_seed(Strict)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::attest::dsse::envelope;
    use crate::attest::key::SigningKey;
    use crate::attest::vsa::vsa_statement;
    use crate::attest::Subject;

    fn subjects(sha: &str) -> Vec<Subject> {
        vec![Subject::new("fw.img", sha.repeat(64), "b".repeat(64))]
    }

    /// The summary `verify` writes beside [`predicate_with`]'s predicate: the same verifier,
    /// package, recipe and lock.
    fn vsa(subjects: &[Subject], passed: bool) -> Value {
        let p = predicate_with(subjects, "identical");
        let policy_text = format!(
            "{}\n{}\n",
            p["recipe"]["digest"]["sha256"].as_str().unwrap(),
            p["lock"]["digest"]["sha256"].as_str().unwrap()
        );
        let mut v = vsa_statement(
            subjects,
            "pkg:generic/acme-router-fw@1.0.0",
            &crate::hash::hash_bytes(policy_text.as_bytes()).sha256.hex(),
            "file:reprove.toml",
            passed,
            OffsetDateTime::UNIX_EPOCH,
            vec![vsa::LEVEL_REPRODUCIBLE.to_owned()],
        );
        v["predicate"]["verifier"]["id"] = p["verifier"]["id"].clone();
        v
    }

    /// A real predicate (from the demo, shortened), made to tell one consistent story about
    /// the first of `subjects`: `identical` (rebuilt as shipped), `different` (rebuilt alike
    /// twice, not as shipped) or `equivalent` (the difference covered by an allowance).
    fn predicate_with(subjects: &[Subject], verdict: &str) -> Value {
        let mut p: Value =
            serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json"))
                .unwrap();
        p["verdict"] = json!(verdict);
        let s = &subjects[0];
        let shipped = json!({ "sha256": s.sha256, "blake3": s.blake3 });
        let rebuilt = if verdict == "identical" {
            shipped.clone()
        } else {
            p["artifacts"][0]["rebuilt"][0].clone()
        };
        let mut a = p["artifacts"][0].clone();
        a["name"] = json!(s.name);
        a["verdict"] = json!(verdict);
        a["shipped"]["digest"] = shipped;
        a["rebuilt"] = json!([rebuilt, rebuilt]);
        match verdict {
            "identical" => {
                a.as_object_mut().unwrap().remove("difference");
            }
            "equivalent" => {
                let d = &mut a["difference"];
                d["verdict"] = json!("equivalent");
                d["leaves"][0]["verdict"] = json!("equivalent");
                d["leaves"][0]["allowances"] = json!([{
                    "allowance": { "region": { "offset": 512, "length": 1 }, "reason": "r" },
                    "ranges": [{ "offset": 512, "len": 1 }],
                }]);
            }
            _ => {}
        }
        p["artifacts"] = json!([a]);
        for r in p["rebuilds"].as_array_mut().unwrap() {
            r["artifacts"] = json!([{ "name": s.name, "digest": rebuilt }]);
        }
        p
    }

    fn rebuild(subjects: &[Subject]) -> Value {
        rebuild_with(subjects, "identical")
    }

    fn rebuild_with(subjects: &[Subject], verdict: &str) -> Value {
        json!({
            "_type": STATEMENT_TYPE,
            "subject": subjects,
            "predicateType": REBUILD_PREDICATE_TYPE,
            "predicate": predicate_with(subjects, verdict),
        })
    }

    fn sign(key: &SigningKey, statements: &[Value]) -> Vec<Envelope> {
        statements
            .iter()
            .map(|s| envelope(&serde_json::to_vec(s).unwrap(), Some(key)))
            .collect()
    }

    fn problems(envelopes: &[Envelope], key: &SigningKey) -> Vec<Problem> {
        check_bundle(envelopes, &[key.verifying_key()], &[])
            .unwrap()
            .problems
    }

    #[test]
    fn a_whole_signed_bundle_holds() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let report = check_bundle(
            &sign(&key, &[vsa(&s, true), rebuild(&s)]),
            &[key.verifying_key()],
            &[],
        )
        .unwrap();
        assert_eq!(report.problems, vec![]);
        assert_eq!(report.rebuild_verdict.as_deref(), Some("identical"));
        let summary = report.summary.unwrap();
        assert!(summary.passed);
        assert_eq!(summary.verified_levels, ["REPROVE_REPRODUCIBLE"]);
        assert_eq!(report.subjects[0].name, "fw.img");
        assert_eq!(report.envelopes[0].signed_by.as_deref(), Some(key.keyid()));
    }

    #[test]
    fn keyid_is_only_a_hint() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let mut envs = sign(&key, &[vsa(&s, true), rebuild(&s)]);
        envs[0].signatures[0].keyid = "someone-else".to_owned();
        envs[1].signatures[0].keyid.clear();
        let other = SigningKey::generate().verifying_key();
        let report = check_bundle(&envs, &[other, key.verifying_key()], &[]).unwrap();
        assert_eq!(report.problems, vec![]);
    }

    #[test]
    fn a_failed_summary_is_a_rejection() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let envs = sign(&key, &[vsa(&s, false), rebuild_with(&s, "different")]);
        assert_eq!(problems(&envs, &key), vec![Problem::VerificationFailed]);
    }

    #[test]
    fn a_summary_that_contradicts_the_rebuild_verdict_is_a_rejection() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let envs = sign(&key, &[vsa(&s, true), rebuild_with(&s, "different")]);
        assert_eq!(
            problems(&envs, &key),
            vec![Problem::VerdictsDisagree {
                passed: true,
                verdict: "different".to_owned(),
                dump: None,
            }]
        );
        let envs = sign(&key, &[vsa(&s, true), rebuild_with(&s, "equivalent")]);
        assert_eq!(problems(&envs, &key), vec![]);
    }

    /// `statement` (a rebuild statement) with a signed dump record whose verdict is `verdict`.
    fn with_dump(mut statement: Value, verdict: &str) -> Value {
        statement["predicate"]["dump"] = json!({
            "name": "dump.bin",
            "size": 4096,
            "digest": { "sha256": "d".repeat(64), "blake3": "e".repeat(64) },
            "verdict": verdict,
            "placements": [],
            "spans": [],
            "coverage": { "reproduced": 0, "pinned": 0, "masked": 0, "erased": 0, "unexplained": 4096 },
        });
        statement
    }

    /// `verify --dump` signs `FAILED` over an identical rebuild when the dump failed: that is
    /// one honest story (a failed result, not a rejection). A `PASSED` summary spliced over
    /// that predicate, or a `FAILED` one with no cause at all, is not.
    #[test]
    fn the_summary_result_follows_the_rebuild_and_the_dump() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let failed_dump = with_dump(rebuild(&s), "different");
        // The splice: a PASSED summary over a predicate whose dump failed.
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, true), failed_dump.clone()]), &key),
            vec![Problem::VerdictsDisagree {
                passed: true,
                verdict: "identical".to_owned(),
                dump: Some("different".to_owned()),
            }]
        );
        // The honest record: a failed result, nothing else wrong.
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, false), failed_dump]), &key),
            vec![Problem::VerificationFailed]
        );
        // A dump that passed changes nothing.
        let passed_dump = with_dump(rebuild(&s), "identical");
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, true), passed_dump.clone()]), &key),
            vec![]
        );
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, false), passed_dump]), &key),
            vec![
                Problem::VerdictsDisagree {
                    passed: false,
                    verdict: "identical".to_owned(),
                    dump: Some("identical".to_owned()),
                },
                Problem::VerificationFailed
            ]
        );
        // FAILED with neither cause is still a contradiction.
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, false), rebuild(&s)]), &key),
            vec![
                Problem::VerdictsDisagree {
                    passed: false,
                    verdict: "identical".to_owned(),
                    dump: None,
                },
                Problem::VerificationFailed
            ]
        );
    }

    /// The contradictions found in the rebuild predicate of `envelopes`.
    fn contradictions(envelopes: &[Envelope], key: &SigningKey) -> Vec<String> {
        problems(envelopes, key)
            .into_iter()
            .filter_map(|p| match p {
                Problem::SelfContradiction { what } => Some(what),
                _ => None,
            })
            .collect()
    }

    /// See issue 8, item 7: verdicts that do not follow from the predicate's own record.
    #[test]
    fn a_predicate_that_contradicts_itself_is_a_rejection() {
        type Edit = fn(&mut Value);
        let key = SigningKey::generate();
        let s = subjects("a");
        let cases: [(&str, bool, &str, Edit); 8] = [
            (
                "different",
                false,
                "`nondeterministic`, but no two rebuilds disagree",
                |p| {
                    p["verdict"] = json!("nondeterministic");
                    p["artifacts"][0]["verdict"] = json!("nondeterministic");
                },
            ),
            (
                "identical",
                false,
                "`missing`, but every rebuild and the shipped set have it",
                |p| {
                    p["verdict"] = json!("missing");
                    p["artifacts"][0]["verdict"] = json!("missing");
                },
            ),
            (
                "identical",
                false,
                "`build-failed`, but every rebuild exited with status 0",
                |p| {
                    p["verdict"] = json!("build-failed");
                    p["artifacts"][0]["verdict"] = json!("build-failed");
                },
            ),
            (
                "different",
                false,
                "`different`, but its rebuilt and shipped digests are equal",
                |p| {
                    let shipped = p["artifacts"][0]["shipped"]["digest"].clone();
                    p["artifacts"][0]["rebuilt"] = json!([shipped, shipped]);
                    for r in p["rebuilds"].as_array_mut().unwrap() {
                        r["artifacts"][0]["digest"] = shipped.clone();
                    }
                },
            ),
            (
                "different",
                false,
                "`different`, but no difference is recorded",
                |p| {
                    p["artifacts"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("difference");
                },
            ),
            (
                "identical",
                true,
                "`failed_rebuild` names rebuild 2, which is no later rebuild that failed",
                |p| {
                    let variation = p["rebuilds"][1]["variation"].clone();
                    p["failed_rebuild"] = json!({ "rebuild": 2, "variation": variation });
                },
            ),
            ("identical", true, "2 rebuilt digests for 1 rebuilds", |p| {
                p["rebuilds"].as_array_mut().unwrap().pop();
            }),
            (
                "identical",
                true,
                "the subject `fw.img` is no shipped artifact",
                |p| {
                    p["artifacts"][0]["name"] = json!("other.img");
                    for r in p["rebuilds"].as_array_mut().unwrap() {
                        r["artifacts"][0]["name"] = json!("other.img");
                    }
                },
            ),
        ];
        for (verdict, passed, expected, edit) in cases {
            let mut statement = rebuild_with(&s, verdict);
            edit(&mut statement["predicate"]);
            let envs = sign(&key, &[vsa(&s, passed), statement]);
            let found = contradictions(&envs, &key);
            assert!(
                found.iter().any(|f| f.contains(expected)),
                "{expected}: {found:?}"
            );
        }
        // Each consistent story holds.
        for (verdict, passed) in [
            ("identical", true),
            ("equivalent", true),
            ("different", false),
        ] {
            let envs = sign(&key, &[vsa(&s, passed), rebuild_with(&s, verdict)]);
            assert_eq!(
                contradictions(&envs, &key),
                Vec::<String>::new(),
                "{verdict}"
            );
        }
    }

    #[test]
    fn both_predicates_are_required_once() {
        let key = SigningKey::generate();
        let s = subjects("a");
        assert_eq!(
            problems(&sign(&key, &[vsa(&s, true)]), &key),
            vec![Problem::MissingPredicate {
                predicate_type: REBUILD_PREDICATE_TYPE
            }]
        );
        assert_eq!(
            problems(
                &sign(&key, &[vsa(&s, true), rebuild(&s), vsa(&s, true)]),
                &key
            ),
            vec![Problem::DuplicatePredicate {
                envelope: 3,
                predicate_type: vsa::PREDICATE_TYPE
            }]
        );
    }

    #[test]
    fn statements_about_other_subjects_are_rejected() {
        let key = SigningKey::generate();
        let envs = sign(&key, &[vsa(&subjects("a"), true), rebuild(&subjects("d"))]);
        assert_eq!(
            problems(&envs, &key),
            vec![Problem::SubjectsDiffer {
                envelope: 2,
                first: 1
            }]
        );
    }

    #[test]
    fn malformed_statements_and_predicates_are_named() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let mut wrong_type = rebuild(&s);
        wrong_type["_type"] = json!("https://in-toto.io/Statement/v0.1");
        let mut bad_hex = rebuild(&s);
        bad_hex["subject"][0]["digest"]["sha256"] = json!("A".repeat(64));
        let mut no_verdict = rebuild(&s);
        no_verdict["predicate"]
            .as_object_mut()
            .unwrap()
            .remove("verdict");
        let mut bad_time = vsa(&s, true);
        bad_time["predicate"]["timeVerified"] = json!("yesterday");
        for (statement, expected) in [
            (
                wrong_type,
                "not an in-toto statement v1: `_type` is `https://in-toto.io/Statement/v0.1`",
            ),
            (
                bad_hex,
                "subject `fw.img`: `sha256` is not 64 lowercase hex digits",
            ),
            (no_verdict, "predicate: missing field `verdict`"),
            (bad_time, "`timeVerified` is not an RFC 3339 time"),
        ] {
            let found: Vec<String> = problems(&sign(&key, &[statement]), &key)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{expected}: {found:?}"
            );
        }
    }

    #[test]
    fn a_rebuild_predicate_that_does_not_parse_is_a_predicate_problem() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let mut unknown_verdict = rebuild(&s);
        unknown_verdict["predicate"]["verdict"] = json!("maybe");
        let mut no_escrow = rebuild(&s);
        no_escrow["predicate"]
            .as_object_mut()
            .unwrap()
            .remove("escrow");
        let mut bad_pin = rebuild(&s);
        bad_pin["predicate"]["toolchain"]["pins"][0]["digest"]["sha256"] = json!("sha256:00");
        for (statement, expected) in [
            (unknown_verdict, "unknown variant `maybe`"),
            (no_escrow, "missing field `escrow`"),
            (bad_pin, "expected 64 lowercase hex digits"),
        ] {
            let report = check_bundle(
                &sign(&key, &[vsa(&s, true), statement]),
                &[key.verifying_key()],
                &[],
            )
            .unwrap();
            assert_eq!(report.rebuild_verdict, None, "{expected}");
            match report.problems.as_slice() {
                [Problem::Predicate {
                    envelope: 2,
                    predicate_type: REBUILD_PREDICATE_TYPE,
                    reason,
                }] => assert!(reason.contains(expected), "{expected}: {reason}"),
                other => panic!("{expected}: {other:?}"),
            }
        }
        // Fields a later version adds are ignored, as the evolution rule asks.
        let mut later = rebuild(&s);
        later["predicate"]["added_later"] = json!({"anything": [1, 2]});
        assert_eq!(problems(&sign(&key, &[vsa(&s, true), later]), &key), vec![]);
    }

    /// Two trusted keys, one bundle: lab A's summary spliced onto lab B's rebuild predicate
    /// (or lab B's statement riding along with lab A's) is one attestation by nobody.
    #[test]
    fn a_bundle_whose_envelopes_two_keys_sign_is_a_rejection() {
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        let s = subjects("a");
        let mut envs = sign(&a, &[vsa(&s, true)]);
        envs.extend(sign(&b, &[rebuild(&s)]));
        let report = check_bundle(&envs, &[a.verifying_key(), b.verifying_key()], &[]).unwrap();
        assert_eq!(
            report.problems,
            vec![
                Problem::SignersDiffer {
                    envelope: 2,
                    first: 1
                },
                // Nothing the other signer's envelope says counts.
                Problem::MissingPredicate {
                    predicate_type: REBUILD_PREDICATE_TYPE
                }
            ]
        );
        // An envelope that both keys sign goes with either: one signer is still found.
        let mut cosigned = sign(&a, &[vsa(&s, true), rebuild(&s)]);
        let extra = sign(&b, &[rebuild(&s)]).remove(0).signatures.remove(0);
        cosigned[1].signatures.insert(0, extra);
        let keys = [b.verifying_key(), a.verifying_key()];
        let report = check_bundle(&cosigned, &keys, &[]).unwrap();
        assert_eq!(report.problems, vec![]);
        assert_eq!(report.envelopes[1].signed_by.as_deref(), Some(a.keyid()));
    }

    /// The summary and the rebuild predicate must be about one verification: the same
    /// verifier, package and recipe (a summary of one release over another's predicate, or
    /// one lab's name over another's record, is a splice).
    #[test]
    fn a_summary_that_names_another_verifier_package_or_recipe_is_a_rejection() {
        type Edit = fn(&mut Value);
        let key = SigningKey::generate();
        let s = subjects("a");
        let cases: [(&str, Edit); 4] = [
            ("`verifier.id`", |v| {
                v["predicate"]["verifier"]["id"] = json!("https://other-lab.example");
            }),
            ("`resourceUri`", |v| {
                v["predicate"]["resourceUri"] = json!("pkg:generic/acme-router-fw@0.9.0");
            }),
            ("`policy.digest.sha256`", |v| {
                v["predicate"]["policy"]["digest"]["sha256"] = json!("d".repeat(64));
            }),
            ("`policy.digest.sha256`", |v| {
                v["predicate"]["policy"]["digest"]
                    .as_object_mut()
                    .unwrap()
                    .remove("sha256");
            }),
        ];
        for (field, edit) in cases {
            let mut summary = vsa(&s, true);
            edit(&mut summary);
            let found: Vec<String> = problems(&sign(&key, &[summary, rebuild(&s)]), &key)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(field) && p.contains("rebuild predicate")),
                "{field}: {found:?}"
            );
        }
    }

    /// Two readers must never see two statements in one payload: a key written twice (which
    /// `serde_json` would quietly read as its last value) is refused wherever it is.
    #[test]
    fn a_payload_with_a_key_written_twice_is_a_rejection() {
        let key = SigningKey::generate();
        let s = subjects("a");
        let vsa_text = serde_json::to_string(&vsa(&s, true)).unwrap();
        let rebuild_text = serde_json::to_string(&rebuild(&s)).unwrap();
        for (text, twice) in [
            (
                vsa_text.replacen(
                    "\"verificationResult\":\"PASSED\"",
                    "\"verificationResult\":\"FAILED\",\"verificationResult\":\"PASSED\"",
                    1,
                ),
                "verificationResult",
            ),
            (
                rebuild_text.replacen("\"verdict\":", "\"verdict\":\"different\",\"verdict\":", 1),
                "verdict",
            ),
            (
                vsa_text.replacen("\"_type\":", "\"subject\":[],\"_type\":", 1),
                "subject",
            ),
        ] {
            assert_ne!(text, vsa_text);
            let mut envs = sign(&key, &[vsa(&s, true), rebuild(&s)]);
            let at = usize::from(twice == "verdict");
            envs[at] = envelope(text.as_bytes(), Some(&key));
            let found: Vec<String> = problems(&envs, &key)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(&format!("the key `{twice}` is written twice"))),
                "{twice}: {found:?}"
            );
        }
    }

    /// `passed`, `Passed`, `Identical`: a verdict in another case is no verdict (a reader
    /// that folded case would count what this one refuses, or the other way round).
    #[test]
    fn a_verdict_in_another_case_is_a_predicate_problem() {
        let key = SigningKey::generate();
        let s = subjects("a");
        for result in ["passed", "Passed"] {
            let mut summary = vsa(&s, true);
            summary["predicate"]["verificationResult"] = json!(result);
            let report = check_bundle(
                &sign(&key, &[summary, rebuild(&s)]),
                &[key.verifying_key()],
                &[],
            )
            .unwrap();
            assert!(report.summary.is_none(), "{result}");
            assert!(!report.is_verified(), "{result}");
        }
        for verdict in ["Identical", "IDENTICAL"] {
            let mut statement = rebuild(&s);
            statement["predicate"]["verdict"] = json!(verdict);
            let report = check_bundle(
                &sign(&key, &[vsa(&s, true), statement]),
                &[key.verifying_key()],
                &[],
            )
            .unwrap();
            assert_eq!(report.rebuild_verdict, None, "{verdict}");
            assert!(!report.is_verified(), "{verdict}");
        }
    }

    #[test]
    fn subjects_without_blake3_match_on_sha256() {
        let subject = StatementSubject {
            name: "a".to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), "0".repeat(64))]),
        };
        let mut hashes = crate::hash::hash_bytes(b"x");
        assert!(!subject_matches(&subject, &hashes));
        hashes.sha256.bytes = [0; 32];
        assert!(subject_matches(&subject, &hashes));
        let mut with_blake3 = subject.clone();
        with_blake3
            .digest
            .insert("blake3".to_owned(), "0".repeat(64));
        assert!(!subject_matches(&with_blake3, &hashes));
    }
}
