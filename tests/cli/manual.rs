//! Issue 13, item 3: shell completions and man pages, generated from the clap definition.
//! Each shell's script generates (bash's is sourced and registers the completion), and every
//! man page renders with `man -l` and mentions each of its command's options.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

use crate::support::{run_ok, TestEnv};

#[test]
fn every_shell_gets_a_completion_script() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.cmd(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        // It knows the subcommands and their options.
        for word in ["verify", "attest", "sign-key"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
        env.write(&format!("reprove.{shell}"), &script);
    }
    let bash = env.path("reprove.bash");
    run_ok(Command::new("bash").arg("-n").arg(&bash));
    let registered = run_ok(
        Command::new("bash")
            .arg("-c")
            .arg("source \"$1\" && complete -p reprove")
            .arg("-")
            .arg(&bash),
    );
    assert!(registered.contains("reprove"), "{registered}");
    env.cmd(["completions", "tcsh"]).assert().code(2);
}

/// What `man -l` makes of a page, as plain text.
fn rendered(page: &Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "200")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Bold and underline, when man overstrikes: `X\bX` and `_\bX` read as `X`.
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The command a page documents, and its options' long names.
fn long_options(path: &[&str]) -> Vec<String> {
    let mut cmd = reprove::cli::Cli::command();
    cmd.build();
    let mut cmd = &cmd;
    for name in path {
        cmd = cmd.find_subcommand(name).unwrap();
    }
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

#[test]
fn every_man_page_renders_and_names_its_options() {
    let env = TestEnv::new();
    let out = env.cmd(["man", "--out-dir", "man"]).output().unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    let mut pages: Vec<String> = std::fs::read_dir(env.path("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(listed.lines().count(), pages.len(), "{listed}");
    for page in [
        "reprove.1",
        "reprove-verify.1",
        "reprove-rebuild.1",
        "reprove-diff.1",
        "reprove-hash.1",
        "reprove-lock.1",
        "reprove-key-generate.1",
        "reprove-attest-verify.1",
        "reprove-completions.1",
        "reprove-man.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page}: {pages:?}");
    }
    for page in &pages {
        let text = rendered(&env.path(&format!("man/{page}")));
        let name = page.trim_end_matches(".1");
        assert!(
            text.contains(&format!("{name} - ")),
            "{page}: no NAME\n{text}"
        );
        let path: Vec<&str> = name.split('-').skip(1).collect();
        for option in long_options(&path) {
            assert!(text.contains(&option), "{page}: no `{option}`\n{text}");
        }
        // Every page, a subcommand's too, says which version it documents and what the exit
        // codes mean.
        let version = format!("v{}", env!("CARGO_PKG_VERSION"));
        for section in [
            "VERSION",
            &version,
            "EXIT STATUS",
            "could not decide",
            "130",
        ] {
            assert!(text.contains(section), "{page}: no `{section}`\n{text}");
        }
        assert!(!text.contains("reprove-help"), "{page}\n{text}");
    }
    // The synopsis names each option's value, and where an option takes several.
    let verify = rendered(&env.path("man/reprove-verify.1"));
    let synopsis = verify
        .split("SYNOPSIS")
        .nth(1)
        .and_then(|s| s.split("DESCRIPTION").next())
        .unwrap();
    let synopsis = synopsis.split_whitespace().collect::<Vec<_>>().join(" ");
    for shown in [
        "[--shipped PATH...]",
        "[--rebuilds N]",
        "[--color COLOR]",
        "[RECIPE...]",
    ] {
        assert!(synopsis.contains(shown), "no `{shown}`: {synopsis}");
    }
    let top = rendered(&env.path("man/reprove.1"));
    assert!(top.contains("Exit codes") && top.contains("130"), "{top}");
    assert!(top.contains("reprove-verify(1)"), "{top}");
}

#[test]
fn one_page_is_printed_and_an_unknown_one_is_an_error() {
    let env = TestEnv::new();
    let out = env.cmd(["man", "attest", "verify"]).output().unwrap();
    assert!(out.status.success());
    env.write("page.1", &out.stdout);
    let text = rendered(&env.path("page.1"));
    assert!(text.contains("reprove-attest-verify - "), "{text}");
    assert!(text.contains("--key"), "{text}");
    let out = env.cmd(["man", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no man page for `frobnicate`: name a command, as in `reprove man attest verify`\n"
    );
}

#[test]
fn help_lists_the_exit_codes() {
    let out = TestEnv::new().cmd(["--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for code in ["  0 ", "  1 ", "  2 ", "  130 ", "143"] {
        assert!(help.contains(code), "{code}: {help}");
    }
}
