//! Finding and reading many attestation bundles: the files and folders a command line names.
//!
//! Shared by every command that reads attestations in bulk (`reprove report`; meant for
//! `attest verify --policy` too). Invariants:
//!
//! - A file named on the command line is read as named (a symlink is followed, as the user
//!   asked for it); it must be a regular file (a FIFO cannot block, a device cannot act).
//! - A folder is walked beneath its handle ([`crate::beneath::Tree`]): no link is followed
//!   while listing, at most [`MAX_ENTRIES`] entries are looked at and no deeper than
//!   [`MAX_DEPTH`] folders (past a bound the whole listing is an [`Error`], never a quiet cut).
//!   Only names ending in `.intoto.jsonl` are taken; such a name that is a symlink is opened
//!   only when the link stays inside the folder, and one that is not a regular file (a FIFO,
//!   a socket, a link that leaves) is kept as an [`Entry`] that says why it was refused.
//! - Every entry is read once, by the one bundle reader ([`crate::attest::bundle`]), at most
//!   [`crate::attest::bundle::MAX_BUNDLE_BYTES`] bytes of it: a larger file, one that is not UTF-8 or whose lines are
//!   not DSSE envelopes (a truncated upload) is an entry whose read fails with the reason,
//!   never dropped.
//! - Entries are listed in the order of the command line, and sorted by path within a folder,
//!   so the same inputs list the same way.

use std::path::{Path, PathBuf};

use crate::attest::bundle::read_bundle_from;
use crate::attest::dsse::Envelope;
use crate::beneath::{self, Kind, Links, Tree};

/// Entries looked at in one folder, counted over all its subfolders.
pub(crate) const MAX_ENTRIES: usize = 1_000_000;
/// Folders entered below a named folder.
pub(crate) const MAX_DEPTH: usize = 32;
/// How a bundle's name ends, for it to be taken from a folder.
pub(crate) const SUFFIX: &str = ".intoto.jsonl";

/// Why the set of bundles could not be listed at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("`{}` does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("`{}` is neither a file nor a folder", path.display())]
    NotFileOrFolder {
        path: PathBuf,
        #[source]
        source: beneath::Error,
    },
    #[error(
        "`{}` holds more than {MAX_ENTRIES} entries or folders deeper than {MAX_DEPTH}: name \
         its subfolders instead",
        path.display()
    )]
    TooLarge { path: PathBuf },
    #[error("no attestation found: none of the paths given is or holds a `*{SUFFIX}` file")]
    NoneFound,
}

/// One bundle to read, as found.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The path to show: as named, or the folder as named joined with the path beneath it.
    pub(crate) path: PathBuf,
    at: Location,
}

#[derive(Debug)]
enum Location {
    Named,
    Beneath {
        tree: usize,
        rel: PathBuf,
    },
    /// Found, and refused before reading (why).
    Refused(String),
}

/// The bundles that the paths name, in order; read each with [`Bundles::read`].
#[derive(Debug)]
pub(crate) struct Bundles {
    trees: Vec<Tree>,
    pub(crate) entries: Vec<Entry>,
}

/// List the bundles `paths` name: each file as it is, each folder's `*.intoto.jsonl` files.
pub(crate) fn find_bundles(paths: &[PathBuf]) -> Result<Bundles, Error> {
    let mut bundles = Bundles {
        trees: Vec::new(),
        entries: Vec::new(),
    };
    for path in paths {
        let meta = match beneath::stat_file_or_dir(path) {
            Ok(meta) => meta,
            Err(beneath::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(Error::NotFound { path: path.clone() })
            }
            Err(source @ beneath::Error::NotAFile { .. }) => {
                return Err(Error::NotFileOrFolder {
                    path: path.clone(),
                    source,
                })
            }
            // Unreadable (permissions, I/O): listed, so the report says so.
            Err(e) => {
                bundles.entries.push(Entry {
                    path: path.clone(),
                    at: Location::Refused(e.to_string()),
                });
                continue;
            }
        };
        if !meta.is_dir() {
            bundles.entries.push(Entry {
                path: path.clone(),
                at: Location::Named,
            });
            continue;
        }
        let tree = match Tree::open_named(path, "attestation folder") {
            Ok(tree) => tree,
            Err(e) => {
                bundles.entries.push(Entry {
                    path: path.clone(),
                    at: Location::Refused(e.to_string()),
                });
                continue;
            }
        };
        let listing = tree.list_files(MAX_ENTRIES, MAX_DEPTH);
        if listing.truncated {
            return Err(Error::TooLarge { path: path.clone() });
        }
        let index = bundles.trees.len();
        let mut found: Vec<(PathBuf, Location)> = listing
            .files
            .into_iter()
            .filter(|rel| is_bundle_name(rel))
            .map(|rel| {
                let at = Location::Beneath {
                    tree: index,
                    rel: rel.clone(),
                };
                (rel, at)
            })
            .collect();
        for (rel, kind) in listing.others {
            if !is_bundle_name(&rel) {
                continue;
            }
            let at = if kind == Kind::Symlink {
                // Followed only while it stays inside: `open_file` refuses one that leaves.
                Location::Beneath {
                    tree: index,
                    rel: rel.clone(),
                }
            } else {
                Location::Refused(format!("`{}` is {}", rel.display(), kind.with_article()))
            };
            found.push((rel, at));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        bundles
            .entries
            .extend(found.into_iter().map(|(rel, at)| Entry {
                path: path.join(rel),
                at,
            }));
        bundles.trees.push(tree);
    }
    if bundles.entries.is_empty() {
        return Err(Error::NoneFound);
    }
    Ok(bundles)
}

fn is_bundle_name(rel: &Path) -> bool {
    rel.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX) && n.len() > SUFFIX.len())
}

impl Bundles {
    /// The envelopes of `entry`, or why it cannot be read (one line, naming the file).
    pub(crate) fn read(&self, entry: &Entry) -> Result<Vec<Envelope>, String> {
        let file = match &entry.at {
            Location::Refused(reason) => return Err(reason.clone()),
            Location::Named => beneath::open_regular(&entry.path).map_err(|e| e.to_string())?,
            Location::Beneath { tree, rel } => {
                self.trees[*tree]
                    .open_file(rel, Links::Inside)
                    .map_err(|e| e.to_string())?
                    .file
            }
        };
        read_bundle_from(&entry.path, file).map_err(|e| {
            // One line: the error and its causes (an I/O error is the cause of a read).
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            text
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::attest::bundle::MAX_BUNDLE_BYTES;
    use crate::attest::dsse::envelope;

    fn line() -> String {
        serde_json::to_string(&envelope(b"{}", None)).unwrap() + "\n"
    }

    #[test]
    fn folders_are_walked_beneath_and_every_refusal_is_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("atts");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::write(root.join("b.intoto.jsonl"), line()).unwrap();
        std::fs::write(root.join("sub/deeper/a.intoto.jsonl"), line()).unwrap();
        std::fs::write(root.join("notes.txt"), "not a bundle").unwrap();
        std::fs::write(root.join("cut.intoto.jsonl"), &line()[..20]).unwrap();
        let outside = dir.path().join("outside.intoto.jsonl");
        std::fs::write(&outside, line()).unwrap();
        symlink(&outside, root.join("leaves.intoto.jsonl")).unwrap();
        symlink("b.intoto.jsonl", root.join("inside.intoto.jsonl")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo.intoto.jsonl"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();

        let bundles = find_bundles(&[root.clone(), outside.clone()]).unwrap();
        let read: Vec<(String, Result<usize, String>)> = bundles
            .entries
            .iter()
            .map(|e| {
                let shown = e
                    .path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string();
                (shown, bundles.read(e).map(|envs| envs.len()))
            })
            .collect();
        let names: Vec<&str> = read.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "atts/b.intoto.jsonl",
                "atts/cut.intoto.jsonl",
                "atts/fifo.intoto.jsonl",
                "atts/inside.intoto.jsonl",
                "atts/leaves.intoto.jsonl",
                "atts/sub/deeper/a.intoto.jsonl",
                "outside.intoto.jsonl",
            ]
        );
        let reason = |i: usize| read[i].1.clone().unwrap_err();
        assert_eq!(read[0].1, Ok(1));
        assert!(
            reason(1).contains("line 1: not a DSSE envelope: EOF"),
            "{}",
            reason(1)
        );
        assert_eq!(reason(2), "`fifo.intoto.jsonl` is a FIFO");
        assert_eq!(read[3].1, Ok(1));
        assert!(
            reason(4).contains("leaves the attestation folder"),
            "{}",
            reason(4)
        );
        assert_eq!(read[5].1, Ok(1));
        assert_eq!(read[6].1, Ok(1));
    }

    #[test]
    fn bad_arguments_are_errors_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            find_bundles(&[missing]),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            find_bundles(&[dir.path().to_owned()]),
            Err(Error::NoneFound)
        ));
        assert!(matches!(
            find_bundles(&[PathBuf::from("/dev/null")]),
            Err(Error::NotFileOrFolder { .. })
        ));
        let big = dir.path().join("big.intoto.jsonl");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_BUNDLE_BYTES + 1).unwrap();
        let bundles = find_bundles(&[big]).unwrap();
        let err = bundles.read(&bundles.entries[0]).unwrap_err();
        assert!(
            err.ends_with("is larger than 64 MiB: not an attestation bundle"),
            "{err}"
        );
    }
}
