//! Many releases in one run: `verify --manifest FILE` and several recipes, `--jobs`, JSON
//! Lines, the summary table, the worst exit code (issue 11, item 1).

use serde::Deserialize;

use crate::support::{tamper, Demo, TestEnv, BUNDLE};

/// One JSON Lines record of a batch, as documented in `src/output/batch.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    schema_version: u32,
    index: usize,
    origin: String,
    recipe: String,
    exit_code: u8,
    seconds: f64,
    package: Option<Package>,
    verdict: Option<String>,
    attestation: Option<String>,
    report: Option<serde_json::Value>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Package {
    name: String,
    version: String,
}

/// One demo, three releases: the shipped bundle (identical), a tampered copy (different) and a
/// recipe that does not exist (an error). Verified two at a time from a manifest, then from
/// the command line: each gets its record and its attestation, none stops the others, and
/// the run exits with the worst status.
#[test]
fn a_batch_verifies_every_release_and_exits_with_the_worst() {
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    std::fs::create_dir_all(env.path("good")).unwrap();
    std::fs::copy(
        env.path(BUNDLE),
        env.path("good/acme-router-fw-1.0.0.tar.gz"),
    )
    .unwrap();
    tamper(&demo, |img| img[0x200] ^= 0x01);
    env.write(
        "releases.toml",
        "[[release]]\nrecipe = \"operator/reprove.toml\"\nshipped = [\"good/acme-router-fw-1.0.0.tar.gz\"]\nout = \"good.intoto.jsonl\"\n\n\
         [[release]]\nrecipe = \"operator/reprove.toml\"\nshipped = [\"shipped/acme-router-fw-1.0.0.tar.gz\"]\nout = \"tampered.intoto.jsonl\"\n\n\
         [[release]]\nrecipe = \"nowhere/reprove.toml\"\nshipped = [\"good/acme-router-fw-1.0.0.tar.gz\"]\n",
    );
    let out = env
        .cmd([
            "verify",
            "--manifest",
            "releases.toml",
            "--jobs",
            "2",
            "--rebuilds",
            "1",
            "--unsigned",
            "--out-dir",
            "atts",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let mut records: Vec<Record> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    records.sort_by_key(|r| r.index);
    assert_eq!(records.len(), 3, "{stdout}");
    let verdicts: Vec<_> = records.iter().map(|r| r.verdict.as_deref()).collect();
    assert_eq!(verdicts, [Some("identical"), Some("different"), None]);
    assert_eq!(
        records.iter().map(|r| r.exit_code).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for (r, name) in records.iter().zip(["good", "tampered"]) {
        assert_eq!(r.schema_version, 1);
        assert_eq!(
            r.origin,
            format!("`releases.toml`, line {}", 1 + 5 * r.index)
        );
        let package = r.package.as_ref().unwrap();
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("acme-router-fw", "1.0.0")
        );
        let attestation = format!("atts/{name}.intoto.jsonl");
        assert_eq!(r.attestation.as_deref(), Some(attestation.as_str()));
        assert!(env.path(&attestation).is_file(), "{attestation}");
        let report = r.report.as_ref().unwrap();
        assert_eq!(report["verdict"], r.verdict.as_deref().unwrap());
        assert_eq!(report["attestation"], attestation);
        assert!(r.seconds > 0.0 && r.error.is_none());
    }
    let failed = &records[2];
    assert_eq!(failed.recipe, "nowhere/reprove.toml");
    let error = failed.error.as_deref().unwrap();
    assert!(error.contains("`nowhere/reprove.toml`"), "{error}");
    assert!(failed.report.is_none() && failed.attestation.is_none());
    assert_eq!(
        std::fs::read_dir(env.path("atts")).unwrap().count(),
        2,
        "a release that could not be verified writes nothing"
    );

    // The same releases named on the command line (one shipped set for all), in text: each
    // report, then the table; the missing recipe's error on stderr.
    let out = env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "nowhere/reprove.toml",
            "--shipped",
            "good/acme-router-fw-1.0.0.tar.gz",
            "--rebuilds",
            "1",
            "--unsigned",
            "--out-dir",
            "text",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("acme-router-fw 1.0.0: identical\n"),
        "{stdout}"
    );
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("package "))
        .collect();
    let cells: Vec<Vec<&str>> = table
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        cells[0],
        ["package", "version", "verdict", "time", "attestation"]
    );
    assert_eq!(cells[1][..3], ["acme-router-fw", "1.0.0", "identical"]);
    assert_eq!(cells[1][5], "text/acme-router-fw-1.0.0.intoto.jsonl");
    assert_eq!(cells[2][..3], ["nowhere/reprove.toml", "-", "error"]);
    assert_eq!(table[3], "1 of 2 releases verified", "{stdout}");
    assert!(
        stderr.contains("error: recipe 2 (`nowhere/reprove.toml`) could not be verified"),
        "{stderr}"
    );
    assert!(env.path("text/acme-router-fw-1.0.0.intoto.jsonl").is_file());
}

/// A manifest that cannot be used stops the batch before anything runs: one error naming
/// the file and the line, exit 2, nothing written.
#[test]
fn a_bad_manifest_is_refused_with_its_line_before_anything_runs() {
    let env = TestEnv::new()
        .file("m.jsonl", "{\"recipe\": \"a/reprove.toml\", \"shipped\": [\"x\"]}\n{\"recipe\": \"b\", \"shiped\": []}\n")
        .file(
            "same.toml",
            "[[release]]\nrecipe = \"a\"\nshipped = [\"x\"]\nout = \"o\"\n[[release]]\nrecipe = \"b\"\nshipped = [\"y\"]\nout = \"o\"\n",
        );
    for (manifest, wanted) in [
        (
            "m.jsonl",
            "invalid manifest `m.jsonl`, line 2: unknown field `shiped`",
        ),
        (
            "same.toml",
            "`same.toml`, line 1 and `same.toml`, line 5 would both write the attestation `out/o`",
        ),
        ("missing.toml", "failed to read the manifest `missing.toml`"),
    ] {
        let out = env
            .cmd([
                "verify",
                "--manifest",
                manifest,
                "--unsigned",
                "--out-dir",
                "out",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(wanted), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(!env.path("out").exists());
    }
    // One release's flags do not mix with several.
    let out = env
        .cmd([
            "verify",
            "a/reprove.toml",
            "b/reprove.toml",
            "--shipped",
            "x",
            "--out",
            "o",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--out` verifies one release"));
}

/// Several reprove processes verifying at once over one cache, whose store holds a damaged
/// copy of every pinned file: each process finds the damage and repairs it while the others
/// read, link and repair the same objects. Every verification passes, and the cache is left
/// consistent: each object holds the bytes its name says, no temporary file or view remains
/// (issue 11, item 1: caches shared by several processes).
#[test]
fn concurrent_verifications_share_one_cache() {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt as _;
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    let cache = env.path("cache");
    let objects = cache.join("store/objects/sha256");
    std::fs::create_dir_all(&objects).unwrap();
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(env.path("operator/reprove.lock")).unwrap())
            .unwrap();
    let mut planted = std::collections::BTreeSet::new();
    for pin in lock["pin"].as_array().unwrap() {
        let hex = pin["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let executable = pin.get("executable").and_then(toml::Value::as_bool) == Some(true);
        let object = objects.join(if executable {
            format!("{hex}.x")
        } else {
            hex.to_owned()
        });
        std::fs::write(&object, b"damaged").unwrap();
        std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o444)).unwrap();
        planted.insert(object);
    }
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("reprove"))
                .current_dir(env.root())
                .env("REPROVE_CACHE_DIR", &cache)
                .env("NO_COLOR", "1")
                .args([
                    "verify",
                    "operator/reprove.toml",
                    "--unsigned",
                    "--rebuilds",
                    "1",
                ])
                .args([
                    "--out",
                    &format!("att-{i}.intoto.jsonl"),
                    "--shipped",
                    BUNDLE,
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&objects).unwrap() {
        let path = entry.unwrap().path();
        found.insert(path.clone());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let hex = name.strip_suffix(".x").unwrap_or(&name);
        let digest = sha2::Sha256::digest(std::fs::read(&path).unwrap());
        assert_eq!(
            hex,
            format!("{digest:x}"),
            "`{}` holds other bytes",
            path.display()
        );
    }
    assert_eq!(found, planted);
    for leftover in ["store/tmp", "store/views"] {
        let dir = cache.join(leftover);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in `{}`: {left:?}", dir.display());
    }
}
