//! `reprove man [COMMAND...] [--out-dir DIR]`: man pages generated from the clap definition
//! (`clap_mangen`): `reprove.1` and one page per subcommand, named as git names its own
//! (`reprove-verify.1`, `reprove-attest-verify.1`). One page is printed; with `--out-dir`
//! every page is written there, each whole or not at all.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};
use roff::{bold, italic, roman, Roff};

use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. `verify` or `attest verify` [default: `reprove`
    /// itself]
    #[arg(conflicts_with = "out_dir")]
    command: Vec<String>,
    /// Write every page (`reprove.1`, `reprove-verify.1`, …) into this folder
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Every page: its name without `.1` and the command it documents, named for the page.
fn pages() -> Vec<(String, clap::Command)> {
    fn collect(cmd: &clap::Command, name: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            collect(sub, &format!("{name}-{}", sub.get_name()), out);
        }
        out.push((name.to_owned(), cmd.clone().name(name.to_owned())));
    }
    // No `help` subcommand: it has no page, so the top page must not name one.
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    // Builds the subcommands' bin names (`reprove attest verify`), which each synopsis shows.
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, "reprove", &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A page: `clap_mangen`'s sections, with a synopsis that names each option's value, the
/// version, and the exit codes on every page (a subcommand page is often the only one read).
fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let version = env!("CARGO_PKG_VERSION");
    let is_top = cmd.get_name() == "reprove";
    let cmd = cmd.version(version);
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("reprove {version}"));
    let mut page = Vec::new();
    let mut sections = || -> std::io::Result<()> {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        synopsis(&cmd).to_writer(&mut page)?;
        man.render_description_section(&mut page)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut page)?;
        }
        if cmd.has_subcommands() {
            man.render_subcommands_section(&mut page)?;
        }
        // The top page's after-help is the exit codes, which have their own section here.
        if !is_top && cmd.get_after_help().is_some() {
            man.render_extra_section(&mut page)?;
        }
        exit_status().to_writer(&mut page)?;
        man.render_version_section(&mut page)
    };
    sections().context("failed to render a man page")?;
    Ok(page)
}

/// SYNOPSIS: the command, then each option as `[--name VALUE]` (required ones bare, `...`
/// where it takes several), then the positionals.
fn synopsis(cmd: &clap::Command) -> Roff {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut line = vec![bold(name)];
    let shown = |a: &&clap::Arg| !a.is_hide_set();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_positional())
        .filter(shown)
    {
        line.push(roman(" "));
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => format!("-{s}|--{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => arg.get_id().to_string(),
        };
        line.push(bold(flag));
        if arg.get_action().takes_values() {
            line.push(roman(" "));
            line.push(italic(value_name(arg)));
            if takes_several(arg) {
                line.push(roman("..."));
            }
        }
        if !required {
            line.push(roman("]"));
        }
    }
    for arg in cmd.get_positionals().filter(shown) {
        line.push(roman(" "));
        let required = arg.is_required_set();
        line.push(roman(if required { "" } else { "[" }));
        line.push(italic(value_name(arg)));
        if takes_several(arg) {
            line.push(roman("..."));
        }
        line.push(roman(if required { "" } else { "]" }));
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

fn value_name(arg: &clap::Arg) -> String {
    arg.get_value_names().map_or_else(
        || arg.get_id().as_str().to_uppercase(),
        |names| {
            names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

fn takes_several(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.max_values() > 1)
        || matches!(arg.get_action(), clap::ArgAction::Append)
}

/// EXIT STATUS, from the table `--help` shows ([`super::EXIT_CODES`]).
fn exit_status() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    let mut lines = super::EXIT_CODES.lines();
    if let Some(intro) = lines.next() {
        roff.text([roman(intro.trim_end_matches(':').to_owned() + ".")]);
    }
    for line in lines {
        let line = line.trim();
        let (code, meaning) = line.split_once(' ').unwrap_or((line, ""));
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning.trim())]);
    }
    roff
}

pub(crate) fn run(args: &ManArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let pages = pages();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let mut written = String::new();
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            crate::atomic::write_atomic(&path, &render(cmd)?, 0o644, true)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
            written.push_str(&format!("{}\n", path.display()));
        }
        out.result(&written)?;
        return Ok(ExitStatus::Success);
    }
    let wanted = std::iter::once("reprove")
        .chain(args.command.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-");
    let Some((_, cmd)) = pages.into_iter().find(|(name, _)| *name == wanted) else {
        anyhow::bail!(
            "no man page for `{}`: name a command, as in `reprove man attest verify`",
            args.command.join(" ")
        );
    };
    out.result(&String::from_utf8_lossy(&render(cmd)?))?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_has_a_page() {
        let names: Vec<String> = super::pages().into_iter().map(|p| p.0).collect();
        for name in [
            "reprove",
            "reprove-verify",
            "reprove-attest-verify",
            "reprove-key-generate",
            "reprove-completions",
            "reprove-man",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }
}
