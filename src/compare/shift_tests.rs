//! Shift-aware comparisons through the walker: what a shift explains, and that allowances are
//! still judged offset by offset, so an insertion can never hide behind a byte allowance.

use std::path::PathBuf;

use super::*;

/// Bytes without repeats that could anchor anywhere (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn pair(left: &[u8], right: &[u8]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (l, r) = (
        dir.path().join("rebuilt.img"),
        dir.path().join("shipped.img"),
    );
    std::fs::write(&l, left).unwrap();
    std::fs::write(&r, right).unwrap();
    (dir, l, r)
}

fn allowing(rule: Rule) -> Options {
    Options {
        allowances: vec![Allowance {
            artifact: None,
            rule,
            reason: "declared harmless".into(),
        }],
        ..Options::default()
    }
}

/// Machine code bytes inserted in the middle, a signature appended: the shipped file is the
/// rebuilt one and exactly 512 more bytes, and shift-aware its only ranges are the 504-byte
/// tail. A `trailer = 512` judged on those would call it equivalent and hide the code.
#[test]
fn an_insertion_does_not_pass_for_a_trailer() {
    let rebuilt = noise(64 << 10, 1);
    let evil = b"\x48\x31\xc0\xc3\x90\x90\x90\x90"; // xor rax, rax; ret
    let shipped = [
        &rebuilt[..0x4000],
        &evil[..],
        &rebuilt[0x4000..],
        &noise(504, 2)[..],
    ]
    .concat();
    assert_eq!(shipped.len(), rebuilt.len() + 512);
    let (_dir, l, r) = pair(&rebuilt, &shipped);
    let c = diff_paths(&l, &r, &allowing(Rule::Trailer(512))).unwrap();
    assert_eq!(c.verdict, Verdict::Different, "{:#?}", c.leaves);
    let content = c.leaves[0].content.as_ref().unwrap();
    // The report still shows the insertion as a shift.
    assert_eq!(content.shifts.len(), 1, "{content:#?}");
    assert_eq!(content.shifts[0].shift.inserted, 8);
}

/// Same size: 8 bytes inserted, the last 8 dropped. Shift-aware the only range is the last 8
/// bytes of the rebuilt file, which a `region` for a footer checksum covers.
#[test]
fn an_insertion_does_not_pass_for_a_footer_region() {
    let rebuilt = noise(64 << 10, 3);
    let n = rebuilt.len();
    let shipped = [&rebuilt[..0x4000], b"EVILCODE", &rebuilt[0x4000..n - 8]].concat();
    let (_dir, l, r) = pair(&rebuilt, &shipped);
    let rule = Rule::Region {
        offset: n as u64 - 8,
        length: 8,
    };
    let c = diff_paths(&l, &r, &allowing(rule)).unwrap();
    assert_eq!(c.verdict, Verdict::Different, "{:#?}", c.leaves);
}

/// A shift inside a declared region, undone inside it: offset by offset every difference lies
/// in the region, so the leaf stays equivalent.
#[test]
fn a_shift_inside_an_allowed_region_stays_equivalent() {
    let rebuilt = noise(64 << 10, 4);
    let mut shipped = rebuilt.clone();
    shipped.insert(0x1010, b'+');
    shipped.remove(0x1200);
    let rule = Rule::Region {
        offset: 0x1000,
        length: 0x400,
    };
    let (_dir, l, r) = pair(&rebuilt, &shipped);
    let c = diff_paths(&l, &r, &allowing(rule)).unwrap();
    assert_eq!(c.verdict, Verdict::Equivalent, "{:#?}", c.leaves);
    assert_eq!(c.leaves[0].content.as_ref().unwrap().shifts.len(), 2);
}

/// A header pointing past an insertion, and a table after it holding offsets relative to the
/// image: the pointers that moved by the insertion are `shifted`, a changed byte is not.
#[test]
fn pointers_that_moved_with_the_content_are_shifted() {
    let mut rebuilt = noise(64 << 10, 5);
    rebuilt[0x10..0x14].copy_from_slice(&0x8000u32.to_le_bytes());
    rebuilt[0x9000..0x9008].copy_from_slice(&0xa000u64.to_be_bytes());
    let mut shipped = [&rebuilt[..0x1000], b"+deb12u1", &rebuilt[0x1000..]].concat();
    shipped[0x10..0x14].copy_from_slice(&0x8008u32.to_le_bytes());
    shipped[0x9008..0x9010].copy_from_slice(&0xa008u64.to_be_bytes());
    shipped[0xc008] ^= 0x55;
    let (_dir, l, r) = pair(&rebuilt, &shipped);
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    let content = c.leaves[0].content.as_ref().unwrap();
    let causes: Vec<(u64, i64, &Cause)> = content
        .ranges
        .iter()
        .map(|r| (r.offset, r.shift, &r.cause))
        .collect();
    assert_eq!(causes.len(), 3, "{content:#?}");
    assert_eq!((causes[0].0, causes[0].1), (0x10, 0));
    assert_eq!(causes[0].2, &Cause::Shifted { by: 8 });
    assert_eq!((causes[1].1, causes[1].2), (8, &Cause::Shifted { by: 8 }));
    assert_eq!((causes[2].0, causes[2].2), (0xc000, &Cause::Unknown));
    assert_eq!(content.ranges[2].right_offset(), 0xc008);
}
