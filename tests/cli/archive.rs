//! Archives from the outside: escrows, shipped bundles and `diff` inputs that hold duplicate
//! names, unpack to too much, hold too many entries or nest too deep. Each is refused with
//! exit 2 and one error naming the archive, the bound and the variable that raises it, and
//! leaves nothing on disk. See: issue 8, item 4 ("one safe extractor").

use std::io::{Cursor, Write as _};
use std::path::Path;

use predicates::prelude::*;
use zip::write::SimpleFileOptions;

use crate::support::{Demo, TestEnv, BUNDLE};

const ESCROW: &str = "operator/escrow/acme-router-fw-1.0.0.tar.gz";

/// A zip of `entries` in order, duplicates included. The zip crate refuses to write a name
/// twice, so each entry is written under a placeholder of the same length and the names are
/// patched in afterwards, in the local and the central headers alike.
fn zip_raw(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let placeholder = |i: usize, name: &str| {
        let tag = format!("{i:0width$}", width = name.len());
        assert_eq!(tag.len(), name.len(), "names of at least two characters");
        tag
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (i, (name, data)) in entries.iter().enumerate() {
        zip.start_file(placeholder(i + 10, name), SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    let mut bytes = zip.finish().unwrap().into_inner();
    for (i, (name, _)) in entries.iter().enumerate() {
        let tag = placeholder(i + 10, name);
        let mut at = 0;
        while let Some(pos) = find(&bytes[at..], tag.as_bytes()) {
            bytes[at + pos..at + pos + tag.len()].copy_from_slice(name.as_bytes());
            at += pos + tag.len();
        }
    }
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A tar of `(name, data)` files, names written as given (no `./` or `//` cleaning).
fn tar_raw(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A tar.gz holding one file of `len` zeros: a few KiB that unpack to `len` bytes.
fn zeros_tar_gz(name: &str, len: usize) -> Vec<u8> {
    gz(&tar_raw(&[(name, &vec![0u8; len])]))
}

const MIB: usize = 1 << 20;

/// Point the recipe at an escrow of `bytes` (pinned by their digest).
fn with_escrow(demo: &Demo, bytes: &[u8]) {
    demo.env.write(ESCROW, bytes);
    let digest = format!("sha256:{}", reprove::hash::hash_bytes(bytes).sha256.hex());
    demo.set_recipe(&demo.recipe().replace(&demo.escrow_digest, &digest));
}

/// The names in a folder, sorted (what a run left behind there).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A test folder for `TMPDIR`, so that what a run leaves in its temporary folder can be seen.
fn tmpdir(env: &TestEnv) -> std::path::PathBuf {
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    tmp
}

#[test]
fn a_zip_escrow_naming_a_member_twice_is_refused_by_verify_and_rebuild() {
    let demo = Demo::locked("none");
    with_escrow(
        &demo,
        &zip_raw(&[
            ("Makefile", b"all:\n\tfalse\n"),
            ("Makefile", b"all:\n\tmkdir -p out\n"),
        ]),
    );
    let tmp = tmpdir(&demo.env);
    demo.verify([BUNDLE])
        .env("TMPDIR", &tmp)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unsafe entry `Makefile`: an earlier entry has the same path",
        ));
    assert!(!demo.env.path("att.intoto.jsonl").exists());
    assert_eq!(names(&tmp), Vec::<String>::new());
    demo.env
        .cmd(["rebuild", "operator/reprove.toml", "--out-dir", "out"])
        .env("TMPDIR", &tmp)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unsafe entry `Makefile`"));
    assert!(!demo.env.path("out").exists());
    assert_eq!(names(&tmp), Vec::<String>::new());
}

#[test]
fn escrow_names_that_are_one_path_after_normalising_are_refused() {
    let demo = Demo::locked("none");
    for (first, second) in [
        ("src/./main.c", "src/main.c"),
        ("src//main.c", "src/main.c"),
    ] {
        for bytes in [
            zip_raw(&[(first, b"int x;\n"), (second, b"int y;\n")]),
            gz(&tar_raw(&[(first, b"int x;\n"), (second, b"int y;\n")])),
        ] {
            with_escrow(&demo, &bytes);
            demo.verify([BUNDLE])
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!(
                    "unsafe entry `{second}`: an earlier entry has the same path"
                )));
            demo.set_recipe(&demo.recipe().replace(
                &format!("sha256:{}", reprove::hash::hash_bytes(&bytes).sha256.hex()),
                &demo.escrow_digest,
            ));
        }
    }
}

#[test]
fn a_shipped_zip_naming_the_image_twice_is_refused_not_judged() {
    let demo = Demo::locked("sandbox");
    let real = demo.unpack_bundle("unpacked");
    let image = std::fs::read(real.join("firmware.img")).unwrap();
    let bundle = std::fs::read(demo.env.path(BUNDLE)).unwrap();
    // A hostile image first, the real one second: a reader that keeps one of them compares
    // only that one.
    let zip = zip_raw(&[
        ("firmware.img", b"backdoored image"),
        ("firmware.img", &image),
        ("acme-router-fw-1.0.0.tar.gz", &bundle),
    ]);
    demo.env.write("release.zip", &zip);
    demo.verify(["release.zip"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("release.zip"))
        .stderr(predicate::str::contains(
            "unsafe entry `firmware.img`: an earlier entry has the same path",
        ));
    assert!(!demo.env.path("att.intoto.jsonl").exists());
}

/// What every bound error says: the archive, the bound's value and the variable raising it.
fn bound_error(archive: &str, var: &str, value: &str) -> impl predicates::Predicate<str> {
    predicate::str::contains(archive)
        .and(predicate::str::contains(format!("`{var}`")))
        .and(predicate::str::contains(value))
        .and(predicate::str::contains("panicked").not())
}

#[test]
fn an_escrow_bomb_stops_at_the_byte_bound_and_leaves_nothing() {
    let demo = Demo::locked("none");
    with_escrow(&demo, &zeros_tar_gz("zeros", 4 * MIB));
    let tmp = tmpdir(&demo.env);
    demo.verify([BUNDLE])
        .env("TMPDIR", &tmp)
        .env("REPROVE_MAX_UNPACKED_BYTES", "1048576")
        .assert()
        .code(2)
        .stderr(bound_error(
            "acme-router-fw-1.0.0.tar.gz",
            "REPROVE_MAX_UNPACKED_BYTES",
            "1048576",
        ));
    assert_eq!(names(&tmp), Vec::<String>::new());
    demo.verify([BUNDLE])
        .args(["--work-dir", "work"])
        .env("REPROVE_MAX_UNPACKED_BYTES", "1048576")
        .assert()
        .code(2);
    assert!(!demo.env.path("work/rebuild-1/tree").exists());
}

#[test]
fn a_shipped_bomb_stops_at_the_byte_bound_and_leaves_nothing() {
    let demo = Demo::locked("none");
    demo.env
        .write("bomb.tar.gz", zeros_tar_gz("firmware.img", 4 * MIB));
    let tmp = tmpdir(&demo.env);
    demo.verify(["bomb.tar.gz"])
        .env("TMPDIR", &tmp)
        .env("REPROVE_MAX_UNPACKED_BYTES", "1048576")
        .assert()
        .code(2)
        .stderr(bound_error(
            "bomb.tar.gz",
            "REPROVE_MAX_UNPACKED_BYTES",
            "1048576",
        ));
    assert_eq!(names(&tmp), Vec::<String>::new());
}

#[test]
fn a_diff_bomb_stops_at_the_byte_bound_and_leaves_nothing() {
    let env = TestEnv::new()
        .file("a.tar.gz", zeros_tar_gz("a.img", 4 * MIB))
        .file("b.tar.gz", zeros_tar_gz("b.img", 4 * MIB));
    let tmp = tmpdir(&env);
    env.cmd(["diff", "a.tar.gz", "b.tar.gz"])
        .env("TMPDIR", &tmp)
        .env("REPROVE_MAX_UNPACKED_BYTES", "1048576")
        .assert()
        .code(2)
        .stderr(bound_error(
            "a.tar.gz",
            "REPROVE_MAX_UNPACKED_BYTES",
            "1048576",
        ));
    assert_eq!(names(&tmp), Vec::<String>::new());
    // Under the default bound the same inputs are compared.
    env.cmd(["diff", "a.tar.gz", "b.tar.gz"])
        .env("TMPDIR", &tmp)
        .assert()
        .code(1);
    assert_eq!(names(&tmp), Vec::<String>::new());
}

#[test]
fn an_escrow_with_too_many_entries_is_refused() {
    let demo = Demo::locked("none");
    let files: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("f{i:02}"), b"x".to_vec()))
        .collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    for bytes in [gz(&tar_raw(&entries)), zip_raw(&entries)] {
        with_escrow(&demo, &bytes);
        demo.verify([BUNDLE])
            .args(["--work-dir", "work"])
            .env("REPROVE_MAX_ENTRIES", "10")
            .assert()
            .code(2)
            .stderr(bound_error(
                "acme-router-fw-1.0.0.tar.gz",
                "REPROVE_MAX_ENTRIES",
                "10",
            ));
        // The work folder keeps what the user may inspect (the unpacked shipped set); the
        // escrow's partial tree is gone.
        assert_eq!(
            names(&demo.env.path("work/rebuild-1")),
            Vec::<String>::new()
        );
        std::fs::remove_dir_all(demo.env.path("work")).unwrap();
        demo.set_recipe(&demo.recipe().replace(
            &format!("sha256:{}", reprove::hash::hash_bytes(&bytes).sha256.hex()),
            &demo.escrow_digest,
        ));
    }
}

#[test]
fn diff_stops_at_the_nesting_bound() {
    let nest = |inner: &[u8]| {
        let mut bytes = inner.to_vec();
        for _ in 0..5 {
            bytes = gz(&bytes);
        }
        bytes
    };
    let env = TestEnv::new()
        .file("a.gz", nest(b"left"))
        .file("b.gz", nest(b"right"));
    env.cmd(["diff", "a.gz", "b.gz"])
        .env("REPROVE_MAX_DEPTH", "3")
        .assert()
        .code(2)
        .stderr(bound_error("a.gz", "REPROVE_MAX_DEPTH", "3"));
    env.cmd(["diff", "a.gz", "b.gz"]).assert().code(1);
}

#[test]
fn diff_counts_entries_against_the_entry_bound() {
    let files: Vec<(String, Vec<u8>)> = (0..30).map(|i| (format!("f{i:02}"), vec![i])).collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let mut other = entries.clone();
    other[0].1 = b"changed";
    let env = TestEnv::new()
        .file("a.tar", tar_raw(&entries))
        .file("b.tar", tar_raw(&other));
    env.cmd(["diff", "a.tar", "b.tar"])
        .env("REPROVE_MAX_ENTRIES", "20")
        .assert()
        .code(2)
        .stderr(bound_error("a.tar", "REPROVE_MAX_ENTRIES", "20"));
}

#[test]
fn diff_does_not_read_duplicate_names_as_an_archive() {
    // The left zip holds `fw.img` twice; read as members, one of them would go unseen.
    let env = TestEnv::new()
        .file(
            "a.zip",
            zip_raw(&[("fw.img", b"hostile"), ("fw.img", b"good")]),
        )
        .file("b.zip", zip_raw(&[("fw.img", b"good")]))
        .file(
            "a.tar",
            tar_raw(&[("fw/./img", b"hostile"), ("fw//img", b"good")]),
        )
        .file("b.tar", tar_raw(&[("fw/img", b"good")]));
    for (left, right) in [("a.zip", "b.zip"), ("a.tar", "b.tar")] {
        env.cmd(["diff", left, right])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("compared as bytes"))
            .stdout(predicate::str::contains("appears twice"));
    }
}

#[test]
fn a_bound_that_is_not_a_number_is_refused() {
    let env = TestEnv::new().file("a", "x").file("b", "y");
    for (var, value) in [
        ("REPROVE_MAX_UNPACKED_BYTES", "64G"),
        ("REPROVE_MAX_ENTRIES", "-1"),
        ("REPROVE_MAX_DEPTH", ""),
        ("REPROVE_MAX_DEPTH", "0"),
    ] {
        env.cmd(["diff", "a", "b"])
            .env(var, value)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("`{var}`")))
            .stderr(predicate::str::contains(format!("`{value}`")));
    }
}

#[test]
fn the_commands_that_read_archives_say_how_to_raise_the_bounds() {
    let env = TestEnv::new();
    for command in ["verify", "rebuild", "lock", "diff"] {
        let help = env.cmd([command, "--help"]).assert().success();
        let text = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
        for var in [
            "REPROVE_MAX_UNPACKED_BYTES",
            "REPROVE_MAX_ENTRIES",
            "REPROVE_MAX_DEPTH",
        ] {
            assert!(text.contains(var), "{command} --help: {text}");
        }
    }
}
