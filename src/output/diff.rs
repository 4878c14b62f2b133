//! `reprove diff` results for people (terminal text, a self-contained HTML page) and for
//! programs (the JSON document, `schema_version` 1, described in `docs/diff.md`).
//!
//! Every name from the inputs is untrusted: text goes through [`sanitize`], HTML through
//! [`escape`]. Leaves that differ only in archive metadata are listed after the others and,
//! past a handful, summarised by field: a bundle whose every mtime moved still shows its one
//! real change first.

use std::fmt::Write as _;

use serde::Serialize;

use super::sanitize::sanitize;
use super::{Output, Style};
use crate::compare::{Cause, Comparison, HexContext, LeafDiff, RangeDiff, Shift, Verdict};

/// Metadata-only leaves listed one by one before the rest are summarised.
const METADATA_SHOWN: usize = 5;

/// The JSON document: the comparison, its summary line and the schema version.
#[derive(Debug, Serialize)]
pub(crate) struct DiffJson<'a> {
    pub schema_version: u32,
    pub summary: String,
    #[serde(flatten)]
    pub comparison: &'a Comparison,
    /// An allowance that would declare the difference, not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<crate::compare::suggest::Suggestion>,
}

impl<'a> DiffJson<'a> {
    pub(crate) fn new(comparison: &'a Comparison) -> Self {
        Self {
            schema_version: 1,
            summary: comparison.summary(),
            comparison,
            suggestion: crate::compare::suggest::suggest_trailer(comparison, None),
        }
    }
}

fn is_metadata_only(leaf: &LeafDiff) -> bool {
    leaf.content.is_none() && leaf.causes == [Cause::ArchiveMetadata]
}

/// Leaves in reading order: real changes first, metadata-only ones after.
fn ordered(c: &Comparison) -> (Vec<&LeafDiff>, Vec<&LeafDiff>) {
    c.leaves.iter().partition(|l| !is_metadata_only(l))
}

/// How many metadata-only leaves changed each field, in first-seen order.
fn field_counts(leaves: &[&LeafDiff]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in leaves.iter().flat_map(|l| &l.metadata) {
        match counts.iter_mut().find(|(n, _)| *n == f.field) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.field.clone(), 1)),
        }
    }
    counts
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Identical => Style::Good,
        Verdict::Equivalent => Style::Warn,
        Verdict::Different => Style::Bad,
    }
}

fn change_word(leaf: &LeafDiff) -> &'static str {
    match leaf.change {
        crate::compare::Change::Added => "added",
        crate::compare::Change::Removed => "removed",
        crate::compare::Change::Changed => "changed",
        crate::compare::Change::Reordered => "reordered",
    }
}

/// The comparison as text for a terminal or a log.
pub(crate) fn render_text(c: &Comparison, out: &Output) -> String {
    let mut s = String::new();
    let (main, meta) = ordered(c);
    for leaf in &main {
        text_leaf(&mut s, leaf, out);
    }
    for leaf in meta.iter().take(METADATA_SHOWN) {
        text_leaf(&mut s, leaf, out);
    }
    if meta.len() > METADATA_SHOWN {
        let fields: Vec<String> = field_counts(&meta[METADATA_SHOWN..])
            .iter()
            .map(|(f, n)| format!("{f} ×{n}"))
            .collect();
        let _ = writeln!(
            s,
            "… and {} more members with metadata-only changes ({})\n",
            meta.len() - METADATA_SHOWN,
            fields.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "`{}` and `{}`\n{}",
        sanitize(&c.left),
        sanitize(&c.right),
        out.paint(verdict_style(c.verdict), &sanitize(&c.summary()))
    );
    s
}

fn text_leaf(s: &mut String, leaf: &LeafDiff, out: &Output) {
    let _ = writeln!(
        s,
        "{}: {} `{}`",
        out.paint(verdict_style(leaf.verdict), leaf.verdict.name()),
        change_word(leaf),
        out.paint(Style::Path, &sanitize(&leaf.path))
    );
    if !leaf.causes.is_empty() {
        let causes: Vec<String> = leaf
            .causes
            .iter()
            .map(|c| {
                let d = sanitize(&c.describe());
                if c.is_code() {
                    out.paint(Style::Bad, &format!("!! {d} !!"))
                } else {
                    d
                }
            })
            .collect();
        let _ = writeln!(s, "  cause: {}", causes.join("; "));
    }
    for f in &leaf.metadata {
        let _ = writeln!(
            s,
            "  {}: {} → {}",
            f.field,
            sanitize(&f.left),
            sanitize(&f.right)
        );
    }
    if let Some(content) = &leaf.content {
        let _ = writeln!(
            s,
            "  {} (sizes {} and {})",
            sanitize(&content.summary),
            content.left_size,
            content.right_size
        );
        for sd in &content.shifts {
            let _ = writeln!(s, "  {}", shift_line(&sd.shift));
            if !matches!(sd.cause, Cause::Shifted { .. }) {
                let cause = sanitize(&sd.cause.describe());
                let cause = if sd.cause.is_code() {
                    out.paint(Style::Bad, &cause)
                } else {
                    cause
                };
                let _ = writeln!(s, "    cause: {cause}");
            }
            if let Some(pair) = &sd.string {
                let _ = writeln!(s, "    left:  {}", quote(&pair.left));
                let _ = writeln!(s, "    right: {}", quote(&pair.right));
            }
            if let Some(ctx) = &sd.context {
                text_context(s, ctx, out);
            }
        }
        if !content.sections.is_empty() {
            let list: Vec<String> = content
                .sections
                .iter()
                .map(|sec| {
                    let code = if sec.executable { ", code" } else { "" };
                    format!(
                        "{} ({}{code})",
                        sanitize(&sec.name),
                        plural(sec.ranges, "range")
                    )
                })
                .collect();
            let _ = writeln!(s, "  sections: {}", list.join(", "));
        }
        text_ranges(s, &content.ranges, out);
    }
    allowance_lines(s, &leaf.allowances);
    for n in &leaf.notes {
        let _ = writeln!(s, "  note: {}", sanitize(n));
    }
    s.push('\n');
}

/// Range lines listed in the text output; the rest (and all in `--json`) are counted.
const TEXT_RANGES: usize = 64;

/// One line per range (the first [`TEXT_RANGES`], and any with hex context), the string each
/// lies in, and each hex window after the last range it covers.
fn text_ranges(s: &mut String, ranges: &[RangeDiff], out: &Output) {
    let mut pending: Option<&HexContext> = None;
    let mut hidden = 0usize;
    for (i, r) in ranges.iter().enumerate() {
        if let Some(ctx) = pending {
            if r.offset >= ctx_end(ctx) || r.context.is_some() {
                text_context(s, ctx, out);
                pending = None;
            }
        }
        if i >= TEXT_RANGES && r.context.is_none() {
            hidden += 1;
            continue;
        }
        let place = r
            .location
            .as_deref()
            .map(|l| format!(" in {}", sanitize(l)))
            .unwrap_or_default();
        let cause = sanitize(&r.cause.describe());
        let cause = if r.cause.is_code() {
            out.paint(Style::Bad, &cause)
        } else {
            cause
        };
        let _ = writeln!(
            s,
            "  {:#x}+{}{}{place}: {cause}",
            r.offset,
            r.len,
            right_place(r)
        );
        if let Some(pair) = &r.string {
            let _ = writeln!(s, "    left:  {}", quote(&pair.left));
            let _ = writeln!(s, "    right: {}", quote(&pair.right));
        }
        if let Some(ctx) = &r.context {
            pending = Some(ctx);
        }
    }
    if let Some(ctx) = pending {
        text_context(s, ctx, out);
    }
    if hidden > 0 {
        let _ = writeln!(
            s,
            "  … {hidden} more explained ranges (all of them in `--json`)"
        );
    }
}

/// The offset just past a hex window.
fn ctx_end(ctx: &HexContext) -> u64 {
    ctx.offset + (ctx.left.len().max(ctx.right.len()) / 2) as u64
}

/// A string from the inputs in double quotes, escaped: `"` and `\` with a backslash, and
/// whatever [`sanitize`] escapes.
fn quote(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", sanitize(&escaped))
}

/// `8 bytes inserted at 0x15f56; after it identical when shifted by +8, except 3 bytes`.
fn shift_line(s: &Shift) -> String {
    let (n, what) = if s.inserted > 0 {
        (s.inserted, "inserted")
    } else {
        (s.removed, "removed")
    };
    let right = if s.right_offset == s.left_offset {
        String::new()
    } else {
        format!(" ({:#x} on the right)", s.right_offset)
    };
    let except = match s.differing_after {
        0 => String::new(),
        d => format!(", except {}", plural(d, "byte")),
    };
    let after = if s.by == 0 {
        "at the same offsets".to_owned()
    } else {
        format!("when shifted by {:+}", s.by)
    };
    format!(
        "{} {what} at {:#x}{right}; after it identical {after}{except}",
        plural(n, "byte"),
        s.left_offset,
    )
}

/// ` (right 0x…)` for a range that lies elsewhere on the right.
fn right_place(r: &RangeDiff) -> String {
    if r.shift == 0 {
        String::new()
    } else {
        format!(" (right {:#x})", r.right_offset())
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn ascii(b: u8) -> char {
    if b.is_ascii_graphic() || b == b' ' {
        char::from(b)
    } else {
        '.'
    }
}

/// `xxd`-like lines, left then right, differing bytes highlighted (or marked with `^^` when
/// there is no colour).
fn text_context(s: &mut String, ctx: &HexContext, out: &Output) {
    let (left, right) = (unhex(&ctx.left), unhex(&ctx.right));
    for line in 0..left.len().max(right.len()).div_ceil(16) {
        let at = line * 16;
        let mut marks = String::new();
        for (side, bytes, other) in [("left ", &left, &right), ("right", &right, &left)] {
            let mut hexes = String::new();
            let mut text = String::new();
            for i in at..at + 16 {
                let differs = bytes.get(i) != other.get(i);
                match bytes.get(i) {
                    Some(&byte) => {
                        let pair = format!("{byte:02x}");
                        let shown = ascii(byte).to_string();
                        if differs && out.color {
                            hexes.push_str(&out.paint(Style::Bad, &pair));
                            text.push_str(&out.paint(Style::Bad, &shown));
                        } else {
                            hexes.push_str(&pair);
                            text.push_str(&shown);
                        }
                    }
                    None => hexes.push_str("  "),
                }
                hexes.push(' ');
                if side == "left " {
                    marks.push_str(if differs { "^^ " } else { "   " });
                }
            }
            let base = match (side, ctx.right_offset) {
                ("right", Some(r)) => r,
                _ => ctx.offset,
            };
            let _ = writeln!(s, "    {:08x} {side} {hexes} |{text}|", base + at as u64);
        }
        if !out.color && marks.contains('^') {
            let _ = writeln!(s, "    {:8} {:5} {}", "", "", marks.trim_end());
        }
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in HTML text and attribute values. Control,
/// bidi and zero-width characters are first written as `\u{…}`, as in the text output
/// ([`super::sanitize::sanitize`]), so a hostile name cannot make one path read as another.
pub(crate) fn escape(text: &str) -> String {
    let text = super::sanitize::sanitize(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}\
h1{font-size:1.4em}code,pre{font:13px ui-monospace,monospace}\
span.identical{color:#176c2e}span.equivalent{color:#8a5a00}span.different{color:#b00020}\
.verdict,.badge{font-weight:bold;text-transform:uppercase}.badge{font-size:.8em;margin-right:.4em}\
section{border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.6em 1em}\
section.different{border-left:6px solid #b00020}section.equivalent{border-left:6px solid #d19a00}\
.code{background:#b00020;color:#fff;padding:0 .3em;border-radius:3px;font-weight:bold}\
table{border-collapse:collapse}td,th{padding:.15em .6em;text-align:left;vertical-align:top}\
pre{background:#f6f6f6;padding:.5em;overflow-x:auto}mark{background:#ffb3b3}\
span.passed{color:#176c2e}span.failed,span.rejected{color:#b00020}span.unreadable{color:#8a5a00}\
tr.problems td{color:#555;font-size:.9em}";

/// One self-contained page: inline CSS, no script, no external resource, everything escaped.
pub(crate) fn render_html(c: &Comparison) -> String {
    let title = format!("reprove diff: {}", c.verdict.name());
    let mut h = format!(
        "<h1>reprove diff: <span class=\"verdict {v}\" id=\"verdict\">{v}</span></h1>\n",
        v = c.verdict.name()
    );
    h.push_str(&html_comparison(c));
    if let Some(s) = crate::compare::suggest::suggest_trailer(c, None) {
        h.push_str(&super::failure::suggestion_html(&s, true));
    }
    html_page(&title, &h)
}

/// A whole self-contained page: inline style, no script, nothing fetched.
pub(crate) fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"color-scheme\" content=\"light\"><title>{}</title><style>{CSS}</style></head><body>\n\
         {body}</body></html>\n",
        escape(title)
    )
}

/// One comparison: what was compared, the summary, and every leaf.
pub(crate) fn html_comparison(c: &Comparison) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<table><tr><th>left</th><td><code>{}</code></td></tr>\
         <tr><th>right</th><td><code>{}</code></td></tr>\
         <tr><th>summary</th><td class=\"summary\">{}</td></tr></table>",
        escape(&c.left),
        escape(&c.right),
        escape(&c.summary()),
    );
    let (main, meta) = ordered(c);
    for leaf in main.iter().chain(meta.iter().take(METADATA_SHOWN)) {
        html_leaf(&mut h, leaf);
    }
    if meta.len() > METADATA_SHOWN {
        let rest = &meta[METADATA_SHOWN..];
        let fields: Vec<String> = field_counts(rest)
            .iter()
            .map(|(f, n)| format!("{} ×{n}", escape(f)))
            .collect();
        let _ = writeln!(
            h,
            "<section><h2>{} more members with metadata-only changes</h2><p>{}</p><details><summary>list</summary><ul>",
            rest.len(),
            fields.join(", ")
        );
        for leaf in rest {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(&leaf.path));
        }
        h.push_str("</ul></details></section>\n");
    }
    h
}

fn html_leaf(h: &mut String, leaf: &LeafDiff) {
    let v = leaf.verdict.name();
    let _ = writeln!(
        h,
        "<section class=\"{v}\"><h2><span class=\"badge {v}\">{v}</span> {} <code>{}</code></h2>",
        change_word(leaf),
        escape(&leaf.path)
    );
    if !leaf.causes.is_empty() {
        let causes: Vec<String> = leaf
            .causes
            .iter()
            .map(|c| {
                if c.is_code() {
                    format!("<span class=\"code\">{}</span>", escape(&c.describe()))
                } else {
                    escape(&c.describe())
                }
            })
            .collect();
        let _ = writeln!(h, "<p>cause: {}</p>", causes.join("; "));
    }
    if !leaf.metadata.is_empty() {
        h.push_str("<table><tr><th>field</th><th>left</th><th>right</th></tr>");
        for f in &leaf.metadata {
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(&f.field),
                escape(&f.left),
                escape(&f.right)
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(content) = &leaf.content {
        let _ = writeln!(
            h,
            "<p class=\"content-summary\">{} (sizes {} and {})</p>",
            escape(&content.summary),
            content.left_size,
            content.right_size
        );
        if !content.shifts.is_empty() {
            h.push_str("<ul class=\"shifts\">");
            for sd in &content.shifts {
                let cause = match &sd.cause {
                    Cause::Shifted { .. } => String::new(),
                    c => format!(": {}", c.describe()),
                };
                let string = sd.string.as_ref().map_or_else(String::new, |p| {
                    format!(
                        " (<code>{}</code> → <code>{}</code>)",
                        escape(&quote(&p.left)),
                        escape(&quote(&p.right))
                    )
                });
                let _ = write!(
                    h,
                    "<li>{}{}{string}</li>",
                    escape(&shift_line(&sd.shift)),
                    escape(&cause)
                );
            }
            h.push_str("</ul>\n");
            for ctx in content.shifts.iter().filter_map(|sd| sd.context.as_ref()) {
                html_context(h, ctx);
            }
        }
        h.push_str("<table><tr><th>offset</th><th>length</th><th>where</th><th>cause</th><th>string (left, right)</th></tr>");
        for r in &content.ranges {
            let cause = escape(&r.cause.describe());
            let cause = if r.cause.is_code() {
                format!("<span class=\"code\">{cause}</span>")
            } else {
                cause
            };
            let string = r.string.as_ref().map_or_else(String::new, |p| {
                format!(
                    "<code>{}</code><br><code>{}</code>",
                    escape(&quote(&p.left)),
                    escape(&quote(&p.right))
                )
            });
            let _ = write!(
                h,
                "<tr><td><code>{:#x}</code>{}</td><td>{}</td><td>{}</td><td>{cause}</td><td>{string}</td></tr>",
                r.offset,
                escape(&right_place(r)),
                r.len,
                escape(r.location.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
        for ctx in content.ranges.iter().filter_map(|r| r.context.as_ref()) {
            html_context(h, ctx);
        }
    }
    for a in &leaf.allowances {
        let ranges: Vec<String> = a
            .ranges
            .iter()
            .map(|r| format!("{:#x}+{}", r.offset, r.len))
            .collect();
        let _ = writeln!(
            h,
            "<p>allowed by <code>{}</code>: {} {}</p>",
            escape(&a.allowance.rule.to_string()),
            escape(&a.allowance.reason),
            escape(&ranges.join(" "))
        );
    }
    for n in &leaf.notes {
        let _ = writeln!(h, "<p>note: {}</p>", escape(n));
    }
    h.push_str("</section>\n");
}

fn html_context(h: &mut String, ctx: &HexContext) {
    let (left, right) = (unhex(&ctx.left), unhex(&ctx.right));
    h.push_str("<pre>");
    for line in 0..left.len().max(right.len()).div_ceil(16) {
        let at = line * 16;
        for (side, bytes, other) in [("left ", &left, &right), ("right", &right, &left)] {
            let base = match (side, ctx.right_offset) {
                ("right", Some(r)) => r,
                _ => ctx.offset,
            };
            let _ = write!(h, "{:08x} {side} ", base + at as u64);
            let mut text = String::new();
            for i in at..at + 16 {
                let Some(&byte) = bytes.get(i) else {
                    h.push_str("   ");
                    continue;
                };
                let shown = escape(&ascii(byte).to_string());
                if bytes.get(i) == other.get(i) {
                    let _ = write!(h, "{byte:02x} ");
                    text.push_str(&shown);
                } else {
                    let _ = write!(h, "<mark>{byte:02x}</mark> ");
                    let _ = write!(text, "<mark>{shown}</mark>");
                }
            }
            let _ = writeln!(h, "|{text}|");
        }
    }
    h.push_str("</pre>\n");
}

/// One line per allowance that applied: its rule, its reason, the ranges it covered.
pub(crate) fn allowance_lines(s: &mut String, allowances: &[crate::compare::AppliedAllowance]) {
    for a in allowances {
        let ranges: Vec<String> = a
            .ranges
            .iter()
            .map(|r| format!("{:#x}+{}", r.offset, r.len))
            .collect();
        let covered = if ranges.is_empty() {
            String::new()
        } else {
            format!(", covering {}", ranges.join(" "))
        };
        let _ = writeln!(
            s,
            "  allowed by `{}` ({}){covered}",
            a.allowance.rule,
            sanitize(&a.allowance.reason)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\x1b[2J\x07\u{202e}<b>\u{200b}"),
            "a\\u{1b}[2J\\u{7}\\u{202e}&lt;b&gt;\\u{200b}"
        );
    }
}
