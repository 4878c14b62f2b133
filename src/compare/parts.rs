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
//!
//! Packed parts (a squashfs file, an LZMA section's content) are unpacked into temporary files
//! charged to the comparison's budget and compared like archive members: their metadata
//! fields by value (mode, owner and mtime as archive metadata), their content recursively.
//! The span that holds packed parts (the squashfs data and tables, the compressed stream) is
//! compared as bytes only when every packed part in it matches, as an archive's own bytes are
//! when its members match: its bytes differ *because* the parts in it do.

use std::collections::HashSet;

use crate::archive::limits::{Bound, Exceeded};
use crate::firmware::{self, FieldKind, Part, Role};

use super::container::{Blob, Fault};
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
    for p in parts.iter().filter(|p| p.packed.is_none()) {
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

/// The span part of `map` that holds the packed part `packed`.
fn holder<'m>(parts: &'m [Part], packed: &Part) -> Option<&'m str> {
    parts
        .iter()
        .filter(|p| p.packed.is_none())
        .find(|p| {
            packed.offset >= p.offset
                && packed.offset.saturating_add(packed.len) <= p.offset.saturating_add(p.len)
        })
        .map(|p| p.name.as_str())
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
            (format.name(), Some(format)),
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
        (format, packed_format): (&str, Option<firmware::Format>),
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
        let holders: HashSet<&str> = lparts
            .iter()
            .chain(rparts)
            .filter(|p| p.packed.is_some() && p.len > 0)
            .filter_map(|p| holder(lparts, p).or_else(|| holder(rparts, p)))
            .collect();
        // Packed parts first: a holder is compared only when none of its packed parts differ.
        let mut changed_holders: HashSet<String> = HashSet::new();
        let mut holder_notes: Vec<String> = Vec::new();
        if let Some(packed_format) = packed_format {
            self.packed_parts(
                path,
                packed_format,
                (left, right),
                (lparts, rparts),
                depth,
                &mut changed_holders,
                &mut holder_notes,
            )?;
        }
        other_change |= self.leaves.len() > before;
        for l in &ls {
            crate::interrupt::check()?;
            let child = format!("{path}//{}", l.name);
            if holders.contains(l.name.as_str()) && changed_holders.contains(&l.name) {
                continue;
            }
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
                if holders.contains(l.name.as_str()) {
                    if let Some(leaf) = self.leaves.get_mut(n) {
                        leaf.notes.append(&mut holder_notes);
                    }
                }
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
                let leaf = self.content_leaf(&child, &lb, &rb, (&same, &same), Vec::new())?;
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

impl Walker<'_> {
    /// Compare the packed parts of two maps by name: metadata fields by value, content
    /// unpacked into temporary files. Records in `changed` the holders whose packed parts
    /// differ; a part that cannot be unpacked leaves its holder to be compared as bytes, with
    /// a note in `notes`.
    #[allow(clippy::too_many_arguments)]
    fn packed_parts(
        &mut self,
        path: &str,
        format: firmware::Format,
        (left, right): (&Blob, &Blob),
        (lmap, rmap): (&[Part], &[Part]),
        depth: usize,
        changed: &mut HashSet<String>,
        notes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let packed = |m: &[Part]| -> Vec<Part> {
            m.iter().filter(|p| p.packed.is_some()).cloned().collect()
        };
        let (lp, rp) = (packed(lmap), packed(rmap));
        if lp.is_empty() && rp.is_empty() {
            return Ok(());
        }
        let tmp = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
        let mut lu = firmware::Unpacker::new(format, left);
        let mut ru = firmware::Unpacker::new(format, right);
        let mark = |changed: &mut HashSet<String>, p: &Part, map: &[Part]| {
            if let Some(h) = holder(map, p) {
                changed.insert(h.to_owned());
            }
        };
        for l in &lp {
            crate::interrupt::check()?;
            let child = format!("{path}//{}", l.name);
            let Some(r) = rp.iter().find(|r| r.name == l.name) else {
                let leaf = self.leaf(&child, Change::Removed, Vec::new(), Vec::new());
                self.leaves.push(leaf);
                mark(changed, l, lmap);
                continue;
            };
            let n = self.leaves.len();
            let meta = |p: &Part| -> Vec<(&str, String)> {
                p.fields.iter().map(|f| (f.name, f.value.clone())).collect()
            };
            let fields = super::walker::changed_fields(&meta(l), &meta(r));
            if !fields.is_empty() {
                let cause = super::walker::metadata_cause(&fields);
                let leaf = self.leaf(&child, Change::Changed, vec![cause], fields);
                self.leaves.push(leaf);
            }
            let (lk, rk) = (l.packed.unwrap_or_default(), r.packed.unwrap_or_default());
            if lk.has_content && rk.has_content {
                let unpacked = self
                    .unpack(&mut lu, l, tmp.path(), &child)
                    .and_then(|lb| Ok((lb, self.unpack(&mut ru, r, tmp.path(), &child)?)));
                match unpacked {
                    Ok((lb, rb)) => match lk.inner.filter(|_| lk.inner == rk.inner) {
                        Some(inner) => {
                            let before = (self.leaves.len(), self.identical);
                            match self.parts(&child, inner, &lb, &rb, depth + 1)? {
                                Ok(_) => {}
                                Err(note) => {
                                    self.leaves.truncate(before.0);
                                    self.identical = before.1;
                                    let bytes = compare_readers(
                                        lb.reader().map_err(io_error(&lb.path))?,
                                        rb.reader().map_err(io_error(&rb.path))?,
                                    )
                                    .map_err(io_error(&lb.path))?;
                                    if bytes.is_identical() {
                                        self.identical += 1;
                                    } else {
                                        let leaf = self.content_leaf(
                                            &child,
                                            &lb,
                                            &rb,
                                            (&bytes, &bytes),
                                            vec![note],
                                        )?;
                                        self.leaves.push(leaf);
                                    }
                                }
                            }
                        }
                        None => self.blobs(&child, &lb, &rb, depth + 1)?,
                    },
                    Err(Error::Corrupt { detail, .. }) => {
                        crate::interrupt::check()?;
                        notes.push(format!("`{}` could not be unpacked: {detail}", l.name));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else if lk.has_content != rk.has_content {
                let leaf = self.leaf(&child, Change::Changed, vec![Cause::Unknown], Vec::new());
                self.leaves.push(leaf);
            } else if self.leaves.len() == n {
                self.identical += 1;
            }
            if self.leaves.len() > n {
                mark(changed, l, lmap);
                mark(changed, r, rmap);
            }
        }
        for r in &rp {
            if !lp.iter().any(|l| l.name == r.name) {
                let leaf = self.leaf(
                    &format!("{path}//{}", r.name),
                    Change::Added,
                    Vec::new(),
                    Vec::new(),
                );
                self.leaves.push(leaf);
                mark(changed, r, rmap);
            }
        }
        Ok(())
    }

    /// The content of the packed `part` of the unpacker's image, in a new file in `dir`, charged to the
    /// budget.
    fn unpack(
        &mut self,
        unpacker: &mut firmware::Unpacker<'_>,
        part: &Part,
        dir: &std::path::Path,
        child: &str,
    ) -> Result<Blob, Error> {
        let (file, path) = tempfile::NamedTempFile::new_in(dir)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(io_error(dir))?;
        let limits = self.budget.limits();
        let room = limits.max_bytes.saturating_sub(self.budget.bytes());
        let mut out = std::io::BufWriter::new(file);
        let written = match unpacker.extract(part, &mut out, room) {
            Ok(n) => n,
            Err(firmware::Error::TooLarge { .. }) => {
                return Err(Error::from_fault(
                    child,
                    Fault::Bound(Exceeded {
                        bound: Bound::Bytes,
                        limit: limits.max_bytes,
                    }),
                ))
            }
            Err(firmware::Error::Io(e)) if e.kind() != std::io::ErrorKind::InvalidData => {
                crate::interrupt::check()?;
                return Err(io_error(&path)(e));
            }
            Err(e) => return Err(Error::from_fault(child, Fault::Corrupt(e.to_string()))),
        };
        std::io::Write::flush(&mut out).map_err(io_error(&path))?;
        self.budget
            .charge_bytes(written)
            .map_err(|e| Error::from_fault(child, e.into()))?;
        Ok(Blob {
            path,
            offset: 0,
            len: written,
        })
    }
}
