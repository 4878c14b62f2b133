//! The rebuild predicate: one Rust type for the wire format, written by `verify`, read by
//! `attest verify` and `verify --from-attestation`.
//!
//! `predicateType` is [`super::check::REBUILD_PREDICATE_TYPE`]; the layout is specified in
//! `docs/attestation.md`, with a JSON Schema in `docs/rebuild-predicate.schema.json`. Files are
//! described with SLSA's `ResourceDescriptor` shape (`name`, `digest` as an algorithm →
//! lowercase hex map) so that readers recognise them.
//!
//! Invariants:
//! - [`RebuildPredicate`] serializes to exactly what the writer ([`super::predicate`]) puts in
//!   the attestation, and reads back to the same value (a property test and the schema test on
//!   real output hold them to it). There is no second shape: a field added here is written and
//!   read at once.
//! - Reading is typed and checked: every field that is always written is required with its
//!   type; verdicts are known words, digests 64 lowercase hex digits, times RFC 3339.
//! - Reading is lenient to additions, not strict (`deny_unknown_fields` is deliberately not
//!   used): the format evolves only by adding fields and values, and an older `reprove` must
//!   still check a newer attestation. Unknown fields are ignored; unknown kinds of termination
//!   and drift read as `Other`. What this version writes is held strict elsewhere: the JSON
//!   Schema refuses any field it does not list, and the suite validates the writer's output
//!   against it.
//! - A comparison (`difference`, `nondeterminism`) is `reprove diff --json`'s shape, owned by
//!   [`crate::compare`] (`docs/diff.md`). This type names the fields a checker reads and keeps
//!   every other field as it came (`rest`), so that a read predicate writes back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::hash::{parse_hex32, Checksum, Hashes};
use crate::verify::Verdict;

/// The version of the predicate's schema: it changes only when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// `dump`: a flash dump checked against the release as rebuilt (`verify --dump`,
/// `docs/dump.md`). A span keeps the dump check's own shape (owned by [`crate::dump`]), as a
/// comparison keeps the diff's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpRecord {
    pub name: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSet>,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    pub placements: Vec<DumpPlacement>,
    pub spans: Vec<Map<String, Value>>,
    pub coverage: crate::coverage::Coverage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The partition tables the dump holds (written since a dump's own layout is read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dump_tables: Vec<DumpTable>,
}

/// A partition table found in the dump: its format, where it starts, the areas it gave, and
/// whether the dump check used it as the layout (never when a declared layout was given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpTable {
    /// `fmap`, `ifd`, `uefi-volume` or `device-tree`.
    pub format: String,
    pub offset: u64,
    pub areas: u64,
    pub used: bool,
}

/// Where one release artifact sits in the dump, and how its copy compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpPlacement {
    pub artifact: String,
    /// One algorithm → lowercase hex.
    pub digest: BTreeMap<String, String>,
    pub size: u64,
    /// Dump offset of the artifact's first byte; `null`: not found.
    pub offset: Option<i64>,
    /// `content` or `layout`.
    pub placed_by: String,
    pub verdict: Verdict,
    pub differing: u64,
    pub missing: u64,
    /// Bytes of the artifact in no identical copy in the dump (written since parts are
    /// located on their own).
    #[serde(default)]
    pub unlocated: u64,
    /// The allowances that covered the copy's differences (an `equivalent` copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<AppliedAllowance>,
    /// The artifact's parts, each located on its own, when it was not found whole and
    /// identical.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<DumpPartPlacement>,
}

/// Where one part of an artifact sits in the dump, located on its own (`docs/dump.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpPartPlacement {
    /// `artifact//part`.
    pub part: String,
    /// Where the part lies in the artifact.
    pub part_offset: u64,
    pub size: u64,
    /// Dump offset of the part's first byte; `null`: not found.
    pub offset: Option<i64>,
    pub verdict: Verdict,
    pub differing: u64,
    pub missing: u64,
    /// The part sits where the artifact's whole copy puts it.
    pub in_copy: bool,
}

/// A rebuild predicate, `schema_version` 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_rebuild: Option<FailedRebuild>,
    pub artifacts: Vec<Artifact>,
    /// The recipe's pinned blobs, each checked (written since `[[blob]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<super::custody::RecordedBlob>,
    /// Where every byte of the shipped set stands (written since coverage was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<super::custody::RecordedCoverage>,
    /// How the shipped files were obtained, as the verifier was told (`--provenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::custody::RecordedProvenance>,
    /// The flash dump checked after the verification (`verify --dump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpRecord>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_on: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_on: OffsetDateTime,
    /// Written by `--redact`: names, contents and host paths were left out (see
    /// `docs/attestation.md`); every digest is kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl RebuildPredicate {
    /// Parse `predicate`; the error names the first field that does not hold, by its path
    /// (`artifacts[0].verdict: unknown variant …`).
    pub fn parse(predicate: Value) -> Result<Self, String> {
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

    /// The predicate as JSON.
    pub fn to_value(&self) -> Value {
        // Every field is a string, a number, a bool, a map with string keys or a sequence:
        // serializing cannot fail.
        serde_json::to_value(self).expect("a rebuild predicate serializes to JSON")
    }
}

/// 64 lowercase hex digits: a 32-byte digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hex(pub [u8; 32]);

impl Hex {
    /// The digest as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        crate::hash::hex(&self.0)
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex32(&s).map(Hex).ok_or_else(|| {
            serde::de::Error::custom(format!("expected 64 lowercase hex digits, found `{s}`"))
        })
    }
}

/// A `DigestSet` of a file `reprove` hashed: both algorithms (others are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSet {
    pub sha256: Hex,
    pub blake3: Hex,
}

impl From<&Hashes> for DigestSet {
    fn from(h: &Hashes) -> Self {
        DigestSet {
            sha256: Hex(h.sha256.bytes),
            blake3: Hex(h.blake3.bytes),
        }
    }
}

/// A pin's `DigestSet`: the one algorithm the lock pins it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinDigest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Hex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<Hex>,
}

impl From<&Checksum> for PinDigest {
    fn from(c: &Checksum) -> Self {
        match c.algorithm {
            crate::hash::Algorithm::Sha256 => PinDigest {
                sha256: Some(Hex(c.bytes)),
                blake3: None,
            },
            crate::hash::Algorithm::Blake3 => PinDigest {
                sha256: None,
                blake3: Some(Hex(c.bytes)),
            },
        }
    }
}

/// Who ran the verification: the organisation or lab (the same `id` as the VSA's verifier),
/// and the tool's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
    /// A display name for `id` (written since verifier identities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub version: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// The inputs as given on the command line (a replay runs them again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub recipe: String,
    pub shipped: Vec<String>,
}

/// A file as a `ResourceDescriptor`: its path and digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub name: String,
    pub digest: DigestSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub name: String,
    pub digest: DigestSet,
    pub traced: bool,
}

/// The escrow; `digest`, `kind` and `files` are `null` when the verification stopped first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    pub name: String,
    pub expected: Checksum,
    pub digest: Option<DigestSet>,
    /// `directory`, `tar`, `tar_gz`, `tar_xz` or `zip`; kept as written, so that a kind a
    /// later version adds still reads.
    pub kind: Option<String>,
    pub files: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    pub tools: BTreeMap<String, Tool>,
    pub pins: Vec<Pin>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub path: String,
    pub resolved: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub name: String,
    pub digest: PinDigest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A kind this version does not know (written back as `other`).
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub command: Vec<String>,
    pub timeout_seconds: u64,
    pub isolation: Isolation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// `none` or `bwrap`.
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The hermetic root's pinned digest, when the build saw nothing but that root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Checksum>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rebuild {
    pub variation: Variation,
    pub build_path: String,
    pub environment: BTreeMap<String, String>,
    pub termination: Termination,
    /// What bounded the build (written since build limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    pub seconds: f64,
    pub log: Log,
    pub artifacts: Vec<RebuiltArtifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_program: Option<String>,
}

/// Which rebuild after the first failed (1-based), and what it varied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRebuild {
    pub rebuild: usize,
    pub variation: Variation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variation {
    pub umask: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_shift_days: Option<u32>,
    /// The instant the stopped clock showed (written since `[verify] vary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_stopped_at: Option<i64>,
    pub env_reversed: bool,
    pub nested_build_dir: bool,
    /// The variations applied, by their `[verify] vary` names (written since that key; kept
    /// as written, so that a variation a later version adds still reads).
    #[serde(default)]
    pub varied: Vec<String>,
}

impl From<&crate::build::Variation> for Variation {
    fn from(v: &crate::build::Variation) -> Self {
        Variation {
            umask: v.umask,
            clock_shift_days: v.clock_shift_days,
            clock_stopped_at: v.clock_stopped_at,
            env_reversed: v.env_reversed,
            nested_build_dir: v.nested_build_dir,
            varied: v.varied.iter().map(|k| k.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A kind this version does not know (written back as `other`).
    #[serde(other)]
    Other,
}

impl From<crate::sandbox::Termination> for Termination {
    fn from(t: crate::sandbox::Termination) -> Self {
        use crate::sandbox::Termination as T;
        match t {
            T::Exited(value) => Termination::Exited { value },
            T::Signalled(value) => Termination::Signalled { value },
            T::TimedOut => Termination::TimedOut,
            T::ProcessLimit(value) => Termination::ProcessLimit { value },
            T::DiskLimit(value) => Termination::DiskLimit { value },
        }
    }
}

/// What bounded one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_processes: u32,
    /// `cgroup-pids`, `rlimit-nproc` or `none` (kept as written).
    pub process_bound: String,
    pub max_disk_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    pub digest: DigestSet,
    pub size: u64,
    /// A failed build's last log lines, for people (the digest is the binding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// Where the verifier kept a failed build's whole log, on its machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuiltArtifact {
    pub name: String,
    /// `None` when the rebuild did not produce it.
    pub digest: Option<DigestSet>,
    /// Why the rebuild did not produce it (written since the build tree is read beneath).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<String>,
    /// Files of the build tree that look like it, when the rebuild did not produce it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub path: String,
    pub verdict: Verdict,
    pub rebuilt: Vec<Option<DigestSet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped: Option<Shipped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<Comparison>,
    /// The allowance that would declare a trailing difference: shown, never applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nondeterminism: Option<Comparison>,
    /// Why the first rebuild did not produce it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<String>,
    /// Files of the first rebuild's tree that look like it, when it was not produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<String>,
    /// Notes no verdict carries (an `elf` file the rebuild did not make).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the first rebuild came to against the shipped file, when a later one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rebuild_verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    pub name: String,
    pub digest: DigestSet,
    pub size: u64,
    /// How to find the file in a flash dump without its bytes (written since `attest verify
    /// --dump` needs no `--artifact`; see [`crate::dump::seek`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locator: Option<crate::dump::seek::Locator>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub trailer: u64,
    pub toml: String,
}

/// A difference, explained: `reprove diff --json`'s shape. The fields a checker reads are
/// typed; the rest of the explanation is kept as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub left: String,
    pub right: String,
    /// `identical`, `equivalent` or `different` (kept as written: a checker compares it).
    pub verdict: String,
    pub identical: u64,
    pub leaves: Vec<Leaf>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    pub path: String,
    /// `identical`, `equivalent` or `different` (kept as written: a checker compares it).
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// The allowances that covered some of the leaf's differences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<AppliedAllowance>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub differing_bytes: u64,
    pub ranges: Vec<RangeRecord>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A listed range of differing bytes, with its explanation kept as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeRecord {
    pub offset: u64,
    pub len: u64,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An allowance as a comparison applied it: the rule as written, and the ranges it covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedAllowance {
    pub allowance: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<ByteRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl Comparison {
    /// The predicate's record of `c`, as `reprove diff --json` writes it.
    pub fn from_compare(c: &crate::compare::Comparison) -> Self {
        // `compare::Comparison` serializes to the diff shape this type reads (both are
        // specified by the same schema, and the schema test reads real output with this type).
        let value = serde_json::to_value(c).expect("a comparison serializes to JSON");
        serde_json::from_value(value).expect("a comparison reads back as the diff shape")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

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
    fn the_fixture_writes_back_unchanged() {
        let p = RebuildPredicate::parse(fixture()).unwrap();
        // The fixture predates `varied`, which is written (empty) since.
        let mut expected = fixture();
        for r in expected["rebuilds"].as_array_mut().unwrap() {
            r["variation"]["varied"] = json!([]);
        }
        assert_eq!(p.to_value(), expected);
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            Just(Verdict::Identical),
            Just(Verdict::Equivalent),
            Just(Verdict::Different),
            Just(Verdict::Nondeterministic),
            Just(Verdict::Missing),
            Just(Verdict::BuildFailed),
            Just(Verdict::ToolchainDrift),
            Just(Verdict::SourceMismatch),
        ]
    }

    fn termination() -> impl Strategy<Value = Termination> {
        prop_oneof![
            any::<i32>().prop_map(|value| Termination::Exited { value }),
            any::<i32>().prop_map(|value| Termination::Signalled { value }),
            Just(Termination::TimedOut),
            any::<u32>().prop_map(|value| Termination::ProcessLimit { value }),
            any::<u64>().prop_map(|value| Termination::DiskLimit { value }),
        ]
    }

    fn drift() -> impl Strategy<Value = Drift> {
        let sum = any::<[u8; 32]>().prop_map(Checksum::sha256);
        prop_oneof![
            (".*", sum.clone(), sum.clone()).prop_map(|(path, expected, found)| {
                Drift::Changed {
                    path,
                    expected,
                    found,
                }
            }),
            (".*", sum, ".*").prop_map(|(path, expected, reason)| Drift::Missing {
                path,
                expected,
                reason
            }),
            (".*", ".*", proptest::option::of(".*")).prop_map(|(tool, expected, found)| {
                Drift::Moved {
                    tool,
                    expected,
                    found,
                }
            }),
            ".*".prop_map(|tool| Drift::Unlocked { tool }),
        ]
    }

    fn digests() -> impl Strategy<Value = DigestSet> {
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| DigestSet {
            sha256: Hex(a),
            blake3: Hex(b),
        })
    }

    /// Extra fields of a comparison's explanation, with names no typed field has.
    fn rest() -> impl Strategy<Value = Map<String, Value>> {
        proptest::collection::btree_map("x_[a-z]{1,6}", ".*", 0..3)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    }

    proptest! {
        /// Value → JSON → value: every field the type holds is written and read back the same.
        #[test]
        fn a_predicate_reads_back_as_written(
            verdicts in (verdict(), verdict(), proptest::option::of(verdict())),
            texts in (".*", proptest::option::of(".*"), ".*", proptest::collection::vec(".*", 0..3)),
            sums in (digests(), digests(), proptest::option::of(digests())),
            kinds in (termination(), proptest::collection::vec(drift(), 0..3)),
            numbers in (any::<u32>(), proptest::option::of(any::<i64>()), 0u32..1_000_000, any::<u64>()),
            flags in (any::<bool>(), any::<bool>(), any::<bool>()),
            times in (0i64..4_000_000_000, 0u32..1_000_000_000),
            extra in (rest(), proptest::collection::vec(".*", 0..3), proptest::option::of(".*")),
            locator in proptest::option::of(proptest::collection::vec((any::<u64>(), any::<u64>()), 0..4)),
        ) {
            let mut p = RebuildPredicate::parse(fixture()).unwrap();
            p.verdict = verdicts.0;
            p.artifacts[0].verdict = verdicts.1;
            p.artifacts[0].first_rebuild_verdict = verdicts.2;
            p.verifier.id = texts.0;
            p.verifier.name = texts.1;
            p.package.name = texts.2;
            p.invocation.shipped = texts.3;
            p.recipe.digest = sums.0;
            p.artifacts[0].rebuilt[1] = Some(sums.1);
            p.escrow.digest = sums.2;
            p.rebuilds[0].termination = kinds.0;
            p.toolchain.drift = kinds.1;
            p.rebuilds[1].variation.umask = numbers.0;
            p.rebuilds[1].variation.clock_stopped_at = numbers.1;
            p.rebuilds[1].seconds = f64::from(numbers.2) / 4.0;
            p.rebuilds[1].limits = Some(Limits {
                max_processes: numbers.0,
                process_bound: "cgroup-pids".to_owned(),
                max_disk_bytes: numbers.3,
            });
            p.build.timeout_seconds = numbers.3;
            p.lock.traced = flags.0;
            p.redacted = flags.1;
            p.rebuilds[0].variation.env_reversed = flags.2;
            p.finished_on = OffsetDateTime::from_unix_timestamp(times.0)
                .unwrap()
                .replace_nanosecond(times.1)
                .unwrap();
            p.artifacts[0].difference.as_mut().unwrap().rest = extra.0.clone();
            p.artifacts[0].difference.as_mut().unwrap().leaves[0].rest.extend(extra.0);
            p.rebuilds[0].log.tail = extra.1.clone();
            p.artifacts[0].notes = extra.1;
            p.rebuilds[0].log.kept = extra.2.clone();
            p.rebuilds[0].missing_program = extra.2;
            p.artifacts[0].shipped.as_mut().unwrap().locator =
                locator.map(|anchors| crate::dump::seek::Locator {
                    algorithm: crate::dump::seek::ALGORITHM.to_owned(),
                    window: 64,
                    anchors: anchors
                        .into_iter()
                        .map(|(offset, hash)| crate::dump::seek::LocatorAnchor {
                            offset,
                            hash: crate::dump::seek::WindowHash(hash),
                        })
                        .collect(),
                });
            let json = serde_json::to_string(&p).unwrap();
            let back = RebuildPredicate::parse(serde_json::from_str(&json).unwrap()).unwrap();
            prop_assert_eq!(back, p);
        }
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
