//! Image maps end to end (issue 9, item 1): a composite image — a 24-byte header with a CRC,
//! the objcopy output of a supervisor ELF, fill, a `rootfs.tar.gz` — explained part by part,
//! with parts found by content in the rebuilt tree or declared. Built with the real gcc,
//! objcopy, tar and gzip from `testdata/composite`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{run_ok, TestEnv};

fn composite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/composite")
}

/// Build the composite firmware from a copy of its source in `dir`, edited by `edit` (given
/// the copy's folder), with `make VARS…`; returns the image.
fn build(dir: &Path, edit: impl FnOnce(&Path), vars: &[&str]) -> PathBuf {
    run_ok(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(composite_dir())
            .arg(dir),
    );
    edit(dir);
    run_ok(
        std::process::Command::new("make")
            .args(["-s", "-C"])
            .arg(dir)
            .args(vars)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    dir.join("out/firmware.img")
}

fn replace(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "`{from}` is not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// The vendor's edits: a hidden account in the table, a changed constant in `auth_check`'s
/// hash, another message of the day in the root file system.
fn backdoor(dir: &Path) {
    let c = dir.join("supervisor.c");
    replace(&c, "    \"monitor\",\n", "    \"monitor\",\n    \"svc\",\n");
    replace(
        &c,
        "    0x0d107d09u,\n",
        "    0x0d107d09u,\n    0x13371337u,\n",
    );
    replace(&c, "16777619u", "16777618u");
    std::fs::write(
        dir.join("rootfs/etc/motd"),
        "ACME switch supervisor (vendor build)\n",
    )
    .unwrap();
}

/// `reprove diff --json` of `rebuilt` (built in `tree`) against `shipped`, with `args`.
fn diff(env: &TestEnv, rebuilt: &Path, shipped: &Path, args: &[&str]) -> Value {
    let out = env
        .cmd(["diff", "--json"])
        .arg(rebuilt)
        .arg(shipped)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn leaf<'v>(v: &'v Value, path: &str) -> &'v Value {
    v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no leaf `{path}` in {v:#}"))
}

/// The ranges of a leaf as `(location, cause kind, symbol)`.
fn places(leaf: &Value) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    leaf["content"]["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                s(&r["location"]),
                s(&r["cause"]["kind"]),
                s(&r["cause"]["symbol"]),
            )
        })
        .collect()
}

/// The header's CRC and lengths are fields: changed with the parts, so checksums.
fn assert_header_checksum(v: &Value) {
    let header = leaf(v, "firmware.img//header");
    let fields = header["metadata"].to_string();
    assert!(fields.contains("crc32 at 0x14"), "{header:#}");
    assert!(
        fields.contains("CRC-32 of the image after the header"),
        "{header:#}"
    );
    assert!(
        header["causes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "checksum"),
        "{header:#}"
    );
}

/// The supervisor part: the table in `.rodata`, the code change in `auth_check`.
fn assert_supervisor(v: &Value) {
    let sup = leaf(v, "firmware.img//out/supervisor.elf");
    let places = places(sup);
    assert!(
        places
            .iter()
            .any(|(loc, kind, sym)| loc == ".text" && kind == "code" && sym == "auth_check"),
        "{sup:#}"
    );
    // The hidden account: both arrays of the table, in `.rodata`, named as data changes.
    for object in ["users", "hashes"] {
        assert!(
            places
                .iter()
                .any(|(loc, kind, sym)| loc == ".rodata" && kind == "data" && sym == object),
            "{object}: {sup:#}"
        );
    }
    assert!(sup["notes"].to_string().contains("raw image"), "{sup:#}");
}

#[test]
fn diff_explains_a_padded_composite_image_part_by_part() {
    let env = TestEnv::new();
    let rebuilt = build(&env.path("rebuilt"), |_| {}, &[]);
    let shipped = build(&env.path("vendor"), backdoor, &[]);
    let tree = env.path("rebuilt");
    let v = diff(
        &env,
        &rebuilt,
        &shipped,
        &["--parts-from", tree.to_str().unwrap()],
    );
    assert_eq!(v["verdict"], "different");
    assert_header_checksum(&v);
    assert_supervisor(&v);
    // The root file system: the member named.
    let motd = leaf(&v, "firmware.img//out/rootfs.tar.gz//etc/motd");
    assert_eq!(motd["change"], "changed");
    // The fill matched: no leaf, and nothing else is unexplained at the top.
    assert!(v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["path"] != "firmware.img" && l["path"] != "firmware.img//padding-1"));
    assert_eq!(v["leaves"].as_array().unwrap().len(), 3, "{v:#}");

    // Without the tree, the same pair is bytes only.
    let v = diff(&env, &rebuilt, &shipped, &[]);
    assert_eq!(v["leaves"][0]["path"], "firmware.img");
}

#[test]
fn diff_finds_parts_that_moved_when_the_supervisor_grew() {
    // No fill, and a table that grew: the root file system starts later in the shipped image
    // and is found by its gzip magic; the header's lengths and offset follow.
    let env = TestEnv::new();
    let rebuilt = build(&env.path("rebuilt"), |_| {}, &["ALIGN=1"]);
    let grown = |dir: &Path| {
        backdoor(dir);
        replace(
            &dir.join("supervisor.c"),
            "#define SLOTS 8",
            "#define SLOTS 12",
        );
    };
    let shipped = build(&env.path("vendor"), grown, &["ALIGN=1"]);
    let tree = env.path("rebuilt");
    let v = diff(
        &env,
        &rebuilt,
        &shipped,
        &["--parts-from", tree.to_str().unwrap()],
    );
    assert_header_checksum(&v);
    let header = leaf(&v, "firmware.img//header").to_string();
    assert!(header.contains("offset of `out/rootfs.tar.gz`"), "{header}");
    let sup = leaf(&v, "firmware.img//out/supervisor.elf");
    assert_eq!(sup["content"]["left_size"], 384);
    assert_eq!(sup["content"]["right_size"], 480);
    leaf(&v, "firmware.img//out/rootfs.tar.gz//etc/motd");
}

#[test]
fn diff_takes_a_declared_part_and_says_when_it_is_not_there() {
    let env = TestEnv::new();
    let rebuilt = build(&env.path("rebuilt"), |_| {}, &[]);
    let shipped = build(&env.path("vendor"), backdoor, &[]);
    let tree = env.path("rebuilt");
    let sup = format!(
        "{}@0x18:{}",
        tree.join("out/supervisor.bin").display(),
        tree.join("out/supervisor.elf").display()
    );
    // Declared, without the tree: the supervisor by its ELF; the rest is bytes.
    let v = diff(&env, &rebuilt, &shipped, &["--part", &sup]);
    let name = format!(
        "firmware.img//{}",
        tree.join("out/supervisor.bin").display()
    );
    let part = leaf(&v, &name);
    assert!(places(part)
        .iter()
        .any(|(loc, _, sym)| loc == ".text" && sym == "auth_check"));
    assert!(
        part["notes"].to_string().contains("declared part"),
        "{part:#}"
    );
    leaf(&v, "firmware.img//trailer");

    // Declared at an offset where it is not: an error in the report, on a leaf of its own.
    let wrong = format!("{}@0x20", tree.join("out/supervisor.bin").display());
    let v = diff(&env, &rebuilt, &shipped, &["--part", &wrong]);
    let image = leaf(&v, "firmware.img");
    let notes = image["notes"].to_string();
    assert!(
        notes.contains("error: declared part") && notes.contains("is not at 0x20"),
        "{image:#}"
    );
    assert_eq!(image["verdict"], "different");

    // A part file that does not exist is a usage error.
    env.cmd(["diff"])
        .arg(&rebuilt)
        .arg(&shipped)
        .args(["--part", "no/such.bin@0x18"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("failed to read `no/such.bin`"));
    env.cmd(["diff"])
        .arg(&rebuilt)
        .arg(&shipped)
        .args(["--part", "a.bin@zz"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a number: `zz`"));
}

/// The composite firmware as an operator has it: the recipe and escrow in `operator/`, the
/// vendor's image (built from `edit`ed source) in `shipped/`, `extra` appended to the recipe.
fn operator(edit: impl FnOnce(&Path), extra: &str) -> TestEnv {
    let env = TestEnv::new();
    let digest = run_ok(
        std::process::Command::new(composite_dir().join("make-escrow.sh"))
            .arg(env.path("operator/escrow")),
    );
    let template = std::fs::read_to_string(composite_dir().join("reprove.toml.in")).unwrap();
    let recipe = template.replace("sha256:REPLACE_ME", digest.trim()) + extra;
    env.write("operator/reprove.toml", recipe);
    let shipped = build(&env.path("vendor"), edit, &[]);
    std::fs::create_dir_all(env.path("shipped")).unwrap();
    std::fs::copy(shipped, env.path("shipped/firmware.img")).unwrap();
    env.cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    env
}

fn verify(env: &TestEnv, code: i32) -> Value {
    let out = env
        .cmd(["verify", "operator/reprove.toml", "--unsigned", "--json"])
        .args([
            "--out",
            "att.intoto.jsonl",
            "--shipped",
            "shipped/firmware.img",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn verify_explains_the_hidden_account_in_a_composite_image() {
    // The part declared at a wrong offset is reported; the others are found by content.
    let declared = "\n[[artifact.part]]\npath = \"out/rootfs.tar.gz\"\noffset = 0x100\n";
    let env = operator(backdoor, declared);
    // Different, and the recipe is wrong: the worse of the two, exit 2, after the report.
    let v = verify(&env, 2);
    let img = &v["artifacts"][0];
    assert_eq!(img["verdict"], "different");
    let d = &img["difference"];
    assert_header_checksum(d);
    assert_supervisor(d);
    leaf(d, "firmware.img//out/rootfs.tar.gz//etc/motd");
    let image = leaf(d, "firmware.img");
    assert!(
        image["notes"]
            .to_string()
            .contains("error: declared part `out/rootfs.tar.gz` is not at 0x100"),
        "{image:#}"
    );
    // The text says it too, part by part.
    let out = env
        .cmd(["verify", "operator/reprove.toml", "--unsigned"])
        .args([
            "--out",
            "att.intoto.jsonl",
            "--shipped",
            "shipped/firmware.img",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("EXECUTABLE CODE in `.text`, function `auth_check`"),
        "{text}"
    );
    assert!(
        text.contains("firmware.img//out/rootfs.tar.gz//etc/motd"),
        "{text}"
    );
}

#[test]
fn verify_checks_a_declared_part_of_an_identical_image() {
    let declared = "\n[[artifact.part]]\npath = \"out/supervisor.bin\"\noffset = 24\nelf = \"out/supervisor.elf\"\n\n[[artifact.part]]\npath = \"out/missing.bin\"\n";
    let env = operator(|_| {}, declared);
    // The bytes are the shipped ones, so the verdict is `identical`; but the recipe declares a
    // part the image does not hold: a wrong recipe, exit 2.
    let v = verify(&env, 2);
    let img = &v["artifacts"][0];
    assert_eq!(img["verdict"], "identical");
    let notes = img["notes"].to_string();
    assert!(
        notes.contains("error: declared part `out/missing.bin` was not produced by the rebuild"),
        "{img:#}"
    );
    assert!(!notes.contains("supervisor.bin"), "{img:#}");
    // `rebuild` checks the declarations too, and says so in JSON and on stderr.
    let out = env
        .cmd(["rebuild", "operator/reprove.toml", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let v: crate::json::Rebuild = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.result, "identical");
    assert_eq!(
        v.recipe_errors,
        ["declared part `out/missing.bin` was not produced by the rebuild"]
    );
    assert!(
        stderr.starts_with(
            "error: the recipe `operator/reprove.toml` declares parts the rebuilt image does \
             not hold: declared part `out/missing.bin` was not produced by the rebuild\n"
        ),
        "{stderr}"
    );
}

#[test]
fn a_link_out_of_the_tree_is_no_part() {
    // The rebuilt tree is the build's: a link it planted to a file outside (here, a copy of
    // the supervisor's raw binary) must not be read as one of its parts, in any folder.
    let env = TestEnv::new();
    let rebuilt = build(&env.path("rebuilt"), |_| {}, &[]);
    let shipped = build(&env.path("vendor"), backdoor, &[]);
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(
        env.path("rebuilt/out/supervisor.bin"),
        outside.join("sup.bin"),
    )
    .unwrap();
    let tree = env.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::os::unix::fs::symlink(outside.join("sup.bin"), tree.join("sup.bin")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("dir")).unwrap();
    let v = diff(
        &env,
        &rebuilt,
        &shipped,
        &["--parts-from", tree.to_str().unwrap()],
    );
    let paths = v["leaves"].to_string();
    assert!(!paths.contains("sup.bin"), "{v:#}");
    assert_eq!(v["leaves"][0]["path"], "firmware.img", "{v:#}");
}
