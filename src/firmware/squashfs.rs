//! squashfs 4.0 filesystems (what `mksquashfs` writes), read with the `backhand` crate.
//!
//! The map holds the 96-byte superblock as a header (`mkfs_time` a timestamp; the table
//! offsets, `bytes_used` and the counts lengths that move when content does), the
//! filesystem's bytes after it as one span (`filesystem`: compressed data, fragments and
//! tables), and every file, directory, symlink and device by its path as a packed part
//! (`etc/passwd`): its metadata (`kind`, `mode`, `uid`, `gid`, `mtime`, a symlink's `target`)
//! as fields compared by value, a regular file's content unpacked by [`super::Unpacker::extract`]. Bytes after
//! `bytes_used` (the padding mksquashfs adds to a 4 KiB multiple) are the `padding` part.
//!
//! Decompression is ours, not backhand's, so that it is bounded: every metadata or data block
//! is inflated to at most the filesystem's block size (1 MiB at most), whatever a crafted
//! block claims. gzip (mksquashfs's default), xz, lzma and zstd are read (flate2, xz2, zstd);
//! lzo and lz4 images are refused with a note (no compressor of theirs is linked). backhand
//! reads the inode and directory tables into memory, which a crafted image could make large
//! but never larger than what the bounded blocks of the image decompress to; a panic inside
//! it is caught and the image read as corrupt.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};

use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::kind::Kind;
use backhand::{BackhandError, FilesystemReader, InnerNode, Node, SquashfsFileReader};

use super::{
    check_span, le, number, span, Error, Field, FieldKind, Format, Packed, Part, Role, Source,
};

const FORMAT: &str = "squashfs";
const SUPERBLOCK: u64 = 96;
/// squashfs's largest block size; no block inflates to more.
const MAX_BLOCK: u64 = 1 << 20;

pub(super) fn identify(source: &dyn Source) -> io::Result<bool> {
    let head = source.read_at(0, 32)?;
    Ok(head.starts_with(b"hsqs") && le(&head, 28, 2) == Some(4))
}

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        format: FORMAT,
        detail: detail.to_string(),
    }
}

/// The superblock's fields: (name, offset, length, kind).
const FIELDS: &[(&str, u64, u64, FieldKind)] = &[
    ("inode_count", 4, 4, FieldKind::Length),
    ("mkfs_time", 8, 4, FieldKind::Timestamp),
    ("block_size", 12, 4, FieldKind::Number),
    ("fragment_entry_count", 16, 4, FieldKind::Length),
    ("compression_id", 20, 2, FieldKind::Number),
    ("block_log", 22, 2, FieldKind::Number),
    ("flags", 24, 2, FieldKind::Number),
    ("id_count", 26, 2, FieldKind::Length),
    ("version", 28, 4, FieldKind::Number),
    ("root_inode_ref", 32, 8, FieldKind::Length),
    ("bytes_used", 40, 8, FieldKind::Length),
    ("id_table_start", 48, 8, FieldKind::Length),
    ("xattr_id_table_start", 56, 8, FieldKind::Length),
    ("inode_table_start", 64, 8, FieldKind::Length),
    ("directory_table_start", 72, 8, FieldKind::Length),
    ("fragment_table_start", 80, 8, FieldKind::Length),
    ("export_table_start", 88, 8, FieldKind::Length),
];

fn superblock(source: &dyn Source) -> Result<(Part, u64), Error> {
    check_span(FORMAT, "superblock", 0, SUPERBLOCK, source)?;
    let sb = source.read_at(0, super::to_usize(SUPERBLOCK))?;
    let mut fields = Vec::new();
    for &(name, off, len, kind) in FIELDS {
        let v = le(&sb, super::to_usize(off), super::to_usize(len))
            .ok_or_else(|| corrupt("short superblock"))?;
        let value = if kind == FieldKind::Timestamp {
            super::unix_time(v)
        } else {
            number(name, off, len, v, kind).value
        };
        fields.push(Field {
            name,
            offset: off,
            len,
            value,
            kind,
        });
    }
    let used = le(&sb, 40, 8).ok_or_else(|| corrupt("short superblock"))?;
    if used < SUPERBLOCK {
        return Err(corrupt(format!(
            "bytes_used {used} is smaller than the superblock"
        )));
    }
    check_span(FORMAT, "filesystem (bytes_used)", 0, used, source)?;
    Ok((
        Part {
            name: "superblock".into(),
            offset: 0,
            len: SUPERBLOCK,
            role: Role::Header,
            fields,
            packed: None,
        },
        used,
    ))
}

/// Positioned reads of a [`Source`] as a `Read + Seek` stream, for backhand.
struct SourceReader<'a> {
    source: &'a dyn Source,
    pos: u64,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.source.read_at(self.pos, buf.len())?;
        buf[..got.len()].copy_from_slice(&got);
        self.pos += got.len() as u64;
        Ok(got.len())
    }
}

impl Seek for SourceReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.source.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// Bounded decompression for backhand: no block inflates past [`MAX_BLOCK`].
#[derive(Clone, Copy)]
struct BoundedCompressor;

static BOUNDED: BoundedCompressor = BoundedCompressor;

fn inflate(mut reader: impl Read, out: &mut Vec<u8>) -> Result<(), BackhandError> {
    let start = out.len();
    (&mut reader).take(MAX_BLOCK + 1).read_to_end(out)?;
    if (out.len() - start) as u64 > MAX_BLOCK {
        return Err(BackhandError::CorruptedOrInvalidSquashfs);
    }
    Ok(())
}

impl CompressionAction for BoundedCompressor {
    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        match compressor {
            Compressor::None => inflate(bytes, out),
            Compressor::Gzip => inflate(flate2::read::ZlibDecoder::new(bytes), out),
            Compressor::Xz => inflate(xz2::read::XzDecoder::new(bytes), out),
            Compressor::Lzma => {
                let stream = xz2::stream::Stream::new_lzma_decoder(MAX_BLOCK * 4)
                    .map_err(|e| BackhandError::StdIo(io::Error::other(e)))?;
                inflate(xz2::read::XzDecoder::new_stream(bytes, stream), out)
            }
            Compressor::Zstd => inflate(zstd::stream::read::Decoder::new(bytes)?, out),
            Compressor::Lzo | Compressor::Lz4 => {
                Err(BackhandError::UnsupportedCompression(compressor))
            }
        }
    }

    fn compress(
        &self,
        bytes: &[u8],
        fc: backhand::FilesystemCompressor,
        block_size: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        DefaultCompressor.compress(bytes, fc, block_size)
    }

    fn compression_options(
        &self,
        superblock: &mut backhand::SuperBlock,
        kind: &Kind,
        fs_compressor: backhand::FilesystemCompressor,
    ) -> Result<Vec<u8>, BackhandError> {
        DefaultCompressor.compression_options(superblock, kind, fs_compressor)
    }
}

/// Run `f` on the filesystem in `source`; a panic inside backhand reads as a damaged image.
fn with_filesystem<T>(
    source: &dyn Source,
    f: impl FnOnce(&FilesystemReader<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let kind = Kind::new(&BOUNDED);
    catch_unwind(AssertUnwindSafe(|| {
        let reader = BufReader::new(SourceReader { source, pos: 0 });
        let fs =
            FilesystemReader::from_reader_with_offset_and_kind(reader, 0, kind).map_err(corrupt)?;
        f(&fs)
    }))
    .unwrap_or_else(|_| Err(corrupt("the filesystem's tables are inconsistent")))
}

/// Every node but the root, with its part name (its path without the leading `/`).
fn nodes<'f>(fs: &'f FilesystemReader<'_>) -> Vec<(String, &'f Node<SquashfsFileReader>)> {
    let mut seen = HashMap::new();
    fs.files()
        .filter_map(|n| {
            let path = n.fullpath.to_string_lossy();
            let name = path.trim_start_matches('/');
            (!name.is_empty()).then(|| (super::unique(&mut seen, name.to_owned()), n))
        })
        .collect()
}

fn node_fields(node: &Node<SquashfsFileReader>) -> (Vec<Field>, bool) {
    let (kind, has_content) = match &node.inner {
        InnerNode::File(_) => ("file", true),
        InnerNode::Symlink(_) => ("symlink", false),
        InnerNode::Dir(_) => ("directory", false),
        InnerNode::CharacterDevice(_) => ("character device", false),
        InnerNode::BlockDevice(_) => ("block device", false),
        InnerNode::NamedPipe => ("fifo", false),
        InnerNode::Socket => ("socket", false),
    };
    let text = |name, value: String, kind| Field {
        name,
        offset: 0,
        len: 0,
        value,
        kind,
    };
    let h = &node.header;
    let mut fields = vec![
        text("kind", kind.to_owned(), FieldKind::Text),
        text("mode", format!("{:o}", h.permissions), FieldKind::Number),
        text("uid", h.uid.to_string(), FieldKind::Number),
        text("gid", h.gid.to_string(), FieldKind::Number),
        text(
            "mtime",
            super::unix_time(u64::from(h.mtime)),
            FieldKind::Timestamp,
        ),
    ];
    match &node.inner {
        InnerNode::Symlink(l) => fields.push(text(
            "target",
            l.link.to_string_lossy().into_owned(),
            FieldKind::Text,
        )),
        InnerNode::CharacterDevice(d) => {
            fields.push(text(
                "device",
                d.device_number.to_string(),
                FieldKind::Number,
            ));
        }
        InnerNode::BlockDevice(d) => {
            fields.push(text(
                "device",
                d.device_number.to_string(),
                FieldKind::Number,
            ));
        }
        _ => {}
    }
    (fields, has_content)
}

pub(super) fn map(source: &dyn Source) -> Result<Vec<Part>, Error> {
    let (sb, used) = superblock(source)?;
    let data = SUPERBLOCK;
    let mut parts = vec![
        sb,
        span("filesystem".into(), data, used - data, Role::Filesystem),
    ];
    if source.len() > used {
        parts.push(span(
            "padding".into(),
            used,
            source.len() - used,
            Role::Padding,
        ));
    }
    with_filesystem(source, |fs| {
        for (name, node) in nodes(fs) {
            if parts.len() > super::MAX_PARTS {
                return Err(corrupt(format!("more than {} files", super::MAX_PARTS)));
            }
            let (fields, has_content) = node_fields(node);
            parts.push(Part {
                name,
                offset: data,
                len: used - data,
                role: Role::Payload,
                fields,
                packed: Some(Packed {
                    inner: None,
                    has_content,
                }),
            });
        }
        Ok(())
    })?;
    super::finish(Format::Squashfs, parts, source)
}

/// A filesystem read once, for unpacking many of its files.
pub(super) struct Session<'a> {
    fs: FilesystemReader<'a>,
    /// Part name → index in `fs.root.nodes`.
    index: HashMap<String, usize>,
}

impl<'a> Session<'a> {
    pub(super) fn open(source: &'a dyn Source) -> Result<Self, Error> {
        let kind = Kind::new(&BOUNDED);
        catch_unwind(AssertUnwindSafe(|| {
            let reader = BufReader::new(SourceReader { source, pos: 0 });
            let fs = FilesystemReader::from_reader_with_offset_and_kind(reader, 0, kind)
                .map_err(corrupt)?;
            let mut seen = HashMap::new();
            let mut index = HashMap::new();
            for (i, n) in fs.root.nodes.iter().enumerate() {
                let path = n.fullpath.to_string_lossy();
                let name = path.trim_start_matches('/');
                if !name.is_empty() {
                    index.insert(super::unique(&mut seen, name.to_owned()), i);
                }
            }
            Ok(Session { fs, index })
        }))
        .unwrap_or_else(|_| Err(corrupt("the filesystem's tables are inconsistent")))
    }

    pub(super) fn extract(&self, part: &Part, out: &mut dyn io::Write) -> Result<(), Error> {
        let node = self
            .index
            .get(&part.name)
            .and_then(|&i| self.fs.root.nodes.get(i))
            .ok_or_else(|| corrupt(format!("no file `{}`", part.name)))?;
        let InnerNode::File(file) = &node.inner else {
            return Ok(());
        };
        catch_unwind(AssertUnwindSafe(|| {
            let mut reader = self.fs.file(file).reader();
            super::copy_unpacked(&mut reader, out, &part.name, &corrupt)
        }))
        .unwrap_or_else(|_| {
            Err(corrupt(format!(
                "`{}`: its blocks are inconsistent",
                part.name
            )))
        })
    }
}
