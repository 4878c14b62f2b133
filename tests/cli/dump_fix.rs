//! What a new user found wrong in the dump check (newuser findings §1-§9): a second copy that
//! differs, bytes left unexplained under an `identical`, artifacts that are not flashed, a
//! release the layout places wrongly, runs at block offsets, percentages that read `0.0%`.
//! Dumps are assembled from the parts of `dump.rs` (mkimage, mksquashfs, U-Boot) and read back
//! through flashrom.

use std::process::Command;

use crate::dump::{parts, read_back, stdout, FLASH};
use crate::support::{run_ok, TestEnv};

const FIRMWARE_AT: usize = 0x10_0000;
const SECOND_AT: usize = 0x40_0000;

const LAYOUT: &str = r#"
[flash]
size = 0x1000000

[[flash.region]]
name = "firmware"
offset = 0x100000
size = 0x600000
kind = "release"
artifact = "firmware.img"

[[flash.region]]
name = "spare"
offset = 0x700000
size = 0x900000
kind = "erased"
"#;

fn firmware() -> Vec<u8> {
    std::fs::read(parts().join("release/firmware.img")).unwrap()
}

/// 0xff everywhere, the release at `at`.
fn chip_with(at: usize) -> Vec<u8> {
    let fw = firmware();
    let mut chip = vec![0xffu8; FLASH];
    chip[at..at + fw.len()].copy_from_slice(&fw);
    chip
}

/// The release at 0x100000 and a second copy at 0x400000 with one bit of its kernel changed
/// (an A/B bank, a recovery image).
fn chip_with_second_copy() -> Vec<u8> {
    let fw = firmware();
    let mut chip = chip_with(FIRMWARE_AT);
    chip[SECOND_AT..SECOND_AT + fw.len()].copy_from_slice(&fw);
    chip[SECOND_AT + 0x2_0000] ^= 0x01;
    chip
}

fn diff(env: &TestEnv, release: &std::path::Path, dump: &str, more: &[&str]) -> (i32, String) {
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), dump.as_ref()])
        .args(more)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), stdout(&out))
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// §1/§9 attack: a differing second copy in an unlisted gap passed (`dump: identical`, exit 0).
#[test]
fn a_second_copy_that_differs_in_a_gap_fails() {
    let env = TestEnv::new();
    read_back(&env, &chip_with_second_copy(), "dump.bin");
    let fw = parts().join("release/firmware.img");
    let (code, text) = diff(&env, &fw, "dump.bin", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("a second copy of firmware.img at 0x400000: different"),
        "{text}"
    );
    assert_eq!(last_line(&text), "dump: different", "{text}");
    let (code, json) = diff(&env, &fw, "dump.bin", &["--json"]);
    assert_eq!(code, 1, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["verdict"], "different");
    let copies = &json["placements"][0]["copies"];
    assert_eq!(copies[0]["offset"], SECOND_AT, "{json}");
    assert_eq!(copies[0]["verdict"], "different", "{json}");
    assert_eq!(copies[0]["differing"], 1, "{json}");
}

/// §1 attack: the same copy inside the `release` region, with the layout: it fails and is named.
#[test]
fn a_second_copy_in_the_release_region_is_named_and_fails() {
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    read_back(&env, &chip_with_second_copy(), "dump.bin");
    let fw = parts().join("release/firmware.img");
    let (code, text) = diff(&env, &fw, "dump.bin", &["--flash-layout", "layout.toml"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("firmware.img placed by the layout at 0x100000: identical"),
        "{text}"
    );
    assert!(
        text.contains("a second copy of firmware.img at 0x400000: different"),
        "{text}"
    );
    assert_eq!(last_line(&text), "dump: different", "{text}");
}

/// §1c/§9: unexplained bytes never hide under a bare `identical`; §7: a small class is not
/// `0.0%`; §8: a run in a gap starts at its first non-fill byte and is described.
#[test]
fn unexplained_bytes_are_counted_on_the_last_line_and_runs_are_trimmed() {
    let env = TestEnv::new();
    let mut chip = chip_with(FIRMWARE_AT);
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(64, 0x5a);
    chip[0x70_1000..0x70_1000 + 64].copy_from_slice(&elf);
    read_back(&env, &chip, "dump.bin");
    let fw = parts().join("release/firmware.img");
    let (code, text) = diff(&env, &fw, "dump.bin", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        last_line(&text),
        "dump: identical (the release), 64 bytes unexplained",
        "{text}"
    );
    assert!(text.contains("unexplained 64 (0.00038%)"), "{text}");
    assert!(text.contains("reproduced 1359872 (8.1%)"), "{text}");
    assert!(text.contains("0x701000-0x701040: 64 bytes"), "{text}");
    assert!(text.contains("an ELF file at 0x701000"), "{text}");
    let (_, json) = diff(&env, &fw, "dump.bin", &["--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["verdict"], "identical");
    assert_eq!(json["coverage"]["unexplained"], 64);

    // Nothing unexplained: the bare word.
    read_back(&env, &chip_with(FIRMWARE_AT), "clean.bin");
    let (code, text) = diff(&env, &fw, "clean.bin", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(last_line(&text), "dump: identical", "{text}");
}

/// §6: the layout places the release at 0x100000, the device holds it at 0x180000.
#[test]
fn a_release_the_layout_misplaces_is_found_and_still_fails() {
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    read_back(&env, &chip_with(0x18_0000), "dump.bin");
    let fw = parts().join("release/firmware.img");
    let (code, text) = diff(&env, &fw, "dump.bin", &["--flash-layout", "layout.toml"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("an identical copy was found at 0x180000 (the layout places it at 0x100000)"),
        "{text}"
    );
    // §4: a difference that stays `unknown` says how to explain it.
    assert!(
        text.contains("hint: pass --layout ELF to name the sections and functions"),
        "{text}"
    );
    let (_, json) = diff(
        &env,
        &fw,
        "dump.bin",
        &["--flash-layout", "layout.toml", "--json"],
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["verdict"], "different");
    // Release bytes that happen to equal the fill at the wrong offset are not reproduced.
    assert_eq!(json["coverage"]["reproduced"], 0, "{json}");
    // §8/§13: the layout's source in JSON is a name, not Markdown.
    assert_eq!(json["layout"], "layout.toml", "{json}");
}

/// §2: a shipped bundle is never flashed; an artifact the layout does not name is not required.
#[test]
fn artifacts_that_are_not_flashed_are_not_required() {
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    read_back(&env, &chip_with(FIRMWARE_AT), "dump.bin");
    std::fs::create_dir_all(env.path("release")).unwrap();
    std::fs::copy(
        parts().join("release/firmware.img"),
        env.path("release/firmware.img"),
    )
    .unwrap();
    run_ok(Command::new("tar").current_dir(env.path("release")).args([
        "-czf",
        "bundle.tar.gz",
        "firmware.img",
    ]));
    let release = env.path("release");
    let (code, text) = diff(&env, &release, "dump.bin", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("bundle.tar.gz not found in the dump: not required (an archive the other artifacts came from)"),
        "{text}"
    );

    // With a layout, only what its `release` regions name is required.
    env.write("release/notes.bin", crate::dump::noise(8192, 7));
    let (code, text) = diff(
        &env,
        &release,
        "dump.bin",
        &["--flash-layout", "layout.toml"],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("notes.bin not found in the dump: not in the flash layout"),
        "{text}"
    );
    // Without one, it is required: missing.
    let (code, text) = diff(&env, &release, "dump.bin", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("notes.bin not found in the dump: missing"),
        "{text}"
    );

    // Nothing found: missing, the bundle not found either.
    std::fs::remove_file(env.path("release/notes.bin")).unwrap();
    read_back(&env, &vec![0xffu8; FLASH], "empty.bin");
    let (code, text) = diff(&env, &release, "empty.bin", &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(last_line(&text), "dump: missing", "{text}");
}

/// §5: `verify --dump` with only the bundle in `--shipped` is refused before anything is built
/// (the bundle's members are gone when the dump is checked), with the fix spelled out.
#[test]
fn verify_dump_with_only_a_bundle_is_refused_first() {
    let demo = crate::support::Demo::new("sandbox");
    demo.env.write("dump.bin", vec![0xffu8; 4096]);
    let out = demo
        .verify(["shipped/acme-router-fw-1.0.0.tar.gz"])
        .args(["--dump", "dump.bin"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("extract the flashed image from `shipped/acme-router-fw-1.0.0.tar.gz`"),
        "{err}"
    );
    assert!(err.contains("and pass it with `--shipped`"), "{err}");
    // Refused before the recipe's lock is even read: nothing built, nothing written.
    assert!(!err.contains("lock"), "{err}");
    assert!(!demo.env.path("att.intoto.jsonl").exists());
}
