//! The sandbox bounds the build: processes and disk. See issue 8, "No false pass", item 5.

use crate::json::Verify;
use crate::support::Demo;

/// A demo environment whose recipe runs `script` in the sandbox with the `[build]` lines
/// `extra`, locked; returns the `verify --json` output and its exit code.
fn verify_build(script: &str, extra: &str) -> (Verify, Option<i32>) {
    let demo = Demo::new("sandbox");
    let recipe = demo.recipe();
    let head = &recipe[..recipe.find("[build]").unwrap()];
    let head = head.replace(
        "tools = [",
        "tools = [\"seq\", \"sleep\", \"head\", \"touch\", ",
    );
    demo.set_recipe(&format!(
        "{head}[build]\ncommand = [\"sh\", \"-c\", \"{script}\"]\ntimeout = \"2m\"\n{extra}\n\n\
         [[artifact]]\npath = \"out/done\"\n"
    ));
    demo.env.write("shipped/done", "");
    // Lock from a harmless build that runs the same programs, so the trace pins them.
    let real = demo.recipe();
    demo.set_recipe(&real.replace(
        script,
        "mkdir -p out; seq 1 2; sleep 0; head -c 1 /dev/zero > /dev/null; touch out/done",
    ));
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    demo.set_recipe(&real);
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
        .args(["--out", "att.intoto.jsonl", "--shipped", "shipped/done"])
        .output()
        .unwrap();
    let v: Verify = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code())
}

// A build that starts more processes than the recipe allows is stopped and fails, naming the
// limit; the attestation records which mechanism held it. (The "bomb" is bounded, so that a
// broken limit slows this test down instead of the machine.)
#[test]
fn a_fork_bomb_is_stopped_at_the_process_limit() {
    let (v, code) = verify_build(
        "mkdir -p out; for i in $(seq 1 300); do sleep 30 & done; wait; touch out/done",
        "max-processes = 32",
    );
    assert_eq!(code, Some(1), "{v:#?}");
    assert_eq!(v.verdict, "build-failed");
    let rebuild = &v.rebuilds[0];
    assert_eq!(
        (rebuild.termination.kind.as_str(), rebuild.termination.value),
        ("process_limit", Some(32)),
        "{v:#?}"
    );
    let limits = rebuild.limits.as_ref().unwrap();
    assert_eq!(limits.max_processes, 32);
    assert_ne!(limits.process_bound, "none", "{v:#?}");
    assert!(rebuild.seconds < 25.0, "{v:#?}");
}

// A build whose tree grows past the recipe's disk limit is stopped and fails, naming it.
#[test]
fn a_build_tree_past_the_disk_limit_is_stopped() {
    let (v, code) = verify_build(
        "mkdir -p out; for i in $(seq 1 200); do head -c 1048576 /dev/zero > out/f$i; sleep 0.02; done; touch out/done",
        "max-disk = \"16M\"",
    );
    assert_eq!(code, Some(1), "{v:#?}");
    assert_eq!(v.verdict, "build-failed");
    let rebuild = &v.rebuilds[0];
    assert_eq!(
        (rebuild.termination.kind.as_str(), rebuild.termination.value),
        ("disk_limit", Some(16 << 20)),
        "{v:#?}"
    );
    assert_eq!(rebuild.limits.as_ref().unwrap().max_disk_bytes, 16 << 20);
}

// Within its limits the same kind of build passes: the limits are not in the way.
#[test]
fn a_build_within_its_limits_verifies() {
    let (v, code) = verify_build(
        "mkdir -p out; for i in $(seq 1 8); do sleep 0.1 & done; wait; head -c 1048576 /dev/zero > out/f; touch out/done",
        "max-processes = 32\nmax-disk = \"16M\"",
    );
    assert_eq!(code, Some(0), "{v:#?}");
    assert_eq!(v.verdict, "identical");
}
