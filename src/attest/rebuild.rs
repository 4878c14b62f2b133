//! The rebuild predicate as a consumer reads it: typed, checked, lenient to additions.
//!
//! [`super::predicate`] writes the predicate; this reads it back by the layout specified in
//! `docs/attestation.md` (JSON Schema: `docs/rebuild-predicate.schema.json`). Every field that
//! is always written is required here with its type; verdicts must be known words, digests 64
//! lowercase hex digits, times RFC 3339. Unknown fields are ignored, as the evolution rule asks
//! of consumers (fields are only added), and so are unknown kinds of termination and drift.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use crate::hash::{parse_hex32, Checksum};
use crate::verify::Verdict;

/// A rebuild predicate, `schema_version` 1.
#[derive(Debug, Clone, Deserialize)]
pub struct RebuildPredicate {
    pub schema_version: u32,
    pub verdict: Verdict,
    pub verifier: Verifier,
    pub package: Package,
    pub invocation: Invocation,
    pub recipe: File,
    pub lock: Lock,
    pub escrow: Escrow,
    pub toolchain: Toolchain,
    pub build: Build,
    pub rebuilds: Vec<Rebuild>,
    /// A rebuild after the first that failed, when one did.
    #[serde(default)]
    pub failed_rebuild: Option<FailedRebuild>,
    pub artifacts: Vec<Artifact>,
    /// The recipe's pinned blobs, each checked (written since `[[blob]]`).
    #[serde(default)]
    pub blobs: Vec<super::custody::RecordedBlob>,
    /// Where every byte of the shipped set stands (written since coverage was counted).
    #[serde(default)]
    pub coverage: Option<super::custody::RecordedCoverage>,
    /// How the shipped files were obtained, as the verifier was told (`--provenance`).
    #[serde(default)]
    pub provenance: Option<super::custody::RecordedProvenance>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_on: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_on: OffsetDateTime,
}

impl RebuildPredicate {
    /// Parse `predicate`; the error names the first field that does not hold, by its path
    /// (`artifacts[0].verdict: unknown variant …`).
    pub fn parse(predicate: serde_json::Value) -> Result<Self, String> {
        let parsed: Self = serde_path_to_error::deserialize(predicate).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            }
        })?;
        for (i, pin) in parsed.toolchain.pins.iter().enumerate() {
            if pin.digest.sha256.is_none() && pin.digest.blake3.is_none() {
                return Err(format!(
                    "toolchain.pins[{i}] (`{}`): no `sha256` or `blake3` digest",
                    pin.name
                ));
            }
        }
        Ok(parsed)
    }
}

/// 64 lowercase hex digits: a 32-byte digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hex(pub [u8; 32]);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex32(&s).map(Hex).ok_or_else(|| {
            serde::de::Error::custom(format!("expected 64 lowercase hex digits, found `{s}`"))
        })
    }
}

/// A `DigestSet` of a file `reprove` hashed: both algorithms (others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DigestSet {
    pub sha256: Hex,
    pub blake3: Hex,
}

/// A pin's `DigestSet`: the one algorithm the lock pins it by.
#[derive(Debug, Clone, Deserialize)]
pub struct PinDigest {
    pub sha256: Option<Hex>,
    pub blake3: Option<Hex>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Verifier {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invocation {
    pub recipe: String,
    pub shipped: Vec<String>,
}

/// A file as a `ResourceDescriptor`: its path and digests.
#[derive(Debug, Clone, Deserialize)]
pub struct File {
    pub name: String,
    pub digest: DigestSet,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Lock {
    pub name: String,
    pub digest: DigestSet,
    pub traced: bool,
}

/// The escrow; `digest`, `kind` and `files` are `null` when the verification stopped first.
#[derive(Debug, Clone, Deserialize)]
pub struct Escrow {
    pub name: String,
    pub expected: Checksum,
    pub digest: Option<DigestSet>,
    pub kind: Option<String>,
    pub files: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Toolchain {
    pub tools: BTreeMap<String, Tool>,
    pub pins: Vec<Pin>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    pub path: String,
    pub resolved: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pin {
    pub name: String,
    pub digest: PinDigest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    Changed {
        path: String,
        expected: Checksum,
        found: Checksum,
    },
    Missing {
        path: String,
        expected: Checksum,
        reason: String,
    },
    Moved {
        tool: String,
        expected: String,
        found: Option<String>,
    },
    Unlocked {
        tool: String,
    },
    /// A kind this version does not know.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Build {
    pub command: Vec<String>,
    pub timeout_seconds: u64,
    pub isolation: Isolation,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Isolation {
    pub backend: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rebuild {
    pub variation: Variation,
    pub build_path: String,
    pub environment: BTreeMap<String, String>,
    pub termination: Termination,
    pub seconds: f64,
    pub log: Log,
    pub artifacts: Vec<RebuiltArtifact>,
    #[serde(default)]
    pub missing_program: Option<String>,
}

/// Which rebuild after the first failed (1-based), and what it varied.
#[derive(Debug, Clone, Deserialize)]
pub struct FailedRebuild {
    pub rebuild: usize,
    pub variation: Variation,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Variation {
    pub umask: u32,
    pub clock_shift_days: Option<u32>,
    /// The instant the stopped clock showed (written since `[verify] vary`).
    #[serde(default)]
    pub clock_stopped_at: Option<i64>,
    pub env_reversed: bool,
    pub nested_build_dir: bool,
    /// The variations applied, by their `[verify] vary` names (written since that key).
    #[serde(default)]
    pub varied: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Termination {
    Exited {
        value: i32,
    },
    Signalled {
        value: i32,
    },
    TimedOut,
    ProcessLimit {
        value: u32,
    },
    DiskLimit {
        value: u64,
    },
    /// A kind this version does not know.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Log {
    pub digest: DigestSet,
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RebuiltArtifact {
    pub name: String,
    /// `None` when the rebuild did not produce it.
    pub digest: Option<DigestSet>,
    /// Why the rebuild did not produce it (written since the build tree is read beneath).
    #[serde(default)]
    pub absent: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub path: String,
    pub verdict: Verdict,
    pub rebuilt: Vec<Option<DigestSet>>,
    pub shipped: Option<Shipped>,
    pub difference: Option<Comparison>,
    pub nondeterminism: Option<Comparison>,
    /// Why the first rebuild did not produce it.
    #[serde(default)]
    pub absent: Option<String>,
    /// Notes no verdict carries (an `elf` file the rebuild did not make).
    #[serde(default)]
    pub notes: Vec<String>,
    /// What the first rebuild came to against the shipped file, when a later one failed.
    #[serde(default)]
    pub first_rebuild_verdict: Option<Verdict>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Shipped {
    pub name: String,
    pub digest: DigestSet,
    pub size: u64,
}

/// A difference, explained (the shape of `reprove diff --json`; only what a checker reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    pub verdict: String,
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Leaf {
    pub path: String,
    /// `identical`, `equivalent` or `different` (kept as written: a checker compares it).
    pub verdict: String,
    pub content: Option<Content>,
    /// The allowances that covered some of the leaf's differences.
    #[serde(default)]
    pub allowances: Vec<AppliedAllowance>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Content {
    pub differing_bytes: u64,
    pub ranges: Vec<ByteRange>,
}

/// An allowance as a comparison applied it: the rule as written, and the ranges it covered.
#[derive(Debug, Clone, Deserialize)]
pub struct AppliedAllowance {
    pub allowance: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub ranges: Vec<ByteRange>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn fixture() -> Value {
        serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json")).unwrap()
    }

    #[test]
    fn the_fixture_parses_and_unknown_fields_and_kinds_are_ignored() {
        let p = RebuildPredicate::parse(fixture()).unwrap();
        assert_eq!(p.verdict, Verdict::Different);
        assert_eq!(p.rebuilds.len(), 2);
        assert_eq!(p.rebuilds[1].variation.clock_shift_days, Some(400));
        assert_eq!(p.rebuilds[0].termination, Termination::Exited { value: 0 });
        assert_eq!(
            p.artifacts[0].difference.as_ref().unwrap().leaves[0]
                .content
                .as_ref()
                .unwrap()
                .ranges[0]
                .offset,
            512
        );

        let mut later = fixture();
        later["witnesses"] = json!({"added": "in a later version"});
        later["artifacts"][0]["allowances"] = json!([]);
        later["rebuilds"][0]["termination"] = json!({"kind": "oom_killed", "value": 9});
        later["toolchain"]["drift"] = json!([{"kind": "renamed", "from": "a", "to": "b"}]);
        let p = RebuildPredicate::parse(later).unwrap();
        assert_eq!(p.rebuilds[0].termination, Termination::Other);
    }

    #[test]
    fn malformed_predicates_name_the_field() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 9] = [
            ("unknown variant `maybe`", |p| p["verdict"] = json!("maybe")),
            ("missing field `escrow`", |p| {
                p.as_object_mut().unwrap().remove("escrow");
            }),
            (
                "schema_version: invalid type: string \"1\", expected u32",
                |p| {
                    p["schema_version"] = json!("1");
                },
            ),
            ("artifacts[0].verdict: unknown variant `fine`", |p| {
                p["artifacts"][0]["verdict"] = json!("fine");
            }),
            (
                "recipe.digest.sha256: expected 64 lowercase hex digits",
                |p| {
                    p["recipe"]["digest"]["sha256"] = json!("AB".repeat(32));
                },
            ),
            ("lock.digest: missing field `blake3`", |p| {
                p["lock"]["digest"]
                    .as_object_mut()
                    .unwrap()
                    .remove("blake3");
            }),
            ("`/usr/bin/dash`): no `sha256` or `blake3` digest", |p| {
                p["toolchain"]["pins"][0]["digest"] = json!({"md5": "x"});
            }),
            ("escrow.expected: expected `ALGO:HEX`", |p| {
                p["escrow"]["expected"] = json!("009822be");
            }),
            ("finished_on: ", |p| p["finished_on"] = json!("yesterday")),
        ];
        for (expected, edit) in cases {
            let mut p = fixture();
            edit(&mut p);
            let err = RebuildPredicate::parse(p).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
