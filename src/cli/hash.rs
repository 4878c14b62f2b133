//! `reprove hash PATH...`: file and tree digests.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use crate::exit::ExitStatus;
use crate::hash::{hash_reader, hash_tree, Checksum};
use crate::output::sanitize::sanitize;
use crate::output::{Output, Style};
use crate::progress::{Progress as _, Stage};

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Files and directories (a directory gets a tree digest)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print `sha256sum`-compatible lines (files only)
    #[arg(long, conflicts_with = "json")]
    sha256sum: bool,
}

#[derive(Debug, Serialize)]
struct HashJson {
    schema_version: u32,
    entries: Vec<EntryJson>,
}

#[derive(Debug, Serialize)]
struct EntryJson {
    path: String,
    kind: &'static str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<u64>,
    sha256: Checksum,
    blake3: Checksum,
}

pub(crate) fn run(args: &HashArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let progress = out.reporter();
    let what = match args.paths.as_slice() {
        [one] => format!("hashing `{}`", one.display()),
        many => format!("hashing {} paths", many.len()),
    };
    progress.stage(Stage::Hashing(&what));
    // Paths are hashed in parallel; each file and each tree is read once.
    let results: Vec<anyhow::Result<EntryJson>> = args
        .paths
        .par_iter()
        .map(|path| {
            let shown = path.display().to_string();
            // The type is read before anything is opened: a FIFO, a socket or a device is
            // refused at once instead of blocking or acting.
            let meta = crate::beneath::stat_file_or_dir(path).map_err(|e| match e {
                crate::beneath::Error::Io { source, .. } => {
                    anyhow::Error::new(source).context(format!("failed to read `{shown}`"))
                }
                e => anyhow::anyhow!("{e}: only files and directories are hashed"),
            })?;
            if meta.is_dir() {
                if args.sha256sum {
                    anyhow::bail!("`--sha256sum` takes files only, and `{shown}` is a directory");
                }
                let tree = hash_tree(path)?;
                let (files, size) = tree.file_totals();
                Ok(EntryJson {
                    path: shown,
                    kind: "tree",
                    size,
                    files: Some(files),
                    sha256: tree.sha256,
                    blake3: tree.blake3,
                })
            } else {
                let file = crate::beneath::open_regular(path)
                    .with_context(|| format!("failed to read `{shown}`"))?;
                let h = hash_reader(&file).with_context(|| format!("failed to read `{shown}`"))?;
                Ok(EntryJson {
                    path: shown,
                    kind: "file",
                    size: h.size,
                    files: None,
                    sha256: h.sha256,
                    blake3: h.blake3,
                })
            }
        })
        .collect();
    progress.finish();
    // Stopped by a signal: one message for the run, not one error per path.
    crate::interrupt::check()?;

    let mut status = ExitStatus::Success;
    let mut entries = Vec::new();
    for r in results {
        match r {
            Ok(e) => entries.push(e),
            // Keep going: report every path, exit with the worst status (as b3sum does).
            Err(e) => {
                out.error(&e);
                status = ExitStatus::Error;
            }
        }
    }
    if out.is_json() {
        out.json(&HashJson {
            schema_version: 1,
            entries,
        })?;
    } else if args.sha256sum {
        let mut text = String::new();
        for e in &entries {
            text.push_str(&sha256sum_line(&e.sha256.hex(), &e.path));
        }
        out.result(&text)?;
    } else {
        let mut text = String::new();
        for e in &entries {
            let what = match e.files {
                Some(n) => format!("tree, {n} files, {} bytes", e.size),
                None => format!("{} bytes", e.size),
            };
            text.push_str(&format!(
                "{} ({what})\n  {}\n  {}\n",
                out.paint(Style::Path, &sanitize(&e.path)),
                e.sha256,
                e.blake3
            ));
        }
        out.result(&text)?;
    }
    Ok(status)
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
