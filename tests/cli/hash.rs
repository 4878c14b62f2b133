use predicates::prelude::*;

use crate::json;
use crate::support::TestEnv;

/// Both digests of a file, and a tree's, as text and as JSON (known answers: `abc` is the
/// test vector of both algorithms).
#[test]
fn hash_file_prints_both_digests() {
    let env = TestEnv::new().file("abc", "abc").file("tree/a", "abc");
    let out = env.cmd(["hash", "abc", "tree"]).output().unwrap();
    assert!(out.status.success());
    crate::snapshot::plain().bind(|| {
        insta::assert_snapshot!("hash_file_and_tree", String::from_utf8_lossy(&out.stdout));
    });
    let v: json::Hash = json::of(&mut env.cmd(["hash", "--json", "abc", "tree"]), 0);
    assert_eq!(v.schema_version, 1);
    let [file, tree] = &v.entries[..] else {
        panic!("{v:?}")
    };
    assert_eq!((file.path.as_str(), file.kind.as_str()), ("abc", "file"));
    assert_eq!((file.size, file.files), (3, None));
    assert_eq!(
        file.sha256,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        file.blake3,
        "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    );
    assert_eq!((tree.path.as_str(), tree.kind.as_str()), ("tree", "tree"));
    assert_eq!((tree.size, tree.files), (3, Some(1)));
}

#[test]
fn sha256sum_format_is_checkable_by_coreutils() {
    let env = TestEnv::new().file("a", "one").file("b c", "two");
    let out = env
        .cmd(["hash", "--sha256sum", "a", "b c"])
        .output()
        .unwrap();
    assert!(out.status.success());
    env.write("SUMS", &out.stdout);
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SUMS"])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn missing_path_is_an_error_with_exit_2() {
    let env = TestEnv::new().file("a", "one");
    env.cmd(["hash", "a", "nope"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("sha256:"))
        .stderr(predicate::str::contains("error: failed to read `nope`"));
}

/// `docs/tree_digest.py`, the spec's short reference script, agrees with `reprove hash` on the
/// demo's source tree (with a symlink, an empty folder and an awkward name added).
#[test]
fn tree_digest_matches_the_reference_script() {
    let env = TestEnv::new();
    let tree = env.path("tree");
    crate::support::run_ok(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(crate::support::demo_dir())
            .arg(&tree),
    );
    std::fs::create_dir(tree.join("empty dir")).unwrap();
    std::os::unix::fs::symlink("../Makefile", tree.join("src/link")).unwrap();
    std::fs::write(tree.join("src/naïve\tname"), "x").unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tree_digest.py");
    let expected =
        crate::support::run_ok(std::process::Command::new("python3").arg(script).arg(&tree));
    env.cmd(["hash", "tree"])
        .assert()
        .success()
        .stdout(predicate::str::contains(expected.trim()));
}
