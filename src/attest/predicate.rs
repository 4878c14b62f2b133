//! The rebuild predicate: everything a verification found, enough to run it again.
//!
//! `predicateType` is [`REBUILD_PREDICATE_TYPE`]; the fields are specified, with a JSON
//! Schema, in `docs/attestation.md`. Files are described with SLSA's `ResourceDescriptor` shape
//! (`name`, `digest` as an algorithm → lowercase hex map) so that readers recognise them.
//! Evolution only adds fields; `schema_version` changes when a field changes meaning.

use std::path::Path;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use super::check::REBUILD_PREDICATE_TYPE;
use super::dsse::envelope;
use super::key::SigningKey;
use super::{bundle, vsa, Subject, STATEMENT_TYPE};
use crate::hash::{Checksum, Hashes};
use crate::verify::Report;

/// The version of the predicate's schema.
pub const SCHEMA_VERSION: u32 = 1;

fn digest_set(h: &Hashes) -> Value {
    json!({ "sha256": h.sha256.hex(), "blake3": h.blake3.hex() })
}

fn digest_one(c: &Checksum) -> Value {
    let mut m = Map::new();
    m.insert(c.algorithm.name().to_owned(), Value::String(c.hex()));
    Value::Object(m)
}

fn time(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The statement's subjects: the shipped binaries the report judged.
pub fn subjects(report: &Report) -> Vec<Subject> {
    report
        .subjects()
        .into_iter()
        .map(|(name, h)| Subject::from_hashes(name, h))
        .collect()
}

/// The `dump` object of the rebuild predicate (`verify --dump`): the dump's digest, where each
/// artifact was placed and how it compared, every span with its kind, reason and status, and
/// the coverage. One self-contained object; `docs/attestation.md` specifies it. The explained
/// differences are left to the artifact's own `difference`: here only their counts.
pub(crate) fn dump_predicate(r: &crate::dump::DumpReport) -> Value {
    let placements: Vec<Value> = r
        .placements
        .iter()
        .map(|p| {
            json!({
                "artifact": p.artifact,
                "digest": digest_one(&p.sha256),
                "size": p.size,
                "offset": p.offset,
                "placed_by": p.placed_by,
                "verdict": p.verdict,
                "differing": p.differing,
                "missing": p.missing,
            })
        })
        .collect();
    let spans: Vec<Value> = r
        .spans
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            if let Some(m) = v.as_object_mut() {
                m.retain(|_, x| !x.is_null());
            }
            v
        })
        .collect();
    let mut v = json!({
        "name": r.dump,
        "size": r.size,
        "verdict": r.verdict,
        "placements": placements,
        "spans": spans,
        "coverage": r.coverage,
    });
    if let Some(d) = &r.digest {
        v["digest"] = digest_set(d);
    }
    if let Some(l) = &r.layout {
        v["layout"] = json!(l);
    }
    if !r.notes.is_empty() {
        v["notes"] = json!(r.notes);
    }
    v
}

/// The rebuild predicate of `report`; `shipped` are the inputs as given on the command line.
pub fn rebuild_predicate(report: &Report, shipped: &[&Path]) -> Value {
    let path = |p: &Path| Value::String(p.to_string_lossy().into_owned());
    let artifacts: Vec<Value> = report
        .artifacts
        .iter()
        .map(|a| {
            let mut v = json!({
                "name": a.name,
                "path": path(&a.path),
                "verdict": a.verdict,
                "rebuilt": a.rebuilt.iter().map(|h| h.as_ref().map(digest_set)).collect::<Vec<_>>(),
            });
            if let Some(s) = &a.shipped {
                v["shipped"] = json!({ "name": s.origin, "digest": digest_set(&s.hashes), "size": s.hashes.size });
            }
            if let Some(d) = &a.difference {
                v["difference"] = json!(d);
                // Shown, not applied: the verdict above is the comparison's.
                if let Some(s) = crate::compare::suggest::suggest_trailer(d, Some(&a.name)) {
                    v["suggestion"] = json!(s);
                }
            }
            if let Some(d) = &a.nondeterminism {
                v["nondeterminism"] = json!(d);
            }
            if let Some(why) = &a.absent {
                v["absent"] = json!(why);
            }
            if !a.similar.is_empty() {
                v["similar"] = json!(a.similar.iter().map(|p| path(p)).collect::<Vec<_>>());
            }
            if !a.notes.is_empty() {
                v["notes"] = json!(a.notes);
            }
            if let Some(first) = a.first_rebuild {
                v["first_rebuild_verdict"] = json!(first);
            }
            v
        })
        .collect();
    let rebuilds: Vec<Value> = report
        .rebuilds
        .iter()
        .map(|r| {
            let mut v = json!({
                "variation": r.variation,
                "build_path": path(&r.build_path),
                "environment": r.env,
                "termination": r.outcome.termination,
                "limits": r.outcome.limits,
                "seconds": r.outcome.elapsed.as_secs_f64(),
                "log": { "digest": digest_set(&r.log_hashes), "size": r.log_hashes.size },
                "artifacts": r.artifacts.iter().map(|a| {
                    let mut v = json!({
                        "name": a.name,
                        "digest": a.hashes.as_ref().map(digest_set),
                    });
                    if let Some(why) = &a.absent {
                        v["absent"] = json!(why);
                    }
                    if !a.similar.is_empty() {
                        v["similar"] = json!(a.similar.iter().map(|p| path(p)).collect::<Vec<_>>());
                    }
                    v
                }).collect::<Vec<_>>(),
            });
            // For people: the digest above is the binding, the tail and the copy's path are
            // what a reader opens first.
            if let Some(failure) = &r.failure {
                if !failure.tail.is_empty() {
                    v["log"]["tail"] = json!(failure.tail);
                }
                if let Ok(kept) = &failure.kept {
                    v["log"]["kept"] = path(kept);
                }
            }
            if let Some(program) = &r.missing_program {
                v["missing_program"] = json!(program);
            }
            v
        })
        .collect();
    let escrow = json!({
        "name": path(&report.source.path),
        "expected": report.source.expected.to_string(),
        "digest": report.source.found.as_ref().map(|e| json!({ "sha256": e.sha256.hex(), "blake3": e.blake3.hex() })),
        "kind": report.source.found.as_ref().map(|e| e.kind),
        "files": report.source.files,
    });
    let mut predicate = json!({
        "schema_version": SCHEMA_VERSION,
        "verdict": report.verdict,
        "verifier": { "id": vsa::VERIFIER_ID, "version": { "reprove": env!("CARGO_PKG_VERSION") } },
        "package": report.package,
        "invocation": {
            "recipe": path(&report.recipe.path),
            "shipped": shipped.iter().map(|p| path(p)).collect::<Vec<_>>(),
        },
        "recipe": { "name": path(&report.recipe.path), "digest": digest_set(&report.recipe.hashes) },
        "lock": { "name": path(&report.lock.path), "digest": digest_set(&report.lock.hashes), "traced": report.traced_lock },
        "escrow": escrow,
        "toolchain": {
            "tools": report.tools,
            "pins": report.pins.iter().map(|p| json!({ "name": path(&p.path), "digest": digest_one(&p.digest) })).collect::<Vec<_>>(),
            "drift": report.drift,
        },
        "build": {
            "command": report.command,
            "timeout_seconds": report.timeout_seconds,
            "isolation": report.isolation,
        },
        "rebuilds": rebuilds,
        "artifacts": artifacts,
        "started_on": time(report.started),
        "finished_on": time(report.finished),
    });
    if let Some(k) = report.failed_rebuild {
        predicate["failed_rebuild"] = json!({
            "rebuild": k + 1,
            "variation": report.rebuilds[k].variation,
        });
    }
    predicate
}

/// The sha256 of the policy the VSA names: the recipe and the lock, as `sha256(recipe ‖ lock)`
/// of their digests (`recipe-sha256-hex` `\n` `lock-sha256-hex` `\n`).
pub fn policy_digest(report: &Report) -> String {
    let text = format!(
        "{}\n{}\n",
        report.recipe.hashes.sha256.hex(),
        report.lock.hashes.sha256.hex()
    );
    Checksum::of(crate::hash::Algorithm::Sha256, text.as_bytes()).hex()
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

/// The recipe as a `file://` URI with an absolute path (a relative one is no URI).
fn policy_uri(recipe: &Path) -> String {
    let absolute = std::fs::canonicalize(recipe).unwrap_or_else(|_| recipe.to_path_buf());
    format!("file://{}", absolute.display())
}

/// Both statements of `report`: the VSA first, then the rebuild predicate.
pub fn statements(report: &Report, shipped: &[&Path]) -> [Value; 2] {
    let subjects = subjects(report);
    let passed = report.verdict.passed(false);
    // The resource verified: the package as the recipe names it, as a generic package URL.
    let resource = format!(
        "pkg:generic/{}@{}",
        percent(&report.package.name),
        percent(&report.package.version)
    );
    let vsa = vsa::vsa_statement(
        &subjects,
        &resource,
        &policy_digest(report),
        &policy_uri(&report.recipe.path),
        passed,
        report.finished,
        vec![vsa::LEVEL_REPRODUCIBLE.to_owned()],
    );
    let rebuild = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": REBUILD_PREDICATE_TYPE,
        "predicate": rebuild_predicate(report, shipped),
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
