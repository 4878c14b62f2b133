//! Comparing two images read as maps of parts ([`crate::firmware::Map`]): parts are matched by
//! name and each pair is compared like archive members (recursively: a part may be a gzip
//! stream, an ELF file, a filesystem); a header is compared field by field, each changed field
//! given the cause its kind implies (a timestamp, a checksum or length following other
//! changes).
//!
//! Nothing of either image escapes the comparison: the bytes no part covers are compared too,
//! as gaps named after the part before them (`after:header`), so code hidden in padding
//! between parts is a leaf like any other. A checksum or length field that changed while
//! nothing it could count changed is not explained away: its cause is `unknown`, with a note.

use crate::firmware::{self, FieldKind, Part, Role};

use super::container::Blob;
use super::walker::Walker;
use super::{compare_readers, io_error, Cause, Change, Error, FieldChange};

/// A differing header range longer than this is compared as content without looking at its
/// fields byte by byte (headers are small; a map claiming a huge header is not trusted).
const MAX_HEADER_RANGE: u64 = 4096;

/// What comparing two maps found.
pub(super) enum Found {
    /// Leaves were added for the parts that differ.
    Leaves,
    /// Every part and gap matches: what differs is not in the maps (cannot happen for maps
    /// that cover their images; kept for formats that list sparse parts).
    Nothing,
}

/// A part or a gap between parts, with the bytes it spans.
struct Span<'m> {
    name: String,
    part: Option<&'m Part>,
    offset: u64,
    len: u64,
}

/// The `parts` of a map in an image of `len` bytes, with the gaps between them named after the
/// part before each (`before:first` for a gap at the start).
fn spans(parts: &[Part], len: u64) -> Vec<Span<'_>> {
    let mut out = Vec::with_capacity(parts.len() * 2 + 1);
    let mut at = 0u64;
    let mut prev: Option<&str> = None;
    let gap = |prev: Option<&str>, first: Option<&str>| match (prev, first) {
        (Some(p), _) => format!("after:{p}"),
        (None, Some(f)) => format!("before:{f}"),
        (None, None) => "(bytes)".to_owned(),
    };
    for p in parts {
        if p.offset > at {
            out.push(Span {
                name: gap(prev, Some(&p.name)),
                part: None,
                offset: at,
                len: p.offset - at,
            });
        }
        out.push(Span {
            name: p.name.clone(),
            part: Some(p),
            offset: p.offset,
            len: p.len,
        });
        at = at.max(p.offset.saturating_add(p.len));
        prev = Some(&p.name);
    }
    if len > at {
        out.push(Span {
            name: gap(prev, None),
            part: None,
            offset: at,
            len: len - at,
        });
    }
    out
}

fn is_padding(part: Option<&Part>) -> bool {
    part.is_some_and(|p| p.role == Role::Padding)
}

/// Whether `span` of `image` is all 0x00 or all 0xff (read in chunks: a padding part may be
/// large).
fn is_fill(image: &Blob, span: &Span<'_>) -> Result<bool, Error> {
    const CHUNK: usize = 64 * 1024;
    let mut fill = None;
    let mut at = 0u64;
    while at < span.len {
        let want = usize::try_from(span.len - at).map_or(CHUNK, |n| n.min(CHUNK));
        let bytes = image
            .read_at(span.offset + at, want)
            .map_err(io_error(&image.path))?;
        if bytes.is_empty() {
            return Ok(false);
        }
        let first = *fill.get_or_insert(bytes[0]);
        if !matches!(first, 0x00 | 0xff) || bytes.iter().any(|&b| b != first) {
            return Ok(false);
        }
        at += bytes.len() as u64;
    }
    Ok(true)
}

/// The cause a changed header field of `kind` implies.
/// A field called `value` (a device tree's property) is named by its part alone.
fn field_cause(format: &str, part: &str, name: &str, kind: FieldKind) -> Cause {
    let field = if name == "value" {
        format!("{format} `{part}`")
    } else {
        format!("{format} `{part}` {name}")
    };
    match kind {
        FieldKind::Timestamp => Cause::Timestamp,
        FieldKind::Checksum | FieldKind::Length => Cause::Checksum { field: Some(field) },
        FieldKind::Text | FieldKind::Number => Cause::Unknown,
    }
}

impl Walker<'_> {
    /// Compare `left` and `right`, both of `format`, part by part. `Err` only for what stops a
    /// comparison; a map that cannot be read comes back as `Ok(Err(note))`, for the caller to
    /// compare bytes.
    pub(super) fn parts(
        &mut self,
        path: &str,
        format: firmware::Format,
        left: &Blob,
        right: &Blob,
        depth: usize,
    ) -> Result<Result<Found, String>, Error> {
        let (lmap, rmap) = match (firmware::map(format, left), firmware::map(format, right)) {
            (Ok(l), Ok(r)) => (l, r),
            (Err(e), _) | (_, Err(e)) => {
                return Ok(Err(format!(
                    "could not read as {}: {e}; compared as bytes",
                    format.name()
                )))
            }
        };
        self.compare_maps(
            path,
            format.name(),
            &lmap.parts,
            &rmap.parts,
            (left, right),
            depth,
        )
    }

    /// Compare two images given as their maps' parts, part by part (gaps included); `format`
    /// names the kind of map in notes and causes. Used for a format's maps and for image maps
    /// (`imagemap.rs`), whose parts come from the rebuilt tree.
    pub(super) fn compare_maps(
        &mut self,
        path: &str,
        format: &str,
        lparts: &[Part],
        rparts: &[Part],
        (left, right): (&Blob, &Blob),
        depth: usize,
    ) -> Result<Result<Found, String>, Error> {
        for _ in lparts.iter().chain(rparts) {
            self.budget
                .charge_entry()
                .map_err(|e| Error::from_fault(path, e.into()))?;
        }
        let (ls, rs) = (spans(lparts, left.len), spans(rparts, right.len));
        // Maps list up to `MAX_PARTS` parts: match them by name through an index.
        let rindex: std::collections::HashMap<&str, usize> = rs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let lnames: std::collections::HashSet<&str> = ls.iter().map(|l| l.name.as_str()).collect();
        let before = self.leaves.len();
        let mut only_checksums: Vec<usize> = Vec::new();
        let mut other_change = false;
        for l in &ls {
            crate::interrupt::check()?;
            let child = format!("{path}//{}", l.name);
            let Some(r) = rindex.get(l.name.as_str()).map(|&i| &rs[i]) else {
                if is_padding(l.part) && is_fill(left, l)? {
                    continue;
                }
                let leaf = self.leaf(&child, Change::Removed, Vec::new(), Vec::new());
                self.leaves.push(leaf);
                other_change = true;
                continue;
            };
            let (Some(lb), Some(rb)) = (left.slice(l.offset, l.len), right.slice(r.offset, r.len))
            else {
                return Ok(Err(format!(
                    "a part of the {format} map runs past its image; compared as bytes"
                )));
            };
            if is_padding(l.part) && is_padding(r.part) && is_fill(left, l)? && is_fill(right, r)? {
                // Fill on both sides, of any length: it moved with a length field, it holds
                // nothing.
                self.identical += 1;
                continue;
            }
            let header = match (l.part, r.part) {
                (Some(lp), Some(rp)) if lp.role == Role::Header || rp.role == Role::Header => {
                    Some((lp, rp))
                }
                _ => None,
            };
            let Some((lp, rp)) = header else {
                let n = self.leaves.len();
                self.blobs(&child, &lb, &rb, depth + 1)?;
                other_change |= self.leaves.len() > n;
                continue;
            };
            let same = compare_readers(
                lb.reader().map_err(io_error(&lb.path))?,
                rb.reader().map_err(io_error(&rb.path))?,
            )
            .map_err(io_error(&lb.path))?;
            if same.is_identical() {
                self.identical += 1;
                continue;
            }
            let mut fields = Vec::new();
            let mut causes: Vec<Cause> = Vec::new();
            let mut checksum_only = true;
            for lf in &lp.fields {
                let Some(rf) = rp.fields.iter().find(|f| f.name == lf.name) else {
                    continue;
                };
                if lf.value == rf.value {
                    continue;
                }
                let cause = field_cause(format, &l.name, lf.name, lf.kind);
                checksum_only &= matches!(cause, Cause::Checksum { .. });
                if !causes.contains(&cause) {
                    causes.push(cause);
                }
                fields.push(FieldChange {
                    field: lf.name.to_owned(),
                    left: lf.value.clone(),
                    right: rf.value.clone(),
                });
            }
            // Bytes outside every field, or fields only one side has: compared as content.
            let covered = |p: &Part, off: u64| {
                p.fields
                    .iter()
                    .any(|f| off >= f.offset && off - f.offset < f.len)
            };
            let stray = lp.fields.len() != rp.fields.len()
                || same.is_truncated()
                || same.ranges.iter().any(|rg| {
                    rg.len > MAX_HEADER_RANGE
                        || (rg.offset..rg.end()).any(|o| !covered(lp, o) || !covered(rp, o))
                });
            let no_fields = fields.is_empty();
            if !no_fields {
                let leaf = self.leaf(&child, Change::Changed, causes, fields);
                if checksum_only && !stray {
                    only_checksums.push(self.leaves.len());
                } else {
                    other_change = true;
                }
                self.leaves.push(leaf);
            }
            if stray || no_fields {
                let leaf = self.content_leaf(&child, &lb, &rb, &same, Vec::new())?;
                self.leaves.push(leaf);
                other_change = true;
            }
        }
        for r in &rs {
            if !(lnames.contains(r.name.as_str()) || is_padding(r.part) && is_fill(right, r)?) {
                let leaf = self.leaf(
                    &format!("{path}//{}", r.name),
                    Change::Added,
                    Vec::new(),
                    Vec::new(),
                );
                self.leaves.push(leaf);
                other_change = true;
            }
        }
        if !other_change {
            // A checksum that changed over bytes that did not: not a consequence of anything.
            for &i in &only_checksums {
                let leaf = &mut self.leaves[i];
                leaf.causes = vec![Cause::Unknown];
                leaf.notes.push(
                    "a checksum or length changed though nothing else in the image did".into(),
                );
            }
        }
        Ok(Ok(if self.leaves.len() > before {
            Found::Leaves
        } else {
            Found::Nothing
        }))
    }
}
