//! `reprove report`: one view of a fleet's attestations — per package and version, what was
//! verified, by whom, when, how isolated, and what moved between rebuilds.
//!
//! Every bundle found ([`load`]) is checked as `attest verify` checks one
//! ([`crate::attest::check::check_bundle`], against the trusted keys given, without
//! artifacts), and becomes one [`Entry`] whatever became of it. Invariants:
//!
//! - Nothing is silently skipped: a file that cannot be read or parsed is
//!   [`Status::Unreadable`] with the reason; one whose signatures or statements do not hold is
//!   [`Status::Rejected`] with every problem; a valid attestation of a failed verification is
//!   [`Status::Failed`]; only a valid attestation that `PASSED` is [`Status::Passed`], and only
//!   while no other valid attestation of the same package and version contradicts it (passes
//!   other digests, or fails the same ones): else it is [`Status::Disputed`], with the file
//!   that disputes it.
//! - A failed dump check (`verify --dump` signs `FAILED` over an `identical` rebuild) is a
//!   valid record of a failed verification: [`Status::Failed`], its row showing the dump's
//!   verdict first, never a bare `identical`. It fails a device, not the release bytes: it
//!   disputes no pass of the same digests.
//! - What a row shows of a release (package, version, verdict, verifier, isolation, drift)
//!   comes only from signed statements that parsed: an unsigned claim is never shown as a
//!   fact.
//! - Rows are sorted by package, then version (numbers in a version compare as numbers), then
//!   time, then file; rows without a release come last, by file.
//! - The exit status is the worst over all entries: 0 when every one passed, 1 when a release
//!   failed or an attestation is rejected, 2 when a file could not be read.

pub(crate) mod load;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;

use crate::attest::check::{check_bundle, Report};
use crate::attest::key::VerifyingKey;
use crate::attest::rebuild::{self, RebuildPredicate};
use crate::exit::ExitStatus;
use crate::verify::Verdict;

pub(crate) use load::Error;

/// What became of one attestation file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// Valid, and the verification `PASSED`.
    Passed,
    /// Valid, and the verification `FAILED`: the release is not borne out.
    Failed,
    /// Valid and `PASSED`, but another valid attestation of the same package and version
    /// contradicts it: it passes other bytes, or fails these.
    Disputed,
    /// A signature or a statement does not hold: the file proves nothing.
    Rejected,
    /// The file could not be read as a bundle (missing, truncated, too large, not text).
    Unreadable,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Disputed => "disputed",
            Status::Rejected => "rejected",
            Status::Unreadable => "unreadable",
        }
    }

    pub(crate) fn exit_status(self) -> ExitStatus {
        match self {
            Status::Passed => ExitStatus::Success,
            Status::Failed | Status::Disputed | Status::Rejected => ExitStatus::Failure,
            Status::Unreadable => ExitStatus::Error,
        }
    }
}

/// One attestation file, as the report shows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) file: PathBuf,
    pub(crate) status: Status,
    /// What the signed statements say of the release, when they parsed.
    pub(crate) release: Option<Release>,
    /// Why the file is rejected or unreadable, one line each (stable code, message).
    pub(crate) problems: Vec<(&'static str, String)>,
}

/// A release as its signed statements describe it.
#[derive(Debug, Clone)]
pub(crate) struct Release {
    pub(crate) package: String,
    pub(crate) version: String,
    pub(crate) verdict: Verdict,
    /// The verdict of the flash dump check the predicate records (`verify --dump`), if any: a
    /// release rebuilt `identical` whose dump failed is a failed verification of that device.
    pub(crate) dump: Option<Verdict>,
    /// The verification summary's `verifier.id` (the predicate's when there is no summary).
    pub(crate) verifier: String,
    /// When it was verified: the summary's `timeVerified` (else the rebuild's end), RFC 3339.
    pub(crate) time: String,
    pub(crate) isolation: rebuild::Isolation,
    pub(crate) rebuilds: usize,
    pub(crate) drift: Vec<Drift>,
    /// The digest sets of its subjects, names aside: the bytes it attests.
    pub(crate) digests: BTreeSet<BTreeMap<String, String>>,
}

/// Something that moved: between rebuilds, or in the toolchain against its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Drift {
    /// Two rebuilds of an artifact disagree in this many bytes (`None`: not counted).
    Rebuilds {
        artifact: String,
        differing_bytes: Option<u64>,
    },
    /// A rebuild after the first failed (1-based), with what it varied.
    FailedRebuild { rebuild: usize, varied: Vec<String> },
    /// A pinned file or tool that no longer matches the lock.
    Toolchain { what: String },
}

/// The whole fleet, sorted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fleet {
    pub(crate) entries: Vec<Entry>,
}

impl Fleet {
    /// How many entries have `status`.
    pub(crate) fn count(&self, status: Status) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }

    pub(crate) fn exit_status(&self) -> ExitStatus {
        self.entries.iter().fold(ExitStatus::Success, |worst, e| {
            worst.worst(e.status.exit_status())
        })
    }
}

/// Find, read and check every bundle `paths` name, against the trusted `keys`.
pub(crate) fn report_fleet(paths: &[PathBuf], keys: &[VerifyingKey]) -> Result<Fleet, Error> {
    let bundles = load::find_bundles(paths)?;
    let mut entries: Vec<Entry> = bundles
        .entries
        .iter()
        .map(|found| {
            // One at a time: a fleet's bundles are never all in memory at once.
            let checked = bundles.read(found).and_then(|envelopes| {
                check_bundle(&envelopes, keys, &[]).map_err(|e| e.to_string())
            });
            match checked {
                Ok(report) => entry_of(&found.path, &report),
                Err(reason) => Entry {
                    file: found.path.clone(),
                    status: Status::Unreadable,
                    release: None,
                    problems: vec![("unreadable", reason)],
                },
            }
        })
        .collect();
    mark_disputes(&mut entries);
    entries.sort_by(compare_entries);
    Ok(Fleet { entries })
}

/// A passed entry stays passed only while no other valid attestation of the same package and
/// version contradicts it: one that passes other bytes, or fails the same bytes.
fn mark_disputes(entries: &mut [Entry]) {
    let valid: Vec<(usize, Status, &Release)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.status, Status::Passed | Status::Failed))
        .filter_map(|(i, e)| e.release.as_ref().map(|r| (i, e.status, r)))
        .collect();
    let mut disputes: Vec<(usize, String)> = Vec::new();
    for &(i, status, r) in &valid {
        if status != Status::Passed {
            continue;
        }
        for &(j, other_status, other) in &valid {
            if i == j || other.package != r.package || other.version != r.version {
                continue;
            }
            let file = entries[j].file.display();
            let (package, version) = (&r.package, &r.version);
            let why = match (other_status, other.digests == r.digests) {
                (Status::Passed, false) => format!(
                    "`{file}` attests other digests for `{package}` {version}: two binaries \
                     go by one release"
                ),
                // A failed dump check fails a device, not the bytes the release attests.
                (Status::Failed, true)
                    if other.verdict.passed(false)
                        && other.dump.is_some_and(|d| !d.passed(false)) =>
                {
                    continue
                }
                (Status::Failed, true) => {
                    format!("`{file}` attests the same digests of `{package}` {version} as failed")
                }
                _ => continue,
            };
            disputes.push((i, why));
        }
    }
    for (i, why) in disputes {
        entries[i].status = Status::Disputed;
        entries[i].problems.push(("disputed", why));
    }
}

/// The entry for a bundle that was read and checked.
fn entry_of(file: &Path, report: &Report) -> Entry {
    let status = if report.is_verified() {
        Status::Passed
    } else if report.records_a_failure() {
        Status::Failed
    } else {
        Status::Rejected
    };
    let problems = if status == Status::Rejected {
        report
            .problems
            .iter()
            .map(|p| (p.code(), p.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    Entry {
        file: file.to_owned(),
        status,
        release: report.rebuild.as_ref().map(|p| release_of(p, report)),
        problems,
    }
}

fn release_of(p: &RebuildPredicate, report: &Report) -> Release {
    let (verifier, time) = match &report.summary {
        Some(s) => (s.verifier_id.clone(), s.time_verified.clone()),
        None => (
            p.verifier.id.clone(),
            p.finished_on.format(&Rfc3339).unwrap_or_default(),
        ),
    };
    let mut drift: Vec<Drift> = p
        .artifacts
        .iter()
        .filter_map(|a| {
            let moved = a.nondeterminism.as_ref()?;
            let differing_bytes = moved
                .leaves
                .iter()
                .filter_map(|l| l.content.as_ref().map(|c| c.differing_bytes))
                .try_fold(0u64, u64::checked_add);
            Some(Drift::Rebuilds {
                artifact: a.name.clone(),
                differing_bytes,
            })
        })
        .collect();
    if let Some(failed) = &p.failed_rebuild {
        drift.push(Drift::FailedRebuild {
            rebuild: failed.rebuild,
            varied: failed.variation.varied.clone(),
        });
    }
    drift.extend(p.toolchain.drift.iter().map(|d| Drift::Toolchain {
        what: toolchain_drift(d),
    }));
    Release {
        package: p.package.name.clone(),
        version: p.package.version.clone(),
        verdict: p.verdict,
        dump: p.dump.as_ref().map(|d| d.verdict),
        verifier,
        time,
        isolation: p.build.isolation.clone(),
        rebuilds: p.rebuilds.len(),
        drift,
        digests: report.subjects.iter().map(|s| s.digest.clone()).collect(),
    }
}

fn toolchain_drift(d: &rebuild::Drift) -> String {
    match d {
        rebuild::Drift::Changed { path, .. } => format!("`{path}` changed"),
        rebuild::Drift::Missing { path, .. } => format!("`{path}` is missing"),
        rebuild::Drift::Moved { tool, .. } => format!("tool `{tool}` moved"),
        rebuild::Drift::Unlocked { tool } => format!("tool `{tool}` is not locked"),
        rebuild::Drift::Other => "a change of a kind this version does not know".to_owned(),
    }
}

fn compare_entries(a: &Entry, b: &Entry) -> Ordering {
    match (&a.release, &b.release) {
        (Some(x), Some(y)) => x
            .package
            .cmp(&y.package)
            .then_with(|| compare_versions(&x.version, &y.version))
            .then_with(|| x.time.cmp(&y.time)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.file.cmp(&b.file))
}

/// Versions compared piece by piece, runs of digits as numbers (`1.0.9` < `1.0.10`).
fn compare_versions(a: &str, b: &str) -> Ordering {
    fn pieces(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (pa, pb) = (pieces(a), pieces(b));
    for (x, y) in pa.iter().zip(&pb) {
        let order = if x.0 && y.0 {
            let (tx, ty) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            x.1.cmp(y.1)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    pa.len().cmp(&pb.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests;
