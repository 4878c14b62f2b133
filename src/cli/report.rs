//! `reprove report ATTESTATION... --key PUB...`: one view of a fleet's attestations.
//!
//! Text (a table), `--json` (the format is in [`crate::output::report`]) and, with `--html
//! FILE`, a self-contained page besides. Exit 0 when every file is a valid attestation of a
//! passed verification, 1 when a release failed or an attestation is rejected, 2 when a file
//! cannot be read or the arguments are bad (a path that does not exist, no attestation found,
//! a key that does not load).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::attest::key::VerifyingKey;
use crate::exit::ExitStatus;
use crate::output::report::{fleet_json, render_report_html, render_report_text};
use crate::output::Output;
use crate::report::report_fleet;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Attestation bundles, or folders searched for `*.intoto.jsonl` (links that leave a folder
    /// are not followed)
    #[arg(value_name = "ATTESTATION", required = true)]
    paths: Vec<PathBuf>,
    /// A trusted public key (PEM); repeat for several
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
    /// Also write the report as one self-contained HTML page
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub(crate) fn run(args: &ReportArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    // Each key error names its file, which is all the context there is to add.
    let keys = args
        .keys
        .iter()
        .map(|path| VerifyingKey::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let fleet = report_fleet(&args.paths, &keys)?;
    if let Some(page) = &args.html {
        let html = render_report_html(&fleet);
        crate::atomic::write_atomic(page, html.as_bytes(), crate::atomic::REPORT_MODE, true)
            .with_context(|| format!("failed to write `{}`", page.display()))?;
    }
    if out.is_json() {
        out.json(&fleet_json(&fleet))?;
    } else {
        out.result(&render_report_text(out, &fleet))?;
    }
    Ok(fleet.exit_status())
}
