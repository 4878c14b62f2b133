//! A Debian source package rebuilt as a user writes it: the escrow is the source package
//! (`.dsc` and its tarballs), the command `dpkg-source -x` then `dpkg-buildpackage -b -uc -us`,
//! nothing more. See issue 13, item 4: the dpkg database the build reads
//! (`/var/lib/dpkg/status`) is pinned by the traced lock and is in the sandbox's view, so
//! neither `-d` nor an empty `--admindir` is needed; and issue 9, item 6: the second rebuild,
//! under the clock variation, unpacks the source package too.

use std::path::Path;

use serde_json::Value;

use crate::support::{run_ok, TestEnv};

/// Make the real source package of `testdata/debian-rom/hello-rom-1.0` in `dir`, with the
/// real tools (`tar`, `dpkg-source -b`).
fn source_package(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/debian-rom/hello-rom-1.0");
    let work = dir.join("hello-rom-1.0");
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(&work),
    );
    run_ok(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&work)
            .args([
                "--exclude=debian",
                "--sort=name",
                "--mtime=@1700000000",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--transform",
                "s,^\\.,hello-rom-1.0,",
                "-czf",
            ])
            .arg(dir.join("hello-rom_1.0.orig.tar.gz"))
            .arg("."),
    );
    run_ok(
        std::process::Command::new("dpkg-source")
            .current_dir(dir)
            .args(["-b", "hello-rom-1.0"]),
    );
    std::fs::remove_dir_all(&work).unwrap();
}

const BUILD: &str =
    "dpkg-source -x hello-rom_1.0-1.dsc src && cd src && dpkg-buildpackage -b -uc -us";

#[test]
fn a_debian_source_package_rebuilds_with_dpkg_buildpackage_alone() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("escrow")).unwrap();
    source_package(&env.path("escrow"));
    // The shipped set: the same source package built on the host, as the distribution did.
    std::fs::create_dir_all(env.path("vendor")).unwrap();
    run_ok(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cp ../escrow/* . && {BUILD}"))
            .current_dir(env.path("vendor"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let out = env.cmd(["hash", "--json", "escrow"]).output().unwrap();
    let hashed: crate::json::Hash = crate::json::parse(&out);
    let digest = &hashed.entries[0].sha256;
    env.write(
        "reprove.toml",
        format!(
            r#"[package]
name = "hello-rom"
version = "1.0-1"

[source]
path = "escrow"
digest = "{digest}"

[toolchain]
tools = ["sh", "dpkg-source", "dpkg-buildpackage", "make"]

[build]
command = ["sh", "-c", "{BUILD}"]
env = {{ SOURCE_DATE_EPOCH = "1700000000" }}

[[artifact]]
path = "hello-rom_1.0-1_all.deb"

[[artifact]]
path = "src/out/hello.rom"
"#
        ),
    );
    env.cmd(["lock", "reprove.toml"]).assert().success();
    let lock = std::fs::read_to_string(env.path("reprove.lock")).unwrap();
    assert!(
        lock.contains("path = \"/var/lib/dpkg/status\""),
        "the dpkg database the build read is pinned"
    );
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--json",
            "--rebuilds",
            "2",
        ])
        .args([
            "--work-dir",
            "work",
            "--out",
            "att.intoto.jsonl",
            "--shipped",
        ])
        .arg("vendor/hello-rom_1.0-1_all.deb")
        .arg("vendor/src/out/hello.rom")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let log = |n: u32| {
        std::fs::read_to_string(env.path(&format!("work/rebuild-{n}/build.log")))
            .unwrap_or_default()
    };
    assert_eq!(out.status.code(), Some(0), "{v}\n{}\n{}", log(1), log(2));
    assert_eq!(v["verdict"], "identical");
    assert_eq!(v["artifacts"][0]["verdict"], "identical");
    assert_eq!(v["artifacts"][1]["verdict"], "identical");
    // The second rebuild ran `dpkg-source -x` under the varied clock, and agreed.
    assert_eq!(
        v["rebuilds"][1]["variation"]["varied"],
        serde_json::json!(["build-dir", "umask", "env-order", "clock"])
    );
    assert!(
        log(2).contains("dpkg-source: info: applying version.patch"),
        "{}",
        log(2)
    );
    assert!(!log(1).contains("cannot open /var/lib/dpkg/status"));
}
