//! A trust policy, and the decision it makes over several attestations of one release.
//!
//! `POLICY.toml` (specified with examples in `docs/policy.md`) lists the verifiers an audit
//! team trusts, each with its Ed25519 public key, and what it requires of their attestations:
//! how many distinct verifiers must agree (`threshold`, k of n), which verdicts count, which
//! isolation, a complete (traced) lock, a maximum age. Parsing is as strict as the recipe's:
//! an unknown key, a wrong type or a missing field is an error naming the file, the line and
//! the key (serde lists the valid keys); what TOML cannot say (a threshold within the list,
//! unique ids and keys, exactly one key per verifier) is checked after.
//!
//! Invariants of [`decide`]:
//! - each attestation is checked by [`check_bundle`] against the policy's keys, and nothing it
//!   says counts until every one of its envelopes verifies with the key of one and the same
//!   listed verifier: an unlisted key, a bad signature or a bundle that cannot be read counts
//!   for nobody, and is listed as such (never an `Err`);
//! - a verifier counts once per release, however many of its attestations qualify;
//! - attestations of different subject digests never add up: a release is one set of
//!   `(sha256, blake3)` digests, names aside;
//! - accepted means exactly one release reached the threshold (with `--artifact`, the release
//!   whose subjects are those files); every other outcome is not accepted, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::bundle::read_bundle;
use super::check::{check_bundle, Problem, Report, StatementSubject};
use super::key::VerifyingKey;
use super::rebuild::RebuildPredicate;
use crate::hash::Hashes;
use crate::recipe::TomlFault;
use crate::verify::Verdict;

/// The largest policy file read: a policy is a page of TOML.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// How far in the future a verification time may be (clocks differ) before it is refused.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The allowance kinds an `equivalent` verdict may rest on, as `[[allow]]` writes them.
pub(crate) const ALLOWANCE_KINDS: [&str; 4] =
    ["trailer", "region", "elf-section", "archive-metadata"];

/// Why a policy could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read policy `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid policy `{}`, line {line}, column {column}: {message}: `{text}`", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        text: String,
    },
    #[error("invalid policy `{}`: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("invalid policy `{}`, key `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("invalid policy `{}`, key `{key}`", path.display())]
    Key {
        path: PathBuf,
        key: String,
        #[source]
        source: super::Error,
    },
}

/// The policy as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyToml {
    threshold: u64,
    #[serde(default = "default_verdicts")]
    verdicts: Vec<AcceptedVerdict>,
    #[serde(default)]
    allowances: Vec<String>,
    #[serde(default)]
    isolation: RequiredIsolation,
    #[serde(default = "yes")]
    traced_lock: bool,
    #[serde(default)]
    max_age: Option<String>,
    #[serde(rename = "verifier")]
    verifiers: Vec<VerifierToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct VerifierToml {
    id: String,
    name: Option<String>,
    /// A public key file, relative to the policy's folder.
    key: Option<PathBuf>,
    /// A public key, inline.
    key_pem: Option<String>,
}

fn default_verdicts() -> Vec<AcceptedVerdict> {
    vec![AcceptedVerdict::Identical]
}

fn yes() -> bool {
    true
}

/// A verdict a policy may accept: only the two that pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AcceptedVerdict {
    Identical,
    Equivalent,
}

impl AcceptedVerdict {
    fn verdict(self) -> Verdict {
        match self {
            AcceptedVerdict::Identical => Verdict::Identical,
            AcceptedVerdict::Equivalent => Verdict::Equivalent,
        }
    }
}

/// The isolation a policy requires of the rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RequiredIsolation {
    /// A sandbox (bubblewrap): `isolation = "none"` is refused.
    #[default]
    Sandbox,
    /// Anything, the host included.
    Any,
}

/// A verifier the policy trusts.
#[derive(Debug, Clone)]
pub(crate) struct TrustedVerifier {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) key: VerifyingKey,
}

impl TrustedVerifier {
    /// The name to show: the display name, else the id.
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A parsed and validated policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) path: PathBuf,
    pub(crate) threshold: usize,
    pub(crate) verifiers: Vec<TrustedVerifier>,
    pub(crate) verdicts: Vec<Verdict>,
    /// The allowance kinds an `equivalent` may rest on.
    pub(crate) allowances: Vec<String>,
    pub(crate) isolation: RequiredIsolation,
    pub(crate) traced_lock: bool,
    /// The longest time since the verification, and the text it was written as.
    pub(crate) max_age: Option<(Duration, String)>,
}

impl Policy {
    /// Read, parse and validate the policy at `path`; its key files are read too.
    pub(crate) fn load(path: &Path) -> Result<Policy, Error> {
        use std::io::Read as _;
        let read_error = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_POLICY_BYTES {
            return Err(Error::Toml {
                path: path.to_path_buf(),
                message: format!("larger than {MAX_POLICY_BYTES} bytes: not a policy"),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| Error::Toml {
            path: path.to_path_buf(),
            message: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse(path, dir, &text)
    }

    /// Parse `text`, read from `path`; key files are relative to `dir`.
    pub(crate) fn parse(path: &Path, dir: &Path, text: &str) -> Result<Policy, Error> {
        let raw: PolicyToml = toml::from_str(text).map_err(|e| {
            let fault = TomlFault::of(&e, text);
            match fault.place {
                Some((line, column, text)) => Error::Syntax {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: fault.message,
                    text,
                },
                None => Error::Toml {
                    path: path.to_path_buf(),
                    message: fault.message,
                },
            }
        })?;
        let invalid = |key: &str, message: &str| Error::Invalid {
            path: path.to_path_buf(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if raw.verifiers.is_empty() {
            return Err(invalid("verifier", "list at least one `[[verifier]]`"));
        }
        let mut verifiers: Vec<TrustedVerifier> = Vec::new();
        for (i, v) in raw.verifiers.into_iter().enumerate() {
            let key_name = |k: &str| format!("verifier[{i}].{k}");
            if v.id.trim().is_empty() {
                return Err(invalid(&key_name("id"), "must not be empty"));
            }
            if verifiers.iter().any(|w| w.id == v.id) {
                return Err(invalid(
                    &key_name("id"),
                    &format!("the id `{}` is listed twice", v.id),
                ));
            }
            let key = match (v.key, v.key_pem) {
                (Some(file), None) => {
                    let file = dir.join(file);
                    VerifyingKey::load(&file).map_err(|source| Error::Key {
                        path: path.to_path_buf(),
                        key: key_name("key"),
                        source,
                    })?
                }
                (None, Some(pem)) => VerifyingKey::from_pem(&pem).map_err(|reason| {
                    invalid(
                        &key_name("key-pem"),
                        &format!(
                            "not an Ed25519 public key in PEM `SubjectPublicKeyInfo`: {reason}"
                        ),
                    )
                })?,
                _ => return Err(invalid(
                    &format!("verifier[{i}]"),
                    "give exactly one of `key` (a public key file) and `key-pem` (the key inline)",
                )),
            };
            if let Some(other) = verifiers.iter().find(|w| w.key == key) {
                return Err(invalid(
                    &key_name("key"),
                    &format!(
                        "the same key as verifier `{}`: one key would count twice",
                        other.id
                    ),
                ));
            }
            verifiers.push(TrustedVerifier {
                id: v.id,
                name: v.name,
                key,
            });
        }
        let threshold = usize::try_from(raw.threshold).unwrap_or(usize::MAX);
        if threshold == 0 || threshold > verifiers.len() {
            return Err(invalid(
                "threshold",
                &format!(
                    "must be between 1 and the number of verifiers listed ({})",
                    verifiers.len()
                ),
            ));
        }
        if raw.verdicts.is_empty() {
            return Err(invalid(
                "verdicts",
                "list `identical`, and `equivalent` if it may count",
            ));
        }
        let equivalent = raw.verdicts.contains(&AcceptedVerdict::Equivalent);
        for (i, kind) in raw.allowances.iter().enumerate() {
            if !ALLOWANCE_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    &format!("allowances[{i}]"),
                    &format!(
                        "unknown allowance kind `{kind}`, expected one of {}",
                        ALLOWANCE_KINDS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if equivalent && raw.allowances.is_empty() {
            return Err(invalid(
                "allowances",
                "name the allowance kinds an `equivalent` verdict may rest on (`trailer`, \
                 `region`, `elf-section`, `archive-metadata`)",
            ));
        }
        if !equivalent && !raw.allowances.is_empty() {
            return Err(invalid(
                "allowances",
                "only an `equivalent` verdict rests on allowances: add it to `verdicts`",
            ));
        }
        let max_age = match raw.max_age {
            Some(text) => Some((parse_age(&text).map_err(|m| invalid("max-age", &m))?, text)),
            None => None,
        };
        let mut verdicts: Vec<Verdict> = raw.verdicts.iter().map(|v| v.verdict()).collect();
        verdicts.dedup();
        Ok(Policy {
            path: path.to_path_buf(),
            threshold,
            verifiers,
            verdicts,
            allowances: raw.allowances,
            isolation: raw.isolation,
            traced_lock: raw.traced_lock,
            max_age,
        })
    }

    /// The requirements this policy checks, in the order they are checked.
    pub(crate) fn requirements(&self) -> Vec<Requirement> {
        let mut list = vec![Requirement::Signature, Requirement::Verifier];
        list.push(Requirement::Verdict);
        if self.isolation == RequiredIsolation::Sandbox {
            list.push(Requirement::Isolation);
        }
        if self.traced_lock {
            list.push(Requirement::TracedLock);
        }
        if self.max_age.is_some() {
            list.push(Requirement::Age);
        }
        list
    }
}

/// `90d`, `2w`, `12h`, `30m`, `45s`: one whole number and one unit.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected an age such as `90d`, `2w` or `12h`, found: `{text}`");
    let split = text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(text.len(), |(i, _)| i);
    let (digits, unit) = text.split_at(split);
    let seconds: i64 = match unit {
        "w" => 7 * 86_400,
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err("must be longer than zero".to_owned());
    }
    n.checked_mul(seconds)
        .map(Duration::seconds)
        .ok_or_else(|| format!("too long: `{text}`"))
}

/// One thing a policy requires of each attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Requirement {
    /// The bundle reads, every envelope verifies with a listed key, and it holds together.
    Signature,
    /// Signed by one listed verifier, under its own name.
    Verifier,
    /// `PASSED`, with an accepted verdict (and accepted allowances).
    Verdict,
    /// Rebuilt in a sandbox.
    Isolation,
    /// With a traced lock.
    TracedLock,
    /// Verified within the maximum age.
    Age,
    /// Its subjects are the artifacts given.
    Artifacts,
}

impl Requirement {
    /// A stable `snake_case` name (for JSON).
    pub(crate) fn code(self) -> &'static str {
        match self {
            Requirement::Signature => "signature",
            Requirement::Verifier => "verifier",
            Requirement::Verdict => "verdict",
            Requirement::Isolation => "isolation",
            Requirement::TracedLock => "traced_lock",
            Requirement::Age => "age",
            Requirement::Artifacts => "artifacts",
        }
    }
}

/// What one requirement came to for one attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Met(String),
    NotMet(String),
    /// An earlier requirement failed: what the attestation says is not trusted.
    NotChecked,
}

impl Outcome {
    pub(crate) fn is_met(&self) -> bool {
        matches!(self, Outcome::Met(_))
    }
}

/// One attestation, as the policy judged it.
#[derive(Debug, Clone)]
pub(crate) struct Assessment {
    pub(crate) path: PathBuf,
    /// The listed verifier whose key signed it (index into [`Policy::verifiers`]).
    pub(crate) verifier: Option<usize>,
    /// The subjects it attests, sorted; empty when it cannot be trusted.
    pub(crate) subjects: Vec<StatementSubject>,
    pub(crate) time_verified: Option<OffsetDateTime>,
    pub(crate) verdict: Option<Verdict>,
    /// Its rebuild predicate was written with `--redact` (it keeps every digest).
    pub(crate) redacted: bool,
    /// One outcome per requirement, in the policy's order.
    pub(crate) outcomes: Vec<(Requirement, Outcome)>,
    /// Counted towards its release's threshold (false for a second attestation by a verifier).
    pub(crate) counted: bool,
    /// The release it belongs to (index into [`Decision::releases`]), when it met every
    /// requirement.
    pub(crate) release: Option<usize>,
}

impl Assessment {
    pub(crate) fn qualifies(&self) -> bool {
        self.outcomes.iter().all(|(_, o)| o.is_met())
    }
}

/// One set of subject digests, and who attests it.
#[derive(Debug, Clone)]
pub(crate) struct Release {
    pub(crate) subjects: Vec<StatementSubject>,
    /// The distinct verifiers (indexes into [`Policy::verifiers`]) whose attestations
    /// qualify, in the order first seen.
    pub(crate) verifiers: Vec<usize>,
}

/// The decision over all attestations given.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub(crate) requirements: Vec<Requirement>,
    pub(crate) assessments: Vec<Assessment>,
    pub(crate) releases: Vec<Release>,
    /// The release accepted, when there is one.
    pub(crate) accepted: Option<usize>,
    /// The last line: why accepted, or why not.
    pub(crate) reason: String,
    pub(crate) now: OffsetDateTime,
}

impl Decision {
    pub(crate) fn is_accepted(&self) -> bool {
        self.accepted.is_some()
    }
}

/// The digests that identify a release: subjects with their names left out.
fn release_key(subjects: &[StatementSubject]) -> BTreeSet<BTreeMap<String, String>> {
    subjects.iter().map(|s| s.digest.clone()).collect()
}

/// Judge `files` by `policy` at `now`; `artifacts` (path and hashes), when given, name the
/// release to decide.
pub(crate) fn decide(
    policy: &Policy,
    files: &[PathBuf],
    artifacts: &[(PathBuf, Hashes)],
    now: OffsetDateTime,
) -> Decision {
    let mut requirements = policy.requirements();
    if !artifacts.is_empty() {
        requirements.push(Requirement::Artifacts);
    }
    let mut assessments: Vec<Assessment> = files
        .iter()
        .map(|f| assess(policy, &requirements, f, artifacts, now))
        .collect();

    let mut releases: Vec<Release> = Vec::new();
    for a in &mut assessments {
        if !a.qualifies() {
            continue;
        }
        let Some(verifier) = a.verifier else { continue };
        let key = release_key(&a.subjects);
        let known = releases
            .iter()
            .position(|r| release_key(&r.subjects) == key);
        let index = known.unwrap_or_else(|| {
            releases.push(Release {
                subjects: a.subjects.clone(),
                verifiers: Vec::new(),
            });
            releases.len() - 1
        });
        a.release = Some(index);
        if !releases[index].verifiers.contains(&verifier) {
            releases[index].verifiers.push(verifier);
            a.counted = true;
        }
    }

    let met: Vec<usize> = (0..releases.len())
        .filter(|&i| releases[i].verifiers.len() >= policy.threshold)
        .collect();
    let (accepted, reason) = match met.as_slice() {
        [one] => {
            let r = &releases[*one];
            (
                Some(*one),
                format!(
                    "accepted: {} of {} listed verifiers attest the same digests ({}), {} needed",
                    r.verifiers.len(),
                    policy.verifiers.len(),
                    verifier_list(policy, &r.verifiers),
                    policy.threshold
                ),
            )
        }
        [] => {
            let best = releases
                .iter()
                .map(|r| r.verifiers.len())
                .max()
                .unwrap_or(0);
            let why = if releases.len() > 1 {
                format!(
                    "at most {best} listed verifiers attest the same digests ({} different \
                     releases, which do not add up), {} needed",
                    releases.len(),
                    policy.threshold
                )
            } else {
                format!(
                    "{best} of {} listed verifiers attest the same digests, {} needed",
                    policy.verifiers.len(),
                    policy.threshold
                )
            };
            (None, format!("not accepted: {why}"))
        }
        many => (
            None,
            format!(
                "not accepted: {} different releases each reach the threshold: pass \
                 `--artifact` to name the one to decide",
                many.len()
            ),
        ),
    };
    Decision {
        requirements,
        assessments,
        releases,
        accepted,
        reason,
        now,
    }
}

/// `Lab A, Lab B`.
pub(crate) fn verifier_list(policy: &Policy, verifiers: &[usize]) -> String {
    verifiers
        .iter()
        .map(|&v| policy.verifiers[v].label().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judge one attestation file.
fn assess(
    policy: &Policy,
    requirements: &[Requirement],
    path: &Path,
    artifacts: &[(PathBuf, Hashes)],
    now: OffsetDateTime,
) -> Assessment {
    let mut a = Assessment {
        path: path.to_path_buf(),
        verifier: None,
        subjects: Vec::new(),
        time_verified: None,
        verdict: None,
        redacted: false,
        outcomes: Vec::new(),
        counted: false,
        release: None,
    };
    let keys: Vec<VerifyingKey> = policy.verifiers.iter().map(|v| v.key.clone()).collect();
    let checked = read_bundle(path)
        .map_err(|e| error_chain(&e))
        .and_then(|envelopes| {
            let report = check_bundle(&envelopes, &keys, &[]).map_err(|e| error_chain(&e))?;
            Ok((envelopes, report))
        });
    let signature = match &checked {
        Err(reason) => Outcome::NotMet(reason.clone()),
        Ok((envelopes, report)) => signature_outcome(policy, envelopes, report),
    };
    let trusted = signature.is_met();
    a.outcomes.push((Requirement::Signature, signature));
    let report = match checked {
        Ok((_, report)) if trusted => report,
        _ => {
            for &r in &requirements[1..] {
                a.outcomes.push((r, Outcome::NotChecked));
            }
            return a;
        }
    };
    let signer = report
        .envelopes
        .first()
        .and_then(|e| e.signed_by.as_deref());
    a.verifier = policy
        .verifiers
        .iter()
        .position(|v| Some(v.key.keyid()) == signer);
    a.subjects.clone_from(&report.subjects);
    a.time_verified = report
        .summary
        .as_ref()
        .and_then(|s| OffsetDateTime::parse(&s.time_verified, &Rfc3339).ok());
    let rebuild = report.rebuild.as_ref();
    a.verdict = rebuild.map(|p| p.verdict);
    a.redacted = report.redacted;
    for &r in &requirements[1..] {
        let outcome = match r {
            Requirement::Signature => unreachable!("checked first"),
            Requirement::Verifier => verifier_outcome(policy, a.verifier, &report),
            Requirement::Verdict => verdict_outcome(policy, &report, rebuild),
            Requirement::Isolation => rebuild.map_or_else(missing, |p| {
                let backend = &p.build.isolation.backend;
                if backend == "none" {
                    Outcome::NotMet("rebuilt with `isolation = \"none\"`, on the host".to_owned())
                } else {
                    Outcome::Met(format!("rebuilt in `{backend}`"))
                }
            }),
            Requirement::TracedLock => rebuild.map_or_else(missing, |p| {
                if p.lock.traced {
                    Outcome::Met("the lock was traced from a real build".to_owned())
                } else {
                    Outcome::NotMet(
                        "the lock was not traced (`reprove lock --trace`): it may miss files \
                         the build read"
                            .to_owned(),
                    )
                }
            }),
            Requirement::Age => age_outcome(policy, a.time_verified, now),
            Requirement::Artifacts => artifacts_outcome(&report.subjects, artifacts),
        };
        a.outcomes.push((r, outcome));
    }
    a
}

fn missing() -> Outcome {
    Outcome::NotMet("no rebuild predicate".to_owned())
}

/// `error: cause: cause`, one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Signed, whole and by one listed verifier's key; a failed verification is the verdict's
/// business, not the signature's.
fn signature_outcome(
    policy: &Policy,
    envelopes: &[super::dsse::Envelope],
    report: &Report,
) -> Outcome {
    let bad_signatures = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::BadSignature { .. }))
        .count();
    if bad_signatures > 0 && bad_signatures == envelopes.len() {
        // Nothing verifies: name the keyids the envelopes claim (a hint, never trusted).
        let hints: BTreeSet<&str> = envelopes
            .iter()
            .flat_map(|e| e.signatures.iter().map(|s| s.keyid.as_str()))
            .filter(|k| !k.is_empty())
            .collect();
        if envelopes.iter().all(|e| e.signatures.is_empty()) {
            return Outcome::NotMet("unsigned".to_owned());
        }
        let listed: Vec<&TrustedVerifier> = policy
            .verifiers
            .iter()
            .filter(|v| hints.contains(v.key.keyid()))
            .collect();
        return Outcome::NotMet(if listed.is_empty() {
            format!(
                "signed by a key the policy does not list (keyid {}): counts for nobody",
                hints
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "a signature names the key of `{}` but does not verify: altered after signing?",
                listed[0].id
            )
        });
    }
    let signers: BTreeSet<&str> = report
        .envelopes
        .iter()
        .filter_map(|e| e.signed_by.as_deref())
        .collect();
    if signers.len() > 1 {
        let names: Vec<String> = policy
            .verifiers
            .iter()
            .filter(|v| signers.contains(v.key.keyid()))
            .map(|v| format!("`{}`", v.id))
            .collect();
        return Outcome::NotMet(format!(
            "its envelopes are signed by different verifiers ({}): one attestation has one \
             signer",
            names.join(", ")
        ));
    }
    let problems: Vec<String> = report
        .problems
        .iter()
        .filter(|p| !matches!(p, Problem::VerificationFailed))
        .map(ToString::to_string)
        .collect();
    if !problems.is_empty() {
        return Outcome::NotMet(problems.join("; "));
    }
    let keyid = signers.into_iter().next().unwrap_or_default();
    Outcome::Met(format!("every envelope verifies with key `{keyid}`"))
}

fn verifier_outcome(policy: &Policy, verifier: Option<usize>, report: &Report) -> Outcome {
    let Some(v) = verifier.map(|v| &policy.verifiers[v]) else {
        return Outcome::NotMet("signed by no listed verifier".to_owned());
    };
    let Some(summary) = &report.summary else {
        return Outcome::NotMet("no verification summary".to_owned());
    };
    // The key decides who signed; the statements must say the same, or a lab's key would
    // vouch for a verification another lab's name is on.
    let claimed = [
        Some(summary.verifier_id.as_str()),
        report.rebuild.as_ref().map(|p| p.verifier.id.as_str()),
    ];
    match claimed.into_iter().flatten().find(|id| *id != v.id) {
        // The name beside the id only when there is one: `X (X)` says nothing twice.
        None => Outcome::Met(match &v.name {
            Some(name) => format!("signed by `{}` ({name})", v.id),
            None => format!("signed by `{}`", v.id),
        }),
        Some(id) => Outcome::NotMet(format!(
            "signed with the key of `{}` but the attestation names verifier `{id}`",
            v.id
        )),
    }
}

fn verdict_outcome(
    policy: &Policy,
    report: &Report,
    rebuild: Option<&RebuildPredicate>,
) -> Outcome {
    let Some(p) = rebuild else {
        return missing();
    };
    if report.summary.as_ref().is_some_and(|s| !s.passed) {
        // A dump check that failed fails the verification of a release rebuilt as shipped.
        return Outcome::NotMet(match &p.dump {
            Some(d) if !d.verdict.passed(false) => format!(
                "`FAILED`: the flash dump `{}` is `{}` (the rebuild verdict is `{}`)",
                d.name, d.verdict, p.verdict
            ),
            _ => format!("`FAILED`: the rebuild verdict is `{}`", p.verdict),
        });
    }
    if !policy.verdicts.contains(&p.verdict) {
        return Outcome::NotMet(format!(
            "`{}`, and the policy accepts {}",
            p.verdict,
            policy
                .verdicts
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    if p.verdict == Verdict::Equivalent {
        let kinds = allowance_kinds(p);
        let refused: Vec<&String> = kinds
            .iter()
            .filter(|k| !policy.allowances.contains(k))
            .collect();
        if !refused.is_empty() {
            return Outcome::NotMet(format!(
                "`equivalent` by allowances the policy does not accept: {}",
                refused
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        return Outcome::Met(format!(
            "`equivalent` by {}",
            kinds
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Outcome::Met(format!("`{}`", p.verdict))
}

/// The kinds of the allowances applied anywhere in the predicate: the rule's key, as the
/// recipe writes it (`trailer`, `region`, …); a rule of no known kind is named by its keys.
pub(crate) fn allowance_kinds(p: &RebuildPredicate) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    for artifact in &p.artifacts {
        for leaf in artifact.difference.iter().flat_map(|d| &d.leaves) {
            for applied in &leaf.allowances {
                let kind = ALLOWANCE_KINDS
                    .iter()
                    .find(|k| applied.allowance.contains_key(**k))
                    .map_or_else(
                        || {
                            applied
                                .allowance
                                .keys()
                                .filter(|k| !matches!(k.as_str(), "artifact" | "reason"))
                                .cloned()
                                .collect::<Vec<_>>()
                                .join("+")
                        },
                        |k| (*k).to_owned(),
                    );
                kinds.insert(kind);
            }
        }
    }
    kinds
}

fn age_outcome(policy: &Policy, time: Option<OffsetDateTime>, now: OffsetDateTime) -> Outcome {
    let Some((max, text)) = &policy.max_age else {
        return Outcome::Met(String::new());
    };
    let Some(time) = time else {
        return Outcome::NotMet("no verification time".to_owned());
    };
    let shown = time.format(&Rfc3339).unwrap_or_default();
    let age = now - time;
    if age < -CLOCK_SKEW {
        return Outcome::NotMet(format!("verified at {shown}, after now"));
    }
    let days = age.whole_days();
    if age > *max {
        Outcome::NotMet(format!(
            "verified at {shown}, {days} days ago: older than `{text}`"
        ))
    } else {
        Outcome::Met(format!("verified at {shown}, {days} days ago"))
    }
}

fn artifacts_outcome(subjects: &[StatementSubject], artifacts: &[(PathBuf, Hashes)]) -> Outcome {
    let matches = |s: &StatementSubject, h: &Hashes| {
        s.digest.get("sha256") == Some(&h.sha256.hex())
            && s.digest.get("blake3").is_none_or(|b| *b == h.blake3.hex())
    };
    let unmatched: Vec<String> = artifacts
        .iter()
        .filter(|(_, h)| !subjects.iter().any(|s| matches(s, h)))
        .map(|(p, _)| format!("`{}`", p.display()))
        .collect();
    if unmatched.is_empty() {
        Outcome::Met("every artifact given is one of its subjects".to_owned())
    } else {
        Outcome::NotMet(format!("attests none of {}", unmatched.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A public key in PEM, the same for the whole test run.
    fn pem_a() -> &'static str {
        static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PEM.get_or_init(|| super::super::key::SigningKey::generate().public_pem())
    }

    fn parse(text: &str) -> Result<Policy, Error> {
        Policy::parse(Path::new("policy.toml"), Path::new("."), text)
    }

    fn with(head: &str) -> String {
        format!(
            "{head}\n[[verifier]]\nid = \"lab-a\"\nkey-pem = \"\"\"\n{}\"\"\"\n",
            pem_a()
        )
    }

    #[test]
    fn a_minimal_policy_takes_the_strict_defaults() {
        let p = parse(&with("threshold = 1")).unwrap();
        assert_eq!(p.threshold, 1);
        assert_eq!(p.verdicts, [Verdict::Identical]);
        assert_eq!(p.isolation, RequiredIsolation::Sandbox);
        assert!(p.traced_lock);
        assert!(p.max_age.is_none());
        assert_eq!(p.verifiers[0].label(), "lab-a");
        assert_eq!(
            p.requirements(),
            [
                Requirement::Signature,
                Requirement::Verifier,
                Requirement::Verdict,
                Requirement::Isolation,
                Requirement::TracedLock
            ]
        );
    }

    #[test]
    fn bad_policies_name_the_line_or_the_key() {
        let cases = [
            (with("threshold = 1\nthresold = 2"), "line 2, column 1: unknown field `thresold`, expected one of `threshold`, `verdicts`"),
            (with("threshold = \"2\""), "line 1, column 13: invalid type: string \"2\", expected u64"),
            (with("threshold = 2"), "key `threshold`: must be between 1 and the number of verifiers listed (1)"),
            (with("threshold = 0"), "key `threshold`: must be between 1"),
            (with("threshold = 1\nverdicts = [\"different\"]"), "unknown variant `different`, expected `identical` or `equivalent`"),
            (with("threshold = 1\nverdicts = [\"equivalent\"]"), "key `allowances`: name the allowance kinds"),
            (with("threshold = 1\nallowances = [\"trailer\"]"), "key `allowances`: only an `equivalent` verdict"),
            (with("threshold = 1\nverdicts = [\"equivalent\"]\nallowances = [\"anything\"]"), "key `allowances[0]`: unknown allowance kind `anything`"),
            (with("threshold = 1\nmax-age = \"3 months\""), "key `max-age`: expected an age such as `90d`"),
            (with("threshold = 1\nisolation = \"none\""), "unknown variant `none`, expected `sandbox` or `any`"),
            ("threshold = 1\nverifier = []".to_owned(), "key `verifier`: list at least one"),
            ("threshold = 1\n[[verifier]]\nid = \"a\"".to_owned(), "key `verifier[0]`: give exactly one of `key`"),
            ("threshold = 1\n[[verifier]]\nid = \"a\"\nkey-pem = \"x\"".to_owned(), "key `verifier[0].key-pem`: not an Ed25519 public key"),
            (format!("{}[[verifier]]\nid = \"lab-a\"\nkey-pem = \"\"\"\n{}\"\"\"\n", with("threshold = 1"), pem_a()), "key `verifier[1].id`: the id `lab-a` is listed twice"),
            (format!("{}[[verifier]]\nid = \"lab-b\"\nkey-pem = \"\"\"\n{}\"\"\"\n", with("threshold = 1"), pem_a()), "key `verifier[1].key`: the same key as verifier `lab-a`"),
            ("threshold = 1".to_owned(), "missing field `verifier`"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected).to_string();
            assert!(err.starts_with("invalid policy `policy.toml`"), "{err}");
            assert!(err.contains(expected), "{expected}\n  got: {err}");
        }
        let err =
            parse("threshold = 1\n[[verifier]]\nid = \"a\"\nkey = \"missing.pub\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid policy `policy.toml`, key `verifier[0].key`"
        );
        assert!(std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("missing.pub"));
    }

    mod deciding {
        use serde_json::{json, Value};
        use time::macros::datetime;

        use super::super::*;
        use crate::attest::bundle::write_bundle;
        use crate::attest::check::REBUILD_PREDICATE_TYPE;
        use crate::attest::dsse::envelope;
        use crate::attest::key::SigningKey;
        use crate::attest::vsa::{vsa_statement, LEVEL_REPRODUCIBLE};
        use crate::attest::{Subject, STATEMENT_TYPE};

        const VERIFIED: OffsetDateTime = datetime!(2026-11-22 14:00 UTC);

        /// A real predicate (from the demo, shortened) telling one consistent story about
        /// `subject`: `identical`, or `equivalent` by one `region` allowance.
        fn predicate(subject: &Subject, verdict: &str) -> Value {
            let mut p: Value =
                serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json"))
                    .unwrap();
            p["verdict"] = json!(verdict);
            p["lock"]["traced"] = json!(true);
            let shipped = json!({ "sha256": subject.sha256, "blake3": subject.blake3 });
            let rebuilt = if verdict == "identical" {
                shipped.clone()
            } else {
                p["artifacts"][0]["rebuilt"][0].clone()
            };
            let mut a = p["artifacts"][0].clone();
            a["name"] = json!(subject.name);
            a["verdict"] = json!(verdict);
            a["shipped"]["digest"] = shipped;
            a["rebuilt"] = json!([rebuilt, rebuilt]);
            if verdict == "identical" {
                a.as_object_mut().unwrap().remove("difference");
            } else {
                let d = &mut a["difference"];
                d["verdict"] = json!("equivalent");
                d["leaves"][0]["verdict"] = json!("equivalent");
                d["leaves"][0]["allowances"] = json!([{
                    "allowance": { "region": { "offset": 512, "length": 1 }, "reason": "r" },
                    "ranges": [{ "offset": 512, "len": 1 }],
                }]);
            }
            p["artifacts"] = json!([a]);
            for r in p["rebuilds"].as_array_mut().unwrap() {
                r["artifacts"] = json!([{ "name": subject.name, "digest": rebuilt }]);
            }
            p
        }

        /// An attestation of `fw.img` with sha256 `sha…` by `lab-N`: (VSA, rebuild predicate).
        fn statements(sha: &str, verdict: &str, lab: usize) -> [Value; 2] {
            let s = Subject::new("fw.img", sha.repeat(64), "b".repeat(64));
            let p = predicate(&s, verdict);
            let policy_digest = crate::attest::predicate::policy_digest_of(
                p["recipe"]["digest"]["sha256"].as_str().unwrap(),
                p["lock"]["digest"]["sha256"].as_str().unwrap(),
            );
            let vsa = vsa_statement(
                std::slice::from_ref(&s),
                "pkg:generic/acme-router-fw@1.0.0",
                &policy_digest,
                "urn:x",
                true,
                VERIFIED,
                vec![LEVEL_REPRODUCIBLE.to_owned()],
            );
            let rebuild = json!({
                "_type": STATEMENT_TYPE,
                "subject": [s],
                "predicateType": REBUILD_PREDICATE_TYPE,
                "predicate": p,
            });
            let mut both = [vsa, rebuild];
            for statement in &mut both {
                statement["predicate"]["verifier"]["id"] = json!(format!("lab-{lab}"));
            }
            both
        }

        struct Labs {
            dir: tempfile::TempDir,
            keys: Vec<SigningKey>,
        }

        impl Labs {
            fn new() -> Labs {
                Labs {
                    dir: tempfile::tempdir().unwrap(),
                    keys: (0..3).map(|_| SigningKey::generate()).collect(),
                }
            }

            /// A policy over the three labs (`lab-0` …) with `head` on top.
            fn policy(&self, head: &str) -> Policy {
                let mut text = format!("{head}\n");
                for (i, k) in self.keys.iter().enumerate() {
                    text.push_str(&format!(
                        "[[verifier]]\nid = \"lab-{i}\"\nkey-pem = \"\"\"\n{}\"\"\"\n",
                        k.public_pem()
                    ));
                }
                Policy::parse(Path::new("policy.toml"), self.dir.path(), &text).unwrap()
            }

            /// Write `statements`, envelope `i` signed by lab `signers[i]`, as `name`.
            fn write(&self, name: &str, statements: &[Value], signers: &[usize]) -> PathBuf {
                let envelopes: Vec<_> = statements
                    .iter()
                    .zip(signers)
                    .map(|(s, &k)| envelope(&serde_json::to_vec(s).unwrap(), Some(&self.keys[k])))
                    .collect();
                let path = self.dir.path().join(name);
                write_bundle(&path, &envelopes).unwrap();
                path
            }
        }

        fn outcome(d: &Decision, file: usize, r: Requirement) -> &Outcome {
            &d.assessments[file]
                .outcomes
                .iter()
                .find(|(q, _)| *q == r)
                .unwrap()
                .1
        }

        fn not_met(o: &Outcome) -> &str {
            match o {
                Outcome::NotMet(why) => why,
                other => panic!("met or not checked: {other:?}"),
            }
        }

        /// A summary signed by one lab spliced onto another lab's rebuild predicate is one
        /// attestation by nobody: it must not count for either, nor for both.
        #[test]
        fn a_bundle_signed_by_two_labs_counts_for_nobody() {
            let labs = Labs::new();
            let policy = labs.policy("threshold = 1");
            let spliced = labs.write("spliced", &statements("a", "identical", 0), &[0, 1]);
            let d = decide(&policy, &[spliced], &[], VERIFIED);
            assert!(!d.is_accepted(), "{}", d.reason);
            assert!(
                not_met(outcome(&d, 0, Requirement::Signature))
                    .contains("signed by different verifiers (`lab-0`, `lab-1`)"),
                "{:?}",
                d.assessments[0].outcomes
            );
            assert_eq!(d.assessments[0].verifier, None);
        }

        #[test]
        fn different_digests_never_add_up_and_two_accepted_releases_are_no_decision() {
            let labs = Labs::new();
            let a = labs.write("a", &statements("a", "identical", 0), &[0, 0]);
            let b = labs.write("b", &statements("d", "identical", 1), &[1, 1]);
            let b2 = labs.write("b2", &statements("d", "identical", 1), &[1, 1]);
            let d = decide(
                &labs.policy("threshold = 2"),
                &[a.clone(), b.clone(), b2],
                &[],
                VERIFIED,
            );
            assert!(!d.is_accepted());
            assert_eq!(d.releases.len(), 2);
            assert!(
                d.reason
                    .contains("2 different releases, which do not add up"),
                "{}",
                d.reason
            );
            assert!(!d.assessments[2].counted, "lab 1 counts once");

            let d = decide(&labs.policy("threshold = 1"), &[a, b], &[], VERIFIED);
            assert!(!d.is_accepted());
            assert!(
                d.reason
                    .contains("2 different releases each reach the threshold"),
                "{}",
                d.reason
            );
        }

        #[test]
        fn equivalent_counts_only_by_the_allowance_kinds_listed() {
            let labs = Labs::new();
            let eq = labs.write("eq", &statements("a", "equivalent", 0), &[0, 0]);
            let files = [eq];
            let d = decide(&labs.policy("threshold = 1"), &files, &[], VERIFIED);
            assert_eq!(
                not_met(outcome(&d, 0, Requirement::Verdict)),
                "`equivalent`, and the policy accepts `identical`"
            );
            let policy = labs.policy(
                "threshold = 1\nverdicts = [\"identical\", \"equivalent\"]\nallowances = [\"trailer\"]",
            );
            let d = decide(&policy, &files, &[], VERIFIED);
            assert_eq!(
                not_met(outcome(&d, 0, Requirement::Verdict)),
                "`equivalent` by allowances the policy does not accept: `region`"
            );
            let policy = labs.policy(
                "threshold = 1\nverdicts = [\"equivalent\"]\nallowances = [\"trailer\", \"region\"]",
            );
            let d = decide(&policy, &files, &[], VERIFIED);
            assert!(d.is_accepted(), "{}", d.reason);
            assert_eq!(
                outcome(&d, 0, Requirement::Verdict),
                &Outcome::Met("`equivalent` by `region`".to_owned())
            );
        }

        #[test]
        fn the_claimed_verifier_the_lock_and_the_clock_are_checked() {
            let labs = Labs::new();
            // Lab 0's key under lab 2's name (both statements say lab 2).
            let claims_other = labs.write("other", &statements("a", "identical", 2), &[0, 0]);
            let mut s = statements("a", "identical", 0);
            s[1]["predicate"]["lock"]["traced"] = json!(false);
            let untraced = labs.write("untraced", &s, &[0, 0]);
            let fine = labs.write("fine", &statements("a", "identical", 1), &[1, 1]);
            let files = [claims_other, untraced, fine];
            let policy = labs.policy("threshold = 1\nmax-age = \"1d\"");
            let d = decide(&policy, &files, &[], VERIFIED);
            assert_eq!(
                not_met(outcome(&d, 0, Requirement::Verifier)),
                "signed with the key of `lab-0` but the attestation names verifier `lab-2`"
            );
            assert!(outcome(&d, 1, Requirement::Verifier).is_met());
            assert!(not_met(outcome(&d, 1, Requirement::TracedLock)).contains("not traced"));
            assert!(d.is_accepted(), "{}", d.reason);
            // Verified a day after "now": refused; at the edge of the age: met.
            let d = decide(&policy, &files[2..], &[], VERIFIED - Duration::days(1));
            assert!(not_met(outcome(&d, 0, Requirement::Age)).contains("after now"));
            let d = decide(&policy, &files[2..], &[], VERIFIED + Duration::days(1));
            assert!(d.is_accepted(), "{}", d.reason);
            let d = decide(&policy, &files[2..], &[], VERIFIED + Duration::days(2));
            assert!(not_met(outcome(&d, 0, Requirement::Age)).contains("older than `1d`"));
            // Without those requirements, they are not listed.
            let lax = labs.policy("threshold = 1\nisolation = \"any\"\ntraced-lock = false");
            assert_eq!(
                lax.requirements(),
                [
                    Requirement::Signature,
                    Requirement::Verifier,
                    Requirement::Verdict
                ]
            );
            assert!(decide(&lax, &files[1..2], &[], VERIFIED).is_accepted());
        }
    }

    proptest::proptest! {
        /// Hostile policy text is an error, never a panic (the keys are inline: nothing is read).
        #[test]
        fn parsing_never_panics(text in "(threshold|verdicts|allowances|isolation|max-age|traced-lock|\\[\\[verifier\\]\\]|id|key-pem|key|[ =\"\\[\\],\\n0-9a-z-]){0,40}") {
            let _ = Policy::parse(Path::new("p.toml"), Path::new("/nonexistent"), &text);
        }

        #[test]
        fn ages_never_panic(text in "[0-9]{0,25}[wdhms]?") {
            let _ = parse_age(&text);
        }
    }

    #[test]
    fn ages_are_one_number_and_one_unit_without_overflow() {
        assert_eq!(parse_age("90d"), Ok(Duration::days(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::weeks(2)));
        assert_eq!(parse_age("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_age("45s"), Ok(Duration::seconds(45)));
        for bad in [
            "",
            "d",
            "90",
            "9 d",
            "1d2h",
            "-1d",
            "1y",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert!(parse_age("9223372036854775807w")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_age("0d").unwrap_err().contains("longer than zero"));
    }
}
