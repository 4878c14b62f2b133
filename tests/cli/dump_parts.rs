//! Dumps whose release is not one contiguous copy (issue 10): a multi-file uImage made by
//! `mkimage` (a kernel and a `mksquashfs` root) whose parts the flash holds in separate
//! partitions, read back through `flashrom`'s dummy programmer; a part changed by one byte;
//! a header time allowed by `--allow-region` and by a recipe's `[[allow]]` (`verify --dump`,
//! signed into the attestation); and code inserted in a copy where that allowance sits.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde::Deserialize;

use super::dump::noise;
use crate::support::{run_ok, TestEnv};

const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
const CHIP: &str = "W25Q128FV";
const FLASH: usize = 16 << 20;
const KERNEL_AT: usize = 0x10_0000;
const ROOTFS_AT: usize = 0x40_0000;

/// The board's partitions: U-Boot, a kernel partition, a root partition, erased space.
const LAYOUT: &str = r#"
[flash]
size = 0x1000000

[[flash.region]]
name = "u-boot"
offset = 0
size = 0x100000
kind = "bootloader"

[[flash.region]]
name = "kernel"
offset = 0x100000
size = 0x300000
kind = "release"

[[flash.region]]
name = "rootfs"
offset = 0x400000
size = 0x400000
kind = "release"

[[flash.region]]
name = "spare"
offset = 0x800000
size = 0x800000
kind = "erased"
"#;

fn mkimage(dir: &Path, epoch: &str, out: &str) {
    let data = format!(
        "{}:{}",
        dir.join("kernel").display(),
        dir.join("rootfs.squashfs").display()
    );
    run_ok(
        Command::new("mkimage")
            .env("SOURCE_DATE_EPOCH", epoch)
            .args(["-A", "arm64", "-O", "linux", "-T", "multi", "-C", "none"])
            .args(["-a", "0x80000", "-e", "0x80000", "-n", "acme-router 4.2.1"])
            .arg("-d")
            .arg(data)
            .arg(dir.join(out)),
    );
}

/// `target/dump-split-v1`: `firmware.img` (a multi-file uImage: kernel, squashfs root, made
/// with `SOURCE_DATE_EPOCH=1700000000`), `installed.img` (the same parts, the header written
/// at another time), the kernel and the squashfs, made once.
fn parts() -> PathBuf {
    // Tests of one process make the parts one at a time (the temporary folder is per process).
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dump-split-v1");
    if dir.join(".complete").exists() {
        return dir;
    }
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("root/bin")).unwrap();
    std::fs::write(tmp.join("kernel"), noise(640 << 10, 11)).unwrap();
    std::fs::write(tmp.join("root/bin/app"), noise(200 << 10, 12)).unwrap();
    std::fs::write(tmp.join("root/version"), "acme-router 4.2.1\n").unwrap();
    run_ok(
        Command::new("mksquashfs")
            .arg(tmp.join("root"))
            .arg(tmp.join("rootfs.squashfs"))
            .args(["-noappend", "-all-root", "-no-progress", "-quiet"])
            .args(["-mkfs-time", "1700000000", "-all-time", "1700000000"]),
    );
    mkimage(&tmp, "1700000000", "firmware.img");
    mkimage(&tmp, "1765000000", "installed.img");
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

/// The flash as the installer wrote it: U-Boot, the kernel alone in its partition, the root
/// filesystem alone in its own, no uImage header anywhere.
fn split_flash(parts: &Path) -> Vec<u8> {
    let mut chip = vec![0xffu8; FLASH];
    let uboot = std::fs::read(UBOOT).expect("u-boot-qemu is installed");
    chip[..uboot.len()].copy_from_slice(&uboot);
    let kernel = std::fs::read(parts.join("kernel")).unwrap();
    chip[KERNEL_AT..KERNEL_AT + kernel.len()].copy_from_slice(&kernel);
    let rootfs = std::fs::read(parts.join("rootfs.squashfs")).unwrap();
    chip[ROOTFS_AT..ROOTFS_AT + rootfs.len()].copy_from_slice(&rootfs);
    chip
}

/// `chip` written into flashrom's emulated chip and read back out, as a lab reads a board.
fn read_back(env: &TestEnv, chip: &[u8], name: &str) {
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
#[allow(dead_code)]
struct PartJson {
    part: String,
    part_offset: u64,
    size: u64,
    offset: Option<i64>,
    votes: u32,
    differing: u64,
    missing: u64,
    verdict: String,
    in_copy: bool,
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
    parts: Vec<PartJson>,
    comparison: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DumpJson {
    verdict: String,
    placements: Vec<PlacementJson>,
    spans: Vec<serde_json::Value>,
    coverage: serde_json::Value,
}

fn at(offset: usize) -> i64 {
    i64::try_from(offset).unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Issue 10: the kernel and the root filesystem of a uImage in separate partitions. Each part
/// is found where it is and reproduced there; the uImage as a file is not in the dump, so the
/// artifact is `missing`, and its header and size table are what was not found. Then one byte
/// changed in the root filesystem.
#[test]
fn a_uimage_whose_kernel_and_rootfs_sit_in_separate_partitions() {
    let parts = parts();
    let release = parts.join("firmware.img");
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    let chip = split_flash(&parts);
    read_back(&env, &chip, "dump.bin");
    let diff = |dump: &str, json: bool| {
        let mut cmd = env.cmd(["diff".as_ref(), release.as_os_str(), dump.as_ref()]);
        cmd.args(["--flash-layout", "layout.toml"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };

    let out = diff("dump.bin", false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "firmware.img not found whole in the dump: missing; its parts, each on its own:"
        ),
        "{text}"
    );
    assert!(
        text.contains("firmware.img//image-0 found at 0x100000: identical"),
        "{text}"
    );
    assert!(
        text.contains("firmware.img//image-1 found at 0x400000: identical"),
        "{text}"
    );
    assert!(
        text.contains("bytes are in no identical copy in the dump"),
        "{text}"
    );
    assert!(text.contains("dump: missing"), "{text}");

    let out = diff("dump.bin", true);
    let json: DumpJson = serde_json::from_slice(&out.stdout).unwrap();
    let fw = &json.placements[0];
    assert_eq!((fw.offset, fw.verdict.as_str()), (None, "missing"));
    let kernel = std::fs::metadata(parts.join("kernel")).unwrap().len();
    let rootfs = std::fs::metadata(parts.join("rootfs.squashfs"))
        .unwrap()
        .len();
    let got: Vec<(&str, Option<i64>, u64, &str)> = fw
        .parts
        .iter()
        .map(|p| (p.part.as_str(), p.offset, p.size, p.verdict.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "firmware.img//image-0",
                Some(at(KERNEL_AT)),
                kernel,
                "identical"
            ),
            (
                "firmware.img//image-1",
                Some(at(ROOTFS_AT)),
                rootfs,
                "identical"
            ),
        ]
    );
    // Reproduced: the parts' bytes and nothing more (U-Boot is not a release artifact here).
    assert_eq!(json.coverage["reproduced"], kernel + rootfs);
    // Not found: the header (64 bytes), the size table (12) and the kernel's padding to 4.
    let size = std::fs::metadata(&release).unwrap().len();
    assert_eq!(fw.unlocated, size - kernel - rootfs);
    assert_eq!(fw.unlocated, 64 + 12 + (4 - kernel % 4) % 4);

    // One byte changed in the root filesystem: that part is different, at its offset.
    let mut changed = chip.clone();
    changed[ROOTFS_AT + 0x1234] ^= 0x10;
    env.write("changed.bin", &changed);
    let out = diff("changed.bin", true);
    assert_eq!(out.status.code(), Some(1));
    let json: DumpJson = serde_json::from_slice(&out.stdout).unwrap();
    let p = &json.placements[0].parts[1];
    assert_eq!(
        (p.offset, p.differing, p.verdict.as_str()),
        (Some(at(ROOTFS_AT)), 1, "different")
    );
    assert_eq!(json.placements[0].parts[0].verdict, "identical");
    let text = stdout(&diff("changed.bin", false));
    assert!(
        text.contains("firmware.img//image-1 found at 0x400000: different, 1 byte differs"),
        "{text}"
    );
}

/// The whole uImage in the kernel partition with one byte of its squashfs changed: found
/// where it is, `different`; its parts say which one differs.
#[test]
fn a_part_changed_by_one_byte_in_a_whole_copy() {
    let parts = parts();
    let release = parts.join("firmware.img");
    let firmware = std::fs::read(&release).unwrap();
    let env = TestEnv::new();
    let mut chip = vec![0xffu8; FLASH];
    chip[KERNEL_AT..KERNEL_AT + firmware.len()].copy_from_slice(&firmware);
    let kernel = usize::try_from(std::fs::metadata(parts.join("kernel")).unwrap().len()).unwrap();
    chip[KERNEL_AT + 64 + 12 + kernel.next_multiple_of(4) + 0x800] ^= 0x01;
    read_back(&env, &chip, "dump.bin");
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: DumpJson = serde_json::from_slice(&out.stdout).unwrap();
    let fw = &json.placements[0];
    assert_eq!(
        (fw.offset, fw.differing, fw.verdict.as_str()),
        (Some(at(KERNEL_AT)), 1, "different")
    );
    let got: Vec<(&str, u64, bool)> = fw
        .parts
        .iter()
        .map(|p| (p.verdict.as_str(), p.differing, p.in_copy))
        .collect();
    assert_eq!(got, [("identical", 0, true), ("different", 1, true)]);
    assert_eq!(fw.unlocated, 1);
}

/// Issue 10: the installer wrote the uImage again at another time (its `ih_time` and header
/// CRC differ). `--allow-region 4:8` makes the copy `equivalent`, the allowance listed in text
/// and JSON; without it the copy is `different`.
#[test]
fn an_allowed_header_time_makes_the_copy_equivalent() {
    let parts = parts();
    let release = parts.join("firmware.img");
    let installed = std::fs::read(parts.join("installed.img")).unwrap();
    assert_ne!(std::fs::read(&release).unwrap()[4..12], installed[4..12]);
    let env = TestEnv::new();
    let mut chip = vec![0xffu8; FLASH];
    chip[KERNEL_AT..KERNEL_AT + installed.len()].copy_from_slice(&installed);
    read_back(&env, &chip, "dump.bin");
    let diff = |extra: &[&str]| {
        env.cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
            .arg("--dump")
            .args(extra)
            .output()
            .unwrap()
    };
    let out = diff(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = diff(&["--allow-region", "4:8"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("firmware.img found at 0x100000: equivalent"),
        "{text}"
    );
    assert!(
        text.contains("  allowed by `region = { offset = 4, length = 8 }`"),
        "{text}"
    );
    assert!(text.contains("dump: equivalent"), "{text}");
    let out = diff(&["--allow-region", "4:8", "--json"]);
    let json: DumpJson = serde_json::from_slice(&out.stdout).unwrap();
    let fw = &json.placements[0];
    assert_eq!(fw.verdict, "equivalent");
    assert_eq!(
        fw.allowances[0]["allowance"]["region"],
        serde_json::json!({"offset": 4, "length": 8})
    );
    // `--strict`: an equivalent copy fails.
    assert_eq!(
        diff(&["--allow-region", "4:8", "--strict"]).status.code(),
        Some(1)
    );
}

/// The attack: code inserted in the installed copy where the allowance sits (after the header
/// CRC, inside `ih_time`), the inserted bytes ending in a forged header start so that the
/// window the locator aligns on differs only inside the allowance. It is not `equivalent`:
/// offset by offset from where the release region begins the copy differs everywhere after
/// the insertion, and the inserted bytes are neither the artifact nor fill.
#[test]
fn code_inserted_where_an_allowance_sits_is_not_equivalent() {
    let parts = parts();
    let release = parts.join("firmware.img");
    let firmware = std::fs::read(&release).unwrap();
    let mut inserted = b"\x1f\x20\x03\xd5\x1f\x20\x03\xd5\x00\x00\x00\x14".to_vec(); // nop; nop; b .
    inserted.extend_from_slice(&firmware[..4]);
    inserted.extend_from_slice(b"\xde\xad\xbe\xef");
    let mut copy = firmware[..8].to_vec();
    copy.extend_from_slice(&inserted);
    copy.extend_from_slice(&firmware[8..]);
    let env = TestEnv::new().file("layout.toml", LAYOUT);
    let mut chip = vec![0xffu8; FLASH];
    chip[KERNEL_AT..KERNEL_AT + copy.len()].copy_from_slice(&copy);
    read_back(&env, &chip, "dump.bin");
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .args(["--flash-layout", "layout.toml", "--allow-region", "4:8"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("dump: equivalent"), "{text}");
    assert!(text.contains("dump: different"), "{text}");
    assert!(
        text.contains("kernel               release        failed"),
        "{text}"
    );

    // The layout places the artifact at the partition: judged there, offset by offset.
    env.write(
        "placed.toml",
        LAYOUT.replacen(
            "kind = \"release\"\n",
            "kind = \"release\"\nartifact = \"firmware.img\"\n",
            1,
        ),
    );
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .args(["--flash-layout", "placed.toml", "--allow-region", "4:8"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("firmware.img placed by the layout at 0x100000: different"),
        "{text}"
    );
}

/// `verify --dump` with a recipe's `[[allow]]`: the dump's copy of the demo firmware differs
/// inside the allowed region; it is `equivalent`, and the allowance is in the attestation's
/// dump record (valid against the documented schema).
#[test]
fn verify_dump_applies_the_recipes_allowances() {
    let demo = crate::support::Demo::locked("none");
    let unpacked = demo.unpack_bundle("unpacked");
    let mut firmware = std::fs::read(unpacked.join("firmware.img")).unwrap();
    for b in &mut firmware[16..20] {
        *b ^= 0x5a;
    }
    let mut dump = vec![0xffu8; 1 << 20];
    dump[0x2_0000..0x2_0000 + firmware.len()].copy_from_slice(&firmware);
    demo.env.write("dump.bin", &dump);
    let recipe = demo.recipe().replace(
        "[[artifact]]\npath = \"out/acme-router-fw-1.0.0.tar.gz\"",
        "",
    );
    demo.set_recipe(&format!(
        "{recipe}\n[[allow]]\nartifact = \"firmware.img\"\nregion = {{ offset = 16, length = 4 }}\nreason = \"the board's serial, written by the installer\"\n"
    ));
    let out = demo
        .verify([unpacked.join("firmware.img")])
        .args(["--dump", "dump.bin"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("firmware.img found at 0x20000: equivalent"),
        "{text}"
    );
    assert!(
        text.contains("allowed by `region = { offset = 16, length = 4 }` (the board's serial"),
        "{text}"
    );
    let att = std::fs::read_to_string(demo.env.path("att.intoto.jsonl")).unwrap();
    let rebuild: serde_json::Value = att
        .lines()
        .map(|l| {
            let env: serde_json::Value = serde_json::from_str(l).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(env["payload"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap()
        })
        .find(|s| s["predicate"]["dump"].is_object())
        .expect("the rebuild predicate records the dump");
    let d = &rebuild["predicate"]["dump"];
    assert_eq!(d["verdict"], "equivalent", "{d}");
    assert_eq!(d["placements"][0]["verdict"], "equivalent", "{d}");
    assert_eq!(
        d["placements"][0]["allowances"][0]["allowance"]["region"],
        serde_json::json!({"offset": 16, "length": 4}),
        "{d}"
    );
    assert_eq!(
        d["placements"][0]["allowances"][0]["ranges"],
        serde_json::json!([{"offset": 16, "len": 4}]),
        "{d}"
    );
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
}
