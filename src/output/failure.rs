//! How a failure reads, shared by `rebuild` and `verify` (text and HTML): a failed build's
//! last log lines and where its whole log is, and for an artifact the build did not make,
//! the path looked for and the similar files it did make.
//!
//! Log lines and file names come from the build: text goes through [`sanitize`], HTML
//! through [`escape`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::diff::escape;
use super::sanitize::sanitize;
use super::{Output, Style};
use crate::build::failure::FailureLog;

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
        format!("looked for {looked_for}: {why}")
    }
}

/// `similar files the build made: `a`, `b`` or nothing.
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
    pub fn rebuild_failure_text(&self, r: &crate::build::Rebuild) -> String {
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
pub fn not_produced_text(
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
