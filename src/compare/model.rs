//! What a comparison finds: verdicts, leaves, ranges and their likely causes. Plain data,
//! serialized as `docs/diff.md` documents; nothing here reads a file.

use serde::Serialize;

use super::{Allowance, ByteRange, Shift};

/// How two inputs, or one leaf of them, relate. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    /// Different only where allowances say it is harmless.
    Equivalent,
    Different,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Equivalent => "equivalent",
            Verdict::Different => "different",
        }
    }
}

/// The likely root of a difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// An integer near `SOURCE_DATE_EPOCH`, the build time, now or the files' mtimes, or a
    /// date or time string.
    Timestamp,
    /// An absolute path that differs after its first `/`.
    BuildPath,
    /// Inside `.note.gnu.build-id`: a consequence of another difference.
    BuildId,
    /// Archive member metadata (mtime, mode, owner) with the same content.
    ArchiveMetadata,
    /// A gzip header (mtime, name, OS) with the same decompressed content.
    CompressionHeader,
    /// Another compressed stream of the same decompressed content.
    Compression,
    /// The same members in another order.
    Ordering,
    /// Bytes of machine code: an executable section, and the function covering them.
    Code {
        section: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<String>,
    },
    /// A change to a data object: bytes of a constant table or variable in `.rodata`,
    /// `.data` or another non-executable allocated section, and the object covering them.
    /// Flagged as loudly as [`Cause::Code`]: a changed user table is as much a backdoor as a
    /// changed function.
    Data {
        section: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<String>,
    },
    /// A toolchain identification string (`GCC: (Debian 12.2.0-14) 12.2.0`, a binutils,
    /// linker or assembler version) that names another version on each side; `left` and
    /// `right` are the differing version words.
    Toolchain {
        left: String,
        right: String,
    },
    /// A checksum, CRC or length field that changed only because other bytes did.
    Checksum {
        /// What the field is (`uImage header CRC`, `ROM checksum byte`), when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// Content that moved: bytes inserted or removed earlier shifted it (a pointer or offset
    /// that moved with it also counts).
    Shifted {
        /// How far it moved, in bytes (positive: later on the right).
        by: i64,
    },
    Unknown,
}

impl Cause {
    /// A few words for people.
    pub fn describe(&self) -> String {
        match self {
            Cause::Timestamp => "timestamp".into(),
            Cause::BuildPath => "build path".into(),
            Cause::BuildId => "ELF build-id".into(),
            Cause::ArchiveMetadata => "archive metadata only".into(),
            Cause::CompressionHeader => "compression header".into(),
            Cause::Compression => "compressed differently, same content".into(),
            Cause::Ordering => "member order".into(),
            Cause::Code { section, symbol } => match symbol {
                Some(s) => format!("EXECUTABLE CODE in `{section}`, function `{s}`"),
                None => format!("EXECUTABLE CODE in `{section}`"),
            },
            Cause::Data { section, symbol } => match symbol {
                Some(s) => format!("DATA CHANGE in `{section}`, object `{s}`"),
                None => format!("DATA CHANGE in `{section}`"),
            },
            Cause::Toolchain { left, right } => {
                format!("toolchain version string `{left}` → `{right}`")
            }
            Cause::Checksum { field } => match field {
                Some(f) => format!("checksum ({f}) following other changes"),
                None => "checksum following other changes".into(),
            },
            Cause::Shifted { by } => format!("content shifted by {by:+} bytes"),
            Cause::Unknown => "unknown".into(),
        }
    }

    /// Whether the cause is flagged loudly: machine code or a data object changed.
    pub fn is_code(&self) -> bool {
        matches!(self, Cause::Code { .. } | Cause::Data { .. })
    }
}

/// Two inputs compared: the verdict and every leaf that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub left: String,
    pub right: String,
    pub verdict: Verdict,
    /// Leaves (files, members) found byte-identical.
    pub identical: u64,
    pub leaves: Vec<LeafDiff>,
}

/// What happened to a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only on the right.
    Added,
    /// Only on the left.
    Removed,
    /// On both sides, differing in content or metadata.
    Changed,
    /// A container whose common members come in another order.
    Reordered,
}

/// One differing leaf: a file, an archive member, a stream, or a container's member order.
#[derive(Debug, Clone, Serialize)]
pub struct LeafDiff {
    pub path: String,
    pub change: Change,
    pub verdict: Verdict,
    /// Distinct likely causes, in the order first seen.
    pub causes: Vec<Cause>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<AppliedAllowance>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A metadata field that differs (`mtime`, `mode`, `uid`, `gzip mtime`, `kind`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub left: String,
    pub right: String,
}

/// How a leaf's bytes differ.
#[derive(Debug, Clone, Serialize)]
pub struct ContentDiff {
    pub left_size: u64,
    pub right_size: u64,
    pub differing_bytes: u64,
    /// All merged ranges, also those not listed.
    pub range_count: u64,
    /// The first ranges, each with a cause.
    pub ranges: Vec<RangeDiff>,
    /// ELF sections holding differing ranges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionDiff>,
    /// Bytes inserted or removed, after which the comparison went on at another alignment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<ShiftDiff>,
}

/// A shift, with hex context around it (the right side read from the same place).
#[derive(Debug, Clone, Serialize)]
pub struct ShiftDiff {
    #[serde(flatten)]
    pub shift: Shift,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<HexContext>,
}

/// One merged range of differing bytes.
#[derive(Debug, Clone, Serialize)]
pub struct RangeDiff {
    pub offset: u64,
    pub len: u64,
    /// Right offset minus `offset`: non-zero after bytes were inserted or removed.
    #[serde(skip_serializing_if = "is_zero")]
    pub shift: i64,
    pub cause: Cause,
    /// In an ELF file: the section name, `ELF header`, `segment N` or `outside sections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<HexContext>,
}

/// Bytes around a range, from both sides, in lowercase hex (up to 48 bytes from `offset` on
/// the left, from `right_offset` on the right).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HexContext {
    pub offset: u64,
    pub left: String,
    pub right: String,
    /// Where the right side's bytes start, when not at `offset` (after a shift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right_offset: Option<u64>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl RangeDiff {
    /// Where the range starts on the right.
    pub fn right_offset(&self) -> u64 {
        self.offset.saturating_add_signed(self.shift)
    }
}

/// An ELF section with differing ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionDiff {
    pub name: String,
    pub executable: bool,
    pub ranges: u64,
}

/// An allowance that covered some of a leaf's differences, and which byte ranges.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedAllowance {
    pub allowance: Allowance,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<ByteRange>,
}

impl Comparison {
    /// One line: the verdict, the counts and the causes.
    pub fn summary(&self) -> String {
        let mut causes: Vec<String> = Vec::new();
        for c in self.leaves.iter().flat_map(|l| &l.causes) {
            let d = c.describe();
            if !causes.contains(&d) {
                causes.push(d);
            }
        }
        let metadata_only = self
            .leaves
            .iter()
            .filter(|l| l.content.is_none() && l.causes == [Cause::ArchiveMetadata])
            .count();
        let mut line = format!(
            "{}: {} differing, ",
            self.verdict.name(),
            self.leaves.len() - metadata_only
        );
        if metadata_only > 0 {
            line.push_str(&format!("{metadata_only} metadata-only, "));
        }
        line.push_str(&format!("{} identical", self.identical));
        if !causes.is_empty() {
            line.push_str(&format!(" ({})", causes.join("; ")));
        }
        line
    }
}
