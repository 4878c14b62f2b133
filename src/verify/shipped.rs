//! The shipped set: the binaries as delivered, matched to artifacts by name.
//!
//! Operators receive files, folders, or a vendor bundle. A file is known by its name; a
//! folder's files by their path below it and, when that is unambiguous, their file name; an
//! archive (tar, tar.gz, tar.xz, zip — recognised by content) is known by its own name *and*
//! its members are unpacked (through [`crate::archive`], with the escrow's safety checks and
//! bounds: a member named twice is refused, never one of the two picked) and known as a
//! folder's files are. Two inputs that give one name different bytes make the set ambiguous: an error.
//!
//! Only regular files are read. An input that is a FIFO, a socket or a device is refused before
//! it is opened (nothing blocks); a folder's files are opened beneath the folder through no
//! symlink ([`crate::beneath`]), and a symlink in a folder is not a shipped file: nothing outside
//! the folder is read as part of it.
//!
//! A signal stops the gathering between two entries, or inside unpacking and hashing; bundles
//! are unpacked into the caller's work folder, which goes with the error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::archive::Policy;
use crate::beneath::Tree;
use crate::hash::{hash_reader, Hashes};

/// One shipped file.
#[derive(Debug, Clone)]
pub struct ShippedFile {
    /// Where it came from: a path, or `bundle.tar.gz//member` for an archive member.
    pub origin: String,
    /// Where its bytes are now (an unpacked member lives in the work folder).
    pub file: PathBuf,
    pub hashes: Hashes,
    /// How to find it in a flash dump without its bytes, written into the attestation
    /// ([`crate::dump::seek`]): computed while its bytes are at hand (a bundle's member is gone
    /// once the verification ends).
    pub locator: Option<crate::dump::seek::Locator>,
}

/// Files by the names they can be matched with.
#[derive(Debug, Default)]
pub(crate) struct ShippedSet {
    by_name: BTreeMap<String, ShippedFile>,
}

/// Why the shipped set could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read shipped file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to unpack shipped bundle `{}`", path.display())]
    Bundle {
        path: PathBuf,
        #[source]
        source: crate::archive::Error,
    },
    #[error(transparent)]
    BadLimit(#[from] crate::archive::limits::BadValue),
    #[error("the shipped set names `{name}` twice with different bytes: `{first}` and `{second}`")]
    Ambiguous {
        name: String,
        first: String,
        second: String,
    },
    #[error("{0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl ShippedSet {
    /// Gather `inputs`; archives are unpacked below `scratch`.
    pub(crate) fn collect(inputs: &[PathBuf], scratch: &Path) -> Result<ShippedSet, Error> {
        let mut found: Vec<Found> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let io = |source| Error::Io {
                path: input.clone(),
                source,
            };
            // The type is read before anything is opened: a FIFO or a device named as shipped
            // is refused at once instead of blocking.
            let meta = crate::beneath::stat_file_or_dir(input).map_err(|e| match e {
                crate::beneath::Error::Io { source, .. } => io(source),
                e => io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    e.to_string(),
                )),
            })?;
            let shown = input.display().to_string();
            if meta.is_dir() {
                add_folder(&mut found, input, &shown)?;
                continue;
            }
            found.push((
                vec![file_name(input)],
                shown.clone(),
                input.clone(),
                Read::Named,
            ));
            if !is_bundle(input).map_err(io)? {
                continue;
            }
            let bundle_err = |source| Error::Bundle {
                path: input.clone(),
                source,
            };
            let mut file = std::fs::File::open(input).map_err(io)?;
            let format = match crate::archive::unpackable_format(input, &mut file) {
                Ok(Some(format)) => format,
                // A compressed file that holds no archive (`fw.img.gz`) is just a file.
                Ok(None) | Err(crate::archive::Error::Corrupt { .. }) => continue,
                Err(e) => return Err(bundle_err(e)),
            };
            let dest = scratch.join(format!("shipped-{i}"));
            let limits = crate::archive::Limits::from_env()?;
            crate::archive::unpack(input, &mut file, format, &dest, Policy::Source, limits)
                .map_err(bundle_err)?;
            add_folder(&mut found, &dest, &format!("{shown}/"))?;
        }
        let read: Vec<Result<(Hashes, crate::dump::seek::Locator), Error>> = found
            .par_iter()
            .map(|(_, _, file, how)| {
                let io = |source| Error::Io {
                    path: file.clone(),
                    source,
                };
                let handle = match how {
                    Read::Named => crate::beneath::open_regular(file),
                    Read::Beneath(tree, rel) => tree
                        .open_file(rel, crate::beneath::Links::None)
                        .map(|o| o.file),
                }
                .map_err(|e| match e {
                    crate::beneath::Error::Io { source, .. } => io(source),
                    e => io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    )),
                })?;
                let hashes = hash_reader(&handle).map_err(io)?;
                let locator = crate::dump::seek::locator_of(&handle, hashes.size).map_err(io)?;
                Ok((hashes, locator))
            })
            .collect();
        let mut set = ShippedSet::default();
        for ((names, origin, file, _), one) in found.into_iter().zip(read) {
            let (hashes, locator) = one?;
            let shipped = ShippedFile {
                origin,
                file,
                hashes,
                locator: Some(locator),
            };
            for name in names {
                set.insert(name, shipped.clone())?;
            }
        }
        Ok(set)
    }

    fn insert(&mut self, name: String, file: ShippedFile) -> Result<(), Error> {
        match self.by_name.get(&name) {
            Some(old) if old.hashes != file.hashes => Err(Error::Ambiguous {
                name,
                first: old.origin.clone(),
                second: file.origin,
            }),
            Some(_) => Ok(()),
            None => {
                self.by_name.insert(name, file);
                Ok(())
            }
        }
    }

    /// The file shipped under `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&ShippedFile> {
        self.by_name.get(name)
    }

    /// Every file once (a file known by several names is listed once), by origin.
    pub(crate) fn files(&self) -> Vec<ShippedFile> {
        let mut files: Vec<ShippedFile> = self.by_name.values().cloned().collect();
        files.sort_by(|a, b| a.origin.cmp(&b.origin));
        files.dedup_by(|a, b| a.origin == b.origin);
        files
    }
}

/// How a shipped file is opened: a path the user named, or a file beneath a shipped folder
/// (read through no symlink, so nothing outside the folder is read as part of it).
enum Read {
    Named,
    Beneath(Arc<Tree>, PathBuf),
}

/// A file found: the names it is known by, where it came from, where it is, how to open it.
type Found = (Vec<String>, String, PathBuf, Read);

/// Every regular file below `root`, known by its relative path and, when unique, its file
/// name. A symlink in the folder is not a shipped file and is not followed.
fn add_folder(found: &mut Vec<Found>, root: &Path, shown: &str) -> Result<(), Error> {
    let tree = Arc::new(
        Tree::open_named(root, "shipped folder").map_err(|e| Error::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?,
    );
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        crate::interrupt::check()?;
        let entry = entry.map_err(|e| Error::Io {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            files.push((rel.to_string_lossy().into_owned(), entry.into_path()));
        }
    }
    let mut base_count: BTreeMap<String, usize> = BTreeMap::new();
    for (_, path) in &files {
        *base_count.entry(file_name(path)).or_default() += 1;
    }
    for (rel, path) in files {
        let mut names = vec![rel.clone()];
        let base = file_name(&path);
        if base != rel && base_count[&base] == 1 {
            names.push(base);
        }
        let below = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        // An archive's members read `bundle.tar.gz//member`, a folder's `dir/member`.
        found.push((
            names,
            format!("{shown}/{rel}"),
            path,
            Read::Beneath(Arc::clone(&tree), below),
        ));
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True when the file's content is an archive whose members can be shipped artifacts.
fn is_bundle(path: &Path) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut head = vec![0u8; crate::archive::SNIFF_LEN];
    let mut file = crate::beneath::open_regular(path).map_err(|e| match e {
        crate::beneath::Error::Io { source, .. } => source,
        e => std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    let n = file.read(&mut head)?;
    Ok(matches!(
        crate::archive::sniff(&head[..n]),
        Some(
            crate::archive::Format::Tar
                | crate::archive::Format::Gzip
                | crate::archive::Format::Xz
                | crate::archive::Format::Zip
        )
    ))
}
