//! `reprove verify` end to end: the real binary, the real demo, the real compiler.

use predicates::prelude::*;
use serde_json::Value;

use crate::json::{self, Verify};
use crate::snapshot;
use crate::support::{tamper, Demo, BUNDLE};

/// A JSON document other than `verify`'s (`attest verify`'s is the predicate part's).
fn value(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `verify --json` on the shipped bundle, which must pass.
fn verified(demo: &Demo) -> Verify {
    json::of(demo.verify([BUNDLE]).arg("--json"), 0)
}

#[test]
fn the_shipped_bundle_is_identical_on_the_host_too() {
    let v = verified(&Demo::locked("none"));
    assert_eq!(v.build.isolation.backend, "none");
}

#[test]
fn the_shipped_bundle_is_identical() {
    let demo = Demo::locked("sandbox");
    let v = verified(&demo);
    assert_eq!(v.verdict, "identical");
    let names: Vec<&str> = v.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["firmware.img", "acme-router-fw-1.0.0.tar.gz"]);
    assert_eq!(v.rebuilds.len(), 1, "no second rebuild when identical");
    assert_eq!(v.build.isolation.backend, "bwrap");
    assert!(v.build.isolation.version.is_some());
    assert_eq!(v.rebuilds[0].build_path, "/build");
    assert_eq!(v.attestation, "att.intoto.jsonl");
    for a in &v.artifacts {
        assert_eq!(a.verdict, "identical");
        assert_eq!(
            Some(&a.shipped.as_ref().unwrap().digest),
            a.rebuilt[0].as_ref()
        );
    }
    assert!(demo.env.path("att.intoto.jsonl").is_file());
}

#[test]
fn a_tampered_byte_in_the_code_is_different_with_its_offset() {
    let demo = Demo::locked("sandbox");
    tamper(&demo, |img| img[0x200] ^= 0x01);
    let out = demo.verify([BUNDLE]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The whole report: the verdicts, where the byte is and what it is, the toolchain, the
    // escrow, each rebuild.
    snapshot::settings(demo.env.root()).bind(|| {
        insta::assert_snapshot!(
            "verify_a_tampered_byte",
            String::from_utf8_lossy(&out.stdout)
        );
    });
    // The attestation is written for a failure too.
    let att = std::fs::read_to_string(demo.env.path("att.intoto.jsonl")).unwrap();
    assert_eq!(att.lines().count(), 2);
}

#[test]
fn a_tampered_byte_in_the_raw_image_is_named_executable_code_with_its_function() {
    let demo = Demo::locked("none");
    tamper(&demo, |img| img[0x200] ^= 0x01);
    let code = "EXECUTABLE CODE in `.text`, function `main`";
    demo.verify([BUNDLE])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "0x200+1 in .text: {code}"
        )));
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
    let img = &v.artifacts[0];
    assert_eq!(img.name, "firmware.img");
    let range = &first_leaf(img).content.as_ref().unwrap().ranges[0];
    assert_eq!(range.offset, 0x200);
    assert_eq!(range.location.as_deref(), Some(".text"));
    assert_eq!(
        range.cause,
        json::Cause {
            kind: "code".into(),
            section: Some(".text".into()),
            symbol: Some("main".into()),
            ..json::Cause::default()
        }
    );
    // The same image inside the shipped bundle is located through the same ELF.
    let member = first_leaf(&v.artifacts[1]);
    assert_eq!(member.path, "acme-router-fw-1.0.0.tar.gz//firmware.img");
    let ranges = &member.content.as_ref().unwrap().ranges;
    assert_eq!(ranges[0].cause.symbol.as_deref(), Some("main"));
}

#[test]
fn a_deterministic_build_against_a_tampered_binary_is_different_not_nondeterministic() {
    let demo = Demo::locked("sandbox");
    tamper(&demo, |img| img[0x300] ^= 0x80);
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
    assert_eq!(v.verdict, "different");
    assert_eq!(
        v.rebuilds.len(),
        2,
        "a mismatch triggers a second, varied rebuild"
    );
    assert_eq!(v.rebuilds[1].variation.umask, 0o077);
    let img = &v.artifacts[0];
    assert_eq!(img.verdict, "different");
    // The rebuilt side is named by its path in the build tree, not by a work folder.
    assert_eq!(
        img.difference.as_ref().unwrap().left,
        "rebuild 1: out/firmware.img"
    );
    let content = first_leaf(img).content.as_ref().unwrap();
    assert_eq!(content.ranges[0].offset, 0x300);
    assert_eq!(content.differing_bytes, 1);
    // The bundle's difference is found inside it, in its member.
    let bundle = first_leaf(&v.artifacts[1]);
    assert_eq!(bundle.path, "acme-router-fw-1.0.0.tar.gz//firmware.img");
    assert!(img.nondeterminism.is_none());
}

#[test]
fn a_file_absent_from_the_shipped_set_is_missing() {
    let demo = Demo::locked("sandbox");
    // Only the raw image, extracted: the bundle itself is not shipped.
    demo.unpack_bundle("loose");
    let v: Verify = json::of(demo.verify(["loose/firmware.img"]).arg("--json"), 1);
    assert_eq!(v.verdict, "missing");
    assert_eq!(v.artifacts[0].verdict, "identical");
    assert_eq!(v.artifacts[1].verdict, "missing");
    assert!(v.artifacts[1].shipped.is_none());
}

#[test]
fn an_edited_pin_is_toolchain_drift_and_nothing_is_built() {
    let demo = Demo::locked("sandbox");
    let lock_path = demo.env.path("operator/reprove.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    // Change the digest of the pin right after the gcc driver's path.
    let at = lock
        .find("x86_64-linux-gnu-gcc-12\"\ndigest = \"sha256:")
        .expect("gcc is pinned");
    let digit = at + "x86_64-linux-gnu-gcc-12\"\ndigest = \"sha256:".len();
    let mut edited = lock.clone().into_bytes();
    edited[digit] = if edited[digit] == b'0' { b'1' } else { b'0' };
    std::fs::write(&lock_path, edited).unwrap();
    let v: Verify = json::of(
        demo.verify([BUNDLE]).args(["--json", "--work-dir", "work"]),
        2,
    );
    assert_eq!(v.verdict, "toolchain-drift");
    let [drift] = &v.toolchain.drift[..] else {
        panic!("{:?}", v.toolchain.drift)
    };
    assert_eq!(drift.kind, "changed");
    assert!(drift.path.as_deref().unwrap().ends_with("gcc-12"));
    assert_ne!(drift.expected, drift.found);
    assert!(v.rebuilds.is_empty());
    assert!(
        !demo.env.path("work/rebuild-1").exists(),
        "nothing is built"
    );
    // Human output names the pin, expected and found; so does `lock --check`, which says
    // what to run.
    let verify = demo.verify([BUNDLE]).output().unwrap();
    assert_eq!(verify.status.code(), Some(2));
    let check = demo
        .env
        .cmd(["lock", "--check", "operator/reprove.toml"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let lock: json::Lock = json::of(
        &mut demo
            .env
            .cmd(["lock", "--check", "--json", "operator/reprove.toml"]),
        1,
    );
    assert_eq!(lock.lock, "operator/reprove.lock");
    assert_eq!(lock.drift.as_ref().map(Vec::len), Some(1));
    snapshot::settings(demo.env.root()).bind(|| {
        insta::assert_snapshot!(
            "verify_an_edited_pin",
            String::from_utf8_lossy(&verify.stdout)
        );
        insta::assert_snapshot!(
            "lock_check_an_edited_pin",
            String::from_utf8_lossy(&check.stdout)
        );
    });
}

#[test]
fn a_wrong_escrow_digest_is_source_mismatch() {
    let demo = Demo::locked("sandbox");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    demo.set_recipe(&demo.recipe().replace(&demo.escrow_digest, &wrong));
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 2);
    assert_eq!(v.verdict, "source-mismatch");
    assert_eq!(v.escrow.expected, wrong);
    assert_eq!(
        format!("sha256:{}", v.escrow.digest.as_ref().unwrap().sha256),
        demo.escrow_digest
    );
    assert!(v.rebuilds.is_empty());
}

#[test]
fn a_failing_build_is_build_failed() {
    let demo = Demo::locked("sandbox");
    demo.set_recipe(&demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"make\", \"no-such-target\"]",
    ));
    demo.verify([BUNDLE])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "acme-router-fw 1.0.0: build-failed",
        ));
}

#[test]
fn a_build_past_its_timeout_is_killed_and_build_failed() {
    let demo = Demo::new("sandbox");
    let recipe = demo
        .recipe()
        .replace(
            "command = [\"make\"]",
            "command = [\"sh\", \"-c\", \"sleep 3600 & sleep 3600\"]",
        )
        .replace("timeout = \"5m\"", "timeout = \"1s\"")
        .replace("tools = [", "tools = [\"sleep\", ");
    demo.set_recipe(&recipe);
    // A traced lock would run the build to its timeout: declare the tools instead.
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    // Without the timeout the build sleeps an hour: a run that ends within this generous
    // bound was stopped by it (a wall-clock assert tighter than that flakes under load).
    let v: Verify = json::of(
        demo.verify([BUNDLE])
            .arg("--json")
            .timeout(std::time::Duration::from_secs(900)),
        1,
    );
    assert_eq!(v.verdict, "build-failed");
    assert_eq!(v.rebuilds[0].termination.kind, "timed_out");
}

/// The 1-based line of the first line of `text` that is `wanted`.
fn line_of(text: &str, wanted: &str) -> usize {
    text.lines()
        .position(|l| l == wanted)
        .expect("the line is there")
        + 1
}

#[test]
fn a_malformed_recipe_names_the_line_and_writes_nothing() {
    let demo = Demo::locked("sandbox");
    let line = line_of(&demo.recipe(), "[build]");
    demo.set_recipe(&demo.recipe().replace("[build]", "[build\n"));
    demo.verify([BUNDLE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "reprove.toml`, line {line}, "
        )))
        .stderr(predicate::str::contains("panicked").not());
    assert!(!demo.env.path("att.intoto.jsonl").exists());
}

#[test]
fn an_unknown_key_in_the_recipe_is_refused() {
    let demo = Demo::locked("sandbox");
    let line = line_of(&demo.recipe(), "[build]") + 1;
    demo.set_recipe(&demo.recipe().replace("[build]", "[build]\nparallel = true"));
    demo.verify([BUNDLE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown field `parallel`"))
        .stderr(predicate::str::contains(format!("line {line}, ")));
}

#[test]
fn a_recipe_without_a_lock_says_to_lock_it() {
    let demo = Demo::new("sandbox");
    demo.verify([BUNDLE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("run `reprove lock"));
}

/// Write a hostile or damaged escrow and point the recipe at it; returns the digest now in the
/// recipe, for [`restore_escrow`].
fn with_escrow(demo: &Demo, bytes: &[u8]) -> String {
    demo.env
        .write("operator/escrow/acme-router-fw-1.0.0.tar.gz", bytes);
    let digest = format!("sha256:{}", reprove::hash::hash_bytes(bytes).sha256.hex());
    demo.set_recipe(&demo.recipe().replace(&demo.escrow_digest, &digest));
    digest
}

fn restore_escrow(demo: &Demo, digest: &str) {
    demo.set_recipe(&demo.recipe().replace(digest, &demo.escrow_digest));
}

#[test]
fn corrupted_and_truncated_escrows_are_refused_with_exit_2() {
    let demo = Demo::locked("sandbox");
    let good = std::fs::read(demo.env.path("operator/escrow/acme-router-fw-1.0.0.tar.gz")).unwrap();
    let mut corrupted = good.clone();
    let mid = corrupted.len() / 2;
    corrupted[mid] ^= 0xff;
    corrupted[mid + 1] ^= 0xff;
    let truncated = good[..good.len() * 2 / 3].to_vec();
    for (what, bytes) in [("corrupted", corrupted), ("truncated", truncated)] {
        let digest = with_escrow(&demo, &bytes);
        demo.verify([BUNDLE])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("cannot be read"))
            .stderr(predicate::str::contains("panicked").not());
        assert!(
            !demo.env.path("att.intoto.jsonl").exists(),
            "{what}: nothing written"
        );
        restore_escrow(&demo, &digest);
    }
}

/// A tar.gz holding one hostile entry, made with Python's tarfile (which writes what it is told).
fn hostile_tar(kind: &str) -> Vec<u8> {
    let script = format!(
        r#"
import io, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    kind = "{kind}"
    info = tarfile.TarInfo("Makefile"); data = b"all:\n\ttrue\n"; info.size = len(data)
    t.addfile(info, io.BytesIO(data))
    if kind in ("dotdot", "absolute"):
        info = tarfile.TarInfo("../evil" if kind == "dotdot" else "/tmp/evil"); info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    else:
        info = tarfile.TarInfo("escape"); info.type = tarfile.SYMTYPE; info.linkname = "../../etc"
        t.addfile(info)
sys.stdout.buffer.write(buf.getvalue())
"#
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn hostile_escrows_are_refused_naming_the_entry() {
    let demo = Demo::locked("sandbox");
    for (kind, entry) in [
        ("dotdot", "../evil"),
        ("absolute", "/tmp/evil"),
        ("link", "escape"),
    ] {
        let digest = with_escrow(&demo, &hostile_tar(kind));
        demo.verify([BUNDLE])
            .arg("--work-dir")
            .arg(format!("work-{kind}"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("unsafe entry `{entry}`")));
        assert!(!demo.env.path("evil").exists());
        assert!(!demo
            .env
            .path(&format!("work-{kind}/rebuild-1/tree/escape"))
            .exists());
        restore_escrow(&demo, &digest);
    }
}

#[test]
fn rebuild_copies_the_artifacts_and_prints_their_digests() {
    let demo = Demo::locked("sandbox");
    let v: json::Rebuild = json::of(
        &mut demo.env.cmd([
            "rebuild",
            "operator/reprove.toml",
            "--out-dir",
            "rebuilt",
            "--json",
        ]),
        0,
    );
    assert_eq!(v.result, "identical");
    let build = v.build.as_ref().unwrap();
    assert_eq!(
        (build.termination.kind.as_str(), build.termination.value),
        ("exited", Some(0))
    );
    assert!(build.log.tail.is_empty() && build.log.kept.is_none());
    let img = std::fs::read(demo.env.path("rebuilt/firmware.img")).unwrap();
    let hashes = v.artifacts[0].hashes.as_ref().unwrap();
    assert_eq!(
        hashes.sha256,
        reprove::hash::hash_bytes(&img).sha256.to_string()
    );
    assert_eq!(
        v.artifacts[0].copied_to.as_deref(),
        Some("rebuilt/firmware.img")
    );
    assert!(demo
        .env
        .path("rebuilt/acme-router-fw-1.0.0.tar.gz")
        .is_file());
}

#[test]
fn from_attestation_replays_and_says_whether_it_comes_out_the_same() {
    let demo = Demo::locked("sandbox");
    demo.env
        .cmd(["key", "generate", "--out", "op.key"])
        .assert()
        .success();
    demo.env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "--sign-key",
            "op.key",
            "--verifier-id",
            "https://lab.example/reprove",
            "--out",
            "att.intoto.jsonl",
        ])
        .args(["--shipped", BUNDLE])
        .assert()
        .success();
    demo.env
        .cmd([
            "verify",
            "--from-attestation",
            "att.intoto.jsonl",
            "--key",
            "op.key.pub",
        ])
        .args(["--unsigned", "--out", "replay.intoto.jsonl"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "same: the verification comes out as the attestation records it",
        ));
    let out = demo
        .env
        .cmd([
            "verify",
            "--from-attestation",
            "att.intoto.jsonl",
            "--key",
            "op.key.pub",
        ])
        .args(["--unsigned", "--json", "--out", "replay-json.intoto.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Verify = json::parse(&out);
    let replay = v.replay.as_ref().unwrap();
    assert!(replay.same && replay.mismatches.is_empty());
    assert_eq!(v.verdict, "identical");
    // Another key did not sign it: refused before anything is built.
    demo.env
        .cmd(["key", "generate", "--out", "other.key"])
        .assert()
        .success();
    demo.env
        .cmd([
            "verify",
            "--from-attestation",
            "att.intoto.jsonl",
            "--key",
            "other.key.pub",
            "--unsigned",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not signed by a given key"));
    // The shipped bundle changed since: the replay says what no longer holds.
    tamper(&demo, |img| img[0x200] ^= 0x01);
    demo.env
        .cmd([
            "verify",
            "--from-attestation",
            "att.intoto.jsonl",
            "--key",
            "op.key.pub",
        ])
        .args(["--unsigned", "--out", "replay2.intoto.jsonl"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not the same:"))
        .stdout(predicate::str::contains(
            "`firmware.img` shipped sha256: recorded",
        ))
        .stdout(predicate::str::contains(
            "verdict: recorded identical, found different",
        ));
}

#[test]
fn a_build_that_stamps_the_wall_clock_is_nondeterministic() {
    let demo = Demo::new("sandbox");
    // The build writes the time it ran into the image: two rebuilds never agree, so a shipped
    // image that differs cannot be blamed on the vendor.
    let recipe = demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"sh\", \"-c\", \"make && date +%s%N >> out/firmware.img\"]",
    );
    demo.set_recipe(&recipe);
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
    assert_eq!(v.verdict, "nondeterministic");
    let img = &v.artifacts[0];
    assert_eq!(img.name, "firmware.img");
    assert_eq!(img.verdict, "nondeterministic");
    let leaf = &img.nondeterminism.as_ref().unwrap().leaves[0];
    let moved = leaf.content.as_ref().unwrap();
    assert!(moved.differing_bytes > 0);
    // The image is the objcopy output plus the stamp: its map makes the stamp a part of its
    // own (19 digits and a newline), whose digits are a timestamp.
    assert_eq!(
        (moved.left_size, moved.ranges[0].cause.kind.as_str()),
        (20, "timestamp"),
        "the stamp: {leaf:#?}"
    );
    assert_ne!(img.rebuilt[0], img.rebuilt[1]);
}

#[test]
fn a_signature_trailer_is_different_until_an_allowance_declares_it() {
    let demo = Demo::locked("sandbox");
    tamper(&demo, |img| img.extend_from_slice(&[0x5a; 64]));
    demo.verify([BUNDLE]).assert().code(1);
    let recipe = demo.recipe()
        + "\n[[allow]]\nartifact = \"firmware.img\"\ntrailer = 64\nreason = \"vendor signature block\"\n"
        + "\n[[allow]]\nartifact = \"acme-router-fw-1.0.0.tar.gz\"\ntrailer = 64\nreason = \"the signed image inside\"\n";
    demo.set_recipe(&recipe);
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 0);
    assert_eq!(v.artifacts[0].verdict, "equivalent", "{v:#?}");
    let applied = &first_leaf(&v.artifacts[0]).allowances[0];
    assert_eq!(applied.allowance.reason, "vendor signature block");
    assert_eq!(applied.allowance.trailer, Some(64));
    // --strict: only identical bytes pass.
    demo.verify([BUNDLE]).arg("--strict").assert().code(1);
}

#[test]
fn nothing_matched_still_names_the_shipped_files_as_subjects() {
    let demo = Demo::locked("sandbox");
    demo.env.write("unrelated.bin", "not firmware");
    demo.verify(["unrelated.bin"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(": missing"));
    let att = std::fs::read_to_string(demo.env.path("att.intoto.jsonl")).unwrap();
    for line in att.lines() {
        let envelope: Value = serde_json::from_str(line).unwrap();
        let payload = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            envelope["payload"].as_str().unwrap(),
        )
        .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            statement["subject"][0]["name"], "unrelated.bin",
            "{statement}"
        );
    }
}

#[test]
fn an_interrupt_kills_the_build_it_started() {
    let demo = Demo::new("none");
    let marker = format!("reprove-interrupt-{}", std::process::id());
    let recipe = demo.recipe().replace(
        "command = [\"make\"]",
        &format!("command = [\"sh\", \"-c\", \"sleep 300 # {marker}\"]"),
    );
    demo.set_recipe(&recipe);
    // A traced lock would run the five-minute build: declare the tools instead.
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    let tmp = demo.env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("reprove"))
        .current_dir(demo.env.root())
        .env("TMPDIR", &tmp)
        .args([
            "verify",
            "operator/reprove.toml",
            "--unsigned",
            "--shipped",
            BUNDLE,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .unwrap();
        out.status.success()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted: exit 130");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!running(), "the build's process group was killed");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(
        left.is_empty(),
        "work folders removed on the way out: {left:?}"
    );
}

#[test]
fn the_html_report_reads_right_in_a_browser() {
    let demo = Demo::locked("sandbox");
    tamper(&demo, |img| img[0x200] ^= 0x01);
    demo.verify([BUNDLE])
        .args(["--html", "report.html"])
        .assert()
        .code(1);
    let dom = crate::support::browse(&demo.env.path("report.html"));
    assert!(dom.contains("id=\"verdict\">different<"), "{dom}");
    assert!(dom.contains("acme-router-fw 1.0.0"));
    assert!(dom.contains("firmware.img"));
    assert!(
        dom.contains("EXECUTABLE CODE in"),
        "the alarm reaches the page"
    );
    assert!(dom.contains("rebuild 1: out/firmware.img"));
    assert!(!dom.contains("<script"), "a report runs nothing");
}

/// See issue 8, item 8: a duration past 7 days is one clear error (file, line, key), exit 2,
/// where it used to overflow a deadline and panic.
#[test]
fn a_huge_timeout_is_a_clear_error_not_a_panic() {
    let demo = Demo::locked("sandbox");
    let recipe = demo
        .recipe()
        .replace("timeout = \"5m\"", "timeout = \"18446744073709551615s\"");
    demo.set_recipe(&recipe);
    let line = line_of(&recipe, "timeout = \"18446744073709551615s\"");
    demo.verify([BUNDLE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "error: invalid recipe `operator/reprove.toml`, line {line}"
        )))
        .stderr(predicate::str::contains("a duration is at most 7 days"))
        .stderr(predicate::str::contains("timeout = "))
        .stderr(predicate::str::contains("panicked").not());
}

/// See issue 8, item 3: `trailer = 64` accepts a shipped image that is the rebuilt one and 64
/// more bytes, and neither one cut 64 bytes short nor one whose last 64 bytes were overwritten.
#[test]
fn a_trailer_allowance_accepts_only_an_appended_trailer() {
    type Edit = fn(&mut Vec<u8>);
    let demo = Demo::locked("sandbox");
    let recipe = demo.recipe()
        + "\n[[allow]]\nartifact = \"firmware.img\"\ntrailer = 64\nreason = \"vendor signature block\"\n"
        + "\n[[allow]]\nartifact = \"acme-router-fw-1.0.0.tar.gz\"\ntrailer = 64\nreason = \"the signed image inside\"\n";
    demo.set_recipe(&recipe);
    let original = std::fs::read(demo.env.path(BUNDLE)).unwrap();
    let shapes: [(&str, Edit); 2] = [
        ("cut 64 bytes short", |img| img.truncate(img.len() - 64)),
        ("last 64 bytes overwritten", |img| {
            let n = img.len();
            img[n - 64..].fill(0x5a);
        }),
    ];
    for (what, edit) in shapes {
        std::fs::write(demo.env.path(BUNDLE), &original).unwrap();
        tamper(&demo, edit);
        let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
        assert_eq!(v.artifacts[0].verdict, "different", "{what}: {v:#?}");
        let notes = &first_leaf(&v.artifacts[0]).notes;
        assert!(
            notes
                .iter()
                .any(|n| n.contains("`trailer = 64` not applied")),
            "{what}: {notes:?}"
        );
    }
}

/// The demo's recipe, whose build fails under the varied rebuild's umask (077) only.
fn fails_when_varied(demo: &Demo) -> String {
    demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"sh\", \"-c\", \"case $(umask) in *77) echo varied >&2; exit 3;; esac; exec make\"]",
    )
}

/// See issue 8, item 8: when the varied rebuild fails, the first rebuild's comparisons are
/// kept, and the report says which rebuild failed and with which variation. The verdict is
/// `build-failed`: the build does not stand up to what must not matter (docs/attestation.md).
#[test]
fn a_failed_second_rebuild_keeps_the_first_rebuilds_comparisons() {
    let demo = Demo::new("sandbox");
    demo.set_recipe(&fails_when_varied(&demo));
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();

    // Asked for two rebuilds up front: the first reproduces the shipped set exactly.
    let v: Verify = json::of(
        demo.verify([BUNDLE])
            .args(["--rebuilds", "2", "--json", "--html", "report.html"]),
        1,
    );
    assert_eq!(v.verdict, "build-failed", "{v:#?}");
    let failed = v.failed_rebuild.as_ref().unwrap();
    assert_eq!((failed.rebuild, failed.variation.umask), (2, 0o077));
    assert_eq!(v.rebuilds[1].termination.value, Some(3));
    for a in &v.artifacts {
        assert_eq!(a.verdict, "build-failed");
        assert_eq!(
            a.first_rebuild_verdict.as_deref(),
            Some("identical"),
            "{a:#?}"
        );
        assert_eq!(a.rebuilt[0].as_ref(), a.shipped.as_ref().map(|s| &s.digest));
    }
    let page = std::fs::read_to_string(demo.env.path("report.html")).unwrap();
    assert!(
        page.contains("id=\"failed-rebuild\">build-failed: rebuild 2 (`build-dir`: a deeper build folder, `umask`: 077"),
        "{page}"
    );
    assert!(page.contains("firmware.img: identical"), "{page}");

    // On a mismatch: the second rebuild would tell `different` from `nondeterministic`, and
    // fails; the first rebuild's explanation of the difference is kept.
    tamper(&demo, |img| img[0x300] ^= 0x80);
    let out = demo.verify([BUNDLE]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rebuild 1 against the shipped set: different"),
        "{text}"
    );
    assert!(
        text.contains("rebuilt (left) against shipped (right)"),
        "{text}"
    );
    assert!(
        text.contains(
            "build-failed: rebuild 2 (`build-dir`: a deeper build folder, `umask`: 077, \
             `env-order`: the environment reversed"
        ),
        "{text}"
    );
    let v: Verify = json::of(demo.verify([BUNDLE]).arg("--json"), 1);
    let img = &v.artifacts[0];
    assert_eq!(img.first_rebuild_verdict.as_deref(), Some("different"));
    assert_eq!(
        first_leaf(img).content.as_ref().unwrap().ranges[0].offset,
        0x300
    );
    // The attestation records the same, and its own check holds it consistent.
    demo.env
        .cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    demo.env
        .cmd([
            "verify",
            "operator/reprove.toml",
            "--sign-key",
            "vendor",
            "--verifier-id",
            "https://lab.example/reprove",
            "--out",
            "signed.intoto.jsonl",
            "--shipped",
            BUNDLE,
        ])
        .assert()
        .code(1);
    let out = demo
        .env
        .cmd([
            "attest",
            "verify",
            "signed.intoto.jsonl",
            "--key",
            "vendor.pub",
            "--json",
        ])
        .output()
        .unwrap();
    let r = value(&out);
    let codes: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["verification_failed"], "{r}");
}

/// The problem codes `attest verify --json` finds in the attestation `verify` just signed.
fn attested_problems(demo: &Demo, bundle: &str) -> Vec<String> {
    let out = demo
        .env
        .cmd(["attest", "verify", bundle, "--key", "vendor.pub", "--json"])
        .output()
        .unwrap();
    value(&out)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["code"], p["message"]))
        .collect()
}

/// See issue 8, item 7: what `verify` signs never contradicts itself, whatever the verdict:
/// `attest verify` finds nothing but a failed summary where the verification failed.
#[test]
fn what_verify_signs_is_consistent_for_each_verdict() {
    let demo = Demo::locked("sandbox");
    demo.env
        .cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    let signed = |out: &str, code: i32| {
        demo.env
            .cmd(["verify", "operator/reprove.toml", "--sign-key", "vendor"])
            .args(["--verifier-id", "https://lab.example/reprove"])
            .args(["--out", out, "--shipped", BUNDLE])
            .assert()
            .code(code);
    };
    signed("identical.intoto.jsonl", 0);
    assert_eq!(
        attested_problems(&demo, "identical.intoto.jsonl"),
        Vec::<String>::new()
    );
    let original = std::fs::read(demo.env.path(BUNDLE)).unwrap();
    tamper(&demo, |img| img[0x300] ^= 0x80);
    signed("different.intoto.jsonl", 1);
    let problems = attested_problems(&demo, "different.intoto.jsonl");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("\"verification_failed\""),
        "{problems:?}"
    );

    std::fs::write(demo.env.path(BUNDLE), &original).unwrap();
    tamper(&demo, |img| img.extend_from_slice(&[0x5a; 64]));
    let recipe = demo.recipe()
        + "\n[[allow]]\nartifact = \"firmware.img\"\ntrailer = 64\nreason = \"vendor signature block\"\n"
        + "\n[[allow]]\nartifact = \"acme-router-fw-1.0.0.tar.gz\"\ntrailer = 64\nreason = \"the signed image inside\"\n";
    demo.set_recipe(&recipe);
    signed("equivalent.intoto.jsonl", 0);
    assert_eq!(
        attested_problems(&demo, "equivalent.intoto.jsonl"),
        Vec::<String>::new()
    );
}

/// The first leaf of how an artifact differs from its shipped file.
fn first_leaf(a: &json::Artifact) -> &json::Leaf {
    &a.difference
        .as_ref()
        .unwrap_or_else(|| panic!("no difference: {a:#?}"))
        .leaves[0]
}
