//! `reprove attest export --cyclonedx ATTESTATION --key PUB [--out FILE]`: the attestation as a
//! CycloneDX 1.6 declaration ([`crate::attest::cyclonedx`]). The bundle is checked first, as
//! `attest verify` checks it: a bundle that does not hold is refused (exit 1) and nothing is
//! written; a file that cannot be read is exit 2. The document goes to `--out` (written whole
//! or not at all) or to stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::attest::bundle::{parse_bundle_bytes, read_bundle_bytes};
use crate::attest::check::{check_bundle, Problem};
use crate::attest::cyclonedx::cyclonedx_document;
use crate::attest::key::VerifyingKey;
use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct AttestExportArgs {
    /// The attestation bundle (`*.intoto.jsonl`)
    file: PathBuf,
    /// Write a CycloneDX 1.6 JSON document whose `declarations` carry the claim
    #[arg(long, required = true)]
    cyclonedx: bool,
    /// A trusted public key (PEM) the attestation must verify with; repeat for several
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
    /// Write the document here instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(super) fn run(args: &AttestExportArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    // The bundle is attached whole to the document: its bytes, as read (bounded, no FIFO).
    let bytes = read_bundle_bytes(&args.file)?;
    let envelopes = parse_bundle_bytes(&args.file, &bytes)?;
    let keys = args
        .keys
        .iter()
        .map(|path| VerifyingKey::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let report = check_bundle(&envelopes, &keys, &[])?;
    // A failed verification is evidence too: it is exported, with conformance 0.
    let problems: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| !matches!(p, Problem::VerificationFailed))
        .collect();
    let file = args.file.display().to_string();
    let document = if problems.is_empty() {
        let name = args
            .file
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
        cyclonedx_document(&name, &bytes, &report)
    } else {
        None
    };
    let Some(document) = document else {
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        crate::output::policy::export_refused(out, &file, &reasons)?;
        return Ok(ExitStatus::Failure);
    };
    let mut json = serde_json::to_vec_pretty(&document).context("failed to encode the document")?;
    json.push(b'\n');
    match &args.out {
        Some(path) => {
            crate::atomic::write_atomic(path, &json, crate::atomic::REPORT_MODE, true)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        None => out.result(&String::from_utf8_lossy(&json))?,
    }
    Ok(ExitStatus::Success)
}
