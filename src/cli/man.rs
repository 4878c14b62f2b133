//! `reprove man [COMMAND...] [--out-dir DIR]`: man pages generated from the clap definition
//! (`clap_mangen`): `reprove.1` and one page per subcommand, named as git names its own
//! (`reprove-verify.1`, `reprove-attest-verify.1`). One page is printed; with `--out-dir`
//! every page is written there, each whole or not at all.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};

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
    let mut cmd = super::Cli::command();
    // Builds the subcommands' bin names (`reprove attest verify`), which each synopsis shows.
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, "reprove", &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .context("failed to render a man page")?;
    Ok(page)
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
