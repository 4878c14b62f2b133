//! `reprove completions SHELL`: a completion script for a shell, generated from the clap
//! definition (`clap_complete`), so it always matches the commands and options.

use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: Shell,
}

pub(crate) fn run(args: &CompletionsArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "reprove", &mut script);
    out.result(&String::from_utf8_lossy(&script))?;
    Ok(ExitStatus::Success)
}
