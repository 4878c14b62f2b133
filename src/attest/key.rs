//! Ed25519 keys: the private key in PKCS#8 PEM, the public key in PEM `SubjectPublicKeyInfo`, and
//! the keyid that names them.
//!
//! The keyid follows securesystemslib, so that its DSSE verifier (which only tries a key on a
//! signature carrying that key's keyid) accepts our envelopes: the lowercase hex sha256 of the
//! exact bytes `{"keytype":"ed25519","keyval":{"public":"<64 hex>"},"scheme":"ed25519"}`.
//!
//! A private key file is created with mode 0600 (never widened, then narrowed) and appears whole
//! or not at all; the private key is never printed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey as _, EncodePublicKey as _};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use ed25519_dalek::Signer as _;
use sha2::Digest as _;

use super::Error;
use crate::atomic::write_atomic;
use crate::hash::hex;

/// The environment variable naming the signing key file when no `--sign-key` is given.
pub const SIGN_KEY_ENV: &str = "REPROVE_SIGN_KEY";

/// An Ed25519 private key, with its keyid.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    keyid: String,
}

// Never show the secret, not even in debug output.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key, with its keyid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: ed25519_dalek::VerifyingKey,
    keyid: String,
}

/// The securesystemslib keyid of an Ed25519 public key.
pub fn keyid_of(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
        hex(public)
    );
    hex(&sha2::Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    fn from_dalek(inner: ed25519_dalek::SigningKey) -> Self {
        let keyid = keyid_of(inner.verifying_key().as_bytes());
        Self { inner, keyid }
    }

    /// Read a private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let pem = read_text(path)?;
        if pem.contains("-----BEGIN PUBLIC KEY-----") {
            let private = path
                .to_str()
                .and_then(|p| p.strip_suffix(".pub"))
                .map_or_else(|| PathBuf::from("KEY"), PathBuf::from);
            return Err(Error::PublicKeyGiven {
                path: path.to_owned(),
                private,
            });
        }
        let inner =
            ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|e| Error::PrivateKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_dalek(inner))
    }

    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The private key in PKCS#8 v1 PEM. v1 (RFC 8410, no embedded public key) because OpenSSL
    /// 3.0 and pyca/cryptography refuse the v2 form `ed25519-dalek` writes by default.
    fn private_pem(&self) -> Zeroizing<String> {
        KeypairBytes {
            secret_key: self.inner.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an Ed25519 private key always encodes")
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: self.inner.verifying_key(),
            keyid: self.keyid.clone(),
        }
    }

    /// The public key in PEM `SubjectPublicKeyInfo` (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_pem(&self) -> String {
        self.verifying_key().to_pem()
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.inner.sign(message).to_bytes().to_vec()
    }
}

impl VerifyingKey {
    /// Read a public key in PEM `SubjectPublicKeyInfo`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let pem = read_text(path)?;
        // Any PEM private key (PKCS#8, OpenSSH, SEC1): the user has the pair, and passed the
        // wrong half.
        if pem.contains("PRIVATE KEY-----") {
            return Err(Error::PrivateKeyGiven {
                path: path.to_owned(),
                public: public_path_for(path),
            });
        }
        Self::from_pem(&pem).map_err(|reason| Error::PublicKey {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parse a public key in PEM `SubjectPublicKeyInfo`.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let inner =
            ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|e| e.to_string())?;
        Ok(Self {
            keyid: keyid_of(inner.as_bytes()),
            inner,
        })
    }

    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The public key in PEM `SubjectPublicKeyInfo`.
    pub fn to_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes")
    }

    /// True when `signature` is this key's signature of `message`. Strict verification: weak
    /// keys and non-canonical signatures are refused, so no two byte strings pass for one.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|sig| self.inner.verify_strict(message, &sig).is_ok())
    }
}

/// The key named by `arg`, or else by `REPROVE_SIGN_KEY` when it is set and not empty; `None`
/// when neither names one (an unsigned attestation).
pub fn signing_key_from(arg: Option<&Path>) -> Result<Option<SigningKey>, Error> {
    let from_env = std::env::var_os(SIGN_KEY_ENV).filter(|v| !v.is_empty());
    match (arg, from_env) {
        (Some(path), _) => SigningKey::load(path).map(Some),
        (None, Some(path)) => SigningKey::load(Path::new(&path)).map(Some),
        (None, None) => Ok(None),
    }
}

/// What `generate_key_pair` wrote.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub private_path: PathBuf,
    pub public_path: PathBuf,
    pub keyid: String,
}

/// The public key's path for a private key at `private`: `KEY.pub`.
pub fn public_path_for(private: &Path) -> PathBuf {
    let mut name = OsString::from(private.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

/// Write a fresh key pair: the private key at `out` (mode 0600) and the public key at
/// `out.pub`. Existing files are kept, and the call fails, unless `force`.
pub fn generate_key_pair(out: &Path, force: bool) -> Result<GeneratedKey, Error> {
    let public_path = public_path_for(out);
    if !force {
        // Checked up front so that a clash on the public key leaves no new private key behind;
        // the writes below refuse to clobber as well, so a race cannot overwrite either.
        for path in [out, public_path.as_path()] {
            if path.symlink_metadata().is_ok() {
                return Err(Error::Exists {
                    path: path.to_owned(),
                });
            }
        }
    }
    let key = SigningKey::generate();
    let private_pem = key.private_pem();
    write_atomic(out, private_pem.as_bytes(), 0o600, force).map_err(|e| write_error(out, e))?;
    if let Err(e) = write_atomic(
        &public_path,
        key.public_pem().as_bytes(),
        crate::atomic::REPORT_MODE,
        force,
    ) {
        if !force {
            // The pair is written whole or not at all.
            let _ = std::fs::remove_file(out);
        }
        return Err(write_error(&public_path, e));
    }
    Ok(GeneratedKey {
        private_path: out.to_owned(),
        public_path,
        keyid: key.keyid,
    })
}

fn write_error(path: &Path, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::AlreadyExists {
        Error::Exists {
            path: path.to_owned(),
        }
    } else {
        Error::Write {
            path: path.to_owned(),
            source,
        }
    }
}

fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::NotText {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, test 1.
    const RFC8032_SECRET: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];

    #[test]
    fn keyid_known_answer() {
        let key = SigningKey::from_dalek(ed25519_dalek::SigningKey::from_bytes(&RFC8032_SECRET));
        assert_eq!(
            hex(key.inner.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(key.keyid(), KEYID_RFC8032);
        assert_eq!(key.verifying_key().keyid(), KEYID_RFC8032);
    }

    /// Computed once with python's `hashlib.sha256` over the canonical bytes, and confirmed by
    /// securesystemslib 1.6's `SSlibKey.from_crypto(...).keyid` for the same key.
    const KEYID_RFC8032: &str = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";

    #[test]
    fn private_pem_is_pkcs8_v1_and_roundtrips() {
        let key = SigningKey::generate();
        let pem = key.private_pem();
        let der = ed25519_dalek::pkcs8::spki::der::Document::from_pem(&pem)
            .unwrap()
            .1;
        // SEQUENCE { INTEGER 0 (v1), … }: the version is the third byte.
        assert_eq!(&der.as_bytes()[2..5], [0x02, 0x01, 0x00]);
        assert_eq!(der.as_bytes().len(), 48, "no public key embedded");
        let loaded = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(loaded.to_bytes(), key.inner.to_bytes());
    }

    #[test]
    fn public_pem_roundtrips() {
        let key = SigningKey::generate();
        let pem = key.public_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert_eq!(VerifyingKey::from_pem(&pem).unwrap(), key.verifying_key());
    }

    #[test]
    fn signature_verifies_only_for_its_message_and_key() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let sig = key.sign(b"message");
        assert!(key.verifying_key().verify(b"message", &sig));
        assert!(!key.verifying_key().verify(b"messagf", &sig));
        assert!(!other.verifying_key().verify(b"message", &sig));
        assert!(!key.verifying_key().verify(b"message", &sig[..63]));
    }
}
