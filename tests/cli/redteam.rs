//! Adversarial inputs to the readers of attestations, reports, manifests and policies: each
//! test is an attack that once passed (a splice verified, a FIFO hung, a forged row counted),
//! written before its fix and seen to fail.

use std::path::Path;
use std::time::Duration;

use reprove::attest::bundle::write_bundle;
use reprove::attest::dsse::{envelope, Envelope};
use reprove::attest::key::SigningKey;
use serde_json::Value;

use crate::attest::statements;
use crate::support::TestEnv;

const FIRMWARE: &[u8] = b"\x7fELF acme router firmware 4.2.1";

/// No reader may block or crawl on hostile input: each command gets this long, at most.
const NO_HANG: Duration = Duration::from_secs(60);

/// `statements` signed by `key`, one envelope each.
fn sign(statements: &[Value], key: &SigningKey) -> Vec<Envelope> {
    statements
        .iter()
        .map(|s| envelope(&serde_json::to_vec(s).unwrap(), Some(key)))
        .collect()
}

/// A folder with `fw.img` and the public keys of `labs` (`lab-N.pub`).
fn labs(n: usize) -> (TestEnv, Vec<SigningKey>) {
    let env = TestEnv::new().file("fw.img", FIRMWARE);
    let keys: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate()).collect();
    for (i, k) in keys.iter().enumerate() {
        env.write(&format!("lab-{i}.pub"), k.public_pem());
    }
    (env, keys)
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn run(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let out = env.cmd(args).timeout(NO_HANG).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two trusted keys: lab 0's summary with lab 1's rebuild predicate (each signed by its own
/// lab, both about `fw.img`) once verified, as if one lab had said both.
#[test]
fn attest_verify_refuses_a_bundle_two_keys_sign() {
    let (env, keys) = labs(2);
    let both = statements(FIRMWARE);
    let mut spliced = sign(&both[..1], &keys[0]);
    spliced.extend(sign(&both[1..], &keys[1]));
    write_bundle(&env.path("spliced.intoto.jsonl"), &spliced).unwrap();
    write_bundle(&env.path("whole.intoto.jsonl"), &sign(&both, &keys[1])).unwrap();
    let args = |file: &'static str| {
        [
            "attest",
            "verify",
            file,
            "--key",
            "lab-0.pub",
            "--key",
            "lab-1.pub",
            "--artifact",
            "fw.img",
        ]
    };
    let (code, stdout, stderr) = run(&env, &args("whole.intoto.jsonl"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (code, stdout, stderr) = run(&env, &args("spliced.intoto.jsonl"));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("envelope 2: signed by another key than envelope 1"),
        "{stdout}"
    );
}

/// A summary whose `verificationResult` is written twice: `FAILED` for a reader that keeps the
/// first, `PASSED` for one that keeps the last (as `serde_json` does).
#[test]
fn attest_verify_refuses_a_key_written_twice() {
    let (env, keys) = labs(1);
    let both = statements(FIRMWARE);
    let vsa = serde_json::to_string(&both[0]).unwrap().replacen(
        "\"verificationResult\":\"PASSED\"",
        "\"verificationResult\":\"FAILED\",\"verificationResult\":\"PASSED\"",
        1,
    );
    assert!(vsa.contains("FAILED"));
    let envelopes = vec![
        envelope(vsa.as_bytes(), Some(&keys[0])),
        sign(&both[1..], &keys[0]).remove(0),
    ];
    write_bundle(&env.path("twice.intoto.jsonl"), &envelopes).unwrap();
    let (code, stdout, stderr) = run(
        &env,
        &[
            "attest",
            "verify",
            "twice.intoto.jsonl",
            "--key",
            "lab-0.pub",
            "--artifact",
            "fw.img",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("the key `verificationResult` is written twice"),
        "{stdout}"
    );
}

/// Every reader of a bundle named on the command line: `attest verify` (with `--key` and with
/// `--policy`), `attest export`, `verify --from-attestation` and `report`. A FIFO once hung
/// all but `report`; a file of 100 MiB was read whole by all but `report` and `export`.
#[test]
fn every_bundle_reader_refuses_a_fifo_and_a_huge_file_without_blocking() {
    let (env, _keys) = labs(1);
    env.write(
        "policy.toml",
        "threshold = 1\n[[verifier]]\nid = \"https://lab.example\"\nkey = \"lab-0.pub\"\n",
    );
    mkfifo(&env.path("fifo.intoto.jsonl"));
    let huge = std::fs::File::create(env.path("huge.intoto.jsonl")).unwrap();
    huge.set_len(100 << 20).unwrap();
    for (file, expected) in [
        ("fifo.intoto.jsonl", "is a FIFO"),
        ("huge.intoto.jsonl", "is larger than 64 MiB"),
    ] {
        let key = ["--key", "lab-0.pub"];
        let commands: [Vec<&str>; 4] = [
            [&["attest", "verify", file][..], &key].concat(),
            vec!["attest", "verify", "--policy", "policy.toml", file],
            [&["attest", "export", "--cyclonedx", file][..], &key].concat(),
            vec!["verify", "--from-attestation", file, "--unsigned"],
        ];
        for args in commands {
            let (code, stdout, stderr) = run(&env, &args);
            let said = format!("{stdout}{stderr}");
            // `--policy` lists an unreadable attestation, which counts for nobody (exit 1).
            let wanted = if args.contains(&"--policy") { 1 } else { 2 };
            assert_eq!(code, Some(wanted), "{args:?}: {said}");
            assert!(said.contains(expected), "{args:?}: {said}");
        }
    }
}
