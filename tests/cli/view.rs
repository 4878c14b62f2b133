//! The build sees only what the lock pins: the lock's view, laid out from the store.
//! See issue 8, "No false pass", item 2.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{run_ok, Demo, BUNDLE};

fn verify_json(demo: &Demo, code: i32) -> Value {
    let out = demo.verify([BUNDLE]).arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The demo recipe without its compiler among the tools.
fn without_compiler(demo: &Demo) {
    let recipe = demo
        .recipe()
        .replace("\"make\", \"gcc\", \"objcopy\"", "\"make\", \"objcopy\"");
    assert!(!recipe.contains("\"gcc\""));
    demo.set_recipe(&recipe);
}

// A careless recipe that forgets its compiler: the default lock traces the build, so the
// compiler and everything it reads are pinned all the same, and the release verifies.
#[test]
fn a_recipe_that_forgets_its_compiler_is_locked_whole_by_the_trace() {
    let demo = Demo::new("sandbox");
    without_compiler(&demo);
    lock(&demo, &[]);
    let lock = std::fs::read_to_string(demo.env.path("operator/reprove.lock")).unwrap();
    assert!(lock.contains("traced = true"), "{lock}");
    assert!(
        lock.contains("/cc1\""),
        "the compiler proper is pinned: {lock}"
    );
    assert!(
        lock.contains("path = \"/usr/bin/gcc\""),
        "the link the build runs it by is recorded: {lock}"
    );
    let v = verify_json(&demo, 0);
    assert_eq!(v["verdict"], "identical");
    assert_eq!(v["lock"]["traced"], true);
}

// The same recipe with a declared-only lock: the compiler is not in the build's world, so the
// build fails and says which program it could not find, instead of passing on the host's.
#[test]
fn a_declared_lock_without_the_compiler_fails_to_build_naming_it() {
    let demo = Demo::new("sandbox");
    without_compiler(&demo);
    lock(&demo, &["--no-trace"]);
    let lock = std::fs::read_to_string(demo.env.path("operator/reprove.lock")).unwrap();
    assert!(lock.contains("traced = false"));
    assert!(!lock.contains("/cc1\""), "{lock}");
    let v = verify_json(&demo, 1);
    assert_eq!(v["verdict"], "build-failed", "{v}");
    assert_eq!(v["rebuilds"][0]["missing_program"], "gcc", "{v}");
    let text = demo.verify([BUNDLE]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("the build could not find `gcc`") && text.contains("reprove lock"),
        "{text}"
    );
}

/// The demo's recipe with `script` as its build and `artifact` as its one artifact.
fn with_build(demo: &Demo, script: &str, artifact: &str, tools: &str) {
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            &format!("command = [\"sh\", \"-c\", \"{script}\"]"),
        )
        .replace("tools = [", &format!("tools = [{tools}"));
    let recipe = recipe[..recipe.find("[[artifact]]").unwrap()].to_owned()
        + &format!("[[artifact]]\npath = \"{artifact}\"\n");
    demo.set_recipe(&recipe);
}

/// `verify --json` against one shipped file, with the store in `cache` (the default cache when
/// `None`): the JSON and the exit code.
fn verify_against(demo: &Demo, shipped: &str, cache: Option<&Path>) -> (Value, Option<i32>) {
    let mut cmd = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"]);
    cmd.args(["--out", "att.intoto.jsonl", "--shipped", shipped]);
    if let Some(cache) = cache {
        cmd.env("REPROVE_CACHE_DIR", cache);
    }
    let out = cmd.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code())
}

fn lock(demo: &Demo, args: &[&str]) {
    demo.env
        .cmd(["lock"])
        .args(args)
        .arg("operator/reprove.toml")
        .assert()
        .success();
}

// A host file that no pin names is not there for the build, even where a tool lives beside it.
#[test]
fn the_build_cannot_read_a_host_file_the_lock_does_not_pin() {
    let demo = Demo::new("sandbox");
    with_build(
        &demo,
        "mkdir -p out && cat /usr/include/stdio.h > out/stdio.h",
        "out/stdio.h",
        "\"cat\", ",
    );
    demo.env.write(
        "shipped/stdio.h",
        std::fs::read("/usr/include/stdio.h").unwrap(),
    );
    lock(&demo, &["--no-trace"]);
    let (v, code) = verify_against(&demo, "shipped/stdio.h", None);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["verdict"], "build-failed", "{v}");
    // Traced, the header is pinned and the same build reproduces the host's copy.
    lock(&demo, &[]);
    let (v, code) = verify_against(&demo, "shipped/stdio.h", None);
    assert_eq!(code, Some(0), "{v}");
}

/// A file in the host's `/usr/local/bin` for one test, removed when dropped.
struct HostFile(PathBuf);

impl Drop for HostFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// What the build sees is what was hashed: once the store holds a pinned file, a host file
// changed after `lock` changes nothing in the build (the store's copy is what it sees), and a
// store can rebuild with the host's copy gone.
#[test]
fn the_build_sees_the_stored_bytes_not_the_host_file() {
    let demo = Demo::new("sandbox");
    let cache = tempfile::tempdir().unwrap();
    // A tool outside any system folder, run by absolute path and pinned by the trace.
    let tool = HostFile(PathBuf::from(format!(
        "/usr/local/bin/reprove-test-stamp-{}",
        std::process::id()
    )));
    let write_tool = |says: &str| {
        std::fs::write(&tool.0, format!("#!/bin/sh\necho {says} > \"$1\"\n")).unwrap();
        run_ok(std::process::Command::new("chmod").arg("755").arg(&tool.0));
    };
    write_tool("pinned");
    with_build(
        &demo,
        &format!("mkdir -p out && {} out/stamp", tool.0.display()),
        "out/stamp",
        "",
    );
    demo.env.write("shipped/stamp", "pinned\n");
    lock(&demo, &[]);
    let verdict = || {
        let (v, code) = verify_against(&demo, "shipped/stamp", Some(cache.path()));
        assert_eq!(code, Some(0), "{v}");
        v["verdict"].clone()
    };
    assert_eq!(verdict(), "identical");
    write_tool("tampered");
    assert_eq!(verdict(), "identical", "the stored copy ran");
    std::fs::remove_file(&tool.0).unwrap();
    assert_eq!(verdict(), "identical", "nothing of the host needed");
    // With an empty store, the host's changed copy cannot be taken for the pinned one.
    let fresh = tempfile::tempdir().unwrap();
    write_tool("tampered");
    let (v, code) = verify_against(&demo, "shipped/stamp", Some(fresh.path()));
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["verdict"], "toolchain-drift");
    assert_eq!(
        v["toolchain"]["drift"][0]["path"],
        tool.0.display().to_string()
    );
}
