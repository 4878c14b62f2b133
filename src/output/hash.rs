//! `reprove hash` results: one entry per path, as text (the path, its size, both digests),
//! as `sha256sum` lines, or as the JSON document `{schema_version: 1, entries: [...]}`.
//!
//! Paths come from the command line but may name anything: the text goes through
//! [`sanitize`]; `sha256sum` lines escape names as coreutils does, so `sha256sum -c` reads
//! them back.

use serde::Serialize;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::hash::Checksum;

/// The JSON document.
#[derive(Debug, Serialize)]
struct HashJson<'a> {
    schema_version: u32,
    entries: &'a [HashEntry],
}

/// One hashed path: a file, or a directory and its tree digest.
#[derive(Debug, Serialize)]
pub(crate) struct HashEntry {
    /// As the user typed it.
    pub(crate) path: String,
    pub(crate) kind: HashKind,
    /// A file's size, or the total size of a tree's files.
    pub(crate) size: u64,
    /// For a tree: how many files it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) files: Option<u64>,
    pub(crate) sha256: Checksum,
    pub(crate) blake3: Checksum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HashKind {
    File,
    Tree,
}

/// How `reprove hash` prints its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashStyle {
    /// The path, its size and both digests (or JSON with `--json`).
    Plain,
    /// `sha256sum` lines.
    Sha256sum,
}

impl Output {
    /// Print the digests of `entries` on stdout.
    pub(crate) fn hash_report(
        &self,
        entries: &[HashEntry],
        style: HashStyle,
    ) -> std::io::Result<()> {
        if self.is_json() {
            return self.json(&HashJson {
                schema_version: 1,
                entries,
            });
        }
        let mut text = String::new();
        for e in entries {
            match style {
                HashStyle::Sha256sum => text.push_str(&sha256sum_line(&e.sha256.hex(), &e.path)),
                HashStyle::Plain => {
                    let what = match e.files {
                        Some(n) => format!("tree, {n} files, {} bytes", e.size),
                        None => format!("{} bytes", e.size),
                    };
                    text.push_str(&format!(
                        "{} ({what})\n  {}\n  {}\n",
                        self.paint(Style::Path, &sanitize(&e.path)),
                        e.sha256,
                        e.blake3
                    ));
                }
            }
        }
        self.result(&text)
    }
}

/// One `sha256sum` line: names with a backslash or newline get coreutils' escaped form
/// (a leading `\`), so `sha256sum -c` reads them back.
fn sha256sum_line(hex: &str, name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hex}  {escaped}\n")
    } else {
        format!("{hex}  {name}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::sha256sum_line;

    #[test]
    fn sha256sum_escapes_like_coreutils() {
        assert_eq!(sha256sum_line("ab", "f"), "ab  f\n");
        assert_eq!(sha256sum_line("ab", "a\nb\\c"), "\\ab  a\\nb\\\\c\n");
    }
}
