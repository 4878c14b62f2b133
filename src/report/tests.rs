use std::cmp::Ordering;

use super::*;

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
            verifier: "v".to_owned(),
            time: "2026-01-01T00:00:00Z".to_owned(),
            isolation: rebuild::Isolation {
                backend: "bubblewrap".to_owned(),
                version: None,
            },
            rebuilds: 1,
            drift: Vec::new(),
        }),
        problems: Vec::new(),
    }
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
