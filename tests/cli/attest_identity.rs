//! Who verified, and what a shared attestation reveals (issue 12, items 1 and 3): the
//! verifier's identity is required when signing and comes from the flags or the config;
//! `--redact` keeps every digest and drops names, contents and host paths; a secret variable's
//! value never appears anywhere. One real verification of the demo covers the happy path; the
//! refusals all stop before anything is built.

use base64::Engine as _;
use predicates::prelude::*;
use serde_json::Value;

use crate::attest::python_script;
use crate::attest_schema::{errors, validator};
use crate::support::{Demo, BUNDLE};

const LAB: &str = "https://lab.example/reprove";
/// The secret: its middle never appears in the recipe (the build checks its shape) nor in any
/// output.
const TOKEN: &str = "tok-9f3e71c4-secret";

fn statements(bundle: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(bundle)
        .unwrap()
        .lines()
        .map(|line| {
            let envelope: Value = serde_json::from_str(line).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice(&payload).unwrap()
        })
        .collect()
}

#[test]
fn a_signed_attestation_names_its_verifier_and_a_redacted_one_still_verifies() {
    let demo = Demo::locked("none");
    let env = &demo.env;
    env.cmd(["key", "generate", "--out", "lab"])
        .assert()
        .success();
    let verify = |extra: &[&str]| {
        let mut cmd = env.cmd(["verify", "operator/reprove.toml", "--sign-key", "lab"]);
        cmd.args(["--out", "att.intoto.jsonl", "--shipped", BUNDLE])
            .args(extra);
        cmd
    };

    // Signing without saying who signs: refused before anything is built, with the fix.
    verify(&[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: a signed attestation must name its verifier",
        ))
        .stderr(predicate::str::contains("hint: pass `--verifier-id URI`"))
        .stderr(predicate::str::contains("[verifier] id"));
    assert!(!env.path("att.intoto.jsonl").exists());
    verify(&["--verifier-id", "lab"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid `--verifier-id`: it is not an absolute URI (no `scheme:`): `lab`",
        ));
    verify(&["--verifier-id", LAB, "--redact", "--html", "r.html"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`--html` cannot be redacted"));
    env.write(
        ".config/reprove/config.toml",
        "[verifier]\nid = \"x:y\"\n\nname2 = \"a\"\n",
    );
    verify(&[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "config.toml`, line 4: unknown field `name2`",
        ));

    // The lab's identity and `redact` from the config; a secret the build needs from the
    // verifier's environment.
    env.write(
        ".config/reprove/config.toml",
        format!(
            "[verifier]\nid = \"{LAB}\"\nname = \"Example Lab\"\n\n[attestation]\nredact = true\n"
        ),
    );
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            "command = [\"sh\", \"-c\", \"case $LICENSE_TOKEN in tok-*-secret) exec make;; esac; exit 7\"]\nsecret-env = [\"LICENSE_TOKEN\"]",
        );
    demo.set_recipe(&recipe);
    verify(&[])
        .env_remove("LICENSE_TOKEN")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the recipe's secret variable `LICENSE_TOKEN` (`[build] secret-env`) is not set",
        ));
    let out = verify(&["--json"])
        .env("LICENSE_TOKEN", TOKEN)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let bundle = std::fs::read_to_string(env.path("att.intoto.jsonl")).unwrap();
    let [vsa, rebuild] = <[Value; 2]>::try_from(statements(&env.path("att.intoto.jsonl"))).unwrap();
    let texts = [
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        vsa.to_string(),
        rebuild.to_string(),
        bundle,
    ];
    let root = env.root().display().to_string();
    for text in &texts {
        assert!(!text.contains("9f3e71c4"), "the secret leaked: {text}");
        assert!(!text.contains(&root), "a host path leaked: {text}");
        assert!(
            !text.contains("out/firmware.img"),
            "a build-tree path leaked: {text}"
        );
    }

    // The VSA names the lab and the recipe by its package; its digest binds recipe and lock.
    let v = &vsa["predicate"];
    assert_eq!(v["verifier"]["id"], LAB);
    assert_eq!(v["policy"]["uri"], "reprove:recipe/acme-router-fw@1.0.0");
    let sha = |rel: &str| {
        reprove::hash::hash_file(&env.path(rel))
            .unwrap()
            .sha256
            .hex()
    };
    let binding = format!(
        "{}\n{}\n",
        sha("operator/reprove.toml"),
        sha("operator/reprove.lock")
    );
    assert_eq!(
        v["policy"]["digest"]["sha256"],
        reprove::hash::hash_bytes(binding.as_bytes()).sha256.hex()
    );
    // The predicate is redacted, names its verifier, keeps its digests, hides the secret.
    let p = &rebuild["predicate"];
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        stdout["redacted"], true,
        "verify --json is the redacted predicate"
    );
    assert_eq!(p["redacted"], true);
    assert_eq!(
        (&p["verifier"]["id"], &p["verifier"]["name"]),
        (&Value::from(LAB), &Value::from("Example Lab"))
    );
    assert_eq!(p["invocation"]["recipe"], "reprove.toml");
    assert_eq!(p["escrow"]["name"], "acme-router-fw-1.0.0.tar.gz");
    assert_eq!(
        p["recipe"]["digest"]["sha256"],
        sha("operator/reprove.toml")
    );
    assert_eq!(p["rebuilds"][0]["environment"]["LICENSE_TOKEN"], "[secret]");
    assert_eq!(p["artifacts"][0]["path"], "[redacted]");
    let found = errors(&validator("predicate"), p);
    assert!(
        found.is_empty(),
        "the redacted predicate breaks the schema: {found:#?}"
    );

    // It still verifies, and says who signed as whom.
    let keyid = reprove::attest::key::VerifyingKey::load(&env.path("lab.pub"))
        .unwrap()
        .keyid()
        .to_owned();
    env.cmd(["attest", "verify", "att.intoto.jsonl", "--key", "lab.pub"])
        .args(["--artifact", BUNDLE])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "envelope 1: signed by {keyid} ({LAB})"
        )))
        .stdout(predicate::str::contains(format!(
            "verification summary: PASSED by {LAB} (\"Example Lab\")"
        )))
        .stdout(predicate::str::contains(
            "redacted: names, contents and host paths left out",
        ));
    // And the reference implementations accept the real, redacted bundle.
    let out = python_script("verify_bundle.py")
        .arg(env.path("lab.pub"))
        .arg(env.path("att.intoto.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
