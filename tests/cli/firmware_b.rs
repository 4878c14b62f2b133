//! `reprove diff` on real firmware containers made by the real tools: squashfs images from
//! mksquashfs, Debian's OVMF build with a byte changed inside a file of its LZMA-compressed
//! inner volume, and a coreboot image (fmaptool's FMAP, cbfstool's CBFS). Each difference must
//! be attributed to the member by name, header fields recognised as what they are.
//! See issue 9, item 2.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::TestEnv;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `reprove diff --json left right` in `env`: the exit code and the document.
fn diff_json(env: &TestEnv, left: &str, right: &str) -> (i32, Value) {
    let out = env.cmd(["diff", "--json", left, right]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

fn leaves(doc: &Value) -> Vec<&Value> {
    doc["leaves"].as_array().unwrap().iter().collect()
}

fn leaf<'d>(doc: &'d Value, path: &str) -> &'d Value {
    leaves(doc)
        .into_iter()
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no leaf `{path}` in {doc:#}"))
}

fn cause_kinds(leaf: &Value) -> Vec<String> {
    leaf["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn mksquashfs(env: &TestEnv, tree: &str, out: &str, time: u64) {
    run(Command::new("mksquashfs")
        .current_dir(env.root())
        .args([tree, out, "-quiet", "-noappend", "-no-progress"])
        .args(["-mkfs-time", &time.to_string()]));
}

fn tree(env: &TestEnv, passwd: &str) {
    env.write("tree/etc/passwd", passwd);
    env.write("tree/etc/hostname", "router\n");
    std::fs::copy("/bin/true", env.path("tree/bin-true")).unwrap();
    for p in ["tree/etc/passwd", "tree/etc/hostname", "tree/bin-true"] {
        run(Command::new("touch")
            .args(["-d", "@1700000000"])
            .arg(env.path(p)));
    }
}

#[test]
fn squashfs_made_twice_a_second_apart_differs_in_mkfs_time_only() {
    let env = TestEnv::new();
    tree(&env, "root:x:0:0::/root:/bin/sh\n");
    mksquashfs(&env, "tree", "a.sqfs", 1_700_000_000);
    mksquashfs(&env, "tree", "b.sqfs", 1_700_000_001);
    let (code, doc) = diff_json(&env, "a.sqfs", "b.sqfs");
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(leaves(&doc).len(), 1, "{doc:#}");
    let sb = leaf(&doc, "a.sqfs//superblock");
    assert_eq!(cause_kinds(sb), ["timestamp"], "{doc:#}");
    assert_eq!(sb["metadata"][0]["field"], "mkfs_time");
    assert!(sb["metadata"][0]["right"]
        .as_str()
        .unwrap()
        .contains("2023-11-14T22:13:21Z"));
}

#[test]
fn squashfs_with_one_file_changed_names_the_file() {
    let env = TestEnv::new();
    tree(&env, "root:x:0:0::/root:/bin/sh\n");
    mksquashfs(&env, "tree", "a.sqfs", 1_700_000_000);
    tree(
        &env,
        "root:x:0:0::/root:/bin/sh\nbackdoor:x:0:0::/:/bin/sh\n",
    );
    mksquashfs(&env, "tree", "b.sqfs", 1_700_000_000);
    let (code, doc) = diff_json(&env, "a.sqfs", "b.sqfs");
    assert_eq!(code, 1, "{doc:#}");
    let passwd = leaf(&doc, "a.sqfs//etc/passwd");
    assert_eq!(passwd["content"]["left_size"], 26, "{doc:#}");
    assert_eq!(passwd["content"]["right_size"], 52, "{doc:#}");
    // The other files match; the superblock's offsets follow the change, and the
    // filesystem's own bytes are not listed beside the file that changed them.
    for l in leaves(&doc) {
        let path = l["path"].as_str().unwrap();
        assert!(
            [
                "a.sqfs//etc/passwd",
                "a.sqfs//superblock",
                "a.sqfs//padding"
            ]
            .contains(&path),
            "{path}: {doc:#}"
        );
    }
    let sb = leaf(&doc, "a.sqfs//superblock");
    assert!(cause_kinds(sb).iter().all(|c| c == "checksum"), "{doc:#}");
    let fields: Vec<&str> = sb["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"bytes_used"), "{fields:?}");
    assert!(!fields.contains(&"mkfs_time"), "{fields:?}");
}

#[test]
fn squashfs_file_owner_and_mtime_are_metadata() {
    let env = TestEnv::new();
    tree(&env, "x\n");
    mksquashfs(&env, "tree", "a.sqfs", 1_700_000_000);
    run(Command::new("touch")
        .args(["-d", "@1700000500"])
        .arg(env.path("tree/etc/hostname")));
    mksquashfs(&env, "tree", "b.sqfs", 1_700_000_000);
    let (_, doc) = diff_json(&env, "a.sqfs", "b.sqfs");
    let host = leaf(&doc, "a.sqfs//etc/hostname");
    assert_eq!(cause_kinds(host), ["archive_metadata"], "{doc:#}");
    assert_eq!(host["metadata"][0]["field"], "mtime");
}

/// `OVMF_CODE.fd` with one byte of `DxeCore`'s PE32 image changed: the LZMA section of the first
/// volume decompressed, the byte flipped, recompressed (xz2's LZMA-alone encoder, as edk2's
/// `LzmaCompress` writes it), and the section, file and volume rebuilt around it.
fn ovmf_with_dxecore_changed(out: &Path) {
    let fd = std::fs::read("/usr/share/OVMF/OVMF_CODE.fd").unwrap();
    let u32le = |at: usize, n: usize| {
        fd[at..at + n]
            .iter()
            .rev()
            .fold(0usize, |v, &b| (v << 8) | b as usize)
    };
    let fv_len = u32le(0x20, 8);
    let ext = u32le(0x34, 2);
    let file = (ext + u32le(ext + 16, 4)).div_ceil(8) * 8;
    let sec = file + 24;
    assert_eq!(fd[sec + 3], 0x02, "a GUID-defined section");
    let sec_size = u32le(sec, 3);
    let data_off = u32le(sec + 20, 2);
    let mut inner = Vec::new();
    let stream = xz2::stream::Stream::new_lzma_decoder(u64::MAX).unwrap();
    std::io::Read::read_to_end(
        &mut xz2::read::XzDecoder::new_stream(&fd[sec + data_off..sec + sec_size], stream),
        &mut inner,
    )
    .unwrap();
    let ui: Vec<u8> = "DxeCore\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let at = inner
        .windows(ui.len())
        .position(|w| w == ui)
        .expect("DxeCore's UI section");
    // Well inside the PE32 section that comes before the UI section.
    inner[at - 4 - 512] ^= 0x01;
    let opts = xz2::stream::LzmaOptions::new_preset(6).unwrap();
    let enc = xz2::stream::Stream::new_lzma_encoder(&opts).unwrap();
    let mut packed = Vec::new();
    std::io::Read::read_to_end(
        &mut xz2::read::XzEncoder::new_stream(&inner[..], enc),
        &mut packed,
    )
    .unwrap();
    let mut new_sec = fd[sec..sec + data_off].to_vec();
    new_sec.extend_from_slice(&packed);
    let n = new_sec.len();
    new_sec[..3].copy_from_slice(&u32::try_from(n).unwrap().to_le_bytes()[..3]);
    let mut new_file = fd[file..file + 24].to_vec();
    let fsize = 24 + n;
    new_file[20..23].copy_from_slice(&u32::try_from(fsize).unwrap().to_le_bytes()[..3]);
    // IntegrityCheck.Header: the header sums to 0 with State and IntegrityCheck.File zeroed.
    new_file[16] = 0;
    let sum = new_file[..24]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 17 && *i != 23)
        .fold(0u8, |s, (_, &b)| s.wrapping_add(b));
    new_file[16] = 0u8.wrapping_sub(sum);
    new_file.extend_from_slice(&new_sec);
    let mut img = fd[..file].to_vec();
    img.extend_from_slice(&new_file);
    assert!(img.len() <= fv_len, "the recompressed volume still fits");
    img.resize(fv_len, 0xff);
    img.extend_from_slice(&fd[fv_len..]);
    std::fs::write(out, img).unwrap();
}

#[test]
fn ovmf_with_a_byte_changed_in_dxecore_names_dxecore_through_the_lzma_volume() {
    let env = TestEnv::new();
    std::fs::copy("/usr/share/OVMF/OVMF_CODE.fd", env.path("OVMF_CODE.fd")).unwrap();
    ovmf_with_dxecore_changed(&env.path("changed.fd"));
    let (code, doc) = diff_json(&env, "OVMF_CODE.fd", "changed.fd");
    assert_eq!(code, 1, "{doc:#}");
    let content: Vec<&str> = leaves(&doc)
        .into_iter()
        .filter(|l| !l["content"].is_null())
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    // The one content change is DxeCore's image, inside the LZMA-compressed inner volume.
    assert_eq!(content.len(), 1, "{content:?}");
    assert!(
        content[0].starts_with("OVMF_CODE.fd//FV(48db5e17-707c-472d-91cd-1613e7ef51b0)/")
            && content[0].contains("/guided/unpacked//")
            && content[0].ends_with("/DxeCore/pe32"),
        "{}",
        content[0]
    );
    let dxe = leaf(&doc, content[0]);
    assert_eq!(dxe["content"]["differing_bytes"], 1, "{dxe:#}");
    // Everything else is a length or checksum following the change, named as such.
    for l in leaves(&doc) {
        if l["path"] != content[0] {
            assert!(!cause_kinds(l).is_empty(), "{l:#}");
            assert!(cause_kinds(l).iter().all(|c| c == "checksum"), "{l:#}");
        }
    }
    let text = env
        .cmd(["diff", "OVMF_CODE.fd", "changed.fd"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("/DxeCore/pe32`"), "{text}");
    assert!(text.contains("IntegrityCheck.Header"), "{text}");
}

fn coreboot(env: &TestEnv, out: &str, config: &str) {
    env.write(
        "layout.fmd",
        "FLASH@0x0 0x100000 {\n BIOS@0x0 0x100000 {\n  RW_MRC_CACHE@0x0 0x10000\n  \
         FMAP@0x10000 0x1000\n  COREBOOT(CBFS)@0x11000 0xef000\n }\n}\n",
    );
    env.write("cfg", config);
    env.write("payload", vec![0x90u8; 5000]);
    let tool = |args: &[&str]| {
        run(Command::new(format!("/usr/sbin/{}", args[0]))
            .current_dir(env.root())
            .args(&args[1..]));
    };
    tool(&["fmaptool", "layout.fmd", "layout.fmap"]);
    tool(&[
        "cbfstool",
        out,
        "create",
        "-M",
        "layout.fmap",
        "-r",
        "COREBOOT",
    ]);
    for (f, n) in [("payload", "fallback/payload"), ("cfg", "etc/config")] {
        tool(&[
            "cbfstool", out, "add", "-r", "COREBOOT", "-f", f, "-n", n, "-t", "raw",
        ]);
    }
}

#[test]
fn coreboot_image_names_the_cbfs_file_inside_the_fmap_area() {
    let env = TestEnv::new();
    coreboot(&env, "a.rom", "boot_order=usb\n");
    coreboot(&env, "b.rom", "boot_order=net\n");
    let (code, doc) = diff_json(&env, "a.rom", "b.rom");
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(leaves(&doc).len(), 1, "{doc:#}");
    let cfg = leaf(&doc, "a.rom//COREBOOT//etc/config");
    assert_eq!(cfg["content"]["differing_bytes"], 3, "{doc:#}");

    // A file grown by four bytes: its header's `len` follows.
    coreboot(&env, "c.rom", "boot_order=usb,net\n");
    let (_, doc) = diff_json(&env, "a.rom", "c.rom");
    let hdr = leaf(&doc, "a.rom//COREBOOT//etc/config/header");
    assert_eq!(cause_kinds(hdr), ["checksum"], "{doc:#}");
    assert_eq!(hdr["metadata"][0]["field"], "len");
    // Its 64-byte alignment fill, all 0xff on both sides, moved with it: passed over.
    assert_eq!(leaves(&doc).len(), 2, "{doc:#}");
}

/// A 16 KiB flash image with an Intel flash descriptor, its BIOS region written by ifdtool.
/// Debian has no tool that makes a descriptor from nothing (ifdtool edits one), so the
/// descriptor itself is laid out here by the datasheet's words: FLMAP0 with FRBA = 0x40, the
/// descriptor region at 0, the BIOS region at 0x1000..0x3fff, the others unused. ifdtool then
/// reads it (`-d`) and writes the BIOS region into it (`-i`), as it would on a real board's.
fn ifd_image(env: &TestEnv, out: &str, bios: u8) {
    let mut b = vec![0xffu8; 0x4000];
    b[0x10..0x14].copy_from_slice(&0x0FF0_A55Au32.to_le_bytes());
    b[0x14..0x18].copy_from_slice(&((0x04u32 << 16) | 0x03).to_le_bytes());
    b[0x18..0x20].fill(0);
    for (i, w) in [0u32, 0x0003_0001, 0x7fff, 0x7fff, 0x7fff]
        .iter()
        .enumerate()
    {
        b[0x40 + 4 * i..0x44 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    env.write("descriptor.bin", &b);
    let dump = Command::new("/usr/sbin/ifdtool")
        .arg("-d")
        .arg(env.path("descriptor.bin"))
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("FRBA:    0x40"), "{dump}");
    env.write("bios.bin", vec![bios; 0x3000]);
    run(Command::new("/usr/sbin/ifdtool")
        .current_dir(env.root())
        .args(["-i", "BIOS:bios.bin", "-O", out, "descriptor.bin"]));
}

#[test]
fn intel_flash_descriptor_regions_are_parts() {
    let env = TestEnv::new();
    ifd_image(&env, "a.bin", 0x11);
    ifd_image(&env, "b.bin", 0x11);
    let mut b = std::fs::read(env.path("b.bin")).unwrap();
    b[0x2345] ^= 0x40;
    env.write("b.bin", &b);
    let (code, doc) = diff_json(&env, "a.bin", "b.bin");
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(leaves(&doc).len(), 1, "{doc:#}");
    let bios = leaf(&doc, "a.bin//bios");
    assert_eq!(bios["content"]["ranges"][0]["offset"], 0x1345, "{doc:#}");
}

#[test]
fn a_damaged_squashfs_is_compared_as_bytes_with_a_note() {
    let env = TestEnv::new();
    tree(&env, "root:x:0:0::/root:/bin/sh\n");
    mksquashfs(&env, "tree", "a.sqfs", 1_700_000_000);
    let mut b = std::fs::read(env.path("a.sqfs")).unwrap();
    // bytes_used past the end of the image.
    b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    env.write("b.sqfs", &b);
    let out = env.cmd(["diff", "a.sqfs", "b.sqfs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("could not read as squashfs") && text.contains("compared as bytes"),
        "{text}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
