//! `reprove key generate --out KEY`: an Ed25519 key pair for signing attestations.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::attest::{self, key::generate_key_pair};
use crate::exit::ExitStatus;
use crate::output::{Hint, Output};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new Ed25519 key pair: KEY (PKCS#8 PEM, mode 0600) and KEY.pub (PEM public key)
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Where to write the private key; the public key goes to the same path plus `.pub`
    #[arg(long, value_name = "KEY")]
    out: PathBuf,
    /// Replace existing key files
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(command: &KeyCommand, out: &Output) -> anyhow::Result<ExitStatus> {
    let KeyCommand::Generate(args) = command;
    let generated = match generate_key_pair(&args.out, args.force) {
        Ok(generated) => generated,
        Err(err @ attest::Error::Exists { .. }) => {
            return Err(anyhow::Error::new(Hint(
                "pass `--force` to replace it, or choose another `--out`".to_owned(),
            ))
            .context(err.to_string()));
        }
        Err(err) => return Err(err).context("failed to generate a key pair"),
    };
    out.key_generated(&generated)?;
    Ok(ExitStatus::Success)
}
