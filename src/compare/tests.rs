//! Comparisons of fixtures made here, by code: C programs compiled with gcc, archives built
//! with the same crates that read them (and a hand-written cpio).

#![allow(clippy::many_single_char_names)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;

use super::elf::ElfMap;

use super::*;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }

    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Compile `source` (saved as `rel`) with gcc into `out`, with extra args and env.
    fn gcc(
        &self,
        rel: &str,
        source: &str,
        out: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> PathBuf {
        let src = self.write(rel, source.as_bytes());
        let exe = self.path(out);
        let status = Command::new("gcc")
            .args(["-O1", "-g0", "-o"])
            .arg(&exe)
            .arg(&src)
            .args(args)
            .envs(env.iter().copied())
            .status()
            .expect("gcc runs");
        assert!(status.success());
        exe
    }
}

fn diff(l: &Path, r: &Path) -> Comparison {
    diff_paths(l, r, &Options::default()).unwrap()
}

fn all_causes(c: &Comparison) -> Vec<Cause> {
    c.leaves.iter().flat_map(|l| l.causes.clone()).collect()
}

fn leaf<'c>(c: &'c Comparison, path: &str) -> &'c LeafDiff {
    c.leaves
        .iter()
        .find(|l| l.path == path)
        .unwrap_or_else(|| panic!("no leaf `{path}` in {:#?}", c.leaves))
}

const PROGRAM: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int compute(int x) { return x + 1000; }
int main(int argc, char **argv) { printf("%d\n", compute(argc)); return 0; }
"#;

#[test]
fn a_code_change_names_the_section_and_function() {
    let d = Dir::new();
    let a = d.gcc("a/p.c", PROGRAM, "a.out", &[], &[]);
    let b = d.gcc("b/p.c", &PROGRAM.replace("1000", "2000"), "b.out", &[], &[]);
    let c = diff(&a, &b);
    assert_eq!(c.verdict, Verdict::Different);
    let code = Cause::Code {
        section: ".text".into(),
        symbol: Some("compute".into()),
    };
    assert!(all_causes(&c).contains(&code), "{:#?}", c.leaves);
    let content = c.leaves[0].content.as_ref().unwrap();
    assert!(content
        .sections
        .iter()
        .any(|s| s.name == ".text" && s.executable));
}

/// Firmware-like: code in flash, `.data` in RAM loaded from flash (VMA != LMA), as in the demo.
const FIRMWARE: &str = r"
volatile unsigned counter = 0x12345678u;
__attribute__((noinline)) unsigned compute(unsigned x) { return x * 0x5a5a5a5bu + counter; }
void entry(void) { counter = compute(counter); for (;;) {} }
";

const FIRMWARE_LD: &str = r"
ENTRY(entry)
MEMORY { FLASH (rx) : ORIGIN = 0x10000, LENGTH = 64K
         RAM (rw) : ORIGIN = 0x80000, LENGTH = 64K }
SECTIONS {
    .text : { *(.text .text.*) } > FLASH
    .rodata : { *(.rodata .rodata.*) } > FLASH
    .data : ALIGN(16) { *(.data .data.*) } > RAM AT> FLASH
    .bss (NOLOAD) : { *(.bss .bss.*) *(COMMON) } > RAM
    /DISCARD/ : { *(.eh_frame .note.gnu.property .note.GNU-stack .comment) }
}
";

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:02x?} not in the image"))
}

#[test]
fn a_raw_image_is_located_through_the_elf_it_was_made_from() {
    let d = Dir::new();
    let ld = d.write("fw.ld", FIRMWARE_LD.as_bytes());
    let ld = format!("-Wl,-T,{}", ld.display());
    let flags = [
        "-ffreestanding",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-fno-pic",
        "-fno-asynchronous-unwind-tables",
        "-fcf-protection=none",
        "-Wl,--build-id=none",
        &ld,
    ];
    let elf = d.gcc("fw.c", FIRMWARE, "fw.elf", &flags, &[]);
    let image = d.path("a/fw.img");
    std::fs::create_dir_all(image.parent().unwrap()).unwrap();
    let status = Command::new("objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&image)
        .status()
        .expect("objcopy runs");
    assert!(status.success());
    // Found by their bytes, not by the mapping under test: the multiplier in `compute`'s
    // code and the initial value of `counter` (copied from flash to RAM at start).
    let mut bytes = std::fs::read(&image).unwrap();
    let code = find(&bytes, &0x5a5a_5a5b_u32.to_le_bytes());
    let data = find(&bytes, &0x1234_5678_u32.to_le_bytes());
    bytes[code] ^= 0x01;
    bytes[data + 1] ^= 0x01;
    let tampered = d.write("b/fw.img", &bytes);

    let ranges = |c: &Comparison| -> Vec<(u64, Cause, Option<String>)> {
        let content = c.leaves[0].content.as_ref().unwrap();
        content
            .ranges
            .iter()
            .map(|r| (r.offset, r.cause.clone(), r.location.clone()))
            .collect()
    };
    let plain = diff(&image, &tampered);
    assert!(ranges(&plain)
        .iter()
        .all(|(_, cause, location)| *cause == Cause::Unknown && location.is_none()));

    let opts = Options {
        layout: Some(elf),
        ..Options::default()
    };
    let located = diff_paths(&image, &tampered, &opts).unwrap();
    let ranges = ranges(&located);
    let at = |offset: usize| {
        ranges
            .iter()
            .find(|(o, ..)| *o == offset as u64)
            .unwrap_or_else(|| panic!("no range at {offset:#x}: {ranges:#?}"))
    };
    let code_cause = Cause::Code {
        section: ".text".into(),
        symbol: Some("compute".into()),
    };
    assert_eq!(at(code).1, code_cause);
    assert_eq!(at(code).2.as_deref(), Some(".text"));
    assert_eq!(at(data + 1).2.as_deref(), Some(".data"));
    // `counter` is a data object: a change to it is flagged as loudly as code.
    let data_cause = Cause::Data {
        section: ".data".into(),
        symbol: Some("counter".into()),
    };
    assert_eq!(at(data + 1).1, data_cause);
    assert_eq!(located.leaves[0].causes[0], code_cause);
}

#[test]
fn a_layout_of_another_size_is_not_used() {
    let d = Dir::new();
    let a = d.write("a/fw.img", &[0u8; 64]);
    let b = d.write("b/fw.img", &[1u8; 64]);
    let not_elf = d.write("fw.elf", b"not an ELF file");
    let program = d.gcc("p.c", PROGRAM, "p", &[], &[]);
    for (layout, note) in [
        (not_elf, "is no ELF file: not used"),
        (program, "not 64: not used"),
    ] {
        let opts = Options {
            layout: Some(layout),
            ..Options::default()
        };
        let c = diff_paths(&a, &b, &opts).unwrap();
        assert_eq!(c.leaves[0].causes, [Cause::Unknown]);
        assert!(
            c.leaves[0].notes.iter().any(|n| n.ends_with(note)),
            "{:?}",
            c.leaves[0].notes
        );
    }
}

#[test]
fn a_date_stamp_is_a_timestamp() {
    let src = r#"const char *stamp = "built " __DATE__; int main(void) { return stamp[0]; }"#;
    let d = Dir::new();
    let a = d.gcc(
        "a/p.c",
        src,
        "a.out",
        &[],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    let b = d.gcc(
        "b/p.c",
        src,
        "b.out",
        &[],
        &[("SOURCE_DATE_EPOCH", "1700100000")],
    );
    let c = diff(&a, &b);
    let ranges = &c.leaves[0].content.as_ref().unwrap().ranges;
    let rodata: Vec<&RangeDiff> = ranges
        .iter()
        .filter(|r| r.location.as_deref() == Some(".rodata"))
        .collect();
    assert!(!rodata.is_empty(), "{ranges:#?}");
    assert!(
        rodata.iter().all(|r| r.cause == Cause::Timestamp),
        "{ranges:#?}"
    );
    // The build-id follows the content; it is named as such, not as code.
    assert!(ranges.iter().any(|r| r.cause == Cause::BuildId));
    assert!(!all_causes(&c).iter().any(Cause::is_code));
}

#[test]
fn an_embedded_file_path_is_a_build_path() {
    let src = "#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }";
    let d = Dir::new();
    // Same length on purpose: the path differs in its middle, nothing shifts.
    let a = d.gcc("build-aaaa/src/p.c", src, "a.out", &[], &[]);
    let b = d.gcc("build-bbbb/src/p.c", src, "b.out", &[], &[]);
    let c = diff(&a, &b);
    let ranges = &c.leaves[0].content.as_ref().unwrap().ranges;
    assert!(
        ranges
            .iter()
            .any(|r| r.cause == Cause::BuildPath && r.location.as_deref() == Some(".rodata")),
        "{ranges:#?}"
    );
}

#[test]
fn a_build_id_difference_is_named_and_can_be_allowed() {
    let d = Dir::new();
    let a = d.gcc(
        "p.c",
        PROGRAM,
        "a.out",
        &["-Wl,--build-id=0x0102030405060708"],
        &[],
    );
    let b = d.gcc(
        "p.c",
        PROGRAM,
        "b.out",
        &["-Wl,--build-id=0x0102030405060709"],
        &[],
    );
    let c = diff(&a, &b);
    let content = c.leaves[0].content.as_ref().unwrap();
    assert_eq!(content.range_count, 1);
    assert_eq!(content.ranges[0].cause, Cause::BuildId);
    assert_eq!(
        content.ranges[0].location.as_deref(),
        Some(".note.gnu.build-id")
    );
    let opts = Options {
        allowances: vec![Allowance {
            artifact: None,
            rule: Rule::ElfSection(".note.gnu.build-id".into()),
            reason: "follows the content".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Equivalent);
    assert_eq!(c.leaves[0].allowances.len(), 1);
}

struct Entry<'a> {
    path: &'a str,
    data: &'a [u8],
    mtime: u64,
    uid: u64,
}

fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(e.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(e.mtime);
        h.set_uid(e.uid);
        h.set_cksum();
        b.append_data(&mut h, e.path, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(super) fn gzip(data: &[u8], mtime: u32) -> Vec<u8> {
    let mut g = flate2::GzBuilder::new()
        .mtime(mtime)
        .write(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

fn e<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        path,
        data,
        mtime: 1_700_000_000,
        uid: 0,
    }
}

#[test]
fn tar_mtimes_only_are_archive_metadata() {
    let d = Dir::new();
    let a = d.write("a.tar", &tar(&[e("x", b"one"), e("y", b"two")]));
    let mut moved = e("y", b"two");
    moved.mtime += 60;
    moved.uid = 1000;
    let b = d.write("b.tar", &tar(&[e("x", b"one"), moved]));
    let c = diff(&a, &b);
    assert_eq!(c.verdict, Verdict::Different);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    let y = leaf(&c, "a.tar//y");
    assert_eq!(y.causes, [Cause::ArchiveMetadata]);
    assert!(y.content.is_none());
    let fields: Vec<&str> = y.metadata.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["mtime", "uid"]);
    assert_eq!(c.identical, 2);

    let opts = Options {
        allowances: vec![Allowance {
            artifact: Some("a.tar".into()),
            rule: Rule::ArchiveMetadata,
            reason: "tar without --mtime".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Equivalent);
}

#[test]
fn cpio_bookkeeping_alone_is_archive_metadata() {
    let d = Dir::new();
    let a = cpio(&[("etc/v", b"1.0")]);
    let mut b = a.clone();
    b[6 + 7] = b'9'; // the first member's inode number: compared by nobody
    let (a, b) = (d.write("a.cpio", &a), d.write("b.cpio", &b));
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    assert_eq!(c.leaves[0].causes, [Cause::ArchiveMetadata]);
    assert_eq!(c.verdict, Verdict::Different);
    let opts = Options {
        allowances: vec![Allowance {
            artifact: None,
            rule: Rule::ArchiveMetadata,
            reason: "inode numbers".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Equivalent);
    assert_eq!(c.leaves[0].allowances[0].ranges.len(), 1);
}

#[test]
fn a_reordered_tar_is_ordering() {
    let d = Dir::new();
    let a = d.write("a.tar", &tar(&[e("x", b"one"), e("y", b"two")]));
    let b = d.write("b.tar", &tar(&[e("y", b"two"), e("x", b"one")]));
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    assert_eq!(c.leaves[0].change, Change::Reordered);
    assert_eq!(c.leaves[0].causes, [Cause::Ordering]);
}

#[test]
fn an_xz_stream_is_compared_by_its_content() {
    let xz = |data: &[u8]| {
        let mut w = xz2::write::XzEncoder::new(Vec::new(), 6);
        w.write_all(data).unwrap();
        w.finish().unwrap()
    };
    let d = Dir::new();
    let a = d.write("a.tar.xz", &xz(&tar(&[e("etc/os-release", b"ID=acme\n")])));
    let b = d.write("b.tar.xz", &xz(&tar(&[e("etc/os-release", b"ID=acne\n")])));
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    assert_eq!(c.leaves[0].path, "a.tar.xz//etc/os-release");
    // Same content, another compression level: the stream differs, the content does not.
    let mut w = xz2::write::XzEncoder::new(Vec::new(), 0);
    w.write_all(&tar(&[e("etc/os-release", b"ID=acme\n")]))
        .unwrap();
    let b = d.write("c.tar.xz", &w.finish().unwrap());
    let c = diff(&a, &b);
    assert_eq!(all_causes(&c), [Cause::Compression]);
}

#[test]
fn a_gzip_header_only_difference_is_a_compression_header() {
    let d = Dir::new();
    let a = d.write("a.gz", &gzip(b"firmware bytes", 1));
    let b = d.write("b.gz", &gzip(b"firmware bytes", 2));
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1);
    assert_eq!(c.leaves[0].causes, [Cause::CompressionHeader]);
    assert_eq!(c.leaves[0].metadata[0].field, "gzip mtime");
}

#[test]
fn a_nested_image_shows_its_path_through_the_archives() {
    let d = Dir::new();
    let mut img = vec![0u8; 4096];
    let a_inner = tar(&[e("fw.img", &img), e("README", b"hi")]);
    img[100] = 1;
    let b_inner = tar(&[e("fw.img", &img), e("README", b"hi")]);
    let a = d.write(
        "a/bundle.tar.gz",
        &gzip(&tar(&[e("inner.tar", &a_inner)]), 0),
    );
    let b = d.write(
        "b/bundle.tar.gz",
        &gzip(&tar(&[e("inner.tar", &b_inner)]), 0),
    );
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    let l = leaf(&c, "bundle.tar.gz//inner.tar//fw.img");
    let content = l.content.as_ref().unwrap();
    assert_eq!(
        (content.differing_bytes, content.ranges[0].offset),
        (1, 100)
    );
    assert_eq!(c.identical, 1); // README
}

#[test]
fn a_signature_trailer_is_different_unless_allowed() {
    let d = Dir::new();
    let image = vec![7u8; 10_000];
    let a = d.write("fw.img", &image);
    let mut signed = image.clone();
    signed.extend_from_slice(&[0xa5; 512]);
    let b = d.write("shipped/fw.img", &signed);
    assert_eq!(diff(&a, &b).verdict, Verdict::Different);
    let opts = Options {
        allowances: vec![Allowance {
            artifact: Some("fw.img".into()),
            rule: Rule::Trailer(512),
            reason: "vendor signature".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Equivalent);
    // The shipped side may carry the artifact's name while the rebuilt one does not.
    let rebuilt = d.write("out/firmware.bin", &image);
    assert_eq!(
        diff_paths(&rebuilt, &b, &opts).unwrap().verdict,
        Verdict::Equivalent
    );
    let applied = &c.leaves[0].allowances;
    assert_eq!(applied.len(), 1);
    assert_eq!(
        applied[0].ranges,
        [ByteRange {
            offset: 10_000,
            len: 512
        }]
    );
}

/// A cpio "newc" archive, written by hand.
fn cpio(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: &[(&str, &[u8])] = &[("TRAILER!!!", b"")];
    for (i, (name, data)) in entries.iter().chain(trailer).enumerate() {
        let mode = if *name == "TRAILER!!!" { 0 } else { 0o100_644 };
        let fields = [
            i as u64 + 1,
            mode,
            0,
            0,
            1,
            1_700_000_000,
            data.len() as u64,
            0,
            0,
            0,
            0,
            name.len() as u64 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

#[test]
fn a_cpio_member_difference_is_found() {
    let d = Dir::new();
    let a = d.write(
        "a.cpio",
        &cpio(&[("etc/version", b"4.2.1\n"), ("bin/app", b"AAAA")]),
    );
    let b = d.write(
        "b.cpio",
        &cpio(&[("etc/version", b"4.2.1\n"), ("bin/app", b"AAAB")]),
    );
    let c = diff(&a, &b);
    assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    let l = leaf(&c, "a.cpio//bin/app");
    assert_eq!(l.content.as_ref().unwrap().ranges[0].offset, 3);
}

// See: issue 8. One path named twice is not matched member by member: it used to be paired
// as `path` and `path#2` (or, in a zip, one of the two was never seen).
#[test]
fn a_cpio_naming_a_path_twice_is_compared_as_bytes() {
    let d = Dir::new();
    for dup in ["./bin/app", "bin//app", "bin/./app"] {
        let a = d.write("a.cpio", &cpio(&[("bin/app", b"AAAA"), (dup, b"BBBB")]));
        let b = d.write("b.cpio", &cpio(&[("bin/app", b"BBBB")]));
        let c = diff(&a, &b);
        assert_eq!(c.verdict, Verdict::Different);
        let l = leaf(&c, "a.cpio");
        assert!(
            l.notes
                .iter()
                .any(|n| n.contains("member `bin/app` appears twice") && n.contains("as bytes")),
            "{dup}: {:?}",
            l.notes
        );
    }
}

fn bounded(limits: Limits) -> Options {
    Options {
        limits: Some(limits),
        ..Options::default()
    }
}

#[test]
fn a_comparison_stops_at_each_bound() {
    let d = Dir::new();
    let entries: Vec<(String, Vec<u8>)> = (0..10u8).map(|i| (format!("f{i}"), vec![i])).collect();
    let mut list: Vec<(&str, &[u8])> = entries.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
    let a = d.write("a.cpio", &cpio(&list));
    list[9].1 = b"changed";
    let b = d.write("b.cpio", &cpio(&list));
    let few = Limits {
        max_entries: 15,
        ..Limits::default()
    };
    let err = diff_paths(&a, &b, &bounded(few)).unwrap_err();
    assert!(
        matches!(&err, Error::Bound { archive, exceeded } if archive == "a.cpio" && exceeded.bound == crate::archive::Bound::Entries),
        "{err}"
    );
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let (a, b) = (
        d.write("a.gz", &gz(&vec![0u8; 1 << 20])),
        d.write("b.gz", &gz(&vec![1u8; 1 << 20])),
    );
    let small = Limits {
        max_bytes: 1 << 16,
        ..Limits::default()
    };
    let err = diff_paths(&a, &b, &bounded(small)).unwrap_err();
    assert!(
        matches!(&err, Error::Bound { exceeded, .. } if exceeded.bound == crate::archive::Bound::Bytes),
        "{err}"
    );
    let (a, b) = (
        d.write("a.gz", &gz(&gz(b"left"))),
        d.write("b.gz", &gz(&gz(b"right"))),
    );
    let shallow = Limits {
        max_depth: 1,
        ..Limits::default()
    };
    let err = diff_paths(&a, &b, &bounded(shallow)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive `a.gz` nests archives more than 1 levels deep: set `REPROVE_MAX_DEPTH` to raise the bound"
    );
    let two = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    assert_eq!(
        diff_paths(&a, &b, &bounded(two)).unwrap().verdict,
        Verdict::Different
    );
}

fn zip(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn a_zip_member_difference_is_found_stored_or_deflated() {
    let d = Dir::new();
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let a = d.write(
            "a.zip",
            &zip(&[("a.txt", b"same"), ("b.bin", b"0123456789")], method),
        );
        let b = d.write(
            "b.zip",
            &zip(&[("a.txt", b"same"), ("b.bin", b"0123456x89")], method),
        );
        let c = diff(&a, &b);
        let l = leaf(&c, "a.zip//b.bin");
        assert_eq!(l.content.as_ref().unwrap().ranges[0].offset, 7);
        assert_eq!(c.leaves.len(), 1, "{:#?}", c.leaves);
    }
}

#[test]
fn a_corrupt_nested_archive_is_compared_as_bytes_with_a_note() {
    let d = Dir::new();
    let mut bad = gzip(&vec![1u8; 1000], 0);
    let a = d.write("a.tar", &tar(&[e("x.gz", &bad)]));
    let n = bad.len();
    bad[n / 2] ^= 0xff; // breaks the deflate stream or its CRC
    let b = d.write("b.tar", &tar(&[e("x.gz", &bad)]));
    let c = diff(&a, &b);
    let l = leaf(&c, "a.tar//x.gz");
    assert!(l.content.is_some());
    assert!(
        l.notes[0].contains("could not read as gzip"),
        "{:?}",
        l.notes
    );
}

#[test]
fn directories_report_added_removed_and_changed() {
    let d = Dir::new();
    d.write("a/same", b"1");
    d.write("a/gone", b"2");
    d.write("a/sub/changed", b"3");
    d.write("b/same", b"1");
    d.write("b/new", b"4");
    d.write("b/sub/changed", b"5");
    let c = diff(&d.path("a"), &d.path("b"));
    assert_eq!(leaf(&c, "gone").change, Change::Removed);
    assert_eq!(leaf(&c, "new").change, Change::Added);
    assert_eq!(leaf(&c, "sub/changed").change, Change::Changed);
    assert_eq!(c.identical, 1);
    assert!(c
        .summary()
        .starts_with("different: 3 differing, 1 identical"));
}

#[test]
fn an_integer_near_source_date_epoch_is_a_timestamp() {
    let d = Dir::new();
    let mut img = vec![0u8; 256];
    img[64..68].copy_from_slice(&1_600_000_000u32.to_le_bytes());
    let a = d.write("a.img", &img);
    img[64..68].copy_from_slice(&1_600_000_100u32.to_le_bytes());
    let b = d.write("b.img", &img);
    assert_eq!(all_causes(&diff(&a, &b)), [Cause::Unknown]);
    let opts = Options {
        source_date_epoch: Some(1_600_000_000),
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(all_causes(&c), [Cause::Timestamp]);
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Doc {
    allow: Vec<Allowance>,
}

/// A real executable, compiled once, to mutate.
fn sample_elf() -> &'static [u8] {
    static ELF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ELF.get_or_init(|| {
        let d = Dir::new();
        std::fs::read(d.gcc("p.c", PROGRAM, "p", &[], &[])).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Valid tar, cpio and zip archives with bytes overwritten anywhere.
    #[test]
    fn mutated_archives_never_panic(
        kind in 0u8..3,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let members: &[(&str, &[u8])] = &[("bin/app", b"\x7fELF not really"), ("etc/v", b"1.0")];
        let a = match kind {
            0 => tar(&[e(members[0].0, members[0].1), e(members[1].0, members[1].1)]),
            1 => cpio(members),
            _ => zip(members, zip::CompressionMethod::Deflated),
        };
        let mut b = a.clone();
        for (at, value) in edits {
            let i = at.index(b.len());
            b[i] = value;
        }
        let d = Dir::new();
        let (pa, pb) = (d.write("a", &a), d.write("b", &b));
        prop_assert!(diff_paths(&pa, &pb, &Options::default()).is_ok());
    }

    /// A real ELF with bytes overwritten anywhere (headers, section table, symbols): the
    /// layout reader must cope with whatever it finds.
    #[test]
    fn mutated_elf_files_never_panic(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..16),
        tail in any::<bool>(),
    ) {
        let a = sample_elf().to_vec();
        let mut b = a.clone();
        for (at, value) in edits {
            // Half the time aim at the last 2 KiB: the section headers and string tables.
            let i = if tail { b.len() - 1 - at.index(2048.min(b.len())) } else { at.index(b.len()) };
            b[i] = value;
        }
        let d = Dir::new();
        let (pa, pb) = (d.write("a", &a), d.write("b", &b));
        let both = [diff_paths(&pa, &pb, &Options::default()), diff_paths(&pb, &pa, &Options::default())];
        for c in both {
            prop_assert!(c.is_ok());
        }
        // The mutated file as the layout of a raw image of the size it describes.
        let len = Blob::file(&pb)
            .ok()
            .and_then(|blob| ElfMap::read(&blob))
            .and_then(|m| m.image())
            .map_or(64, |m| m.image_len());
        let len = usize::try_from(len).ok().filter(|&n| n > 0 && n <= 1 << 20).unwrap_or(64);
        let image = vec![0u8; len];
        let mut other = image.clone();
        for i in [0, len / 3, len / 2, len - 1] {
            other[i] = 0xcc;
        }
        let (ia, ib) = (d.write("a.img", &image), d.write("b.img", &other));
        let opts = Options { layout: Some(pb.clone()), ..Options::default() };
        prop_assert!(diff_paths(&ia, &ib, &opts).is_ok());
    }

    /// What a recipe declares reads back the same.
    #[test]
    fn allowances_roundtrip_through_toml(
        artifact in proptest::option::of("[a-z./]{1,12}"),
        which in 0u8..4,
        n in 1u64..u64::from(u32::MAX),
        name in "[.a-z_-]{1,20}",
        reason in "[ -~]{0,40}",
    ) {
        let rule = match which {
            0 => Rule::Trailer(n),
            1 => Rule::Region { offset: n, length: n },
            2 => Rule::ElfSection(name),
            _ => Rule::ArchiveMetadata,
        };
        let a = Allowance { artifact, rule, reason };
        let text = toml::to_string(&Doc { allow: vec![a.clone()] }).unwrap();
        let back: Doc = toml::from_str(&text).unwrap();
        prop_assert_eq!(back.allow, vec![a]);
    }

    /// Hostile bytes behind each format's magic: never a panic, always an answer.
    #[test]
    fn random_bytes_as_archives_never_panic(
        magic in 0usize..6,
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        flip in any::<usize>(),
    ) {
        let heads: [&[u8]; 6] = [b"\x1f\x8b\x08", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x7fELF\x02\x01\x01", b"070701", b""];
        let mut a = heads[magic].to_vec();
        a.extend_from_slice(&body);
        if magic == 5 && a.len() < 512 {
            a.resize(512, 0);
            a[257..262].copy_from_slice(b"ustar");
        }
        let mut b = a.clone();
        let i = flip % b.len();
        b[i] ^= 1;
        let d = Dir::new();
        let (pa, pb) = (d.write("a", &a), d.write("b", &b));
        let c = diff_paths(&pa, &pb, &Options::default()).unwrap();
        prop_assert_eq!(c.verdict, Verdict::Different);
    }
}
