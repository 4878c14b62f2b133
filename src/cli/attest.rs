//! `reprove attest verify FILE --key PUB… [--artifact PATH…] [--dump FLASH]`: check an
//! attestation bundle (and a flash dump against it: [`super::attest_seek`] without `--artifact`).
//!
//! The output (text, or JSON with `--json`, whose wire format is documented there) is rendered
//! by `output::attest`. Exit 0 when every check holds, 1 when the attestation is
//! rejected, 2 when the bundle, a key or an artifact cannot be read.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::attest::bundle::read_bundle;
use crate::attest::check::check_bundle;
use crate::attest::check::Report;
use crate::attest::key::VerifyingKey;
use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Check an attestation's signatures, statements and subjects, and print its verdict; with
    /// `--policy`, decide over several attestations of one release
    Verify(AttestVerifyArgs),
    /// Write an attestation in another format: a CycloneDX 1.6 declaration
    Export(super::attest_export::AttestExportArgs),
}

#[derive(Debug, Args)]
pub struct AttestVerifyArgs {
    /// The attestation bundle (`*.intoto.jsonl`); several with `--policy`
    #[arg(value_name = "FILE", required = true)]
    pub(super) files: Vec<PathBuf>,
    /// A trusted public key (PEM); repeat for several
    #[arg(
        long = "key",
        value_name = "PUB",
        required_unless_present = "policy",
        conflicts_with = "policy"
    )]
    keys: Vec<PathBuf>,
    /// A trust policy (TOML): trusted verifiers and their keys, how many must agree, which
    /// verdicts, isolation and age count (see `docs/policy.md`)
    #[arg(long, value_name = "POLICY")]
    pub(super) policy: Option<PathBuf>,
    /// The time `max-age` is measured to, in RFC 3339 (default: the system clock)
    #[arg(long, value_name = "TIME", requires = "policy", value_parser = super::attest_policy::parse_now)]
    pub(super) now: Option<time::OffsetDateTime>,
    /// Files to re-hash and match against the attestation's subjects
    #[arg(long = "artifact", value_name = "PATH", num_args = 1..)]
    pub(super) artifacts: Vec<PathBuf>,
    /// Find the attested artifacts in this flash dump and account for every byte of it (see
    /// `docs/dump.md`): the `--artifact` files that match a subject, or, with none, every
    /// subject by the locator the attestation carries, confirmed by its digests
    #[arg(long, value_name = "FLASH")]
    pub(super) dump: Option<PathBuf>,
    /// The flash layout of `--dump`, a TOML file with a `[flash]` table
    #[arg(long, value_name = "FILE", requires = "dump")]
    pub(super) flash_layout: Option<PathBuf>,
}

pub(crate) fn run(command: &AttestCommand, out: &Output) -> anyhow::Result<ExitStatus> {
    let args = match command {
        AttestCommand::Export(args) => return super::attest_export::run(args, out),
        AttestCommand::Verify(args) if args.policy.is_some() => {
            return super::attest_policy::run(args, out)
        }
        AttestCommand::Verify(args) => args,
    };
    let [file] = args.files.as_slice() else {
        anyhow::bail!(
            "`--key` checks one attestation: to decide over {} of them, pass `--policy POLICY`",
            args.files.len()
        );
    };
    // Each error names its file (and line), which is all the context there is to add.
    let envelopes = read_bundle(file)?;
    let keys = args
        .keys
        .iter()
        .map(|path| VerifyingKey::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let report = check_bundle(&envelopes, &keys, &args.artifacts)?;
    // An artifact that matches no subject is the attestation's rejection (exit 1), reported
    // as such: the dump then has nothing vouched for to look for, which is no trouble (exit 2).
    let unmatched =
        !args.artifacts.is_empty() && report.artifacts.iter().all(|a| a.subject.is_none());
    let dump = match &args.dump {
        Some(_) if args.artifacts.is_empty() && report.rebuild.is_none() => {
            // Nothing signed to find the subjects by: the attestation is rejected (its
            // problems say why), and the dump is left unread rather than judged.
            out.warn("the dump was not checked: the attestation holds no signed rebuild predicate to find its subjects by");
            None
        }
        Some(flash) if args.artifacts.is_empty() => Some(super::attest_seek::check_dump(
            args, file, flash, &report, out,
        )?),
        Some(flash) if !unmatched => Some(check_dump(args, flash, &report, out)?),
        _ => None,
    };
    let not_checked = args.dump.as_deref().filter(|_| unmatched);
    out.attest_report(file, &report, dump.as_ref(), not_checked)?;
    let status = if report.is_verified() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    Ok(match &dump {
        Some(d) => status.worst(super::dump::exit_status(d, false)),
        None => status,
    })
}

/// `--dump`: the artifacts that matched a subject, found in the dump, vouched for by the
/// attested verdict (only a verified attestation vouches for anything).
fn check_dump(
    args: &AttestVerifyArgs,
    flash: &std::path::Path,
    report: &Report,
    out: &Output,
) -> anyhow::Result<crate::dump::DumpReport> {
    let vouched = vouched(report);
    let releases: Vec<crate::dump::Release> = report
        .artifacts
        .iter()
        .filter_map(|a| {
            a.subject.as_ref().map(|name| crate::dump::Release {
                name: name.clone(),
                path: a.path.clone(),
                vouched,
            })
        })
        .collect();
    if releases.is_empty() {
        anyhow::bail!(
            "no `--artifact` matches a subject of the attestation: nothing to look for in the dump"
        );
    }
    let opts = dump_options(args)?;
    super::dump::check(flash, &releases, &opts, out)
}

/// What a verified attestation's rebuild verdict vouches for; an unverified one vouches for
/// nothing (`different`).
pub(super) fn vouched(report: &Report) -> crate::verify::Verdict {
    match (&report.rebuild_verdict, report.is_verified()) {
        (Some(v), true) => serde_json::from_value(serde_json::Value::String(v.clone()))
            .unwrap_or(crate::verify::Verdict::Different),
        _ => crate::verify::Verdict::Different,
    }
}

/// The dump check's options: the layout of `--flash-layout` and its pins.
pub(super) fn dump_options(args: &AttestVerifyArgs) -> anyhow::Result<crate::dump::Options> {
    let (layout, blobs, layout_source) = match &args.flash_layout {
        Some(path) => {
            let file = super::dump::load_layout(path)?;
            (
                Some(file.flash),
                file.blobs,
                Some(format!("`{}`", path.display())),
            )
        }
        None => (None, Vec::new(), None),
    };
    Ok(crate::dump::Options {
        layout,
        layout_source,
        blobs,
        digest: false,
        ..crate::dump::Options::default()
    })
}
