//! Custody of the shipped set: the recipe's pinned blobs checked against what was shipped, and
//! the [`Coverage`] every verification ends with.
//!
//! **Blobs.** A `[[blob]]` is found by its name in the shipped set and checked against its pin
//! (the pin's own algorithm, `sha256` or `blake3`); it is never compared with a rebuild. A blob
//! whose digest matches is *pinned, not reproduced*; one whose digest differs counts as a
//! `different` artifact does (the verification fails, both digests recorded). A blob that
//! names no shipped file is a recipe error, and so is a blob that reaches the same shipped file
//! as an artifact (the recipe refuses an artifact's shipped name or file name as a blob name
//! when it is read; here the shipped file itself is checked, since a folder knows a file by
//! two names): a pin never stands in for a comparison. Blobs never make a verification pass on
//! their own: the recipe always has an artifact, and the verdict is the worst of the artifacts'
//! and the blobs'.
//!
//! **Coverage.** Each shipped file is counted once, whole, in one class: bytes of an `identical`
//! artifact are reproduced; of an `equivalent` one, the differing bytes its allowances cover
//! (counted in the leaf where they differ, at most the file's size) are masked and the rest
//! reproduced; a blob that matched its pin is pinned; every other file — an artifact of any
//! other verdict, a blob that does not match, a file no artifact or blob names — is
//! unexplained. A bundle archive that an artifact or blob names is counted whole and its
//! members not again (but a member that counts as unexplained makes the whole bundle so); a
//! bundle that nothing names is counted by its members, its archive framing left out. The
//! dump check fills the same [`Coverage`] for a flash image; nothing here assumes it is only
//! the shipped set that is counted, and the classes are added up with [`Coverage::add`].

use serde::{Deserialize, Serialize};

use super::{ArtifactReport, ShippedFile, ShippedSet, Verdict};
use crate::compare::{Comparison, Verdict as CompareVerdict};
use crate::coverage::Coverage;
use crate::hash::{Checksum, Hashes};
use crate::recipe::{Error, Recipe};

/// What checking a blob against its pin found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobOutcome {
    /// The bytes have the pinned digest: pinned, not reproduced.
    Pinned,
    /// They do not: a failure, as a differing artifact is.
    Different,
}

impl BlobOutcome {
    /// What the outcome weighs in the overall verdict: a match adds nothing, a mismatch is
    /// `different`.
    pub fn verdict(self) -> Verdict {
        match self {
            BlobOutcome::Pinned => Verdict::Identical,
            BlobOutcome::Different => Verdict::Different,
        }
    }

    /// The words reports use.
    pub fn describe(self) -> &'static str {
        match self {
            BlobOutcome::Pinned => "pinned, not reproduced",
            BlobOutcome::Different => "different from its pin",
        }
    }
}

/// One `[[blob]]`, checked.
#[derive(Debug, Clone)]
pub struct BlobReport {
    pub name: String,
    pub reason: String,
    /// The digest the recipe pins.
    pub pinned: Checksum,
    /// Where its bytes were found: a shipped file's origin (`bundle.tar.gz//member` for a
    /// member of a shipped archive).
    pub found: String,
    /// The digests of those bytes.
    pub hashes: Hashes,
    pub outcome: BlobOutcome,
}

impl BlobReport {
    /// The digest found, in the pin's algorithm: what a report shows beside the pin.
    pub fn found_digest(&self) -> Checksum {
        self.hashes.get(self.pinned.algorithm)
    }
}

/// Check each of the recipe's blobs against the shipped file of its name. An error (exit 2)
/// for a blob that names no shipped file, or that reaches the shipped file of an artifact. A
/// blob `elsewhere` says is found elsewhere (a flash region of a dump, checked there) and that
/// the shipped set lacks is left to that check.
pub(crate) fn check_blobs(
    recipe: &Recipe,
    shipped: &ShippedSet,
    elsewhere: &dyn Fn(&str) -> bool,
) -> Result<Vec<BlobReport>, Error> {
    let invalid = |i: usize, message: String| Error::Invalid {
        path: recipe.path.clone(),
        key: format!("blob[{i}].name"),
        message,
    };
    let mut checked = Vec::new();
    for (i, blob) in recipe.spec.blobs.iter().enumerate() {
        let Some(file) = shipped.get(&blob.name) else {
            if elsewhere(&blob.name) {
                continue;
            }
            return Err(invalid(
                i,
                format!(
                    "the blob `{}` names no file of the shipped set: ship it (`--shipped`), or \
                     remove the pin",
                    blob.name
                ),
            ));
        };
        for artifact in &recipe.spec.artifacts {
            let name = artifact.shipped_name();
            if shipped.get(&name).is_some_and(|a| a.origin == file.origin) {
                return Err(invalid(
                    i,
                    format!(
                        "the blob `{}` is the shipped file `{}` of the artifact `{name}`: an \
                         artifact is compared with its rebuild, never pinned",
                        blob.name, file.origin
                    ),
                ));
            }
        }
        let outcome = if file.hashes.get(blob.digest.algorithm) == blob.digest {
            BlobOutcome::Pinned
        } else {
            BlobOutcome::Different
        };
        checked.push(BlobReport {
            name: blob.name.clone(),
            reason: blob.reason.clone(),
            pinned: blob.digest,
            found: file.origin.clone(),
            hashes: file.hashes,
            outcome,
        });
    }
    Ok(checked)
}

/// The worst the blobs weigh in the verdict (`identical` when every one matched, or none).
pub(crate) fn blobs_verdict(blobs: &[BlobReport]) -> Verdict {
    blobs
        .iter()
        .map(|b| b.outcome.verdict())
        .fold(Verdict::Identical, Verdict::worst)
}

/// How one shipped file is counted, before bundles are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Named by an artifact or a blob: these bytes, in these classes.
    Named(Coverage),
    /// Named by nothing.
    Unnamed,
}

/// The coverage of the shipped `files` by what the verification found of them.
pub(crate) fn shipped_coverage(
    files: &[ShippedFile],
    artifacts: &[ArtifactReport],
    blobs: &[BlobReport],
) -> Coverage {
    let classes: Vec<Class> = files
        .iter()
        .map(|f| classify(f, artifacts, blobs))
        .collect();
    // A member of a shipped bundle reads `BUNDLE//MEMBER` (see `shipped`).
    let bundle_of = |f: &ShippedFile| {
        files
            .iter()
            .position(|b| f.origin.starts_with(&format!("{}//", b.origin)))
    };
    let unexplained = |c: &Class| matches!(c, Class::Named(n) if n.unexplained > 0);
    let mut total = Coverage::default();
    for (i, (file, class)) in files.iter().zip(&classes).enumerate() {
        let size = file.hashes.size;
        match bundle_of(file) {
            // A member of a bundle that is named is counted in the bundle.
            Some(b) if classes[b] != Class::Unnamed => continue,
            _ => {}
        }
        let is_bundle = files
            .iter()
            .any(|m| m.origin.starts_with(&format!("{}//", file.origin)));
        match class {
            Class::Named(counted) => {
                let member_fails = files
                    .iter()
                    .zip(&classes)
                    .any(|(m, c)| bundle_of(m) == Some(i) && unexplained(c));
                if member_fails {
                    total.unexplained = total.unexplained.saturating_add(size);
                } else {
                    total.add(counted);
                }
            }
            // Its members are counted instead.
            Class::Unnamed if is_bundle => {}
            Class::Unnamed => total.unexplained = total.unexplained.saturating_add(size),
        }
    }
    total
}

/// How `file` is counted by the artifacts and blobs that name it (the worst of them).
fn classify(file: &ShippedFile, artifacts: &[ArtifactReport], blobs: &[BlobReport]) -> Class {
    let size = file.hashes.size;
    let whole_unexplained = Coverage {
        unexplained: size,
        ..Coverage::default()
    };
    let mut counts: Vec<Coverage> = artifacts
        .iter()
        .filter(|a| a.shipped.as_ref().is_some_and(|s| s.origin == file.origin))
        .map(|a| match a.verdict {
            Verdict::Identical => Coverage {
                reproduced: size,
                ..Coverage::default()
            },
            Verdict::Equivalent => {
                let masked = a.difference.as_ref().map_or(0, masked_bytes).min(size);
                Coverage {
                    reproduced: size - masked,
                    masked,
                    ..Coverage::default()
                }
            }
            _ => whole_unexplained,
        })
        .collect();
    counts.extend(
        blobs
            .iter()
            .filter(|b| b.found == file.origin)
            .map(|b| match b.outcome {
                BlobOutcome::Pinned => Coverage {
                    pinned: size,
                    ..Coverage::default()
                },
                BlobOutcome::Different => whole_unexplained,
            }),
    );
    // Two names for one file that disagree: the one that vouches least counts.
    counts
        .into_iter()
        .max_by_key(|c| (c.unexplained, c.masked, c.pinned))
        .map_or(Class::Unnamed, Class::Named)
}

/// The differing bytes that allowances covered: those of the comparison's `equivalent` leaves.
fn masked_bytes(c: &Comparison) -> u64 {
    c.leaves
        .iter()
        .filter(|l| l.verdict == CompareVerdict::Equivalent)
        .filter_map(|l| l.content.as_ref())
        .map(|content| content.differing_bytes)
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests;
