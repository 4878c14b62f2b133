//! `verify --from-attestation`: run again the verification an attestation describes, and say
//! whether it comes out the same.
//!
//! The rebuild predicate records the invocation (recipe and shipped paths) and what was found:
//! recipe and lock digests, the escrow digest, each shipped file's and each rebuilt artifact's
//! digests, the verdicts, and each pinned blob's outcome and shipped digest. A replay reads those, runs `verify` on the same inputs, and lists
//! every recorded fact the new run does not reproduce. Signatures are checked when keys are
//! given (and then an unsigned or wrongly signed attestation is refused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::bundle::read_bundle;
use super::check::REBUILD_PREDICATE_TYPE;
use super::key::VerifyingKey;
use super::Error;
use crate::verify::Report;

/// What an attestation recorded, as far as a replay needs it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub recipe: PathBuf,
    pub shipped: Vec<PathBuf>,
    pub verdict: String,
    pub recipe_sha256: String,
    pub lock_sha256: String,
    pub escrow_sha256: Option<String>,
    /// Artifact name → (verdict, shipped sha256, first rebuild's sha256).
    pub artifacts: BTreeMap<String, (String, Option<String>, Option<String>)>,
    /// Pinned blob name → (outcome, shipped sha256); empty for a predicate without blobs.
    pub blobs: BTreeMap<String, (String, Option<String>)>,
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
        let statement: Value = serde_json::from_slice(&env.payload)
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
        return parse(&statement["predicate"]).map_err(bad);
    }
    Err(bad(format!(
        "no statement of type `{REBUILD_PREDICATE_TYPE}`"
    )))
}

fn parse(p: &Value) -> Result<Recorded, String> {
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the predicate lacks `{what}`"))
    };
    let shipped = p["invocation"]["shipped"]
        .as_array()
        .ok_or("the predicate lacks `invocation.shipped`")?
        .iter()
        .map(|s| text(s, "invocation.shipped[]").map(PathBuf::from))
        .collect::<Result<_, _>>()?;
    let mut artifacts = BTreeMap::new();
    for a in p["artifacts"]
        .as_array()
        .ok_or("the predicate lacks `artifacts`")?
    {
        let name = text(&a["name"], "artifacts[].name")?;
        let verdict = text(&a["verdict"], "artifacts[].verdict")?;
        let shipped = a["shipped"]["digest"]["sha256"].as_str().map(str::to_owned);
        let rebuilt = a["rebuilt"][0]["sha256"].as_str().map(str::to_owned);
        artifacts.insert(name, (verdict, shipped, rebuilt));
    }
    let mut blobs = BTreeMap::new();
    for b in p["blobs"].as_array().into_iter().flatten() {
        let name = text(&b["name"], "blobs[].name")?;
        let outcome = text(&b["outcome"], "blobs[].outcome")?;
        let shipped = b["shipped"]["digest"]["sha256"].as_str().map(str::to_owned);
        blobs.insert(name, (outcome, shipped));
    }
    Ok(Recorded {
        recipe: PathBuf::from(text(&p["invocation"]["recipe"], "invocation.recipe")?),
        shipped,
        verdict: text(&p["verdict"], "verdict")?,
        recipe_sha256: text(&p["recipe"]["digest"]["sha256"], "recipe.digest.sha256")?,
        lock_sha256: text(&p["lock"]["digest"]["sha256"], "lock.digest.sha256")?,
        escrow_sha256: p["escrow"]["digest"]["sha256"].as_str().map(str::to_owned),
        artifacts,
        blobs,
    })
}

/// Every recorded fact that `report` does not reproduce.
pub fn compare(recorded: &Recorded, report: &Report) -> Vec<Mismatch> {
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
    check(
        "recipe sha256".into(),
        Some(&recorded.recipe_sha256),
        Some(&report.recipe.hashes.sha256.hex()),
    );
    check(
        "lock sha256".into(),
        Some(&recorded.lock_sha256),
        Some(&report.lock.hashes.sha256.hex()),
    );
    let escrow = report.source.found.as_ref().map(|e| e.sha256.hex());
    check(
        "escrow sha256".into(),
        recorded.escrow_sha256.as_deref(),
        escrow.as_deref(),
    );
    check(
        "verdict".into(),
        Some(&recorded.verdict),
        Some(report.verdict.as_str()),
    );
    let found: BTreeMap<&str, _> = report
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a))
        .collect();
    for (name, (verdict, shipped, rebuilt)) in &recorded.artifacts {
        let Some(a) = found.get(name.as_str()) else {
            check(format!("artifact `{name}`"), Some("recorded"), None);
            continue;
        };
        check(
            format!("`{name}` verdict"),
            Some(verdict),
            Some(a.verdict.as_str()),
        );
        let now_shipped = a.shipped.as_ref().map(|s| s.hashes.sha256.hex());
        check(
            format!("`{name}` shipped sha256"),
            shipped.as_deref(),
            now_shipped.as_deref(),
        );
        let now_rebuilt = a.rebuilt.first().copied().flatten().map(|h| h.sha256.hex());
        check(
            format!("`{name}` rebuilt sha256"),
            rebuilt.as_deref(),
            now_rebuilt.as_deref(),
        );
    }
    for name in found.keys() {
        if !recorded.artifacts.contains_key(*name) {
            check(format!("artifact `{name}`"), None, Some("present"));
        }
    }
    for (name, (outcome, shipped)) in &recorded.blobs {
        let Some(b) = report.blobs.iter().find(|b| b.name == *name) else {
            check(format!("blob `{name}`"), Some("recorded"), None);
            continue;
        };
        let now = serde_json::to_value(b.outcome).ok();
        check(
            format!("blob `{name}` outcome"),
            Some(outcome),
            now.as_ref().and_then(Value::as_str),
        );
        check(
            format!("blob `{name}` shipped sha256"),
            shipped.as_deref(),
            Some(&b.hashes.sha256.hex()),
        );
    }
    for b in &report.blobs {
        if !recorded.blobs.contains_key(&b.name) {
            check(format!("blob `{}`", b.name), None, Some("present"));
        }
    }
    out
}
