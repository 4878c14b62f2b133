//! DSSE v1 envelopes: what is signed is the pre-authentication encoding (PAE) of the payload
//! type and the payload, never the payload alone.
//!
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
//! decimal byte counts. Base64 is written standard with padding and read standard or URL-safe,
//! padded or not, as the DSSE spec asks of verifiers. `keyid` is an unauthenticated hint: a
//! verifier tries the keys it names first, then every other trusted key.

use serde::{Deserialize, Serialize};

use super::key::{SigningKey, VerifyingKey};

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope; `payload` and each `sig` hold the decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's keyid, a hint only; empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

/// The pre-authentication encoding of `payload` with `payload_type`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// An in-toto envelope around `statement_json`, signed by `key`; unsigned only when `key` is
/// `None`.
pub fn envelope(statement_json: &[u8], key: Option<&SigningKey>) -> Envelope {
    let mut env = Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: statement_json.to_vec(),
        signatures: Vec::new(),
    };
    if let Some(key) = key {
        env.signatures.push(Signature {
            keyid: key.keyid().to_owned(),
            sig: key.sign(&env.pae()),
        });
    }
    env
}

impl Envelope {
    /// The bytes the signatures sign.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// The first key in `keys` that verifies one of the envelope's signatures. Keys whose keyid
    /// a signature names are tried first; the keyid is never trusted by itself.
    pub fn verify<'k>(&self, keys: &'k [VerifyingKey]) -> Option<&'k VerifyingKey> {
        let message = self.pae();
        self.signatures.iter().find_map(|signature| {
            let named = keys.iter().filter(|k| k.keyid() == signature.keyid);
            let others = keys.iter().filter(|k| k.keyid() != signature.keyid);
            named
                .chain(others)
                .find(|k| k.verify(&message, &signature.sig))
        })
    }
}

/// Base64: standard with padding when writing; standard or URL-safe, padded or not, when reading.
mod b64 {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let url_safe = text.contains(['-', '_']);
        let padded = text.ends_with('=');
        let engine = match (url_safe, padded) {
            (false, true) => &STANDARD,
            (false, false) => &STANDARD_NO_PAD,
            (true, true) => &URL_SAFE,
            (true, false) => &URL_SAFE_NO_PAD,
        };
        engine.decode(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_known_answer() {
        assert_eq!(
            pae(PAYLOAD_TYPE, br#"{"a":1}"#),
            br#"DSSEv1 28 application/vnd.in-toto+json 7 {"a":1}"#
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn base64_is_written_standard_padded_and_read_in_all_four_forms() {
        let env = Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: vec![0xfb, 0xff, 0xfe, 0x01],
            signatures: vec![],
        };
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains(r#""payload":"+//+AQ==""#), "{json}");
        for form in ["+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ"] {
            assert_eq!(
                b64::decode(form),
                Some(vec![0xfb, 0xff, 0xfe, 0x01]),
                "{form}"
            );
        }
        assert_eq!(b64::decode("+_/-AQ=="), None, "mixed alphabets");
        assert_eq!(b64::decode("not base64!"), None);
    }
}
