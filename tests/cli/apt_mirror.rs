//! Issue 13, item 7: `examples/hermetic-root/make-root.sh` takes its mirror from the machine's
//! apt sources only (through `apt-mirror.sh`), one-line and deb822 alike, and stops with a
//! clear error when they name none, instead of falling back to a host of its own.

use std::process::Command;

use crate::support::TestEnv;

fn mirror(env: &TestEnv) -> (Option<i32>, String, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/hermetic-root/apt-mirror.sh");
    let out = Command::new(script)
        .env("APT_ETC", env.path("apt"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_mirror_comes_from_one_line_sources() {
    let env = TestEnv::new().file(
        "apt/sources.list",
        "# deb http://commented.example/debian bookworm main\n\
         deb-src http://src.example/debian bookworm main\n\
         deb http://security.example/debian-security bookworm-security main\n\
         deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n",
    );
    assert_eq!(
        mirror(&env),
        (
            Some(0),
            "http://mirror.example/debian".to_owned(),
            String::new()
        )
    );
}

#[test]
fn the_mirror_comes_from_deb822_sources() {
    let env = TestEnv::new()
        .file("apt/sources.list", "")
        .file(
            "apt/sources.list.d/debian.sources",
            "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
             Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n\
             Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n\
             # a comment\nTypes: deb deb-src\nURIs: http://one.example/debian http://two.example/debian\n\
             Suites: bookworm bookworm-updates\nComponents: main\n",
        );
    assert_eq!(
        mirror(&env),
        (
            Some(0),
            "http://one.example/debian".to_owned(),
            String::new()
        )
    );
}

#[test]
fn no_mirror_in_the_sources_is_a_clear_error() {
    let env = TestEnv::new().file(
        "apt/sources.list.d/other.sources",
        "Types: deb\nURIs: http://ubuntu.example/ubuntu\nSuites: noble\n",
    );
    let (code, stdout, stderr) = mirror(&env);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert!(
        stderr.starts_with("error: no `deb` source for `bookworm` in `"),
        "{stderr}"
    );
    // make-root.sh stops there too, before debootstrap (and with no fallback host).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/hermetic-root/make-root.sh");
    let out = Command::new(script)
        .arg(env.path("root.tar.gz"))
        .env("APT_ETC", env.path("apt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: no `deb` source"));
    assert!(!env.path("root.tar.gz").exists());
}
