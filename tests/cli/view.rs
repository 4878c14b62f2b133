//! The build sees only what the lock pins: the lock's view, laid out from the store.
//! See issue 8, "No false pass", item 2.

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
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
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
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
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

// A host file that no pin names is not there for the build, even where a tool lives beside it.
#[test]
fn the_build_cannot_read_a_host_file_the_lock_does_not_pin() {
    let demo = Demo::new("sandbox");
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            "command = [\"sh\", \"-c\", \"mkdir -p out && cat /usr/include/stdio.h > out/stdio.h\"]",
        )
        .replace("tools = [", "tools = [\"cat\", ");
    let recipe = recipe[..recipe.find("[[artifact]]").unwrap()].to_owned()
        + "[[artifact]]\npath = \"out/stdio.h\"\n";
    demo.set_recipe(&recipe);
    demo.env.write(
        "shipped/stdio.h",
        std::fs::read("/usr/include/stdio.h").unwrap(),
    );
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
        .args(["--out", "att.intoto.jsonl", "--shipped", "shipped/stdio.h"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["verdict"], "build-failed", "{v}");
    // Traced, the header is pinned and the same build reproduces the host's copy.
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
        .args(["--out", "att.intoto.jsonl", "--shipped", "shipped/stdio.h"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
}

// What the build sees is what was hashed: once the store holds a pinned file, a host file
// changed after `lock` changes nothing in the build (the store's copy is what it sees), and a
// store can rebuild with the host's copy gone.
#[test]
fn the_build_sees_the_stored_bytes_not_the_host_file() {
    let demo = Demo::new("sandbox");
    let cache = tempfile::tempdir().unwrap();
    // A tool outside any system folder, run by absolute path and pinned by the trace.
    let host_tool = std::path::PathBuf::from(format!(
        "/usr/local/bin/reprove-test-stamp-{}",
        std::process::id()
    ));
    std::fs::write(&host_tool, "#!/bin/sh\necho pinned > \"$1\"\n").unwrap();
    run_ok(
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&host_tool),
    );
    let recipe = demo.recipe().replace(
        "command = [\"make\"]",
        &format!(
            "command = [\"sh\", \"-c\", \"mkdir -p out && {} out/stamp\"]",
            host_tool.display()
        ),
    );
    let recipe = recipe[..recipe.find("[[artifact]]").unwrap()].to_owned()
        + "[[artifact]]\npath = \"out/stamp\"\n";
    demo.set_recipe(&recipe);
    demo.env.write("shipped/stamp", "pinned\n");
    let verify = |code: i32| {
        let out = demo
            .env
            .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
            .args(["--out", "att.intoto.jsonl", "--shipped", "shipped/stamp"])
            .env("REPROVE_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("{}", String::from_utf8_lossy(&out.stderr));
        });
        assert_eq!(out.status.code(), Some(code), "{v}");
        v
    };
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    assert_eq!(verify(0)["verdict"], "identical");
    std::fs::write(&host_tool, "#!/bin/sh\necho tampered > \"$1\"\n").unwrap();
    assert_eq!(verify(0)["verdict"], "identical", "the stored copy ran");
    std::fs::remove_file(&host_tool).unwrap();
    assert_eq!(
        verify(0)["verdict"],
        "identical",
        "nothing of the host needed"
    );
    // With an empty store, the host's changed copy cannot be taken for the pinned one.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(&host_tool, "#!/bin/sh\necho tampered > \"$1\"\n").unwrap();
    let out = demo
        .env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
        .args(["--out", "att.intoto.jsonl", "--shipped", "shipped/stamp"])
        .env("REPROVE_CACHE_DIR", fresh.path())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&host_tool);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["verdict"], "toolchain-drift");
    assert_eq!(
        v["toolchain"]["drift"][0]["path"],
        host_tool.display().to_string()
    );
}
