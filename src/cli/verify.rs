//! `reprove verify RECIPE --shipped PATH...`: rebuild, compare, attest; with several recipes
//! or `--manifest FILE`, many releases in one run (`--jobs N`).

use std::path::PathBuf;

use clap::Args;

use anyhow::Context as _;

use crate::attest::key::{signing_key_from, SigningKey};
use crate::attest::predicate::Attesting;
use crate::config::{check_name, check_uri, config_path, Config};
use crate::exit::ExitStatus;
use crate::output::{Hint, Output};
use crate::verify::{batch, verify_attested, Request};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The recipe, with its `reprove.lock` beside it [default: `reprove.toml`, or the one the
    /// attestation names with `--from-attestation`]; several recipes verify several releases,
    /// each picking its artifacts from the same `--shipped` set by name
    #[arg(value_name = "RECIPE")]
    recipes: Vec<PathBuf>,
    /// The shipped binaries: files, folders or vendor bundle archives
    #[arg(
        long,
        required_unless_present_any = ["from_attestation", "manifest"],
        num_args = 1..,
        value_name = "PATH"
    )]
    shipped: Vec<PathBuf>,
    /// Verify the releases this file lists (TOML `[[release]]` tables, or JSON Lines with a
    /// `.jsonl` name: `recipe`, `shipped`, optional `out`), each with its own attestation
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["recipes", "shipped", "out", "html", "work_dir", "from_attestation"]
    )]
    manifest: Option<PathBuf>,
    /// With several releases: verify this many at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Write the attestation (each release's, with several) into this folder, named
    /// `NAME-VERSION.intoto.jsonl` unless the manifest names it
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    out_dir: Option<PathBuf>,
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
    /// when signing) [env: `REPROVE_VERIFIER_ID`] [default: `[verifier] id` of the config]
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
    #[arg(long, value_name = "TEXT|FILE", conflicts_with = "manifest")]
    provenance: Vec<String>,
    /// After the verification, find the release in this flash dump and account for every
    /// byte of it (the recipe's `[flash]` layout, or `--flash-layout`); recorded in the
    /// attestation
    #[arg(long, value_name = "FLASH", conflicts_with = "manifest")]
    dump: Option<PathBuf>,
    /// The flash layout of `--dump`, a TOML file with a `[flash]` table (see `docs/dump.md`)
    #[arg(long, value_name = "FILE", requires = "dump")]
    flash_layout: Option<PathBuf>,
}

pub(crate) fn run(args: &VerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    if args.manifest.is_some() || args.recipes.len() > 1 {
        return run_batch(args, out);
    }
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

/// The signing key, settled before building: a missing key must not cost a rebuild.
pub(super) fn settle_key(
    unsigned: bool,
    sign_key: Option<&std::path::Path>,
) -> anyhow::Result<Option<SigningKey>> {
    if unsigned {
        return Ok(None);
    }
    match signing_key_from(sign_key)? {
        Some(key) => Ok(Some(key)),
        None => Err(anyhow::Error::new(Hint(
            "pass `--sign-key KEY` (make one with `reprove key generate --out KEY`), set \
             `REPROVE_SIGN_KEY`, or pass `--unsigned` to write an unsigned attestation"
                .to_owned(),
        ))
        .context("no signing key for the attestation")),
    }
}

fn run_to_end(args: &VerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    if args.dump.is_some() {
        super::dump::refuse_only_bundles(&args.shipped)?;
    }
    let key = settle_key(args.unsigned, args.sign_key.as_deref())?;
    let attesting = attesting(args, key.is_some(), out)?;
    // Read before building too: a provenance file that cannot be used must not cost a rebuild.
    let provenance = args
        .provenance
        .iter()
        .map(|value| crate::verify::Provenance::from_value(value))
        .collect::<Result<Vec<_>, _>>()?;
    let request = Request {
        attesting,
        provenance,
        recipe: args.recipes.first().cloned(),
        shipped: args.shipped.clone(),
        from_attestation: args.from_attestation.clone(),
        keys: args.key.clone(),
        out: args.out.clone(),
        out_dir: args.out_dir.clone(),
        rebuilds: args.rebuilds,
        work_dir: args.work_dir.clone(),
        log_lines: args.log_lines,
    };
    let progress = out.reporter();
    // `--dump`: checked after the comparison, against the release as verified, and recorded
    // in the attestation with the rest.
    let dump_check = |report: &crate::verify::Report| match &args.dump {
        Some(flash) => {
            let recipe = crate::recipe::Recipe::load(&report.recipe.path)?;
            super::dump::after_verify(flash, args.flash_layout.as_deref(), report, &recipe, out)
                .map(Some)
        }
        None => Ok(None),
    };
    let attested = verify_attested(&request, key.as_ref(), &progress, &dump_check)?;
    progress.finish();
    if !attested.signed {
        out.warn("the attestation is unsigned: nobody can tell who wrote it");
    }
    if let Some(page) = &args.html {
        let html =
            crate::output::verify::render_verify_html(&attested.report, &attested.attestation);
        crate::atomic::write_atomic(page, html.as_bytes(), crate::atomic::REPORT_MODE, true)
            .with_context(|| format!("failed to write the report `{}`", page.display()))?;
    }
    out.verify_report(
        &attested.report,
        attested.predicate(),
        &attested.attestation,
        attested.replay.as_deref(),
    )?;
    if let Some(d) = &attested.dump {
        super::dump::print(d, out)?;
    }
    let recipe = &attested.report.recipe.path;
    if let Some(e) = super::rebuild::wrong_recipe(recipe, &attested.report.recipe_errors()) {
        return Err(e);
    }
    Ok(attested.exit_status(args.strict))
}

/// Several releases: each verified and attested on its own, `--jobs` at a time, shown as it
/// ends, then the summary table; the exit status is the worst of all.
fn run_batch(args: &VerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    for (given, flag) in [
        (args.out.is_some(), "--out"),
        (args.html.is_some(), "--html"),
        (args.work_dir.is_some(), "--work-dir"),
        (args.from_attestation.is_some(), "--from-attestation"),
        (args.dump.is_some(), "--dump"),
        (!args.provenance.is_empty(), "--provenance"),
    ] {
        if given {
            let hint = if flag == "--out" {
                "name each release's attestation with `out` in a `--manifest`, and their \
                 folder with `--out-dir`"
            } else {
                "verify that release on its own, with one recipe"
            };
            return Err(anyhow::Error::new(Hint(hint.to_owned()))
                .context(format!("`{flag}` verifies one release, not several")));
        }
    }
    let releases = match &args.manifest {
        Some(manifest) => batch::load_manifest(manifest)?,
        None => batch::releases_from_args(&args.recipes, &args.shipped),
    };
    let out_dir = args.out_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let planned = batch::plan(releases, &out_dir)?;
    let key = settle_key(args.unsigned, args.sign_key.as_deref())?;
    let attesting = attesting(args, key.is_some(), out)?;
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("failed to create the folder `{}`", out_dir.display()))?;
    if key.is_none() {
        out.warn("the attestations are unsigned: nobody can tell who wrote them");
    }
    let settings = batch::Settings {
        attesting,
        out_dir,
        rebuilds: args.rebuilds,
        log_lines: args.log_lines,
        strict: args.strict,
    };
    let progress = out.jobs_reporter();
    let failed_output = std::sync::Mutex::new(None);
    let outcomes = batch::verify_batch(
        &planned,
        &settings,
        key.as_ref(),
        usize::from(args.jobs),
        &progress,
        &|outcome| {
            if let Err(e) = out.batch_release(outcome) {
                failed_output
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert(e);
            }
        },
    )?;
    drop(progress);
    if let Some(e) = failed_output
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(anyhow::Error::new(e).context("failed to write the results"));
    }
    out.batch_summary(&outcomes)?;
    Ok(outcomes
        .iter()
        .fold(ExitStatus::Success, |worst, o| worst.worst(o.status)))
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
    // A scheduler's job sets it once for every release, as it sets `REPROVE_SIGN_KEY`.
    let from_env = std::env::var("REPROVE_VERIFIER_ID")
        .ok()
        .filter(|v| !v.is_empty());
    flag("verifier-id", &args.verifier_id, check_uri)?;
    flag(
        "verifier-id` (from `REPROVE_VERIFIER_ID",
        &from_env,
        check_uri,
    )?;
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
    let verifier_id = args.verifier_id.clone().or(from_env).or(config.verifier.id);
    let where_config = config_path().map_or_else(
        || "`$XDG_CONFIG_HOME/reprove/config.toml`".to_owned(),
        |(path, _)| format!("`{}`", path.display()),
    );
    let verifier_id = match verifier_id {
        Some(id) => id,
        None if signed => {
            return Err(anyhow::Error::new(Hint(format!(
                "pass `--verifier-id URI` (your organisation or lab, e.g. \
                 `https://lab.example/reprove`), set `REPROVE_VERIFIER_ID`, or set \
                 `[verifier] id` in {where_config}"
            )))
            .context("a signed attestation must name its verifier: who ran the verification"));
        }
        None => {
            out.warn(&format!(
                "the attestation names no verifier (`{}`): pass `--verifier-id URI`, set \
                 `REPROVE_VERIFIER_ID`, or set `[verifier] id` in {where_config}",
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
