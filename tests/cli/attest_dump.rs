//! A failed dump check, as the readers of attestations see it (new-user findings §3, §5b):
//! `verify --dump` signs `FAILED` over a rebuild verdict `identical` when the flash held a
//! tampered copy. That attestation is a valid record of a failed verification: `attest verify`
//! says so and prints the signed dump result, `report` lists it `failed` with the dump's
//! verdict first, `--policy` fails it on the verdict, not the signature; and a `PASSED`
//! summary spliced over its predicate is rejected.

use std::path::PathBuf;

use reprove::attest::bundle::{read_bundle, write_bundle};
use reprove::attest::dsse::envelope;
use reprove::attest::key::SigningKey;
use serde_json::Value;

use super::dump::stdout;
use crate::support::Demo;

const LAB: &str = "https://lab.example/flash";

/// The demo verified with `--dump` over a 1 MiB flash whose copy of the firmware has one byte
/// changed; the signed attestation `att.intoto.jsonl`, the key `vendor`, the shipped firmware.
fn failed_dump_attestation() -> (Demo, PathBuf) {
    let demo = Demo::locked("none");
    let unpacked = demo.unpack_bundle("unpacked");
    let firmware = std::fs::read(unpacked.join("firmware.img")).unwrap();
    let mut dump = vec![0xffu8; 1 << 20];
    dump[0x1_0000..0x1_0000 + firmware.len()].copy_from_slice(&firmware);
    dump[0x1_0000 + 0x200] ^= 0x01;
    demo.env.write("dump.bin", &dump);
    let recipe = demo.recipe().replace(
        "[[artifact]]\npath = \"out/acme-router-fw-1.0.0.tar.gz\"",
        "",
    );
    demo.set_recipe(&format!("{recipe}\n[flash]\nsize = 0x100000\n"));
    demo.env
        .cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--sign-key", "vendor"])
        .args(["--verifier-id", LAB, "--out", "att.intoto.jsonl"])
        .args(["--dump", "dump.bin", "--shipped"])
        .arg(unpacked.join("firmware.img"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    (demo, unpacked.join("firmware.img"))
}

fn statements(bundle: &[reprove::attest::dsse::Envelope]) -> Vec<Value> {
    bundle
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect()
}

#[test]
fn a_failed_dump_check_is_a_failed_verification_not_a_forgery() {
    let (demo, firmware) = failed_dump_attestation();
    let env = &demo.env;
    let bundle = read_bundle(&env.path("att.intoto.jsonl")).unwrap();
    let signed = statements(&bundle);
    let rebuild = signed
        .iter()
        .find(|s| s["predicate"]["dump"].is_object())
        .expect("the predicate records the dump");
    assert_eq!(rebuild["predicate"]["verdict"], "identical");
    assert_eq!(rebuild["predicate"]["dump"]["verdict"], "different");
    let dump_sha = rebuild["predicate"]["dump"]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();

    // `attest verify`: valid, failed, with the signed dump result and no contradiction.
    let out = env
        .cmd([
            "attest",
            "verify",
            "att.intoto.jsonl",
            "--key",
            "vendor.pub",
        ])
        .arg("--artifact")
        .arg(&firmware)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`att.intoto.jsonl`: failed (a valid attestation of a failed verification)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("dump `dump.bin` sha256:{dump_sha}: different")),
        "{text}"
    );
    assert!(
        text.contains("`firmware.img` at 0x10000: different, 1 byte differ"),
        "{text}"
    );
    assert!(!text.contains("but the rebuild verdict is"), "{text}");
    let out = env
        .cmd([
            "attest",
            "verify",
            "att.intoto.jsonl",
            "--key",
            "vendor.pub",
            "--json",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["recorded_dump"]["verdict"], "different", "{json}");
    assert_eq!(
        json["recorded_dump"]["sha256"],
        format!("sha256:{dump_sha}")
    );
    assert_eq!(json["recorded_dump"]["placements"][0]["offset"], 0x1_0000);
    let codes: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["verification_failed"], "{json}");

    // `report`: failed, and the row leads with the dump's verdict.
    let out = env
        .cmd(["report", "att.intoto.jsonl", "--key", "vendor.pub"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("acme-router-fw"))
        .expect("a row");
    assert!(row.starts_with("failed"), "{text}");
    assert!(row.contains("dump different (rebuild identical)"), "{text}");
    let out = env
        .cmd([
            "report",
            "att.intoto.jsonl",
            "--key",
            "vendor.pub",
            "--json",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &json["attestations"][0];
    assert_eq!(entry["status"], "failed", "{json}");
    assert_eq!(entry["dump_verdict"], "different", "{json}");

    // `--policy`: the signature holds; the verdict is what fails, and it names the dump.
    env.write(
        "policy.toml",
        format!("threshold = 1\n\n[[verifier]]\nid = \"{LAB}\"\nkey = \"vendor.pub\"\n"),
    );
    let out = env
        .cmd(["attest", "verify", "--policy", "policy.toml", "--json"])
        .arg("att.intoto.jsonl")
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{json}");
    let outcome = |name: &str| {
        json["attestations"][0]["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["requirement"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(outcome("signature")["outcome"], "met", "{json}");
    assert_eq!(outcome("verdict")["outcome"], "not_met", "{json}");
    let detail = outcome("verdict")["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("the flash dump `dump.bin` is `different`"),
        "{detail}"
    );
    assert_eq!(
        outcome("verifier")["detail"],
        format!("signed by `{LAB}`"),
        "no name set: the id once, {json}"
    );

    // The splice: the same predicate under a re-signed `PASSED` summary is rejected.
    let key = SigningKey::load(&env.path("vendor")).unwrap();
    let spliced: Vec<_> = signed
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if s["predicateType"] == "https://slsa.dev/verification_summary/v1" {
                s["predicate"]["verificationResult"] = Value::from("PASSED");
                s["predicate"]["verifiedLevels"] = serde_json::json!(["REPROVE_REPRODUCIBLE"]);
            }
            envelope(&serde_json::to_vec(&s).unwrap(), Some(&key))
        })
        .collect();
    write_bundle(&env.path("spliced.intoto.jsonl"), &spliced).unwrap();
    let out = env
        .cmd([
            "attest",
            "verify",
            "spliced.intoto.jsonl",
            "--key",
            "vendor.pub",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("`spliced.intoto.jsonl`: rejected"), "{text}");
    assert!(
        text.contains(
            "the verification summary records `PASSED` but the rebuild verdict is `identical` \
             and the dump's is `different`"
        ),
        "{text}"
    );
    let out = env
        .cmd(["report", "spliced.intoto.jsonl", "--key", "vendor.pub"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("rejected"), "{}", stdout(&out));

    // §5b: a tampered `--artifact` with `--dump`: the rejection and its exit 1 first, then the
    // dump part says it had nothing vouched for to look for (never exit 2).
    let mut tampered = std::fs::read(&firmware).unwrap();
    tampered[0x200] ^= 0x01;
    env.write("fw-tampered.img", &tampered);
    let out = env
        .cmd([
            "attest",
            "verify",
            "att.intoto.jsonl",
            "--key",
            "vendor.pub",
        ])
        .args(["--artifact", "fw-tampered.img", "--dump", "dump.bin"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("matches no subject"), "{text}");
    let (report_at, dump_at) = (
        text.find("problems:").expect("the report"),
        text.find("dump `dump.bin`: not checked")
            .expect("the dump part"),
    );
    assert!(report_at < dump_at, "{text}");
    assert!(text.contains("vouches for nothing to look for"), "{text}");
}
