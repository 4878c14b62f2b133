use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = reprove::cli::Cli::parse();
    reprove::cli::run(cli).into()
}
