//! `reprove key generate` and `reprove attest verify`, end to end, and interop with the
//! reference in-toto / securesystemslib implementation (see `tests/interop/`).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::OnceLock;

use base64::Engine as _;
use predicates::prelude::*;
use reprove::attest::bundle::{read_bundle, write_bundle};
use reprove::attest::check::REBUILD_PREDICATE_TYPE;
use reprove::attest::dsse::{envelope, Envelope};
use reprove::attest::key::SigningKey;
use reprove::attest::vsa::{vsa_statement, LEVEL_REPRODUCIBLE};
use reprove::attest::{Subject, STATEMENT_TYPE};
use reprove::hash::hash_bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::TestEnv;

const FIRMWARE: &[u8] = b"\x7fELF acme router firmware 4.2.1";

/// The two statements `verify` writes, about a file named `fw.img` holding `firmware`.
pub(crate) fn statements(firmware: &[u8]) -> Vec<Value> {
    let subjects = [Subject::from_hashes("fw.img", &hash_bytes(firmware))];
    let mut predicate = identical_predicate(&subjects[0]);
    // The summary of that verification: its verifier, package, recipe and lock.
    let policy = format!(
        "{}\n{}\n",
        predicate["recipe"]["digest"]["sha256"].as_str().unwrap(),
        predicate["lock"]["digest"]["sha256"].as_str().unwrap()
    );
    let vsa = vsa_statement(
        &subjects,
        "pkg:generic/acme-router-fw@1.0.0",
        &hash_bytes(policy.as_bytes()).sha256.hex(),
        "file:reprove.toml",
        true,
        time::macros::datetime!(2026-11-22 14:00 UTC),
        vec![LEVEL_REPRODUCIBLE.to_owned()],
    );
    predicate["verifier"]["id"] = vsa["predicate"]["verifier"]["id"].clone();
    let rebuild = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": REBUILD_PREDICATE_TYPE,
        "predicate": predicate,
    });
    vec![vsa, rebuild]
}

/// A real predicate (from the demo, shortened; `attest verify` parses it whole), made to say
/// one consistent thing: `subject` was rebuilt twice, both times as shipped.
fn identical_predicate(subject: &Subject) -> Value {
    let mut p: Value =
        serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json")).unwrap();
    p["verdict"] = json!("identical");
    let digest = json!({ "sha256": subject.sha256, "blake3": subject.blake3 });
    let mut a = p["artifacts"][0].clone();
    a["name"] = json!(subject.name);
    a["verdict"] = json!("identical");
    a["shipped"]["digest"] = digest.clone();
    a["rebuilt"] = json!([digest, digest]);
    a.as_object_mut().unwrap().remove("difference");
    p["artifacts"] = json!([a]);
    for r in p["rebuilds"].as_array_mut().unwrap() {
        r["artifacts"] = json!([{ "name": subject.name, "digest": digest }]);
    }
    p
}

fn sign_all(statements: &[Value], key: Option<&SigningKey>) -> Vec<Envelope> {
    statements
        .iter()
        .map(|s| envelope(&serde_json::to_vec(s).unwrap(), key))
        .collect()
}

/// A directory with `fw.img`, a key pair made by the CLI (`vendor`, `vendor.pub`), and
/// `att.intoto.jsonl` signed with it.
fn signed_env() -> (TestEnv, SigningKey) {
    let env = TestEnv::new().file("fw.img", FIRMWARE);
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let key = SigningKey::load(&env.path("vendor")).unwrap();
    write_bundle(
        &env.path("att.intoto.jsonl"),
        &sign_all(&statements(FIRMWARE), Some(&key)),
    )
    .unwrap();
    (env, key)
}

fn verify_cmd(env: &TestEnv, bundle: &str, key: &str) -> assert_cmd::Command {
    env.cmd([
        "attest",
        "verify",
        bundle,
        "--key",
        key,
        "--artifact",
        "fw.img",
    ])
}

#[test]
fn key_generate_writes_a_0600_private_key_and_a_public_key() {
    let env = TestEnv::new();
    let out = env
        .cmd(["key", "generate", "--out", "vendor"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mode = fs::metadata(env.path("vendor"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let private = fs::read_to_string(env.path("vendor")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let public = fs::read_to_string(env.path("vendor.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));

    let key = SigningKey::load(&env.path("vendor")).unwrap();
    assert_eq!(key.public_pem(), public);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!("public key: `vendor.pub`\nkeyid: {}\n", key.keyid())
    );
    // Nothing of the private key's body reaches either stream.
    let body = private.lines().nth(1).unwrap();
    assert!(!stdout.contains(body) && !String::from_utf8_lossy(&out.stderr).contains(body));
    // No temporary file is left behind.
    let mut names: Vec<_> = fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["vendor", "vendor.pub"]);
}

#[test]
fn key_generate_refuses_to_overwrite_without_force() {
    let env = TestEnv::new().file("vendor.pub", "mine");
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: refusing to overwrite `vendor.pub`, which already exists",
        ))
        .stderr(predicate::str::contains("hint: pass `--force`"));
    assert!(!env.path("vendor").exists(), "no half key pair");
    assert_eq!(fs::read_to_string(env.path("vendor.pub")).unwrap(), "mine");

    env.cmd(["key", "generate", "--out", "vendor", "--force"])
        .assert()
        .success();
    let mode = fs::metadata(env.path("vendor"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(fs::read_to_string(env.path("vendor.pub"))
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[test]
fn key_generate_json_names_the_files_and_keyid() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct KeyJson {
        schema_version: u32,
        private_key: String,
        public_key: String,
        keyid: String,
    }
    let env = TestEnv::new();
    let out = env
        .cmd(["--json", "key", "generate", "--out", "k"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: KeyJson = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.schema_version, 1);
    assert_eq!(json.public_key, "k.pub");
    assert_eq!(
        json.keyid,
        SigningKey::load(&env.path("k")).unwrap().keyid()
    );
}

#[test]
fn signed_bundle_with_the_right_artifact_verifies() {
    let (env, key) = signed_env();
    verify_cmd(&env, "att.intoto.jsonl", "vendor.pub")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "`att.intoto.jsonl`: verified\n",
        ))
        .stdout(predicate::str::contains(format!(
            "envelope 1: signed by {} (urn:reprove:verifier:unidentified), \
             https://slsa.dev/verification_summary/v1",
            key.keyid()
        )))
        .stdout(predicate::str::contains(
            "artifact `fw.img` matches subject `fw.img`",
        ))
        .stdout(predicate::str::contains(
            "verification summary: PASSED by urn:reprove:verifier:unidentified at \
             2026-11-22T14:00:00Z (levels: REPROVE_REPRODUCIBLE)",
        ))
        .stdout(predicate::str::contains("rebuild verdict: identical"));
}

#[test]
fn a_modified_artifact_is_rejected() {
    let (env, _) = signed_env();
    env.write("fw.img", b"\x7fELF acme router firmware 4.2.2");
    verify_cmd(&env, "att.intoto.jsonl", "vendor.pub")
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "`att.intoto.jsonl`: rejected\n",
        ))
        .stdout(predicate::str::contains(
            "- `fw.img` matches no subject of the attestation",
        ));
}

#[test]
fn verify_json_reports_every_check() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ReportJson {
        schema_version: u32,
        file: String,
        verified: bool,
        envelopes: Vec<EnvelopeJson>,
        subjects: Vec<SubjectJson>,
        artifacts: Vec<ArtifactJson>,
        summary: SummaryJson,
        rebuild_verdict: String,
        coverage: CoverageJson,
        problems: Vec<Value>,
    }
    #[derive(Deserialize, Debug, PartialEq, Eq)]
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
    struct EnvelopeJson {
        index: usize,
        signed_by: String,
        predicate_type: String,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SubjectJson {
        name: String,
        digest: std::collections::BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ArtifactJson {
        path: String,
        sha256: String,
        blake3: String,
        subject: String,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SummaryJson {
        verification_result: String,
        verifier_id: String,
        time_verified: String,
        verified_levels: Vec<String>,
    }

    let (env, key) = signed_env();
    let out = verify_cmd(&env, "att.intoto.jsonl", "vendor.pub")
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: ReportJson = serde_json::from_slice(&out.stdout).unwrap();
    let hashes = hash_bytes(FIRMWARE);
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.file, "att.intoto.jsonl");
    assert!(r.verified && r.problems.is_empty());
    assert_eq!(r.envelopes.len(), 2);
    assert_eq!(r.envelopes[1].index, 2);
    assert_eq!(r.envelopes[1].signed_by, key.keyid());
    assert_eq!(r.envelopes[1].predicate_type, REBUILD_PREDICATE_TYPE);
    assert_eq!(r.subjects.len(), 1);
    assert_eq!(r.subjects[0].name, "fw.img");
    assert_eq!(r.subjects[0].digest["sha256"], hashes.sha256.hex());
    assert_eq!(r.subjects[0].digest["blake3"], hashes.blake3.hex());
    assert_eq!(r.artifacts[0].path, "fw.img");
    assert_eq!(r.artifacts[0].sha256, hashes.sha256.to_string());
    assert_eq!(r.artifacts[0].blake3, hashes.blake3.to_string());
    assert_eq!(r.artifacts[0].subject, "fw.img");
    assert_eq!(r.summary.verification_result, "PASSED");
    assert_eq!(r.summary.verifier_id, "urn:reprove:verifier:unidentified");
    assert_eq!(r.summary.time_verified, "2026-11-22T14:00:00Z");
    // As the fixture's predicate records it.
    assert_eq!(
        r.coverage,
        CoverageJson {
            reproduced: 0,
            pinned: 0,
            masked: 0,
            erased: 0,
            unexplained: 3049
        }
    );
    assert_eq!(r.summary.verified_levels, [LEVEL_REPRODUCIBLE]);
    assert_eq!(r.rebuild_verdict, "identical");

    // A rejection lists its problems, with a stable code.
    env.write("fw.img", "other");
    let out = verify_cmd(&env, "att.intoto.jsonl", "vendor.pub")
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["verified"], false);
    assert_eq!(r["problems"][0]["code"], "artifact_unmatched");
    assert!(r["artifacts"][0].get("subject").is_none());
}

/// Each tampering, applied to a copy of the signed bundle, must be rejected with exit 1 and
/// the given message.
#[test]
fn tampered_bundles_are_rejected() {
    let (env, _) = signed_env();
    let good = read_bundle(&env.path("att.intoto.jsonl")).unwrap();
    let attacker = SigningKey::generate();

    // A statement about other firmware, signed by the same vendor key: to be spliced in.
    let vendor = SigningKey::load(&env.path("vendor")).unwrap();
    let other = sign_all(&statements(b"other firmware"), Some(&vendor));

    let with_digest_changed = |key: Option<&SigningKey>| {
        let mut statement: Value = serde_json::from_slice(&good[0].payload).unwrap();
        statement["subject"][0]["digest"]["sha256"] = json!(hash_bytes(b"evil").sha256.hex());
        let mut envs = good.clone();
        let payload = serde_json::to_vec(&statement).unwrap();
        match key {
            Some(key) => envs[0] = envelope(&payload, Some(key)),
            None => envs[0].payload = payload,
        }
        envs
    };

    let cases: Vec<(&str, Vec<Envelope>, &str)> = vec![
        (
            "flipped payload byte",
            {
                let mut envs = good.clone();
                envs[1].payload[10] ^= 0x01;
                envs
            },
            "envelope 2: no signature verifies with the given keys",
        ),
        (
            "flipped signature byte",
            {
                let mut envs = good.clone();
                envs[0].signatures[0].sig[5] ^= 0x80;
                envs
            },
            "envelope 1: no signature verifies with the given keys",
        ),
        (
            "subject digest changed, re-signed by an attacker",
            with_digest_changed(Some(&attacker)),
            "envelope 1: no signature verifies with the given keys",
        ),
        (
            "subject digest changed, not re-signed",
            with_digest_changed(None),
            "envelope 1: no signature verifies with the given keys",
        ),
        (
            "statement spliced in from another bundle",
            vec![good[0].clone(), other[1].clone()],
            "envelope 2: its subjects differ from those of envelope 1",
        ),
        (
            "unsigned",
            sign_all(&statements(FIRMWARE), None),
            "envelope 1: unsigned",
        ),
        (
            "a statement dropped",
            vec![good[0].clone()],
            "no signed `https://reprove.dev/attestation/rebuild/v1` statement",
        ),
        (
            "a malformed rebuild predicate, signed by the vendor",
            {
                let mut statements = statements(FIRMWARE);
                statements[1]["predicate"]["artifacts"][0]["verdict"] = json!("maybe");
                sign_all(&statements, Some(&vendor))
            },
            "envelope 2: invalid `https://reprove.dev/attestation/rebuild/v1` predicate: \
             artifacts[0].verdict: unknown variant `maybe`",
        ),
    ];
    for (what, envelopes, message) in cases {
        write_bundle(&env.path("bad.intoto.jsonl"), &envelopes).unwrap();
        let out = verify_cmd(&env, "bad.intoto.jsonl", "vendor.pub")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        assert!(stdout.contains(message), "{what}: {stdout}");
    }

    // The untouched bundle, checked with the wrong key.
    env.write("attacker.pub", attacker.public_pem());
    verify_cmd(&env, "att.intoto.jsonl", "attacker.pub")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "envelope 1: no signature verifies with the given keys",
        ));
    // Among several keys, the right one is found whatever the keyid says.
    verify_cmd(&env, "att.intoto.jsonl", "attacker.pub")
        .args(["--key", "vendor.pub"])
        .assert()
        .success();
}

/// See issue 8, item 7: a predicate that contradicts itself, re-signed with the vendor's own
/// key, is rejected (exit 1) with a message naming the contradiction. Each edit keeps the
/// summary `PASSED` and the top verdict passing, so nothing else gives it away.
#[test]
fn re_signed_contradictions_are_rejected() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let (env, vendor) = signed_env();
    let other = json!({ "sha256": hash_bytes(b"other").sha256.hex(), "blake3": hash_bytes(b"other").blake3.hex() });
    let equivalent = |p: &mut Value| {
        let other = json!({ "sha256": hash_bytes(b"rebuilt").sha256.hex(), "blake3": hash_bytes(b"rebuilt").blake3.hex() });
        p["verdict"] = json!("equivalent");
        p["artifacts"][0]["verdict"] = json!("equivalent");
        p["artifacts"][0]["rebuilt"] = json!([other, other]);
        for r in p["rebuilds"].as_array_mut().unwrap() {
            r["artifacts"][0]["digest"] = other.clone();
        }
        p["artifacts"][0]["difference"] = json!({
            "left": "rebuild 1: out/fw.img", "right": "fw.img", "verdict": "equivalent", "identical": 0,
            "leaves": [{
                "path": "fw.img", "change": "changed", "verdict": "equivalent",
                "causes": [{ "kind": "unknown" }],
                "content": { "left_size": 31, "right_size": 31, "differing_bytes": 1, "range_count": 1,
                             "ranges": [{ "offset": 30, "len": 1, "cause": { "kind": "unknown" } }] },
                "allowances": [{ "allowance": { "region": { "offset": 30, "length": 1 }, "reason": "r" },
                                 "ranges": [{ "offset": 30, "len": 1 }] }],
            }],
        });
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "an artifact `different` under an `identical` verdict",
            Box::new(|p| p["artifacts"][0]["verdict"] = json!("different")),
            "the verdict is `identical` but the worst artifact verdict is `different`",
        ),
        (
            "`identical` with other rebuilt digests",
            Box::new(move |p| {
                p["artifacts"][0]["rebuilt"] = json!([other, other]);
                for r in p["rebuilds"].as_array_mut().unwrap() {
                    r["artifacts"][0]["digest"] = other.clone();
                }
            }),
            "artifact `fw.img`: `identical`, but its rebuilt and shipped digests are not equal in \
             every rebuild",
        ),
        (
            "`identical` where only blake3 differs",
            Box::new(|p| {
                let blake3 = json!("0".repeat(64));
                p["artifacts"][0]["rebuilt"][0]["blake3"] = blake3.clone();
                p["artifacts"][0]["rebuilt"][1]["blake3"] = blake3.clone();
                for r in p["rebuilds"].as_array_mut().unwrap() {
                    r["artifacts"][0]["digest"]["blake3"] = blake3.clone();
                }
            }),
            "`identical`, but its rebuilt and shipped digests are not equal",
        ),
        (
            "`identical` although the second rebuild made other bytes",
            Box::new(|p| {
                let other = json!({ "sha256": "1".repeat(64), "blake3": "2".repeat(64) });
                p["artifacts"][0]["rebuilt"][1] = other.clone();
                p["rebuilds"][1]["artifacts"][0]["digest"] = other;
            }),
            "`identical`, but its rebuilt and shipped digests are not equal",
        ),
        (
            "a rebuilt digest the rebuild's own record does not hold",
            Box::new(|p| {
                p["rebuilds"][0]["artifacts"][0]["digest"]["sha256"] = json!("3".repeat(64));
            }),
            "its digest in rebuild 1 is not the one `rebuilds[0]` records",
        ),
        (
            "shipped digests that are not the subject's",
            Box::new(|p| {
                let other = json!({ "sha256": "4".repeat(64), "blake3": "5".repeat(64) });
                p["artifacts"][0]["shipped"]["digest"] = other.clone();
                p["artifacts"][0]["rebuilt"] = json!([other, other]);
                for r in p["rebuilds"].as_array_mut().unwrap() {
                    r["artifacts"][0]["digest"] = other.clone();
                }
            }),
            "artifact `fw.img`: no subject carries its shipped digests",
        ),
        (
            "`equivalent` with no allowance listed",
            Box::new(move |p| {
                equivalent(p);
                p["artifacts"][0]["difference"]["leaves"][0]["allowances"] = json!([]);
            }),
            "`equivalent`, but its leaf `fw.img` lists no allowance",
        ),
        (
            "`equivalent` with an allowance that covers other bytes",
            Box::new(move |p| {
                equivalent(p);
                p["artifacts"][0]["difference"]["leaves"][0]["allowances"][0]["ranges"] =
                    json!([{ "offset": 0, "len": 30 }]);
            }),
            "the bytes 30..31 of its leaf `fw.img` lie outside the allowances it lists",
        ),
        (
            "`equivalent` with a leaf that is `different`",
            Box::new(move |p| {
                equivalent(p);
                p["artifacts"][0]["difference"]["leaves"][0]["verdict"] = json!("different");
            }),
            "`equivalent`, but its leaf `fw.img` is `different`",
        ),
        (
            "`equivalent` with the rebuilt digests equal to the shipped ones",
            Box::new(move |p| {
                equivalent(p);
                let shipped = p["artifacts"][0]["shipped"]["digest"].clone();
                p["artifacts"][0]["rebuilt"] = json!([shipped, shipped]);
                for r in p["rebuilds"].as_array_mut().unwrap() {
                    r["artifacts"][0]["digest"] = shipped.clone();
                }
            }),
            "`equivalent`, but its rebuilt and shipped digests are equal",
        ),
    ];
    // The untouched story, and the equivalent one, hold.
    let statements = statements(FIRMWARE);
    verify_cmd(&env, "att.intoto.jsonl", "vendor.pub")
        .assert()
        .success();
    let mut good_equivalent = statements.clone();
    equivalent(&mut good_equivalent[1]["predicate"]);
    write_bundle(
        &env.path("eq.intoto.jsonl"),
        &sign_all(&good_equivalent, Some(&vendor)),
    )
    .unwrap();
    verify_cmd(&env, "eq.intoto.jsonl", "vendor.pub")
        .assert()
        .success();
    // Every case is tried, and every one that gets through is named.
    let mut passed = Vec::new();
    for (what, edit, message) in cases {
        let mut statements = statements.clone();
        edit(&mut statements[1]["predicate"]);
        write_bundle(
            &env.path("bad.intoto.jsonl"),
            &sign_all(&statements, Some(&vendor)),
        )
        .unwrap();
        let out = verify_cmd(&env, "bad.intoto.jsonl", "vendor.pub")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let named = stdout.contains("the rebuild predicate contradicts itself: ")
            && stdout.contains(message);
        if out.status.code() != Some(1) || !named {
            passed.push(format!("{what} (exit {:?}): {stdout}", out.status.code()));
        }
    }
    assert!(passed.is_empty(), "{}", passed.join("\n"));
}

#[test]
fn url_safe_unpadded_base64_is_accepted() {
    let (env, key) = signed_env();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut text = String::new();
    for e in read_bundle(&env.path("att.intoto.jsonl")).unwrap() {
        let line = json!({
            "payloadType": e.payload_type,
            "payload": url.encode(&e.payload),
            "signatures": [{"keyid": key.keyid(), "sig": url.encode(&e.signatures[0].sig)}],
        });
        text.push_str(&format!("{line}\n"));
    }
    assert!(
        text.contains('-') || text.contains('_'),
        "the URL-safe alphabet is exercised"
    );
    env.write("url.intoto.jsonl", text);
    verify_cmd(&env, "url.intoto.jsonl", "vendor.pub")
        .assert()
        .success();
}

#[test]
fn unreadable_input_exits_2_naming_the_file() {
    let (env, _) = signed_env();
    env.write("notjson.intoto.jsonl", "{\"payloadType\": \n");
    verify_cmd(&env, "notjson.intoto.jsonl", "vendor.pub")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: `notjson.intoto.jsonl` line 1: not a DSSE envelope: ",
        ));
    env.write(
        "bad.pub",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    );
    verify_cmd(&env, "att.intoto.jsonl", "bad.pub")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: `bad.pub` is not an Ed25519 public key in PEM `SubjectPublicKeyInfo`",
        ));
    env.cmd([
        "attest",
        "verify",
        "att.intoto.jsonl",
        "--key",
        "vendor.pub",
        "--artifact",
        "nope.img",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("error: failed to read `nope.img`"));
    // A trusted key is required: nothing passes unverified.
    env.cmd(["attest", "verify", "att.intoto.jsonl"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--key <PUB>"));
}

#[test]
fn sign_key_env_var_is_the_fallback() {
    let (env, key) = signed_env();
    let loaded = temp_env(Some(&env.path("vendor")), || {
        reprove::attest::key::signing_key_from(None)
    })
    .unwrap()
    .unwrap();
    assert_eq!(loaded.keyid(), key.keyid());
    assert!(
        temp_env(None, || reprove::attest::key::signing_key_from(None))
            .unwrap()
            .is_none()
    );
    // An explicit path wins over the variable.
    let other = env.path("other");
    fs::write(&other, "").unwrap();
    let err = temp_env(Some(&env.path("vendor")), || {
        reprove::attest::key::signing_key_from(Some(&other))
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("other` is not an Ed25519 private key"),
        "{err}"
    );
}

/// Run `f` with `REPROVE_SIGN_KEY` set to `value` (or unset); serialised, since the
/// environment is shared by the test threads.
fn temp_env<T>(value: Option<&Path>, f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &value {
        Some(v) => std::env::set_var("REPROVE_SIGN_KEY", v),
        None => std::env::remove_var("REPROVE_SIGN_KEY"),
    }
    let result = f();
    std::env::remove_var("REPROVE_SIGN_KEY");
    result
}

// Interop with the reference implementation. The venv is built once per pinned version set
// (tests/interop/requirements.txt) under target/tmp and reused: only the first run downloads.

/// Names the venv; change it with `tests/interop/requirements.txt`.
const INTEROP_VERSION: &str = "intoto3.1.0-sslib1.6.0-crypto50.0.2-ita0.9.3-pb7.36.2";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The venv's python, with the pinned packages installed (made once by
/// [`crate::support::python_venv`], which panics, never skips, when python3 or its venv module
/// is missing: the interop check is part of the suite).
fn interop_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        crate::support::python_venv(
            &format!("interop-venv-{INTEROP_VERSION}"),
            &interop_dir().join("requirements.txt"),
        )
    })
}

fn run_loudly(cmd: &mut Process, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn python_script(script: &str) -> Process {
    let mut cmd = Process::new(interop_python());
    cmd.arg(interop_dir().join(script));
    cmd
}

#[test]
fn interop_reference_implementation_verifies_our_envelopes() {
    let (env, key) = signed_env();
    let out = python_script("verify_bundle.py")
        .arg(env.path("vendor.pub"))
        .arg(env.path("att.intoto.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("line 2: ok, https://reprove.dev/attestation/rebuild/v1"),
        "{stdout}"
    );
    // The key files are read by OpenSSL-backed tools too.
    run_loudly(
        python_script("check_private_key.py")
            .arg(env.path("vendor"))
            .arg(env.path("vendor.pub")),
        "tests/interop/check_private_key.py",
    );

    // ...and rejects them once tampered with.
    let mut envs = read_bundle(&env.path("att.intoto.jsonl")).unwrap();
    envs[1].payload[10] ^= 0x01;
    write_bundle(&env.path("bad.intoto.jsonl"), &envs).unwrap();
    let out = python_script("verify_bundle.py")
        .arg(env.path("vendor.pub"))
        .arg(env.path("bad.intoto.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("line 2: securesystemslib rejects"),
        "{stdout}"
    );

    // The Statement layer is checked too: well signed, but no in-toto Statement v1 (an
    // unknown field, no subject).
    for (edit, expected) in [
        (json!({"surprise": true}), "no field named \"surprise\""),
        (json!({"subject": []}), "At least one subject required"),
    ] {
        let mut wrong = statements(FIRMWARE);
        for (k, v) in edit.as_object().unwrap() {
            wrong[1][k] = v.clone();
        }
        write_bundle(&env.path("odd.intoto.jsonl"), &sign_all(&wrong, Some(&key))).unwrap();
        let out = python_script("verify_bundle.py")
            .arg(env.path("vendor.pub"))
            .arg(env.path("odd.intoto.jsonl"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains("line 2: in-toto-attestation rejects the statement")
                && stdout.contains(expected),
            "{expected}: {stdout}"
        );
    }
}

#[test]
fn interop_we_verify_envelopes_signed_by_the_reference_implementation() {
    let env = TestEnv::new().file("fw.img", FIRMWARE);
    let mut cmd = python_script("sign_bundle.py");
    cmd.arg(env.path("py.pub")).arg(env.path("py.intoto.jsonl"));
    for (i, statement) in statements(FIRMWARE).iter().enumerate() {
        let path = env.path(&format!("statement{i}.json"));
        fs::write(&path, serde_json::to_vec_pretty(statement).unwrap()).unwrap();
        cmd.arg(path);
    }
    run_loudly(&mut cmd, "tests/interop/sign_bundle.py");

    let public = fs::read_to_string(env.path("py.pub")).unwrap();
    let keyid = reprove::attest::key::VerifyingKey::from_pem(&public)
        .unwrap()
        .keyid()
        .to_owned();
    let bundle = fs::read_to_string(env.path("py.intoto.jsonl")).unwrap();
    assert!(
        bundle.contains(&format!("\"keyid\":\"{keyid}\"")),
        "same keyid rule: {bundle}"
    );
    verify_cmd(&env, "py.intoto.jsonl", "py.pub")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "envelope 2: signed by {keyid}"
        )));
    // Not a rubber stamp: another key does not pass.
    env.cmd(["key", "generate", "--out", "mine"])
        .assert()
        .success();
    verify_cmd(&env, "py.intoto.jsonl", "mine.pub")
        .assert()
        .code(1);
}
