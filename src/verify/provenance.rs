//! `--provenance TEXT|FILE`: how the shipped files were obtained (the tool, the device's
//! serial, the date, who), signed into the attestation with the rest.
//!
//! A value that names an existing path is a file: it must be a regular file (a FIFO or a
//! device is refused before it is opened, so nothing blocks) of at most
//! [`MAX_PROVENANCE_BYTES`], in UTF-8; it is recorded with its path, its digests and its text.
//! Any other value is the text itself, of at most as many bytes. Empty text (or only white
//! space) is refused: a record that says nothing is no custody. The text is kept as given;
//! whoever shows it escapes it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::hash::{hash_bytes, Hashes};

/// The largest provenance file read: a custody note, not a dump.
pub(crate) const MAX_PROVENANCE_BYTES: u64 = 64 * 1024;

/// One provenance record, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// What was said: the value itself, or the file's text.
    pub text: String,
    /// The file it was read from, when it was a file.
    pub file: Option<ProvenanceFile>,
}

/// A file a provenance record was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceFile {
    pub path: PathBuf,
    /// The digests of its bytes (its text, since it is UTF-8).
    pub hashes: Hashes,
}

/// Why a provenance value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read the provenance file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: crate::beneath::Error,
    },
    #[error("the provenance file `{}` is larger than {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: u64 },
    #[error("the provenance file `{}` is not UTF-8 text (byte {at})", path.display())]
    NotText { path: PathBuf, at: usize },
    #[error("the provenance text is longer than {max} bytes: put it in a file, or say less")]
    TooLong { max: u64 },
    #[error("the provenance {what} is empty: say how the shipped files were obtained")]
    Empty { what: String },
}

impl Provenance {
    /// Read `value`: a file when it names an existing path, else the text itself.
    pub fn from_value(value: &str) -> Result<Provenance, Error> {
        let path = Path::new(value);
        if std::fs::symlink_metadata(path).is_err() {
            if value.trim().is_empty() {
                return Err(Error::Empty {
                    what: "text".to_owned(),
                });
            }
            if value.len() as u64 > MAX_PROVENANCE_BYTES {
                return Err(Error::TooLong {
                    max: MAX_PROVENANCE_BYTES,
                });
            }
            return Ok(Provenance {
                text: value.to_owned(),
                file: None,
            });
        }
        let read = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = crate::beneath::open_regular(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_PROVENANCE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| {
                read(crate::beneath::Error::Io {
                    path: path.to_path_buf(),
                    source,
                })
            })?;
        if bytes.len() as u64 > MAX_PROVENANCE_BYTES {
            return Err(Error::TooLarge {
                path: path.to_path_buf(),
                max: MAX_PROVENANCE_BYTES,
            });
        }
        let hashes = hash_bytes(&bytes);
        let text = String::from_utf8(bytes).map_err(|e| Error::NotText {
            path: path.to_path_buf(),
            at: e.utf8_error().valid_up_to(),
        })?;
        if text.trim().is_empty() {
            return Err(Error::Empty {
                what: format!("file `{}`", path.display()),
            });
        }
        Ok(Provenance {
            text,
            file: Some(ProvenanceFile {
                path: path.to_path_buf(),
                hashes,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_a_file_when_one_exists_and_text_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join("custody.txt");
        std::fs::write(&note, "flashrom 1.3, serial SN-42, 2026-12-01, J. Doe\n").unwrap();
        let p = Provenance::from_value(note.to_str().unwrap()).unwrap();
        assert_eq!(p.text, "flashrom 1.3, serial SN-42, 2026-12-01, J. Doe\n");
        assert_eq!(p.file.unwrap().hashes, hash_bytes(p.text.as_bytes()));

        let said = "read by J. Doe from SN-42";
        assert_eq!(Provenance::from_value(said).unwrap().file, None);

        let large = vec![b'a'; 65537];
        let cases: [(&str, &[u8]); 3] = [
            ("not UTF-8 text (byte 3)", b"abc\xff"),
            ("is empty", b" \n"),
            ("larger than 65536 bytes", &large),
        ];
        for (expected, bytes) in cases {
            std::fs::write(&note, bytes).unwrap();
            let err = Provenance::from_value(note.to_str().unwrap()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let err = Provenance::from_value(dir.path().to_str().unwrap()).unwrap_err();
        assert!(
            format!("{:#}", anyhow::Error::new(err)).contains("directory"),
            "a folder is no provenance file"
        );
        assert!(Provenance::from_value("  ").is_err());
        let long = "SN-42 ".repeat(11_000);
        assert!(Provenance::from_value(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than 65536 bytes"));
    }
}
