//! `reprove attest verify --policy` over the attestations of three labs, and `reprove attest
//! export --cyclonedx` checked by the official CycloneDX schema (see issue 12, items 2 and 5).
//!
//! The demo is locked once and verified for real twice: by lab A in the sandbox, and by lab C
//! with `isolation = "none"`. The other attestations are derived from lab A's real one (its
//! statements, re-signed with another lab's real key, some with one field changed), so the
//! whole file costs two verifications.

use std::path::Path;
use std::sync::OnceLock;

use reprove::attest::bundle::{read_bundle, write_bundle};
use reprove::attest::dsse::{envelope, Envelope};
use reprove::attest::key::SigningKey;
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::{python_venv, run_ok, Demo, BUNDLE};

/// `attest verify --policy … --json`, read strictly: a change of the format breaks this test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionJson {
    schema_version: u32,
    policy: String,
    accepted: bool,
    threshold: usize,
    now: String,
    verifiers: Vec<VerifierJson>,
    attestations: Vec<AttestationJson>,
    releases: Vec<ReleaseJson>,
    decision: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierJson {
    id: String,
    name: Option<String>,
    keyid: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationJson {
    file: String,
    verifier: Option<String>,
    verdict: Option<String>,
    time_verified: Option<String>,
    redacted: Option<bool>,
    qualifies: bool,
    counted: bool,
    release: Option<usize>,
    requirements: Vec<RequirementJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementJson {
    requirement: String,
    outcome: String,
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseJson {
    subjects: Vec<Value>,
    verifiers: Vec<String>,
    meets_threshold: bool,
}

const LAB_A: &str = "https://lab-a.example";
const LAB_B: &str = "https://lab-b.example";
const LAB_C: &str = "https://lab-c.example";

const POLICY: &str = r#"# Two of our three labs must agree, within 90 days.
threshold = 2
max-age = "90d"

[[verifier]]
id = "https://lab-a.example"
name = "Lab A"
key = "keys/lab-a.pub"

[[verifier]]
id = "https://lab-b.example"
name = "Lab B"
key = "keys/lab-b.pub"

[[verifier]]
id = "https://lab-c.example"
key = "keys/lab-c.pub"
"#;

/// `bundle`'s statements, each naming verifier `id` and changed by `edit`, signed anew with
/// `key`.
fn resign(
    bundle: &[Envelope],
    key: &SigningKey,
    id: &str,
    edit: impl Fn(&mut Value),
) -> Vec<Envelope> {
    bundle
        .iter()
        .map(|e| {
            let mut statement: Value = serde_json::from_slice(&e.payload).unwrap();
            statement["predicate"]["verifier"]["id"] = Value::String(id.to_owned());
            edit(&mut statement);
            envelope(&serde_json::to_vec(&statement).unwrap(), Some(key))
        })
        .collect()
}

/// The VSA's `timeVerified`.
fn time_verified(bundle: &[Envelope]) -> OffsetDateTime {
    let vsa: Value = serde_json::from_slice(&bundle[0].payload).unwrap();
    let text = vsa["predicate"]["timeVerified"].as_str().unwrap();
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The python of a venv with the pinned CycloneDX validator (built once, under target/tmp).
fn cyclonedx_python() -> &'static Path {
    /// Names the venv; change it with `tests/interop/cyclonedx-requirements.txt`.
    const CYCLONEDX_VERSION: &str = "cyclonedx-venv-lib11.12.0-jsonschema4.26.0";
    static PYTHON: OnceLock<std::path::PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        python_venv(
            CYCLONEDX_VERSION,
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/cyclonedx-requirements.txt"),
        )
    })
}

/// `validate_cyclonedx.py FILE`: (exit success, output).
fn validate_cyclonedx(file: &Path) -> (bool, String) {
    let out = std::process::Command::new(cyclonedx_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/validate_cyclonedx.py"))
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// See issue 12: three attestations from three labs and a policy requiring two of them; 2 of 3
/// met, 2 of 3 not met, an untrusted key, a stale attestation, an `isolation = none`
/// attestation refused, a duplicate counted once, a spliced and an altered bundle; then the
/// accepted attestation exported as CycloneDX and validated by the official schema.
#[test]
fn a_policy_decides_over_three_labs_and_an_attestation_exports_as_cyclonedx() {
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    std::fs::create_dir_all(env.path("keys")).unwrap();
    for lab in ["a", "b", "c", "x"] {
        env.cmd(["key", "generate", "--out", &format!("keys/lab-{lab}")])
            .assert()
            .success();
    }
    let key = |lab: &str| SigningKey::load(&env.path(&format!("keys/lab-{lab}"))).unwrap();
    env.write("policy.toml", POLICY);

    // Three real verifications: lab A in the sandbox, lab B too with `--redact`, lab C on the
    // host.
    let verify = |lab: &str, id: &str, out: &str, more: &[&str]| {
        env.cmd(["verify", "operator/reprove.toml", "--sign-key"])
            .arg(format!("keys/lab-{lab}"))
            .args(["--verifier-id", id, "--out", out, "--shipped", BUNDLE])
            .args(more)
            .assert()
            .success();
    };
    verify("a", LAB_A, "a.intoto.jsonl", &[]);
    verify("b", LAB_B, "b.intoto.jsonl", &["--redact"]);
    demo.set_recipe(
        &demo
            .recipe()
            .replace("isolation = \"sandbox\"", "isolation = \"none\""),
    );
    verify("c", LAB_C, "c-host.intoto.jsonl", &[]);

    let a = read_bundle(&env.path("a.intoto.jsonl")).unwrap();
    let verified = time_verified(&a);
    let now = rfc3339(verified + time::Duration::days(1));
    let write = |name: &str, bundle: &[Envelope]| write_bundle(&env.path(name), bundle).unwrap();
    // Lab C attests the same release in the sandbox too; an unlisted key and a stale check
    // (of lab B) do as well.
    write("c.intoto.jsonl", &resign(&a, &key("c"), LAB_C, |_| {}));
    write("x.intoto.jsonl", &resign(&a, &key("x"), LAB_A, |_| {}));
    let old = rfc3339(verified - time::Duration::days(200));
    write(
        "b-stale.intoto.jsonl",
        &resign(&a, &key("b"), LAB_B, |s| {
            if s["predicateType"] == "https://slsa.dev/verification_summary/v1" {
                s["predicate"]["timeVerified"] = Value::String(old.clone());
            }
        }),
    );
    // Lab A's summary spliced onto lab B's rebuild predicate; lab B's, altered after signing.
    let b = read_bundle(&env.path("b.intoto.jsonl")).unwrap();
    write("spliced.intoto.jsonl", &[a[0].clone(), b[1].clone()]);
    let mut altered = b.clone();
    altered[1].payload = String::from_utf8(altered[1].payload.clone())
        .unwrap()
        .replace("\"identical\"", "\"identical\" ")
        .into_bytes();
    write("altered.intoto.jsonl", &altered);

    let decide = |files: &[&str]| {
        let out = env
            .cmd(["attest", "verify", "--policy", "policy.toml", "--now", &now])
            .args(files)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // 2 of 3 met: lab A and lab B agree; lab C's host rebuild is refused, and said so.
    let (code, text, stderr) = decide(&["a.intoto.jsonl", "b.intoto.jsonl", "c-host.intoto.jsonl"]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(
        text.contains(
            "not met by `c-host.intoto.jsonl`: rebuilt with `isolation = \"none\"`, on the host"
        ),
        "{text}"
    );
    assert!(
        text.contains("met by `a.intoto.jsonl`: rebuilt in `bwrap`"),
        "{text}"
    );
    // Lab B's attestation is redacted, and counts all the same: it keeps every digest.
    let b_bundle = read_bundle(&env.path("b.intoto.jsonl")).unwrap();
    let b_predicate: Value = serde_json::from_slice(&b_bundle[1].payload).unwrap();
    assert_eq!(b_predicate["predicate"]["redacted"], true);
    assert!(
        text.contains("met by `b.intoto.jsonl`: rebuilt in `bwrap`"),
        "{text}"
    );
    assert!(
        text.contains(
            "`b.intoto.jsonl`: by Lab B (`https://lab-b.example`), `identical`, verified at "
        ) && text.contains(", redacted\n"),
        "{text}"
    );
    assert_eq!(
        text.lines().last(),
        Some("accepted: 2 of 3 listed verifiers attest the same digests (Lab A, Lab B), 2 needed"),
        "{text}"
    );

    // 2 of 3 not met: lab A counts once however often it is given; an unlisted key counts for
    // nobody; lab B's check is too old; the host rebuild is refused; a spliced bundle, an
    // altered one and a missing file count for nobody (listed, not exit 2).
    let (code, text, stderr) = decide(&[
        "a.intoto.jsonl",
        "a.intoto.jsonl",
        "x.intoto.jsonl",
        "b-stale.intoto.jsonl",
        "c-host.intoto.jsonl",
        "spliced.intoto.jsonl",
        "altered.intoto.jsonl",
        "missing.intoto.jsonl",
    ]);
    assert_eq!(code, Some(1), "{text}{stderr}");
    let x_keyid = key("x").keyid().to_owned();
    for expected in [
        format!(
            "not met by `x.intoto.jsonl`: signed by a key the policy does not list (keyid \
             `{x_keyid}`): counts for nobody"
        ),
        "`x.intoto.jsonl`: counts for nobody".to_owned(),
        format!(
            "not met by `b-stale.intoto.jsonl`: verified at {old}, 201 days ago: older than `90d`"
        ),
        "not met by `c-host.intoto.jsonl`: rebuilt with `isolation = \"none\"`".to_owned(),
        "not met by `spliced.intoto.jsonl`: its envelopes are signed by different verifiers \
         (`https://lab-a.example`, `https://lab-b.example`)"
            .to_owned(),
        "not met by `altered.intoto.jsonl`: envelope 2: no signature verifies with the given keys"
            .to_owned(),
        "not met by `missing.intoto.jsonl`: failed to read `missing.intoto.jsonl`".to_owned(),
        "not checked for `x.intoto.jsonl`: an earlier requirement failed".to_owned(),
        "`a.intoto.jsonl` by Lab A counted once: Lab A attests this release already".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected}\n{text}");
    }
    assert_eq!(
        text.lines().last(),
        Some("not accepted: 1 of 3 listed verifiers attest the same digests, 2 needed"),
        "{text}"
    );

    // The same decision for programs; the release is the shipped set, by digest.
    let out = env
        .cmd([
            "--json",
            "attest",
            "verify",
            "--policy",
            "policy.toml",
            "--now",
            &now,
        ])
        .args(["a.intoto.jsonl", "c.intoto.jsonl", "x.intoto.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: DecisionJson = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.schema_version, 1);
    assert_eq!((json.policy.as_str(), json.threshold), ("policy.toml", 2));
    assert!(json.accepted);
    assert_eq!(json.now, now);
    assert_eq!(json.verifiers[2].name, None);
    assert_eq!(json.verifiers[0].keyid, key("a").keyid());
    assert_eq!(json.verifiers[1].id, "https://lab-b.example");
    assert_eq!(json.releases.len(), 1);
    assert_eq!(json.releases[0].subjects.len(), 2);
    assert!(json.releases[0].meets_threshold);
    assert_eq!(
        json.releases[0].verifiers,
        ["https://lab-a.example", "https://lab-c.example"]
    );
    let [a_json, c_json, x_json] = json.attestations.as_slice() else {
        panic!("{:?}", json.attestations)
    };
    assert_eq!(a_json.file, "a.intoto.jsonl");
    assert!(a_json.qualifies && a_json.counted && c_json.counted);
    assert_eq!((a_json.release, c_json.release), (Some(0), Some(0)));
    assert_eq!(a_json.verdict.as_deref(), Some("identical"));
    assert_eq!(a_json.time_verified, Some(rfc3339(verified)));
    assert_eq!(a_json.redacted, None, "left out when not redacted");
    assert_eq!(c_json.verifier.as_deref(), Some("https://lab-c.example"));
    let codes: Vec<&str> = a_json
        .requirements
        .iter()
        .map(|r| r.requirement.as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "signature",
            "verifier",
            "verdict",
            "isolation",
            "traced_lock",
            "age"
        ]
    );
    assert!(a_json.requirements.iter().all(|r| r.outcome == "met"));
    assert_eq!((x_json.verifier.as_ref(), x_json.qualifies), (None, false));
    assert_eq!(x_json.requirements[0].outcome, "not_met");
    assert!(x_json.requirements[0]
        .detail
        .as_deref()
        .unwrap()
        .contains(&x_keyid));
    assert!(x_json.requirements[1..]
        .iter()
        .all(|r| r.outcome == "not_checked" && r.detail.is_none()));
    assert!(
        json.decision.starts_with("accepted: 2 of 3"),
        "{}",
        json.decision
    );

    // With `--artifact`, the release decided is the one those files are.
    let img = demo.unpack_bundle("unpacked").join("firmware.img");
    let other = env.path("other.img");
    std::fs::write(&other, b"not the firmware").unwrap();
    for (artifact, expected) in [(&img, Some(0)), (&other, Some(1))] {
        let out = env
            .cmd(["attest", "verify", "--policy", "policy.toml", "--now", &now])
            .args(["a.intoto.jsonl", "b.intoto.jsonl", "--artifact"])
            .arg(artifact)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), expected, "{text}");
        if expected == Some(1) {
            assert!(text.contains("attests none of `"), "{text}");
        }
    }

    // Bad input is one clear error and exit 2: the policy, a key it names, `--now`.
    env.write("bad.toml", POLICY.replace("max-age", "max-ages"));
    env.write(
        "nokey.toml",
        POLICY.replace("keys/lab-b.pub", "keys/nothere.pub"),
    );
    for (args, expected) in [
        (
            vec!["--policy", "bad.toml"],
            "error: invalid policy `bad.toml`, line 3, column 1: unknown field `max-ages`, \
             expected one of `threshold`, `verdicts`, `allowances`, `isolation`, `traced-lock`, \
             `max-age`, `verifier`: `max-ages = \"90d\"`",
        ),
        (
            vec!["--policy", "nokey.toml"],
            "error: invalid policy `nokey.toml`, key `verifier[1].key`",
        ),
        (vec!["--policy", "absent.toml"], "error: failed to read policy `absent.toml`"),
        (
            vec!["--policy", "policy.toml", "--now", "yesterday"],
            "expected an RFC 3339 time",
        ),
        (
            vec!["--key", "keys/lab-a.pub", "b.intoto.jsonl"],
            "error: `--key` checks one attestation: to decide over 2 of them, pass `--policy POLICY`",
        ),
    ] {
        let out = env
            .cmd(["attest", "verify", "a.intoto.jsonl"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }

    // CycloneDX: lab A's attestation, checked with its key, as a CycloneDX 1.6 declaration.
    env.cmd([
        "attest",
        "export",
        "--cyclonedx",
        "a.intoto.jsonl",
        "--key",
        "keys/lab-a.pub",
        "--out",
        "a.cdx.json",
    ])
    .assert()
    .success()
    .stdout("");
    let (valid, said) = validate_cyclonedx(&env.path("a.cdx.json"));
    assert!(valid, "{said}");
    let cdx: Value =
        serde_json::from_slice(&std::fs::read(env.path("a.cdx.json")).unwrap()).unwrap();
    assert_eq!(cdx["specVersion"], "1.6");
    let subjects: Value = serde_json::from_slice(&a[0].payload).unwrap();
    let targets = cdx["declarations"]["targets"]["components"]
        .as_array()
        .unwrap();
    assert_eq!(targets.len(), 2);
    for subject in subjects["subject"].as_array().unwrap() {
        let target = targets
            .iter()
            .find(|t| t["name"] == subject["name"])
            .unwrap_or_else(|| panic!("no target for {subject}"));
        assert_eq!(target["hashes"][0]["alg"], "SHA-256");
        assert_eq!(target["hashes"][0]["content"], subject["digest"]["sha256"]);
        assert_eq!(target["hashes"][1]["alg"], "BLAKE3");
        assert_eq!(target["hashes"][1]["content"], subject["digest"]["blake3"]);
    }
    let attestation = &cdx["declarations"]["attestations"][0];
    assert_eq!(attestation["map"][0]["conformance"]["score"], 1.0);
    assert_eq!(
        cdx["declarations"]["evidence"][0]["created"],
        rfc3339(verified)
    );
    // The same document on stdout, byte for byte: the export is a function of the bundle.
    let stdout = run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_reprove"))
            .current_dir(env.root())
            .args(["attest", "export", "--cyclonedx", "a.intoto.jsonl"])
            .args(["--key", "keys/lab-a.pub"]),
    );
    assert_eq!(
        stdout.as_bytes(),
        std::fs::read(env.path("a.cdx.json")).unwrap()
    );
    // The validator is live: a hash algorithm CycloneDX does not name is refused.
    let mut broken = cdx.clone();
    broken["declarations"]["targets"]["components"][0]["hashes"][1]["alg"] = "blake3".into();
    std::fs::write(env.path("broken.cdx.json"), broken.to_string()).unwrap();
    let (valid, said) = validate_cyclonedx(&env.path("broken.cdx.json"));
    assert!(!valid && said.contains("blake3"), "{said}");
    // An attestation that does not verify with the key given is refused, and nothing written.
    let out = env
        .cmd(["attest", "export", "--cyclonedx", "a.intoto.jsonl"])
        .args(["--key", "keys/lab-b.pub", "--out", "refused.cdx.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected, not exported"));
    assert!(!env.path("refused.cdx.json").exists());
}
