use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::attest::check::Problem;

#[test]
fn versions_compare_numbers_as_numbers() {
    for (a, b, order) in [
        ("1.0.9", "1.0.10", Ordering::Less),
        ("1.0.10", "1.0.9", Ordering::Greater),
        ("1.0.0", "1.0.0", Ordering::Equal),
        ("1.0", "1.0.0", Ordering::Less),
        ("1.0.0-rc1", "1.0.0-rc2", Ordering::Less),
        ("2.0", "10.0", Ordering::Less),
        ("01", "1", Ordering::Less),
        ("", "0", Ordering::Less),
        ("é1", "é2", Ordering::Less),
    ] {
        assert_eq!(compare_versions(a, b), order, "{a} vs {b}");
    }
}

fn entry(file: &str, status: Status, package: Option<(&str, &str)>) -> Entry {
    Entry {
        file: PathBuf::from(file),
        status,
        release: package.map(|(package, version)| Release {
            package: package.to_owned(),
            version: version.to_owned(),
            verdict: Verdict::Identical,
            dump: None,
            verifier: "v".to_owned(),
            time: "2026-01-01T00:00:00Z".to_owned(),
            isolation: rebuild::Isolation {
                backend: "bubblewrap".to_owned(),
                version: None,
                root: None,
            },
            rebuilds: 1,
            drift: Vec::new(),
            digests: BTreeSet::from([BTreeMap::from([("sha256".to_owned(), "a".repeat(64))])]),
        }),
        problems: Vec::new(),
    }
}

/// `entry` whose subjects are the one sha256 `sha…`.
fn of_digest(file: &str, status: Status, version: &str, sha: &str) -> Entry {
    let mut e = entry(file, status, Some(("fw", version)));
    if let Some(r) = &mut e.release {
        r.digests = BTreeSet::from([BTreeMap::from([("sha256".to_owned(), sha.repeat(64))])]);
    }
    e
}

/// Two valid attestations of one package and version that disagree: both passed, of other
/// bytes (two binaries go by one name), or passed and failed, of the same bytes. Each row once
/// read `passed` on its own, and the fleet exited 0 for the first.
#[test]
fn a_pass_that_another_attestation_of_the_release_contradicts_is_disputed() {
    let mut entries = vec![
        of_digest("a", Status::Passed, "1.0", "a"),
        of_digest("b", Status::Passed, "1.0", "b"),
        of_digest("c", Status::Passed, "2.0", "c"),
        of_digest("d", Status::Failed, "2.0", "c"),
        // A failed check of other bytes (a tampered copy) disputes nothing.
        of_digest("e", Status::Passed, "3.0", "e"),
        of_digest("f", Status::Failed, "3.0", "f"),
        of_digest("g", Status::Passed, "3.0", "e"),
        // Rebuilt as shipped, failed for a device's flash: the release bytes stand.
        of_digest("h", Status::Passed, "4.0", "h"),
        of_digest("i", Status::Failed, "4.0", "h"),
    ];
    if let Some(r) = &mut entries[8].release {
        r.dump = Some(Verdict::Different);
    }
    mark_disputes(&mut entries);
    let statuses: Vec<Status> = entries.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Disputed,
            Status::Disputed,
            Status::Disputed,
            Status::Failed,
            Status::Passed,
            Status::Failed,
            Status::Passed,
            Status::Passed,
            Status::Failed,
        ]
    );
    assert!(
        entries[0].problems[0]
            .1
            .contains("`b` attests other digests for `fw` 1.0"),
        "{:?}",
        entries[0].problems
    );
    assert!(
        entries[2].problems[0]
            .1
            .contains("`d` attests the same digests of `fw` 2.0 as failed"),
        "{:?}",
        entries[2].problems
    );
    let fleet = Fleet { entries };
    assert_eq!(fleet.exit_status(), ExitStatus::Failure);
    assert_eq!(Status::Disputed.exit_status(), ExitStatus::Failure);
}

#[test]
fn rows_sort_by_package_and_version_and_the_worst_status_wins() {
    let mut entries = vec![
        entry("z", Status::Unreadable, None),
        entry("a", Status::Rejected, None),
        entry("c", Status::Passed, Some(("fw", "1.0.10"))),
        entry("d", Status::Failed, Some(("fw", "1.0.9"))),
        entry("e", Status::Passed, Some(("boot", "2"))),
    ];
    entries.sort_by(compare_entries);
    let files: Vec<String> = entries
        .iter()
        .map(|e| e.file.display().to_string())
        .collect();
    assert_eq!(files, ["e", "d", "c", "a", "z"]);

    let mut fleet = Fleet { entries };
    assert_eq!(fleet.exit_status(), ExitStatus::Error);
    fleet.entries.retain(|e| e.status != Status::Unreadable);
    assert_eq!(fleet.exit_status(), ExitStatus::Failure);
    fleet.entries.retain(|e| e.status == Status::Passed);
    assert_eq!(fleet.exit_status(), ExitStatus::Success);
    assert_eq!(fleet.count(Status::Passed), 2);
}

proptest::proptest! {
    #[test]
    fn comparing_versions_never_panics_and_is_antisymmetric(a in ".{0,12}", b in ".{0,12}") {
        let ab = compare_versions(&a, &b);
        proptest::prop_assert_eq!(ab, compare_versions(&b, &a).reverse());
        proptest::prop_assert_eq!(ab == Ordering::Equal, a == b);
    }
}

/// A report as `check_bundle` gives it for `predicate`, with a summary when `summary`.
fn checked(predicate: serde_json::Value, summary: bool) -> Report {
    Report {
        envelopes: Vec::new(),
        subjects: Vec::new(),
        artifacts: Vec::new(),
        summary: summary.then(|| crate::attest::check::Summary {
            passed: false,
            verifier_id: "https://lab.example/verifier".to_owned(),
            time_verified: "2026-12-01T10:00:00Z".to_owned(),
            verified_levels: Vec::new(),
            resource_uri: "pkg:generic/acme-router-fw@1.0.0".to_owned(),
            policy_sha256: None,
        }),
        rebuild_verdict: None,
        verifier_name: None,
        redacted: false,
        custody: crate::attest::check::Custody::default(),
        rebuild: Some(RebuildPredicate::parse(predicate).unwrap()),
        problems: vec![Problem::VerificationFailed],
    }
}

#[test]
fn drift_names_what_moved_between_rebuilds_a_failed_rebuild_and_the_toolchain() {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json")).unwrap();
    p["verdict"] = "nondeterministic".into();
    p["artifacts"][0]["nondeterminism"] = p["artifacts"][0]["difference"].clone();
    p["artifacts"][0]["nondeterminism"]["leaves"][0]["content"]["differing_bytes"] = 12.into();
    p["failed_rebuild"] = serde_json::json!({
        "rebuild": 2,
        "variation": { "umask": 63, "clock_shift_days": null, "env_reversed": false,
                       "nested_build_dir": false, "varied": ["umask"] },
    });
    p["toolchain"]["drift"] = serde_json::json!([
        { "kind": "changed", "path": "/usr/bin/gcc-12",
          "expected": format!("sha256:{}", "0".repeat(64)),
          "found": format!("sha256:{}", "1".repeat(64)) },
        { "kind": "renamed", "from": "a" },
    ]);
    let entry = entry_of(Path::new("a.intoto.jsonl"), &checked(p.clone(), true));
    assert_eq!(entry.status, Status::Failed);
    assert!(entry.problems.is_empty());
    let release = entry.release.unwrap();
    assert_eq!(
        (release.package.as_str(), release.version.as_str()),
        ("acme-router-fw", "1.0.0")
    );
    assert_eq!(release.verdict, Verdict::Nondeterministic);
    assert_eq!(release.verifier, "https://lab.example/verifier");
    assert_eq!(release.time, "2026-12-01T10:00:00Z");
    assert_eq!(release.isolation.backend, "bwrap");
    assert_eq!(release.rebuilds, 2);
    assert_eq!(
        release.drift,
        [
            Drift::Rebuilds {
                artifact: "firmware.img".to_owned(),
                differing_bytes: Some(12),
            },
            Drift::FailedRebuild {
                rebuild: 2,
                varied: vec!["umask".to_owned()],
            },
            Drift::Toolchain {
                what: "`/usr/bin/gcc-12` changed".to_owned(),
            },
            Drift::Toolchain {
                what: "a change of a kind this version does not know".to_owned(),
            },
        ]
    );

    // Without a summary the bundle is rejected, and the release still reads from the
    // predicate: its verifier and the end of its rebuild.
    let mut report = checked(p, false);
    report.problems = vec![Problem::MissingPredicate {
        predicate_type: crate::attest::vsa::PREDICATE_TYPE,
    }];
    let entry = entry_of(Path::new("b.intoto.jsonl"), &report);
    assert_eq!(entry.status, Status::Rejected);
    assert_eq!(entry.problems[0].0, "missing_predicate");
    let release = entry.release.unwrap();
    assert_eq!(release.verifier, "https://reprove.dev/verifier");
    assert!(release.time.starts_with("20"), "{}", release.time);
}
