//! `reprove hash PATH...`: file and tree digests.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rayon::prelude::*;

use crate::exit::ExitStatus;
use crate::hash::{hash_reader, hash_tree};
use crate::output::hash::{HashEntry, HashKind, HashStyle};
use crate::output::Output;
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

pub(crate) fn run(args: &HashArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let progress = out.reporter();
    let what = match args.paths.as_slice() {
        [one] => format!("hashing `{}`", one.display()),
        many => format!("hashing {} paths", many.len()),
    };
    progress.stage(Stage::Hashing(&what));
    // Paths are hashed in parallel; each file and each tree is read once.
    let results: Vec<anyhow::Result<HashEntry>> = args
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
                Ok(HashEntry {
                    path: shown,
                    kind: HashKind::Tree,
                    size,
                    files: Some(files),
                    sha256: tree.sha256,
                    blake3: tree.blake3,
                })
            } else {
                let file = crate::beneath::open_regular(path)
                    .with_context(|| format!("failed to read `{shown}`"))?;
                let h = hash_reader(&file).with_context(|| format!("failed to read `{shown}`"))?;
                Ok(HashEntry {
                    path: shown,
                    kind: HashKind::File,
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
    out.hash_report(
        &entries,
        if args.sha256sum {
            HashStyle::Sha256sum
        } else {
            HashStyle::Plain
        },
    )?;
    Ok(status)
}
