//! What a comparison reads: byte spans of files ([`Blob`]) and the member lists of
//! directories and archives ([`Member`]).
//!
//! Nothing is held in memory whole. A tar or cpio member, or a stored zip member, is a span of
//! its archive's file, read in place; a deflated zip member, and the content of a gzip or xz
//! stream, is first streamed to a temporary file that lives as long as the comparison of
//! that subtree, charged to the comparison's [`Budget`] as it is written. Member paths are
//! [`crate::archive::name::key`]s, so `./fw.img`, `/fw.img` and `fw.img`, or `a//b` and
//! `a/./b`, match; an archive that lists one path twice (zip's central directory included) is
//! not read as members at all ([`Fault::Corrupt`]), since matching would have to pick one.
//! Every member listed is charged as an entry.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::archive::limits::{copy_bounded, Budget, CopyError, Exceeded};
use crate::archive::{name, sniff, Format, SNIFF_LEN};
use crate::firmware::unix_time;

/// Why a container could not be read: damaged (the comparison goes on, as bytes) or past a
/// bound (the comparison stops).
#[derive(Debug)]
pub(super) enum Fault {
    Corrupt(String),
    Bound(Exceeded),
}

impl From<String> for Fault {
    fn from(detail: String) -> Self {
        Fault::Corrupt(detail)
    }
}

impl From<Exceeded> for Fault {
    fn from(e: Exceeded) -> Self {
        Fault::Bound(e)
    }
}

/// Open the file behind a blob for reading, refusing (without blocking) anything but a regular
/// file: the listing saw a regular file, but a path can be swapped for a FIFO after it.
fn open_blob(path: &Path) -> io::Result<File> {
    crate::beneath::open_regular(path).map_err(|e| match e {
        crate::beneath::Error::Io { source, .. } => source,
        e => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    })
}

/// A span of a file on disk: a whole file, or a member inside an archive file.
#[derive(Debug, Clone)]
pub(super) struct Blob {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Blob {
    pub(super) fn file(path: &Path) -> io::Result<Blob> {
        Ok(Blob {
            path: path.to_owned(),
            offset: 0,
            len: std::fs::metadata(path)?.len(),
        })
    }

    /// A stream of the span's bytes.
    pub(super) fn reader(&self) -> io::Result<io::Take<File>> {
        let mut f = open_blob(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.len))
    }

    /// Up to `len` bytes from `pos` in the span (fewer at its end).
    pub(super) fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let avail = self.len.saturating_sub(pos);
        let want = usize::try_from(avail).map_or(len, |a| a.min(len));
        let mut buf = vec![0u8; want];
        let f = open_blob(&self.path)?;
        let mut filled = 0;
        while filled < want {
            let n = f.read_at(&mut buf[filled..], self.offset + pos + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(super) fn format(&self) -> io::Result<Option<Format>> {
        Ok(sniff(&self.read_at(0, SNIFF_LEN)?))
    }

    /// The sub-span `offset..offset + len`, or `None` when it runs past this one.
    pub(super) fn slice(&self, offset: u64, len: u64) -> Option<Blob> {
        (offset.checked_add(len)? <= self.len).then(|| Blob {
            path: self.path.clone(),
            offset: self.offset + offset,
            len,
        })
    }
}

impl crate::firmware::Source for Blob {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        Blob::read_at(self, pos, len)
    }
}

/// What kind of entry a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hard link",
            Kind::Other => "special",
        }
    }
}

/// Where a member's bytes are.
#[derive(Debug, Clone)]
pub(super) enum Content {
    None,
    Blob(Blob),
    /// A compressed zip entry (its index and its compressed bytes), extracted only when the
    /// compressed bytes differ.
    Zip(usize, Blob),
}

/// One entry of a directory or archive. `meta` holds the fields compared as metadata, in a
/// fixed order, as display strings.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub path: String,
    pub kind: Kind,
    pub meta: Vec<(&'static str, String)>,
    pub content: Content,
}

/// Fields that are archive metadata proper (what `archive-metadata` allows); other fields
/// (kind, link target) are content.
pub(super) const METADATA_FIELDS: &[&str] = &["mtime", "mode", "uid", "gid", "uname", "gname"];

fn clean_path(raw: &[u8]) -> String {
    String::from_utf8_lossy(&name::key(raw)).into_owned()
}

/// Members of an archive of `format` (tar, cpio or zip) held in `blob`, each charged to
/// `budget`. Refused when two members are one path.
pub(super) fn list(format: Format, blob: &Blob, budget: &mut Budget) -> Result<Vec<Member>, Fault> {
    let members = match format {
        Format::Tar => list_tar(blob, budget)?,
        Format::Cpio => list_cpio(blob, budget)?,
        Format::Zip => list_zip(blob, budget)?,
        Format::Gzip | Format::Xz | Format::Elf => {
            return Err(format!("{} is no archive", format.name()).into())
        }
    };
    let mut seen = HashSet::new();
    if let Some(dup) = members.iter().find(|m| !seen.insert(m.path.as_str())) {
        return Err(format!("member `{}` appears twice", dup.path).into());
    }
    Ok(members)
}

fn list_tar(blob: &Blob, budget: &mut Budget) -> Result<Vec<Member>, Fault> {
    let mut archive = tar::Archive::new(blob.reader().map_err(|e| e.to_string())?);
    let mut members = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        budget.charge_entry()?;
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            _ => Kind::Other,
        };
        let field = |r: io::Result<u64>| r.map_or_else(|_| "?".to_owned(), |v| v.to_string());
        let name = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let mut meta = vec![
            (
                "mtime",
                h.mtime().map_or_else(|_| "?".to_owned(), unix_time),
            ),
            ("mode", h.mode().map_or("?".into(), |m| format!("{m:o}"))),
            ("uid", field(h.uid())),
            ("gid", field(h.gid())),
            ("uname", name(h.username_bytes())),
            ("gname", name(h.groupname_bytes())),
        ];
        if let Some(target) = entry.link_name_bytes() {
            meta.push(("link", String::from_utf8_lossy(&target).into_owned()));
        }
        let content = if kind == Kind::File {
            let size = entry.size();
            let data = blob.slice(entry.raw_file_position(), size).ok_or_else(|| {
                format!(
                    "member `{}` runs past the end",
                    clean_path(&entry.path_bytes())
                )
            })?;
            Content::Blob(data)
        } else {
            Content::None
        };
        members.push(Member {
            path: clean_path(&entry.path_bytes()),
            kind,
            meta,
            content,
        });
    }
    Ok(members)
}

/// cpio "new ASCII" (`070701`/`070702`): a 110-byte hex header, the name, the data, each
/// padded to 4 bytes, up to `TRAILER!!!`.
fn list_cpio(blob: &Blob, budget: &mut Budget) -> Result<Vec<Member>, Fault> {
    const HEADER: u64 = 110;
    let mut members = Vec::new();
    let mut pos = 0u64;
    loop {
        budget.charge_entry()?;
        let h = blob.read_at(pos, 110).map_err(|e| e.to_string())?;
        if h.len() < 110 || !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(format!("no cpio header at offset {pos}").into());
        }
        let field = |i: usize| -> Result<u64, String> {
            let hex = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).map_err(|e| e.to_string())?;
            u64::from_str_radix(hex, 16).map_err(|_| format!("bad cpio field at offset {pos}"))
        };
        let (mode, uid, gid, mtime, size, namesize) = (
            field(1)?,
            field(2)?,
            field(3)?,
            field(5)?,
            field(6)?,
            field(11)?,
        );
        let name_len = usize::try_from(namesize)
            .map_err(|e| e.to_string())?
            .min(4096);
        let raw = blob
            .read_at(pos + HEADER, name_len)
            .map_err(|e| e.to_string())?;
        let name = raw.strip_suffix(&[0]).unwrap_or(&raw);
        let data_at = (pos + HEADER + namesize).next_multiple_of(4);
        if name == b"TRAILER!!!" {
            return Ok(members);
        }
        let kind = match mode & 0o170_000 {
            0o100_000 => Kind::File,
            0o040_000 => Kind::Dir,
            0o120_000 => Kind::Symlink,
            _ => Kind::Other,
        };
        let data = blob
            .slice(data_at, size)
            .ok_or_else(|| format!("member `{}` runs past the end", clean_path(name)))?;
        let mut meta = vec![
            ("mtime", unix_time(mtime)),
            ("mode", format!("{:o}", mode & 0o7777)),
            ("uid", uid.to_string()),
            ("gid", gid.to_string()),
        ];
        let content = match kind {
            Kind::File => Content::Blob(data),
            Kind::Symlink => {
                let target = blob.read_at(data_at, 4096).map_err(|e| e.to_string())?;
                let target = &target[..target.len().min(usize::try_from(size).unwrap_or(0))];
                meta.push(("link", String::from_utf8_lossy(target).into_owned()));
                Content::None
            }
            _ => Content::None,
        };
        members.push(Member {
            path: clean_path(name),
            kind,
            meta,
            content,
        });
        pos = (data_at + size).next_multiple_of(4);
    }
}

fn list_zip(blob: &Blob, budget: &mut Budget) -> Result<Vec<Member>, Fault> {
    let zip = zip::ZipArchive::new(blob.reader().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    // The crate shows a name listed twice once: count the central directory's own records.
    let (start, len) = (zip.central_directory_start(), zip.len());
    let names = crate::archive::read::zip_names(&mut zip.into_inner(), start, len + 1)
        .map_err(|e| format!("its central directory: {e}"))?;
    if let Some(dup) = crate::archive::read::first_duplicate(&names) {
        return Err(format!("member `{}` appears twice", clean_path(dup)).into());
    }
    if names.len() != len {
        return Err(format!(
            "its central directory lists {} entries where {len} were read",
            names.len()
        )
        .into());
    }
    let mut zip = zip::ZipArchive::new(blob.reader().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for i in 0..zip.len() {
        budget.charge_entry()?;
        let f = zip.by_index_raw(i).map_err(|e| e.to_string())?;
        let kind = if f.is_dir() {
            Kind::Dir
        } else if f.is_symlink() {
            Kind::Symlink
        } else {
            Kind::File
        };
        let mtime = f.last_modified().map_or_else(String::new, |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        });
        let mut meta = vec![("mtime", mtime)];
        if let Some(mode) = f.unix_mode() {
            meta.push(("mode", format!("{:o}", mode & 0o7777)));
        }
        meta.push(("compression", f.compression().to_string()));
        let content = match (kind, f.compression()) {
            (Kind::Dir, _) => Content::None,
            (_, zip::CompressionMethod::Stored) => Content::Blob(
                blob.slice(f.data_start(), f.compressed_size())
                    .ok_or_else(|| format!("member `{}` runs past the end", f.name()))?,
            ),
            _ => Content::Zip(
                i,
                blob.slice(f.data_start(), f.compressed_size())
                    .ok_or_else(|| format!("member `{}` runs past the end", f.name()))?,
            ),
        };
        members.push(Member {
            path: clean_path(f.name_raw()),
            kind,
            meta,
            content,
        });
    }
    Ok(members)
}

/// Stream zip entry `index` of `blob` into a new file in `dir`.
pub(super) fn extract_zip(
    blob: &Blob,
    index: usize,
    dir: &Path,
    budget: &mut Budget,
) -> Result<Blob, Fault> {
    let mut zip = zip::ZipArchive::new(blob.reader().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut entry = zip.by_index(index).map_err(|e| e.to_string())?;
    spool(&mut entry, dir, budget)
}

/// Stream the decompressed content of a gzip or xz `blob` into a new file in `dir`.
pub(super) fn decompress(
    format: Format,
    blob: &Blob,
    dir: &Path,
    budget: &mut Budget,
) -> Result<Blob, Fault> {
    let reader = blob.reader().map_err(|e| e.to_string())?;
    match format {
        Format::Gzip => spool(&mut flate2::read::MultiGzDecoder::new(reader), dir, budget),
        Format::Xz => spool(
            &mut xz2::read::XzDecoder::new_multi_decoder(reader),
            dir,
            budget,
        ),
        _ => Err(format!("{} is no compressed stream", format.name()).into()),
    }
}

/// Write `reader` to a new file in `dir`, charging every chunk before it is written.
fn spool(reader: &mut impl Read, dir: &Path, budget: &mut Budget) -> Result<Blob, Fault> {
    let (mut file, path) = tempfile::NamedTempFile::new_in(dir)
        .and_then(|t| t.keep().map_err(|e| e.error))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 << 10];
    let len = match copy_bounded(reader, &mut file, budget, &mut buf) {
        Ok(len) => len,
        Err(CopyError::Exceeded(e)) => return Err(Fault::Bound(e)),
        // An interrupt that reads as "corrupt" here is still an interrupt: the caller asks.
        Err(CopyError::Interrupted(e)) => return Err(e.to_string().into()),
        Err(CopyError::Read(e) | CopyError::Write(e)) => return Err(e.to_string().into()),
    };
    Ok(Blob {
        path,
        offset: 0,
        len,
    })
}

/// The header fields of a gzip stream that say nothing about its content, and the header's
/// length. `None` when the header is malformed.
pub(super) fn gzip_header(blob: &Blob) -> Option<(Vec<(&'static str, String)>, u64)> {
    let head = blob.read_at(0, 64 << 10).ok()?;
    if head.len() < 10 || head[..3] != [0x1f, 0x8b, 8] {
        return None;
    }
    let flags = head[3];
    let mtime = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let mut pos = 10usize;
    if flags & 4 != 0 {
        let xlen = usize::from(u16::from_le_bytes(head.get(10..12)?.try_into().ok()?));
        pos += 2 + xlen;
    }
    let take_string = |pos: &mut usize| -> Option<String> {
        let rest = head.get(*pos..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        *pos += end + 1;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let name = if flags & 8 != 0 {
        take_string(&mut pos)?
    } else {
        String::new()
    };
    if flags & 16 != 0 {
        take_string(&mut pos)?;
    }
    if flags & 2 != 0 {
        pos += 2;
    }
    let fields = vec![
        ("gzip mtime", unix_time(u64::from(mtime))),
        ("gzip name", name),
        ("gzip os", head[9].to_string()),
        ("gzip xfl", head[8].to_string()),
    ];
    Some((fields, pos as u64))
}

/// Members of the directory `root`, recursively, in name order. Only what a tree digest holds
/// is metadata here (kind, executable bit, link target): mtimes and owners on disk belong to
/// whoever copied the files, not to the build.
pub(super) fn list_dir(root: &Path) -> Result<Vec<Member>, super::Error> {
    let mut members = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| super::Error::Io {
            path: e.path().unwrap_or(root).to_owned(),
            source: e.into(),
        })?;
        let io_err = |source| super::Error::Io {
            path: entry.path().to_owned(),
            source,
        };
        let ft = entry.file_type();
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let mut meta = Vec::new();
        let (kind, content) = if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(io_err)?;
            meta.push(("link", target.to_string_lossy().into_owned()));
            (Kind::Symlink, Content::None)
        } else if ft.is_dir() {
            (Kind::Dir, Content::None)
        } else if ft.is_file() {
            let md = entry.metadata().map_err(|e| io_err(e.into()))?;
            let exec = md.permissions().mode() & 0o111 != 0;
            meta.push(("executable", exec.to_string()));
            (
                Kind::File,
                Content::Blob(Blob::file(entry.path()).map_err(io_err)?),
            )
        } else {
            (Kind::Other, Content::None)
        };
        members.push(Member {
            path: rel.to_string_lossy().into_owned(),
            kind,
            meta,
            content,
        });
    }
    Ok(members)
}
