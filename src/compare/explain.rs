//! A likely cause for one differing byte range, from the usual roots of non-reproducible
//! builds (see `docs/diff.md`), and the hex context shown with it.
//!
//! The bytes around a range are read from both sides with positioned reads (a small window,
//! never the whole input). Order matters: a range inside an executable ELF section is always
//! `code`, whatever its bytes look like, so no pattern can hide a change to machine code.

use std::io;

use super::bytes::ByteRange;
use super::container::Blob;
use super::elf::{ElfMap, Location};
use super::{Cause, HexContext};

/// Bytes read on each side of a range to see the string or integer it belongs to.
const WINDOW: u64 = 64;
/// The most of a long range looked at.
const RANGE_CAP: u64 = 256;
/// A value this close to a reference time (in seconds) is taken for a timestamp: a month.
const NEAR: i64 = 31 * 86_400;
/// Bytes of hex context per range: three lines of 16.
const CONTEXT_LEN: usize = 48;

/// The likely cause of the differing `range` (at left offsets; on the right `shift` bytes
/// later), and where it lies in an ELF file.
pub(super) fn explain(
    range: ByteRange,
    shift: i64,
    left: &Blob,
    right: &Blob,
    elf: Option<&ElfMap>,
    times: &[i64],
) -> io::Result<(Cause, Option<Location>)> {
    let location = elf.map(|m| m.locate(range.offset));
    match &location {
        Some(Location::Section { name, .. }) if name == ".note.gnu.build-id" => {
            return Ok((Cause::BuildId, location));
        }
        Some(Location::Section {
            name,
            executable: true,
            symbol,
        }) => {
            let cause = Cause::Code {
                section: name.clone(),
                symbol: symbol.clone(),
            };
            return Ok((cause, location));
        }
        _ => {}
    }
    // Both windows start at the same distance before the range, so the right one starts at 0
    // or later.
    let start = range.offset.saturating_sub(WINDOW).max(
        shift
            .checked_neg()
            .map_or(0, |s| u64::try_from(s).unwrap_or(0)),
    );
    let span_len = usize::try_from(range.len.min(RANGE_CAP)).unwrap_or(0);
    let want = usize::try_from(range.offset - start + WINDOW).unwrap_or(0) + span_len;
    let (l, r) = (
        left.read_at(start, want)?,
        right.read_at(start.saturating_add_signed(shift), want)?,
    );
    let span = usize::try_from(range.offset - start).unwrap_or(0);
    let span = span..span + span_len;
    let cause = if is_date_string(&l, &r, &span) || is_time_integer(&l, &r, &span, times) {
        Cause::Timestamp
    } else if is_build_path(&l, &span) && is_build_path(&r, &span) {
        Cause::BuildPath
    } else {
        Cause::Unknown
    };
    Ok((cause, location))
}

/// Three lines of hex from both sides, the first holding the start of `range` (on the right,
/// `shift` bytes later).
pub(super) fn context(
    range: ByteRange,
    shift: i64,
    left: &Blob,
    right: &Blob,
) -> io::Result<HexContext> {
    let offset = (range.offset & !15).max(
        shift
            .checked_neg()
            .map_or(0, |s| u64::try_from(s).unwrap_or(0)),
    );
    let right_offset = offset.saturating_add_signed(shift);
    Ok(HexContext {
        offset,
        left: hex(&left.read_at(offset, CONTEXT_LEN)?),
        right: hex(&right.read_at(right_offset, CONTEXT_LEN)?),
        right_offset: (shift != 0).then_some(right_offset),
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Shapes of date and time strings: `A` upper, `a` lower, `9` digit, `_` digit or space.
const DATE_SHAPES: &[&[u8]] = &[b"Aaa _9 9999", b"9999-99-99", b"99:99:99"];

fn fits(s: &[u8], at: usize, shape: &[u8]) -> bool {
    s.get(at..at + shape.len()).is_some_and(|w| {
        w.iter().zip(shape).all(|(&c, &p)| match p {
            b'A' => c.is_ascii_uppercase(),
            b'a' => c.is_ascii_lowercase(),
            b'9' => c.is_ascii_digit(),
            b'_' => c.is_ascii_digit() || c == b' ',
            lit => c == lit,
        })
    })
}

/// Both sides hold a date or time string, at the same place, overlapping the span.
fn is_date_string(l: &[u8], r: &[u8], span: &std::ops::Range<usize>) -> bool {
    DATE_SHAPES.iter().any(|shape| {
        let first = (span.start + 1).saturating_sub(shape.len());
        (first..span.end).any(|at| fits(l, at, shape) && fits(r, at, shape))
    })
}

/// A 4- or 8-byte integer (either byte order) covering the span reads, on one side, as a time
/// up to a month before a reference (`SOURCE_DATE_EPOCH`, the build time, now, the files'
/// mtimes) — stamps are not taken after the build — and on the other as some time between
/// 1980 and the latest reference.
fn is_time_integer(l: &[u8], r: &[u8], span: &std::ops::Range<usize>, times: &[i64]) -> bool {
    const DAY: i64 = 86_400;
    let near = |v: i64| {
        times
            .iter()
            .any(|&t| (t.saturating_sub(NEAR)..=t.saturating_add(DAY)).contains(&v))
    };
    let latest = times.iter().max().map_or(0, |t| t.saturating_add(DAY));
    let plausible = |v: i64| (315_532_800..=latest).contains(&v);
    for width in [4usize, 8] {
        if span.len() > width {
            continue;
        }
        for at in span.end.saturating_sub(width)..=span.start {
            let (Some(a), Some(b)) = (l.get(at..at + width), r.get(at..at + width)) else {
                continue;
            };
            for big in [false, true] {
                let (va, vb) = (int(a, big), int(b, big));
                if (near(va) && plausible(vb)) || (near(vb) && plausible(va)) {
                    return true;
                }
            }
        }
    }
    false
}

fn int(bytes: &[u8], big: bool) -> i64 {
    let mut v: u64 = 0;
    for i in 0..bytes.len() {
        let b = if big {
            bytes[i]
        } else {
            bytes[bytes.len() - 1 - i]
        };
        v = (v << 8) | u64::from(b);
    }
    i64::try_from(v).unwrap_or(i64::MIN)
}

/// The span lies in an absolute path string after its first `/`.
fn is_build_path(s: &[u8], span: &std::ops::Range<usize>) -> bool {
    let path_char = |c: u8| c.is_ascii_graphic() && !b"\"'<>`|".contains(&c);
    if span.start >= s.len() || !path_char(s[span.start]) {
        return false;
    }
    let begin = s[..span.start]
        .iter()
        .rposition(|&c| !path_char(c))
        .map_or(0, |i| i + 1);
    let token = &s[begin..=span.start];
    // The path starts the token, or follows `=` or `:` (`-I/usr/…`, `DIR=/build/…`).
    let Some(slash) = token.iter().position(|&c| c == b'/') else {
        return false;
    };
    let absolute = slash == 0 || matches!(token[slash - 1], b'=' | b':' | b'I' | b'L');
    absolute && slash < token.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_strings_are_timestamps() {
        assert!(is_date_string(
            b"built Nov 14 2023 x",
            b"built Nov 15 2023 x",
            &(10..11)
        ));
        assert!(is_date_string(b"at 12:34:56.", b"at 12:35:01.", &(7..8)));
        assert!(is_date_string(b"2026-11-22", b"2026-11-23", &(9..10)));
        assert!(!is_date_string(b"version 1.2", b"version 1.3", &(10..11)));
    }

    #[test]
    fn integers_near_a_reference_are_timestamps() {
        let sde: i64 = 1_700_000_000;
        let mut l = vec![0u8; 16];
        let mut r = l.clone();
        l[4..8].copy_from_slice(&u32::try_from(sde).unwrap().to_le_bytes());
        r[4..8].copy_from_slice(&u32::try_from(sde + 3600).unwrap().to_le_bytes());
        assert!(is_time_integer(&l, &r, &(5..6), &[sde]));
        l[4..8].copy_from_slice(&u32::try_from(sde).unwrap().to_be_bytes());
        r[4..8].copy_from_slice(&u32::try_from(sde + 7).unwrap().to_be_bytes());
        assert!(is_time_integer(&l, &r, &(7..8), &[sde]));
        assert!(!is_time_integer(
            &[0, 1, 2, 3],
            &[0, 1, 2, 4],
            &(3..4),
            &[sde]
        ));
    }

    #[test]
    fn absolute_paths_are_build_paths() {
        let s = b"\0/home/alice/src/fw/main.c\0";
        assert!(is_build_path(s, &(9..10)));
        assert!(is_build_path(b"-I/build/abc/include", &(9..10)));
        assert!(!is_build_path(b"\0hello world\0", &(3..4)));
        assert!(!is_build_path(b"a/b", &(0..1)));
    }
}
