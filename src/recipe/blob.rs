//! Pinned blobs (`[[blob]]`): parts of a release that cannot be rebuilt from the escrow.
//!
//! A vendor's binary blob, CPU microcode or a radio firmware is not reproduced: it is pinned by
//! digest, with a reason saying what it is, and reported as "pinned, not reproduced". A blob is
//! found by its `name`: a shipped file of that name, or a flash region that names it. Its bytes
//! count as `pinned` in the coverage only when their digest matches the pin; otherwise they are
//! unexplained, and the verification fails as for any other difference.
//!
//! A blob's name is never an artifact's shipped name or that name's file name: an artifact is
//! compared with its rebuild, and a pin must not take it out of the comparison.

use serde::{Deserialize, Serialize};

use crate::hash::Checksum;

/// One `[[blob]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Blob {
    /// The name it goes by: a file in the shipped set, or a flash region's `blob`.
    pub name: String,
    /// The digest its bytes must have (`sha256:…` or `blake3:…`).
    pub digest: Checksum,
    /// What it is and why it is not rebuilt, for the auditor.
    pub reason: String,
}

/// Checks what TOML types cannot: `Err((key, message))` for the first problem. `shipped` are
/// the artifacts' shipped names: a blob may not take one, nor its file name (a shipped folder
/// knows a file by both), since a pin never stands in for a comparison with the rebuild.
pub(crate) fn validate(blobs: &[Blob], shipped: &[String]) -> Result<(), (String, String)> {
    for (i, blob) in blobs.iter().enumerate() {
        let key = |field: &str| format!("blob[{i}].{field}");
        if blob.name.trim().is_empty() || blob.name.contains(['\0', '/']) {
            return Err((key("name"), "must be a file name".to_owned()));
        }
        if blobs[..i].iter().any(|b| b.name == blob.name) {
            return Err((
                key("name"),
                format!("the blob `{}` is pinned twice", blob.name),
            ));
        }
        let file_name = |name: &str| name.rsplit('/').next().unwrap_or(name).to_owned();
        if let Some(artifact) = shipped
            .iter()
            .find(|s| **s == blob.name || file_name(s) == blob.name)
        {
            return Err((
                key("name"),
                format!(
                    "`{}` is shipped by `[[artifact]]` `{artifact}`: an artifact is compared \
                     with its rebuild, never pinned as a blob",
                    blob.name
                ),
            ));
        }
        if blob.reason.trim().is_empty() {
            return Err((
                key("reason"),
                "say what the blob is and why it is not rebuilt".to_owned(),
            ));
        }
    }
    Ok(())
}
