//! The bundle file, `*.intoto.jsonl`: one DSSE envelope per line, as compact JSON.
//!
//! Written whole or not at all (a temporary file in the same directory, renamed). Read
//! leniently about blank lines and strictly about everything else: an error names the file
//! and the line.
//!
//! Every reader of a bundle reads it here ([`read_bundle`], or [`read_bundle_bytes`] and
//! [`parse_bundle_bytes`] when the bytes are wanted too, or [`read_bundle_from`] for a file
//! opened beneath a folder): it must be a regular file, opened without blocking (a FIFO or a
//! device is refused, never waited on), and at most [`MAX_BUNDLE_BYTES`] of it are read (a
//! larger one is refused, not cut).

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;

use super::dsse::Envelope;
use super::Error;
use crate::atomic::write_atomic;

/// The largest bundle read (a predicate carries the explained differences: some MiB at most).
pub(crate) const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Write `envelopes` to `path`, one per line, replacing any file there.
pub fn write_bundle(path: &Path, envelopes: &[Envelope]) -> io::Result<()> {
    let mut text = Vec::new();
    for envelope in envelopes {
        serde_json::to_writer(&mut text, envelope)?;
        text.push(b'\n');
    }
    write_atomic(path, &text, crate::atomic::REPORT_MODE, true)
}

/// The envelopes in the bundle at `path`, in file order.
pub fn read_bundle(path: &Path) -> Result<Vec<Envelope>, Error> {
    parse_bundle_bytes(path, &read_bundle_bytes(path)?)
}

/// The bytes of the bundle at `path`: a regular file (a symlink to one is followed, as the
/// user named it) of at most [`MAX_BUNDLE_BYTES`].
pub(crate) fn read_bundle_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let file = crate::beneath::open_regular(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    read_bounded(path, file)
}

/// The envelopes of the bundle in `file`, already opened (as a regular file) from `path`.
pub(crate) fn read_bundle_from(path: &Path, file: File) -> Result<Vec<Envelope>, Error> {
    parse_bundle_bytes(path, &read_bounded(path, file)?)
}

fn read_bounded(path: &Path, file: File) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            max_mib: MAX_BUNDLE_BYTES >> 20,
        });
    }
    Ok(bytes)
}

/// The envelopes in `bytes`, read from `path` (named in errors only): UTF-8 text, a line each.
pub(crate) fn parse_bundle_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<Envelope>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotText {
        path: path.to_owned(),
    })?;
    parse_bundle(path, text)
}

/// The envelopes in `text`, read from `path` (named in errors only).
pub fn parse_bundle(path: &Path, text: &str) -> Result<Vec<Envelope>, Error> {
    let mut envelopes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let envelope = serde_json::from_str(line).map_err(|e| Error::Envelope {
            path: path.to_owned(),
            line: index + 1,
            reason: e.to_string(),
        })?;
        envelopes.push(envelope);
    }
    if envelopes.is_empty() {
        return Err(Error::EmptyBundle {
            path: path.to_owned(),
        });
    }
    Ok(envelopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::dsse::envelope;

    #[test]
    fn bundle_roundtrips_one_envelope_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.intoto.jsonl");
        let envs = vec![envelope(br#"{"a":1}"#, None), envelope(b"{}", None)];
        write_bundle(&path, &envs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        assert_eq!(read_bundle(&path).unwrap(), envs);
        // Only the bundle is left in the directory: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let good = serde_json::to_string(&envelope(b"{}", None)).unwrap();
        let text = format!("{good}\n\n{{\"payloadType\":1}}\n");
        let err = parse_bundle(Path::new("b.jsonl"), &text).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`b.jsonl` line 3: not a DSSE envelope: "),
            "{err}"
        );
        let err = parse_bundle(Path::new("b.jsonl"), "\n \n").unwrap_err();
        assert_eq!(err.to_string(), "`b.jsonl` holds no envelope");
        let bad_b64 = good.replace("\"payload\":\"e30=\"", "\"payload\":\"e3!=\"");
        assert_ne!(bad_b64, good);
        let err = parse_bundle(Path::new("b.jsonl"), &bad_b64).unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1: not a DSSE envelope: invalid base64"),
            "{err}"
        );
    }

    #[test]
    fn a_fifo_a_folder_and_a_file_too_large_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.intoto.jsonl");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // No writer ever opens the FIFO: a reader that waited for one would hang here.
        let err = read_bundle(&fifo).unwrap_err();
        assert!(
            format!("{:#}", anyhow::Error::new(err)).contains("is a FIFO"),
            "a FIFO"
        );
        let err = read_bundle(dir.path()).unwrap_err();
        assert!(format!("{:#}", anyhow::Error::new(err)).contains("directory"));
        let big = dir.path().join("big.intoto.jsonl");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_BUNDLE_BYTES + 1)
            .unwrap();
        let err = read_bundle(&big).unwrap_err().to_string();
        assert!(
            err.ends_with("is larger than 64 MiB: not an attestation bundle"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn envelopes_roundtrip_through_a_bundle_line(
            payload_type in ".{0,40}",
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            keyid in "[0-9a-f]{0,64}",
            sig in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let env = Envelope {
                payload_type,
                payload,
                signatures: vec![crate::attest::dsse::Signature { keyid, sig }],
            };
            let line = serde_json::to_string(&env).unwrap();
            proptest::prop_assert!(!line.contains('\n'));
            let parsed = parse_bundle(Path::new("p"), &line).unwrap();
            proptest::prop_assert_eq!(parsed, vec![env]);
        }

        #[test]
        fn parsing_and_checking_a_damaged_line_never_panics(
            at in 0usize..400,
            c in proptest::char::any(),
        ) {
            let key = crate::attest::key::SigningKey::generate();
            let good = serde_json::to_string(&envelope(br#"{"_type":"x","subject":[]}"#, Some(&key)))
                .unwrap();
            let mut chars: Vec<char> = good.chars().collect();
            let at = at % chars.len();
            chars[at] = c;
            let text: String = chars.into_iter().collect();
            if let Ok(envs) = parse_bundle(Path::new("p"), &text) {
                // Whatever the damage, checking gives a report, never a panic or an error.
                crate::attest::check::check_bundle(&envs, &[key.verifying_key()], &[]).unwrap();
            }
        }
    }
}
