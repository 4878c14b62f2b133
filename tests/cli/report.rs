//! `reprove report` over real attestations (issue 11 item 2): those of the Slurm run
//! (`tests/cli/slurm.rs`), with damaged ones added beside them — truncated, badly signed, a link
//! that leaves the folder. Each is listed with why, never skipped; the JSON is read through
//! structs that deny unknown fields; the HTML page is read back by headless Chromium.

use std::path::Path;

use serde::Deserialize;

use crate::slurm::{fleet, TAMPERED, VERSIONS};
use crate::support::browse;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetJson {
    schema_version: u32,
    summary: SummaryJson,
    attestations: Vec<EntryJson>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct SummaryJson {
    attestations: usize,
    passed: usize,
    failed: usize,
    rejected: usize,
    unreadable: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    file: String,
    status: String,
    package: Option<String>,
    version: Option<String>,
    verdict: Option<String>,
    /// Only when a dump check is recorded (`tests/cli/attest_dump.rs`).
    dump_verdict: Option<String>,
    verifier: Option<String>,
    time: Option<String>,
    isolation: Option<IsolationJson>,
    rebuilds: Option<usize>,
    #[serde(default)]
    drift: Vec<serde_json::Value>,
    #[serde(default)]
    problems: Vec<ProblemJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IsolationJson {
    backend: String,
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProblemJson {
    code: String,
    message: String,
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

#[test]
fn report_lists_every_file_with_why_in_text_json_and_html() {
    let fleet = fleet();
    let env = &fleet.demo.env;
    let mixed = env.path("mixed");
    std::fs::create_dir_all(mixed.join("more")).unwrap();
    for version in VERSIONS {
        let name = format!("release-{version}.intoto.jsonl");
        copy(&env.path(&format!("atts/{name}")), &mixed.join(&name));
    }
    let first = std::fs::read(env.path("atts/release-1.0.0.intoto.jsonl")).unwrap();
    // An upload cut short: the second envelope ends mid-line.
    std::fs::write(
        mixed.join("more/truncated.intoto.jsonl"),
        &first[..first.len() - 100],
    )
    .unwrap();
    // The same statements under a signature no key makes.
    let mut lines: Vec<serde_json::Value> = std::str::from_utf8(&first)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["signatures"][0]["sig"] = format!("{}==", "A".repeat(86)).into();
    let forged: Vec<String> = lines.iter().map(ToString::to_string).collect();
    let forged = forged.join("\n") + "\n";
    std::fs::write(mixed.join("more/forged.intoto.jsonl"), forged).unwrap();
    std::os::unix::fs::symlink(
        env.path("atts/release-1.0.1.intoto.jsonl"),
        mixed.join("outside.intoto.jsonl"),
    )
    .unwrap();
    env.write("mixed/notes.txt", "not an attestation: not listed");

    let page = env.path("fleet.html");
    let out = env
        .cmd(["report", "mixed", "--key", "vendor.pub", "--json", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    // An unreadable file: could not decide about it, the worst status of all.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: FleetJson = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report.schema_version, 1);
    // No dump was checked in these verifications: no row claims one.
    assert!(report.attestations.iter().all(|e| e.dump_verdict.is_none()));
    assert_eq!(
        report.summary,
        SummaryJson {
            attestations: 9,
            passed: 5,
            failed: 1,
            rejected: 1,
            unreadable: 2
        }
    );
    let statuses: Vec<(&str, Option<&str>, &str)> = report
        .attestations
        .iter()
        .map(|e| (e.file.as_str(), e.version.as_deref(), e.status.as_str()))
        .collect();
    // By package and version (the forged file's release is that of its still-signed rebuild
    // predicate, 1.0.0, and sorts by file among that version); rows without one come last.
    let mut expected: Vec<(String, Option<&str>, &str)> = vec![(
        "mixed/more/forged.intoto.jsonl".into(),
        Some("1.0.0"),
        "rejected",
    )];
    expected.extend(VERSIONS.iter().enumerate().map(|(i, v)| {
        let status = if i == TAMPERED { "failed" } else { "passed" };
        (format!("mixed/release-{v}.intoto.jsonl"), Some(*v), status)
    }));
    expected.push((
        "mixed/more/truncated.intoto.jsonl".into(),
        None,
        "unreadable",
    ));
    expected.push(("mixed/outside.intoto.jsonl".into(), None, "unreadable"));
    let expected: Vec<(&str, Option<&str>, &str)> = expected
        .iter()
        .map(|(f, v, s)| (f.as_str(), *v, *s))
        .collect();
    assert_eq!(statuses, expected);

    let entry = |file: &str| {
        report
            .attestations
            .iter()
            .find(|e| e.file == format!("mixed/{file}"))
            .unwrap()
    };
    let passed = entry("release-1.0.0.intoto.jsonl");
    assert_eq!(passed.package.as_deref(), Some("acme-router-fw"));
    assert_eq!(passed.verdict.as_deref(), Some("identical"));
    assert!(passed.verifier.as_deref().is_some_and(|v| !v.is_empty()));
    assert!(passed.time.as_deref().is_some_and(|t| t.starts_with("20")));
    assert_eq!(passed.isolation.as_ref().unwrap().backend, "bwrap");
    assert!(passed.isolation.as_ref().unwrap().version.is_some());
    assert_eq!(passed.rebuilds, Some(1));
    assert!(passed.drift.is_empty() && passed.problems.is_empty());
    let tampered = entry(&format!("release-{}.intoto.jsonl", VERSIONS[TAMPERED]));
    assert_eq!(tampered.verdict.as_deref(), Some("different"));
    // Different, not nondeterministic: a second rebuild agreed with the first.
    assert_eq!(tampered.rebuilds, Some(2));
    assert!(tampered.drift.is_empty(), "{:?}", tampered.drift);
    let problems = |file: &str| &entry(file).problems;
    let forged = problems("more/forged.intoto.jsonl");
    // The forged summary is not read, so it is missing too.
    assert_eq!(forged.len(), 2, "{forged:?}");
    assert_eq!(forged[0].code, "bad_signature");
    assert_eq!(forged[1].code, "missing_predicate");
    assert!(forged[0]
        .message
        .contains("envelope 1: no signature verifies with the given keys"));
    let truncated = problems("more/truncated.intoto.jsonl");
    assert_eq!(truncated[0].code, "unreadable");
    assert!(
        truncated[0]
            .message
            .contains("truncated.intoto.jsonl` line 2: not a DSSE envelope: EOF"),
        "{truncated:?}"
    );
    let outside = problems("outside.intoto.jsonl");
    assert!(
        outside[0]
            .message
            .contains("is a symlink that leaves the attestation folder"),
        "{outside:?}"
    );

    // The page, as a browser reads it: a row per file with its status, the problems beneath.
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["<script", " src=", " href=", "<link", "url("] {
        assert!(!html.contains(external), "{external}: {html}");
    }
    let dom = browse(&page);
    assert!(
        dom.contains(
            "<p id=\"summary\">9 attestations: 5 passed, 1 failed, 1 rejected, 2 unreadable</p>"
        ),
        "{dom}"
    );
    assert_eq!(dom.matches("<tr class=\"passed\">").count(), 5, "{dom}");
    assert!(
        dom.contains(
            "<tr class=\"failed\"><td><span class=\"badge failed\">failed</span></td>\
             <td>acme-router-fw</td><td>1.0.3</td><td>different</td>"
        ),
        "{dom}"
    );
    assert!(dom.contains("<li data-code=\"bad_signature\">"), "{dom}");

    // Text: the table, then why each troubled file is so, then the summary.
    let out = env
        .cmd(["report", "mixed", "--key", "vendor.pub"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text.starts_with("STATUS "), "{text}");
    assert!(
        text.contains(
            "\nrejected `mixed/more/forged.intoto.jsonl`:\n  - envelope 1: no signature verifies"
        ),
        "{text}"
    );
    assert!(text.contains("\nunreadable `mixed/outside.intoto.jsonl`:\n"));

    // One valid file: 0. The same under a key that did not sign it: rejected, 1.
    env.cmd([
        "report",
        "atts/release-1.0.0.intoto.jsonl",
        "--key",
        "vendor.pub",
    ])
    .assert()
    .code(0);
    env.cmd([
        "report",
        "atts/release-1.0.0.intoto.jsonl",
        "--key",
        "other.pub",
    ])
    .assert()
    .code(1)
    .stdout(predicates::str::contains("rejected"));
    // Bad arguments: one clear error each, exit 2.
    std::fs::create_dir_all(env.path("empty")).unwrap();
    for (args, message) in [
        (
            ["report", "nope", "--key", "vendor.pub"],
            "error: `nope` does not exist\n",
        ),
        (
            ["report", "empty", "--key", "vendor.pub"],
            "error: no attestation found: none of the paths given is or holds a \
             `*.intoto.jsonl` file\n",
        ),
        (
            ["report", "atts", "--key", "vendor"],
            "is a private key, and checking takes the public one",
        ),
    ] {
        env.cmd(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicates::str::contains(message));
    }
}
