//! A verification from request to attestation: the one call the command line makes.
//!
//! [`verify_attested`] settles what to verify (a `--from-attestation` replay supplies the
//! recipe and the shipped set the user left out), runs the stages of [`super::verify`], and
//! then the last stage, "attest": both statements written, signed with the key the caller
//! settled, to the file named or `NAME-VERSION.intoto.jsonl` (in `out_dir` when given), whole
//! or not at all ([`crate::atomic`]). An attestation is written for every verdict: a failed
//! verification is evidence too. Nothing here prints; the caller renders the [`Attested`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{verify, Options, Progress, Rebuilds, Report};
use crate::attest::key::{SigningKey, VerifyingKey};
use crate::attest::predicate::{statements, write_attestation, Attesting};
use crate::attest::replay::{compare, read_recorded, Mismatch, Recorded};
use crate::exit::ExitStatus;

/// What to verify, who attests it and where its attestation goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// Who attests, and how (settled by the caller from the command line and the config).
    pub(crate) attesting: Attesting,
    /// How the shipped files were obtained (`--provenance`), signed into the attestation.
    pub(crate) provenance: Vec<super::Provenance>,
    /// The recipe [default: the one the replayed attestation names, else `reprove.toml`].
    pub(crate) recipe: Option<PathBuf>,
    /// The shipped set [default: the one the replayed attestation names].
    pub(crate) shipped: Vec<PathBuf>,
    /// Run again the verification this attestation describes.
    pub(crate) from_attestation: Option<PathBuf>,
    /// With `from_attestation`: its rebuild statement must be signed by one of these.
    pub(crate) keys: Vec<PathBuf>,
    /// The attestation's file [default: `NAME-VERSION.intoto.jsonl` in `out_dir`].
    pub(crate) out: Option<PathBuf>,
    /// Where the attestation goes when `out` is not given [default: the current folder].
    pub(crate) out_dir: Option<PathBuf>,
    pub(crate) rebuilds: Option<u32>,
    pub(crate) work_dir: Option<PathBuf>,
    pub(crate) log_lines: usize,
}

/// A verification, attested.
#[derive(Debug, Clone)]
pub(crate) struct Attested {
    pub(crate) report: Report,
    /// The statements written: the VSA, then the rebuild statement.
    pub(crate) statements: [serde_json::Value; 2],
    /// The attestation's file.
    pub(crate) attestation: PathBuf,
    pub(crate) signed: bool,
    /// With `from_attestation`: the recorded facts the new run did not reproduce.
    pub(crate) replay: Option<Vec<Mismatch>>,
    /// The flash dump checked after the comparison (`verify --dump`), when there was one.
    pub(crate) dump: Option<crate::dump::DumpReport>,
}

impl Attested {
    /// The rebuild predicate written.
    pub(crate) fn predicate(&self) -> &serde_json::Value {
        &self.statements[1]["predicate"]
    }

    /// The exit status: a replay answers whether the run came out as recorded, whatever the
    /// verdict; otherwise the verdict decides (`equivalent` fails under `strict`).
    /// A checked dump weighs in too: the worst of both.
    pub(crate) fn exit_status(&self, strict: bool) -> ExitStatus {
        let status = match &self.replay {
            Some(mismatches) if mismatches.is_empty() => ExitStatus::Success,
            Some(_) => ExitStatus::Failure,
            None => self.report.verdict.exit_status(strict),
        };
        match &self.dump {
            Some(d) => status.worst(d.verdict.exit_status(strict)),
            None => status,
        }
    }
}

/// The stage that checks a flash dump against the verified release (`verify --dump`), run
/// after the comparison; `None` when there is no dump to check.
pub(crate) type DumpCheck<'a> =
    dyn Fn(&Report) -> anyhow::Result<Option<crate::dump::DumpReport>> + 'a;

/// Verify what `request` names and write its attestation, signed with `key` (unsigned when
/// `None`: the caller has settled that this was asked for).
pub(crate) fn verify_attested(
    request: &Request,
    key: Option<&SigningKey>,
    progress: &dyn Progress,
    dump_check: &DumpCheck<'_>,
) -> anyhow::Result<Attested> {
    let recorded = recorded(request)?;
    let recipe = request
        .recipe
        .clone()
        .or_else(|| recorded.as_ref().map(Recorded::recipe))
        .unwrap_or_else(|| PathBuf::from("reprove.toml"));
    let shipped = match &recorded {
        Some(r) if request.shipped.is_empty() => r.shipped(),
        _ => request.shipped.clone(),
    };
    let opts = Options {
        recipe,
        shipped,
        rebuilds: request
            .rebuilds
            .map_or(Rebuilds::OnMismatch, Rebuilds::Exactly),
        work_dir: request.work_dir.clone(),
        log_lines: request.log_lines,
        provenance: request.provenance.clone(),
    };
    let report = verify(&opts, progress)?;
    let dump = dump_check(&report)?;
    let attestation = request.out.clone().unwrap_or_else(|| {
        let name = default_attestation_name(&report.package);
        match &request.out_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    });
    let statements = attest_stage(
        &report,
        &opts.shipped,
        &request.attesting,
        dump.as_ref(),
        &attestation,
        key,
    )?;
    let replay = recorded.as_ref().map(|r| compare(r, &report));
    Ok(Attested {
        report,
        statements,
        attestation,
        signed: key.is_some(),
        replay,
        dump,
    })
}

/// `NAME-VERSION.intoto.jsonl`, the attestation's file when none is named: one file name,
/// never a path (a `/` in the name or version, which the recipe may hold, is written `%2F`,
/// and `%` is written `%25`, so that two packages never share a file unless they are one).
pub(crate) fn default_attestation_name(package: &crate::recipe::Package) -> String {
    let plain = |s: &str| s.replace('%', "%25").replace('/', "%2F");
    format!(
        "{}-{}.intoto.jsonl",
        plain(&package.name),
        plain(&package.version)
    )
}

/// Stage "attest": both statements of `report` (and of the dump checked after it), as
/// `how` says, written to `path` (atomically), signed with `key` when given; `shipped` are
/// the shipped set's paths as given.
pub(crate) fn attest_stage(
    report: &Report,
    shipped: &[PathBuf],
    how: &Attesting,
    dump: Option<&crate::dump::DumpReport>,
    path: &Path,
    key: Option<&SigningKey>,
) -> anyhow::Result<[serde_json::Value; 2]> {
    let shipped: Vec<&Path> = shipped.iter().map(PathBuf::as_path).collect();
    let statements = statements(report, &shipped, how, dump);
    write_attestation(&statements, path, key)
        .with_context(|| format!("failed to write the attestation `{}`", path.display()))?;
    Ok(statements)
}

fn recorded(request: &Request) -> anyhow::Result<Option<Recorded>> {
    let Some(file) = &request.from_attestation else {
        return Ok(None);
    };
    let keys = request
        .keys
        .iter()
        .map(|k| VerifyingKey::load(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(read_recorded(file, &keys)?))
}
