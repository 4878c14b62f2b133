//! The three ways into a [`Sink`]: a tar stream, a zip file and a directory walk. Each is one
//! loop over entries that only says what an entry is; the sink decides whether it is allowed,
//! charges it and writes it.

use std::fs::{self, File, FileType};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::extract::{chain, Error, Policy, Sink};
use super::name::{key, shown, Reason};

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
/// Longest symlink target Linux accepts.
const PATH_MAX: u64 = 4096;

/// Extract a tar stream (already decompressed), then read it to its end so that a gzip or xz
/// wrapper checks its trailer too (what is read past the end is charged as bytes).
pub(super) fn tar(reader: impl Read, sink: &mut Sink) -> Result<(), Error> {
    let corrupt = |sink: &Sink, e: &io::Error| sink.corrupt(chain(e));
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| corrupt(sink, &e))? {
        crate::interrupt::check()?;
        let mut entry = entry.map_err(|e| corrupt(sink, &e))?;
        sink.entry()?;
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry.header().mode().map_err(|e| corrupt(sink, &e))?;
                let size = entry.size();
                sink.file(&name, mode, Some(size), &mut entry)?;
            }
            // Reading a sparse entry yields its holes as zeros: its length is not the header's.
            EntryType::GNUSparse if sink.policy() == Policy::Root => {
                let mode = entry.header().mode().map_err(|e| corrupt(sink, &e))?;
                sink.file(&name, mode, None, &mut entry)?;
            }
            EntryType::Directory => {
                let mode = entry.header().mode().map_err(|e| corrupt(sink, &e))?;
                sink.dir(&name, mode)?;
            }
            EntryType::Symlink | EntryType::Link => {
                let Some(target) = entry.link_name_bytes() else {
                    return Err(sink.corrupt(format!("link `{}` has no target", shown(&name))));
                };
                if kind == EntryType::Symlink {
                    sink.symlink(&name, &target)?;
                } else {
                    sink.hard_link(&name, &target)?;
                }
            }
            // A pax global header (git archive writes the commit id there): metadata only.
            EntryType::XGlobalHeader => {}
            EntryType::Char => sink.special(&name, "character device")?,
            EntryType::Block => sink.special(&name, "block device")?,
            EntryType::Fifo => sink.special(&name, "fifo")?,
            EntryType::GNUSparse => return Err(sink.refuse(&name, Reason::Special("sparse file"))),
            _ => return Err(sink.refuse(&name, Reason::Special("tar entry of an unknown type"))),
        }
    }
    // Checked: a trailer of compressed zeros is long to read. (An interrupt that reads as
    // "corrupt" here is still an interrupt: the command line asks `interrupt::received`.)
    let mut rest = crate::interrupt::Checked(archive.into_inner());
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink.charge_read(n as u64)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(sink, &e)),
        }
    }
}

/// The raw names of a zip's central directory records, in order, read from `start` (the
/// directory's offset). The zip crate keys its entries by decoded name, so a name listed twice
/// shows up there once: this is how duplicates are seen. At most `max` names are read.
pub(crate) fn zip_names(
    file: &mut (impl Read + Seek),
    start: u64,
    max: usize,
) -> io::Result<Vec<Vec<u8>>> {
    file.seek(SeekFrom::Start(start))?;
    let mut file = io::BufReader::new(file);
    let mut names = Vec::new();
    let mut header = [0u8; 46];
    while names.len() < max {
        match file.read_exact(&mut header[..4]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            other => other?,
        }
        if header[..4] != *b"PK\x01\x02" {
            break;
        }
        file.read_exact(&mut header[4..])?;
        let field = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let (name_len, extra_len, comment_len) = (field(28), field(30), field(32));
        let mut name = Vec::new();
        (&mut file).take(name_len).read_to_end(&mut name)?;
        let skip = extra_len + comment_len;
        if name.len() as u64 != name_len
            || io::copy(&mut (&mut file).take(skip), &mut io::sink())? != skip
        {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        names.push(name);
    }
    Ok(names)
}

/// The first name in `names` that is one path with an earlier one.
pub(crate) fn first_duplicate(names: &[Vec<u8>]) -> Option<&[u8]> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|name| !seen.insert(key(name)))
        .map(Vec::as_slice)
}

/// Extract a zip archive. Every central directory record counts, also one the zip crate hides
/// behind an equal name; encrypted entries are refused; symlinks are recognised by their unix
/// mode.
pub(super) fn zip(file: &mut File, sink: &mut Sink) -> Result<(), Error> {
    let corrupt = |sink: &Sink, e: &zip::result::ZipError| sink.corrupt(chain(e));
    let archive = zip::ZipArchive::new(&mut *file).map_err(|e| corrupt(sink, &e))?;
    let (start, len) = (archive.central_directory_start(), archive.len());
    // One record past the crate's count is enough to see that it hid one.
    let names = zip_names(archive.into_inner(), start, len.saturating_add(1))
        .map_err(|e| sink.corrupt(format!("its central directory: {}", chain(&e))))?;
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        sink.entry()?;
        if !seen.insert(key(name)) {
            return Err(sink.refuse(name, Reason::Duplicate));
        }
    }
    if names.len() != len {
        return Err(sink.corrupt(format!(
            "its central directory lists {} entries where {len} were read",
            names.len()
        )));
    }
    let mut archive = zip::ZipArchive::new(&mut *file).map_err(|e| corrupt(sink, &e))?;
    for i in 0..len {
        crate::interrupt::check()?;
        let (name, encrypted) = {
            let raw = archive.by_index_raw(i).map_err(|e| corrupt(sink, &e))?;
            (raw.name_raw().to_vec(), raw.encrypted())
        };
        if encrypted {
            return Err(sink.refuse(&name, Reason::Encrypted));
        }
        let mut entry = archive.by_index(i).map_err(|e| corrupt(sink, &e))?;
        let mode = entry.unix_mode().unwrap_or(0);
        if entry.is_dir() || mode & S_IFMT == S_IFDIR {
            sink.dir(&name, mode)?;
            continue;
        }
        match mode & S_IFMT {
            0 | S_IFREG => {
                let size = entry.size();
                sink.file(&name, mode, Some(size), &mut entry)?;
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
                        shown(&name)
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
                sink.special(&name, what)?;
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
            sink.entry()?;
            sink.dir(name, 0o755)?;
        } else if kind.is_symlink() {
            sink.entry()?;
            let target = fs::read_link(path).map_err(io_err)?;
            sink.symlink(name, target.as_os_str().as_bytes())?;
        } else if kind.is_file() {
            sink.entry()?;
            let mut file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(io_err)?;
            let meta = file.metadata().map_err(io_err)?;
            if !meta.is_file() {
                return Err(sink.refuse(name, Reason::Special(special(meta.file_type()))));
            }
            sink.file(name, meta.permissions().mode(), None, &mut file)?;
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
