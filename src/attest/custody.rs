//! The rebuild predicate's custody objects — `blobs`, `coverage` and `provenance` — written
//! and read back. Each is a self-contained object of the predicate (specified in
//! `docs/attestation.md` and `docs/rebuild-predicate.schema.json`), so that it moves as one
//! piece when the predicate's shape does.
//!
//! - `blobs` (present when the recipe pins any): per `[[blob]]` its `name`, `reason`, the
//!   `pinned` digest (`ALGO:HEX`), the `shipped` file it was checked against (`{name, digest,
//!   size}`) and the `outcome`, `pinned` or `different`;
//! - `coverage` (always): the five classes of [`Coverage`] in bytes, and `total`;
//! - `provenance` (present when `--provenance` was given): `records`, each `{text}` and, for a
//!   file, `file: {name, digest, size}` (the digest of the text's bytes).
//!
//! A reader checks what can be checked from the predicate alone (see `consistency`): a blob's
//! outcome follows from its two digests, a file record's digest is that of its text, and the
//! coverage's `total` is the sum of its classes.

use serde::{Deserialize, Serialize};

use super::rebuild::{DigestSet, Shipped};
use crate::coverage::Coverage;
use crate::hash::{Checksum, Hashes};
use crate::verify::{BlobOutcome, Report};

fn digest_set(h: &Hashes) -> DigestSet {
    DigestSet::from(h)
}

/// The custody objects of `report`, as the predicate records them: the blobs (empty when the
/// recipe pins none), the coverage, and the provenance (when `--provenance` was given).
pub(crate) fn custody_of(
    report: &Report,
) -> (
    Vec<RecordedBlob>,
    RecordedCoverage,
    Option<RecordedProvenance>,
) {
    let blobs = report
        .blobs
        .iter()
        .map(|b| RecordedBlob {
            name: b.name.clone(),
            reason: b.reason.clone(),
            pinned: b.pinned,
            shipped: Shipped {
                name: b.found.clone(),
                digest: digest_set(&b.hashes),
                size: b.hashes.size,
                locator: None,
            },
            outcome: b.outcome,
        })
        .collect();
    let provenance = (!report.provenance.is_empty()).then(|| RecordedProvenance {
        records: report
            .provenance
            .iter()
            .map(|p| ProvenanceRecord {
                text: p.text.clone(),
                file: p.file.as_ref().map(|f| ProvenanceFile {
                    name: f.path.to_string_lossy().into_owned(),
                    digest: digest_set(&f.hashes),
                    size: f.hashes.size,
                }),
            })
            .collect(),
    });
    (blobs, RecordedCoverage::of(&report.coverage), provenance)
}

/// A `[[blob]]` as the predicate records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedBlob {
    pub name: String,
    pub reason: String,
    pub pinned: Checksum,
    pub shipped: Shipped,
    pub outcome: BlobOutcome,
}

/// `coverage` as read: the classes, and the total the writer counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCoverage {
    pub reproduced: u64,
    pub pinned: u64,
    pub masked: u64,
    pub erased: u64,
    pub unexplained: u64,
    pub total: u64,
}

impl RecordedCoverage {
    /// `c` with the total the writer counted.
    pub fn of(c: &Coverage) -> Self {
        RecordedCoverage {
            reproduced: c.reproduced,
            pinned: c.pinned,
            masked: c.masked,
            erased: c.erased,
            unexplained: c.unexplained,
            total: c.total(),
        }
    }

    pub fn coverage(&self) -> Coverage {
        Coverage {
            reproduced: self.reproduced,
            pinned: self.pinned,
            masked: self.masked,
            erased: self.erased,
            unexplained: self.unexplained,
        }
    }
}

/// `provenance` as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedProvenance {
    pub records: Vec<ProvenanceRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceRecord {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<ProvenanceFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceFile {
    pub name: String,
    pub digest: DigestSet,
    pub size: u64,
}

/// Whether `digest` (the shipped file's) carries the `pinned` checksum.
pub(crate) fn matches_pin(digest: &DigestSet, pinned: &Checksum) -> bool {
    let hex = match pinned.algorithm {
        crate::hash::Algorithm::Sha256 => &digest.sha256,
        crate::hash::Algorithm::Blake3 => &digest.blake3,
    };
    crate::hash::hex(&hex.0) == pinned.hex()
}

/// What the custody objects of `p` contradict of themselves: one sentence each.
pub(super) fn contradictions(
    blobs: &[RecordedBlob],
    coverage: Option<&RecordedCoverage>,
    provenance: Option<&RecordedProvenance>,
) -> Vec<String> {
    let mut found = Vec::new();
    for b in blobs {
        let matched = matches_pin(&b.shipped.digest, &b.pinned);
        if matched != (b.outcome == BlobOutcome::Pinned) {
            found.push(format!(
                "blob `{}`: `{}`, but its shipped digest {} its pin",
                b.name,
                serde_json::to_value(b.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                if matched { "matches" } else { "differs from" }
            ));
        }
    }
    if let Some(c) = coverage {
        if c.coverage().total() != c.total {
            found.push(format!(
                "the coverage's classes add up to {} bytes, not its total of {}",
                c.coverage().total(),
                c.total
            ));
        }
    }
    for (i, r) in provenance.iter().flat_map(|p| &p.records).enumerate() {
        let Some(f) = &r.file else { continue };
        let hashes = crate::hash::hash_bytes(r.text.as_bytes());
        let agrees = crate::hash::hex(&f.digest.sha256.0) == hashes.sha256.hex()
            && crate::hash::hex(&f.digest.blake3.0) == hashes.blake3.hex()
            && f.size == hashes.size;
        if !agrees {
            found.push(format!(
                "provenance record {} (file `{}`): its digest is not that of its text",
                i + 1,
                f.name
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn custody_that_contradicts_itself_is_named() {
        let text = "read with flashrom from SN-42";
        let h = crate::hash::hash_bytes(b"radio");
        let blob = |pinned: &Checksum, outcome: &str| -> RecordedBlob {
            serde_json::from_value(json!({
                "name": "radio.bin", "reason": "vendor", "pinned": pinned.to_string(),
                "shipped": { "name": "radio.bin", "digest": digest_set(&h), "size": 5 },
                "outcome": outcome,
            }))
            .unwrap()
        };
        let other = crate::hash::hash_bytes(b"other").blake3;
        let provenance = |digest: &Hashes| -> RecordedProvenance {
            serde_json::from_value(json!({ "records": [
                { "text": text },
                { "text": text, "file": { "name": "c.txt", "digest": digest_set(digest), "size": text.len() } },
            ]}))
            .unwrap()
        };
        let coverage = |total: u64| -> RecordedCoverage {
            serde_json::from_value(json!({ "reproduced": 3, "pinned": 5, "masked": 0,
                "erased": 0, "unexplained": 0, "total": total }))
            .unwrap()
        };
        let honest = [blob(&h.sha256, "pinned"), blob(&other, "different")];
        let right = provenance(&crate::hash::hash_bytes(text.as_bytes()));
        assert_eq!(
            contradictions(&honest, Some(&coverage(8)), Some(&right)),
            Vec::<String>::new()
        );
        let lies = [blob(&h.blake3, "different"), blob(&other, "pinned")];
        let found = contradictions(&lies, Some(&coverage(9)), Some(&provenance(&h)));
        assert_eq!(
            found,
            [
                "blob `radio.bin`: `different`, but its shipped digest matches its pin",
                "blob `radio.bin`: `pinned`, but its shipped digest differs from its pin",
                "the coverage's classes add up to 8 bytes, not its total of 9",
                "provenance record 2 (file `c.txt`): its digest is not that of its text",
            ]
        );
    }
}
