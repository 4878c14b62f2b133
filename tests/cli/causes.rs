//! Causes in words through the real binary (issue 9 items 3 and 5): a build that stamps the
//! wall clock into a header, rebuilt twice by `verify`; a compiler string that moved, as
//! `diff` shows it in text, JSON and HTML.

use serde_json::Value;

use crate::support::{browse, Demo, TestEnv, BUNDLE};

fn json_of(cmd: &mut assert_cmd::Command, code: i32) -> Value {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

// See issue 9: "a build that stamps `date +%s%N` into a header is `nondeterministic`
// (right), but the moving bytes are `unknown`, not a timestamp".
#[test]
fn a_nanosecond_stamp_in_a_header_is_a_timestamp() {
    let demo = Demo::new("sandbox");
    let recipe = demo
        .recipe()
        .replace("\"mkdir\"]", "\"mkdir\", \"cat\", \"mv\"]")
        .replace(
            "command = [\"make\"]",
            "command = [\"sh\", \"-c\", \"make && { printf 'BUILT '; date +%s%N; cat out/firmware.img; } > out/stamped && mv out/stamped out/firmware.img\"]",
        );
    demo.set_recipe(&recipe);
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let v = json_of(demo.verify([BUNDLE]).arg("--json"), 1);
    let img = &v["artifacts"][0];
    assert_eq!(img["verdict"], "nondeterministic", "{img:#}");
    let moved = &img["nondeterminism"]["leaves"][0];
    let kinds: Vec<&str> = moved["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["timestamp"], "{moved:#}");
    let range = &moved["content"]["ranges"][0];
    assert!(
        range["offset"].as_u64().unwrap() >= 6,
        "in the digits after `BUILT `"
    );
    assert!(range["offset"].as_u64().unwrap() < 6 + 19);
    assert!(range["context"]["left"]
        .as_str()
        .unwrap()
        .starts_with("4255494c5420"));
    let summary = moved["content"]["summary"].as_str().unwrap();
    assert!(summary.ends_with(": 1 timestamp"), "{summary}");
    assert_eq!(moved["content"]["tally"][0]["kind"], "timestamp");
}

#[test]
fn a_toolchain_string_is_quoted_whole_in_text_json_and_html() {
    let head = b"code\x7f\x00\x01\x02".to_vec();
    let side = |version: &str| {
        let mut b = head.clone();
        b.extend_from_slice(format!("GCC: (Debian {version}) 12.2.0\0").as_bytes());
        b
    };
    let env = TestEnv::new()
        .file("a/fw.img", side("12.2.0-14"))
        .file("b/fw.img", side("12.2.0-14+deb12u1"));
    let out = env.cmd(["diff", "a/fw.img", "b/fw.img"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "cause: toolchain version string `12.2.0-14` → `12.2.0-14+deb12u1`",
        // The string grew by 8 bytes: one insertion, explained by the string it lies in.
        "8 bytes differ in 1 shift: 1 toolchain string (sizes 39 and 47)",
        "8 bytes inserted at 0x1e; after it identical when shifted by +8",
        "left:  \"GCC: (Debian 12.2.0-14) 12.2.0\"",
        "right: \"GCC: (Debian 12.2.0-14+deb12u1) 12.2.0\"",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // Hex rows are printed once each.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("000000"))
        .collect();
    let mut unique = rows.clone();
    unique.dedup();
    assert_eq!(rows, unique);

    let doc = json_of(&mut env.cmd(["diff", "a/fw.img", "b/fw.img", "--json"]), 1);
    let content = &doc["leaves"][0]["content"];
    assert_eq!(
        doc["leaves"][0]["causes"][0],
        serde_json::json!({"kind": "toolchain", "left": "12.2.0-14", "right": "12.2.0-14+deb12u1"})
    );
    assert_eq!(content["range_count"], 0);
    assert_eq!(content["shifts"][0]["cause"]["kind"], "toolchain");
    assert_eq!(
        content["shifts"][0]["string"],
        serde_json::json!({"left": "GCC: (Debian 12.2.0-14) 12.2.0", "right": "GCC: (Debian 12.2.0-14+deb12u1) 12.2.0"})
    );
    assert_eq!(
        content["tally"],
        serde_json::json!([{"kind": "toolchain", "ranges": 1, "bytes": 8}])
    );

    env.cmd(["diff", "a/fw.img", "b/fw.img", "--html", "page.html"])
        .assert()
        .code(1);
    let dom = browse(&env.path("page.html"));
    assert!(dom.contains("1 toolchain string"), "{dom}");
    assert!(
        dom.contains("GCC: (Debian 12.2.0-14+deb12u1) 12.2.0"),
        "{dom}"
    );
}
