//! Issue 13, item 4: `[build] dir`, where in the unpacked escrow the build starts. An escrow
//! whose archive holds one top-level folder is unpacked as it is (nothing is stripped), and
//! `dir` names that folder. The tree is hostile and the key is checked: no `..`, no absolute
//! path, and a directory beneath the tree reached without a symlink, before anything runs.

use std::path::Path;
use std::process::Command;

use crate::support::{demo_dir, run_ok, Demo};

const TOP: &str = "acme-router-fw-1.0.0";

/// The demo's sources under `TOP/` in a tar escrow (`extra` adds to the staging folder first),
/// put in the recipe with `dir` and the artifacts' paths edited by `edit`.
fn foldered(isolation: &str, extra: &str, edit: &dyn Fn(String) -> String) -> Demo {
    let demo = Demo::new(isolation);
    let staging = demo.env.path("staging");
    let top = staging.join(TOP);
    std::fs::create_dir_all(&top).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .args(
                ["Makefile", "firmware.ld", "start.S", "include", "src"]
                    .map(|f| demo_dir().join(f)),
            )
            .arg(&top),
    );
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(extra)
            .current_dir(&staging),
    );
    let tar = demo.env.path("operator/escrow/foldered.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .args([
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--mtime=@1700000000",
                "-cf",
            ])
            .arg(&tar)
            .arg("."),
    );
    let digest = run_ok(Command::new("sha256sum").arg(&tar));
    let digest = format!("sha256:{}", &digest[..64]);
    let recipe = demo
        .recipe()
        .replace("escrow/acme-router-fw-1.0.0.tar.gz", "escrow/foldered.tar")
        .replace(&demo.escrow_digest, &digest);
    demo.set_recipe(&edit(recipe));
    demo
}

fn with_dir(dir: &str) -> impl Fn(String) -> String + '_ {
    move |recipe: String| {
        recipe
            .replace(
                "command = [\"make\"]",
                &format!("command = [\"make\"]\ndir = {dir:?}"),
            )
            .replace("path = \"out/", &format!("path = \"{TOP}/out/"))
            .replace("elf = \"out/", &format!("elf = \"{TOP}/out/"))
    }
}

#[test]
fn the_build_runs_in_the_folder_dir_names_in_the_sandbox() {
    let demo = foldered("sandbox", "true", &with_dir(TOP));
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let out = demo
        .verify([crate::support::BUNDLE])
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "identical", "{v}");
}

#[test]
fn without_dir_the_build_starts_at_the_root_of_the_escrow() {
    // Nothing is stripped: `make` at the root finds no makefile, and the log says so.
    let demo = foldered("none", "true", &|r| r);
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    let work = demo.env.path("work");
    demo.verify([crate::support::BUNDLE])
        .arg("--work-dir")
        .arg(&work)
        .assert()
        .code(1);
    let log = std::fs::read_to_string(work.join("rebuild-1/build.log")).unwrap();
    assert!(
        log.contains("No targets specified and no makefile found"),
        "{log}"
    );
}

/// A recipe whose `dir` leaves the tree is refused when it is read, naming the key; the build
/// never runs, so nothing it would write appears outside the tree.
#[test]
fn a_dir_that_leaves_the_tree_is_refused_before_anything_runs() {
    let victim = tempfile::tempdir().unwrap();
    for dir in [
        "..",
        "../..",
        &format!("{TOP}/../.."),
        &victim.path().display().to_string(),
    ] {
        let demo = foldered("none", "true", &|r| {
            with_dir(dir)(r).replace(
                "command = [\"make\"]",
                "command = [\"sh\", \"-c\", \"touch escaped; make\"]",
            )
        });
        // Refused here too, once the key is checked; before, the lock is written.
        demo.env
            .cmd(["lock", "--no-trace", "operator/reprove.toml"])
            .output()
            .unwrap();
        let work = demo.env.path("work");
        let out = demo
            .verify([crate::support::BUNDLE])
            .arg("--work-dir")
            .arg(&work)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{dir}: {stderr}");
        assert!(
            stderr.contains("key `build.dir`: must be a relative path inside the unpacked escrow"),
            "{dir}: {stderr}"
        );
        for place in [
            work.join("rebuild-1"),
            work.clone(),
            victim.path().to_path_buf(),
        ] {
            assert!(
                !place.join("escaped").exists(),
                "{dir}: ran in {}",
                place.display()
            );
        }
    }
}

/// A `dir` the escrow does not hold as a directory: absent, a file, or reached through a
/// symlink (even one that stays inside). Exit 2, the reason named, nothing run.
#[test]
fn a_dir_the_escrow_lacks_is_refused_with_the_reason() {
    let extra = format!("ln -s {TOP} link && mkdir real && ln -s ../{TOP} real/up && touch file");
    for (dir, reason) in [
        ("missing", "`missing` does not exist"),
        ("file", "`file` is not a directory"),
        (
            "link",
            "`link` is a symlink, and links are not followed here",
        ),
        (
            "real/up",
            "`real/up` is a symlink, and links are not followed here",
        ),
    ] {
        let demo = foldered("none", &extra, &|r| {
            with_dir(dir)(r).replace(
                "command = [\"make\"]",
                "command = [\"sh\", \"-c\", \"touch ran; make\"]",
            )
        });
        demo.env
            .cmd(["lock", "--no-trace", "operator/reprove.toml"])
            .assert()
            .success();
        let work = demo.env.path("work");
        let out = demo
            .verify([crate::support::BUNDLE])
            .arg("--work-dir")
            .arg(&work)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{dir}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "`[build] dir` is not a directory beneath the unpacked escrow: {reason}"
            )),
            "{dir}: {stderr}"
        );
        let tree = work.join("rebuild-1/tree");
        assert!(!ran_anywhere(&tree), "{dir}: the command ran");
    }
}

fn ran_anywhere(tree: &Path) -> bool {
    walk(tree).iter().any(|p| p.ends_with("ran"))
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
