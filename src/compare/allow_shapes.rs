//! Each allowance kind against many shapes of difference: only the shape it declares is
//! `equivalent` (issue 8, item 3). The rebuilt file is on the left, the shipped one on the
//! right, both called `fw.img` (or `fw.tar`), as `verify` sets them side by side.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::tests::gzip;
use super::*;

/// `rule` (for the artifact `name`) applied to `left` against `right`.
fn judge(name: &str, rule: &Rule, left: &[u8], right: &[u8], layout: Option<PathBuf>) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join(name), left).unwrap();
    std::fs::write(b.join(name), right).unwrap();
    let opts = Options {
        allowances: vec![Allowance {
            artifact: Some(name.to_owned()),
            rule: rule.clone(),
            reason: "declared".into(),
        }],
        layout,
        ..Options::default()
    };
    let c = diff_paths(&a.join(name), &b.join(name), &opts).unwrap();
    if c.verdict == Verdict::Equivalent {
        // Equivalent only through an allowance that is listed where it applied.
        assert!(c
            .leaves
            .iter()
            .all(|l| l.verdict == Verdict::Equivalent && !l.allowances.is_empty()));
    }
    c.verdict
}

macro_rules! shapes {
    ($($test:ident: $name:literal, $rule:expr, $left:expr => $right:expr, $verdict:ident;)*) => {
        $(
            #[test]
            fn $test() {
                let verdict = judge($name, &$rule, &$left, &$right, None);
                assert_eq!(verdict, Verdict::$verdict);
            }
        )*
    };
}

fn image() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// `image()` with `edit` applied.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = image();
    edit(&mut v);
    v
}

/// The first `n` bytes of `image()`.
fn cut(n: usize) -> Vec<u8> {
    let mut v = image();
    v.truncate(n);
    v
}

fn with_trailer(n: usize) -> Vec<u8> {
    edited(|v| v.extend(std::iter::repeat_n(0xa5, n)))
}

const TRAILER: Rule = Rule::Trailer(64);

shapes! {
    trailer_exactly_n_more_bytes: "fw.img", TRAILER, image() => with_trailer(64), Equivalent;
    trailer_of_any_content: "fw.img", TRAILER, image() => edited(|v| v.extend_from_slice(&image()[..64])), Equivalent;
    trailer_identical: "fw.img", TRAILER, image() => image(), Identical;
    trailer_shipped_cut_n_short: "fw.img", TRAILER, image() => cut(10_000 - 64), Different;
    trailer_last_n_overwritten: "fw.img", TRAILER, image() => edited(|v| v[10_000 - 64..].fill(0xa5)), Different;
    trailer_n_plus_one: "fw.img", TRAILER, image() => with_trailer(65), Different;
    trailer_n_minus_one: "fw.img", TRAILER, image() => with_trailer(63), Different;
    trailer_twice_n: "fw.img", TRAILER, image() => with_trailer(128), Different;
    trailer_on_the_rebuilt_side: "fw.img", TRAILER, with_trailer(64) => image(), Different;
    trailer_and_a_byte_just_before: "fw.img", TRAILER, image() => edited(|v| { v[9_999] ^= 1; v.extend([0xa5; 64]); }), Different;
    trailer_and_a_byte_far_before: "fw.img", TRAILER, image() => edited(|v| { v[0] ^= 1; v.extend([0xa5; 64]); }), Different;
    trailer_shipped_empty: "fw.img", TRAILER, image() => Vec::new(), Different;
}

const REGION: Rule = Rule::Region {
    offset: 100,
    length: 16,
};

shapes! {
    region_inside: "fw.img", REGION, image() => edited(|v| v[100..116].fill(0)), Equivalent;
    region_its_edges: "fw.img", REGION, image() => edited(|v| { v[100] ^= 1; v[115] ^= 1; }), Equivalent;
    region_identical: "fw.img", REGION, image() => image(), Identical;
    region_one_byte_before: "fw.img", REGION, image() => edited(|v| v[99..116].fill(0)), Different;
    region_one_byte_after: "fw.img", REGION, image() => edited(|v| v[100..117].fill(0)), Different;
    region_and_elsewhere: "fw.img", REGION, image() => edited(|v| { v[100] ^= 1; v[5_000] ^= 1; }), Different;
    region_and_one_more_byte: "fw.img", REGION, image() => edited(|v| { v[100] ^= 1; v.push(0); }), Different;
    region_and_one_byte_less: "fw.img", REGION, image() => edited(|v| { v[100] ^= 1; v.pop(); }), Different;
    region_shipped_cut_inside: "fw.img", REGION, image() => cut(108), Different;
    region_past_the_end_covers_no_growth: "fw.img", Rule::Region { offset: 10_000, length: 16 }, image() => with_trailer(16), Different;
    region_past_the_end_covers_no_cut: "fw.img", Rule::Region { offset: 9_984, length: 16 }, image() => cut(9_984), Different;
    region_half_outside: "fw.img", Rule::Region { offset: 9_990, length: 16 }, image() => edited(|v| v[9_995] ^= 1), Different;
    region_whole_file_and_growth: "fw.img", Rule::Region { offset: 0, length: 10_000 }, image() => edited(|v| { v[0] ^= 1; v.push(0); }), Different;
}

/// `PROGRAM` compiled with gcc (cached): `(add, build_id)`.
fn program(add: u32, build_id: u8) -> Vec<u8> {
    type Programs = std::sync::Mutex<HashMap<(u32, u8), Vec<u8>>>;
    static CACHE: OnceLock<Programs> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(&(add, build_id)) {
        return v.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("p.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((noinline)) int compute(int x) {{ return x + {add}; }}\n\
             int main(int argc, char **argv) {{ printf(\"%d\\n\", compute(argc)); return 0; }}\n"
        ),
    )
    .unwrap();
    let exe = dir.path().join("p");
    let status = Command::new("gcc")
        .args(["-O1", "-g0", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-Wl,--build-id=0x01020304050607{build_id:02x}"))
        .status()
        .expect("gcc runs");
    assert!(status.success());
    let bytes = std::fs::read(exe).unwrap();
    cache.lock().unwrap().insert((add, build_id), bytes.clone());
    bytes
}

fn elf_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = program(1000, 8);
    edit(&mut v);
    v
}

fn build_id() -> Rule {
    Rule::ElfSection(".note.gnu.build-id".into())
}

/// The offset of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

shapes! {
    elf_section_only_the_build_id: "fw.elf", build_id(), program(1000, 8) => program(1000, 9), Equivalent;
    elf_section_identical: "fw.elf", build_id(), program(1000, 8) => program(1000, 8), Identical;
    elf_section_code_changed_same_id: "fw.elf", build_id(), program(1000, 8) => program(2000, 8), Different;
    elf_section_code_and_id_changed: "fw.elf", build_id(), program(1000, 8) => program(2000, 9), Different;
    elf_section_id_and_one_more_byte: "fw.elf", build_id(), program(1000, 8) => [program(1000, 9), vec![0]].concat(), Different;
    elf_section_one_more_byte: "fw.elf", build_id(), program(1000, 8) => [program(1000, 8), vec![0]].concat(), Different;
    elf_section_one_byte_less: "fw.elf", build_id(), program(1000, 8) => elf_edited(|v| { v.pop(); }), Different;
    elf_section_another_section: "fw.elf", Rule::ElfSection(".comment".into()), program(1000, 8) => program(1000, 9), Different;
    elf_section_that_neither_has: "fw.elf", Rule::ElfSection(".note.none".into()), program(1000, 8) => program(1000, 9), Different;
    elf_section_header_changed: "fw.elf", build_id(), program(1000, 8) => elf_edited(|v| v[8] ^= 1), Different;
    elf_section_shipped_is_no_elf: "fw.elf", build_id(), program(1000, 8) => elf_edited(|v| {
        v[0] = 0;
        let at = find(&program(1000, 8), &[1, 2, 3, 4, 5, 6, 7, 8]);
        v[at + 7] = 9;
    }), Different;
    elf_section_id_moved_over_the_code: "fw.elf", build_id(), program(1000, 8) => elf_edited(|v| {
        // The build-id's bytes, and a copy of them over the start of `.text` in the shipped
        // file: bytes outside the section on the rebuilt side.
        let at = find(&program(1000, 8), &[1, 2, 3, 4, 5, 6, 7, 8]);
        v[at + 7] = 9;
        let main = find(&program(1000, 8), &0x3e8u32.to_le_bytes());
        v[main] ^= 0xff;
    }), Different;
}

/// The demo-like raw image (`objcopy -O binary`) and the ELF it was made from.
fn raw_image() -> &'static (tempfile::TempDir, Vec<u8>) {
    static IMAGE: OnceLock<(tempfile::TempDir, Vec<u8>)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(
            p("fw.c"),
            "volatile unsigned counter = 0x12345678u;\n\
             __attribute__((noinline)) unsigned compute(unsigned x) { return x * 0x5a5a5a5bu + counter; }\n\
             void entry(void) { counter = compute(counter); for (;;) {} }\n",
        )
        .unwrap();
        std::fs::write(
            p("fw.ld"),
            "ENTRY(entry)\nMEMORY { FLASH (rx) : ORIGIN = 0x10000, LENGTH = 64K\n\
             RAM (rw) : ORIGIN = 0x80000, LENGTH = 64K }\nSECTIONS {\n\
             .text : { *(.text .text.*) } > FLASH\n.rodata : { *(.rodata .rodata.*) } > FLASH\n\
             .data : ALIGN(16) { *(.data .data.*) } > RAM AT> FLASH\n\
             .bss (NOLOAD) : { *(.bss .bss.*) *(COMMON) } > RAM\n\
             /DISCARD/ : { *(.eh_frame .note.gnu.property .note.GNU-stack .comment) }\n}\n",
        )
        .unwrap();
        let ok = |c: &mut Command| assert!(c.status().expect("runs").success(), "{c:?}");
        ok(Command::new("gcc")
            .args(["-O1", "-g0", "-ffreestanding", "-nostdlib", "-static", "-no-pie"])
            .args(["-fno-pic", "-fno-asynchronous-unwind-tables", "-fcf-protection=none"])
            .arg("-Wl,--build-id=none")
            .arg(format!("-Wl,-T,{}", p("fw.ld").display()))
            .arg("-o")
            .arg(p("fw.elf"))
            .arg(p("fw.c")));
        ok(Command::new("objcopy")
            .args(["-O", "binary"])
            .arg(p("fw.elf"))
            .arg(p("fw.img")));
        let bytes = std::fs::read(p("fw.img")).unwrap();
        (dir, bytes)
    })
}

#[test]
fn elf_section_through_a_raw_images_layout() {
    let (dir, img) = raw_image();
    let elf = || Some(dir.path().join("fw.elf"));
    let data = Rule::ElfSection(".data".into());
    let at = find(img, &0x1234_5678_u32.to_le_bytes());
    let code = find(img, &0x5a5a_5a5b_u32.to_le_bytes());
    let mut flipped = img.clone();
    flipped[at] ^= 1;
    assert_eq!(
        judge("fw.img", &data, img, &flipped, elf()),
        Verdict::Equivalent
    );
    // `.data` is the image's last section: cutting into it is no change inside it.
    let cut = &img[..img.len() - 2];
    assert_eq!(judge("fw.img", &data, img, cut, elf()), Verdict::Different);
    let mut grown = flipped.clone();
    grown.push(0);
    assert_eq!(
        judge("fw.img", &data, img, &grown, elf()),
        Verdict::Different
    );
    let mut code_too = flipped.clone();
    code_too[code] ^= 1;
    assert_eq!(
        judge("fw.img", &data, img, &code_too, elf()),
        Verdict::Different
    );
    // Without the layout there are no sections to cover anything.
    assert_eq!(
        judge("fw.img", &data, img, &flipped, None),
        Verdict::Different
    );
}

/// A tar member, built up from `file(path, data)`.
#[derive(Clone)]
struct M {
    path: &'static str,
    data: Vec<u8>,
    mtime: u64,
    uid: u64,
    mode: u32,
    kind: tar::EntryType,
    link: Option<&'static str>,
}

fn file(path: &'static str, data: &[u8]) -> M {
    M {
        path,
        data: data.to_vec(),
        mtime: 1_700_000_000,
        uid: 0,
        mode: 0o644,
        kind: tar::EntryType::Regular,
        link: None,
    }
}

fn tar_of(members: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(m.kind);
        h.set_size(m.data.len() as u64);
        h.set_mode(m.mode);
        h.set_mtime(m.mtime);
        h.set_uid(m.uid);
        if let Some(link) = m.link {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append_data(&mut h, m.path, m.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn base() -> Vec<M> {
    vec![
        file("etc/version", b"4.2.1\n"),
        file("bin/init", b"\x7fELF pretend"),
        M {
            kind: tar::EntryType::Symlink,
            link: Some("init"),
            ..file("bin/sh", b"")
        },
    ]
}

/// `base()` with `edit` applied, as a tar.
fn tar_edited(edit: impl FnOnce(&mut Vec<M>)) -> Vec<u8> {
    let mut m = base();
    edit(&mut m);
    tar_of(&m)
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file(*name, o).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const META: Rule = Rule::ArchiveMetadata;

shapes! {
    metadata_mtimes: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m[0].mtime += 60), Equivalent;
    metadata_owner_and_mode: "fw.tar", META, tar_of(&base()) => tar_edited(|m| { m[1].uid = 1000; m[1].mode = 0o755; }), Equivalent;
    metadata_member_order: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m.swap(0, 1)), Equivalent;
    metadata_gzip_header: "fw.tar.gz", META, gzip(&tar_of(&base()), 1) => gzip(&tar_of(&base()), 2), Equivalent;
    metadata_identical: "fw.tar", META, tar_of(&base()) => tar_of(&base()), Identical;
    metadata_content_changed: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m[0].data = b"4.2.2\n".to_vec()), Different;
    metadata_content_and_mtime_changed: "fw.tar", META, tar_of(&base()) => tar_edited(|m| { m[1].data[0] ^= 1; m[1].mtime += 1; }), Different;
    metadata_member_added: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m.push(file("etc/extra", b""))), Different;
    metadata_member_removed: "fw.tar", META, tar_of(&base()) => tar_edited(|m| { m.pop(); }), Different;
    metadata_member_renamed: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m[0].path = "etc/versi0n"), Different;
    metadata_link_target: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m[2].link = Some("/tmp/x")), Different;
    metadata_kind_changed: "fw.tar", META, tar_of(&base()) => tar_edited(|m| { m[2].kind = tar::EntryType::Regular; m[2].link = None; }), Different;
    metadata_setuid_bit: "fw.tar", META, tar_of(&base()) => tar_edited(|m| m[1].mode = 0o4755), Different;
    metadata_data_after_the_archive: "fw.tar", META, tar_of(&base()) => [tar_of(&base()), b"hidden payload".to_vec()].concat(), Different;
    metadata_gzip_content: "fw.tar.gz", META, gzip(&tar_of(&base()), 1) => gzip(&tar_edited(|m| m[0].data[0] ^= 1), 1), Different;
    metadata_zip_behind_a_stub: "fw.zip", META, zip_of(&[("a", b"1")]) => [b"#!/bin/sh\nexec evil\n".to_vec(), zip_of(&[("a", b"1")])].concat(), Different;
    metadata_bytes_are_not_metadata: "fw.img", META, image() => edited(|v| v[0] ^= 1), Different;
}

#[test]
fn a_setuid_bit_is_named_where_archive_metadata_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    std::fs::write(&a, tar_of(&base())).unwrap();
    std::fs::write(&b, tar_edited(|m| m[1].mode = 0o4755)).unwrap();
    let opts = Options {
        allowances: vec![Allowance {
            artifact: None,
            rule: META,
            reason: "tar".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Different);
    assert_eq!(
        c.leaves[0].notes,
        ["`archive-metadata = true` not applied: a setuid, setgid or sticky bit changed"]
    );
}

#[test]
fn a_rule_that_does_not_fit_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    std::fs::write(&a, image()).unwrap();
    std::fs::write(&b, &image()[..9_936]).unwrap();
    let opts = Options {
        allowances: vec![Allowance {
            artifact: None,
            rule: TRAILER,
            reason: "signature".into(),
        }],
        ..Options::default()
    };
    let c = diff_paths(&a, &b, &opts).unwrap();
    assert_eq!(c.verdict, Verdict::Different);
    let notes = &c.leaves[0].notes;
    assert!(
        notes.iter().any(|n| n
            == "`trailer = 64` not applied: the shipped file (9936 bytes) is not the rebuilt one \
                (10000 bytes) and 64 more"),
        "{notes:?}"
    );
}
