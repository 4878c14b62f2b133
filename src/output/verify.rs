//! How a verification report reads: a table of artifacts for people; for programs, one JSON
//! document that is the attestation's rebuild predicate (specified with a JSON Schema in
//! `docs/attestation.md`) plus `attestation`, the path of the file written, and with
//! `--from-attestation`, `replay`: `{same, mismatches: [{what, recorded, found}]}`.

use std::path::Path;

use serde_json::json;

use super::custody::{coverage_text, provenance_text};
use super::failure::{
    absent_reason, failure_html, failure_text, similar_text, suggestion_html, suggestion_text,
};
use super::sanitize::sanitize;
use super::{Output, Style};
use crate::attest::replay::Mismatch;
use crate::compare::Comparison;
use crate::sandbox::limits::ProcessBound;
use crate::verify::{BlobOutcome, Report, Verdict};

impl Output {
    /// Print a verification's result (human or JSON) on stdout.
    pub(crate) fn verify_report(
        &self,
        report: &Report,
        predicate: &serde_json::Value,
        attestation: &Path,
        replay: Option<&[Mismatch]>,
    ) -> std::io::Result<()> {
        if self.is_json() {
            let mut doc = predicate.clone();
            doc["attestation"] = serde_json::Value::String(attestation.display().to_string());
            if let Some(mismatches) = replay {
                let list: Vec<_> = mismatches
                    .iter()
                    .map(|m| json!({ "what": m.what, "recorded": m.recorded, "found": m.found }))
                    .collect();
                doc["replay"] = json!({ "same": mismatches.is_empty(), "mismatches": list });
            }
            return self.json(&doc);
        }
        let mut text = render_human(self, report, attestation);
        if let Some(mismatches) = replay {
            text.push_str(&self.replay_text(mismatches));
        }
        self.result(&text)
    }

    /// Whether a replayed verification came out as its attestation says.
    fn replay_text(&self, mismatches: &[Mismatch]) -> String {
        let mut text = if mismatches.is_empty() {
            format!(
                "{} the verification comes out as the attestation records it\n",
                self.paint(Style::Good, "same:")
            )
        } else {
            format!(
                "{} {} recorded facts are not reproduced:\n",
                self.paint(Style::Bad, "not the same:"),
                mismatches.len()
            )
        };
        for m in mismatches {
            text.push_str(&format!(
                "  {}: recorded {}, found {}\n",
                sanitize(&m.what),
                sanitize(&m.recorded),
                sanitize(&m.found)
            ));
        }
        text
    }

    fn verdict_word(&self, verdict: Verdict) -> String {
        let style = match verdict {
            Verdict::Identical | Verdict::Equivalent => Style::Good,
            _ => Style::Bad,
        };
        self.paint(style, verdict.as_str())
    }
}

fn render_human(out: &Output, report: &Report, attestation: &Path) -> String {
    let mut s = format!(
        "{} {}: {}\n",
        sanitize(&report.package.name),
        sanitize(&report.package.version),
        out.verdict_word(report.verdict)
    );
    let width = report
        .artifacts
        .iter()
        .map(|a| a.name.chars().count())
        .chain(report.blobs.iter().map(|b| b.name.chars().count()))
        .max()
        .unwrap_or(0);
    for a in &report.artifacts {
        let digest = a
            .shipped
            .as_ref()
            .map(|f| f.hashes.sha256.to_string())
            .unwrap_or_default();
        let pad = width.saturating_sub(a.name.chars().count());
        s.push_str(&format!(
            "  {}{}  {}{}  {}\n",
            out.paint(Style::Path, &sanitize(&a.name)),
            " ".repeat(pad),
            out.verdict_word(a.verdict),
            " ".repeat(16usize.saturating_sub(a.verdict.as_str().len())),
            out.paint(Style::Dim, &digest)
        ));
        if a.verdict == Verdict::Missing {
            // Each side that lacks it, the rebuild's with the reason and the files it made.
            match a.absent.as_deref() {
                Some(why) => s.push_str(&format!(
                    "      absent from the rebuild: {}\n",
                    sanitize(&absent_reason(&a.path, why))
                )),
                None if a.shipped.is_some() => s.push_str("      absent from the rebuild\n"),
                None => {}
            }
            if let Some(line) = similar_text(&a.similar) {
                s.push_str(&format!("      {}\n", sanitize(&line)));
            }
            if a.shipped.is_none() {
                s.push_str("      absent from the shipped set\n");
            }
        }
        for note in &a.notes {
            s.push_str(&format!(
                "      {} {}\n",
                out.paint(Style::Dim, "note:"),
                sanitize(note)
            ));
        }
        if let Some(first) = a.first_rebuild {
            s.push_str(&format!(
                "      rebuild 1 against the shipped set: {}\n",
                out.verdict_word(first)
            ));
        }
        if let Some(d) = &a.difference {
            s.push_str(&describe(out, "rebuilt (left) against shipped (right)", d));
            if let Some(suggestion) = crate::compare::suggest::suggest_trailer(d, Some(&a.name)) {
                s.push_str(&suggestion_text(out, &suggestion, false, "      "));
            }
        }
        if let Some(d) = &a.nondeterminism {
            s.push_str(&describe(
                out,
                "rebuild 1 (left) against a varied rebuild (right)",
                d,
            ));
        }
    }
    s.push_str(&blobs_text(out, report, width));
    for d in &report.drift {
        s.push_str(&format!("  {} {d}\n", out.paint(Style::Bad, "drift:")));
    }
    if report.verdict == Verdict::SourceMismatch {
        let found = report
            .source
            .found
            .as_ref()
            .map(|e| e.checksum(report.source.expected.algorithm).to_string());
        s.push_str(&format!(
            "  escrow `{}`: expected {}, found {}\n",
            report.source.path.display(),
            report.source.expected,
            found.as_deref().unwrap_or("nothing readable")
        ));
    }
    s.push_str(&format!(
        "toolchain: {} tools, {} pins{}; isolation: {}{}\n",
        report.tools.len(),
        report.pins.len(),
        lock_kind(report),
        report.isolation.backend,
        report
            .isolation
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default()
    ));
    if let Some(e) = &report.source.found {
        let kind = serde_json::to_value(e.kind).ok();
        let kind = kind
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        s.push_str(&format!("escrow: {} ({kind})\n", e.sha256));
    }
    for (i, r) in report.rebuilds.iter().enumerate() {
        s.push_str(&format!(
            "rebuild {}: {} in {:.1} s, log {}\n",
            i + 1,
            r.outcome.termination,
            r.outcome.elapsed.as_secs_f64(),
            r.log_hashes.sha256
        ));
        if let Some(program) = &r.missing_program {
            s.push_str(&format!("  {}\n", missing_program_hint(program)));
        }
        if let Some(failure) = &r.failure {
            s.push_str(&failure_text(out, failure, "  "));
        }
        if r.outcome.limits.process_bound == ProcessBound::None {
            s.push_str(
                "  note: no process limit could be applied (running as root without a pids \
                 cgroup reprove can make)\n",
            );
        }
    }
    if let Some(line) = agreement(report) {
        s.push_str(&format!("{line}\n"));
    }
    if let Some(line) = failed_rebuild(report) {
        s.push_str(&format!(
            "{} {line}\n",
            out.paint(Style::Bad, "build-failed:")
        ));
    }
    if let Some(hint) = failed_rebuild_hint(report) {
        s.push_str(&format!("{} {hint}\n", out.paint(Style::Dim, "hint:")));
    }
    for p in &report.provenance {
        s.push_str(&format!("provenance: {}\n", provenance_line(p)));
    }
    s.push_str(&format!("{}\n", coverage_text(&report.coverage)));
    s.push_str(&format!(
        "attestation: {}\n",
        out.paint(Style::Path, &attestation.display().to_string())
    ));
    s
}

/// Each pinned blob on the artifacts' table: pinned (its digest) or different (both digests),
/// and its reason.
fn blobs_text(out: &Output, report: &Report, width: usize) -> String {
    let mut s = String::new();
    for b in &report.blobs {
        let pad = width.saturating_sub(b.name.chars().count());
        let (style, word) = match b.outcome {
            BlobOutcome::Pinned => (Style::Good, "pinned"),
            BlobOutcome::Different => (Style::Bad, "different"),
        };
        s.push_str(&format!(
            "  {}{}  {}{}  {}\n",
            out.paint(Style::Path, &sanitize(&b.name)),
            " ".repeat(pad),
            out.paint(style, word),
            " ".repeat(16usize.saturating_sub(word.len())),
            out.paint(Style::Dim, &b.found_digest().to_string())
        ));
        s.push_str(&format!(
            "      {}: {}\n",
            b.outcome.describe(),
            sanitize(&b.reason)
        ));
        if b.outcome == BlobOutcome::Different {
            s.push_str(&format!(
                "      pinned {}, shipped {} (`{}`)\n",
                b.pinned,
                b.found_digest(),
                sanitize(&b.found)
            ));
        }
    }
    s
}

/// A provenance record for one line: its text, and the file it was read from.
fn provenance_line(p: &crate::verify::Provenance) -> String {
    let text = provenance_text(&p.text);
    match &p.file {
        Some(f) => format!(
            "{text} (from `{}`, {})",
            sanitize(&f.path.display().to_string()),
            f.hashes.sha256
        ),
        None => text,
    }
}

/// How complete the lock is: traced from a real build, a hermetic root pinned whole, or only
/// the declared tools (whose view lacks what the build reads that no tool pins).
fn lock_kind(report: &Report) -> &'static str {
    if report.traced_lock {
        " (traced)"
    } else if report.isolation.root.is_some() {
        " (hermetic root pinned whole)"
    } else {
        " (declared only, not traced)"
    }
}

/// What to do about a program the build could not find: the sandbox shows only the lock.
fn missing_program_hint(program: &str) -> String {
    format!(
        "the build could not find `{}`: the sandbox shows only the files the lock pins; add it \
         to `[toolchain] tools`, or run `reprove lock` again (it traces the build and pins \
         every file it reads)",
        super::sanitize::sanitize(program)
    )
}

/// What a rebuild varied, in words, each with its name in `[verify] vary`.
fn variation_text(v: &crate::build::Variation) -> String {
    use crate::recipe::Vary;
    if v.varied.is_empty() {
        return "nothing varied".to_owned();
    }
    let parts: Vec<String> = v
        .varied
        .iter()
        .map(|what| match what {
            Vary::BuildDir => "`build-dir`: a deeper build folder".to_owned(),
            Vary::Umask => format!("`umask`: {:03o}", v.umask),
            Vary::EnvOrder => "`env-order`: the environment reversed".to_owned(),
            Vary::Clock => match v.clock_shift_days {
                Some(days) => format!("`clock`: the clock {days} days on, stopped"),
                None => "`clock`".to_owned(),
            },
        })
        .collect();
    parts.join(", ")
}

/// One sentence on a rebuild after the first that failed, if one did.
fn failed_rebuild(report: &Report) -> Option<String> {
    let k = report.failed_rebuild?;
    let r = report.rebuilds.get(k)?;
    Some(format!(
        "rebuild {} ({}) failed: {}; rebuild 1 was compared with the shipped set, and the \
         build does not stand up to what must not matter",
        k + 1,
        variation_text(&r.variation),
        r.outcome.termination
    ))
}

/// What to do when the varied rebuild failed and the first did not: leave a variation out of
/// `[verify] vary`. The example leaves out the clock when it was varied (the variation real
/// builds trip on most), else the last one applied.
fn failed_rebuild_hint(report: &Report) -> Option<String> {
    use crate::recipe::Vary;
    let k = report.failed_rebuild?;
    let applied = &report.rebuilds.get(k)?.variation.varied;
    let dropped = if applied.contains(&Vary::Clock) {
        Vary::Clock
    } else {
        *applied.last()?
    };
    let kept: Vec<String> = applied
        .iter()
        .filter(|v| **v != dropped)
        .map(|v| format!("\"{v}\""))
        .collect();
    Some(format!(
        "if the build cannot stand one of the variations applied, leave it out in the recipe; \
         without `{dropped}`: `[verify] vary = [{}]`",
        kept.join(", ")
    ))
}

/// Whether the rebuilds agreed with each other, when there was more than one and none failed.
fn agreement(report: &Report) -> Option<String> {
    if report.rebuilds.len() < 2 || report.failed_rebuild.is_some() {
        return None;
    }
    let moved: Vec<&str> = report
        .artifacts
        .iter()
        .filter(|a| a.rebuilt.windows(2).any(|w| w[0] != w[1]))
        .map(|a| a.name.as_str())
        .collect();
    let varied: Vec<String> = report.rebuilds[1..]
        .iter()
        .map(|r| variation_text(&r.variation))
        .collect();
    let n = report.rebuilds.len();
    Some(if moved.is_empty() {
        format!(
            "the {n} rebuilds agree: every artifact came out the same ({})",
            varied.join("; ")
        )
    } else {
        format!(
            "the {n} rebuilds disagree on {} of {} artifacts ({}): the build is not \
             reproducible ({})",
            moved.len(),
            report.artifacts.len(),
            moved
                .iter()
                .map(|m| format!("`{}`", sanitize(m)))
                .collect::<Vec<_>>()
                .join(", "),
            varied.join("; ")
        )
    })
}

/// A comparison, explained as `reprove diff` does, indented under its artifact.
fn describe(out: &Output, what: &str, c: &Comparison) -> String {
    let mut s = format!("      {what}:\n");
    for line in super::diff::render_text(c, out).lines() {
        if line.is_empty() {
            continue;
        }
        s.push_str("        ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// A verification as one self-contained page a lab engineer can attach to a report: the
/// verdict, what was checked, each artifact, and every difference explained.
pub(crate) fn render_verify_html(report: &Report, attestation: &Path) -> String {
    use super::diff::{escape, html_comparison, html_page};
    use std::fmt::Write as _;
    let v = report.verdict.as_str();
    let title = format!(
        "reprove verify: {} {}: {v}",
        report.package.name, report.package.version
    );
    let mut h = format!(
        "<h1>reprove verify: {} {}: <span class=\"verdict {v}\" id=\"verdict\">{v}</span></h1>\n<table>",
        escape(&report.package.name),
        escape(&report.package.version),
    );
    let mut row = |k: &str, v: &str| {
        let _ = write!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(k),
            escape(v)
        );
    };
    row(
        "recipe",
        &format!(
            "{} {}",
            report.recipe.path.display(),
            report.recipe.hashes.sha256
        ),
    );
    row(
        "lock",
        &format!("{} pins{}", report.pins.len(), lock_kind(report)),
    );
    row(
        "escrow",
        &format!(
            "{} (expected {})",
            report.source.path.display(),
            report.source.expected
        ),
    );
    let isolation = &report.isolation;
    row(
        "isolation",
        &format!(
            "{} {}",
            isolation.backend,
            isolation.version.as_deref().unwrap_or("")
        ),
    );
    for (i, r) in report.rebuilds.iter().enumerate() {
        row(
            &format!("rebuild {}", i + 1),
            &format!(
                "{} in {:.1} s{}",
                r.outcome.termination,
                r.outcome.elapsed.as_secs_f64(),
                r.missing_program
                    .as_deref()
                    .map(|p| format!("; {}", missing_program_hint(p)))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(line) = agreement(report) {
        row("rebuilds", &line);
    }
    for p in &report.provenance {
        row("provenance", &provenance_line(p));
    }
    row("coverage", &coverage_text(&report.coverage));
    row("attestation", &attestation.display().to_string());
    h.push_str("</table>\n");
    for (i, r) in report.rebuilds.iter().enumerate() {
        if let Some(failure) = &r.failure {
            let _ = writeln!(
                h,
                "<h2 id=\"rebuild-{n}-log\">rebuild {n}: {}</h2>",
                escape(&r.outcome.termination.to_string()),
                n = i + 1
            );
            h.push_str(&failure_html(failure));
        }
    }
    if let Some(line) = failed_rebuild(report) {
        let firsts: Vec<String> = report
            .artifacts
            .iter()
            .filter_map(|a| Some(format!("{}: {}", a.name, a.first_rebuild?)))
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"verdict different\" id=\"failed-rebuild\">build-failed: {}</p>\n\
             <p>rebuild 1 against the shipped set: {}</p>\n<p class=\"hint\">hint: {}</p>",
            escape(&line),
            escape(&firsts.join(", ")),
            escape(&failed_rebuild_hint(report).unwrap_or_default())
        );
    }
    h.push_str("<h2>Artifacts</h2>\n<table><tr><th>artifact</th><th>verdict</th><th>shipped sha256</th></tr>");
    for a in &report.artifacts {
        let digest = a
            .shipped
            .as_ref()
            .map(|s| s.hashes.sha256.to_string())
            .unwrap_or_default();
        let av = a.verdict.as_str();
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"verdict {av}\">{av}</td><td><code>{}</code></td></tr>",
            escape(&a.name),
            escape(&digest)
        );
    }
    for b in &report.blobs {
        let (class, word) = match b.outcome {
            BlobOutcome::Pinned => ("identical", "pinned"),
            BlobOutcome::Different => ("different", "different"),
        };
        let digests = match b.outcome {
            BlobOutcome::Pinned => b.pinned.to_string(),
            BlobOutcome::Different => {
                format!("pinned {}, shipped {}", b.pinned, b.found_digest())
            }
        };
        let _ = write!(
            h,
            "<tr class=\"blob\"><td><code>{}</code></td><td class=\"verdict {class}\">{word}</td><td><code>{}</code> {}: {}</td></tr>",
            escape(&b.name),
            escape(&digests),
            escape(b.outcome.describe()),
            escape(&b.reason)
        );
    }
    h.push_str("</table>\n");
    for a in &report.artifacts {
        if a.verdict == Verdict::Missing {
            if let Some(why) = &a.absent {
                let _ = writeln!(
                    h,
                    "<p class=\"absent\"><code>{}</code>: absent from the rebuild: {}</p>",
                    escape(&a.name),
                    escape(&absent_reason(&a.path, why))
                );
            }
            if let Some(line) = similar_text(&a.similar) {
                let _ = writeln!(
                    h,
                    "<p class=\"similar\"><code>{}</code>: {}</p>",
                    escape(&a.name),
                    escape(&line)
                );
            }
        }
        for note in &a.notes {
            let _ = writeln!(
                h,
                "<p class=\"note\"><code>{}</code>: note: {}</p>",
                escape(&a.name),
                escape(note)
            );
        }
    }
    for d in &report.drift {
        let _ = writeln!(
            h,
            "<p class=\"verdict different\">drift: {}</p>",
            escape(&d.to_string())
        );
    }
    for a in &report.artifacts {
        for (what, c) in [
            ("rebuilt against shipped", &a.difference),
            ("rebuild 1 against a varied rebuild", &a.nondeterminism),
        ] {
            if let Some(c) = c {
                let _ = writeln!(h, "<h2><code>{}</code>: {what}</h2>", escape(&a.name));
                h.push_str(&html_comparison(c));
            }
        }
        if let Some(suggestion) = a
            .difference
            .as_ref()
            .and_then(|d| crate::compare::suggest::suggest_trailer(d, Some(&a.name)))
        {
            h.push_str(&suggestion_html(&suggestion, false));
        }
    }
    html_page(&title, &h)
}
