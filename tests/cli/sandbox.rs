//! The sandbox through `verify` and `lock`: a hermetic root made by debootstrap, and a traced
//! lock that catches a changed header before anything is built.

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{run_ok, Demo, BUNDLE};

/// The root `examples/hermetic-root/make-root.sh` makes, built once per version of the script
/// and kept in `target/` (debootstrap takes a minute or two on a fresh machine).
fn hermetic_root() -> (PathBuf, String) {
    static ROOT: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = manifest.join("examples/hermetic-root/make-root.sh");
        let key = &reprove::hash::hash_file(&script).unwrap().sha256.hex()[..16];
        let dir = manifest.join("target/hermetic-root-cache");
        let archive = dir.join(format!("bookworm-{key}.tar.gz"));
        let pin = dir.join(format!("bookworm-{key}.digest"));
        if !pin.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let digest = run_ok(std::process::Command::new(&script).arg(&archive));
            std::fs::write(&pin, digest).unwrap();
        }
        (
            archive,
            std::fs::read_to_string(&pin).unwrap().trim().to_owned(),
        )
    })
    .clone()
}

#[test]
fn the_demo_rebuilds_identically_inside_a_debootstrap_root() {
    let (archive, digest) = hermetic_root();
    let demo = Demo::new("sandbox");
    let recipe = demo.recipe().replace(
        "isolation = \"sandbox\"",
        &format!(
            "isolation = \"sandbox\"\nroot = {{ path = \"{}\", digest = \"{digest}\" }}",
            archive.display()
        ),
    );
    demo.set_recipe(&recipe);
    let cache = archive.parent().unwrap().join("cache");
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let out = demo
        .verify([BUNDLE])
        .arg("--json")
        .env("REPROVE_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["verdict"], "identical");
    assert_eq!(v["build"]["isolation"]["root"], digest);
    // A root whose pin no longer holds is drift, and nothing is built.
    let wrong = format!("sha256:{}", "0".repeat(64));
    demo.set_recipe(&recipe.replace(&digest, &wrong));
    let out = demo
        .verify([BUNDLE])
        .arg("--json")
        .env("REPROVE_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "toolchain-drift");
    assert_eq!(v["toolchain"]["drift"][0]["found"], digest);
    assert!(v["rebuilds"].as_array().unwrap().is_empty());
}

/// A header outside the build tree, under /usr where the sandbox sees it, read by the build.
struct SharedHeader(PathBuf);

impl Drop for SharedHeader {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_changed_header_under_the_traced_lock_is_drift_before_any_build() {
    let name = format!("reprove-test-{}.h", std::process::id());
    let header = SharedHeader(Path::new("/usr/local/include").join(&name));
    std::fs::create_dir_all("/usr/local/include").unwrap();
    std::fs::write(&header.0, "#define ANSWER 42\n").unwrap();

    let demo = Demo::new("sandbox");
    // An escrow folder whose build includes that header.
    demo.env.write(
        "operator/src/main.c",
        format!("#include <{name}>\nint answer(void) {{ return ANSWER; }}\n"),
    );
    demo.env.write(
        "operator/src/Makefile",
        "out/main.o: main.c\n\tmkdir -p out\n\tgcc -O2 -c main.c -o out/main.o\n",
    );
    let tree = demo
        .env
        .cmd(["hash", "--json", "operator/src"])
        .output()
        .unwrap();
    let tree: crate::json::Hash = crate::json::parse(&tree);
    let digest = tree.entries[0].sha256.clone();
    demo.set_recipe(&format!(
        "[package]\nname = \"answer\"\nversion = \"1\"\n\n[source]\npath = \"src\"\ndigest = \"{digest}\"\n\n\
         [toolchain]\ntools = [\"make\", \"gcc\", \"mkdir\"]\n\n[build]\ncommand = [\"make\"]\n\n\
         [[artifact]]\npath = \"out/main.o\"\n"
    ));
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    let untraced = std::fs::read_to_string(demo.env.path("operator/reprove.lock")).unwrap();
    assert!(!untraced.contains(&name), "only tracing finds the header");
    demo.env
        .cmd(["lock", "--trace", "operator/reprove.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("(traced"));
    let traced = std::fs::read_to_string(demo.env.path("operator/reprove.lock")).unwrap();
    assert!(
        traced.contains(&format!("/usr/local/include/{name}")),
        "{traced}"
    );
    assert!(traced.contains("/cc1\""), "the compiler proper is pinned");
    assert!(traced.contains("traced = true"));

    std::fs::write(&header.0, "#define ANSWER 43\n").unwrap();
    // A store that never held the pinned header: the changed host copy cannot stand in for it.
    let cache = tempfile::tempdir().unwrap();
    let out = demo
        .env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "--unsigned",
            "--json",
            "--work-dir",
            "work",
        ])
        .args([
            "--out",
            "att.intoto.jsonl",
            "--shipped",
            "operator/src/main.c",
        ])
        .env("REPROVE_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "toolchain-drift");
    assert_eq!(v["toolchain"]["drift"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["toolchain"]["drift"][0]["path"],
        format!("/usr/local/include/{name}")
    );
    assert!(
        !demo.env.path("work/rebuild-1").exists(),
        "nothing is built"
    );
}
