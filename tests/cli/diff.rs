//! `reprove diff` end to end: exit codes, the JSON schema (read into [`crate::json`]'s structs:
//! any change to it breaks them on purpose), and the HTML report as a browser sees it.

use std::process::Command;

use predicates::prelude::*;

use crate::json::{ByteRange as Span, Cause as CauseJson, Diff as DiffJson};
use crate::support::{browse, TestEnv};

fn json(env: &TestEnv, args: &[&str]) -> (DiffJson, i32) {
    let out = env.cmd(args).arg("--json").output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    });
    (doc, out.status.code().unwrap())
}

/// Two programs that differ in one constant of `compute`.
fn programs(env: &TestEnv) {
    let src =
        "#include <stdio.h>\n__attribute__((noinline)) int compute(int x) { return x + 1000; }\n\
               int main(int c, char **v) { printf(\"%d\\n\", compute(c)); return 0; }\n";
    env.write("a/p.c", src);
    env.write("b/p.c", src.replace("1000", "2000"));
    for side in ["a", "b"] {
        let status = Command::new("gcc")
            .args(["-O1", "-o", "prog", "p.c"])
            .current_dir(env.path(side))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn exit_codes_follow_cmp() {
    let env = TestEnv::new()
        .file("a.img", vec![1u8; 4096])
        .file("same.img", vec![1u8; 4096])
        .file("signed.img", [vec![1u8; 4096], vec![9u8; 256]].concat());
    env.cmd(["diff", "a.img", "same.img"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("identical"));
    env.cmd(["diff", "a.img", "signed.img"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("different"));
    env.cmd(["diff", "a.img", "signed.img", "--allow-trailer", "256"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("equivalent"))
        .stdout(predicate::str::contains("allowed by `trailer = 256`"));
    env.cmd([
        "diff",
        "a.img",
        "signed.img",
        "--allow-trailer",
        "256",
        "--strict",
    ])
    .assert()
    .code(1);
    env.cmd(["diff", "a.img", "nope.img"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: failed to read `nope.img`"));
    env.cmd(["diff", "a.img", "same.img", "--allow-region", "12"])
        .assert()
        .code(2);
}

#[test]
fn json_names_the_function_whose_code_changed() {
    let env = TestEnv::new();
    programs(&env);
    let (doc, code) = json(&env, &["diff", "a/prog", "b/prog"]);
    assert_eq!(code, 1);
    assert_eq!(doc.schema_version, 1);
    assert_eq!(doc.verdict, "different");
    assert!(doc.summary.starts_with("different: 1 differing"));
    assert_eq!(
        (doc.left.as_str(), doc.right.as_str()),
        ("a/prog", "b/prog")
    );
    let leaf = &doc.leaves[0];
    assert_eq!(
        (leaf.path.as_str(), leaf.change.as_str()),
        ("prog", "changed")
    );
    let code = CauseJson {
        kind: "code".into(),
        section: Some(".text".into()),
        symbol: Some("compute".into()),
        ..CauseJson::default()
    };
    assert!(leaf.causes.contains(&code), "{:?}", leaf.causes);
    let content = leaf.content.as_ref().unwrap();
    let in_text = content
        .ranges
        .iter()
        .find(|r| r.cause == code)
        .expect("a range in compute");
    assert_eq!(in_text.location.as_deref(), Some(".text"));
    let ctx = in_text.context.as_ref().unwrap();
    assert!(ctx.offset <= in_text.offset && ctx.left != ctx.right);
    assert!(content
        .sections
        .iter()
        .any(|s| s.name == ".text" && s.executable && s.ranges >= 1));
    assert_eq!(content.left_size, content.right_size);
    assert!(content.differing_bytes >= 1 && content.range_count >= 1 && in_text.len >= 1);
    assert!(
        content.summary.contains("code change"),
        "{}",
        content.summary
    );
    let code_tally = content.tally.iter().find(|t| t.kind == "code").unwrap();
    assert!(code_tally.ranges >= 1 && code_tally.bytes >= in_text.len);
    // Code is never shown as a string; a string, where there is one, has both sides.
    assert!(content.ranges.iter().all(|r| match &r.string {
        Some(s) => r.cause != code && !s.left.is_empty() && !s.right.is_empty(),
        None => true,
    }));
}

#[test]
fn layout_explains_a_raw_image_by_the_elf_it_was_made_from() {
    let env = TestEnv::new();
    programs(&env);
    for side in ["a", "b"] {
        let status = Command::new("objcopy")
            .args(["-O", "binary", "prog", "fw.img"])
            .current_dir(env.path(side))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let (doc, code) = json(&env, &["diff", "a/fw.img", "b/fw.img"]);
    assert_eq!(code, 1);
    let kinds = |doc: &DiffJson| -> Vec<String> {
        doc.leaves[0]
            .causes
            .iter()
            .map(|c| c.kind.clone())
            .collect()
    };
    assert_eq!(kinds(&doc), ["unknown"]);

    let (doc, code) = json(
        &env,
        &["diff", "a/fw.img", "b/fw.img", "--layout", "a/prog"],
    );
    assert_eq!(code, 1);
    let code = CauseJson {
        kind: "code".into(),
        section: Some(".text".into()),
        symbol: Some("compute".into()),
        ..CauseJson::default()
    };
    let build_id = CauseJson {
        kind: "build_id".into(),
        section: None,
        symbol: None,
        ..CauseJson::default()
    };
    assert!(doc.leaves[0].causes.contains(&code), "{:?}", doc.leaves[0]);
    assert!(
        doc.leaves[0].causes.contains(&build_id),
        "{:?}",
        doc.leaves[0]
    );
    assert!(doc.leaves[0].notes[0].contains("a/prog"));
    env.cmd(["diff", "a/fw.img", "b/fw.img", "--layout", "a/prog"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "EXECUTABLE CODE in `.text`, function `compute`",
        ));
    env.cmd(["diff", "a/fw.img", "b/fw.img", "--layout", "nope.elf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("failed to read `nope.elf`"));
}

#[test]
fn json_lists_allowances_and_metadata() {
    let env = TestEnv::new()
        .file("a.img", vec![1u8; 100])
        .file("b.img", [vec![1u8; 100], vec![2u8; 16]].concat());
    let (doc, code) = json(&env, &["diff", "a.img", "b.img", "--allow-trailer", "16"]);
    assert_eq!(
        (code, doc.verdict.as_str(), doc.identical),
        (0, "equivalent", 0)
    );
    let applied = &doc.leaves[0].allowances[0];
    assert_eq!(applied.allowance.trailer, Some(16));
    assert!(applied.allowance.artifact.is_none() && applied.allowance.region.is_none());
    assert!(
        applied.allowance.elf_section.is_none() && applied.allowance.archive_metadata.is_none()
    );
    assert!(applied.allowance.reason.contains("--allow-trailer 16"));
    assert_eq!(
        applied.ranges,
        [Span {
            offset: 100,
            len: 16
        }]
    );
    assert!(doc.leaves[0].notes.is_empty() && doc.leaves[0].metadata.is_empty());
    // A region never covers bytes one side lacks: past the end of `a.img` it covers nothing.
    let (doc, code) = json(
        &env,
        &["diff", "a.img", "b.img", "--allow-region", "0x64:16"],
    );
    assert_eq!((code, doc.verdict.as_str()), (1, "different"));
    assert!(doc.leaves[0].allowances.is_empty());
    assert!(
        doc.leaves[0].notes[0].contains("does not lie inside both files (100 and 116 bytes)"),
        "{:?}",
        doc.leaves[0].notes
    );
    env.write(
        "c.img",
        [vec![1u8; 50], vec![2u8; 16], vec![1u8; 34]].concat(),
    );
    let (doc, _) = json(
        &env,
        &["diff", "a.img", "c.img", "--allow-region", "0x32:16"],
    );
    let region = doc.leaves[0].allowances[0]
        .allowance
        .region
        .as_ref()
        .unwrap();
    assert_eq!(
        (region.offset, region.length, doc.verdict.as_str()),
        (50, 16, "equivalent")
    );

    // A directory whose member became a symlink: a metadata field, named.
    let env = TestEnv::new().file("a/x", "1").file("b/y", "1");
    std::os::unix::fs::symlink("y", env.path("b/x")).unwrap();
    let (doc, code) = json(&env, &["diff", "a", "b"]);
    assert_eq!(code, 1);
    let x = doc.leaves.iter().find(|l| l.path == "x").unwrap();
    let f = &x.metadata[0];
    assert_eq!(
        (f.field.as_str(), f.left.as_str(), f.right.as_str()),
        ("kind", "file", "symlink")
    );
    assert!(doc
        .leaves
        .iter()
        .any(|l| l.path == "y" && l.change == "added"));
    assert!(x.verdict == "different" && x.causes[0].kind == "unknown");
}

#[test]
fn html_report_reads_right_in_a_browser() {
    let env = TestEnv::new();
    programs(&env);
    // A hostile member name must show as text, never as markup.
    let evil = "<script>alert(1)</script>";
    for (side, body) in [("a", "one"), ("b", "two")] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, evil, body.as_bytes()).unwrap();
        env.write(&format!("{side}/prog.tar"), b.into_inner().unwrap());
    }
    env.cmd(["diff", "a", "b", "--html", "report.html"])
        .assert()
        .code(1);
    let dom = browse(&env.path("report.html"));
    assert!(dom.contains("id=\"verdict\">different<"), "{dom}");
    assert!(dom.contains("<code>prog</code>"), "{dom}");
    assert!(
        dom.contains("EXECUTABLE CODE in `.text`, function `compute`"),
        "{dom}"
    );
    assert!(
        dom.contains("prog.tar//&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>"), "{dom}");
    assert!(!dom.contains("http"), "no external resources: {dom}");
}

#[test]
fn html_is_written_whole_or_not_at_all() {
    let env = TestEnv::new().file("a", "1").file("b", "2");
    env.cmd(["diff", "a", "b", "--html", "missing-dir/report.html"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "failed to write `missing-dir/report.html`",
        ));
    assert!(!env.path("missing-dir").exists());
}

#[test]
fn hostile_member_names_cannot_drive_the_terminal() {
    let env = TestEnv::new();
    for (side, body) in [("a", "one"), ("b", "two")] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "evil\x1b[2J\u{202e}gmi.exe", body.as_bytes())
            .unwrap();
        env.write(&format!("{side}.tar"), b.into_inner().unwrap());
    }
    let out = env
        .cmd(["diff", "a.tar", "b.tar", "--color", "always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("evil\\u{1b}[2J\\u{202e}gmi.exe"), "{text}");
    assert!(
        !text.contains('\u{202e}') && !text.contains("\x1b[2J"),
        "{text}"
    );
}

/// See issue 8, item 8: the HTML report escapes what the text output escapes, in every place
/// a member name reaches the page (headings, lists, the title, notes).
#[test]
fn hostile_member_names_are_escaped_in_html() {
    let env = TestEnv::new();
    let name = "evil\x1b[2J\x07\u{202e}gmi\u{200b}.exe";
    for (side, members) in [
        ("a", vec![(name, "one"), ("gone\x1b]0;x\x07", "x")]),
        ("b", vec![(name, "two"), ("new\u{202e}txt.exe", "y")]),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        env.write(&format!("{side}\u{202e}.tar"), b.into_inner().unwrap());
    }
    env.cmd([
        "diff",
        "a\u{202e}.tar",
        "b\u{202e}.tar",
        "--html",
        "report.html",
    ])
    .assert()
    .code(1);
    let page = std::fs::read_to_string(env.path("report.html")).unwrap();
    for raw in ['\x1b', '\x07', '\u{202e}', '\u{200b}'] {
        assert!(!page.contains(raw), "{raw:?} in {page}");
    }
    for escaped in [
        "evil\\u{1b}[2J\\u{7}\\u{202e}gmi\\u{200b}.exe",
        "gone\\u{1b}]0;x\\u{7}",
        "new\\u{202e}txt.exe",
        "a\\u{202e}.tar",
    ] {
        assert!(page.contains(escaped), "{escaped} not in {page}");
    }
}

/// See issue 13, item 9: B that is A followed by more bytes gets the allowance that would
/// declare them, shown and not applied; any other shape gets none.
#[test]
fn appended_bytes_get_a_trailer_suggestion_and_stay_different() {
    let image = vec![1u8; 4096];
    let mut overwritten = image.clone();
    overwritten[100] = 9;
    let env = TestEnv::new()
        .file("a.img", &image)
        .file("signed.img", [image.clone(), vec![9u8; 64]].concat())
        .file("both.img", [overwritten.clone(), vec![9u8; 64]].concat());
    let (doc, code) = json(&env, &["diff", "a.img", "signed.img"]);
    assert_eq!((code, doc.verdict.as_str()), (1, "different"));
    let s = doc.suggestion.expect("a suggestion");
    assert_eq!(s.trailer, 64);
    assert_eq!(s.toml, "[[allow]]\ntrailer = 64\nreason = \"…\"\n");
    // The text: the verdict, the range with its context, and the suggestion.
    let out = env.cmd(["diff", "a.img", "signed.img"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    crate::snapshot::settings(env.root()).bind(|| {
        insta::assert_snapshot!("diff_appended_bytes", String::from_utf8_lossy(&out.stdout));
    });
    for other in ["both.img", "a.img"] {
        let (doc, _) = json(&env, &["diff", "a.img", other]);
        assert!(doc.suggestion.is_none(), "{other}");
    }
    // Once declared, nothing is suggested: the difference is covered.
    let (doc, code) = json(
        &env,
        &["diff", "a.img", "signed.img", "--allow-trailer", "64"],
    );
    assert_eq!((code, doc.suggestion.is_none()), (0, true));
}

/// See issue 8, item 3: `--allow-trailer N` accepts B = A and N more bytes, nothing else;
/// `--allow-region` covers no bytes one side lacks.
#[test]
fn allowances_accept_only_the_shape_they_declare() {
    let image = vec![1u8; 4096];
    let mut overwritten = image.clone();
    overwritten[4096 - 64..].fill(9);
    let env = TestEnv::new()
        .file("a.img", &image)
        .file("signed.img", [image.clone(), vec![9u8; 64]].concat())
        .file("cut.img", &image[..4096 - 64])
        .file("overwritten.img", &overwritten)
        .file("longer.img", [image.clone(), vec![9u8; 65]].concat());
    env.cmd(["diff", "a.img", "signed.img", "--allow-trailer", "64"])
        .assert()
        .code(0);
    for other in ["cut.img", "overwritten.img", "longer.img"] {
        env.cmd(["diff", "a.img", other, "--allow-trailer", "64"])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("different"));
    }
    env.cmd(["diff", "a.img", "signed.img", "--allow-region", "4096:64"])
        .assert()
        .code(1);
    env.cmd([
        "diff",
        "a.img",
        "overwritten.img",
        "--allow-region",
        "4032:64",
    ])
    .assert()
    .code(0);
    env.cmd(["diff", "a.img", "cut.img", "--allow-region", "4032:64"])
        .assert()
        .code(1);
}

/// Bytes inserted in the middle: the JSON lists the shift, and the range after it knows its
/// right offset (`shift`, `context.right_offset`). See: issue 9, item 4.
#[test]
fn json_lists_shifts_and_where_ranges_lie_on_the_right() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let left: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect();
    let mut right = [&left[..1000], b"INSERTED", &left[1000..]].concat();
    right[5008] ^= 0xff; // left offset 5000, at the new alignment
    let env = TestEnv::new().file("a.img", &left).file("b.img", &right);
    let (doc, code) = json(&env, &["diff", "a.img", "b.img"]);
    assert_eq!(code, 1);
    let content = doc.leaves[0].content.as_ref().unwrap();
    let [shift] = &content.shifts[..] else {
        panic!("{content:#?}");
    };
    assert_eq!((shift.left_offset, shift.right_offset), (1000, 1000));
    assert_eq!((shift.inserted, shift.removed, shift.by), (8, 0, 8));
    assert_eq!(shift.differing_after, 1);
    // Random bytes around it: nothing more to say than that the content moved.
    assert_eq!(
        (shift.cause.kind.as_str(), shift.cause.by),
        ("shifted", Some(8))
    );
    assert!(shift.string.is_none());
    assert_eq!(shift.context.as_ref().unwrap().right_offset, None);
    assert_eq!(content.differing_bytes, 9);
    assert!(doc.leaves[0].causes.iter().any(|c| c.by == Some(8)));
    let [range] = &content.ranges[..] else {
        panic!("{content:#?}");
    };
    assert_eq!((range.offset, range.shift), (5000, 8));
    let ctx = range.context.as_ref().unwrap();
    assert_eq!((ctx.offset, ctx.right_offset), (4992, Some(4992 + 8)));
}
