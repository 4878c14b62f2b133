//! Dumps (issue 10): a 16 MiB SPI flash assembled from real parts — Debian's U-Boot for
//! `qemu_arm64`, a uImage made by `mkimage`, a squashfs made by `mksquashfs`, device data, 0xff
//! fill — read back through `flashrom`'s dummy programmer, and checked with `reprove diff
//! RELEASE DUMP`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::support::{run_ok, TestEnv};

pub(crate) const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The flash chip flashrom emulates, and its size.
const CHIP: &str = "W25Q128FV";
pub(super) const FLASH: usize = 16 << 20;
const FIRMWARE_AT: usize = 0x10_0000;
const FACTORY_AT: usize = 0xf_0000;
const SPARE_AT: usize = 0x70_0000;

const LAYOUT: &str = r#"
[flash]
size = 0x1000000

[[flash.region]]
name = "u-boot"
offset = 0
size = 0xf0000
kind = "bootloader"

[[flash.region]]
name = "factory"
offset = 0xf0000
size = 0x10000
kind = "device-data"
reason = "MAC address and serial number, written per device at the factory"

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

pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (s >> 33).to_le_bytes()[0]
        })
        .collect()
}

/// `target/dump-parts-v1`: the release (`firmware.img`: a uImage padded to 1 MiB, then a
/// squashfs) and U-Boot, made once.
pub(super) fn parts() -> PathBuf {
    // Tests of one process make the parts one at a time (the temporary folder is per process).
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dump-parts-v1");
    if dir.join(".complete").exists() {
        return dir;
    }
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("root/bin")).unwrap();
    std::fs::write(tmp.join("kernel"), noise(768 << 10, 1)).unwrap();
    run_ok(
        Command::new("mkimage")
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["-A", "arm64", "-O", "linux", "-T", "kernel", "-C", "none"])
            .args(["-a", "0x80000", "-e", "0x80000", "-n", "acme-router 4.2.1"])
            .arg("-d")
            .arg(tmp.join("kernel"))
            .arg(tmp.join("uImage")),
    );
    std::fs::write(tmp.join("root/bin/app"), noise(300 << 10, 2)).unwrap();
    std::fs::write(tmp.join("root/version"), "acme-router 4.2.1\n").unwrap();
    run_ok(
        Command::new("mksquashfs")
            .arg(tmp.join("root"))
            .arg(tmp.join("rootfs.squashfs"))
            .args(["-noappend", "-all-root", "-no-progress", "-quiet"])
            .args(["-mkfs-time", "1700000000", "-all-time", "1700000000"]),
    );
    let mut firmware = std::fs::read(tmp.join("uImage")).unwrap();
    firmware.resize(1 << 20, 0xff);
    firmware.extend(std::fs::read(tmp.join("rootfs.squashfs")).unwrap());
    std::fs::create_dir_all(tmp.join("release")).unwrap();
    std::fs::write(tmp.join("release/firmware.img"), firmware).unwrap();
    std::fs::copy(UBOOT, tmp.join("release/u-boot.bin")).expect("u-boot-qemu is installed");
    std::fs::write(tmp.join(".complete"), "").unwrap();
    // A folder left by an interrupted run goes; one another process completed stays.
    if !dir.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}

/// The flash as a device holds it: U-Boot, the factory data, the release, erased space.
fn flash(parts: &Path, mac: &str) -> Vec<u8> {
    let mut chip = vec![0xffu8; FLASH];
    let uboot = std::fs::read(parts.join("release/u-boot.bin")).unwrap();
    chip[..uboot.len()].copy_from_slice(&uboot);
    let factory = format!("MAC={mac}\nSERIAL=ACME-000417\n");
    chip[FACTORY_AT..FACTORY_AT + factory.len()].copy_from_slice(factory.as_bytes());
    let firmware = std::fs::read(parts.join("release/firmware.img")).unwrap();
    chip[FIRMWARE_AT..FIRMWARE_AT + firmware.len()].copy_from_slice(&firmware);
    chip
}

/// `chip` written into flashrom's emulated chip and read back out, as a lab reads a board.
pub(crate) fn read_back(env: &TestEnv, chip: &[u8], name: &str) {
    let image = env.path(&format!("{name}.chip"));
    std::fs::write(&image, chip).unwrap();
    run_ok(
        Command::new("flashrom")
            .arg("-p")
            .arg(format!("dummy:emulate={CHIP},image={}", image.display()))
            .arg("-r")
            .arg(env.path(name)),
    );
    assert_eq!(std::fs::read(env.path(name)).unwrap(), chip);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageJson {
    reproduced: u64,
    pinned: u64,
    masked: u64,
    erased: u64,
    unexplained: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PlacementJson {
    artifact: String,
    size: u64,
    sha256: String,
    offset: Option<i64>,
    placed_by: String,
    votes: u32,
    differing: u64,
    missing: u64,
    verdict: String,
    unlocated: u64,
    #[serde(default)]
    allowances: Vec<serde_json::Value>,
    #[serde(default)]
    parts: Vec<serde_json::Value>,
    comparison: Option<serde_json::Value>,
    /// Why it need not be in the dump (`dump_fix.rs`).
    not_required: Option<String>,
    /// Second copies of it (`dump_fix.rs`).
    #[serde(default)]
    copies: Vec<serde_json::Value>,
    found_elsewhere: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RunJson {
    offset: u64,
    length: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SpanJson {
    offset: u64,
    length: u64,
    kind: String,
    name: Option<String>,
    region_kind: Option<String>,
    reason: Option<String>,
    fill: Option<u8>,
    status: String,
    detail: Option<String>,
    #[serde(default)]
    runs: Vec<RunJson>,
    coverage: CoverageJson,
    /// Where the dump describes the region itself (its own layout, `dump_own.rs`).
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct DumpJson {
    schema_version: u32,
    dump: String,
    size: u64,
    digest: Option<serde_json::Value>,
    verdict: String,
    layout: Option<String>,
    placements: Vec<PlacementJson>,
    spans: Vec<SpanJson>,
    coverage: CoverageJson,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    dump_tables: Vec<TableJson>,
}

/// A partition table the dump holds (`dump_own.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TableJson {
    format: String,
    offset: u64,
    areas: u64,
    used: bool,
}

pub(super) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Issue 10: the release intact, another MAC (masked), a byte changed in the release, code
/// hidden in erased flash, a blob whose digest does not match; and the JSON account of
/// every byte.
#[test]
fn a_flash_dump_read_back_by_flashrom() {
    let parts = parts();
    let release = parts.join("release");
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    let chip = flash(&parts, "52:54:00:12:34:56");
    read_back(&env, &chip, "dump.bin");
    let layout = ["--flash-layout", "layout.toml"];

    // Intact: where the release is, what every other byte is, the coverage (and the page).
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .args(layout)
        .args(["--html", "report.html"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let page = std::fs::read_to_string(env.path("report.html")).unwrap();
    assert!(page.contains("id=\"verdict\">identical<"), "{page}");
    assert!(
        page.contains("<td>factory</td><td>device-data</td><td>masked</td>"),
        "{page}"
    );
    assert!(
        text.contains("firmware.img placed by the layout at 0x100000: identical"),
        "{text}"
    );
    assert!(
        text.contains("u-boot.bin found at 0x0: identical"),
        "{text}"
    );
    assert!(
        text.contains("device-data    masked: MAC address and serial number"),
        "{text}"
    );
    assert!(text.contains("dump: identical"), "{text}");
    assert!(
        text.contains("coverage of 16777216 bytes: reproduced"),
        "{text}"
    );

    // Without a layout, the release is found by content where it is, and the rest is told.
    let out = env
        .cmd([
            "diff".as_ref(),
            release.join("firmware.img").as_os_str(),
            "dump.bin".as_ref(),
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("firmware.img found at 0x100000: identical"),
        "{text}"
    );
    assert!(text.contains("unlisted fill 0xff"), "{text}");

    // Another device's MAC: masked, still identical.
    let other = flash(&parts, "52:54:00:ab:cd:ef");
    env.write("other-mac.bin", &other);
    env.cmd([
        "diff".as_ref(),
        release.as_os_str(),
        "other-mac.bin".as_ref(),
    ])
    .args(layout)
    .assert()
    .code(0);

    // One byte changed inside the squashfs of the release: different, at its offset.
    let mut changed = chip.clone();
    let at = FIRMWARE_AT + (1 << 20) + 0x2345;
    changed[at] ^= 0x20;
    env.write("changed.bin", &changed);
    let out = env
        .cmd([
            "diff".as_ref(),
            release.as_os_str(),
            "changed.bin".as_ref(),
            "--json".as_ref(),
        ])
        .args(layout)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: DumpJson = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.verdict, "different");
    let fw = json
        .placements
        .iter()
        .find(|p| p.artifact == "firmware.img")
        .unwrap();
    assert_eq!(
        (fw.offset, fw.differing, fw.verdict.as_str()),
        (Some(0x10_0000), 1, "different")
    );
    let c = fw
        .comparison
        .as_ref()
        .expect("the differing copy is explained");
    // Explained as `reprove diff` would: the uImage read by its header, the change after it.
    let leaf = &c["leaves"][0];
    assert!(
        leaf["path"].as_str().unwrap().starts_with("firmware.img//"),
        "{c}"
    );
    assert_eq!(leaf["content"]["differing_bytes"], 1, "{c}");
    let total = |c: &CoverageJson| c.reproduced + c.pinned + c.masked + c.erased + c.unexplained;
    assert_eq!(total(&json.coverage), FLASH as u64);
    assert_eq!(
        json.spans.iter().map(|s| s.length).sum::<u64>(),
        FLASH as u64
    );
    assert!(json.coverage.unexplained >= 1);
    let text = stdout(
        &env.cmd(["diff".as_ref(), release.as_os_str(), "changed.bin".as_ref()])
            .args(layout)
            .output()
            .unwrap(),
    );
    assert!(
        text.contains("firmware.img placed by the layout at 0x100000: different, 1 byte differs"),
        "{text}"
    );

    // Code hidden in the erased space: reported with its offsets and what it looks like.
    let mut hidden = chip.clone();
    let elf = std::fs::read("/usr/lib/u-boot/qemu_arm64/uboot.elf").unwrap();
    hidden[SPARE_AT + 0x1000..SPARE_AT + 0x1000 + 4096].copy_from_slice(&elf[..4096]);
    env.write("hidden.bin", &hidden);
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "hidden.bin".as_ref()])
        .args(layout)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("an ELF file at 0x701000"), "{text}");
    assert!(text.contains("hidden in flash declared empty"), "{text}");

    // U-Boot pinned as a blob: pinned when its digest matches, failed when it does not.
    let digest = crate::support::run_ok(Command::new("sha256sum").arg(UBOOT));
    let digest = digest.split_whitespace().next().unwrap();
    let pinned = |digest: &str| {
        LAYOUT.replace(
            "kind = \"bootloader\"",
            &format!("kind = \"blob\"\nblob = \"u-boot\"\n\n[[blob]]\nname = \"u-boot\"\ndigest = \"sha256:{digest}\"\nreason = \"the board vendor's boot loader, not built from this escrow\"\n"),
        )
    };
    let region_is_whole = |text: &str| {
        text.replace(
            "size = 0xf0000",
            &format!("size = {:#x}", std::fs::metadata(UBOOT).unwrap().len()),
        )
    };
    env.write("pinned.toml", region_is_whole(&pinned(digest)));
    let fw_only = release.join("firmware.img");
    let out = env
        .cmd([
            "diff".as_ref(),
            fw_only.as_os_str(),
            "dump.bin".as_ref(),
            "--flash-layout".as_ref(),
            "pinned.toml".as_ref(),
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("pinned, not reproduced"), "{text}");
    env.write("wrong.toml", region_is_whole(&pinned(&"0".repeat(64))));
    let out = env
        .cmd([
            "diff".as_ref(),
            fw_only.as_os_str(),
            "dump.bin".as_ref(),
            "--flash-layout".as_ref(),
            "wrong.toml".as_ref(),
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("does not match its pin"), "{text}");

    // A layout that is wrong is refused, naming the key.
    env.write(
        "bad.toml",
        LAYOUT.replace("reason = \"MAC", "#reason = \"MAC"),
    );
    let out = env
        .cmd([
            "diff".as_ref(),
            release.as_os_str(),
            "dump.bin".as_ref(),
            "--flash-layout".as_ref(),
            "bad.toml".as_ref(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `flash.region[1].reason`"), "{err}");
}

/// `verify --dump`: after the verification, the dump is checked against the release as
/// rebuilt, with the recipe's `[flash]`, and the result is signed into the attestation; `attest
/// verify --dump` then finds the attested artifact in a dump with no rebuild.
#[test]
fn verify_and_attest_verify_check_a_dump() {
    let demo = crate::support::Demo::locked("none");
    let unpacked = demo.unpack_bundle("unpacked");
    let firmware = std::fs::read(unpacked.join("firmware.img")).unwrap();
    let mut dump = vec![0xffu8; 1 << 20];
    dump[..22].copy_from_slice(b"MAC=52:54:00:12:34:56\n");
    dump[0x1_0000..0x1_0000 + firmware.len()].copy_from_slice(&firmware);
    demo.env.write("dump.bin", &dump);
    let recipe = demo.recipe().replace(
        "[[artifact]]\npath = \"out/acme-router-fw-1.0.0.tar.gz\"",
        "",
    );
    let flash = "[flash]\nsize = 0x100000\n\n[[flash.region]]\nname = \"factory\"\noffset = 0\nsize = 0x1000\nkind = \"device-data\"\nreason = \"the MAC address\"\n\n[[flash.region]]\nname = \"spare\"\noffset = 0x80000\nsize = 0x80000\nkind = \"erased\"\n";
    demo.set_recipe(&format!("{recipe}\n{flash}"));
    demo.env.write("layout.toml", flash);
    demo.env
        .cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let out = demo
        .env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "--sign-key",
            "vendor",
            "--verifier-id",
            "https://lab.example/reprove",
        ])
        .args([
            "--out",
            "att.intoto.jsonl",
            "--dump",
            "dump.bin",
            "--shipped",
        ])
        .arg(unpacked.join("firmware.img"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("firmware.img found at 0x10000: identical"),
        "{text}"
    );
    assert!(text.contains("masked: the MAC address"), "{text}");
    let att = std::fs::read_to_string(demo.env.path("att.intoto.jsonl")).unwrap();
    let rebuild: serde_json::Value = att
        .lines()
        .map(|l| {
            let env: serde_json::Value = serde_json::from_str(l).unwrap();
            let payload = base64_decode(env["payload"].as_str().unwrap());
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap()
        })
        .find(|s| s["predicate"]["dump"].is_object())
        .expect("the rebuild predicate records the dump");
    // The predicate, dump included, matches the documented schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rebuild-predicate.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&rebuild["predicate"])
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let d = &rebuild["predicate"]["dump"];
    assert_eq!(d["verdict"], "identical", "{d}");
    assert_eq!(d["placements"][0]["offset"], 0x1_0000);
    assert_eq!(d["coverage"]["masked"], 0x1000);
    assert_eq!(d["coverage"]["reproduced"], firmware.len());
    let sha = crate::support::run_ok(Command::new("sha256sum").arg(demo.env.path("dump.bin")));
    assert_eq!(
        d["digest"]["sha256"],
        sha.split_whitespace().next().unwrap()
    );

    // No rebuild: the attested artifact found in the dump, and code hidden in its spare space.
    let attest = |dump: &str| {
        demo.env
            .cmd([
                "attest",
                "verify",
                "att.intoto.jsonl",
                "--key",
                "vendor.pub",
            ])
            .arg("--artifact")
            .arg(unpacked.join("firmware.img"))
            .args(["--dump", dump, "--flash-layout", "layout.toml"])
            .output()
            .unwrap()
    };
    let out = attest("dump.bin");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("firmware.img found at 0x10000: identical"),
        "{text}"
    );
    dump[0x9_0000..0x9_0004].copy_from_slice(b"\x7fELF");
    demo.env.write("hidden.bin", &dump);
    let out = attest("hidden.bin");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("an ELF file at 0x90000"), "{text}");
}

pub(super) fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
