//! An attestation as a CycloneDX 1.6 document, for procurement systems.
//!
//! The claim is the one Eclipse Adoptium's "verified reproducible build" declarations make,
//! in CycloneDX attestation (CDXA) form: each shipped binary (a `declarations.targets`
//! component, named by its digests as `SHA-256` and `BLAKE3`) was rebuilt from the escrowed
//! source by a verifier (`declarations.assessors`, third party) at a time, under a policy (the
//! recipe and lock digests the summary binds), with a verdict. The requirement it is mapped
//! to is defined in `definitions.standards` (`REPROVE_REPRODUCIBLE`, the VSA's level), the
//! signed attestation itself is the evidence (`declarations.evidence`, attached base64), and
//! the conformance score is 1 for `PASSED` and 0 for `FAILED`. The document is made only from
//! a bundle that [`super::check::check_bundle`] verified with a trusted key: nothing unsigned
//! is declared.
//!
//! Invariants: the document is a pure function of the bundle's bytes and its report (the
//! serial number is derived from the bundle's sha256, so exporting twice gives the same
//! bytes); every `bom-ref` is unique; text from the attestation is copied as data, never
//! interpreted.

use base64::Engine as _;
use serde_json::{json, Value};

use super::check::Report;
use crate::hash::hash_bytes;

/// The `specVersion` written.
pub(crate) const SPEC_VERSION: &str = "1.6";

/// A version 5-shaped UUID URN from the first 16 bytes of `digest` (stable for a bundle).
fn serial_number(digest: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::hash::hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The verifier as a CycloneDX organisation: its display name (else its id), and its id as a
/// URL when it is one.
fn organization(id: &str, name: Option<&str>) -> Value {
    let mut o = json!({ "name": name.unwrap_or(id) });
    if id.starts_with("https://") || id.starts_with("http://") {
        o["url"] = json!([id]);
    }
    o
}

/// The CycloneDX document for `bundle` (the file's bytes, named `file`), which `report`
/// checked; `keyid` is the trusted key that verified it. `None` when the report holds no
/// summary or no rebuild predicate (a rejected bundle: the caller refuses it first).
pub(crate) fn cyclonedx_document(file: &str, bundle: &[u8], report: &Report) -> Option<Value> {
    let summary = report.summary.as_ref()?;
    let rebuild = report.rebuild.as_ref()?;
    let keyid = report
        .envelopes
        .iter()
        .find_map(|e| e.signed_by.clone())
        .unwrap_or_default();
    let bundle_hashes = hash_bytes(bundle);
    let package = &rebuild.package;
    let targets: Vec<Value> = report
        .subjects
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut hashes = Vec::new();
            for (algorithm, name) in [("sha256", "SHA-256"), ("blake3", "BLAKE3")] {
                if let Some(hex) = s.digest.get(algorithm) {
                    hashes.push(json!({ "alg": name, "content": hex }));
                }
            }
            json!({
                "type": "firmware",
                "bom-ref": format!("subject-{}", i + 1),
                "name": s.name,
                "version": package.version,
                "hashes": hashes,
            })
        })
        .collect();
    let verdict = rebuild.verdict.to_string();
    let passed = summary.passed;
    // By digest only: the recipe's file name is the operator's, not the release's.
    let policy = format!(
        "recipe sha256:{} with lock sha256:{} (traced: {})",
        crate::hash::hex(&rebuild.recipe.digest.sha256.0),
        crate::hash::hex(&rebuild.lock.digest.sha256.0),
        rebuild.lock.traced
    );
    let claims: Vec<Value> = (1..=targets.len())
        .map(|i| {
            json!({
                "bom-ref": format!("claim-{i}"),
                "target": format!("subject-{i}"),
                "predicate": "verified as reproducibly built from the escrowed source",
                "evidence": ["evidence-attestation"],
                "reasoning": format!(
                    "rebuilt from the escrow (expected {}) with the pinned toolchain in `{}` \
                     (rebuilds: {}), and compared with the shipped binary: `{verdict}`; \
                     policy: {policy}",
                    rebuild.escrow.expected,
                    rebuild.build.isolation.backend,
                    rebuild.rebuilds.len(),
                ),
            })
        })
        .collect();
    let claim_refs: Vec<String> = (1..=targets.len()).map(|i| format!("claim-{i}")).collect();
    let result = if passed { "PASSED" } else { "FAILED" };
    Some(json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial_number(&bundle_hashes.sha256.bytes),
        "version": 1,
        "metadata": {
            "timestamp": summary.time_verified,
            "tools": { "components": [{
                "type": "application",
                "name": "reprove",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "firmware",
                "bom-ref": "release",
                "name": package.name,
                "version": package.version,
            },
        },
        "definitions": { "standards": [{
            "bom-ref": "standard-reprove",
            "name": "reprove verified reproducible build",
            "version": "1",
            "owner": "reprove",
            "requirements": [{
                "bom-ref": "requirement-reproducible",
                "identifier": super::vsa::LEVEL_REPRODUCIBLE,
                "text": "The shipped binary was rebuilt from the escrowed source with the pinned \
                         toolchain, and found identical, or equivalent within declared \
                         allowances.",
            }],
        }]},
        "declarations": {
            "assessors": [{
                "bom-ref": "assessor",
                "thirdParty": true,
                "organization": organization(&summary.verifier_id, report.verifier_name.as_deref()),
            }],
            "attestations": [{
                "summary": format!(
                    "{} {} {result}: `{verdict}`, verified at {} by `{}`",
                    package.name, package.version, summary.time_verified, summary.verifier_id
                ),
                "assessor": "assessor",
                "map": [{
                    "requirement": "requirement-reproducible",
                    "claims": claim_refs,
                    "conformance": {
                        "score": if passed { 1.0 } else { 0.0 },
                        "rationale": format!("the verification summary records `{result}`, the rebuild verdict is `{verdict}`"),
                    },
                    "confidence": {
                        "score": 1.0,
                        "rationale": format!("the attestation's Ed25519 signatures verify with the trusted key `{keyid}`"),
                    },
                }],
            }],
            "claims": claims,
            "evidence": [{
                "bom-ref": "evidence-attestation",
                "propertyName": "reprove:attestation",
                "description": format!(
                    "the signed in-toto attestation (`{file}`, sha256:{}): a SLSA verification \
                     summary and reprove's rebuild predicate; check it with `reprove attest verify`",
                    bundle_hashes.sha256.hex()
                ),
                "data": [{
                    "name": file,
                    "contents": { "attachment": {
                        "contentType": "application/vnd.in-toto+jsonl",
                        "encoding": "base64",
                        "content": base64::engine::general_purpose::STANDARD.encode(bundle),
                    }},
                }],
                "created": summary.time_verified,
                "author": { "name": summary.verifier_id },
            }],
            "targets": { "components": targets },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_number_is_a_uuid_urn() {
        let s = serial_number(&[0xff; 32]);
        assert_eq!(s, "urn:uuid:ffffffff-ffff-5fff-bfff-ffffffffffff");
        let s = serial_number(&[0; 32]);
        assert_eq!(s, "urn:uuid:00000000-0000-5000-8000-000000000000");
    }
}
