//! Causes in words (issue 9 items 3 and 5), on inputs made by the real tools: firmware
//! compiled with gcc and linked with a script, raw images made by `objcopy`, a ROM whose
//! bytes sum to zero, an image with a CRC32 trailer.

#![allow(clippy::many_single_char_names)]

use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// Compile and link `source` as freestanding firmware with the linker script `ld`.
    fn firmware(&self, name: &str, source: &str, ld: &str) -> PathBuf {
        let src = self.write(&format!("{name}.c"), source.as_bytes());
        let script = self.write(&format!("{name}.ld"), ld.as_bytes());
        let elf = self.path(&format!("{name}.elf"));
        let status = Command::new("gcc")
            .args([
                "-O1",
                "-g0",
                "-ffreestanding",
                "-nostdlib",
                "-static",
                "-no-pie",
                "-fno-pic",
                "-fno-asynchronous-unwind-tables",
                "-fcf-protection=none",
                "-Wl,--build-id=none",
            ])
            .arg(format!("-Wl,-T,{}", script.display()))
            .arg("-o")
            .arg(&elf)
            .arg(&src)
            .status()
            .expect("gcc runs");
        assert!(status.success());
        elf
    }

    /// `objcopy -O binary` of `elf` into `rel`.
    fn image(&self, elf: &Path, rel: &str) -> PathBuf {
        let image = self.path(rel);
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        let status = Command::new("objcopy")
            .args(["-O", "binary"])
            .arg(elf)
            .arg(&image)
            .status()
            .expect("objcopy runs");
        assert!(status.success());
        image
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in the image", String::from_utf8_lossy(needle)))
}

fn content(c: &Comparison) -> &ContentDiff {
    c.leaves[0].content.as_ref().expect("a content leaf")
}

fn range_at(c: &Comparison, offset: usize) -> &RangeDiff {
    content(c)
        .ranges
        .iter()
        .find(|r| r.offset <= offset as u64 && (offset as u64) < r.end())
        .unwrap_or_else(|| panic!("no range at {offset:#x}: {:#?}", content(c).ranges))
}

trait End {
    fn end(&self) -> u64;
}

impl End for RangeDiff {
    fn end(&self) -> u64 {
        self.offset + self.len
    }
}

fn with_layout(elf: &Path) -> Options {
    Options {
        layout: Some(elf.to_owned()),
        ..Options::default()
    }
}

/// Firmware that keeps its strings in `.text`: the compiler's `.comment` is linked into the
/// code, between two functions.
const KEEPS_STRINGS: &str = r"
__attribute__((noinline, section(`.text.a`))) unsigned mix(unsigned x) { return x * 0x5a5a5a5bu; }
__attribute__((noinline, section(`.text.z`))) unsigned twice(unsigned x) { return x * 0x3c3c3c3du; }
void entry(void) { volatile unsigned v = mix(1) + twice(2); (void)v; for (;;) {} }
";

const KEEPS_STRINGS_LD: &str = r"
ENTRY(entry)
SECTIONS {
    . = 0x10000;
    .text : { *(.text.a) KEEP(*(.comment)) *(.text.z) *(.text .text.*) }
    /DISCARD/ : { *(.eh_frame .note.gnu.property .note.GNU-stack) }
}
";

/// The same, with the compiler's string last in the image.
const STRING_LAST_LD: &str = r"
ENTRY(entry)
SECTIONS {
    . = 0x10000;
    .text : { *(.text.a) *(.text.z) *(.text .text.*) KEEP(*(.comment)) }
    /DISCARD/ : { *(.eh_frame .note.gnu.property .note.GNU-stack) }
}
";

/// The version words of the compiler that built the fixtures, from its own `.comment`
/// (`GCC: (Debian 12.2.0-14+deb12u1) 12.2.0`): the string and where its version starts.
fn gcc_string(image: &[u8]) -> (usize, String) {
    let at = find(image, b"GCC: (");
    let len = image[at..].iter().position(|&c| c == 0).unwrap();
    (at, String::from_utf8(image[at..at + len].to_vec()).unwrap())
}

#[test]
fn a_compiler_string_in_code_is_a_toolchain_string_quoting_both_versions() {
    let d = Dir::new();
    let src = KEEPS_STRINGS.replace('`', "\"");
    let elf = d.firmware("fw", &src, KEEPS_STRINGS_LD);
    let image = d.image(&elf, "a/fw.img");
    let mut bytes = std::fs::read(&image).unwrap();
    let (at, string) = gcc_string(&bytes);
    // Another point release of the same length: `…12.2.0-14…` → `…12.2.0-15…`, or the
    // reverse on a machine whose compiler is already -15.
    let paren = at + string.find(')').unwrap();
    let digit = paren - 1;
    let was = bytes[digit];
    bytes[digit] = if was == b'9' { b'8' } else { was + 1 };
    let patched = d.write("b/fw.img", &bytes);
    let c = diff_paths(&image, &patched, &with_layout(&elf)).unwrap();
    let r = range_at(&c, digit);
    let Cause::Toolchain { left, right } = &r.cause else {
        panic!("not a toolchain string: {r:#?}");
    };
    assert_ne!(left, right);
    assert!(left.starts_with(char::is_numeric) && string.contains(left.as_str()));
    assert_eq!(
        r.location.as_deref(),
        Some(".text"),
        "the place is still `.text`"
    );
    let pair = r.string.as_ref().expect("the string on both sides");
    assert_eq!(pair.left, string);
    assert!(pair.right.starts_with("GCC: (") && pair.right != string);
    assert!(r.context.is_some(), "a range with a cause has context");
    assert_eq!(
        content(&c).summary,
        "1 byte differs in 1 range: 1 toolchain string"
    );

    // A code byte changed within the same range: no string may hide it.
    let code = find(&bytes, &0x3c3c_3c3d_u32.to_le_bytes());
    assert!(code > paren, "`twice` follows the string");
    let end = at + string.len();
    let mut both = bytes.clone();
    // The bytes between the string's end and the code, each bumped so they merge into one
    // range with the version digit (fewer than 8 equal bytes apart).
    for i in (end..code).step_by(4) {
        both[i] ^= 0x01;
    }
    both[code] ^= 0x01;
    let attacked = d.write("c/fw.img", &both);
    let c = diff_paths(&image, &attacked, &with_layout(&elf)).unwrap();
    let r = range_at(&c, digit);
    assert!(r.end() > code as u64, "one merged range: {r:#?}");
    assert!(r.cause.is_code(), "{r:#?}");
}

#[test]
fn a_longer_version_string_at_the_end_of_an_image_is_a_toolchain_string() {
    let d = Dir::new();
    let src = KEEPS_STRINGS.replace('`', "\"");
    let elf = d.firmware("fw", &src, STRING_LAST_LD);
    let image = d.image(&elf, "a/fw.img");
    let bytes = std::fs::read(&image).unwrap();
    let (at, string) = gcc_string(&bytes);
    assert_eq!(
        at + string.len() + 1,
        bytes.len(),
        "the string ends the image"
    );
    // The distribution's point release: `GCC: (Debian 12.2.0-14) 12.2.0` on the left
    // against `GCC: (Debian 12.2.0-14+deb12u1) 12.2.0` on the right.
    let mut old = bytes[..at].to_vec();
    old.extend_from_slice(b"GCC: (Debian 12.2.0-14) 12.2.0\0");
    let mut new = bytes[..at].to_vec();
    new.extend_from_slice(b"GCC: (Debian 12.2.0-14+deb12u1) 12.2.0\0");
    let (l, r) = (d.write("l/fw.img", &old), d.write("r/fw.img", &new));
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    let cause = Cause::Toolchain {
        left: "12.2.0-14".into(),
        right: "12.2.0-14+deb12u1".into(),
    };
    assert_eq!(
        c.leaves[0].causes,
        std::slice::from_ref(&cause),
        "{:#?}",
        c.leaves
    );
    assert_eq!(
        cause.describe(),
        "toolchain version string `12.2.0-14` → `12.2.0-14+deb12u1`"
    );
    // Bytes after the string on the longer side that are no part of it: not a string.
    let mut tail = new.clone();
    tail.extend_from_slice(&[0x90, 0x90]);
    let t = d.write("t/fw.img", &tail);
    let c = diff_paths(&l, &t, &Options::default()).unwrap();
    assert_eq!(c.leaves[0].causes, [Cause::Unknown], "{:#?}", c.leaves);
}

/// An authentication table as two arrays of constants in `.rodata`, and the code using them.
const AUTH: &str = r#"
const char users[4][12] = { "root", "operator", "guest", "" };
const unsigned char hashes[4][8] = {
    { 1, 2, 3, 4, 5, 6, 7, 8 }, { 9, 10, 11, 12, 13, 14, 15, 16 },
    { 17, 18, 19, 20, 21, 22, 23, 24 }, { 0 } };
__attribute__((noinline)) int auth_check(const char *u, const unsigned char *h) {
    for (int i = 0; i < 4; i++) {
        int same = users[i][0] != 0;
        for (int j = 0; j < 12 && users[i][j]; j++) same &= users[i][j] == u[j];
        for (int j = 0; j < 8; j++) same &= hashes[i][j] == h[j];
        if (same) return 1;
    }
    return 0;
}
void entry(void) { volatile int ok = auth_check("root", hashes[0]); (void)ok; for (;;) {} }
"#;

const AUTH_LD: &str = r"
ENTRY(entry)
SECTIONS {
    . = 0x10000;
    .text : { *(.text .text.*) }
    .rodata : { *(.rodata .rodata.*) }
    /DISCARD/ : { *(.eh_frame .note.gnu.property .note.GNU-stack .comment) }
}
";

// See issue 9: a hidden account added to an authentication table read `unknown`.
#[test]
fn a_hidden_account_in_rodata_is_a_data_change_naming_the_tables() {
    let d = Dir::new();
    let elf = d.firmware("fw", AUTH, AUTH_LD);
    let rebuilt = d.image(&elf, "a/fw.img");
    let backdoored = AUTH
        .replace(r#""guest", """#, r#""guest", "maint""#)
        .replace("{ 0 } }", "{ 66, 66, 66, 66, 66, 66, 66, 66 } }");
    let shipped_elf = d.firmware("bad", &backdoored, AUTH_LD);
    let shipped = d.image(&shipped_elf, "b/fw.img");
    let c = diff_paths(&rebuilt, &shipped, &with_layout(&elf)).unwrap();
    let data = |symbol: &str| Cause::Data {
        section: ".rodata".into(),
        symbol: Some(symbol.into()),
    };
    let causes = &c.leaves[0].causes;
    assert!(causes.contains(&data("users")), "{causes:#?}");
    assert!(causes.contains(&data("hashes")), "{causes:#?}");
    assert!(causes.iter().all(Cause::is_code), "{causes:#?}");
    assert_eq!(
        data("users").describe(),
        "DATA CHANGE in `.rodata`, object `users`"
    );
    assert!(
        content(&c).summary.ends_with("2 data changes"),
        "{}",
        content(&c).summary
    );
    // The ELF files themselves, compared as ELF: the same objects.
    let c = diff_paths(&elf, &shipped_elf, &Options::default()).unwrap();
    assert!(c.leaves[0].causes.contains(&data("users")), "{c:#?}");
}

/// A legacy option ROM: `55 aa`, its size in 512-byte blocks, and a checksum byte making
/// all its bytes sum to 0 mod 256.
fn option_rom(version: &[u8], checksum_at: usize) -> Vec<u8> {
    let mut rom = vec![0u8; 1024];
    rom[..3].copy_from_slice(&[0x55, 0xaa, 2]);
    rom[3..6].copy_from_slice(&[0xeb, 0x40, 0x90]);
    rom[0x100..0x100 + version.len()].copy_from_slice(version);
    let sum = rom.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    rom[checksum_at] = 0u8.wrapping_sub(sum);
    rom
}

#[test]
fn a_rom_checksum_byte_follows_the_other_changes() {
    let d = Dir::new();
    for at in [6, 1023] {
        let l = d.write("a.rom", &option_rom(b"fw 1.0\0", at));
        let r = d.write("b.rom", &option_rom(b"fw 1.3\0", at));
        let c = diff_paths(&l, &r, &Options::default()).unwrap();
        let cause = &range_at(&c, at).cause;
        assert_eq!(
            *cause,
            Cause::Checksum {
                field: Some("ROM checksum byte".into())
            },
            "checksum at {at}"
        );
        assert_eq!(range_at(&c, 0x105).cause, Cause::Unknown);
    }
    // One side no longer sums to zero: the byte is not taken for its checksum.
    let mut broken = option_rom(b"fw 1.3\0", 6);
    broken[0x200] = 1;
    let l = d.write("a.rom", &option_rom(b"fw 1.0\0", 6));
    let r = d.write("c.rom", &broken);
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    assert_eq!(range_at(&c, 6).cause, Cause::Unknown);
}

#[test]
fn a_crc32_and_a_length_field_follow_the_other_changes() {
    let d = Dir::new();
    // A header (magic, length of what follows), a payload, a CRC32 of everything before it.
    let image = |payload: &[u8]| {
        let mut img = b"FWIM".to_vec();
        img.extend_from_slice(&u32::try_from(payload.len() + 4).unwrap().to_le_bytes());
        img.extend_from_slice(payload);
        let crc = crc32fast::hash(&img);
        img.extend_from_slice(&crc.to_le_bytes());
        img
    };
    let payload = vec![0x11u8; 200];
    let mut changed = payload.clone();
    changed[100] = 0x22;
    let l = d.write("a.img", &image(&payload));
    let r = d.write("b.img", &image(&changed));
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    assert_eq!(
        range_at(&c, 208).cause,
        Cause::Checksum {
            field: Some("CRC32 of the bytes before it".into())
        }
    );
    changed.extend_from_slice(&[0x33; 40]);
    let r = d.write("c.img", &image(&changed));
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    assert_eq!(
        range_at(&c, 4).cause,
        Cause::Checksum {
            field: Some("length of what follows".into())
        }
    );
}

#[test]
fn a_known_host_name_is_named() {
    let d = Dir::new();
    // A fixed-width field, as `uname` fills one: the name, then NUL padding.
    let stamp = |host: &str| {
        let mut field = format!("built on {host}").into_bytes();
        field.resize(32, 0);
        field.extend_from_slice(b"by ci\n");
        field
    };
    let l = d.write("a.txt", &stamp("reprove"));
    let r = d.write("b.txt", &stamp("lab-host-7"));
    assert_eq!(diff(&l, &r).leaves[0].causes, [Cause::Unknown]);
    let opts = Options {
        names: Names {
            hosts: vec!["reprove".into()],
            users: vec!["ci".into()],
        },
        ..Options::default()
    };
    let c = diff_paths(&l, &r, &opts).unwrap();
    assert_eq!(c.leaves[0].causes, [Cause::HostName]);
    let pair = range_at(&c, 9).string.as_ref().unwrap();
    assert_eq!(pair.left, "built on reprove");
    assert_eq!(pair.right, "built on lab-host-7");
}

fn diff(l: &Path, r: &Path) -> Comparison {
    diff_paths(l, r, &Options::default()).unwrap()
}

#[test]
fn context_goes_to_the_ranges_with_a_cause_and_no_row_twice() {
    let d = Dir::new();
    let sde: u32 = 1_700_000_000;
    let mut a = vec![0u8; 4096];
    let mut b = a.clone();
    // 20 stamps 64 bytes apart, after 10 unexplained ranges; and two stamps 24 bytes apart.
    for i in 0..10 {
        b[16 + i * 32] = 0xff;
    }
    for i in 0..20 {
        let at = 512 + i * 64;
        a[at..at + 4].copy_from_slice(&sde.to_le_bytes());
        b[at..at + 4].copy_from_slice(&(sde + 60).to_le_bytes());
    }
    for at in [3000, 3024] {
        a[at..at + 4].copy_from_slice(&sde.to_le_bytes());
        b[at..at + 4].copy_from_slice(&(sde + 60).to_le_bytes());
    }
    let (l, r) = (d.write("a.img", &a), d.write("b.img", &b));
    let opts = Options {
        source_date_epoch: Some(i64::from(sde)),
        ..Options::default()
    };
    let c = diff_paths(&l, &r, &opts).unwrap();
    let content = content(&c);
    assert_eq!(
        content.summary,
        "32 bytes differ in 32 ranges: 10 unexplained ranges, 22 timestamps"
    );
    assert_eq!(
        (
            content.tally[1].kind,
            content.tally[1].ranges,
            content.tally[1].bytes
        ),
        ("timestamp", 22, 22)
    );
    let with: Vec<&RangeDiff> = content
        .ranges
        .iter()
        .filter(|r| r.context.is_some())
        .collect();
    assert_eq!(with.len(), 16, "16 windows, every one on a timestamp");
    assert!(with.iter().all(|r| r.cause == Cause::Timestamp));
    assert!(c.leaves[0]
        .notes
        .contains(&"6 more ranges with a cause shown without hex context".to_owned()));
    // No two windows share a row.
    let rows: Vec<(u64, u64)> = with
        .iter()
        .map(|r| {
            let ctx = r.context.as_ref().unwrap();
            (ctx.offset, ctx.offset + ctx.left.len() as u64 / 2)
        })
        .collect();
    assert!(rows.windows(2).all(|w| w[0].1 <= w[1].0), "{rows:?}");

    // Few ranges with a cause: the first unexplained ones get context too, and the two
    // stamps close together share one window.
    let mut e = vec![0u8; 4096];
    let mut f = e.clone();
    f[100] = 1;
    for at in [3000, 3024] {
        e[at..at + 4].copy_from_slice(&sde.to_le_bytes());
        f[at..at + 4].copy_from_slice(&(sde + 60).to_le_bytes());
    }
    let (l, r) = (d.write("e.img", &e), d.write("f.img", &f));
    let c = diff_paths(&l, &r, &opts).unwrap();
    let ranges = &content_of(&c).ranges;
    assert_eq!(ranges.len(), 3);
    assert!(ranges[0].context.is_some() && ranges[1].context.is_some());
    let shared = ranges[1].context.as_ref().unwrap();
    assert!(
        shared.offset + shared.left.len() as u64 / 2 >= 3028,
        "{shared:?}"
    );
    assert!(
        ranges[2].context.is_none(),
        "its rows are in the window before"
    );
}

fn content_of(c: &Comparison) -> &ContentDiff {
    content(c)
}

/// A padded ROM whose version string grew: the string is an insertion named by its versions,
/// the padding the rest moved into is fill, and nothing is `unknown` (issue 9: Debian's
/// `SeaBIOS` VGA ROM against today's rebuild).
#[test]
fn a_grown_string_in_a_padded_rom_leaves_nothing_unknown() {
    let d = Dir::new();
    let code: Vec<u8> = (0u8..=255).cycle().take(600).collect();
    let rom = |version: &str, pad: usize| {
        let mut b = code.clone();
        b.extend_from_slice(format!("gcc: (Debian {version}) 12.2.0\0").as_bytes());
        b.extend_from_slice(&code[..200]);
        b.extend(std::iter::repeat_n(0u8, pad));
        b
    };
    let (new, old) = (rom("12.2.0-14+deb12u1", 32), rom("12.2.0-14", 40));
    assert_eq!(new.len(), old.len());
    let (l, r) = (d.write("l/vga.bin", &new), d.write("r/vga.bin", &old));
    let c = diff_paths(&l, &r, &Options::default()).unwrap();
    let causes = &c.leaves[0].causes;
    assert!(
        causes.contains(&Cause::Toolchain {
            left: "12.2.0-14+deb12u1".into(),
            right: "12.2.0-14".into(),
        }),
        "{causes:?}"
    );
    assert!(causes.contains(&Cause::Padding { fill: 0 }), "{causes:?}");
    assert!(!causes.contains(&Cause::Unknown), "{causes:?}");
}
