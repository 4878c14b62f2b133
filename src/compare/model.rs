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
    /// A host name the rebuild is known to have had (the machine's, the sandbox's) on one
    /// side, another name on the other.
    HostName,
    /// A user name the rebuild is known to have had on one side, another name on the other.
    UserName,
    /// Fill bytes (all `fill`) at the end of one side that the other side's content took up
    /// after a shift: a longer string moved the rest of the image into its padding.
    Padding {
        fill: u8,
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
            Cause::Padding { fill } => format!("fill ({fill:#04x}) taken up by shifted content"),
            Cause::HostName => "host name".into(),
            Cause::UserName => "user name".into(),
            Cause::Unknown => "unknown".into(),
        }
    }

    /// What one range of this cause is called when ranges are counted, singular and plural
    /// ("1 toolchain string, 11 shifted ranges").
    pub fn noun(&self) -> (&'static str, &'static str) {
        match self {
            Cause::Timestamp => ("timestamp", "timestamps"),
            Cause::BuildPath => ("build path", "build paths"),
            Cause::BuildId => ("build-id range", "build-id ranges"),
            Cause::ArchiveMetadata => ("archive metadata range", "archive metadata ranges"),
            Cause::CompressionHeader => ("compression header", "compression headers"),
            Cause::Compression => ("recompressed range", "recompressed ranges"),
            Cause::Ordering => ("reordering", "reorderings"),
            Cause::Code { .. } => ("code change", "code changes"),
            Cause::Data { .. } => ("data change", "data changes"),
            Cause::Toolchain { .. } => ("toolchain string", "toolchain strings"),
            Cause::Checksum { .. } => ("checksum", "checksums"),
            Cause::Shifted { .. } => ("shifted range", "shifted ranges"),
            Cause::Padding { .. } => ("padding range", "padding ranges"),
            Cause::HostName => ("host name", "host names"),
            Cause::UserName => ("user name", "user names"),
            Cause::Unknown => ("unexplained range", "unexplained ranges"),
        }
    }

    /// The serialized `kind`: what [`CauseTally`] counts by.
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::Timestamp => "timestamp",
            Cause::BuildPath => "build_path",
            Cause::BuildId => "build_id",
            Cause::ArchiveMetadata => "archive_metadata",
            Cause::CompressionHeader => "compression_header",
            Cause::Compression => "compression",
            Cause::Ordering => "ordering",
            Cause::Code { .. } => "code",
            Cause::Data { .. } => "data",
            Cause::Toolchain { .. } => "toolchain",
            Cause::Checksum { .. } => "checksum",
            Cause::Shifted { .. } => "shifted",
            Cause::Padding { .. } => "padding",
            Cause::HostName => "host_name",
            Cause::UserName => "user_name",
            Cause::Unknown => "unknown",
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
    /// One line first: "99 bytes in 12 ranges: 1 toolchain string, 11 shifted ranges".
    pub summary: String,
    /// Ranges and bytes per cause kind over the explained ranges, in first-seen order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tally: Vec<CauseTally>,
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
    /// What the inserted or removed bytes are, read at the place the shift starts (a toolchain
    /// string that grew, code); `shifted` when nothing more is known.
    pub cause: Cause,
    /// The string the shift lies in, on each side, when it lies in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<StringPair>,
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
    /// The printable string the range lies in, read whole on each side (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<StringPair>,
    /// Hex rows around the range; when the windows of later ranges overlap this one, it
    /// covers them too and they have none (no row is shown twice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<HexContext>,
}

/// The string a range lies in, on each side (lossy UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StringPair {
    pub left: String,
    pub right: String,
}

/// How many explained ranges, and how many of their bytes, have causes of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CauseTally {
    pub kind: &'static str,
    pub ranges: u64,
    pub bytes: u64,
}

/// Bytes around a range, from both sides, in lowercase hex, from `offset` (16-aligned) on the
/// left and from `right_offset` on the right.
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
    ///
    /// Each kind of cause is described once, by its first instance, with a count of the other
    /// distinct ones of that kind: a firmware volume whose every file header carries its own
    /// checksum would otherwise make a line of kilobytes.
    pub fn summary(&self) -> String {
        // (kind, the distinct descriptions seen). Code and data changes are never folded:
        // each function and object changed is named.
        let mut kinds: Vec<(String, Vec<String>)> = Vec::new();
        for c in self.leaves.iter().flat_map(|l| &l.causes) {
            let d = c.describe();
            let key = if c.is_code() {
                d.clone()
            } else {
                c.kind().to_owned()
            };
            match kinds.iter_mut().find(|(k, _)| *k == key) {
                Some((_, seen)) if !seen.contains(&d) => seen.push(d),
                Some(_) => {}
                None => kinds.push((key, vec![d])),
            }
        }
        let causes: Vec<String> = kinds
            .iter()
            .map(|(_, seen)| match seen.len() {
                1 => seen[0].clone(),
                n => format!("{} and {} more like it", seen[0], n - 1),
            })
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(causes: Vec<Cause>) -> LeafDiff {
        LeafDiff {
            path: "fw".into(),
            change: Change::Changed,
            verdict: Verdict::Different,
            causes,
            metadata: Vec::new(),
            content: None,
            allowances: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A volume whose every file header has its own checksum gives one phrase, not one per
    /// file; every function changed is still named.
    #[test]
    fn the_summary_folds_causes_of_one_kind_but_names_every_code_change() {
        let checksum = |f: &str| Cause::Checksum {
            field: Some(f.into()),
        };
        let code = |f: &str| Cause::Code {
            section: ".text".into(),
            symbol: Some(f.into()),
        };
        let c = Comparison {
            left: "a".into(),
            right: "b".into(),
            verdict: Verdict::Different,
            identical: 0,
            leaves: vec![
                leaf(vec![checksum("a/header"), code("auth_check")]),
                leaf(vec![checksum("b/header"), code("login")]),
                leaf(vec![checksum("c/header"), checksum("a/header")]),
            ],
        };
        let line = c.summary();
        assert!(
            line.contains("checksum (a/header) following other changes and 2 more like it"),
            "{line}"
        );
        assert!(!line.contains("b/header"), "{line}");
        assert!(
            line.contains("function `auth_check`") && line.contains("function `login`"),
            "{line}"
        );
    }
}
