//! Streaming byte comparison: exact counts, merged ranges, bounded memory.
//!
//! Both inputs are read in 1 MiB pieces, the two reads running in parallel; a pair
//! of equal chunks costs one `memcmp`. Only a chunk pair that differs is scanned byte by byte.
//! Differing bytes closer than [`MERGE_GAP`] equal bytes apart are merged into one range, so a
//! changed 8-byte timestamp with an unchanged byte in its middle reads as one difference. The
//! first [`MAX_RANGES`] ranges are kept; past that only counts grow, so memory is bounded
//! whatever the inputs hold. When one input is longer, its tail is one more range.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::hash::read_full;

use serde::Serialize;

const CHUNK: usize = 1 << 20;
/// Differing bytes separated by fewer equal bytes than this belong to one range.
pub const MERGE_GAP: u64 = 8;
/// How many ranges a [`ByteDiff`] keeps; the count goes on past it.
pub const MAX_RANGES: usize = 4096;

/// A half-open span of bytes, `offset..offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    /// One past the last byte; saturating, since ranges read from a crafted ELF header can
    /// claim any offset and length.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// How two byte streams differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByteDiff {
    pub left_size: u64,
    pub right_size: u64,
    /// Bytes that differ in the common length, plus the longer input's tail.
    pub differing_bytes: u64,
    /// All ranges found (also those past [`MAX_RANGES`]).
    pub range_count: u64,
    /// The first [`MAX_RANGES`] merged ranges, in offset order.
    pub ranges: Vec<ByteRange>,
}

impl ByteDiff {
    pub fn is_identical(&self) -> bool {
        self.differing_bytes == 0 && self.left_size == self.right_size
    }

    /// True when some ranges were found but not kept.
    pub fn is_truncated(&self) -> bool {
        self.range_count > self.ranges.len() as u64
    }
}

/// Gathers differing offsets into merged ranges as they stream past.
#[derive(Debug, Default)]
struct Ranges {
    kept: Vec<ByteRange>,
    count: u64,
    /// The range still open for merging (not yet counted).
    open: Option<ByteRange>,
}

impl Ranges {
    fn add(&mut self, offset: u64, len: u64) {
        if let Some(open) = &mut self.open {
            if offset <= open.end() + MERGE_GAP {
                open.len = (offset + len).max(open.end()) - open.offset;
                return;
            }
            let done = *open;
            self.close(done);
        }
        self.open = Some(ByteRange { offset, len });
    }

    fn close(&mut self, range: ByteRange) {
        self.count += 1;
        if self.kept.len() < MAX_RANGES {
            self.kept.push(range);
        }
    }

    fn finish(mut self) -> (Vec<ByteRange>, u64) {
        if let Some(open) = self.open.take() {
            self.close(open);
        }
        (self.kept, self.count)
    }
}

/// Compare the files at `left` and `right`.
pub fn compare_files(left: &Path, right: &Path) -> io::Result<ByteDiff> {
    compare_readers(File::open(left)?, File::open(right)?)
}

/// Compare two streams to their ends.
pub fn compare_readers(
    mut left: impl Read + Send,
    mut right: impl Read + Send,
) -> io::Result<ByteDiff> {
    let mut a = vec![0u8; CHUNK];
    let mut b = vec![0u8; CHUNK];
    let mut ranges = Ranges::default();
    let mut differing = 0u64;
    let mut offset = 0u64;
    let (mut left_size, mut right_size) = (0u64, 0u64);
    loop {
        crate::interrupt::check()?;
        let (na, nb) = rayon::join(
            || read_full(&mut left, &mut a),
            || read_full(&mut right, &mut b),
        );
        let (na, nb) = (na?, nb?);
        left_size += na as u64;
        right_size += nb as u64;
        let common = na.min(nb);
        if a[..common] != b[..common] {
            differing += scan(&a[..common], &b[..common], offset, &mut ranges);
        }
        offset += common as u64;
        if na != nb || na < CHUNK {
            if na != nb {
                // One input ended: everything the other holds from here on differs.
                let (rest_left, rest_right) = (drain(&mut left)?, drain(&mut right)?);
                left_size += rest_left;
                right_size += rest_right;
            }
            break;
        }
    }
    let tail = left_size.abs_diff(right_size);
    if tail > 0 {
        ranges.add(left_size.min(right_size), tail);
        differing += tail;
    }
    let (kept, range_count) = ranges.finish();
    Ok(ByteDiff {
        left_size,
        right_size,
        differing_bytes: differing,
        range_count,
        ranges: kept,
    })
}

/// Record the differing bytes of two equal-length slices starting at `base`; return their count.
fn scan(a: &[u8], b: &[u8], base: u64, ranges: &mut Ranges) -> u64 {
    const WORD: usize = 8;
    let mut count = 0u64;
    let mut i = 0;
    while i < a.len() {
        // Skip equal stretches a word at a time; differences are usually sparse.
        if i + WORD <= a.len() && a[i..i + WORD] == b[i..i + WORD] {
            i += WORD;
            continue;
        }
        if a[i] != b[i] {
            count += 1;
            ranges.add(base + i as u64, 1);
        }
        i += 1;
    }
    count
}

/// Count what is left in a reader without keeping it.
fn drain(reader: &mut impl Read) -> io::Result<u64> {
    io::copy(&mut crate::interrupt::Checked(reader), &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn diff(a: &[u8], b: &[u8]) -> ByteDiff {
        compare_readers(a, b).unwrap()
    }

    #[test]
    fn identical_inputs() {
        let d = diff(b"same", b"same");
        assert!(d.is_identical());
        assert_eq!(d.range_count, 0);
    }

    #[test]
    fn nearby_bytes_merge_and_far_ones_do_not() {
        let a = vec![0u8; 100];
        let mut b = a.clone();
        b[10] = 1;
        b[14] = 1; // 3 equal bytes between: merged
        b[60] = 1; // far: a range of its own
        let d = diff(&a, &b);
        assert_eq!(d.differing_bytes, 3);
        assert_eq!(
            d.ranges,
            [
                ByteRange { offset: 10, len: 5 },
                ByteRange { offset: 60, len: 1 }
            ]
        );
    }

    #[test]
    fn a_longer_input_adds_its_tail() {
        let d = diff(b"abcdef", b"abcxefGHIJ");
        assert_eq!(d.differing_bytes, 5);
        // The tail starts 2 bytes after the change: close enough to merge.
        assert_eq!(d.ranges, [ByteRange { offset: 3, len: 7 }]);
        assert_eq!((d.left_size, d.right_size), (6, 10));
    }

    #[test]
    fn differences_across_a_chunk_boundary_merge() {
        let a = vec![7u8; CHUNK * 2 + 10];
        let mut b = a.clone();
        b[CHUNK - 1] = 0;
        b[CHUNK] = 0;
        let d = diff(&a, &b);
        assert_eq!(
            d.ranges,
            [ByteRange {
                offset: CHUNK as u64 - 1,
                len: 2
            }]
        );
    }

    #[test]
    fn ranges_past_the_limit_are_counted_not_kept() {
        let a = vec![0u8; (MAX_RANGES + 10) * 16];
        let b: Vec<u8> = (0..a.len()).map(|i| u8::from(i % 16 == 0)).collect();
        let d = diff(&a, &b);
        assert_eq!(d.range_count, MAX_RANGES as u64 + 10);
        assert_eq!(d.ranges.len(), MAX_RANGES);
        assert!(d.is_truncated());
    }

    proptest! {
        #[test]
        fn counts_match_a_naive_comparison(
            a in proptest::collection::vec(0u8..4, 0..300),
            b in proptest::collection::vec(0u8..4, 0..300),
        ) {
            let d = diff(&a, &b);
            let common = a.len().min(b.len());
            let naive = (0..common).filter(|&i| a[i] != b[i]).count() + a.len().abs_diff(b.len());
            prop_assert_eq!(d.differing_bytes, naive as u64);
            prop_assert_eq!(d.is_identical(), a == b);
            // Every differing offset lies in some range, and ranges are ordered and apart.
            for i in 0..common {
                if a[i] != b[i] {
                    prop_assert!(d.ranges.iter().any(|r| r.offset <= i as u64 && (i as u64) < r.end()));
                }
            }
            for w in d.ranges.windows(2) {
                prop_assert!(w[0].end() + MERGE_GAP < w[1].offset);
            }
        }
    }
}
