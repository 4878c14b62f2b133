//! `attest verify ATT --key PUB --dump DUMP` with no `--artifact` (issue 10 item 1): the
//! attested subjects found in a flash dump by the locators the signed attestation carries,
//! each confirmed by its sha256 and blake3. The dump is a 16 MiB SPI flash holding Debian's
//! U-Boot, device data, the demo's `firmware.img` and 0xff fill, read back through `flashrom`.

use std::path::Path;

use reprove::attest::bundle::{read_bundle, write_bundle};
use reprove::attest::dsse::envelope;
use reprove::attest::key::SigningKey;
use serde_json::Value;

use crate::dump::{read_back, UBOOT};
use crate::support::{Demo, BUNDLE};

const FLASH: usize = 16 << 20;
/// Not aligned to anything: found by the anchors wherever it is.
const FIRMWARE_AT: usize = 0x10_0040;
const FACTORY_AT: usize = 0xf_0000;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The flash: U-Boot at 0, the factory data, `firmware` (when given), fill.
fn flash(firmware: Option<&[u8]>) -> Vec<u8> {
    let mut chip = vec![0xffu8; FLASH];
    let uboot = std::fs::read(UBOOT).expect("u-boot-qemu is installed");
    chip[..uboot.len()].copy_from_slice(&uboot);
    let factory = b"MAC=52:54:00:12:34:56\nSERIAL=ACME-000417\n";
    chip[FACTORY_AT..FACTORY_AT + factory.len()].copy_from_slice(factory);
    if let Some(fw) = firmware {
        chip[FIRMWARE_AT..FIRMWARE_AT + fw.len()].copy_from_slice(fw);
    }
    chip
}

/// The rebuild statement of the bundle at `path`.
fn rebuild_statement(path: &Path) -> Value {
    read_bundle(path)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.payload).unwrap())
        .find(|s| s["predicateType"] == "https://reprove.dev/attestation/rebuild/v1")
        .unwrap()
}

/// The locator's anchor offsets of `firmware.img`, read through the strict JSON structs.
fn anchors(statement: &Value) -> Vec<u64> {
    let artifacts: Vec<crate::json::Artifact> =
        serde_json::from_value(statement["predicate"]["artifacts"].clone()).unwrap();
    let fw = artifacts.iter().find(|a| a.name == "firmware.img").unwrap();
    let locator = fw.shipped.as_ref().unwrap().locator.as_ref().unwrap();
    assert_eq!((locator.algorithm.as_str(), locator.window), ("gear64", 64));
    locator.anchors.iter().map(|a| a.offset).collect()
}

#[test]
fn attest_verify_finds_the_subjects_in_a_dump_without_their_files() {
    let demo = Demo::locked("none");
    // The bundle is shipped, not attested as an artifact: the subject is its member.
    let recipe = demo.recipe().replace(
        "[[artifact]]\npath = \"out/acme-router-fw-1.0.0.tar.gz\"",
        "",
    );
    demo.set_recipe(&recipe);
    let env = &demo.env;
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let verify = |out: &str, redact: bool| {
        let mut cmd = env.cmd(["verify", "operator/reprove.toml", "--sign-key", "vendor"]);
        cmd.args(["--verifier-id", "https://lab.example/reprove", "--out", out]);
        if redact {
            cmd.arg("--redact");
        }
        // The shipped bundle: its member is unpacked, located, and gone once verify ends.
        cmd.args(["--shipped", BUNDLE]).assert().code(0);
    };
    verify("att.intoto.jsonl", false);
    let firmware = std::fs::read(demo.unpack_bundle("unpacked").join("firmware.img")).unwrap();
    std::fs::remove_dir_all(env.path("unpacked")).unwrap();
    let statement = rebuild_statement(&env.path("att.intoto.jsonl"));
    let offsets = anchors(&statement);
    let n = offsets.len();
    assert!(n >= 8, "{offsets:?}");

    read_back(env, &flash(Some(&firmware)), "dump.bin");
    let attest = |att: &str, dump: &str, extra: &[&str]| {
        env.cmd([
            "attest",
            "verify",
            att,
            "--key",
            "vendor.pub",
            "--dump",
            dump,
        ])
        .args(extra)
        .output()
        .unwrap()
    };

    // Found where it is, by every anchor, and confirmed by both digests.
    let out = attest("att.intoto.jsonl", "dump.bin", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "firmware.img found at {FIRMWARE_AT:#x} by {n} of {n} anchors: identical (the sha256 and blake3 of its {} bytes there match",
            firmware.len()
        )),
        "{text}"
    );
    assert!(text.contains("dump: identical"), "{text}");
    let out = attest("att.intoto.jsonl", "dump.bin", &["--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &json["dump"]["placements"][0];
    assert_eq!(p["placed_by"], "locator", "{p}");
    assert_eq!(p["offset"], FIRMWARE_AT, "{p}");
    assert_eq!(
        (p["votes"].as_u64(), p["anchors"].as_u64()),
        (Some(n as u64), Some(n as u64))
    );
    assert_eq!(json["dump"]["coverage"]["reproduced"], firmware.len());

    // A layout that places it: hashed there, nowhere searched.
    env.write(
        "layout.toml",
        format!(
            "[flash]\nsize = 0x1000000\n\n[[flash.region]]\nname = \"factory\"\noffset = {FACTORY_AT:#x}\nsize = 0x10000\nkind = \"device-data\"\nreason = \"the MAC address\"\n\n[[flash.region]]\nname = \"firmware\"\noffset = {FIRMWARE_AT:#x}\nsize = 0x100000\nkind = \"release\"\nartifact = \"firmware.img\"\n"
        ),
    );
    let out = attest(
        "att.intoto.jsonl",
        "dump.bin",
        &["--flash-layout", "layout.toml"],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "firmware.img placed by the layout at {FIRMWARE_AT:#x}: identical"
        )),
        "{text}"
    );
    assert!(text.contains("masked: the MAC address"), "{text}");

    // No false pass: one byte changed away from every anchor window. Every anchor still
    // agrees on the place; the digests do not, and nothing but `different` can be said.
    let at = (0..firmware.len() as u64)
        .rev()
        .find(|i| offsets.iter().all(|o| !(*o..o + 64).contains(i)))
        .unwrap();
    let mut changed = firmware.clone();
    changed[usize::try_from(at).unwrap()] ^= 0x20;
    read_back(env, &flash(Some(&changed)), "changed.bin");
    let out = attest("att.intoto.jsonl", "changed.bin", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "firmware.img found at {FIRMWARE_AT:#x} by {n} of {n} anchors, content differs: different"
        )),
        "{text}"
    );
    assert!(text.contains("give it with `--artifact FILE`"), "{text}");
    assert!(text.contains("dump: different"), "{text}");
    let out = attest("att.intoto.jsonl", "changed.bin", &["--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dump"]["placements"][0]["verdict"], "different");
    assert_eq!(json["dump"]["coverage"]["reproduced"], 0);

    // The release absent from the dump: missing.
    read_back(env, &flash(None), "absent.bin");
    let out = attest("att.intoto.jsonl", "absent.bin", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("firmware.img not found in the dump (no two anchors of its locator agree on a place): missing"),
        "{text}"
    );

    // An attestation from before locators (the field removed, signed anew): one line, exit 2.
    let key = SigningKey::load(&env.path("vendor")).unwrap();
    let old: Vec<_> = read_bundle(&env.path("att.intoto.jsonl"))
        .unwrap()
        .iter()
        .map(|e| {
            let mut s: Value = serde_json::from_slice(&e.payload).unwrap();
            for a in s["predicate"]["artifacts"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                a["shipped"].as_object_mut().map(|m| m.remove("locator"));
            }
            envelope(&serde_json::to_vec(&s).unwrap(), Some(&key))
        })
        .collect();
    write_bundle(&env.path("old.intoto.jsonl"), &old).unwrap();
    // Still a good attestation, and with the file the dump is checked as before.
    env.cmd([
        "attest",
        "verify",
        "old.intoto.jsonl",
        "--key",
        "vendor.pub",
    ])
    .assert()
    .code(0);
    let out = attest("old.intoto.jsonl", "dump.bin", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("carries no subject locators"), "{err}");
    assert!(err.contains("`--artifact FILE`"), "{err}");

    // Redacted: the locator is kept (digests of the shipped bytes, no names), and works.
    verify("red.intoto.jsonl", true);
    let red = rebuild_statement(&env.path("red.intoto.jsonl"));
    assert_eq!(red["predicate"]["redacted"], true);
    assert_eq!(anchors(&red), offsets);
    let out = attest("red.intoto.jsonl", "dump.bin", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "firmware.img found at {FIRMWARE_AT:#x} by {n} of {n} anchors: identical"
        )),
        "{text}"
    );
}
