//! A signed rebuild predicate checked against itself: each verdict it records must follow from
//! the digests and comparisons it records beside it.
//!
//! A signature proves who wrote a predicate, not that it is true; a predicate whose verdict
//! does not follow from its own record is rejected whoever signed it. What must hold:
//!
//! - the overall `verdict` is the worst artifact verdict (and a pass names at least one artifact);
//! - each artifact has one `rebuilt` entry per rebuild, equal to that rebuild's record of it;
//! - `identical`: the shipped digests (sha256 and blake3) equal the rebuilt ones in every rebuild;
//! - `equivalent`: every rebuild agrees, the rebuilt digests differ from the shipped ones, and
//!   the `difference` is `equivalent` with every leaf `equivalent`, each leaf carrying at least
//!   one applied allowance whose ranges cover every listed differing range of its content;
//! - `different`: every rebuild agrees, the rebuilt digests differ from the shipped ones, and
//!   the `difference` is `different`;
//! - `nondeterministic`: two rebuilds whose records of the artifact disagree;
//! - `missing`: the artifact is absent from a rebuild or from the shipped set;
//! - `build-failed`: a rebuild that did not exit with status 0 (and `failed_rebuild`, when
//!   present, names a later rebuild that did not, with the verdict `build-failed`);
//! - a blob's `outcome` is `pinned` exactly when its shipped digest carries its pin, and the
//!   overall verdict weighs a `different` blob as a `different` artifact;
//! - the coverage's classes add up to its `total`; a provenance file's digest is its text's;
//! - the statement's subjects are the shipped files the predicate judged (artifacts and
//!   blobs), with their digests.
//!
//! Each contradiction found is one sentence, naming the artifact and what contradicts what.

use super::check::StatementSubject;
use super::rebuild::{Artifact, Comparison, DigestSet, RebuildPredicate, Termination};
use crate::verify::Verdict;

/// Every contradiction in `p`, whose statement names `subjects`.
pub(super) fn contradictions(p: &RebuildPredicate, subjects: &[StatementSubject]) -> Vec<String> {
    let mut found = Vec::new();
    let blobs = p
        .blobs
        .iter()
        .map(|b| b.outcome.verdict())
        .fold(Verdict::Identical, Verdict::worst);
    let worst = p
        .artifacts
        .iter()
        .map(|a| a.verdict)
        .reduce(Verdict::worst)
        .map(|w| w.worst(blobs));
    match worst {
        Some(worst) if worst != p.verdict => found.push(format!(
            "the verdict is `{}` but the worst artifact verdict is `{worst}`",
            p.verdict
        )),
        None if p.verdict.passed(false) => found.push(format!(
            "the verdict is `{}` but no artifact is recorded",
            p.verdict
        )),
        _ => {}
    }
    if let Some(f) = &p.failed_rebuild {
        let failed = f
            .rebuild
            .checked_sub(1)
            .and_then(|i| p.rebuilds.get(i))
            .is_some_and(|r| r.termination != Termination::Exited { value: 0 });
        if f.rebuild < 2 || !failed {
            found.push(format!(
                "`failed_rebuild` names rebuild {}, which is no later rebuild that failed",
                f.rebuild
            ));
        }
        if p.verdict != Verdict::BuildFailed {
            found.push(format!(
                "rebuild {} failed, but the verdict is `{}`",
                f.rebuild, p.verdict
            ));
        }
    }
    for a in &p.artifacts {
        artifact(p, a, &mut found);
    }
    subjects_match(p, subjects, &mut found);
    found.extend(super::custody::contradictions(
        &p.blobs,
        p.coverage.as_ref(),
        p.provenance.as_ref(),
    ));
    found
}

fn artifact(p: &RebuildPredicate, a: &Artifact, found: &mut Vec<String>) {
    let name = &a.name;
    let mut say = |what: String| found.push(format!("artifact `{name}`: {what}"));
    if a.rebuilt.len() != p.rebuilds.len() {
        say(format!(
            "{} rebuilt digests for {} rebuilds",
            a.rebuilt.len(),
            p.rebuilds.len()
        ));
        return;
    }
    for (i, (digest, rebuild)) in a.rebuilt.iter().zip(&p.rebuilds).enumerate() {
        let recorded = rebuild.artifacts.iter().find(|r| r.name == *name);
        if recorded.map(|r| &r.digest) != Some(digest) {
            say(format!(
                "its digest in rebuild {} is not the one `rebuilds[{i}]` records",
                i + 1
            ));
        }
    }
    let shipped = a.shipped.as_ref().map(|s| &s.digest);
    let rebuilt: Vec<Option<&DigestSet>> = a.rebuilt.iter().map(Option::as_ref).collect();
    let agree = rebuilt.windows(2).all(|w| w[0] == w[1]);
    let all_built = rebuilt.iter().all(Option::is_some) && !rebuilt.is_empty();
    let first = rebuilt.first().copied().flatten();
    let v = a.verdict;
    match v {
        Verdict::Identical => {
            if shipped.is_none() || !all_built || rebuilt.iter().any(|r| *r != shipped) {
                say(
                    "`identical`, but its rebuilt and shipped digests are not equal in every \
                     rebuild"
                        .to_owned(),
                );
            }
        }
        Verdict::Equivalent | Verdict::Different => {
            if shipped.is_none() || !all_built || !agree {
                say(format!(
                    "`{v}`, but it is not built alike in every rebuild and shipped"
                ));
            } else if first == shipped {
                say(format!(
                    "`{v}`, but its rebuilt and shipped digests are equal"
                ));
            }
            match &a.difference {
                None => say(format!("`{v}`, but no difference is recorded")),
                Some(d) if d.verdict != v.as_str() => {
                    say(format!("`{v}`, but its difference is `{}`", d.verdict));
                }
                Some(d) if v == Verdict::Equivalent => {
                    if let Some(why) = uncovered(d) {
                        say(format!("`equivalent`, but {why}"));
                    }
                }
                Some(_) => {}
            }
        }
        Verdict::Nondeterministic => {
            if agree {
                say("`nondeterministic`, but no two rebuilds disagree about it".to_owned());
            }
        }
        Verdict::Missing => {
            if shipped.is_some() && all_built {
                say("`missing`, but every rebuild and the shipped set have it".to_owned());
            }
        }
        Verdict::BuildFailed => {
            let failed = p
                .rebuilds
                .iter()
                .any(|r| r.termination != Termination::Exited { value: 0 });
            if !failed {
                say("`build-failed`, but every rebuild exited with status 0".to_owned());
            }
        }
        Verdict::ToolchainDrift | Verdict::SourceMismatch => {}
    }
}

/// Why an `equivalent` difference is not covered by the allowances it lists, if it is not.
fn uncovered(d: &Comparison) -> Option<String> {
    if d.leaves.is_empty() {
        return Some("its difference lists no differing leaf".to_owned());
    }
    for leaf in &d.leaves {
        let path = &leaf.path;
        if leaf.verdict != "equivalent" {
            return Some(format!("its leaf `{path}` is `{}`", leaf.verdict));
        }
        if leaf.allowances.is_empty() {
            return Some(format!("its leaf `{path}` lists no allowance"));
        }
        for r in leaf.content.iter().flat_map(|c| &c.ranges) {
            let mut spans: Vec<(u64, u64)> = leaf
                .allowances
                .iter()
                .flat_map(|a| &a.ranges)
                .map(|a| (a.offset, a.offset.saturating_add(a.len)))
                .collect();
            spans.sort_unstable();
            // Walk the covered spans from the range's start; a gap leaves a byte uncovered.
            let (start, end) = (r.offset, r.offset.saturating_add(r.len));
            let mut reached = start;
            for (s, e) in spans {
                if s <= reached && e > reached {
                    reached = e;
                }
            }
            if reached < end {
                return Some(format!(
                    "the bytes {start}..{end} of its leaf `{path}` lie outside the allowances \
                     it lists"
                ));
            }
        }
    }
    None
}

/// The subjects are the shipped files of the artifacts that have one, and of the blobs, with
/// their digests.
fn subjects_match(p: &RebuildPredicate, subjects: &[StatementSubject], found: &mut Vec<String>) {
    let shipped: Vec<(&str, &DigestSet)> = p
        .artifacts
        .iter()
        .filter_map(|a| a.shipped.as_ref().map(|s| (a.name.as_str(), &s.digest)))
        .chain(p.blobs.iter().map(|b| (b.name.as_str(), &b.shipped.digest)))
        .collect();
    if shipped.is_empty() {
        // Nothing was found in the shipped set: the subjects name the shipped files instead.
        return;
    }
    let hex = |h: &super::rebuild::Hex| crate::hash::hex(&h.0);
    for (name, digest) in &shipped {
        let subject = subjects.iter().find(|s| s.name == *name);
        let agrees = subject.is_some_and(|s| {
            s.digest.get("sha256") == Some(&hex(&digest.sha256))
                && s.digest
                    .get("blake3")
                    .is_none_or(|b| *b == hex(&digest.blake3))
        });
        if !agrees {
            found.push(format!(
                "artifact `{name}`: no subject carries its shipped digests"
            ));
        }
    }
    for s in subjects {
        if !shipped.iter().any(|(name, _)| *name == s.name) {
            found.push(format!(
                "the subject `{}` is no shipped artifact of the predicate",
                s.name
            ));
        }
    }
}
