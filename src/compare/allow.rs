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
//! Byte rules (`trailer`, `region`, `elf-section`) cover differing byte ranges of a leaf;
//! `archive-metadata` covers member metadata (mtime, owner, mode), member order and
//! compression headers. A leaf whose every difference is covered is `equivalent`. The same
//! shape is written back out (in JSON reports too), so a report quotes the rule as written.

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
            if r.length == 0 || r.offset.checked_add(r.length).is_none() {
                return Err("`region` needs a length of at least 1 that ends inside 2^64".into());
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

    /// Whether `range` lies wholly inside this allowance's bytes. `size` is the longer side's
    /// size; `section` finds an ELF section's file range by name.
    pub(super) fn covers(
        &self,
        range: ByteRange,
        size: u64,
        section: impl Fn(&str) -> Option<ByteRange>,
    ) -> bool {
        let inside = |span: ByteRange| {
            range.offset >= span.offset
                && range.offset.saturating_add(range.len) <= span.offset.saturating_add(span.len)
        };
        match &self.rule {
            Rule::Trailer(n) => range.offset >= size.saturating_sub(*n),
            Rule::Region { offset, length } => inside(ByteRange {
                offset: *offset,
                len: *length,
            }),
            Rule::ElfSection(name) => section(name).is_some_and(inside),
            Rule::ArchiveMetadata => false,
        }
    }
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
    fn trailer_covers_the_longer_sides_tail() {
        let a = Allowance {
            artifact: Some("fw.img".into()),
            rule: Rule::Trailer(512),
            reason: String::new(),
        };
        let r = |offset, len| ByteRange { offset, len };
        assert!(a.covers(r(1000, 512), 1512, |_| None));
        assert!(!a.covers(r(999, 4), 1512, |_| None));
        assert!(a.applies_to("fw.img") && a.applies_to("fw.img//x"));
        assert!(!a.applies_to("fw.img2"));
    }
}
