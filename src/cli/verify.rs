//! `reprove verify RECIPE --shipped PATH...`: rebuild, compare, attest.

use std::path::PathBuf;

use clap::Args;

use anyhow::Context as _;

use crate::attest::key::signing_key_from;
use crate::attest::key::VerifyingKey;
use crate::attest::predicate::{statements, write_attestation, Attesting};
use crate::attest::replay::{compare, read_recorded, Recorded};
use crate::config::{check_name, check_uri, config_path, Config};
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
    /// Who verifies: the organisation or lab, as a URI (the VSA's `verifier.id`; required
    /// when signing) [default: `[verifier] id` of the config]
    #[arg(long, value_name = "URI")]
    verifier_id: Option<String>,
    /// A display name for the verifier [default: `[verifier] name` of the config]
    #[arg(long, value_name = "NAME")]
    verifier_name: Option<String>,
    /// The VSA's `policy.uri` [default: `[attestation] policy-uri` of the config, else
    /// `reprove:recipe/NAME@VERSION`]
    #[arg(long, value_name = "URI")]
    policy_uri: Option<String>,
    /// Leave escrow names and contents and host paths out of the attestation and the reports
    /// (every digest is kept) [default: `[attestation] redact` of the config]
    #[arg(long)]
    redact: bool,
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
    /// How the shipped files were obtained (tool, device serial, date, who): the text, or a
    /// file holding it (UTF-8, at most 64 KiB), signed into the attestation; repeat for several
    #[arg(long, value_name = "TEXT|FILE")]
    provenance: Vec<String>,
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
    let how = attesting(args, key.is_some(), out)?;
    // Read before building too: a provenance file that cannot be used must not cost a rebuild.
    let provenance = args
        .provenance
        .iter()
        .map(|value| crate::verify::Provenance::from_value(value))
        .collect::<Result<Vec<_>, _>>()?;
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
        .or_else(|| recorded.as_ref().map(Recorded::recipe))
        .unwrap_or_else(|| PathBuf::from("reprove.toml"));
    let shipped = match &recorded {
        Some(r) if args.shipped.is_empty() => r.shipped(),
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
        provenance,
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
    let statements = statements(&report, &shipped, &how, dump.as_ref());
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
    if let Some(e) = super::rebuild::wrong_recipe(&opts.recipe, &report.recipe_errors()) {
        return Err(e);
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

/// Who attests and how, from the flags and the config; settled before anything is built.
fn attesting(args: &VerifyArgs, signed: bool, out: &Output) -> anyhow::Result<Attesting> {
    let config = Config::load_default()?;
    let flag = |name: &str, value: &Option<String>, check: fn(&str) -> Result<(), String>| {
        if let Some(v) = value {
            check(v).map_err(|reason| anyhow::anyhow!("invalid `--{name}`: it {reason}: `{v}`"))?;
        }
        anyhow::Ok(())
    };
    flag("verifier-id", &args.verifier_id, check_uri)?;
    flag("verifier-name", &args.verifier_name, check_name)?;
    flag("policy-uri", &args.policy_uri, check_uri)?;
    let redact = args.redact || config.attestation.redact;
    if redact && args.html.is_some() {
        // The page explains the differences by their names and bytes: it cannot be redacted.
        return Err(anyhow::Error::new(Hint(
            "leave out `--html`, or write the page without `--redact` (and without \
             `[attestation] redact` in the config) for your own use"
                .to_owned(),
        ))
        .context("`--html` cannot be redacted: the page shows names and contents"));
    }
    let verifier_id = args.verifier_id.clone().or(config.verifier.id);
    let where_config = config_path().map_or_else(
        || "`$XDG_CONFIG_HOME/reprove/config.toml`".to_owned(),
        |(path, _)| format!("`{}`", path.display()),
    );
    let verifier_id = match verifier_id {
        Some(id) => id,
        None if signed => {
            return Err(anyhow::Error::new(Hint(format!(
                "pass `--verifier-id URI` (your organisation or lab, e.g. \
                 `https://lab.example/reprove`), or set `[verifier] id` in {where_config}"
            )))
            .context("a signed attestation must name its verifier: who ran the verification"));
        }
        None => {
            out.warn(&format!(
                "the attestation names no verifier (`{}`): pass `--verifier-id URI` or set \
                 `[verifier] id` in {where_config}",
                crate::attest::vsa::UNIDENTIFIED_VERIFIER
            ));
            return Ok(Attesting {
                policy_uri: args.policy_uri.clone().or(config.attestation.policy_uri),
                redact,
                ..Attesting::unidentified()
            });
        }
    };
    Ok(Attesting {
        verifier_id,
        verifier_name: args.verifier_name.clone().or(config.verifier.name),
        policy_uri: args.policy_uri.clone().or(config.attestation.policy_uri),
        redact,
    })
}
