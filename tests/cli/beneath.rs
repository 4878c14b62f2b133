//! Issue 8, items 1 and 8: everything reprove reads from a tree someone else wrote is opened
//! beneath it. A hostile build that puts a symlink to the host folder holding the shipped
//! files in place of its output folder (absolute, relative, or a link in a middle component)
//! must not be hashed as its own rebuild; a FIFO named on the command line is refused at once;
//! an `elf` the build did not produce is a note.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Demo, TestEnv, BUNDLE};

/// The reason a build tree's artifact counts as not produced when `out` links out of it.
const LEAVES: &str = "`out` is a symlink that leaves the build tree";

/// The demo with its build command replaced by `script` (run by `sh -c` in the build tree;
/// `$ROOT` stands for the test's root on the host, which a build can learn from
/// `/proc/self/mountinfo`), the tools it needs added, `edit` applied to the recipe, locked; and
/// the shipped bundle also unpacked in `loose/`, with the bundle beside its members: the host
/// folder an adversary links to.
fn adversary_with(isolation: &str, script: &str, edit: fn(String) -> String) -> Demo {
    let demo = Demo::new(isolation);
    let script = script.replace("$ROOT", &demo.env.root().display().to_string());
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            &format!("command = [\"sh\", \"-c\", {}]", json!(script)),
        )
        .replace("\"mkdir\"]", "\"mkdir\", \"ln\", \"rm\", \"mv\"]");
    demo.set_recipe(&edit(recipe));
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    demo.unpack_bundle("loose");
    std::fs::copy(
        demo.env.path(BUNDLE),
        demo.env.path("loose/acme-router-fw-1.0.0.tar.gz"),
    )
    .unwrap();
    demo
}

fn adversary(isolation: &str, script: &str) -> Demo {
    adversary_with(isolation, script, |r| r)
}

fn output(cmd: &mut assert_cmd::Command) -> (Option<i32>, Value, String) {
    let out = cmd.timeout(Duration::from_secs(120)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v, stderr)
}

/// The predicate (what `verify --json` prints) against the published schema.
fn assert_schema_valid(v: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rebuild-predicate.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut predicate = v.clone();
    predicate.as_object_mut().unwrap().remove("attestation");
    let errors: Vec<String> = validator
        .iter_errors(&predicate)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// `verify` of `demo` against the loose folder: `missing` (exit 1) with `reason` for both
/// artifacts, in JSON and in text; never `identical`.
fn assert_not_hashed_through_the_link(demo: &Demo, reason: &str) {
    let (code, v, stderr) = output(
        demo.verify(["loose"])
            .args(["--json", "--work-dir", "work"]),
    );
    assert_eq!(v["verdict"], "missing", "{stderr}");
    assert_eq!(code, Some(1), "{stderr}");
    for (i, a) in v["artifacts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(a["verdict"], "missing", "{a}");
        assert_eq!(a["absent"], reason, "{a}");
        assert_eq!(v["rebuilds"][0]["artifacts"][i]["digest"], Value::Null);
        assert_eq!(v["rebuilds"][0]["artifacts"][i]["absent"], reason);
        // The files named as similar are listed beneath the tree, never through the link.
        assert!(a.get("similar").is_none(), "{a}");
    }
    assert_schema_valid(&v);
    std::fs::remove_dir_all(demo.env.path("work")).unwrap();
    let text = demo
        .verify(["loose"])
        .args(["--work-dir", "work", "--html", "report.html"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("absent from the rebuild: {reason}")),
        "{stdout}"
    );
    let html = std::fs::read_to_string(demo.env.path("report.html")).unwrap();
    assert!(
        html.contains(&format!("absent from the rebuild: {reason}")),
        "{html}"
    );
}

// See: issue 8, item 1 (absolute link to the host folder that holds the shipped files).
#[test]
fn i8_an_output_folder_linked_to_the_shipped_folder_is_missing_not_identical() {
    for isolation in ["none", "sandbox"] {
        let demo = adversary(isolation, "rm -rf out && ln -s $ROOT/loose out");
        assert_not_hashed_through_the_link(&demo, LEAVES);
    }
}

// See: issue 8, item 1 (relative link climbing out of the tree).
#[test]
fn i8_an_output_folder_linked_relatively_out_of_the_tree_is_missing() {
    for isolation in ["none", "sandbox"] {
        // The tree is `work/rebuild-1/tree`: three folders up is the test's root.
        let demo = adversary(isolation, "rm -rf out && ln -s ../../../loose out");
        assert_not_hashed_through_the_link(&demo, LEAVES);
    }
}

// See: issue 8, item 1 (a link in a middle component of the artifact's path).
#[test]
fn i8_a_middle_folder_linked_out_of_the_tree_is_missing() {
    let demo = adversary_with(
        "sandbox",
        "mkdir -p out && ln -s ../../../../loose out/stage",
        |r| r.replace("path = \"out/", "path = \"out/stage/"),
    );
    assert_not_hashed_through_the_link(
        &demo,
        "`out/stage` is a symlink that leaves the build tree",
    );
}

// See: issue 8, item 1 (dh_link makes in-tree links: they are followed).
#[test]
fn i8_an_artifact_linked_inside_the_tree_is_followed_and_verifies() {
    let demo = adversary(
        "sandbox",
        "make && mv out/firmware.img out/firmware-1.0.img && ln -s firmware-1.0.img out/firmware.img",
    );
    let (code, v, stderr) = output(demo.verify([BUNDLE]).arg("--json"));
    assert_eq!(v["verdict"], "identical", "{stderr}");
    assert_eq!(code, Some(0));
    assert_eq!(v["artifacts"][0]["verdict"], "identical");
}

// See: issue 8, item 1 (`rebuild --out-dir` copied host files through the link).
#[test]
fn i8_rebuild_out_dir_does_not_copy_through_a_link_out_of_the_tree() {
    // `rebuild` keeps its trees in a temporary folder: the link names the host path.
    let demo = adversary("sandbox", "rm -rf out && ln -s $ROOT/loose out");
    let out = demo
        .env
        .cmd(["rebuild", "operator/reprove.toml", "--out-dir", "copied"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("firmware.img: not produced: {LEAVES}")),
        "{stdout}"
    );
    assert!(!demo.env.path("copied/firmware.img").exists());
    assert!(!demo.env.path("copied/acme-router-fw-1.0.0.tar.gz").exists());
}

// See: issue 8, item 1 (`rebuild --out-dir` copies what was hashed, from the handle).
#[test]
fn i8_rebuild_out_dir_copies_an_in_tree_link_as_its_file() {
    let demo = adversary(
        "none",
        "make && mv out/firmware.img out/firmware-1.0.img && ln -s firmware-1.0.img out/firmware.img",
    );
    let (code, v, stderr) = output(&mut demo.env.cmd([
        "rebuild",
        "operator/reprove.toml",
        "--out-dir",
        "copied",
        "--json",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let copied = demo.env.path("copied/firmware.img");
    let meta = std::fs::symlink_metadata(&copied).unwrap();
    assert!(meta.is_file(), "a regular file, not a link");
    let bytes = std::fs::read(&copied).unwrap();
    let digest = reprove::hash::hash_bytes(&bytes).sha256.to_string();
    assert_eq!(v["artifacts"][0]["hashes"]["sha256"], digest);
}

fn mkfifo(path: &Path) {
    crate::support::run_ok(std::process::Command::new("mkfifo").arg(path));
}

// See: issue 8, item 8 (`reprove diff FIFO file` blocked forever).
#[test]
fn i8_diff_and_hash_refuse_a_fifo_at_once() {
    let env = TestEnv::new().file("file", "x");
    mkfifo(&env.path("pipe"));
    for args in [
        vec!["diff", "pipe", "file"],
        vec!["diff", "file", "pipe"],
        vec!["hash", "pipe"],
        vec!["hash", "file", "pipe"],
    ] {
        let out = env
            .cmd(&args)
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {stderr}");
        assert!(stderr.contains("`pipe` is a FIFO"), "{args:?} {stderr}");
    }
    // A device, likewise, and inside a folder a FIFO is listed, never opened.
    let out = env
        .cmd(["hash", "/dev/zero"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a character device"));
    std::fs::create_dir_all(env.path("a")).unwrap();
    std::fs::create_dir_all(env.path("b")).unwrap();
    mkfifo(&env.path("a/pipe"));
    mkfifo(&env.path("b/pipe"));
    let out = env
        .cmd(["diff", "a", "b"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "finishes");
}

// See: issue 8, item 8 (a FIFO given as shipped blocked `verify` too).
#[test]
fn i8_verify_refuses_a_fifo_as_shipped() {
    let demo = Demo::locked("none");
    mkfifo(&demo.env.path("pipe"));
    let out = demo
        .verify(["pipe"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`pipe` is a FIFO"), "{stderr}");
}

// See: issue 8, item 8 (an `elf` the build did not produce was ignored without a word).
#[test]
fn i8_an_elf_the_build_did_not_produce_is_a_note() {
    let demo = Demo::new("none");
    demo.set_recipe(
        &demo
            .recipe()
            .replace("elf = \"out/firmware.elf\"", "elf = \"out/fw.elf\""),
    );
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let note = "`out/fw.elf` named by `elf` was not produced by the rebuild: differences are \
                not located by section";
    let (code, v, stderr) = output(demo.verify([BUNDLE]).arg("--json"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["artifacts"][0]["notes"], json!([note]));
    assert!(v["artifacts"][1].get("notes").is_none());
    assert_schema_valid(&v);
    let out = demo
        .verify([BUNDLE])
        .args(["--html", "report.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("note: {note}")), "{stdout}");
    let html = std::fs::read_to_string(demo.env.path("report.html")).unwrap();
    assert!(html.contains("`out/fw.elf` named by `elf`"), "{html}");
}
