//! A dump's own layout (issue 10, item 2): flashes whose partition tables were written by the
//! real tools — an FMAP compiled by coreboot-utils' `fmaptool`, a device tree compiled by
//! `dtc` with `fixed-partitions`, Debian's OVMF volumes — read back through `flashrom`'s
//! dummy programmer and checked with no layout declared. The rule under test above all: what
//! the dump says about itself never masks a byte.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::dump::{noise, parts, read_back, stdout, DumpJson, FLASH};
use crate::support::{run_ok, TestEnv};

const FMD: &str = "FLASH@0 0x1000000 {
\tFMAP@0 0x1000
\tRO_VPD@0x1000 0xf000
\tCOREBOOT(CBFS)@0x10000 0x6f0000
\tUNUSED@0x700000 0x900000
}
";
const FIRMWARE_AT: usize = 0x10_0000;
const VPD_AT: usize = 0x1000;

/// `diff RELEASE DUMP --json` read strictly (the documented fields, no others) and as a value.
fn diff_json(env: &TestEnv, release: &Path, dump: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), dump.as_ref()])
        .args(extra)
        .arg("--json")
        .output()
        .unwrap();
    let _: DumpJson =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn span<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span `{name}`: {json:#}"))
}

/// A 16 MiB flash whose FMAP `fmaptool` compiled: the FMAP at 0, the VPD, coreboot's area
/// holding the release at 0x100000, unused space.
fn fmap_flash(env: &TestEnv, firmware: &[u8]) -> Vec<u8> {
    env.write("flash.fmd", FMD.as_bytes());
    run_ok(
        Command::new("fmaptool")
            .arg(env.path("flash.fmd"))
            .arg(env.path("flash.fmap")),
    );
    let fmap = std::fs::read(env.path("flash.fmap")).unwrap();
    let mut chip = vec![0xffu8; FLASH];
    chip[..fmap.len()].copy_from_slice(&fmap);
    let vpd = b"serial_number=ACME-000417\0ethernet_mac0=52:54:00:12:34:56\0";
    chip[VPD_AT..VPD_AT + vpd.len()].copy_from_slice(vpd);
    chip[FIRMWARE_AT..FIRMWARE_AT + firmware.len()].copy_from_slice(firmware);
    chip
}

/// Issue 10: the FMAP's areas name the dump's bytes; the release is found in `COREBOOT`;
/// code hidden in `UNUSED` fails; and code the dump's own FMAP calls `RO_VPD` is never
/// masked — only a declared layout masks.
#[test]
fn a_flash_with_an_fmap_is_read_by_its_own_areas() {
    let parts = parts();
    let release = parts.join("release/firmware.img");
    let firmware = std::fs::read(&release).unwrap();
    let env = TestEnv::new();
    let chip = fmap_flash(&env, &firmware);
    read_back(&env, &chip, "dump.bin");

    // Intact: the layout is the dump's FMAP, the release lies in `COREBOOT`.
    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("layout from the dump's FMAP at 0x0"),
        "{text}"
    );
    assert!(
        text.contains("firmware.img found at 0x100000: identical"),
        "{text}"
    );
    assert!(
        text.contains("`firmware.img` lies in the dump's own area `COREBOOT`"),
        "{text}"
    );
    let (code, json) = diff_json(&env, &release, "dump.bin", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(json["layout"], "the dump's FMAP at 0x0", "{json:#}");
    assert_eq!(json["dump_tables"][0]["format"], "fmap");
    assert_eq!(
        json["dump_tables"][0]["areas"], 4,
        "FMAP, RO_VPD, COREBOOT, UNUSED"
    );
    assert_eq!(json["dump_tables"][0]["used"], true);
    let unused = span(&json, "UNUSED");
    assert_eq!(unused["region_kind"], "erased");
    assert_eq!(unused["status"], "ok");
    assert_eq!(unused["source"], "FMAP at 0x0, area UNUSED");
    let vpd = span(&json, "RO_VPD");
    assert_eq!(vpd["region_kind"], "device-data");
    assert_eq!(vpd["status"], "unexplained", "{vpd:#}");

    // Code hidden in the area the FMAP calls unused.
    let mut hidden = chip.clone();
    hidden[0x80_0000..0x80_0004].copy_from_slice(b"\x7fELF");
    env.write("hidden.bin", &hidden);
    let (code, json) = diff_json(&env, &release, "hidden.bin", &[]);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["verdict"], "different");
    let unused = span(&json, "UNUSED");
    assert_eq!(unused["status"], "failed");
    assert!(
        unused["detail"]
            .as_str()
            .unwrap()
            .contains("an ELF file at 0x800000"),
        "{unused:#}"
    );
}

/// The attack (issue 10, item 2): code placed where the dump's own FMAP says `RO_VPD`. The
/// FMAP is the attacker's: the bytes stay unexplained, none masked, and the hint says how to
/// mask. Declared in a layout, the same area is masked: the layout wins, and where it
/// disagrees with the dump's own is one line.
#[test]
fn code_the_dumps_own_fmap_calls_vpd_is_never_masked() {
    let parts = parts();
    let release = parts.join("release/firmware.img");
    let firmware = std::fs::read(&release).unwrap();
    let env = TestEnv::new();
    let chip = fmap_flash(&env, &firmware);
    let payload = noise(0x4000, 7);
    let mut tampered = chip.clone();
    tampered[0x2000..0x2000 + payload.len()].copy_from_slice(&payload);
    tampered[0x2000..0x2004].copy_from_slice(b"\x7fELF");
    read_back(&env, &tampered, "tampered.bin");
    let (_, json) = diff_json(&env, &release, "tampered.bin", &[]);
    assert_eq!(json["coverage"]["masked"], 0, "{json:#}");
    let vpd = span(&json, "RO_VPD");
    assert_eq!(vpd["status"], "unexplained", "{vpd:#}");
    assert!(
        vpd["coverage"]["unexplained"].as_u64().unwrap() >= payload.len() as u64,
        "{vpd:#}"
    );
    assert_eq!(vpd["coverage"]["masked"], 0);
    assert!(
        vpd["detail"]
            .as_str()
            .unwrap()
            .contains("declare it in the recipe's `[flash]`"),
        "{vpd:#}"
    );

    // Declared, the same area is masked.
    env.write(
        "layout.toml",
        b"[flash]\n[[flash.region]]\nname = \"vpd\"\noffset = 0x1000\nsize = 0xf000\nkind = \"device-data\"\nreason = \"serial number and MAC, per device\"\n\n[[flash.region]]\nname = \"spare\"\noffset = 0x600000\nsize = 0xa00000\nkind = \"erased\"\n",
    );
    let (code, json) = diff_json(
        &env,
        &release,
        "tampered.bin",
        &["--flash-layout", "layout.toml"],
    );
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["coverage"]["masked"], 0xf000);
    assert_eq!(json["layout"], "layout.toml");
    assert_eq!(json["dump_tables"][0]["used"], false);
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(
            "the layout's region `spare` (erased) and the dump's FMAP at 0x0, area COREBOOT (release) disagree at 0x600000-0x700000"
        )),
        "{notes:#?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("`vpd`")),
        "the same kind is no disagreement: {notes:#?}"
    );
}

const DTS: &str = r#"/dts-v1/;
/ {
	model = "acme-router";
	flash@0 {
		compatible = "jedec,spi-nor";
		partitions {
			compatible = "fixed-partitions";
			#address-cells = <1>;
			#size-cells = <1>;
			partition@0 { label = "u-boot"; reg = <0x0 0xf0000>; read-only; };
			partition@f0000 { label = "u-boot-env"; reg = <0xf0000 0x4000>; };
			partition@f4000 { label = "dtb"; reg = <0xf4000 0x4000>; read-only; };
			partition@f8000 { label = "art"; reg = <0xf8000 0x8000>; read-only; };
			partition@100000 { label = "firmware"; reg = <0x100000 0xf00000>; };
		};
	};
};
"#;

/// A flash whose partitions a `dtc`-compiled device tree lists: U-Boot, its environment,
/// the tree, the radio calibration (`art`), the firmware.
#[test]
fn a_flash_with_a_device_tree_is_read_by_its_partitions() {
    let parts = parts();
    let release = parts.join("release");
    let env = TestEnv::new();
    env.write("flash.dts", DTS.as_bytes());
    run_ok(
        Command::new("dtc")
            .args(["-I", "dts", "-O", "dtb", "-o"])
            .arg(env.path("flash.dtb"))
            .arg(env.path("flash.dts")),
    );
    let dtb = std::fs::read(env.path("flash.dtb")).unwrap();
    let uboot = std::fs::read(release.join("u-boot.bin")).unwrap();
    let firmware = std::fs::read(release.join("firmware.img")).unwrap();
    let mut chip = vec![0xffu8; FLASH];
    chip[..uboot.len()].copy_from_slice(&uboot);
    let env_text = b"bootcmd=bootm 0x100000\0";
    chip[0xf_0000..0xf_0000 + env_text.len()].copy_from_slice(env_text);
    chip[0xf_4000..0xf_4000 + dtb.len()].copy_from_slice(&dtb);
    chip[0xf_8000..0xf_8006].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    chip[0x10_0000..0x10_0000 + firmware.len()].copy_from_slice(&firmware);
    read_back(&env, &chip, "dump.bin");

    let out = env
        .cmd(["diff".as_ref(), release.as_os_str(), "dump.bin".as_ref()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("layout from the dump's device tree at 0xf4000"),
        "{text}"
    );
    assert!(
        text.contains("u-boot.bin found at 0x0: identical"),
        "{text}"
    );
    assert!(
        text.contains("`u-boot.bin` lies in the dump's own area `u-boot`"),
        "{text}"
    );
    assert!(
        text.contains("`firmware.img` lies in the dump's own area `firmware`"),
        "{text}"
    );
    let (code, json) = diff_json(&env, &release, "dump.bin", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(json["dump_tables"][0]["format"], "device-tree", "{json:#}");
    assert_eq!(json["dump_tables"][0]["areas"], 5);
    assert_eq!(span(&json, "u-boot-env")["region_kind"], "config");
    let art = span(&json, "art");
    assert_eq!(art["region_kind"], "device-data");
    assert_eq!(art["status"], "unexplained");
    assert_eq!(
        art["source"],
        "device tree at 0xf4000, partition art (/flash@0/partitions/partition@f8000)"
    );
    assert_eq!(json["coverage"]["masked"], 0);
    // The rest of the firmware partition after the release is fill.
    assert_eq!(span(&json, "firmware")["status"], "ok", "{json:#}");
}

/// Debian's OVMF as a flash (its variable store, then its code volumes, as `OVMF.fd` is
/// made): the release `OVMF_CODE.fd` found where the volumes are, the variable store named.
#[test]
fn ovmf_as_a_flash_is_read_by_its_volumes() {
    let vars = std::fs::read("/usr/share/OVMF/OVMF_VARS.fd").expect("ovmf is installed");
    let code = std::fs::read("/usr/share/OVMF/OVMF_CODE.fd").unwrap();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("release")).unwrap();
    env.write("release/OVMF_CODE.fd", &code);
    let mut chip = vars.clone();
    chip.extend(&code);
    env.write("dump.bin", &chip);
    let release = env.path("release");
    let (status, json) = diff_json(&env, &release, "dump.bin", &["--dump"]);
    assert_eq!(status, Some(0), "{json:#}");
    assert_eq!(json["placements"][0]["offset"], vars.len(), "{json:#}");
    let tables = json["dump_tables"].as_array().unwrap();
    assert_eq!(tables.len(), 3, "{json:#}");
    assert!(tables.iter().all(|t| t["format"] == "uefi-volume"));
    let store = &json["spans"][0];
    assert_eq!(store["region_kind"], "config", "{store:#}");
    assert!(
        store["source"]
            .as_str()
            .unwrap()
            .starts_with("UEFI variable store FV@0x0 at 0x0"),
        "{store:#}"
    );
    assert!(
        json["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("`OVMF_CODE.fd` lies in the dump's own areas `FV(")),
        "{json:#}"
    );
    assert_eq!(json["coverage"]["masked"], 0);
}

/// `verify --dump` of a dump with an FMAP and no `[flash]`: the attestation's `dump` record
/// says the layout came from the dump's FMAP, lists the table and each span's source, and
/// matches the documented schema.
#[test]
fn verify_records_a_layout_read_from_the_dump() {
    let demo = crate::support::Demo::locked("none");
    let unpacked = demo.unpack_bundle("unpacked");
    let firmware = std::fs::read(unpacked.join("firmware.img")).unwrap();
    demo.env.write(
        "flash.fmd",
        b"FLASH@0 0x100000 {\n\tFMAP@0 0x1000\n\tRO_VPD@0x1000 0xf000\n\tCOREBOOT(CBFS)@0x10000 0x70000\n\tUNUSED@0x80000 0x80000\n}\n",
    );
    run_ok(
        Command::new("fmaptool")
            .arg(demo.env.path("flash.fmd"))
            .arg(demo.env.path("flash.fmap")),
    );
    let fmap = std::fs::read(demo.env.path("flash.fmap")).unwrap();
    let mut dump = vec![0xffu8; 1 << 20];
    dump[..fmap.len()].copy_from_slice(&fmap);
    dump[0x1000..0x1016].copy_from_slice(b"MAC=52:54:00:12:34:56\n");
    dump[0x1_0000..0x1_0000 + firmware.len()].copy_from_slice(&firmware);
    demo.env.write("dump.bin", &dump);
    let recipe = demo.recipe().replace(
        "[[artifact]]\npath = \"out/acme-router-fw-1.0.0.tar.gz\"",
        "",
    );
    demo.set_recipe(&recipe);
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned"])
        .args(["--verifier-id", "https://lab.example/reprove"])
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("layout from the dump's FMAP at 0x0"),
        "{text}"
    );
    let att = std::fs::read_to_string(demo.env.path("att.intoto.jsonl")).unwrap();
    let rebuild: Value = att
        .lines()
        .map(|l| {
            let env: Value = serde_json::from_str(l).unwrap();
            let payload = crate::dump::base64_decode(env["payload"].as_str().unwrap());
            serde_json::from_slice::<Value>(&payload).unwrap()
        })
        .find(|s| s["predicate"]["dump"].is_object())
        .expect("the rebuild predicate records the dump");
    let schema: Value = serde_json::from_str(
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
    assert_eq!(d["layout"], "the dump's FMAP at 0x0", "{d:#}");
    assert_eq!(d["dump_tables"][0]["format"], "fmap");
    assert_eq!(d["dump_tables"][0]["used"], true);
    assert_eq!(
        d["coverage"]["masked"], 0,
        "the dump's own VPD masks nothing"
    );
    assert_eq!(span(d, "RO_VPD")["source"], "FMAP at 0x0, area RO_VPD");
    assert_eq!(span(d, "RO_VPD")["status"], "unexplained");
}
