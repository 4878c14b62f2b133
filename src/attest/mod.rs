//! Attestations: signed in-toto statements about the shipped binaries, and their checks.
//!
//! The file format is in-toto's bundle, `*.intoto.jsonl`: one DSSE envelope per line
//! ([`bundle`]), each signing an in-toto Statement v1 with Ed25519 ([`dsse`], [`key`]). One
//! statement carries a SLSA Verification Summary ([`vsa`]); another carries the rebuild
//! predicate (one type, [`rebuild::RebuildPredicate`], which [`predicate`] writes, [`check`]
//! and [`replay`] read, and [`redact`] cuts down for sharing). [`check`] decides whether a bundle holds: signatures, statement shape, predicates,
//! subjects against the artifacts given. A rejected attestation is a value ([`check::Report`]),
//! not an [`Error`]: an `Err` means the input could not be read or understood at all.
//!
//! The format is specified in `docs/attestation.md`.

pub mod bundle;
pub mod check;
mod consistency;
pub mod custody;
pub(crate) mod cyclonedx;
pub mod dsse;
pub mod key;
pub(crate) mod policy;
pub mod predicate;
pub mod rebuild;
pub(crate) mod redact;
pub mod replay;
pub mod vsa;

use std::path::PathBuf;

use serde::Serialize;

use crate::hash::Hashes;

/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// A verified artifact, as a statement names it. Serializes in the in-toto shape
/// `{"name": …, "digest": {"sha256": …, "blake3": …}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    /// Lowercase hex, without an `ALGO:` prefix.
    pub sha256: String,
    /// Lowercase hex, without an `ALGO:` prefix.
    pub blake3: String,
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Digest<'a> {
            sha256: &'a str,
            blake3: &'a str,
        }
        #[derive(Serialize)]
        struct Shape<'a> {
            name: &'a str,
            digest: Digest<'a>,
        }
        Shape {
            name: &self.name,
            digest: Digest {
                sha256: &self.sha256,
                blake3: &self.blake3,
            },
        }
        .serialize(s)
    }
}

impl Subject {
    /// A subject from its name and lowercase hex digests.
    pub fn new(
        name: impl Into<String>,
        sha256: impl Into<String>,
        blake3: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            sha256: sha256.into(),
            blake3: blake3.into(),
        }
    }

    /// A subject for a file whose bytes hash to `hashes`.
    pub fn from_hashes(name: impl Into<String>, hashes: &Hashes) -> Self {
        Self::new(name, hashes.sha256.hex(), hashes.blake3.hex())
    }
}

/// Why an attestation, a key or a bundle could not be read, written or understood.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to overwrite `{path}`, which already exists")]
    Exists { path: PathBuf },
    #[error("`{path}` is not an Ed25519 private key in PKCS#8 PEM: {reason}")]
    PrivateKey { path: PathBuf, reason: String },
    #[error("`{path}` is not an Ed25519 public key in PEM `SubjectPublicKeyInfo`: {reason}")]
    PublicKey { path: PathBuf, reason: String },
    #[error(
        "`{path}` is a private key, and checking takes the public one: pass `{public}` (the \
         public key `reprove key generate` wrote beside it)"
    )]
    PrivateKeyGiven { path: PathBuf, public: PathBuf },
    #[error(
        "`{path}` is a public key, and signing takes the private one: pass `{private}` (the \
         private key `reprove key generate` wrote it from)"
    )]
    PublicKeyGiven { path: PathBuf, private: PathBuf },
    #[error("`{path}` line {line}: not a DSSE envelope: {reason}")]
    Envelope {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot replay `{path}`: {reason}")]
    Replay { path: PathBuf, reason: String },
    #[error("failed to read `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: crate::beneath::Error,
    },
    #[error("`{path}` is larger than {max_mib} MiB: not an attestation bundle")]
    TooLarge { path: PathBuf, max_mib: u64 },
    #[error("`{path}` holds no envelope")]
    EmptyBundle { path: PathBuf },
    #[error("`{path}` is not UTF-8 text")]
    NotText { path: PathBuf },
}
