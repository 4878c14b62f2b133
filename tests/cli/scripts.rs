//! Issue 13, item 8: the scripts honour `CARGO_TARGET_DIR`. They take the binary's path from
//! cargo (`scripts/reprove-bin.sh`, which reads the `executable` cargo reports) instead of
//! assuming `./target/release/reprove`.

use std::path::Path;
use std::process::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_binary_is_found_where_cargo_target_dir_puts_it() {
    // The target folder this test binary was built in, reached under another name: cargo
    // finds the build fresh there, and the path it reports is the new name's.
    let bin = assert_cmd::cargo::cargo_bin("reprove");
    let target = bin.parent().and_then(Path::parent).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("my-targets");
    std::os::unix::fs::symlink(target, &link).unwrap();
    let out = Command::new(manifest().join("scripts/reprove-bin.sh"))
        .arg("--debug")
        .env("CARGO_TARGET_DIR", &link)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        found.trim_end(),
        link.join("debug/reprove").display().to_string()
    );
    let version = Command::new(found.trim_end())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("reprove "));
}

#[test]
fn no_script_assumes_the_target_folder() {
    for dir in ["scripts", ".ci"] {
        for entry in std::fs::read_dir(manifest().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for assumed in ["target/release", "target/debug", "/target/demo"] {
                assert!(
                    !text.contains(assumed),
                    "`{}` names `{assumed}`: take the path from scripts/reprove-bin.sh",
                    path.display()
                );
            }
        }
    }
}
