//! Archives: their formats, recognised by content, and the one way into them.
//!
//! Escrow intake, shipped bundles, hermetic roots and `diff` open what they are given by
//! content (a vendor bundle called `.bin` is still a tar.gz, [`sniff`]), and reach what is
//! inside through this module alone, so that one set of rules holds everywhere:
//!
//! - [`name`]: what path a member name stands for; `./a`, `a/` and `a//b`, `a/./b` are one
//!   path each, and two members that are one path are duplicates, refused in every format
//!   (tar, zip, cpio). Zip names are read from the central directory itself, since the zip
//!   crate shows a name listed twice only once.
//! - [`limits`]: the bounds on bytes written, entries and nesting, with their defaults and
//!   the `REPROVE_MAX_*` variables that raise them, charged while streaming.
//! - [`unpack`] and [`copy_directory`] (in `extract`): a tree written below a root with
//!   nothing outside it, nothing through a symlink, no duplicate, within the bounds, and all
//!   or nothing; a gzip or xz stream is decoded on a thread of its own (`archive::pipe`),
//!   bounded and stopped with the extraction. `diff` does not unpack: it lists members (zip
//!   names from the central directory, under the [`name`] rules) and spools compressed
//!   streams, within the same [`limits::Budget`].

mod extract;
pub(crate) mod limits;
pub(crate) mod name;
mod pipe;
pub(crate) mod read;

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::Serialize;
use xz2::read::XzDecoder;

pub(crate) use extract::chain;
pub(crate) use extract::{Error, Policy, Totals};
#[cfg(test)]
pub(crate) use limits::Bound;
pub(crate) use limits::{Exceeded, Limits};
pub(crate) use name::Reason;

/// Unpack the archive `file` (at `path`, for messages) of `format` into `dest`, which is
/// created or must be an empty directory. `Gzip` and `Xz` mean a compressed tar. On any error,
/// what was written is removed again.
pub(crate) fn unpack(
    path: &Path,
    file: &mut File,
    format: Format,
    dest: &Path,
    policy: Policy,
    limits: Limits,
) -> Result<Totals, Error> {
    extract::all_or_nothing(dest, |dest| {
        let mut sink = extract::Sink::new(path, dest, policy, limits, false);
        match format {
            Format::Tar => read::tar(BufReader::new(&mut *file), &mut sink)?,
            // Decoded on a thread of its own, overlapping the writes (`pipe`).
            Format::Gzip => pipe::decoded_in_thread(
                MultiGzDecoder::new(BufReader::new(&mut *file)),
                |decoded| read::tar(decoded, &mut sink),
            )?,
            Format::Xz => pipe::decoded_in_thread(
                XzDecoder::new_multi_decoder(BufReader::new(&mut *file)),
                |decoded| read::tar(decoded, &mut sink),
            )?,
            Format::Zip => read::zip(file, &mut sink)?,
            Format::Cpio | Format::Elf => {
                return Err(sink.corrupt(format!("{} cannot be unpacked", format.name())))
            }
        }
        sink.finish()
    })
}

/// What [`unpack`] can make of `file` (at `path`, for messages), by content: `Tar`, `Zip`, or
/// `Gzip`/`Xz` when the decompressed stream starts with a tar header; `None` for anything
/// else. Leaves the file rewound.
pub(crate) fn unpackable_format(path: &Path, file: &mut File) -> Result<Option<Format>, Error> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.rewind()
        .and_then(|()| (&mut *file).take(SNIFF_LEN as u64).read_to_end(&mut head))
        .map_err(io_error)?;
    let holds_tar = |decoded: &mut dyn Read| {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        decoded
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                detail: chain(&e),
            })?;
        Ok::<_, Error>(sniff(&head) == Some(Format::Tar))
    };
    let format = match sniff(&head) {
        Some(f @ (Format::Tar | Format::Zip)) => Some(f),
        Some(Format::Gzip) => {
            file.rewind().map_err(io_error)?;
            holds_tar(&mut MultiGzDecoder::new(&mut *file))?.then_some(Format::Gzip)
        }
        Some(Format::Xz) => {
            file.rewind().map_err(io_error)?;
            holds_tar(&mut XzDecoder::new_multi_decoder(&mut *file))?.then_some(Format::Xz)
        }
        _ => None,
    };
    file.rewind().map_err(io_error)?;
    Ok(format)
}

/// Copy the directory `src` into `dest` (which exists and is empty) under the same rules as
/// an archive: files, directories and symlinks that stay inside, within `limits`. The caller
/// runs it inside [`all_or_nothing`] when it has more to check afterwards.
pub(crate) fn copy_directory(src: &Path, dest: &Path, limits: Limits) -> Result<Totals, Error> {
    let mut sink = extract::Sink::new(src, dest, Policy::Source, limits, true);
    read::directory(src, &mut sink)?;
    sink.finish()
}

/// Run `extract` into `dest` (created, or checked empty); on error, leave nothing behind.
pub(crate) fn all_or_nothing<T, E: From<Error>>(
    dest: &Path,
    extract: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    extract::all_or_nothing(dest, extract)
}

/// A container or compression format the tool understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Format {
    Tar,
    Gzip,
    Xz,
    Zip,
    /// cpio, "new ASCII" (`070701`) or with CRCs (`070702`).
    Cpio,
    Elf,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zip => "zip",
            Format::Cpio => "cpio",
            Format::Elf => "elf",
        }
    }
}

/// How many leading bytes [`sniff`] needs to see every format (tar's magic sits at 257).
pub(crate) const SNIFF_LEN: usize = 512;

/// The format of data starting with `head` (give it [`SNIFF_LEN`] bytes when there are that
/// many), or `None` for plain bytes.
pub(crate) fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Format::Xz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.starts_with(b"\x7fELF") {
        Some(Format::Elf)
    } else if head.starts_with(b"070701") || head.starts_with(b"070702") {
        Some(Format::Cpio)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(sniff(b"\xfd7zXZ\x00rest"), Some(Format::Xz));
        assert_eq!(sniff(b"PK\x03\x04...."), Some(Format::Zip));
        assert_eq!(sniff(b"\x7fELF\x02\x01"), Some(Format::Elf));
        assert_eq!(sniff(b"070701000000"), Some(Format::Cpio));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Format::Tar));
        assert_eq!(sniff(b"\x00\x01firmware"), None);
        assert_eq!(sniff(b""), None);
    }
}
