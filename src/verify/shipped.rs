//! The shipped set: the binaries as delivered, matched to artifacts by name.
//!
//! Operators receive files, folders, or a vendor bundle. A file is known by its name; a
//! folder's files by their path below it and, when that is unambiguous, their file name; an
//! archive (tar, tar.gz, tar.xz, zip — recognised by content) is known by its own name *and*
//! its members are unpacked (with the escrow's safety checks) and known as a folder's files
//! are. Two inputs that give one name different bytes make the set ambiguous: an error. A
//! signal stops the gathering between two entries, or inside unpacking and hashing; bundles
//! are unpacked into the caller's work folder, which goes with the error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::hash::{hash_file, Hashes};

/// One shipped file.
#[derive(Debug, Clone)]
pub struct ShippedFile {
    /// Where it came from: a path, or `bundle.tar.gz//member` for an archive member.
    pub origin: String,
    /// Where its bytes are now (an unpacked member lives in the work folder).
    pub file: PathBuf,
    pub hashes: Hashes,
}

/// Files by the names they can be matched with.
#[derive(Debug, Default)]
pub struct ShippedSet {
    by_name: BTreeMap<String, ShippedFile>,
}

/// Why the shipped set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
        source: crate::escrow::Error,
    },
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
    pub fn collect(inputs: &[PathBuf], scratch: &Path) -> Result<ShippedSet, Error> {
        let mut found: Vec<(Vec<String>, String, PathBuf)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let io = |source| Error::Io {
                path: input.clone(),
                source,
            };
            let meta = std::fs::metadata(input).map_err(io)?;
            let shown = input.display().to_string();
            if meta.is_dir() {
                add_folder(&mut found, input, &shown)?;
                continue;
            }
            found.push((vec![file_name(input)], shown.clone(), input.clone()));
            if !is_bundle(input).map_err(io)? {
                continue;
            }
            let bundle_err = |source| Error::Bundle {
                path: input.clone(),
                source,
            };
            let escrow = match crate::escrow::digest(input) {
                Ok(escrow) => escrow,
                // A compressed file that holds no archive (`fw.img.gz`) is just a file.
                Err(
                    crate::escrow::Error::UnknownFormat { .. }
                    | crate::escrow::Error::Corrupt { .. },
                ) => continue,
                Err(e) => return Err(bundle_err(e)),
            };
            let dest = scratch.join(format!("shipped-{i}"));
            crate::escrow::unpack(input, &escrow.sha256, &dest).map_err(bundle_err)?;
            add_folder(&mut found, &dest, &format!("{shown}/"))?;
        }
        let hashed: Vec<Result<Hashes, Error>> = found
            .par_iter()
            .map(|(_, _, file)| {
                hash_file(file).map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })
            })
            .collect();
        let mut set = ShippedSet::default();
        for ((names, origin, file), hashes) in found.into_iter().zip(hashed) {
            let shipped = ShippedFile {
                origin,
                file,
                hashes: hashes?,
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
    pub fn get(&self, name: &str) -> Option<&ShippedFile> {
        self.by_name.get(name)
    }

    /// Every file once (a file known by several names is listed once), by origin.
    pub fn files(&self) -> Vec<ShippedFile> {
        let mut files: Vec<ShippedFile> = self.by_name.values().cloned().collect();
        files.sort_by(|a, b| a.origin.cmp(&b.origin));
        files.dedup_by(|a, b| a.origin == b.origin);
        files
    }
}

/// Every file below `root`, known by its relative path and, when unique, its file name.
fn add_folder(
    found: &mut Vec<(Vec<String>, String, PathBuf)>,
    root: &Path,
    shown: &str,
) -> Result<(), Error> {
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
        // An archive's members read `bundle.tar.gz//member`, a folder's `dir/member`.
        found.push((names, format!("{shown}/{rel}"), path));
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
    let n = std::fs::File::open(path)?.read(&mut head)?;
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
