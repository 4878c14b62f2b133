//! The three ways into a [`Sink`]: a tar stream, a zip file and a directory walk. Each only
//! says what an entry is; the sink decides whether it is allowed and writes it.

use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::sink::{chain, Sink};
use super::{Error, Reason};

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
/// Longest symlink target Linux accepts.
const PATH_MAX: u64 = 4096;

/// Extract a tar stream (already decompressed), then read it to its end so that a gzip or xz
/// wrapper checks its trailer too.
pub(super) fn tar(reader: impl Read, sink: &mut Sink) -> Result<(), Error> {
    let corrupt = |sink: &Sink, e: &io::Error| sink.corrupt(chain(e));
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| corrupt(sink, &e))? {
        crate::interrupt::check()?;
        let mut entry = entry.map_err(|e| corrupt(sink, &e))?;
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry.header().mode().map_err(|e| corrupt(sink, &e))?;
                let size = entry.size();
                sink.file(&name, mode & 0o111 != 0, Some(size), &mut entry)?;
            }
            EntryType::Directory => sink.dir(&name)?,
            EntryType::Symlink | EntryType::Link => {
                let Some(target) = entry.link_name_bytes() else {
                    return Err(sink.corrupt(format!(
                        "link `{}` has no target",
                        super::sink::shown(&name)
                    )));
                };
                if kind == EntryType::Symlink {
                    sink.symlink(&name, &target)?;
                } else {
                    sink.hard_link(&name, &target)?;
                }
            }
            // A pax global header (git archive writes the commit id there): metadata only.
            EntryType::XGlobalHeader => {}
            EntryType::Char => return Err(sink.refuse(&name, Reason::Special("character device"))),
            EntryType::Block => return Err(sink.refuse(&name, Reason::Special("block device"))),
            EntryType::Fifo => return Err(sink.refuse(&name, Reason::Special("fifo"))),
            EntryType::GNUSparse => return Err(sink.refuse(&name, Reason::Special("sparse file"))),
            _ => return Err(sink.refuse(&name, Reason::Special("tar entry of an unknown type"))),
        }
    }
    // Checked: a trailer of compressed zeros is long to read. (An interrupt that reads as
    // "corrupt" here is still an interrupt: the command line asks `interrupt::received`.)
    let mut rest = crate::interrupt::Checked(archive.into_inner());
    io::copy(&mut rest, &mut io::sink()).map_err(|e| corrupt(sink, &e))?;
    Ok(())
}

/// Extract a zip archive. Encrypted entries are refused; symlinks are recognised by their
/// unix mode.
pub(super) fn zip(file: &mut File, sink: &mut Sink) -> Result<(), Error> {
    let corrupt = |sink: &Sink, e: &zip::result::ZipError| sink.corrupt(chain(e));
    let mut archive = zip::ZipArchive::new(file).map_err(|e| corrupt(sink, &e))?;
    for i in 0..archive.len() {
        crate::interrupt::check()?;
        let (name, encrypted) = {
            let raw = archive.by_index_raw(i).map_err(|e| corrupt(sink, &e))?;
            (raw.name().as_bytes().to_vec(), raw.encrypted())
        };
        if encrypted {
            return Err(sink.refuse(&name, Reason::Encrypted));
        }
        let mut entry = archive.by_index(i).map_err(|e| corrupt(sink, &e))?;
        let mode = entry.unix_mode().unwrap_or(0);
        if entry.is_dir() || mode & S_IFMT == S_IFDIR {
            sink.dir(&name)?;
            continue;
        }
        match mode & S_IFMT {
            0 | S_IFREG => {
                let size = entry.size();
                sink.file(&name, mode & 0o111 != 0, Some(size), &mut entry)?;
            }
            S_IFLNK => {
                let mut target = Vec::new();
                entry
                    .by_ref()
                    .take(PATH_MAX + 1)
                    .read_to_end(&mut target)
                    .map_err(|e| sink.corrupt(chain(&e)))?;
                if target.len() as u64 > PATH_MAX {
                    return Err(sink.corrupt(format!(
                        "symlink `{}` has a target longer than {PATH_MAX} bytes",
                        super::sink::shown(&name)
                    )));
                }
                sink.symlink(&name, &target)?;
            }
            other => {
                let what = match other {
                    0o020_000 => "character device",
                    0o060_000 => "block device",
                    0o010_000 => "fifo",
                    0o140_000 => "socket",
                    _ => "zip entry of an unknown type",
                };
                return Err(sink.refuse(&name, Reason::Special(what)));
            }
        }
    }
    Ok(())
}

/// Copy the directory `root`: files, directories and symlinks, nothing else. Files are opened
/// without following a symlink and without blocking, and checked again once open, so that a
/// path swapped after the walk saw it cannot turn into a link out of the tree or a fifo.
pub(super) fn directory(root: &Path, sink: &mut Sink) -> Result<(), Error> {
    for item in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        crate::interrupt::check()?;
        let item = item.map_err(|e| Error::Io {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        let path = item.path();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let name = path
            .strip_prefix(root)
            .expect("walkdir yields paths below its root")
            .as_os_str()
            .as_bytes();
        let kind = item.file_type();
        if kind.is_dir() {
            sink.dir(name)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(path).map_err(io_err)?;
            sink.symlink(name, target.as_os_str().as_bytes())?;
        } else if kind.is_file() {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(io_err)?;
            let meta = file.metadata().map_err(io_err)?;
            if !meta.is_file() {
                return Err(sink.refuse(name, Reason::Special(special(meta.file_type()))));
            }
            let executable = meta.permissions().mode() & 0o111 != 0;
            sink.file(name, executable, None, &mut file)?;
        } else {
            return Err(sink.refuse(name, Reason::Special(special(kind))));
        }
    }
    Ok(())
}

/// What a file that is neither a regular file, a directory nor a symlink is.
fn special(kind: FileType) -> &'static str {
    if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}
