//! `reprove report` for people (a table on the terminal, a self-contained HTML page) and for
//! programs (`--json`).
//!
//! Everything shown comes from attestation files someone else wrote: text goes through
//! [`sanitize`], HTML through [`escape`]. The page has inline style only: no script, nothing
//! fetched.
//!
//! JSON wire format (`--json`), one document; absent values are left out, fields are only
//! ever added:
//!
//! ```text
//! { "schema_version": 1,
//!   "summary": { "attestations": 6, "passed": 5, "failed": 1, "rejected": 0, "unreadable": 0,
//!                "disputed": 0 },
//!   "attestations": [
//!     { "file": "…", "status": "passed|failed|disputed|rejected|unreadable",
//!       "package": "…", "version": "…", "verdict": "identical", "dump_verdict": "different",
//!       "verifier": "…",
//!       "time": "<RFC 3339>", "isolation": { "backend": "bubblewrap", "version": "…" },
//!       "rebuilds": 1,
//!       "drift": [ { "kind": "rebuilds", "artifact": "…", "differing_bytes": 12 },
//!                  { "kind": "failed_rebuild", "rebuild": 2, "varied": ["clock"] },
//!                  { "kind": "toolchain", "what": "`/usr/bin/gcc` changed" } ],
//!       "problems": [ { "code": "bad_signature", "message": "…" } ] } ] }
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use super::diff::{escape, html_page};
use super::sanitize::sanitize;
use super::{Output, Style};
use crate::report::{Drift, Entry, Fleet, Status};
use crate::verify::Verdict;

#[derive(Debug, Serialize)]
pub(crate) struct FleetJson {
    schema_version: u32,
    summary: SummaryJson,
    attestations: Vec<EntryJson>,
}

#[derive(Debug, Serialize)]
struct SummaryJson {
    attestations: usize,
    passed: usize,
    failed: usize,
    rejected: usize,
    unreadable: usize,
    /// Written only when some are (a field added after the others).
    #[serde(skip_serializing_if = "is_zero")]
    disputed: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
struct EntryJson {
    file: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    /// The recorded flash dump check's verdict (`verify --dump`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    isolation: Option<IsolationJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuilds: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    drift: Vec<DriftJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<ProblemJson>,
}

#[derive(Debug, Serialize)]
struct IsolationJson {
    backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DriftJson {
    Rebuilds {
        artifact: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        differing_bytes: Option<u64>,
    },
    FailedRebuild {
        rebuild: usize,
        varied: Vec<String>,
    },
    Toolchain {
        what: String,
    },
}

#[derive(Debug, Serialize)]
struct ProblemJson {
    code: &'static str,
    message: String,
}

/// The `--json` document.
pub(crate) fn fleet_json(fleet: &Fleet) -> FleetJson {
    FleetJson {
        schema_version: 1,
        summary: SummaryJson {
            attestations: fleet.entries.len(),
            passed: fleet.count(Status::Passed),
            failed: fleet.count(Status::Failed),
            rejected: fleet.count(Status::Rejected),
            unreadable: fleet.count(Status::Unreadable),
            disputed: fleet.count(Status::Disputed),
        },
        attestations: fleet.entries.iter().map(entry_json).collect(),
    }
}

fn entry_json(e: &Entry) -> EntryJson {
    let r = e.release.as_ref();
    EntryJson {
        file: e.file.display().to_string(),
        status: e.status.as_str(),
        package: r.map(|r| r.package.clone()),
        version: r.map(|r| r.version.clone()),
        verdict: r.map(|r| r.verdict.as_str()),
        dump_verdict: r.and_then(|r| r.dump).map(Verdict::as_str),
        verifier: r.map(|r| r.verifier.clone()),
        time: r.map(|r| r.time.clone()),
        isolation: r.map(|r| IsolationJson {
            backend: r.isolation.backend.clone(),
            version: r.isolation.version.clone(),
        }),
        rebuilds: r.map(|r| r.rebuilds),
        drift: r
            .map(|r| r.drift.iter().map(drift_json).collect())
            .unwrap_or_default(),
        problems: e
            .problems
            .iter()
            .map(|(code, message)| ProblemJson {
                code,
                message: message.clone(),
            })
            .collect(),
    }
}

fn drift_json(d: &Drift) -> DriftJson {
    match d {
        Drift::Rebuilds {
            artifact,
            differing_bytes,
        } => DriftJson::Rebuilds {
            artifact: artifact.clone(),
            differing_bytes: *differing_bytes,
        },
        Drift::FailedRebuild { rebuild, varied } => DriftJson::FailedRebuild {
            rebuild: *rebuild,
            varied: varied.clone(),
        },
        Drift::Toolchain { what } => DriftJson::Toolchain { what: what.clone() },
    }
}

/// One line of text for a drift (unsanitized: the caller escapes it for where it goes).
fn drift_text(d: &Drift) -> String {
    match d {
        Drift::Rebuilds {
            artifact,
            differing_bytes: Some(n),
        } => format!("`{artifact}`: {n} bytes moved between rebuilds"),
        Drift::Rebuilds { artifact, .. } => format!("`{artifact}`: moved between rebuilds"),
        Drift::FailedRebuild { rebuild, varied } if varied.is_empty() => {
            format!("rebuild {rebuild} failed")
        }
        Drift::FailedRebuild { rebuild, varied } => {
            format!("rebuild {rebuild} failed (varied: {})", varied.join(", "))
        }
        Drift::Toolchain { what } => format!("toolchain: {what}"),
    }
}

const HEADERS: [&str; 9] = [
    "STATUS",
    "PACKAGE",
    "VERSION",
    "VERDICT",
    "VERIFIER",
    "DATE",
    "ISOLATION",
    "DRIFT",
    "FILE",
];

/// The cells of a row, unescaped.
fn cells(e: &Entry) -> [String; 9] {
    let dash = || "-".to_owned();
    let r = e.release.as_ref();
    [
        e.status.as_str().to_owned(),
        r.map_or_else(dash, |r| r.package.clone()),
        r.map_or_else(dash, |r| r.version.clone()),
        r.map_or_else(dash, verdict_cell),
        r.map_or_else(dash, |r| r.verifier.clone()),
        r.map_or_else(dash, |r| r.time.clone()),
        r.map_or_else(dash, |r| match &r.isolation.version {
            Some(v) => format!("{} {v}", r.isolation.backend),
            None => r.isolation.backend.clone(),
        }),
        r.map_or_else(dash, |r| {
            if r.drift.is_empty() {
                "none".to_owned()
            } else {
                r.drift
                    .iter()
                    .map(drift_text)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }),
        e.file.display().to_string(),
    ]
}

/// The rebuild verdict, and the dump's when one was checked: a failed dump comes first, so
/// that no row of a device whose flash failed reads `identical`.
fn verdict_cell(r: &crate::report::Release) -> String {
    match r.dump {
        Some(dump) if !dump.passed(false) => {
            format!("dump {} (rebuild {})", dump.as_str(), r.verdict.as_str())
        }
        Some(dump) => format!("{}, dump {}", r.verdict.as_str(), dump.as_str()),
        None => r.verdict.as_str().to_owned(),
    }
}

fn status_style(status: Status) -> Style {
    match status {
        Status::Passed => Style::Good,
        Status::Failed | Status::Disputed | Status::Rejected => Style::Bad,
        Status::Unreadable => Style::Warn,
    }
}

/// The summary line: `6 attestations: 5 passed, 1 failed, 0 rejected, 0 unreadable`.
fn summary_line(fleet: &Fleet) -> String {
    let disputed = match fleet.count(Status::Disputed) {
        0 => String::new(),
        n => format!(", {n} disputed"),
    };
    format!(
        "{} attestation{}: {} passed, {} failed, {} rejected, {} unreadable{disputed}",
        fleet.entries.len(),
        if fleet.entries.len() == 1 { "" } else { "s" },
        fleet.count(Status::Passed),
        fleet.count(Status::Failed),
        fleet.count(Status::Rejected),
        fleet.count(Status::Unreadable),
    )
}

/// The table, then why each rejected or unreadable file is so, then the summary.
pub(crate) fn render_report_text(out: &Output, fleet: &Fleet) -> String {
    let rows: Vec<[String; 9]> = fleet
        .entries
        .iter()
        .map(|e| cells(e).map(|c| sanitize(&c)))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    let line = |text: &mut String, row: &[String; 9], status: Option<Status>| {
        let last = row.len() - 1;
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            let shown = match (i, status) {
                (0, Some(s)) => out.paint(status_style(s), c),
                (0, None) => out.paint(Style::Bold, c),
                _ => c.clone(),
            };
            text.push_str(&shown);
            if i < last {
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.push('\n');
    };
    line(&mut text, &HEADERS.map(str::to_owned), None);
    for (row, e) in rows.iter().zip(&fleet.entries) {
        line(&mut text, row, Some(e.status));
    }
    let troubled: Vec<&Entry> = fleet
        .entries
        .iter()
        .filter(|e| !e.problems.is_empty())
        .collect();
    if !troubled.is_empty() {
        text.push('\n');
        for e in troubled {
            let _ = writeln!(
                text,
                "{} {}:",
                out.paint(status_style(e.status), e.status.as_str()),
                out.paint(
                    Style::Path,
                    &format!("`{}`", sanitize(&e.file.display().to_string()))
                )
            );
            for (_, message) in &e.problems {
                let _ = writeln!(text, "  - {}", sanitize(message));
            }
        }
    }
    let _ = writeln!(text, "\n{}", summary_line(fleet));
    text
}

/// One self-contained page: the summary, the table (a row per file, `class` its status), and
/// the problems of each rejected or unreadable file beneath its row.
pub(crate) fn render_report_html(fleet: &Fleet) -> String {
    let mut h = format!(
        "<h1>reprove report</h1>\n<p id=\"summary\">{}</p>\n<table id=\"fleet\">\n<thead><tr>",
        escape(&summary_line(fleet))
    );
    for header in HEADERS {
        let _ = write!(h, "<th>{}</th>", header.to_lowercase());
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for e in &fleet.entries {
        let status = e.status.as_str();
        let _ = write!(h, "<tr class=\"{status}\">");
        for (i, c) in cells(e).iter().enumerate() {
            if i == 0 {
                let _ = write!(h, "<td><span class=\"badge {status}\">{status}</span></td>");
            } else {
                let _ = write!(h, "<td>{}</td>", escape(c));
            }
        }
        h.push_str("</tr>\n");
        if !e.problems.is_empty() {
            let _ = write!(
                h,
                "<tr class=\"problems\"><td></td><td colspan=\"{}\"><ul>",
                HEADERS.len() - 1
            );
            for (code, message) in &e.problems {
                let _ = write!(h, "<li data-code=\"{code}\">{}</li>", escape(message));
            }
            h.push_str("</ul></td></tr>\n");
        }
    }
    h.push_str("</tbody></table>\n");
    html_page("reprove report", &h)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::attest::rebuild::Isolation;
    use crate::report::Release;

    fn hostile() -> Fleet {
        Fleet {
            entries: vec![
                Entry {
                    file: PathBuf::from("atts/<script>.intoto.jsonl"),
                    status: Status::Failed,
                    release: Some(Release {
                        package: "fw\u{1b}[2J\u{202e}".to_owned(),
                        version: "1<b>".to_owned(),
                        verdict: Verdict::Nondeterministic,
                        dump: None,
                        verifier: "lab & co".to_owned(),
                        time: "2026-12-01T10:00:00Z".to_owned(),
                        isolation: Isolation {
                            backend: "bwrap".to_owned(),
                            version: Some("0.8.0".to_owned()),
                            root: None,
                        },
                        rebuilds: 2,
                        drift: vec![Drift::Rebuilds {
                            artifact: "a\nb".to_owned(),
                            differing_bytes: Some(3),
                        }],
                        digests: std::collections::BTreeSet::new(),
                    }),
                    problems: Vec::new(),
                },
                Entry {
                    file: PathBuf::from("cut.intoto.jsonl"),
                    status: Status::Unreadable,
                    release: None,
                    problems: vec![("unreadable", "`cut` line 2: \u{1b}]8;;x".to_owned())],
                },
            ],
        }
    }

    #[test]
    fn what_the_files_say_is_escaped_for_the_terminal_and_the_page() {
        let out = Output {
            format: crate::output::Format::Human,
            color: false,
            color_err: false,
            verbose_progress: false,
        };
        let text = render_report_text(&out, &hostile());
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(text.contains("fw\\u{1b}[2J\\u{202e}"), "{text}");
        assert!(
            text.contains("`a\\u{a}b`: 3 bytes moved between rebuilds"),
            "{text}"
        );
        assert!(text.contains("\nunreadable `cut.intoto.jsonl`:\n  - `cut` line 2: \\u{1b}]8;;x\n"));
        assert!(text.ends_with("\n2 attestations: 0 passed, 1 failed, 0 rejected, 1 unreadable\n"));
        // Columns line up: every row's FILE starts where the header's does.
        let at = text.lines().next().unwrap().find("FILE").unwrap();
        assert_eq!(
            text.lines().nth(2).unwrap().find("cut.intoto.jsonl"),
            Some(at),
            "{text}"
        );

        let html = render_report_html(&hostile());
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("atts/&lt;script&gt;.intoto.jsonl"), "{html}");
        assert!(html.contains("lab &amp; co"), "{html}");
        assert!(!html.contains('\u{1b}'), "{html}");
        assert!(html.contains("<li data-code=\"unreadable\">"), "{html}");

        let json = serde_json::to_value(fleet_json(&hostile())).unwrap();
        assert_eq!(json["attestations"][0]["drift"][0]["kind"], "rebuilds");
        assert_eq!(json["attestations"][0]["package"], "fw\u{1b}[2J\u{202e}");
        assert!(json["attestations"][1].get("package").is_none());
    }
}
