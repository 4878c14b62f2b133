//! Shift-aware `reprove diff` on a real raw image: gcc builds a freestanding firmware twice,
//! the second time with a toolchain version string 8 bytes longer, and `objcopy -O binary`
//! makes the images. Everything after the string moves: the report says so in one line per
//! shift instead of listing every range after it.
//! See: issue 9, item 4.

use std::process::Command;

use crate::support::TestEnv;

const FIRMWARE: &str = r#"
#ifndef VERSION
#define VERSION "12.2.0-14"
#endif
extern const char banner[];
const char *const strings[] = { "alpha", "beta", "gamma", banner };
__attribute__((aligned(8))) const char users[] = "root:x:0:0\nadmin:x:1000:1000\n";
__attribute__((aligned(8))) const unsigned int table[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
const char banner[] = "gcc: (Debian " VERSION ") 12.2.0";
int auth_check(int x) { return x * 3 + table[x & 63] + users[x & 15]; }
void _start(void) { volatile int r = auth_check(strings[3][0]); (void)r; for (;;) {} }
"#;

/// Build the firmware as `NAME.elf` and `NAME.img` with the version string `version`.
fn build(env: &TestEnv, name: &str, version: &str) {
    let elf = env.path(&format!("{name}.elf"));
    let status = Command::new("gcc")
        .args([
            "-O1",
            "-g0",
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-fno-pic",
            "-no-pie",
        ])
        .args(["-fno-asynchronous-unwind-tables", "-malign-data=abi"])
        .args(["-Wl,--build-id=none", "-Wl,-Ttext=0x100000", "-o"])
        .arg(&elf)
        .arg(format!("-DVERSION=\"{version}\""))
        .arg(env.path("fw.c"))
        .status()
        .expect("gcc runs");
    assert!(status.success());
    let status = Command::new("objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(env.path(&format!("{name}.img")))
        .status()
        .expect("objcopy runs");
    assert!(status.success());
}

fn images() -> TestEnv {
    let env = TestEnv::new().file("fw.c", FIRMWARE);
    build(&env, "rebuilt", "12.2.0-14");
    build(&env, "shipped", "12.2.0-14+deb12u1");
    env
}

#[test]
fn a_longer_version_string_is_one_shift_not_every_range_after_it() {
    let env = images();
    let text = env
        .cmd(["diff", "rebuilt.img", "shipped.img"])
        .assert()
        .code(1);
    let text = String::from_utf8(text.get_output().stdout.clone()).unwrap();
    let banner = std::fs::read(env.path("rebuilt.img")).unwrap();
    let at = banner
        .windows(4)
        .position(|w| w == b"-14)")
        .expect("the version string is in the image")
        + 3;
    let line = format!("8 bytes inserted at {at:#x}; after it identical when shifted by +8");
    assert!(text.contains(&line), "{text}");
    // The code addresses the tables after the string: its immediates moved with them.
    assert!(text.contains("content shifted by +8 bytes"), "{text}");

    let out = env
        .cmd(["diff", "--json", "rebuilt.img", "shipped.img"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let content = &doc["leaves"][0]["content"];
    let shift = &content["shifts"][0];
    assert_eq!(shift["left_offset"], at);
    assert_eq!(shift["right_offset"], at);
    assert_eq!(shift["inserted"], 8);
    assert_eq!(shift["by"], 8);
    assert!(shift.get("removed").is_none(), "{shift}");
    assert!(shift["context"]["right"].as_str().unwrap().len() > 2);
    // Offset by offset, the tables after the string would differ almost everywhere.
    let ranges = content["range_count"].as_u64().unwrap();
    assert!(ranges <= 4, "{content:#}");
    // Every range is a pointer that moved with the content (the tables after the string by 8,
    // the string literals after the pointer table, aligned anew, by 16).
    for r in content["ranges"].as_array().unwrap() {
        assert_eq!(r["cause"]["kind"], "shifted", "{r}");
        assert!([8, 16].contains(&r["cause"]["by"].as_i64().unwrap()), "{r}");
    }
}

#[test]
fn a_shifted_image_still_names_the_code_its_layout_holds() {
    let env = images();
    let out = env
        .cmd([
            "diff",
            "--layout",
            "rebuilt.elf",
            "rebuilt.img",
            "shipped.img",
        ])
        .assert()
        .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // A pointer moved by the shift inside code is still code: no pattern hides it.
    assert!(
        text.contains("EXECUTABLE CODE in `.text`, function `auth_check`"),
        "{text}"
    );
    assert!(text.contains("8 bytes inserted at"), "{text}");

    let page = env.path("report.html");
    env.cmd(["diff", "--html"])
        .arg(&page)
        .args(["rebuilt.img", "shipped.img"])
        .assert()
        .code(1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("8 bytes inserted at"), "{html}");
}
