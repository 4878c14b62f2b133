//! Writing an attestation: the two statements of a verification [`Report`] and the bundle.
//!
//! The rebuild predicate is built as its one type, [`RebuildPredicate`] (specified in
//! `docs/attestation.md`, JSON Schema `docs/rebuild-predicate.schema.json`); the VSA by
//! [`vsa`]. Evolution only adds fields; `schema_version` changes when a field changes meaning.

use std::path::Path;

use serde_json::{json, Value};

use super::check::REBUILD_PREDICATE_TYPE;
use super::dsse::envelope;
use super::key::SigningKey;
use super::rebuild::{self as wire, DigestSet, RebuildPredicate, SCHEMA_VERSION};
use super::{bundle, vsa, Subject, STATEMENT_TYPE};
use crate::hash::Checksum;
use crate::verify::Report;

/// The word a unit enum serializes as (`tar_gz`, `cgroup-pids`).
fn word<T: serde::Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The statement's subjects: the shipped binaries the report judged.
pub fn subjects(report: &Report) -> Vec<Subject> {
    report
        .subjects()
        .into_iter()
        .map(|(name, h)| Subject::from_hashes(name, h))
        .collect()
}

fn artifact(a: &crate::verify::ArtifactReport) -> wire::Artifact {
    wire::Artifact {
        name: a.name.clone(),
        path: lossy(&a.path),
        verdict: a.verdict,
        rebuilt: a
            .rebuilt
            .iter()
            .map(|h| h.as_ref().map(DigestSet::from))
            .collect(),
        shipped: a.shipped.as_ref().map(|s| wire::Shipped {
            name: s.origin.clone(),
            digest: DigestSet::from(&s.hashes),
            size: s.hashes.size,
            locator: s.locator.clone(),
        }),
        difference: a.difference.as_ref().map(wire::Comparison::from_compare),
        // Shown, not applied: the verdict above is the comparison's.
        suggestion: a.difference.as_ref().and_then(|d| {
            crate::compare::suggest::suggest_trailer(d, Some(&a.name)).map(|s| wire::Suggestion {
                trailer: s.trailer,
                toml: s.toml,
            })
        }),
        nondeterminism: a
            .nondeterminism
            .as_ref()
            .map(wire::Comparison::from_compare),
        absent: a.absent.clone(),
        similar: a.similar.iter().map(|p| lossy(p)).collect(),
        notes: a.notes.clone(),
        first_rebuild_verdict: a.first_rebuild,
    }
}

fn rebuild(r: &crate::build::Rebuild) -> wire::Rebuild {
    let limits = r.outcome.limits;
    wire::Rebuild {
        variation: wire::Variation::from(&r.variation),
        build_path: lossy(&r.build_path),
        environment: r.env.clone(),
        termination: r.outcome.termination.into(),
        limits: Some(wire::Limits {
            max_processes: limits.max_processes,
            process_bound: word(&limits.process_bound),
            max_disk_bytes: limits.max_disk_bytes,
        }),
        seconds: r.outcome.elapsed.as_secs_f64(),
        // For people: the digest is the binding, the tail and the copy's path are what a
        // reader opens first.
        log: wire::Log {
            digest: DigestSet::from(&r.log_hashes),
            size: r.log_hashes.size,
            tail: r
                .failure
                .as_ref()
                .map(|f| f.tail.clone())
                .unwrap_or_default(),
            kept: r
                .failure
                .as_ref()
                .and_then(|f| f.kept.as_ref().ok())
                .map(|p| lossy(p)),
        },
        artifacts: r
            .artifacts
            .iter()
            .map(|a| wire::RebuiltArtifact {
                name: a.name.clone(),
                digest: a.hashes.as_ref().map(DigestSet::from),
                absent: a.absent.clone(),
                similar: a.similar.iter().map(|p| lossy(p)).collect(),
            })
            .collect(),
        missing_program: r.missing_program.clone(),
    }
}

fn drift(d: &crate::toolchain::Drift) -> wire::Drift {
    use crate::toolchain::Drift as D;
    match d {
        D::Changed {
            path,
            expected,
            found,
        } => wire::Drift::Changed {
            path: lossy(path),
            expected: *expected,
            found: *found,
        },
        D::Missing {
            path,
            expected,
            reason,
        } => wire::Drift::Missing {
            path: lossy(path),
            expected: *expected,
            reason: reason.clone(),
        },
        D::Moved {
            tool,
            expected,
            found,
        } => wire::Drift::Moved {
            tool: tool.clone(),
            expected: lossy(expected),
            found: found.as_deref().map(lossy),
        },
        D::Unlocked { tool } => wire::Drift::Unlocked { tool: tool.clone() },
    }
}

/// Who attests, and how: settled by the caller from the command line and the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attesting {
    /// The organisation or lab that ran the verification: the VSA's `verifier.id`.
    pub verifier_id: String,
    /// A display name for it.
    pub verifier_name: Option<String>,
    /// The VSA's `policy.uri`; [`default_policy_uri`] when `None`.
    pub policy_uri: Option<String>,
    /// Leave names, contents and host paths out (see [`super::redact`]).
    pub redact: bool,
}

impl Default for Attesting {
    fn default() -> Self {
        Attesting::unidentified()
    }
}

impl Attesting {
    /// An unsigned attestation's settings when nobody said who verifies.
    pub fn unidentified() -> Self {
        Attesting {
            verifier_id: vsa::UNIDENTIFIED_VERIFIER.to_owned(),
            verifier_name: None,
            policy_uri: None,
            redact: false,
        }
    }
}

/// The rebuild predicate of `report`; `shipped` are the inputs as given on the command line.
pub fn rebuild_predicate(report: &Report, shipped: &[&Path], how: &Attesting) -> RebuildPredicate {
    let found = report.source.found.as_ref();
    let (blobs, coverage, provenance) = super::custody::custody_of(report);
    RebuildPredicate {
        schema_version: SCHEMA_VERSION,
        verdict: report.verdict,
        verifier: wire::Verifier {
            id: how.verifier_id.clone(),
            name: how.verifier_name.clone(),
            version: [("reprove".to_owned(), env!("CARGO_PKG_VERSION").to_owned())].into(),
        },
        package: wire::Package {
            name: report.package.name.clone(),
            version: report.package.version.clone(),
        },
        invocation: wire::Invocation {
            recipe: lossy(&report.recipe.path),
            shipped: shipped.iter().map(|p| lossy(p)).collect(),
        },
        recipe: wire::File {
            name: lossy(&report.recipe.path),
            digest: DigestSet::from(&report.recipe.hashes),
        },
        lock: wire::Lock {
            name: lossy(&report.lock.path),
            digest: DigestSet::from(&report.lock.hashes),
            traced: report.traced_lock,
        },
        escrow: wire::Escrow {
            name: lossy(&report.source.path),
            expected: report.source.expected,
            digest: found.map(|e| DigestSet {
                sha256: wire::Hex(e.sha256.bytes),
                blake3: wire::Hex(e.blake3.bytes),
            }),
            kind: found.map(|e| word(&e.kind)),
            files: report.source.files,
        },
        toolchain: wire::Toolchain {
            tools: report
                .tools
                .iter()
                .map(|(name, t)| {
                    let tool = wire::Tool {
                        path: lossy(&t.path),
                        resolved: lossy(&t.resolved),
                    };
                    (name.clone(), tool)
                })
                .collect(),
            pins: report
                .pins
                .iter()
                .map(|p| wire::Pin {
                    name: lossy(&p.path),
                    digest: (&p.digest).into(),
                })
                .collect(),
            drift: report.drift.iter().map(drift).collect(),
        },
        build: wire::Build {
            command: report.command.clone(),
            timeout_seconds: report.timeout_seconds,
            isolation: wire::Isolation {
                backend: report.isolation.backend.clone(),
                version: report.isolation.version.clone(),
                root: report.isolation.root,
            },
        },
        rebuilds: report.rebuilds.iter().map(rebuild).collect(),
        failed_rebuild: report.failed_rebuild.map(|k| wire::FailedRebuild {
            rebuild: k + 1,
            variation: wire::Variation::from(&report.rebuilds[k].variation),
        }),
        artifacts: report.artifacts.iter().map(artifact).collect(),
        blobs,
        coverage: Some(coverage),
        provenance,
        dump: None,
        started_on: report.started,
        finished_on: report.finished,
        redacted: false,
    }
}

/// The sha256 of the policy the VSA names: the recipe and the lock, as `sha256(recipe ‖ lock)`
/// of their digests (`recipe-sha256-hex` `\n` `lock-sha256-hex` `\n`).
pub fn policy_digest(report: &Report) -> String {
    policy_digest_of(
        &report.recipe.hashes.sha256.hex(),
        &report.lock.hashes.sha256.hex(),
    )
}

/// [`policy_digest`] from the recipe's and the lock's sha256, in hex.
pub(crate) fn policy_digest_of(recipe_sha256: &str, lock_sha256: &str) -> String {
    let text = format!("{recipe_sha256}\n{lock_sha256}\n");
    Checksum::of(crate::hash::Algorithm::Sha256, text.as_bytes()).hex()
}

/// The VSA's `resourceUri` for a package: a generic package URL, percent-encoded.
pub(crate) fn resource_uri(name: &str, version: &str) -> String {
    format!("pkg:generic/{}@{}", percent(name), percent(version))
}

/// `text` with everything but unreserved URI characters percent-encoded.
fn percent(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The policy the VSA names when the user names none: the recipe by its package,
/// `reprove:recipe/NAME@VERSION` (percent-encoded), which says nothing of the verifier's file
/// system. `policy.digest` binds the exact recipe and lock.
pub fn default_policy_uri(package: &crate::recipe::Package) -> String {
    format!(
        "reprove:recipe/{}@{}",
        percent(&package.name),
        percent(&package.version)
    )
}

/// Both statements of `report`: the VSA first, then the rebuild predicate (redacted when
/// `how` asks).
/// The `dump` object of the rebuild predicate (`verify --dump`): the dump's digest, where each
/// artifact was placed and how it compared, every span with its kind, reason and status, and
/// the coverage. The explained differences are left to the artifact's own `difference`: here
/// only their counts.
fn dump_record(r: &crate::dump::DumpReport) -> wire::DumpRecord {
    wire::DumpRecord {
        name: r.dump.clone(),
        size: r.size,
        digest: r.digest.as_ref().map(DigestSet::from),
        verdict: r.verdict,
        layout: r.layout.clone(),
        placements: r
            .placements
            .iter()
            .map(|p| wire::DumpPlacement {
                artifact: p.artifact.clone(),
                digest: [(p.sha256.algorithm.name().to_owned(), p.sha256.hex())].into(),
                size: p.size,
                offset: p.offset,
                placed_by: word(&p.placed_by),
                verdict: p.verdict,
                differing: p.differing,
                missing: p.missing,
                unlocated: p.unlocated,
                allowances: p
                    .allowances
                    .iter()
                    .filter_map(|a| serde_json::from_value(serde_json::to_value(a).ok()?).ok())
                    .collect(),
                parts: p
                    .parts
                    .iter()
                    .map(|q| wire::DumpPartPlacement {
                        part: q.part.clone(),
                        part_offset: q.part_offset,
                        size: q.size,
                        offset: q.offset,
                        verdict: q.verdict,
                        differing: q.differing,
                        missing: q.missing,
                        in_copy: q.in_copy,
                    })
                    .collect(),
            })
            .collect(),
        spans: r
            .spans
            .iter()
            .map(|s| match serde_json::to_value(s) {
                Ok(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            })
            .collect(),
        coverage: r.coverage,
        notes: r.notes.clone(),
        dump_tables: r
            .dump_tables
            .iter()
            .map(|t| wire::DumpTable {
                format: word(&t.format),
                offset: t.offset,
                areas: t.areas,
                used: t.used,
            })
            .collect(),
    }
}

/// The in-toto statements of a verification: the VSA and the rebuild predicate, with the dump
/// check of `verify --dump` when there was one (a dump that fails the check fails the VSA).
pub(crate) fn statements(
    report: &Report,
    shipped: &[&Path],
    how: &Attesting,
    dump: Option<&crate::dump::DumpReport>,
) -> [Value; 2] {
    let subjects = subjects(report);
    // The resource verified: the package as the recipe names it, as a generic package URL.
    let resource = resource_uri(&report.package.name, &report.package.version);
    let policy_uri = how
        .policy_uri
        .clone()
        .unwrap_or_else(|| default_policy_uri(&report.package));
    let vsa = vsa::Vsa {
        verifier_id: &how.verifier_id,
        resource_uri: &resource,
        policy_uri: &policy_uri,
        policy_digest_sha256: &policy_digest(report),
        passed: report.verdict.passed(false) && dump.is_none_or(|d| d.verdict.passed(false)),
        time: report.finished,
        verified_levels: vec![vsa::LEVEL_REPRODUCIBLE.to_owned()],
    }
    .statement(&subjects);
    let mut predicate = rebuild_predicate(report, shipped, how);
    predicate.dump = dump.map(dump_record);
    if how.redact {
        super::redact::redact(&mut predicate);
    }
    let rebuild = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": REBUILD_PREDICATE_TYPE,
        "predicate": predicate.to_value(),
    });
    [vsa, rebuild]
}

/// Write `statements` to `path` as an in-toto bundle (atomically), signed with `key` when given.
pub fn write_attestation(
    statements: &[Value],
    path: &Path,
    key: Option<&SigningKey>,
) -> std::io::Result<()> {
    let envelopes: Vec<_> = statements
        .iter()
        .map(|s| {
            envelope(
                &serde_json::to_vec(s).expect("a JSON value serializes"),
                key,
            )
        })
        .collect();
    bundle::write_bundle(path, &envelopes)
}
