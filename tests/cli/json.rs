//! The `--json` documents of `hash`, `lock`, `rebuild`, `diff` and `verify`, as test-side
//! structs that refuse unknown fields: a field added, renamed or removed breaks a test on
//! purpose, and the change is then made here and in the docs together (the formats are in
//! `docs/`; `verify`'s is the rebuild predicate of `docs/rebuild-predicate.schema.json`).
//!
//! Fields are typed as loosely as the tests need (numbers as `u64`/`i64`, enums as strings):
//! what is pinned here is the shape, each test asserts the values it is about.
// The field names are the wire format's.
#![allow(dead_code, clippy::struct_field_names)]

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Read a command's stdout as `T`, showing what it printed when it is not one.
pub fn parse<T: DeserializeOwned>(out: &std::process::Output) -> T {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Run `cmd`, insist on exit `code` (showing stderr when not), and read its JSON as `T`.
pub fn of<T: DeserializeOwned>(cmd: &mut assert_cmd::Command, code: i32) -> T {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&out)
}

// `reprove hash --json`

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hash {
    pub schema_version: u32,
    pub entries: Vec<HashEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashEntry {
    pub path: String,
    /// `file` or `tree`.
    pub kind: String,
    pub size: u64,
    pub files: Option<u64>,
    pub sha256: String,
    pub blake3: String,
}

// `reprove lock --json`

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub schema_version: u32,
    pub lock: String,
    pub tools: usize,
    pub pins: usize,
    /// Only with `--check`.
    pub drift: Option<Vec<Drift>>,
}

/// A pin or tool that no longer holds (`kind`: `changed`, `missing`, `moved`, `unlocked`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    pub kind: String,
    pub path: Option<String>,
    pub tool: Option<String>,
    pub expected: Option<String>,
    /// A checksum (`changed`), or where the tool resolves now (`moved`, `null` for nowhere).
    #[serde(default)]
    pub found: Option<String>,
    pub reason: Option<String>,
}

// `reprove rebuild --json`

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebuild {
    pub schema_version: u32,
    pub result: String,
    pub build: Option<RebuildBuild>,
    pub artifacts: Vec<RebuiltArtifact>,
    #[serde(default)]
    pub recipe_errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildBuild {
    pub termination: Termination,
    pub seconds: f64,
    pub log: RebuildLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildLog {
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub tail: Vec<String>,
    pub kept: Option<String>,
    pub not_kept: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuiltArtifact {
    pub name: String,
    pub path: String,
    pub hashes: Option<Hashes>,
    pub absent: Option<String>,
    #[serde(default)]
    pub similar: Vec<String>,
    pub copied_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hashes {
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

/// How a build ended: `exited`/`signalled` with a `value`, `process_limit`/`disk_limit` with
/// the bound, `timed_out`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Termination {
    pub kind: String,
    pub value: Option<i64>,
}

// `reprove diff --json`

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diff {
    pub schema_version: u32,
    pub summary: String,
    pub left: String,
    pub right: String,
    pub verdict: String,
    pub identical: u64,
    pub leaves: Vec<Leaf>,
    pub suggestion: Option<Suggestion>,
}

/// A comparison as the rebuild predicate holds it (`difference`, `nondeterminism`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub left: String,
    pub right: String,
    pub verdict: String,
    pub identical: u64,
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    pub path: String,
    pub change: String,
    pub verdict: String,
    pub causes: Vec<Cause>,
    #[serde(default)]
    pub metadata: Vec<FieldChange>,
    pub content: Option<Content>,
    #[serde(default)]
    pub allowances: Vec<AppliedAllowance>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Leaf {
    /// The causes' kinds, in order.
    pub fn cause_kinds(&self) -> Vec<&str> {
        self.causes.iter().map(|c| c.kind.as_str()).collect()
    }
}

#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub kind: String,
    pub section: Option<String>,
    pub symbol: Option<String>,
    pub left: Option<String>,
    pub right: Option<String>,
    pub field: Option<String>,
    pub by: Option<i64>,
    pub fill: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub field: String,
    pub left: String,
    pub right: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    pub left_size: u64,
    pub right_size: u64,
    pub differing_bytes: u64,
    pub range_count: u64,
    pub summary: String,
    #[serde(default)]
    pub tally: Vec<Tally>,
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub sections: Vec<Section>,
    #[serde(default)]
    pub shifts: Vec<ShiftDiff>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub kind: String,
    pub ranges: u64,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub offset: u64,
    pub len: u64,
    /// Zero (left out) when the range did not move.
    #[serde(default)]
    pub shift: i64,
    pub cause: Cause,
    pub location: Option<String>,
    pub string: Option<StringPair>,
    pub context: Option<HexContext>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringPair {
    pub left: String,
    pub right: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HexContext {
    pub offset: u64,
    pub left: String,
    pub right: String,
    pub right_offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub name: String,
    pub executable: bool,
    pub ranges: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftDiff {
    pub left_offset: u64,
    pub right_offset: u64,
    #[serde(default)]
    pub inserted: u64,
    #[serde(default)]
    pub removed: u64,
    pub by: i64,
    pub differing_after: u64,
    pub cause: Cause,
    pub string: Option<StringPair>,
    pub context: Option<HexContext>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedAllowance {
    pub allowance: Allowance,
    #[serde(default)]
    pub ranges: Vec<ByteRange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Allowance {
    pub artifact: Option<String>,
    pub trailer: Option<u64>,
    pub region: Option<Region>,
    pub elf_section: Option<String>,
    pub archive_metadata: Option<bool>,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suggestion {
    pub trailer: u64,
    pub toml: String,
}

// `reprove verify --json`: the rebuild predicate, the attestation's path, and a replay.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub schema_version: u32,
    pub verdict: String,
    pub verifier: Verifier,
    pub package: Package,
    pub invocation: Invocation,
    pub recipe: NamedFile,
    pub lock: LockFile,
    pub escrow: Escrow,
    pub toolchain: Toolchain,
    pub build: Build,
    pub rebuilds: Vec<RebuildRecord>,
    pub failed_rebuild: Option<FailedRebuild>,
    pub artifacts: Vec<Artifact>,
    /// The recipe's pinned blobs (read whole by tests/cli/custody.rs).
    #[serde(default)]
    pub blobs: Vec<serde_json::Value>,
    pub coverage: Coverage,
    /// `--provenance` (read whole by tests/cli/custody.rs).
    pub provenance: Option<serde_json::Value>,
    /// `--dump` (read whole by tests/cli/dump.rs).
    pub dump: Option<serde_json::Value>,
    pub redacted: Option<bool>,
    pub started_on: String,
    pub finished_on: String,
    /// The attestation file written.
    pub attestation: String,
    /// With `--from-attestation`.
    pub replay: Option<Replay>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verifier {
    pub id: String,
    pub name: Option<String>,
    pub version: VerifierVersion,
}

/// Where every byte of the shipped set stands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub reproduced: u64,
    pub pinned: u64,
    pub masked: u64,
    pub erased: u64,
    pub unexplained: u64,
    pub total: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierVersion {
    pub reprove: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    pub recipe: String,
    pub shipped: Vec<String>,
}

/// An in-toto `DigestSet` of both algorithms.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    pub sha256: String,
    pub blake3: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedFile {
    pub name: String,
    pub digest: DigestSet,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub name: String,
    pub digest: DigestSet,
    pub traced: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escrow {
    pub name: String,
    pub expected: String,
    pub digest: Option<DigestSet>,
    pub kind: Option<String>,
    pub files: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    pub tools: BTreeMap<String, Tool>,
    pub pins: Vec<Pin>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub path: String,
    pub resolved: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub name: String,
    /// One algorithm → hex.
    pub digest: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub command: Vec<String>,
    pub timeout_seconds: u64,
    pub isolation: Isolation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolation {
    pub backend: String,
    pub version: Option<String>,
    /// The hermetic root's pinned digest, when the build saw nothing but that root.
    pub root: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildRecord {
    pub variation: Variation,
    pub build_path: String,
    pub environment: BTreeMap<String, String>,
    pub termination: Termination,
    pub seconds: f64,
    pub limits: Option<Limits>,
    pub missing_program: Option<String>,
    pub log: Log,
    pub artifacts: Vec<RebuildArtifact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    pub umask: u32,
    pub clock_shift_days: Option<u64>,
    pub clock_stopped_at: Option<i64>,
    #[serde(default)]
    pub varied: Vec<String>,
    pub env_reversed: bool,
    pub nested_build_dir: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_processes: u64,
    pub process_bound: String,
    pub max_disk_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub digest: DigestSet,
    pub size: u64,
    #[serde(default)]
    pub tail: Vec<String>,
    pub kept: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildArtifact {
    pub name: String,
    pub digest: Option<DigestSet>,
    pub absent: Option<String>,
    #[serde(default)]
    pub similar: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedRebuild {
    pub rebuild: u64,
    pub variation: Variation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub name: String,
    pub path: String,
    pub verdict: String,
    pub rebuilt: Vec<Option<DigestSet>>,
    pub shipped: Option<ShippedFile>,
    pub difference: Option<Comparison>,
    pub nondeterminism: Option<Comparison>,
    pub absent: Option<String>,
    #[serde(default)]
    pub similar: Vec<String>,
    pub suggestion: Option<Suggestion>,
    #[serde(default)]
    pub notes: Vec<String>,
    pub first_rebuild_verdict: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedFile {
    pub name: String,
    pub digest: DigestSet,
    pub size: u64,
    pub locator: Option<Locator>,
}

/// How to find a shipped file in a dump without it (docs/dump.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locator {
    pub algorithm: String,
    pub window: u32,
    pub anchors: Vec<LocatorAnchor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocatorAnchor {
    pub offset: u64,
    pub hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    pub same: bool,
    pub mismatches: Vec<ReplayMismatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayMismatch {
    pub what: String,
    pub recorded: String,
    pub found: String,
}
