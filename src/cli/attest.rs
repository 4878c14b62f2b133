//! `reprove attest verify FILE --key PUB… [--artifact PATH…]`: check an attestation bundle.
//!
//! The output (text, or JSON with `--json`, whose wire format is documented there) is rendered
//! by `output::attest`. Exit 0 when every check holds, 1 when the attestation is
//! rejected, 2 when the bundle, a key or an artifact cannot be read.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::attest::bundle::read_bundle;
use crate::attest::check::check_bundle;
use crate::attest::key::VerifyingKey;
use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Check an attestation's signatures, statements and subjects, and print its verdict
    Verify(AttestVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AttestVerifyArgs {
    /// The attestation bundle (`*.intoto.jsonl`)
    file: PathBuf,
    /// A trusted public key (PEM); repeat for several
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
    /// Files to re-hash and match against the attestation's subjects
    #[arg(long = "artifact", value_name = "PATH", num_args = 1..)]
    artifacts: Vec<PathBuf>,
}

pub(crate) fn run(command: &AttestCommand, out: &Output) -> anyhow::Result<ExitStatus> {
    let AttestCommand::Verify(args) = command;
    // Each error names its file (and line), which is all the context there is to add.
    let envelopes = read_bundle(&args.file)?;
    let keys = args
        .keys
        .iter()
        .map(|path| VerifyingKey::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let report = check_bundle(&envelopes, &keys, &args.artifacts)?;
    out.attest_report(&args.file, &report)?;
    Ok(if report.is_verified() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
