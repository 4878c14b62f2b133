//! `verify --from-attestation`: run again the verification an attestation describes, and say
//! whether it comes out the same.
//!
//! The rebuild predicate records the invocation (recipe and shipped paths) and what was found:
//! recipe and lock digests, the escrow digest, each shipped file's and each rebuilt artifact's
//! digests, and the verdicts. A replay reads those, runs `verify` on the same inputs, and lists
//! every recorded fact the new run does not reproduce. Signatures are checked when keys are
//! given (and then an unsigned or wrongly signed attestation is refused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::bundle::read_bundle;
use super::check::REBUILD_PREDICATE_TYPE;
use super::key::VerifyingKey;
use super::rebuild::{Hex, RebuildPredicate};
use super::Error;
use crate::verify::Report;

/// What an attestation recorded: its rebuild predicate, read by its one type.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub predicate: RebuildPredicate,
}

impl Recorded {
    /// The recipe the recorded run was given.
    pub fn recipe(&self) -> PathBuf {
        PathBuf::from(&self.predicate.invocation.recipe)
    }

    /// The shipped paths the recorded run was given.
    pub fn shipped(&self) -> Vec<PathBuf> {
        self.predicate
            .invocation
            .shipped
            .iter()
            .map(PathBuf::from)
            .collect()
    }
}

/// A recorded fact the new run did not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub what: String,
    pub recorded: String,
    pub found: String,
}

/// Read the rebuild predicate of the bundle at `path`; with `keys`, its envelope must be
/// signed by one of them.
pub fn read_recorded(path: &Path, keys: &[VerifyingKey]) -> Result<Recorded, Error> {
    let bad = |reason: String| Error::Replay {
        path: path.to_path_buf(),
        reason,
    };
    for (i, env) in read_bundle(path)?.iter().enumerate() {
        let mut statement: Value = serde_json::from_slice(&env.payload)
            .map_err(|e| bad(format!("envelope {} holds no JSON statement: {e}", i + 1)))?;
        if statement["predicateType"] != REBUILD_PREDICATE_TYPE {
            continue;
        }
        if !keys.is_empty() && env.verify(keys).is_none() {
            return Err(bad(format!(
                "envelope {} is not signed by a given key",
                i + 1
            )));
        }
        let predicate = statement["predicate"].take();
        return RebuildPredicate::parse(predicate)
            .map(|predicate| Recorded { predicate })
            .map_err(|e| bad(format!("envelope {}: invalid predicate: {e}", i + 1)));
    }
    Err(bad(format!(
        "no statement of type `{REBUILD_PREDICATE_TYPE}`"
    )))
}

/// Every recorded fact that `report` does not reproduce.
pub fn compare(recorded: &Recorded, report: &Report) -> Vec<Mismatch> {
    let p = &recorded.predicate;
    let mut out = Vec::new();
    let mut check = |what: String, recorded: Option<&str>, found: Option<&str>| {
        if recorded != found {
            out.push(Mismatch {
                what,
                recorded: recorded.unwrap_or("nothing").to_owned(),
                found: found.unwrap_or("nothing").to_owned(),
            });
        }
    };
    let hex = |h: &Hex| h.hex();
    check(
        "recipe sha256".into(),
        Some(&hex(&p.recipe.digest.sha256)),
        Some(&report.recipe.hashes.sha256.hex()),
    );
    check(
        "lock sha256".into(),
        Some(&hex(&p.lock.digest.sha256)),
        Some(&report.lock.hashes.sha256.hex()),
    );
    let escrow = report.source.found.as_ref().map(|e| e.sha256.hex());
    check(
        "escrow sha256".into(),
        p.escrow.digest.as_ref().map(|d| hex(&d.sha256)).as_deref(),
        escrow.as_deref(),
    );
    check(
        "verdict".into(),
        Some(p.verdict.as_str()),
        Some(report.verdict.as_str()),
    );
    let found: BTreeMap<&str, _> = report
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a))
        .collect();
    for recorded in &p.artifacts {
        let name = &recorded.name;
        let Some(a) = found.get(name.as_str()) else {
            check(format!("artifact `{name}`"), Some("recorded"), None);
            continue;
        };
        check(
            format!("`{name}` verdict"),
            Some(recorded.verdict.as_str()),
            Some(a.verdict.as_str()),
        );
        let was_shipped = recorded.shipped.as_ref().map(|s| hex(&s.digest.sha256));
        let now_shipped = a.shipped.as_ref().map(|s| s.hashes.sha256.hex());
        check(
            format!("`{name}` shipped sha256"),
            was_shipped.as_deref(),
            now_shipped.as_deref(),
        );
        let was_rebuilt = recorded
            .rebuilt
            .first()
            .copied()
            .flatten()
            .map(|d| hex(&d.sha256));
        let now_rebuilt = a.rebuilt.first().copied().flatten().map(|h| h.sha256.hex());
        check(
            format!("`{name}` rebuilt sha256"),
            was_rebuilt.as_deref(),
            now_rebuilt.as_deref(),
        );
    }
    for name in found.keys() {
        if !p.artifacts.iter().any(|a| a.name == *name) {
            check(format!("artifact `{name}`"), None, Some("present"));
        }
    }
    out
}
