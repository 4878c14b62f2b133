//! The SLSA Verification Summary (VSA v1) statement: what policy engines read.
//!
//! `verifiedLevels` holds SLSA track levels and, as the VSA spec allows, custom values; a
//! custom value must not begin with `SLSA_`. Ours is [`LEVEL_REPRODUCIBLE`]: the shipped
//! binaries were rebuilt from the escrowed source with the pinned toolchain and found
//! `identical` or `equivalent`. A failed verification records the spec's `FAILED`.
//!
//! `verifier.id` is the organisation or lab that ran the verification (set by the user, see
//! [`crate::config`]), never the tool: the tool is `verifier.version`. `policy.uri` names the
//! recipe without the verifier's file system; `policy.digest` binds the exact recipe and lock.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::{Subject, STATEMENT_TYPE};

/// The predicate type of a SLSA Verification Summary v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// `verifier.id` when nobody said who verified (only an unsigned attestation may say it).
pub const UNIDENTIFIED_VERIFIER: &str = "urn:reprove:verifier:unidentified";
/// The custom `verifiedLevels` value for "rebuilt from escrow and found the same".
pub const LEVEL_REPRODUCIBLE: &str = "REPROVE_REPRODUCIBLE";
/// The `verifiedLevels` value the VSA spec defines for a failed verification.
pub const LEVEL_FAILED: &str = "FAILED";

/// What a VSA says, field by field.
#[derive(Debug, Clone)]
pub struct Vsa<'a> {
    /// The organisation or lab that verified (never the tool).
    pub verifier_id: &'a str,
    pub resource_uri: &'a str,
    /// Names the policy (the recipe) without the verifier's file system.
    pub policy_uri: &'a str,
    /// Binds the exact recipe and lock.
    pub policy_digest_sha256: &'a str,
    pub passed: bool,
    pub time: OffsetDateTime,
    pub verified_levels: Vec<String>,
}

impl Vsa<'_> {
    /// An in-toto Statement v1 carrying this VSA for `subjects`.
    ///
    /// `verified_levels` are recorded when `passed`; when not, `verifiedLevels` is
    /// `["FAILED"]`, as the spec asks, whatever was given. The time is written in UTC to the
    /// second.
    pub fn statement(&self, subjects: &[Subject]) -> Value {
        let time = self
            .time
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        let levels = if self.passed {
            self.verified_levels.clone()
        } else {
            vec![LEVEL_FAILED.to_owned()]
        };
        json!({
            "_type": STATEMENT_TYPE,
            "subject": subjects,
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "verifier": {
                    "id": self.verifier_id,
                    "version": { "reprove": env!("CARGO_PKG_VERSION") },
                },
                "timeVerified": time.format(&Rfc3339).expect("a UTC time formats as RFC 3339"),
                "resourceUri": self.resource_uri,
                "policy": {
                    "uri": self.policy_uri,
                    "digest": { "sha256": self.policy_digest_sha256 },
                },
                "verificationResult": if self.passed { "PASSED" } else { "FAILED" },
                "verifiedLevels": levels,
                "slsaVersion": "1.0",
            },
        })
    }
}

/// An in-toto Statement v1 carrying a VSA for `subjects` by an unidentified verifier (see
/// [`Vsa::statement`], which names one).
pub fn vsa_statement(
    subjects: &[Subject],
    resource_uri: &str,
    policy_digest_sha256: &str,
    policy_uri: &str,
    passed: bool,
    time: OffsetDateTime,
    verified_levels: Vec<String>,
) -> Value {
    Vsa {
        verifier_id: UNIDENTIFIED_VERIFIER,
        resource_uri,
        policy_uri,
        policy_digest_sha256,
        passed,
        time,
        verified_levels,
    }
    .statement(subjects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn statement_has_the_vsa_shape() {
        let subjects = [Subject::new("fw.img", "aa", "bb")];
        let v = vsa_statement(
            &subjects,
            "pkg:generic/fw@1",
            "cc",
            "file:reprove.toml",
            true,
            datetime!(2026-11-22 15:00:00.25 +01:00),
            vec![LEVEL_REPRODUCIBLE.to_owned()],
        );
        let expected = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "fw.img", "digest": {"sha256": "aa", "blake3": "bb"}}],
            "predicateType": "https://slsa.dev/verification_summary/v1",
            "predicate": {
                "verifier": {"id": "urn:reprove:verifier:unidentified",
                             "version": {"reprove": env!("CARGO_PKG_VERSION")}},
                "timeVerified": "2026-11-22T14:00:00Z",
                "resourceUri": "pkg:generic/fw@1",
                "policy": {"uri": "file:reprove.toml", "digest": {"sha256": "cc"}},
                "verificationResult": "PASSED",
                "verifiedLevels": ["REPROVE_REPRODUCIBLE"],
                "slsaVersion": "1.0",
            },
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn failed_records_failed_level() {
        let v = vsa_statement(
            &[],
            "pkg:generic/fw@1",
            "cc",
            "u",
            false,
            datetime!(2026-11-22 14:00 UTC),
            vec![LEVEL_REPRODUCIBLE.to_owned()],
        );
        assert_eq!(v["predicate"]["verificationResult"], "FAILED");
        assert_eq!(v["predicate"]["verifiedLevels"], json!(["FAILED"]));
    }
}
