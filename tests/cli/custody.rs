//! Chain of custody (issue 10, items 3 and 4): pinned blobs, the coverage every verification
//! ends with, and `--provenance` signed into the attestation. The real binary on the real demo.

use reprove::attest::bundle::{read_bundle, write_bundle};
use serde_json::{json, Value};

use crate::support::{Demo, TestEnv, BUNDLE};

/// A recipe (no escrow, no lock needed: it is refused when read) pinning `blob` as a blob.
fn recipe_pinning(blob: &str) -> String {
    format!(
        "[package]\nname = \"fw\"\nversion = \"1\"\n\
         [source]\npath = \"escrow\"\n\
         digest = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n\
         [toolchain]\nisolation = \"none\"\n\
         [build]\ncommand = [\"make\"]\n\
         [[artifact]]\npath = \"out/firmware.img\"\n\
         [[blob]]\nname = \"{blob}\"\nreason = \"not rebuilt\"\n\
         digest = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n"
    )
}

/// See issue 10, item 3: a blob is checked against its pin and never compared with a rebuild,
/// so a recipe that pins an artifact's own shipped name as a blob would take the artifact out
/// of the comparison. It is refused when the recipe is read: exit 2, the key named, nothing
/// written.
#[test]
fn a_blob_named_as_an_artifact_is_refused() {
    let env = TestEnv::new()
        .file("reprove.toml", recipe_pinning("firmware.img"))
        .file("firmware.img", "shipped");
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--shipped",
            "firmware.img",
        ])
        .args(["--out", "att.intoto.jsonl"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("key `blob[0].name`")
            && stderr.contains("`firmware.img` is shipped by `[[artifact]]`"),
        "{stderr}"
    );
    assert!(!env.path("att.intoto.jsonl").exists());
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", reprove::hash::hash_bytes(bytes).sha256.hex())
}

/// Run `cmd`, insist on exit `code` (showing stderr when not), and return stdout.
fn stdout_of(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// See issue 10, items 3 and 4, on one demo (one lock, two rebuilds): a blob shipped beside the
/// bundle is pinned, not reproduced, and the release stays `identical`; the coverage counts it;
/// the provenance given as text and as a file is signed in, shown by `attest verify`, and an
/// edit of it breaks the signature. Then the blob's bytes change (exit 1, both digests shown,
/// its bytes unexplained, and a replay of the first attestation says the blob is not as
/// recorded), and a blob the shipped set lacks is a recipe error before building.
#[test]
fn a_pinned_blob_is_covered_and_the_provenance_signed() {
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let radio = b"vendor radio firmware 7.1, not built from the escrow\n".repeat(40);
    env.write("shipped/radio.bin", &radio);
    env.write(
        "custody.txt",
        "read with flashrom 1.3 (ch341a) from SN-42\ntaken by J. Doe, 2026-12-01\n",
    );
    demo.set_recipe(&format!(
        "{}\n[[blob]]\nname = \"radio.bin\"\ndigest = \"{}\"\nreason = \"the radio vendor's \
         firmware, shipped as a binary\"\n",
        demo.recipe(),
        sha256(&radio)
    ));
    let signed = |out: &str| {
        let mut cmd = env.cmd([
            "verify",
            "operator/reprove.toml",
            "--sign-key",
            "vendor",
            "--verifier-id",
            "https://lab.example/reprove",
        ]);
        cmd.args(["--out", out, "--shipped", BUNDLE, "shipped/radio.bin"]);
        cmd
    };
    let said = "bundle from the vendor portal, 2026-11-30";
    let v: Value = serde_json::from_str(&stdout_of(
        signed("att.intoto.jsonl")
            .args(["--json", "--html", "report.html"])
            .args(["--provenance", said, "--provenance", "custody.txt"]),
        0,
    ))
    .unwrap();
    assert_eq!(v["verdict"], "identical", "{v}");
    let blob = &v["blobs"][0];
    assert_eq!(blob["outcome"], "pinned");
    assert_eq!(blob["pinned"], sha256(&radio));
    assert_eq!(blob["shipped"]["name"], "shipped/radio.bin");
    let bundle_size = std::fs::metadata(env.path(BUNDLE)).unwrap().len();
    let radio_size = radio.len() as u64;
    assert_eq!(
        v["coverage"],
        json!({"reproduced": bundle_size, "pinned": radio_size, "masked": 0, "erased": 0,
               "unexplained": 0, "total": bundle_size + radio_size})
    );
    let records = &v["provenance"]["records"];
    assert_eq!(records[0], json!({ "text": said }));
    assert_eq!(records[1]["file"]["name"], "custody.txt");
    assert!(records[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("read with flashrom"));
    let mut predicate = v.clone();
    predicate.as_object_mut().unwrap().remove("attestation");
    let found =
        crate::attest_schema::errors(&crate::attest_schema::validator("predicate"), &predicate);
    assert!(found.is_empty(), "{found:#?}");
    let page = std::fs::read_to_string(env.path("report.html")).unwrap();
    assert!(page.contains("pinned, not reproduced"), "{page}");
    assert!(page.contains("coverage of"));
    assert!(page.contains("SN-42"));

    let shown = stdout_of(
        env.cmd([
            "attest",
            "verify",
            "att.intoto.jsonl",
            "--key",
            "vendor.pub",
        ])
        .args(["--artifact", "shipped/radio.bin"]),
        0,
    );
    assert!(
        shown.contains("matches subject `radio.bin`")
            && shown.contains("blob `radio.bin`: pinned, not reproduced")
            && shown.contains(&format!("provenance: {said}\n"))
            && shown.contains("provenance: read with flashrom 1.3 (ch341a) from SN-42 / taken by")
            && shown.contains(&format!("% pinned ({radio_size} bytes)")),
        "{shown}"
    );

    // The custody statement, edited after signing: the signature no longer holds.
    let path = env.path("att.intoto.jsonl");
    let mut envelopes = read_bundle(&path).unwrap();
    let rebuild = envelopes
        .iter_mut()
        .find(|e| String::from_utf8_lossy(&e.payload).contains("provenance"))
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&rebuild.payload).unwrap();
    statement["predicate"]["provenance"]["records"][0]["text"] =
        json!("bundle from a USB stick found in the car park");
    rebuild.payload = serde_json::to_vec(&statement).unwrap();
    write_bundle(&path, &envelopes).unwrap();
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
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"][0]["code"], "bad_signature", "{report}");

    // Other bytes under the blob's name: a failure, both digests shown, nothing pinned.
    let mut other = radio.clone();
    other[0] ^= 0x20;
    env.write("shipped/radio.bin", &other);
    // Replayed from the first attestation: the same inputs, and the blob no longer as recorded.
    let text = stdout_of(
        env.cmd([
            "verify",
            "--from-attestation",
            "att.intoto.jsonl",
            "--color=never",
        ])
        .args([
            "--sign-key",
            "vendor",
            "--verifier-id",
            "https://lab.example/reprove",
        ])
        .args(["--out", "changed.intoto.jsonl"]),
        1,
    );
    assert!(
        text.contains("blob `radio.bin` outcome: recorded pinned, found different")
            && text.contains(&format!(
                "blob `radio.bin` shipped sha256: recorded {}",
                &sha256(&radio)["sha256:".len()..]
            )),
        "{text}"
    );
    assert!(
        text.starts_with("acme-router-fw 1.0.0: different\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "pinned {}, shipped {} (`shipped/radio.bin`)",
            sha256(&radio),
            sha256(&other)
        )),
        "{text}"
    );
    assert!(
        text.contains("0.0% pinned (0 bytes), 0.0% masked (0 bytes), 0.0% erased (0 bytes), ")
            && text.contains(&format!("unexplained ({radio_size} bytes)")),
        "{text}"
    );
    assert!(text.contains("  firmware.img") && text.contains("identical"));

    // A blob the shipped set lacks: the recipe is wrong, said before anything is built.
    let out = env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "--unsigned",
            "--out",
            "none.intoto.jsonl",
        ])
        .args(["--shipped", BUNDLE])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("key `blob[0].name`: the blob `radio.bin` names no file of the shipped set"),
        "{stderr}"
    );
    assert!(!env.path("none.intoto.jsonl").exists());
}

/// A provenance file that cannot be used is one clear error, exit 2, before anything is read
/// or built.
#[test]
fn an_unusable_provenance_file_is_refused_before_building() {
    let env = TestEnv::new().file("custody.bin", b"serial \xff\xfe");
    let out = env
        .cmd([
            "verify",
            "missing.toml",
            "--unsigned",
            "--shipped",
            "fw.img",
        ])
        .args(["--provenance", "custody.bin"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the provenance file `custody.bin` is not UTF-8 text (byte 7)"),
        "{stderr}"
    );
}
