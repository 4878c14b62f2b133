//! `reprove verify RECIPE --shipped PATH...`: rebuild, compare, attest.

use std::path::PathBuf;

use clap::Args;

use anyhow::Context as _;

use crate::attest::key::signing_key_from;
use crate::attest::key::VerifyingKey;
use crate::attest::predicate::{statements, write_attestation};
use crate::attest::replay::{compare, read_recorded};
use crate::exit::ExitStatus;
use crate::output::{Hint, Output};
use crate::verify::{verify, Options, Rebuilds};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The recipe, with its `reprove.lock` beside it [default: `reprove.toml`, or the one the
    /// attestation names with `--from-attestation`]
    recipe: Option<PathBuf>,
    /// The shipped binaries: files, folders or vendor bundle archives
    #[arg(long, required_unless_present = "from_attestation", num_args = 1.., value_name = "PATH")]
    shipped: Vec<PathBuf>,
    /// Run again the verification this attestation describes and say whether it comes out
    /// the same (exit 0 when it does, 1 when not)
    #[arg(long, value_name = "FILE")]
    from_attestation: Option<PathBuf>,
    /// With `--from-attestation`: its rebuild statement must be signed by this public key
    #[arg(long, value_name = "PUB", requires = "from_attestation")]
    key: Vec<PathBuf>,
    /// Where to write the attestation [default: NAME-VERSION.intoto.jsonl]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Rebuild this many times up front (default: once, and once more on a mismatch)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    rebuilds: Option<u32>,
    /// Fail on `equivalent`: only identical bytes pass
    #[arg(long)]
    strict: bool,
    /// Sign the attestation with this Ed25519 key [env: `REPROVE_SIGN_KEY`]
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Write the attestation unsigned (only when asked)
    #[arg(long, conflicts_with = "sign_key")]
    unsigned: bool,
    /// Also write the report as one self-contained HTML page
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Keep build trees and logs in this folder (new or empty)
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Show this many last lines of a failed build's log (0: none; the whole log is kept in
    /// the cache, or in `--work-dir`, and its path printed)
    #[arg(long, value_name = "N", default_value_t = crate::build::failure::DEFAULT_TAIL_LINES)]
    log_lines: usize,
    /// After the verification, find the release in this flash dump and account for every
    /// byte of it (the recipe's `[flash]` layout, or `--flash-layout`); recorded in the
    /// attestation
    #[arg(long, value_name = "FLASH")]
    dump: Option<PathBuf>,
    /// The flash layout of `--dump`, a TOML file with a `[flash]` table (see `docs/dump.md`)
    #[arg(long, value_name = "FILE", requires = "dump")]
    flash_layout: Option<PathBuf>,
}

pub(crate) fn run(args: &VerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let result = run_to_end(args, out);
    match (&args.work_dir, crate::interrupt::received()) {
        // An interrupted run leaves a work folder the user named (minus any tree it was
        // unpacking, which is all or nothing): say so.
        (Some(dir), Some(signal)) => Err(anyhow::Error::new(Hint(format!(
            "the work folder `{}` keeps what the run made before it stopped; remove it when done",
            dir.display()
        )))
        .context(signal.to_string())),
        _ => result,
    }
}

fn run_to_end(args: &VerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    // Settle the key before building: a missing key must not cost a rebuild.
    let key = if args.unsigned {
        None
    } else {
        let key = signing_key_from(args.sign_key.as_deref())?;
        if key.is_none() {
            return Err(anyhow::Error::new(Hint(
                "pass `--sign-key KEY` (make one with `reprove key generate --out KEY`), set \
                 `REPROVE_SIGN_KEY`, or pass `--unsigned` to write an unsigned attestation"
                    .to_owned(),
            ))
            .context("no signing key for the attestation"));
        }
        key
    };
    let recorded = match &args.from_attestation {
        Some(file) => {
            let keys = args
                .key
                .iter()
                .map(|k| VerifyingKey::load(k))
                .collect::<Result<Vec<_>, _>>()?;
            Some(read_recorded(file, &keys)?)
        }
        None => None,
    };
    let recipe = args
        .recipe
        .clone()
        .or_else(|| recorded.as_ref().map(|r| r.recipe.clone()))
        .unwrap_or_else(|| PathBuf::from("reprove.toml"));
    let shipped = match &recorded {
        Some(r) if args.shipped.is_empty() => r.shipped.clone(),
        _ => args.shipped.clone(),
    };
    let opts = Options {
        recipe,
        shipped: shipped.clone(),
        rebuilds: args
            .rebuilds
            .map_or(Rebuilds::OnMismatch, Rebuilds::Exactly),
        work_dir: args.work_dir.clone(),
        log_lines: args.log_lines,
    };
    let progress = out.reporter();
    let report = verify(&opts, &progress)?;
    progress.finish();
    let attestation = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.intoto.jsonl",
            report.package.name, report.package.version
        ))
    });
    let dump = match &args.dump {
        Some(flash) => {
            let recipe = crate::recipe::Recipe::load(&opts.recipe)?;
            let layout = args.flash_layout.as_deref();
            Some(super::dump::after_verify(
                flash, layout, &report, &recipe, out,
            )?)
        }
        None => None,
    };
    let shipped: Vec<&std::path::Path> = shipped.iter().map(PathBuf::as_path).collect();
    let mut statements = statements(&report, &shipped);
    if let Some(d) = &dump {
        statements[1]["predicate"]["dump"] = crate::attest::predicate::dump_predicate(d);
        if !d.verdict.passed(args.strict) {
            statements[0]["predicate"]["verificationResult"] = "FAILED".into();
        }
    }
    write_attestation(&statements, &attestation, key.as_ref()).with_context(|| {
        format!(
            "failed to write the attestation `{}`",
            attestation.display()
        )
    })?;
    if key.is_none() {
        out.warn("the attestation is unsigned: nobody can tell who wrote it");
    }
    if let Some(page) = &args.html {
        let html = crate::output::verify::render_verify_html(&report, &attestation);
        crate::atomic::write_atomic(page, html.as_bytes(), crate::atomic::REPORT_MODE, true)
            .with_context(|| format!("failed to write the report `{}`", page.display()))?;
    }
    let replay = recorded.as_ref().map(|r| compare(r, &report));
    out.verify_report(
        &report,
        &statements[1]["predicate"],
        &attestation,
        replay.as_deref(),
    )?;
    if let Some(d) = &dump {
        super::dump::print(d, out)?;
    }
    let status = match replay {
        // A replay answers whether the run came out as recorded, whatever the verdict.
        Some(mismatches) if mismatches.is_empty() => ExitStatus::Success,
        Some(_) => ExitStatus::Failure,
        None => report.verdict.exit_status(args.strict),
    };
    Ok(match &dump {
        Some(d) => status.worst(super::dump::exit_status(d, args.strict)),
        None => status,
    })
}
