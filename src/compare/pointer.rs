//! Pointers that moved with shifted content: a differing 2-, 4- or 8-byte integer whose value
//! on the right is its value on the left plus a shift the comparison followed (the shift after
//! some insertion or removal, or that less the shift in effect where the integer lies, for an
//! offset relative to itself). Only ranges no other cause explains are looked at, so a pointer
//! can never hide a change to code; a value is read in both byte orders, never past either side.

use std::io;

use super::bytes::{ByteRange, Shift};
use super::container::Blob;

/// How much the integers covering the differing bytes of `range` moved, when every one of them
/// moved by a shift of `shifts` (the first such shift); `shift` is right offset minus left
/// offset at the range.
pub(super) fn moved_by(
    range: ByteRange,
    shift: i64,
    shifts: &[Shift],
    left: &Blob,
    right: &Blob,
) -> io::Result<Option<i64>> {
    if shifts.is_empty() || range.len > MAX_LEN {
        return Ok(None);
    }
    let mut moves: Vec<i64> = Vec::new();
    for s in shifts {
        let own = i64::try_from(s.inserted).unwrap_or(0) - i64::try_from(s.removed).unwrap_or(0);
        for m in [s.by, s.by.saturating_sub(shift), own] {
            if m != 0 && !moves.contains(&m) {
                moves.push(m);
            }
        }
    }
    // The window starts 7 bytes before the range, and at 0 or later on the right.
    let lead = shift
        .checked_neg()
        .map_or(0, |s| u64::try_from(s).unwrap_or(0));
    let start = range.offset.saturating_sub(7).max(lead);
    let want = usize::try_from(range.end() - start + 7).unwrap_or(0);
    let l = left.read_at(start, want)?;
    let r = right.read_at(start.saturating_add_signed(shift), want)?;
    let first = usize::try_from(range.offset - start).unwrap_or(usize::MAX);
    let end = usize::try_from(range.end() - start).unwrap_or(0);
    let mut found = None;
    for p in first..end.min(l.len()).min(r.len()) {
        if l[p] == r[p] {
            continue;
        }
        match covering_move(&l, &r, p, &moves) {
            Some(m) => {
                found.get_or_insert(m);
            }
            None => return Ok(None),
        }
    }
    Ok(found)
}

/// Longest range looked at: a few pointers side by side.
const MAX_LEN: u64 = 64;

/// A 2-, 4- or 8-byte integer covering `l[p]` (and `r[p]`) whose value moved by one of `moves`.
fn covering_move(left: &[u8], right: &[u8], p: usize, moves: &[i64]) -> Option<i64> {
    for width in [8usize, 4, 2] {
        for at in p.saturating_sub(width - 1)..=p {
            let span = at..at + width;
            let (Some(was), Some(is)) = (left.get(span.clone()), right.get(span)) else {
                continue;
            };
            for big in [false, true] {
                let (va, vb) = (value(was, big), value(is, big));
                if let Some(&m) = moves.iter().find(|&&m| va + i128::from(m) == vb) {
                    return Some(m);
                }
            }
        }
    }
    None
}

fn value(bytes: &[u8], big: bool) -> i128 {
    let mut v: i128 = 0;
    for i in 0..bytes.len() {
        let b = if big {
            bytes[i]
        } else {
            bytes[bytes.len() - 1 - i]
        };
        v = (v << 8) | i128::from(b);
    }
    v
}
