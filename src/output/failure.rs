//! How a failure reads, shared by `rebuild`, `verify` and `diff` (text and HTML): a failed
//! build's last log lines and where its whole log is; for an artifact the build did not make,
//! the path looked for and the similar files it did make; and for a shipped file that is the
//! rebuilt one plus appended bytes, the allowance that would declare them (shown, never
//! applied: [`crate::compare::suggest`]).
//!
//! Log lines and file names come from the build: text goes through [`sanitize`], HTML
//! through [`escape`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::diff::escape;
use super::sanitize::sanitize;
use super::{Output, Style};
use crate::build::failure::FailureLog;
use crate::compare::suggest::Suggestion;

/// The lines under a failed rebuild, each starting with `indent`: where the log is kept (or
/// why it is not) and its last lines.
pub(crate) fn failure_text(out: &Output, failure: &FailureLog, indent: &str) -> String {
    let mut s = String::new();
    match &failure.kept {
        Ok(path) => {
            let _ = writeln!(
                s,
                "{indent}the whole log: {}",
                out.paint(
                    Style::Path,
                    &format!("`{}`", sanitize(&path.display().to_string()))
                )
            );
        }
        Err(why) => {
            let _ = writeln!(s, "{indent}{}", sanitize(why));
        }
    }
    if !failure.tail.is_empty() {
        let _ = writeln!(s, "{indent}{}:", tail_heading(failure.tail.len()));
        for line in &failure.tail {
            let _ = writeln!(
                s,
                "{indent}  {} {}",
                out.paint(Style::Dim, "|"),
                sanitize(line)
            );
        }
    }
    s
}

fn tail_heading(lines: usize) -> String {
    if lines == 1 {
        "the last line of the log".to_owned()
    } else {
        format!("the last {lines} lines of the log")
    }
}

/// The same for an HTML page: a paragraph and the lines as preformatted text.
pub(crate) fn failure_html(failure: &FailureLog) -> String {
    let mut h = String::new();
    match &failure.kept {
        Ok(path) => {
            let _ = writeln!(
                h,
                "<p class=\"log\">the whole log: <code>{}</code></p>",
                escape(&path.display().to_string())
            );
        }
        Err(why) => {
            let _ = writeln!(h, "<p class=\"log\">{}</p>", escape(why));
        }
    }
    if !failure.tail.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}:</p>\n<pre class=\"log-tail\">{}</pre>",
            tail_heading(failure.tail.len()),
            failure
                .tail
                .iter()
                .map(|line| escape(line))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    h
}

/// Why an artifact is absent, naming the path looked for when the reason does not.
pub(crate) fn absent_reason(path: &Path, why: &str) -> String {
    let looked_for = format!("`{}`", path.display());
    if why.contains(&looked_for) {
        why.to_owned()
    } else {
        format!("{why} (looked for {looked_for})")
    }
}

/// The line naming the similar files (`` similar files the build made: `a`, `b` ``), if any.
pub(crate) fn similar_text(similar: &[PathBuf]) -> Option<String> {
    if similar.is_empty() {
        return None;
    }
    let names: Vec<String> = similar
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect();
    Some(format!(
        "similar files the build made: {}",
        names.join(", ")
    ))
}

impl Output {
    /// `rebuild`'s lines on a failed build: how it ended, the log's digest, where the whole
    /// log is and its last lines.
    pub(crate) fn rebuild_failure_text(&self, r: &crate::build::Rebuild) -> String {
        let mut s = format!(
            "the build {} in {:.1} s, log {}\n",
            r.outcome.termination,
            r.outcome.elapsed.as_secs_f64(),
            r.log_hashes.sha256
        );
        if let Some(failure) = &r.failure {
            s.push_str(&failure_text(self, failure, "  "));
        }
        s
    }
}

/// `rebuild`'s line on an artifact the build did not produce.
pub(crate) fn not_produced_text(
    name: &str,
    path: &Path,
    absent: Option<&str>,
    similar: &[PathBuf],
) -> String {
    let mut s = format!("{}: not produced", sanitize(name));
    if let Some(why) = absent {
        s.push_str(&format!(": {}", sanitize(&absent_reason(path, why))));
    }
    s.push('\n');
    if let Some(line) = similar_text(similar) {
        s.push_str(&format!("  {}\n", sanitize(&line)));
    }
    s
}

/// The words before a suggested allowance; `diff` also names its flag.
fn suggestion_intro(s: &Suggestion, diff: bool) -> String {
    let bytes = if s.trailer == 1 {
        "1 more byte".to_owned()
    } else {
        format!("{} more bytes", s.trailer)
    };
    let how = if diff {
        format!(
            "pass `--allow-trailer {}`, or in a recipe write (not applied)",
            s.trailer
        )
    } else {
        "the recipe would declare them with (not applied; fill in the reason)".to_owned()
    };
    format!(
        "the right side is the left side followed by {bytes}: if they were appended after the \
         build (a signature, a vendor block), {how}"
    )
}

/// A suggested allowance as text, each line starting with `indent`.
pub(crate) fn suggestion_text(out: &Output, s: &Suggestion, diff: bool, indent: &str) -> String {
    let mut text = format!(
        "{indent}{} {}:\n",
        out.paint(Style::Warn, "suggestion:"),
        suggestion_intro(s, diff)
    );
    for line in s.toml.lines() {
        let _ = writeln!(text, "{indent}  {}", sanitize(line));
    }
    text
}

/// A suggested allowance for an HTML page.
pub(crate) fn suggestion_html(s: &Suggestion, diff: bool) -> String {
    format!(
        "<p class=\"suggestion\">suggestion: {}:</p>\n<pre class=\"suggestion\">{}</pre>\n",
        escape(&suggestion_intro(s, diff)),
        s.toml.lines().map(escape).collect::<Vec<_>>().join("\n")
    )
}

impl Output {
    /// `diff`'s report as text: the comparison and, when the right side is the left side
    /// plus appended bytes, the allowance that would declare them.
    pub(crate) fn diff_text(&self, c: &crate::compare::Comparison) -> String {
        let mut text = super::diff::render_text(c, self);
        if let Some(s) = crate::compare::suggest::suggest_trailer(c, None) {
            text.push_str(&suggestion_text(self, &s, true, ""));
        }
        text
    }
}
