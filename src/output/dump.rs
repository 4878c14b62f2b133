//! A dump check ([`crate::dump::DumpReport`]) for people (text, an HTML page) and programs
//! (JSON, `schema_version` 1, described in `docs/dump.md`).
//!
//! Text first says where each release artifact is and whether it is the release
//! (`firmware.img found at 0x100000: identical`), then one line per span of the dump in offset
//! order, then the coverage. Names from the dump and the layout go through [`sanitize`] (text)
//! or [`escape`] (HTML).

use std::fmt::Write as _;

use serde::Serialize;

use super::diff::{escape, html_comparison, html_page};
use super::sanitize::sanitize;
use super::{Output, Style};
use crate::coverage::Coverage;
use crate::dump::{DumpReport, Placement, Span, SpanKind, Status};
use crate::verify::Verdict;

/// The JSON document of `reprove diff RELEASE DUMP`.
#[derive(Debug, Serialize)]
pub(crate) struct DumpJson<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub report: &'a DumpReport,
}

impl<'a> DumpJson<'a> {
    pub(crate) fn new(report: &'a DumpReport) -> Self {
        Self {
            schema_version: 1,
            report,
        }
    }
}

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Identical => Style::Good,
        Verdict::Equivalent => Style::Warn,
        _ => Style::Bad,
    }
}

fn hex_offset(at: i64) -> String {
    if at < 0 {
        format!("-{:#x}", at.unsigned_abs())
    } else {
        format!("{at:#x}")
    }
}

/// `name found at 0x…: verdict`, or why it was not; then the allowances that made the copy
/// equivalent and the parts located on their own, one line each.
fn placement_line(p: &Placement, out: &Output) -> String {
    let mut s = placement_head(p, out);
    super::diff::allowance_lines(&mut s, &p.allowances);
    for part in &p.parts {
        let name = out.paint(Style::Path, &sanitize(&part.part));
        let verdict = out.paint(verdict_style(part.verdict), part.verdict.as_str());
        let _ = match part.offset {
            None => writeln!(s, "  {name} not found in the dump: {verdict}"),
            Some(at) => {
                let mut line = format!("  {name} found at {}: {verdict}", hex_offset(at));
                if part.differing > 0 {
                    let _ = write!(line, ", {}", bytes_differ(part.differing));
                }
                if part.missing > 0 {
                    let _ = write!(line, ", {} bytes outside the dump", part.missing);
                }
                if part.in_copy {
                    line.push_str(" (in the copy above)");
                }
                writeln!(s, "{line}")
            }
        };
    }
    if let (Some(found), Some(placed)) = (p.found_elsewhere, p.offset) {
        let _ = writeln!(
            s,
            "  an identical copy was found at {} (the layout places it at {})",
            hex_offset(found),
            hex_offset(placed)
        );
    }
    for c in &p.copies {
        let verdict = out.paint(verdict_style(c.verdict), c.verdict.as_str());
        let mut line = format!(
            "  a second copy of {} at {}: {verdict}",
            sanitize(&p.artifact),
            hex_offset(c.offset)
        );
        if c.differing > 0 {
            let _ = write!(line, ", {}", bytes_differ(c.differing));
        }
        if c.missing > 0 {
            let _ = write!(line, ", {} outside the dump", bytes(c.missing));
        }
        let _ = writeln!(s, "{line}");
    }
    if !p.parts.is_empty() && p.unlocated > 0 {
        let _ = writeln!(
            s,
            "  {} of its {} bytes are in no identical copy in the dump",
            p.unlocated, p.size
        );
    }
    s
}

fn placement_head(p: &Placement, out: &Output) -> String {
    if let Some(anchors) = p.anchors {
        return located_line(p, anchors, out);
    }
    let name = out.paint(Style::Path, &sanitize(&p.artifact));
    let verdict = out.paint(verdict_style(p.verdict), p.verdict.as_str());
    match p.offset {
        None if p.parts.iter().any(crate::dump::PartPlacement::is_found) => {
            format!("{name} not found whole in the dump: {verdict}; its parts, each on its own:\n")
        }
        None => match &p.not_required {
            Some(why) => format!("{name} not found in the dump: {}\n", sanitize(why)),
            None => format!("{name} not found in the dump: {verdict}\n"),
        },
        Some(at) => {
            let at = hex_offset(at);
            let by = match p.placed_by {
                crate::dump::PlacedBy::Content => "found at",
                crate::dump::PlacedBy::Layout => "placed by the layout at",
                crate::dump::PlacedBy::Locator => "found by its locator at",
            };
            let mut line = format!("{name} {by} {at}: {verdict}");
            if p.differing > 0 {
                let _ = write!(line, ", {}", bytes_differ(p.differing));
            }
            if p.missing > 0 {
                let _ = write!(line, ", {} bytes outside the dump", p.missing);
            }
            line.push('\n');
            line
        }
    }
}

/// A subject checked without its file (`attest verify --dump` with no `--artifact`): where
/// its locator's anchors put it, and whether the bytes there have the attested digests.
fn located_line(p: &Placement, anchors: u32, out: &Output) -> String {
    let name = out.paint(Style::Path, &sanitize(&p.artifact));
    let verdict = out.paint(verdict_style(p.verdict), p.verdict.as_str());
    let Some(at) = p.offset else {
        let why = if anchors == 0 {
            "its locator has no anchor (fill, or smaller than a window), and no layout region places it"
        } else {
            "no two anchors of its locator agree on a place"
        };
        return format!("{name} not found in the dump ({why}): {verdict}\n");
    };
    let at = if at < 0 {
        format!("-{:#x}", at.unsigned_abs())
    } else {
        format!("{at:#x}")
    };
    let place = match p.placed_by {
        crate::dump::PlacedBy::Layout => format!("placed by the layout at {at}"),
        _ => format!("found at {at} by {} of {anchors} anchors", p.votes),
    };
    let mut line = if p.differing == 0 && p.missing == 0 {
        format!(
            "{name} {place}: {verdict} (the sha256 and blake3 of its {} bytes there match the attestation)",
            p.size
        )
    } else {
        format!("{name} {place}, content differs: {verdict}")
    };
    if p.missing > 0 {
        let _ = write!(line, ", {} bytes outside the dump", p.missing);
    }
    if p.differing > 0 {
        line.push_str(
            "\n    the bytes there do not have the attested digests; which of them differ cannot be told without the file: give it with `--artifact FILE`",
        );
    }
    line.push('\n');
    line
}

fn span_label(s: &Span) -> (String, String) {
    let name = s.name.as_deref().map(sanitize).unwrap_or_default();
    let kind = match (s.kind, s.region_kind) {
        (SpanKind::Artifact, _) => "artifact".to_owned(),
        (SpanKind::Region, Some(k)) => k.as_str().to_owned(),
        (SpanKind::Region, None) => "region".to_owned(),
        (SpanKind::UnlistedFill, _) => match s.fill {
            Some(f) => format!("unlisted fill {f:#04x}"),
            None => "unlisted fill".to_owned(),
        },
        (SpanKind::Unlisted, _) => "unlisted".to_owned(),
    };
    (name, kind)
}

fn status_word(s: &Span) -> &'static str {
    match (s.status, s.kind) {
        (Status::Ok, SpanKind::Artifact) => "reproduced",
        (Status::Ok, _) if s.coverage.pinned > 0 => "pinned",
        (Status::Ok, _) => "ok",
        (Status::Failed, _) => "failed",
        (Status::Masked, _) => "masked",
        (Status::Unexplained, _) => "unexplained",
    }
}

fn status_style(s: Status) -> Style {
    match s {
        Status::Ok => Style::Good,
        Status::Failed => Style::Bad,
        Status::Masked | Status::Unexplained => Style::Warn,
    }
}

/// The coverage as one line: bytes and share of each class.
pub(crate) fn coverage_line(c: &Coverage) -> String {
    let parts: Vec<String> = c
        .classes()
        .iter()
        .map(|(name, n)| format!("{name} {n} ({})", c.percent_text(*n)))
        .collect();
    format!("coverage of {} bytes: {}", c.total(), parts.join(", "))
}

/// The report as text for a terminal or a log.
pub(crate) fn render_text(r: &DumpReport, out: &Output) -> String {
    let mut s = String::new();
    for p in &r.placements {
        s.push_str(&placement_line(p, out));
        if let Some(c) = &p.comparison {
            for line in super::diff::render_text(c, out).lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    let _ = write!(
        s,
        "\ndump `{}`, {} bytes",
        out.paint(Style::Path, &sanitize(&r.dump)),
        r.size
    );
    if let Some(l) = &r.layout {
        let _ = write!(s, ", layout from {}", sanitize(l));
    }
    s.push_str(":\n");
    for span in &r.spans {
        let (name, kind) = span_label(span);
        let end = span.offset.saturating_add(span.length);
        let _ = write!(
            s,
            "  {:#010x}-{:#010x}  {:<20} {:<14} {}",
            span.offset,
            end,
            name,
            kind,
            out.paint(status_style(span.status), status_word(span))
        );
        if let Some(reason) = &span.reason {
            let _ = write!(s, ": {}", sanitize(reason));
        }
        if let Some(detail) = &span.detail {
            let _ = write!(s, " ({})", sanitize(detail));
        }
        s.push('\n');
        for run in &span.runs {
            let _ = writeln!(
                s,
                "      {:#x}-{:#x}: {} bytes",
                run.offset,
                run.offset.saturating_add(run.length),
                run.length
            );
        }
    }
    for note in &r.notes {
        let _ = writeln!(s, "note: {}", sanitize(note));
    }
    let _ = writeln!(s, "{}", coverage_line(&r.coverage));
    let _ = writeln!(
        s,
        "{}",
        out.paint(verdict_style(r.verdict), &verdict_line(r))
    );
    s
}

/// `dump: VERDICT`; a passing verdict over bytes nothing explains says how many, so that a
/// bare `identical` always means every byte is accounted for.
pub(crate) fn verdict_line(r: &DumpReport) -> String {
    let n = r.coverage.unexplained;
    if n > 0 && r.verdict.passed(false) {
        format!(
            "dump: {} (the release), {} unexplained",
            r.verdict.as_str(),
            bytes(n)
        )
    } else {
        format!("dump: {}", r.verdict.as_str())
    }
}

/// `N bytes`, `1 byte`.
pub(crate) fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

fn bytes_differ(n: u64) -> String {
    if n == 1 {
        "1 byte differs".to_owned()
    } else {
        format!("{n} bytes differ")
    }
}

/// One self-contained page: the placements (with their explained differences), the spans and
/// the coverage.
pub(crate) fn render_html(r: &DumpReport) -> String {
    let v = r.verdict.as_str();
    let mut h = format!(
        "<h1>reprove dump check: <span class=\"verdict {v}\" id=\"verdict\">{v}</span></h1>\n<p>dump <code>{}</code>, {} bytes</p>\n",
        escape(&r.dump),
        r.size
    );
    h.push_str("<h2>Release</h2>\n<ul>\n");
    for p in &r.placements {
        let text = placement_line(p, &plain());
        let lines: Vec<String> = text.lines().map(escape).collect();
        let _ = writeln!(h, "<li>{}</li>", lines.join("<br>"));
    }
    h.push_str("</ul>\n");
    for p in &r.placements {
        if let Some(c) = &p.comparison {
            h.push_str(&html_comparison(c));
        }
    }
    h.push_str("<h2>Every byte</h2>\n<table><tr><th>from</th><th>to</th><th>name</th><th>kind</th><th>status</th><th>detail</th></tr>\n");
    for span in &r.spans {
        let (name, kind) = span_label(span);
        let mut detail = String::new();
        if let Some(reason) = &span.reason {
            detail.push_str(reason);
        }
        if let Some(d) = &span.detail {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(d);
        }
        let _ = writeln!(
            h,
            "<tr><td>{:#x}</td><td>{:#x}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            span.offset,
            span.offset.saturating_add(span.length),
            escape(&name),
            escape(&kind),
            status_word(span),
            escape(&detail)
        );
    }
    h.push_str("</table>\n");
    for note in &r.notes {
        let _ = writeln!(h, "<p>note: {}</p>", escape(note));
    }
    let _ = writeln!(
        h,
        "<p id=\"coverage\">{}</p>",
        escape(&coverage_line(&r.coverage))
    );
    html_page(&format!("reprove dump check: {v}"), &h)
}

fn plain() -> Output {
    Output {
        format: super::Format::Human,
        color: false,
        color_err: false,
        verbose_progress: false,
    }
}
