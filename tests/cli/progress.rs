//! Issue 13, item 2: progress on a terminal. `reprove` is run with its stderr on a real
//! pseudo-terminal (`openpty`) and its stdout on a pipe: progress appears on the terminal
//! and never on stdout; it is absent when stderr is a pipe, under `--quiet`, and with `CI` set.

use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{Demo, TestEnv};

/// What a run wrote on its terminal (stderr) and on its stdout pipe.
struct OnTerminal {
    terminal: String,
    stdout: String,
    code: Option<i32>,
}

/// Run `reprove ARGS…` in `dir` with stderr on a fresh 24x100 pseudo-terminal, stdout piped,
/// `CI` removed from its environment and then `env` added.
fn on_terminal(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> OnTerminal {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors, which are then owned here.
    let rc = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &raw const size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    };
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("reprove"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave));
    let child = cmd.spawn().expect("reprove starts");
    // The command holds the terminal's other end until dropped: the reader must see it close.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last holder of the terminal's other end is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let out = child.wait_with_output().unwrap();
    let terminal = reader.join().unwrap();
    OnTerminal {
        terminal: String::from_utf8_lossy(&terminal).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code(),
    }
}

fn big_file() -> TestEnv {
    TestEnv::new().file("firmware.img", vec![0x5a; 8 << 20])
}

#[test]
fn hashing_shows_progress_on_a_terminal_and_never_on_stdout() {
    let env = big_file();
    let run = on_terminal(env.root(), &["hash", "firmware.img"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    // The stage's own line once it ended, with the bytes it read.
    assert!(
        run.terminal
            .contains("hashing `firmware.img` (8.00 MiB in "),
        "{}",
        run.terminal
    );
    assert!(run.stdout.starts_with("firmware.img (8388608 bytes)\n"));
    assert!(!run.stdout.contains("hashing"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
}

#[test]
fn no_progress_when_stderr_is_a_pipe() {
    let env = big_file();
    let out = env
        .cmd(["hash", "firmware.img"])
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn no_progress_with_quiet_or_in_ci() {
    let env = big_file();
    for (args, vars) in [
        (&["--quiet", "hash", "firmware.img"][..], &[][..]),
        (&["hash", "firmware.img", "-q"][..], &[][..]),
        (&["hash", "firmware.img"][..], &[("CI", "1")][..]),
        (&["hash", "firmware.img"][..], &[("CI", "true")][..]),
    ] {
        let run = on_terminal(env.root(), args, vars);
        assert_eq!(run.code, Some(0), "{args:?} {vars:?}: {}", run.terminal);
        assert_eq!(run.terminal, "", "{args:?} {vars:?}");
        assert!(run.stdout.starts_with("firmware.img (8388608 bytes)\n"));
    }
}

#[test]
fn a_rebuild_shows_its_stages_and_the_build_log_as_it_runs() {
    let demo = Demo::new("none");
    // The build says something, then takes long enough for the spinner to show it.
    let recipe = demo.recipe().replace(
        "command = [\"make\"]",
        &format!(
            "command = [\"sh\", \"-c\", {}]",
            json!("echo compiling the-progress-marker; sleep 1; make -s")
        ),
    );
    demo.set_recipe(&recipe);
    demo.env
        .cmd(["lock", "operator/reprove.toml"])
        .assert()
        .success();
    let run = on_terminal(
        demo.env.root(),
        &["rebuild", "operator/reprove.toml", "--json"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    for seen in [
        "checking ",
        "unpacking the escrow for rebuild 1 (",
        " entries in ",
        "rebuild 1: sh -c echo compiling",
        // The build's last log line, beside the time it has taken.
        "s | compiling the-progre",
    ] {
        assert!(run.terminal.contains(seen), "{seen}: {}", run.terminal);
    }
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON alone on stdout");
    assert_eq!(v["result"], "identical");
}
