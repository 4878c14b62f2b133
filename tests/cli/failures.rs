//! Failures say why (issue 13, items 1, 5 and 9): a failed or timed-out build shows its last
//! log lines and where the whole log is kept; `rebuild --work-dir`; a missing artifact names
//! similar files; the messages a new user met; one file mode for every report; the trailer
//! allowance a report suggests without applying it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::json::{self, parse, Rebuild, Verify};
use crate::snapshot;
use crate::support::{tamper, Demo, TestEnv, BUNDLE};

/// What `make` says where there is no makefile: the cause a user had to rerun to find.
const NO_MAKEFILE: &str = "make: *** No targets specified and no makefile found";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The demo, locked, with its build run where there is no makefile.
fn failing_demo() -> Demo {
    let demo = Demo::locked("sandbox");
    demo.set_recipe(&demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"make\", \"-C\", \"/tmp\"]",
    ));
    demo
}

/// The path printed after `the whole log: ` in `text`.
fn kept_path(text: &str) -> PathBuf {
    let rest = text
        .split("the whole log: `")
        .nth(1)
        .unwrap_or_else(|| panic!("no kept log in {text}"));
    PathBuf::from(&rest[..rest.find('`').unwrap()])
}

/// A kept log of a failed build: it holds the cause, and outside a work folder it is named by
/// its own sha256.
fn assert_kept_in_cache(path: &Path, cause: &str) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(String::from_utf8_lossy(&bytes).contains(cause));
    let digest = reprove::hash::hash_bytes(&bytes).sha256.hex();
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("sha256-{digest}.log")
    );
    assert_eq!(path.parent().unwrap().file_name().unwrap(), "logs");
}

fn tail_has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|l| l.contains(wanted))
}

/// `reprove ARGS…` in `dir` under `umask`, through `sh` (the test process's own umask is
/// not ours to change: the test threads share it).
fn under_umask(dir: &Path, umask: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(assert_cmd::cargo::cargo_bin("reprove"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_failed_build_shows_the_last_lines_of_its_log_and_keeps_it() {
    let demo = failing_demo();
    let env = &demo.env;

    // rebuild, text: the cause, and where the whole log is.
    let out = env
        .cmd(["rebuild", "operator/reprove.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let kept = kept_path(&text);
    assert_kept_in_cache(&kept, NO_MAKEFILE);
    // The verdict, how the build ended, where the whole log is and its last lines, and each
    // artifact not produced.
    snapshot::settings(env.root()).bind(|| {
        insta::assert_snapshot!("rebuild_a_failed_build", text);
    });

    // rebuild, JSON: the same, with the log's digest beside it.
    let out = env
        .cmd(["rebuild", "operator/reprove.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Rebuild = parse(&out);
    assert_eq!(v.result, "build-failed");
    let build = v.build.as_ref().unwrap();
    assert_eq!(
        (build.termination.kind.as_str(), build.termination.value),
        ("exited", Some(2))
    );
    let log = &build.log;
    assert!(tail_has(&log.tail, NO_MAKEFILE), "{v:#?}");
    assert_eq!(log.kept.as_deref(), Some(kept.to_str().unwrap()));
    assert!(log.not_kept.is_none());
    assert!(kept
        .to_string_lossy()
        .contains(log.sha256.trim_start_matches("sha256:")));
    assert!(v.artifacts.iter().all(|a| a.hashes.is_none()), "{v:#?}");

    // `--log-lines 0` hides the tail, not the path; `--log-lines 1` shows one line.
    let out = env
        .cmd(["rebuild", "operator/reprove.toml", "--log-lines", "0"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        !text.contains(NO_MAKEFILE) && text.contains("the whole log: `"),
        "{text}"
    );
    let v: Rebuild = parse(
        &env.cmd([
            "rebuild",
            "operator/reprove.toml",
            "--json",
            "--log-lines",
            "1",
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(v.build.unwrap().log.tail.len(), 1);

    // verify, text and HTML.
    let out = demo
        .verify([BUNDLE])
        .args(["--html", "report.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("acme-router-fw 1.0.0: build-failed"),
        "{text}"
    );
    assert!(text.contains(&format!("| {NO_MAKEFILE}")), "{text}");
    assert_kept_in_cache(&kept_path(&text), NO_MAKEFILE);
    let page = std::fs::read_to_string(env.path("report.html")).unwrap();
    assert!(page.contains("<pre class=\"log-tail\">"), "{page}");
    assert!(page.contains("No targets specified and no makefile found"));
    assert!(page.contains("the whole log: <code>"));

    // verify, JSON (the predicate): the tail and the copy beside the log's digest.
    let out = demo.verify([BUNDLE]).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Verify = parse(&out);
    let log = &v.rebuilds[0].log;
    assert!(tail_has(&log.tail, NO_MAKEFILE), "{v:#?}");
    assert_kept_in_cache(Path::new(log.kept.as_deref().unwrap()), NO_MAKEFILE);
    assert!(log.size > 0);

    // Run from the recipe's folder with a source path that climbs out of it: paths print as
    // written, never `./../`.
    let recipe = demo
        .recipe()
        .replace("path = \"escrow/", "path = \"../operator/escrow/");
    demo.set_recipe(&recipe);
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--json",
            "--out",
            "../att2.intoto.jsonl",
            "--shipped",
            &format!("../{BUNDLE}"),
        ])
        .current_dir(env.path("operator"))
        .output()
        .unwrap();
    let v: Verify = parse(&out);
    assert_eq!(
        v.escrow.name,
        "../operator/escrow/acme-router-fw-1.0.0.tar.gz"
    );
    assert_eq!(v.lock.name, "reprove.lock");
    assert!(!stdout(&out).contains("./.."), "{v:#?}");

    // The report and the attestation under a 002 umask: 0664, as `diff --html` below.
    let out = under_umask(
        env.root(),
        "002",
        &[
            "verify",
            "operator/reprove.toml",
            "--unsigned",
            "--out",
            "att.intoto.jsonl",
            "--html",
            "report.html",
            "--shipped",
            BUNDLE,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(mode(&env.path("report.html")), 0o664);
    assert_eq!(mode(&env.path("att.intoto.jsonl")), 0o664);
}

#[test]
fn a_timed_out_build_shows_the_last_lines_of_its_log() {
    let demo = Demo::new("sandbox");
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            "command = [\"sh\", \"-c\", \"echo waiting for nothing; sleep 60\"]",
        )
        .replace("timeout = \"5m\"", "timeout = \"1s\"")
        .replace("tools = [", "tools = [\"sleep\", ");
    demo.set_recipe(&recipe);
    // A traced lock would run the build to its timeout: declare the tools instead.
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
    assert_eq!(v.rebuilds[0].termination.kind, "timed_out");
    assert!(
        tail_has(&v.rebuilds[0].log.tail, "waiting for nothing"),
        "{v:#?}"
    );
    let out = demo.verify([BUNDLE]).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("rebuild 1: timed out"), "{text}");
    assert!(text.contains("| waiting for nothing"), "{text}");
}

#[test]
fn rebuild_keeps_its_work_dir_and_a_missing_artifact_names_similar_files() {
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    demo.set_recipe(&demo.recipe().replace(
        "path = \"out/firmware.img\"",
        "path = \"out/firmware.image\"",
    ));

    // The named work folder keeps the tree and the log.
    let out = env
        .cmd(["rebuild", "operator/reprove.toml", "--work-dir", "wd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "firmware.image: not produced: `out/firmware.image` does not exist\n  similar \
             files the build made: `out/firmware.img`"
        ),
        "{text}"
    );
    assert!(env.path("wd/rebuild-1/tree/out/firmware.img").is_file());
    assert!(env.path("wd/rebuild-1/build.log").is_file());
    env.cmd(["rebuild", "operator/reprove.toml", "--work-dir", "wd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the work folder `wd` is not empty: a rebuild starts from nothing; name a new folder",
        ));

    let v: Rebuild = parse(
        &env.cmd(["rebuild", "operator/reprove.toml", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(v.artifacts[0].similar[0], "out/firmware.img", "{v:#?}");
    assert_eq!(
        v.artifacts[0].absent.as_deref(),
        Some("`out/firmware.image` does not exist"),
        "{v:#?}"
    );
    let v: Verify = parse(&demo.verify([BUNDLE]).arg("--json").output().unwrap());
    assert_eq!(v.artifacts[0].verdict, "missing");
    assert_eq!(v.artifacts[0].similar[0], "out/firmware.img", "{v:#?}");
    assert_eq!(v.rebuilds[0].artifacts[0].similar[0], "out/firmware.img");
    // Missing on both sides: the text still says why the rebuild lacks it, and what it made.
    let text = stdout(&demo.verify([BUNDLE]).output().unwrap());
    for line in [
        "absent from the rebuild: ",
        "similar files the build made: `out/firmware.img`",
        "absent from the shipped set",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }

    // A failed build with a work folder: the log stays there, and its path is printed.
    demo.set_recipe(&demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"make\", \"-C\", \"/tmp\"]",
    ));
    let v: Rebuild = parse(
        &env.cmd([
            "rebuild",
            "operator/reprove.toml",
            "--json",
            "--work-dir",
            "wd2",
        ])
        .output()
        .unwrap(),
    );
    let log = &v.build.as_ref().unwrap().log;
    assert_eq!(
        log.kept.as_deref(),
        Some("wd2/rebuild-1/build.log"),
        "{v:#?}"
    );
    assert!(tail_has(&log.tail, NO_MAKEFILE));

    // A tool the recipe names and the lock lacks: which one, its file, and what to run.
    demo.set_recipe(&demo.recipe().replace("tools = [", "tools = [\"xz\", "));
    let out = env
        .cmd(["lock", "--check", "operator/reprove.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "toolchain-drift: the lock `operator/reprove.lock` no longer holds: 1 tool in the \
             recipe but missing from the lock\n  tool `xz` (`/"
        ),
        "{text}"
    );
    assert!(
        text.contains("run `reprove lock operator/reprove.toml` again"),
        "{text}"
    );
    assert!(!text.contains("pins no longer hold"), "{text}");
}

#[test]
fn the_wrong_half_of_a_key_pair_names_the_right_one() {
    let env = TestEnv::new().file(
        "att.intoto.jsonl",
        "{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e30=\",\"signatures\":[]}\n",
    );
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    env.cmd(["attest", "verify", "att.intoto.jsonl", "--key", "vendor"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: `vendor` is a private key, and checking takes the public one: pass \
             `vendor.pub`",
        ))
        .stderr(predicate::str::contains("PEM type label").not());
    env.cmd([
        "verify",
        "reprove.toml",
        "--sign-key",
        "vendor.pub",
        "--shipped",
        "fw.img",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains(
        "error: `vendor.pub` is a public key, and signing takes the private one: pass `vendor`",
    ));
}

/// See issue 13: `diff --html` and `verify --html` once got different modes (`verify`'s are
/// checked with its failed build above). Every report,
/// attestation, lock and public key is created as other tools create files: 0666 less the
/// umask; only the private key is 0600 whatever the umask.
#[test]
fn reports_are_written_with_the_mode_the_umask_gives() {
    let env = TestEnv::new().file("a", "left").file("b", "right");
    for (umask, expected) in [("022", 0o644), ("002", 0o664), ("077", 0o600)] {
        let out = under_umask(
            env.root(),
            umask,
            &["diff", "a", "b", "--html", &format!("{umask}.html")],
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            mode(&env.path(&format!("{umask}.html"))),
            expected,
            "{umask}"
        );
        let key = format!("key-{umask}");
        let out = under_umask(env.root(), umask, &["key", "generate", "--out", &key]);
        assert!(out.status.success());
        assert_eq!(mode(&env.path(&format!("{key}.pub"))), expected, "{umask}");
        assert_eq!(mode(&env.path(&key)), 0o600, "{umask}");
    }
}

#[test]
fn appended_bytes_get_the_trailer_allowance_shown_not_applied() {
    let demo = Demo::locked("sandbox");
    tamper(&demo, |img| img.extend_from_slice(&[0xa5; 64]));
    let out = demo
        .verify([BUNDLE])
        .args(["--rebuilds", "1", "--json", "--html", "report.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Verify = parse(&out);
    let img = &v.artifacts[0];
    assert_eq!(img.name, "firmware.img");
    assert_eq!(img.verdict, "different", "{v:#?}");
    let suggestion = img.suggestion.as_ref().unwrap();
    assert_eq!(suggestion.trailer, 64, "{img:#?}");
    assert_eq!(
        suggestion.toml,
        "[[allow]]\nartifact = \"firmware.img\"\ntrailer = 64\nreason = \"…\"\n"
    );
    let page = std::fs::read_to_string(demo.env.path("report.html")).unwrap();
    assert!(
        page.contains("<pre class=\"suggestion\">[[allow]]"),
        "{page}"
    );

    let out = demo
        .verify([BUNDLE])
        .args(["--rebuilds", "1"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("acme-router-fw 1.0.0: different"), "{text}");
    assert!(
        text.contains("suggestion: the right side is the left side followed by 64 more bytes"),
        "{text}"
    );
    assert!(text.contains("        trailer = 64\n"), "{text}");

    // The suggestion, with its reason filled in, is an allowance that declares exactly that.
    let suggested: Vec<String> = v
        .artifacts
        .iter()
        .filter_map(|a| a.suggestion.as_ref())
        .map(|s| {
            s.toml
                .replace("reason = \"…\"", "reason = \"vendor signature\"")
        })
        .collect();
    demo.set_recipe(&format!("{}\n{}", demo.recipe(), suggested.join("\n")));
    let v: Verify = parse(
        &demo
            .verify([BUNDLE])
            .args(["--rebuilds", "1", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(v.artifacts[0].verdict, "equivalent", "{v:#?}");
    assert!(v.artifacts[0].suggestion.is_none());
}
