//! Allowances: differences a recipe declares harmless, each with a reason.
//!
//! In TOML an allowance takes exactly one rule key next to `reason` (and optionally `artifact`):
//!
//! ```toml
//! [[allow]]
//! artifact = "firmware.img"      # a name in the shipped set; leave out for any
//! trailer = 512                  # or: region = { offset = 0, length = 16 }
//!                                #     elf-section = ".note.gnu.build-id"
//!                                #     archive-metadata = true
//! reason = "vendor signature block, appended after the build"
//! ```
//!
//! Each rule accepts one shape of difference and nothing else (`cover`); the left side is the
//! rebuilt file, the right side the shipped one:
//!
//! - `trailer = N`: the shipped file is the rebuilt file followed by exactly N more bytes. It
//!   covers those N bytes only, and only when the shipped file is exactly N bytes longer; a
//!   shorter, same-length or otherwise longer shipped file gets nothing from it.
//! - `region = { offset, length }`: differing bytes inside `offset..offset + length`, when that
//!   span lies inside both files. It never covers bytes one file has and the other lacks.
//! - `elf-section = "name"`: differing bytes inside the file bytes of that section, when both
//!   files are ELF files of the same size holding the section at the same offset with the same
//!   size, and it overlaps neither the ELF header nor another section (for a raw image located
//!   through its ELF file, the image sizes must be equal).
//! - `archive-metadata = true`: member metadata (mtime, owner, group, permission bits other
//!   than setuid, setgid and sticky), member order and gzip headers, when the member lists and
//!   every member's kind, link target and content are equal; and a container's own bookkeeping
//!   bytes when every member matches and both containers have the same size.
//!
//! A leaf whose every difference is covered is `equivalent`. The same shape is written back out
//! (in JSON reports too), so a report quotes the rule as written.

use serde::{Deserialize, Serialize};

use super::bytes::ByteRange;

/// One declared harmless difference.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "AllowanceToml", into = "AllowanceToml")]
pub struct Allowance {
    /// The name in the shipped set this applies to; `None` for any.
    pub artifact: Option<String>,
    pub rule: Rule,
    pub reason: String,
}

/// What an allowance covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The last N bytes of the longer side (a signature appended after the build).
    Trailer(u64),
    /// `offset..offset + length` in both sides.
    Region { offset: u64, length: u64 },
    /// The file bytes of the named ELF section.
    ElfSection(String),
    /// Archive member metadata, member order and compression headers.
    ArchiveMetadata,
}

/// The TOML (and JSON) form: every rule key optional, "exactly one" checked after.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AllowanceToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<RegionToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    elf_section: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive_metadata: Option<bool>,
    reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RegionToml {
    offset: u64,
    length: u64,
}

impl TryFrom<AllowanceToml> for Allowance {
    type Error = String;

    fn try_from(t: AllowanceToml) -> Result<Self, String> {
        let mut rules = Vec::new();
        if let Some(n) = t.trailer {
            if n == 0 {
                return Err("`trailer` must be at least 1 byte".into());
            }
            rules.push(("trailer", Rule::Trailer(n)));
        }
        if let Some(r) = t.region {
            // A file offset is an `off_t`: nothing lies at 2^63 or past it.
            let end = r.offset.checked_add(r.length);
            if r.length == 0 || end.is_none_or(|end| end > i64::MAX as u64) {
                return Err(format!(
                    "`region = {{ offset = {}, length = {} }}` must hold at least 1 byte and end \
                     by the largest file offset, 2^63 - 1",
                    r.offset, r.length
                ));
            }
            rules.push((
                "region",
                Rule::Region {
                    offset: r.offset,
                    length: r.length,
                },
            ));
        }
        if let Some(name) = t.elf_section {
            rules.push(("elf-section", Rule::ElfSection(name)));
        }
        match t.archive_metadata {
            Some(true) => rules.push(("archive-metadata", Rule::ArchiveMetadata)),
            Some(false) => return Err("`archive-metadata` can only be `true`".into()),
            None => {}
        }
        match rules.len() {
            0 => Err(
                "an allowance needs one of `trailer`, `region`, `elf-section`, `archive-metadata`"
                    .into(),
            ),
            1 => Ok(Allowance {
                artifact: t.artifact,
                rule: rules.remove(0).1,
                reason: t.reason,
            }),
            _ => Err(format!(
                "an allowance takes exactly one rule, and this one has `{}` and `{}`",
                rules[0].0, rules[1].0
            )),
        }
    }
}

impl From<Allowance> for AllowanceToml {
    fn from(a: Allowance) -> Self {
        let mut t = AllowanceToml {
            artifact: a.artifact,
            trailer: None,
            region: None,
            elf_section: None,
            archive_metadata: None,
            reason: a.reason,
        };
        match a.rule {
            Rule::Trailer(n) => t.trailer = Some(n),
            Rule::Region { offset, length } => t.region = Some(RegionToml { offset, length }),
            Rule::ElfSection(name) => t.elf_section = Some(name),
            Rule::ArchiveMetadata => t.archive_metadata = Some(true),
        }
        t
    }
}

impl Allowance {
    /// Whether this allowance is about the leaf at `path` (nested paths join with `//`; an
    /// artifact name matches the leaf itself and everything inside it).
    pub(super) fn applies_to(&self, path: &str) -> bool {
        self.artifact.as_deref().is_none_or(|a| {
            path == a
                || path
                    .strip_prefix(a)
                    .is_some_and(|rest| rest.starts_with("//"))
        })
    }
}

/// The facts about one differing leaf that allowances are judged against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape<'a> {
    /// The rebuilt side's size.
    pub left_size: u64,
    /// The shipped side's size.
    pub right_size: u64,
    /// The merged differing ranges.
    pub ranges: &'a [ByteRange],
    /// True when `ranges` holds every differing range.
    pub complete: bool,
}

/// What a leaf's allowances covered.
#[derive(Debug, Default)]
pub(super) struct Coverage<'a> {
    /// Each allowance that covered something, with the byte ranges it covered.
    pub applied: Vec<(&'a Allowance, Vec<ByteRange>)>,
    /// True when together they cover every difference of the leaf.
    pub complete: bool,
    /// Why an allowance that is about this leaf covered nothing.
    pub notes: Vec<String>,
}

/// Judge `allowances` against a leaf of `shape`. `section` gives the file bytes of an ELF
/// section by name, when both sides hold it at the same place (see the module docs).
///
/// The common length of the two sides and the bytes past it are judged apart: only `trailer`
/// can cover bytes that one side has and the other lacks, and only `region` and `elf-section`
/// can cover bytes both sides have.
pub(super) fn cover<'a>(
    allowances: &[&'a Allowance],
    shape: &Shape,
    section: impl Fn(&str) -> Option<ByteRange>,
) -> Coverage<'a> {
    let common = shape.left_size.min(shape.right_size);
    let same_size = shape.left_size == shape.right_size;
    // Every range split at the common length: (piece, is_tail).
    let mut pieces: Vec<(ByteRange, bool)> = Vec::new();
    for r in shape.ranges {
        if r.offset < common {
            let end = r.end().min(common);
            pieces.push((
                ByteRange {
                    offset: r.offset,
                    len: end - r.offset,
                },
                false,
            ));
        }
        if r.end() > common {
            let start = r.offset.max(common);
            pieces.push((
                ByteRange {
                    offset: start,
                    len: r.end() - start,
                },
                true,
            ));
        }
    }
    let inside = |piece: ByteRange, span: ByteRange| {
        piece.offset >= span.offset && piece.end() <= span.offset.saturating_add(span.len)
    };
    let mut covered = vec![false; pieces.len()];
    let mut coverage = Coverage::default();
    for a in allowances {
        let hits: Box<dyn Fn(ByteRange, bool) -> bool> = match &a.rule {
            Rule::Trailer(n) => {
                if shape.right_size.checked_sub(shape.left_size) == Some(*n) {
                    Box::new(|_, tail| tail)
                } else {
                    coverage.notes.push(format!(
                        "`{}` not applied: the shipped file ({} bytes) is not the rebuilt one \
                         ({} bytes) and {n} more",
                        a.rule, shape.right_size, shape.left_size
                    ));
                    continue;
                }
            }
            Rule::Region { offset, length } => {
                let span = ByteRange {
                    offset: *offset,
                    len: *length,
                };
                if offset.checked_add(*length).is_some_and(|end| end <= common) {
                    Box::new(move |piece, tail| !tail && inside(piece, span))
                } else {
                    coverage.notes.push(format!(
                        "`{}` not applied: it does not lie inside both files ({} and {} bytes)",
                        a.rule, shape.left_size, shape.right_size
                    ));
                    continue;
                }
            }
            Rule::ElfSection(name) => match section(name) {
                Some(span) if same_size => {
                    Box::new(move |piece, tail| !tail && inside(piece, span))
                }
                Some(_) => {
                    coverage.notes.push(format!(
                        "`{}` not applied: the files differ in size ({} and {} bytes)",
                        a.rule, shape.left_size, shape.right_size
                    ));
                    continue;
                }
                None => {
                    coverage.notes.push(format!(
                        "`{}` not applied: not a section both files hold at the same place",
                        a.rule
                    ));
                    continue;
                }
            },
            Rule::ArchiveMetadata => continue,
        };
        let mut hit = Vec::new();
        for ((piece, tail), c) in pieces.iter().zip(&mut covered) {
            if hits(*piece, *tail) {
                *c = true;
                hit.push(*piece);
            }
        }
        if !hit.is_empty() {
            coverage.applied.push((a, hit));
        }
    }
    coverage.complete = shape.complete && !pieces.is_empty() && covered.iter().all(|&c| c);
    coverage
}

/// Whether an `archive-metadata` allowance may cover a change of the field `field` from `left`
/// to `right`: every field of [`super::container::METADATA_FIELDS`], except a `mode` change
/// that touches the setuid, setgid or sticky bit.
pub(super) fn is_harmless_field(field: &str, left: &str, right: &str) -> bool {
    if field != "mode" {
        return true;
    }
    let special = |m: &str| u32::from_str_radix(m, 8).map(|m| m & 0o7000);
    matches!((special(left), special(right)), (Ok(l), Ok(r)) if l == r)
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Trailer(n) => write!(f, "trailer = {n}"),
            Rule::Region { offset, length } => {
                write!(f, "region = {{ offset = {offset}, length = {length} }}")
            }
            Rule::ElfSection(name) => write!(f, "elf-section = {name:?}"),
            Rule::ArchiveMetadata => f.write_str("archive-metadata = true"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        allow: Vec<Allowance>,
    }

    fn parse(text: &str) -> Result<Vec<Allowance>, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.allow)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_form_parses() {
        let got = parse(
            r#"
            [[allow]]
            artifact = "fw.img"
            trailer = 512
            reason = "signature"
            [[allow]]
            region = { offset = 0, length = 16 }
            reason = "header"
            [[allow]]
            elf-section = ".note.gnu.build-id"
            reason = "id"
            [[allow]]
            archive-metadata = true
            reason = "tar"
            "#,
        )
        .unwrap();
        let rules: Vec<Rule> = got.iter().map(|a| a.rule.clone()).collect();
        assert_eq!(
            rules,
            [
                Rule::Trailer(512),
                Rule::Region {
                    offset: 0,
                    length: 16
                },
                Rule::ElfSection(".note.gnu.build-id".into()),
                Rule::ArchiveMetadata
            ]
        );
        assert_eq!(got[0].artifact.as_deref(), Some("fw.img"));
    }

    #[test]
    fn errors_name_the_key() {
        let two = parse("[[allow]]\ntrailer = 1\nelf-section = \"x\"\nreason = \"r\"").unwrap_err();
        assert!(two.contains("`trailer` and `elf-section`"), "{two}");
        let none = parse("[[allow]]\nreason = \"r\"").unwrap_err();
        assert!(none.contains("needs one of"), "{none}");
        let unknown = parse("[[allow]]\ntrailer = 1\nreason = \"r\"\ntrailr = 2").unwrap_err();
        assert!(unknown.contains("trailr"), "{unknown}");
        let no_reason = parse("[[allow]]\ntrailer = 1").unwrap_err();
        assert!(no_reason.contains("reason"), "{no_reason}");
        let region = parse("[[allow]]\nregion = { offset = 1 }\nreason = \"r\"").unwrap_err();
        assert!(region.contains("length"), "{region}");
    }

    #[test]
    fn trailer_covers_exactly_n_more_bytes_on_the_shipped_side() {
        let a = Allowance {
            artifact: Some("fw.img".into()),
            rule: Rule::Trailer(512),
            reason: String::new(),
        };
        let r = |offset, len| ByteRange { offset, len };
        let judge = |left_size, right_size, ranges: &[ByteRange]| {
            let shape = Shape {
                left_size,
                right_size,
                ranges,
                complete: true,
            };
            cover(&[&a], &shape, |_| None).complete
        };
        assert!(judge(1000, 1512, &[r(1000, 512)]));
        // A changed byte before the trailer merges into the tail's range: not covered.
        assert!(!judge(1000, 1512, &[r(999, 513)]));
        assert!(!judge(1512, 1000, &[r(1000, 512)]));
        assert!(!judge(1512, 1512, &[r(1000, 512)]));
        assert!(!judge(1000, 1513, &[r(1000, 513)]));
        assert!(a.applies_to("fw.img") && a.applies_to("fw.img//x"));
        assert!(!a.applies_to("fw.img2"));
    }

    proptest::proptest! {
        /// Whatever the sizes, ranges and rules: no panic, and a size difference is covered
        /// only by a trailer of exactly that size on the shipped side.
        #[test]
        fn only_an_exact_trailer_covers_a_size_difference(
            left_size in 0u64..200,
            right_size in 0u64..200,
            starts in proptest::collection::vec(0u64..200, 0..4),
            rules in proptest::collection::vec((0u8..3, 0u64..220, 1u64..220), 1..4),
        ) {
            let max = left_size.max(right_size);
            let mut ranges: Vec<ByteRange> = starts
                .iter()
                .filter(|&&o| o < left_size.min(right_size))
                .map(|&o| ByteRange { offset: o, len: 1 })
                .collect();
            ranges.sort_by_key(|r| r.offset);
            ranges.dedup();
            if left_size != right_size {
                let common = left_size.min(right_size);
                ranges.push(ByteRange { offset: common, len: max - common });
            }
            let allowances: Vec<Allowance> = rules
                .iter()
                .map(|&(kind, a, b)| Allowance {
                    artifact: None,
                    rule: match kind {
                        0 => Rule::Trailer(b),
                        1 => Rule::Region { offset: a, length: b },
                        _ => Rule::ElfSection(".x".into()),
                    },
                    reason: String::new(),
                })
                .collect();
            let refs: Vec<&Allowance> = allowances.iter().collect();
            let shape = Shape { left_size, right_size, ranges: &ranges, complete: true };
            let c = cover(&refs, &shape, |_| Some(ByteRange { offset: 0, len: 200 }));
            if c.complete && left_size != right_size {
                let grown = right_size.checked_sub(left_size);
                proptest::prop_assert!(allowances
                    .iter()
                    .any(|a| grown.is_some_and(|n| a.rule == Rule::Trailer(n))));
            }
        }
    }

    #[test]
    fn setuid_setgid_and_sticky_bits_are_no_harmless_metadata() {
        assert!(is_harmless_field("mtime", "1", "2"));
        assert!(is_harmless_field("mode", "644", "755"));
        assert!(!is_harmless_field("mode", "755", "4755"));
        assert!(!is_harmless_field("mode", "1777", "777"));
        assert!(!is_harmless_field("mode", "?", "644"));
    }
}
