//! `verify`, as a sequence of named stages, each a function with typed input and output:
//!
//! 1. **pins** ([`load_pins`]): the recipe and its lock → [`Pins`];
//! 2. **shipped set** ([`collect_shipped`]): the shipped paths → [`ShippedSet`];
//! 3. **pins hold** ([`check_toolchain`]): every pin against the disk → the [`Toolchain`]
//!    (sandbox, clock), or `toolchain-drift`;
//! 4. **escrow** and **rebuilds** ([`rebuild_stage`], once per rebuild): the escrow unpacked
//!    and checked against its pin (or `source-mismatch`), the build run (or `build-failed`);
//! 5. **compare** ([`compare_stage`] for the first rebuild against the shipped set, then
//!    [`agreement_stage`] for the later rebuilds against the first);
//! 6. **verdict** ([`verdict_stage`]): the worst artifact's verdict, the [`Report`] closed;
//! 7. **attest** ([`attested::attest_stage`]): both statements written and signed.
//!
//! [`verify`] runs 1–6; [`verify_attested`] settles the request (a replay's recipe and
//! shipped set), runs them and attests: the one call the command line makes. A stage that
//! settles the verdict early returns it as [`Settled`] and the report is finished with it.
//!
//! A negative answer is a [`Verdict`], not an error: drifted pins and a mismatched escrow are
//! verdicts too (nothing is built), and every verdict yields a report that is attested. An
//! error means the question could not be asked: a bad recipe, a missing lock, an
//! unreadable shipped file, no sandbox.
//!
//! Verdicts follow from what is recorded beside them (`attest verify` checks it): `identical`
//! only where every rebuild produced the shipped bytes; rebuilds that disagree make an
//! artifact `nondeterministic`; a rebuild after the first that fails makes every artifact
//! `build-failed`, keeping the first rebuild's comparisons and naming the failed rebuild.

pub(crate) mod attested;
pub(crate) mod batch;
mod custody;
mod declared;
mod names;
mod provenance;
pub(crate) mod shipped;
mod verdict;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use time::OffsetDateTime;

use crate::build::failure::{failure_log, logs_dir, FailureLog};
use crate::build::{rebuild, Rebuild, Variation};
use crate::compare::{
    check_declared, diff_paths, Comparison, DeclaredPart, Image, ImageParts,
    Options as CompareOptions, Verdict as CompareVerdict,
};
use crate::escrow::{self, Escrow};
use crate::hash::{Checksum, Hashes};
pub(crate) use crate::progress::Progress;
use crate::progress::Stage;
use crate::recipe::{Recipe, Vary};
use crate::sandbox::{Isolation, Sandbox};
use crate::toolchain::{Drift, Lock, Pin, Tool};

pub(crate) use attested::{verify_attested, Request};
pub(crate) use custody::{BlobOutcome, BlobReport};
pub(crate) use provenance::Provenance;
pub(crate) use shipped::{ShippedFile, ShippedSet};
pub(crate) use verdict::Verdict;

/// How many rebuilds to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuilds {
    /// One, and a second (varied) one when the first differs from the shipped set.
    OnMismatch,
    /// Exactly this many, up front (1 means never a second).
    Exactly(u32),
}

/// What to verify.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub recipe: PathBuf,
    pub shipped: Vec<PathBuf>,
    pub rebuilds: Rebuilds,
    /// Keep the build trees and logs here instead of a temporary folder.
    pub work_dir: Option<PathBuf>,
    /// Lines of a failed build's log to show ([`crate::build::failure::DEFAULT_TAIL_LINES`]
    /// unless told otherwise; 0 for none).
    pub log_lines: usize,
    /// How the shipped files were obtained (`--provenance`), recorded as given.
    pub provenance: Vec<Provenance>,
}

/// A file the verification read, and its digests.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub path: PathBuf,
    pub hashes: Hashes,
}

/// The escrow as checked.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub path: PathBuf,
    pub expected: Checksum,
    /// What was found, when the escrow could be read.
    pub found: Option<Escrow>,
    pub files: Option<u64>,
}

/// The backend the builds ran in.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationRecord {
    /// `none` or `bwrap`.
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The hermetic root's pinned digest, when the build saw nothing but that root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<Checksum>,
}

/// One artifact's outcome.
#[derive(Debug, Clone)]
pub struct ArtifactReport {
    pub name: String,
    pub path: PathBuf,
    pub verdict: Verdict,
    /// Digests of the artifact in each rebuild (`None` where it was not produced).
    pub rebuilt: Vec<Option<Hashes>>,
    pub shipped: Option<ShippedFile>,
    /// How the first rebuild differs from the shipped file, explained.
    pub difference: Option<Comparison>,
    /// How a later rebuild differs from the first, when they disagree.
    pub nondeterminism: Option<Comparison>,
    /// Why the first rebuild did not produce it, when it did not (`out` is a symlink that
    /// leaves the build tree, `out/fw.bin` is a directory, …).
    pub absent: Option<String>,
    /// When the first rebuild did not produce it: files it made that look like it.
    pub similar: Vec<PathBuf>,
    /// What a reader should know that no verdict says: an `elf` the rebuild did not make.
    pub notes: Vec<String>,
    /// When a later rebuild failed (and so `verdict` is `build-failed`): what the first
    /// rebuild, compared with the shipped file, came to.
    pub first_rebuild: Option<Verdict>,
}

/// Everything a verification found: what the attestation records.
#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    pub package: crate::recipe::Package,
    pub recipe: FileRecord,
    pub lock: FileRecord,
    pub traced_lock: bool,
    pub tools: std::collections::BTreeMap<String, Tool>,
    pub pins: Vec<Pin>,
    pub drift: Vec<Drift>,
    pub source: SourceRecord,
    pub command: Vec<String>,
    pub timeout_seconds: u64,
    pub isolation: IsolationRecord,
    pub rebuilds: Vec<Rebuild>,
    /// The index in `rebuilds` of a rebuild after the first that failed: the verification
    /// stopped there, keeping the first rebuild's comparisons.
    pub failed_rebuild: Option<usize>,
    pub artifacts: Vec<ArtifactReport>,
    /// Every file of the shipped set, once each.
    pub shipped_files: Vec<ShippedFile>,
    /// The recipe's `[[blob]]` pins, each checked against the shipped file of its name.
    pub blobs: Vec<BlobReport>,
    /// Where every byte of the shipped set stands (counted as `docs/attestation.md` says).
    pub coverage: crate::coverage::Coverage,
    /// How the shipped files were obtained, as the user said (`--provenance`).
    pub provenance: Vec<Provenance>,
    pub started: OffsetDateTime,
    pub finished: OffsetDateTime,
}

impl Report {
    /// The shipped files the report speaks of, by artifact name (the attestation's subjects).
    /// Pinned blobs are subjects too, by their names, matched or not: the attestation speaks of
    /// them. When nothing was found in the shipped set, the subjects are every shipped file, so
    /// that the statement still names what was judged (in-toto needs at least one subject).
    pub fn subjects(&self) -> Vec<(&str, &Hashes)> {
        let matched: Vec<(&str, &Hashes)> = self
            .artifacts
            .iter()
            .filter_map(|a| a.shipped.as_ref().map(|s| (a.name.as_str(), &s.hashes)))
            .chain(self.blobs.iter().map(|b| (b.name.as_str(), &b.hashes)))
            .collect();
        if !matched.is_empty() {
            return matched;
        }
        self.shipped_files
            .iter()
            .map(|f| (f.origin.as_str(), &f.hashes))
            .collect()
    }
}

/// The recipe and its lock, as read: the pins every later stage holds to.
pub(crate) struct Pins {
    pub(crate) recipe: Recipe,
    pub(crate) lock: Lock,
    pub(crate) lock_record: FileRecord,
}

/// The toolchain, once every pin holds: the sandbox the rebuilds run in and the clock a varied
/// rebuild starts from (when the lock pins libfaketime).
pub(crate) struct Toolchain {
    pub(crate) sandbox: Box<dyn Sandbox>,
    pub(crate) clock_from: Option<i64>,
}

/// The folder the rebuilds work in: the user's `--work-dir`, or a temporary one removed when
/// this is dropped.
pub(crate) struct WorkDir {
    path: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl WorkDir {
    /// The user's folder (which must be new or empty), or a fresh temporary one.
    pub(crate) fn new(named: Option<&Path>) -> anyhow::Result<WorkDir> {
        if let Some(dir) = named {
            prepare_work_dir(dir)?;
            return Ok(WorkDir {
                path: dir.to_path_buf(),
                _temporary: None,
            });
        }
        let temporary = tempfile::Builder::new()
            .prefix("reprove-")
            .tempdir()
            .context("failed to create a work folder")?;
        Ok(WorkDir {
            path: temporary.path().to_path_buf(),
            _temporary: Some(temporary),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Run a whole verification: the stages below, in order. Each stage that can settle the
/// verdict early (drifted pins, a mismatched escrow, a failed first build) returns it as
/// [`Settled`], and the report is finished with that verdict; nothing after it runs.
pub(crate) fn verify(opts: &Options, progress: &dyn Progress) -> anyhow::Result<Report> {
    let started = OffsetDateTime::now_utc();
    let pins = load_pins(&opts.recipe)?;
    let work = WorkDir::new(opts.work_dir.as_deref())?;
    let shipped = collect_shipped(&opts.shipped, work.path(), progress)?;
    // Before anything is built: a pin that names nothing is a recipe to correct. With nothing
    // shipped (`reprove rebuild`) there is nothing to pin against, and no blob is looked for;
    // a blob a flash region names is checked in the dump (`verify --dump`).
    let nothing_shipped = opts.shipped.is_empty();
    let in_flash = |name: &str| {
        pins.recipe
            .spec
            .flash
            .as_ref()
            .is_some_and(|f| f.regions.iter().any(|r| r.blob.as_deref() == Some(name)))
    };
    let blobs = custody::check_blobs(&pins.recipe, &shipped, &|name| {
        nothing_shipped || in_flash(name)
    })?;
    let mut report = Report::begin(&pins, &shipped, started);
    report.blobs = blobs;
    report.provenance.clone_from(&opts.provenance);
    let settled = (|| -> anyhow::Result<Result<Vec<ArtifactReport>, Settled>> {
        let toolchain = match check_toolchain(&pins, opts, &mut report, progress)? {
            Ok(toolchain) => toolchain,
            Err(settled) => return Ok(Err(settled)),
        };
        let judge = Judge::new(&pins.recipe, started);
        let mut wanted = match opts.rebuilds {
            Rebuilds::OnMismatch => 1,
            Rebuilds::Exactly(n) => n.max(1),
        };
        if let Err(settled) =
            rebuild_stage(&pins, &toolchain, &work, opts, 0, &mut report, progress)?
        {
            return Ok(Err(settled));
        }
        let mut judged = compare_stage(&judge, &report.rebuilds[0], &shipped, progress)?;
        if opts.rebuilds == Rebuilds::OnMismatch
            && judged.iter().any(|a| a.verdict == Verdict::Different)
        {
            progress.stage(Stage::Step(
                "the rebuild differs from the shipped set: rebuilding once more, varied",
            ));
            wanted = 2;
        }
        for index in 1..wanted {
            if let Err(settled) =
                rebuild_stage(&pins, &toolchain, &work, opts, index, &mut report, progress)?
            {
                if settled == Settled(Verdict::BuildFailed) {
                    // The first rebuild's comparisons stand; what failed is said, not hidden.
                    report.failed_rebuild = Some(index as usize);
                    break;
                }
                return Ok(Err(settled));
            }
        }
        agreement_stage(&judge, &mut judged, &report, progress)?;
        Ok(Ok(judged))
    })()?;
    Ok(match settled {
        Ok(judged) => verdict_stage(report, judged),
        Err(Settled(verdict)) => finish(report, &pins.recipe, &shipped, verdict),
    })
}

/// A verdict reached before every stage ran (nothing after it is built or compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled(pub Verdict);

/// Stage "pins": the recipe and its lock, read and parsed (an error when either is bad or the
/// lock is missing: the question cannot be asked).
pub(crate) fn load_pins(recipe_path: &Path) -> anyhow::Result<Pins> {
    let recipe = Recipe::load(recipe_path)?;
    let lock_path = recipe.lock_path();
    let (lock, lock_hashes) = Lock::load_hashed(&lock_path).map_err(|e| {
        let missing = matches!(&e, crate::toolchain::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
        let err = anyhow::Error::new(e);
        if missing {
            err.context(format!(
                "the recipe has no lock: run `reprove lock {}` first",
                recipe_path.display()
            ))
        } else {
            err
        }
    })?;
    Ok(Pins {
        recipe,
        lock,
        lock_record: FileRecord {
            path: lock_path,
            hashes: lock_hashes,
        },
    })
}

/// Stage "shipped set": every shipped file found and hashed (bundles unpacked into `scratch`).
pub(crate) fn collect_shipped(
    paths: &[PathBuf],
    scratch: &Path,
    progress: &dyn Progress,
) -> anyhow::Result<ShippedSet> {
    progress.stage(Stage::Hashing("reading the shipped set"));
    Ok(ShippedSet::collect(paths, scratch)?)
}

impl Report {
    /// The report before anything is checked: what the recipe, the lock and the shipped set
    /// say, judged `identical` until a stage finds otherwise.
    fn begin(pins: &Pins, shipped: &ShippedSet, started: OffsetDateTime) -> Report {
        let recipe = &pins.recipe;
        Report {
            verdict: Verdict::Identical,
            package: recipe.spec.package.clone(),
            recipe: FileRecord {
                path: recipe.path.clone(),
                hashes: recipe.hashes,
            },
            lock: pins.lock_record.clone(),
            traced_lock: pins.lock.traced,
            tools: pins.lock.tools.clone(),
            pins: pins.lock.pins.clone(),
            drift: Vec::new(),
            source: SourceRecord {
                path: recipe.resolve(&recipe.spec.source.path),
                expected: recipe.spec.source.digest,
                found: None,
                files: None,
            },
            command: recipe.spec.build.command.clone(),
            timeout_seconds: recipe.spec.build.timeout.as_secs(),
            isolation: IsolationRecord {
                backend: match recipe.spec.toolchain.isolation {
                    Isolation::None => "none",
                    Isolation::Sandbox => "bwrap",
                }
                .to_owned(),
                version: None,
                root: recipe.spec.toolchain.root.as_ref().map(|r| r.digest),
            },
            rebuilds: Vec::new(),
            failed_rebuild: None,
            artifacts: Vec::new(),
            shipped_files: shipped.files(),
            blobs: Vec::new(),
            coverage: crate::coverage::Coverage::default(),
            provenance: Vec::new(),
            started,
            finished: started,
        }
    }
}

/// Stage "pins hold": every pinned file of the toolchain (and the hermetic root) matches the
/// lock, or the verdict is `toolchain-drift` with each drifted pin in the report; then the
/// sandbox the rebuilds run in.
pub(crate) fn check_toolchain(
    pins: &Pins,
    opts: &Options,
    report: &mut Report,
    progress: &dyn Progress,
) -> anyhow::Result<Result<Toolchain, Settled>> {
    let (recipe, lock) = (&pins.recipe, &pins.lock);
    progress.stage(Stage::Hashing(&format!(
        "checking {} pins",
        lock.pins.len()
    )));
    report.drift = crate::build::check_pins(recipe, lock)?;
    if !report.drift.is_empty() {
        return Ok(Err(Settled(Verdict::ToolchainDrift)));
    }
    let sandbox = match crate::build::sandbox_for(recipe, lock) {
        Ok(sandbox) => sandbox,
        Err(e) => match e.downcast::<crate::sandbox::Error>() {
            Ok(crate::sandbox::Error::RootMismatch {
                path,
                expected,
                actual,
            }) => {
                report.drift.push(Drift::Changed {
                    path,
                    expected,
                    found: actual,
                });
                return Ok(Err(Settled(Verdict::ToolchainDrift)));
            }
            Ok(e) => return Err(e.into()),
            Err(e) => return Err(e),
        },
    };
    report.isolation.version = sandbox.version();
    let clock_from =
        crate::build::clock_available(recipe, lock).then(|| report.started.unix_timestamp());
    if clock_from.is_none() && recipe.spec.verify.demands(Vary::Clock) {
        let install = if Path::new(crate::build::LIBFAKETIME).is_file() {
            ""
        } else {
            "install it (`apt-get install libfaketime`), then "
        };
        anyhow::bail!(
            "the recipe's `[verify] vary` names `clock`, but the lock does not pin libfaketime \
             (`{}`), which the clock variation loads: {install}run `reprove lock {}` again, or \
             leave `clock` out",
            crate::build::LIBFAKETIME,
            opts.recipe.display()
        );
    }
    Ok(Ok(Toolchain {
        sandbox,
        clock_from,
    }))
}

/// Stages "escrow" and "rebuilds", for rebuild `index` (0 is the first, unvaried): the escrow
/// unpacked into a fresh tree and checked against its pin (`source-mismatch` when it does not
/// hold), then the build run; the rebuild is added to the report. A failed build settles
/// `build-failed` (the caller decides what that means after the first rebuild).
pub(crate) fn rebuild_stage(
    pins: &Pins,
    toolchain: &Toolchain,
    work: &WorkDir,
    opts: &Options,
    index: u32,
    report: &mut Report,
    progress: &dyn Progress,
) -> anyhow::Result<Result<(), Settled>> {
    let recipe = &pins.recipe;
    let variation = if index == 0 {
        Variation::none()
    } else {
        Variation::varied(&recipe.spec.verify, toolchain.clock_from)
    };
    let source = report.source.path.clone();
    let step = run_one(
        recipe,
        &source,
        work.path(),
        index,
        toolchain.sandbox.as_ref(),
        &variation,
        progress,
    )?;
    let mut run = match step {
        Ok((run, unpacked)) => {
            report.source.found = Some(unpacked.escrow);
            report.source.files = Some(unpacked.files);
            run
        }
        Err(found) => {
            report.source.found = Some(found);
            return Ok(Err(Settled(Verdict::SourceMismatch)));
        }
    };
    let failed = !run.outcome.is_success();
    if failed {
        run.failure = Some(failure_log_of(&run, opts));
    }
    report.rebuilds.push(run);
    Ok(if failed {
        Err(Settled(Verdict::BuildFailed))
    } else {
        Ok(())
    })
}

/// How artifacts are compared for this recipe: allowances, the ELF that locates differences,
/// the composite images' parts, the names reports give each side.
pub(crate) struct Judge<'r> {
    recipe: &'r Recipe,
    started: OffsetDateTime,
    names: crate::compare::Names,
}

impl<'r> Judge<'r> {
    pub(crate) fn new(recipe: &'r Recipe, started: OffsetDateTime) -> Judge<'r> {
        Judge {
            recipe,
            started,
            names: names::rebuild_names(),
        }
    }

    /// The comparison options for artifact `name` of `run` against `right`.
    ///
    /// A raw image is explained through the ELF the rebuild made it from: the artifact's own
    /// `elf`, or else (a bundle holding the image) the ELF of the artifact shipped inside it,
    /// which the engine applies to the member of that name when the sizes agree. Reports name
    /// the rebuilt side by its path in the build tree, not the work folder's.
    fn options(
        &self,
        name: &str,
        run: &Rebuild,
        right: String,
        with_allowances: bool,
    ) -> CompareOptions {
        let recipe = self.recipe;
        let artifacts = &recipe.spec.artifacts;
        let in_tree = |p: &Path| format!("rebuild 1: {}", p.display());
        let left = artifacts
            .iter()
            .find(|a| a.shipped_name() == name)
            .map_or_else(|| name.to_owned(), |a| in_tree(&a.path));
        let described = artifacts
            .iter()
            .find(|a| a.shipped_name() == name && a.elf.is_some())
            .or_else(|| artifacts.iter().find(|a| a.elf.is_some()));
        let layout = described.and_then(|a| {
            let elf = layout_file(run, a.elf.as_ref()?).ok()?;
            Some((elf, a.shipped_name()))
        });
        CompareOptions {
            source_date_epoch: Some(recipe.spec.source_date_epoch()),
            build_time: Some(self.started.unix_timestamp()),
            allowances: if with_allowances {
                recipe.spec.allowances_for(name)
            } else {
                Vec::new()
            },
            layout_name: layout.as_ref().map(|l| l.1.clone()),
            layout: layout.map(|l| l.0),
            shown_as: Some((
                left,
                right,
                described
                    .and_then(|a| a.elf.as_deref())
                    .map(in_tree)
                    .unwrap_or_default(),
            )),
            names: self.names.clone(),
            parts: Some(image_parts(recipe, run)),
            ..CompareOptions::default()
        }
    }
}

/// Stage "compare": the first rebuild against the shipped set, each artifact explained, with
/// the notes a reader needs (an `elf` not produced, declared parts that do not hold).
pub(crate) fn compare_stage(
    judge: &Judge<'_>,
    first: &Rebuild,
    shipped: &ShippedSet,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<ArtifactReport>> {
    progress.stage(Stage::Comparing("comparing with the shipped set"));
    let mut judged = judge_first(first, shipped, &|name: &str, right: String| {
        judge.options(name, first, right, true)
    })?;
    note_missing_layouts(&mut judged, judge.recipe, first);
    note_declared_parts(&mut judged, judge.recipe, first);
    Ok(judged)
}

/// Stage "compare", for the later rebuilds: a failed one makes every artifact `build-failed`
/// (keeping the first rebuild's findings); otherwise each is set against the first.
pub(crate) fn agreement_stage(
    judge: &Judge<'_>,
    judged: &mut [ArtifactReport],
    report: &Report,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    if report.failed_rebuild.is_some() {
        settle_failed(judged, &report.rebuilds);
        return Ok(());
    }
    // What moved between rebuilds is shown whole: no allowance applies there.
    if report.rebuilds.len() > 1 {
        progress.stage(Stage::Comparing("comparing the rebuilds with each other"));
    }
    let first = &report.rebuilds[0];
    judge_agreement(judged, &report.rebuilds, &|name: &str, right: String| {
        judge.options(name, first, right, false)
    })
}

/// Stage "verdict": the worst of the artifacts' verdicts, and the report closed.
pub(crate) fn verdict_stage(mut report: Report, judged: Vec<ArtifactReport>) -> Report {
    report.verdict = judged
        .iter()
        .map(|a| a.verdict)
        .fold(Verdict::Identical, Verdict::worst);
    report.artifacts = judged;
    settle_custody(&mut report);
    report.finished = OffsetDateTime::now_utc();
    report
}

/// The blobs weigh in the verdict (a mismatch fails it, a match adds nothing), and the
/// coverage of the shipped set is counted from what was found.
fn settle_custody(report: &mut Report) {
    report.verdict = report.verdict.worst(custody::blobs_verdict(&report.blobs));
    report.coverage =
        custody::shipped_coverage(&report.shipped_files, &report.artifacts, &report.blobs);
}

/// A failed rebuild's log for people: with a work folder the user named it stays there;
/// otherwise it is kept in the cache, named by its digest, since the temporary work folder
/// goes when the command ends.
fn failure_log_of(run: &Rebuild, opts: &Options) -> FailureLog {
    if opts.work_dir.is_some() {
        return failure_log(&run.log, None, opts.log_lines);
    }
    match logs_dir() {
        Some(dir) => failure_log(&run.log, Some(&dir), opts.log_lines),
        None => FailureLog {
            kept: Err(
                "the log could not be kept: no cache folder (set `REPROVE_CACHE_DIR`, \
                 `XDG_CACHE_HOME` or `HOME`, or pass `--work-dir`)"
                    .to_owned(),
            ),
            ..failure_log(&run.log, None, opts.log_lines)
        },
    }
}

/// A work folder the user names must be new or empty: a rebuild starts from nothing.
fn prepare_work_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?;
    if entries.next().is_some() {
        anyhow::bail!(
            "the work folder `{}` is not empty: a rebuild starts from nothing; name a new \
             folder, or remove this one first",
            dir.display()
        );
    }
    Ok(())
}

/// Unpack the escrow into a fresh tree and run one rebuild. `Ok(Err(found))` when the escrow
/// does not match its pin.
fn run_one(
    recipe: &Recipe,
    source: &Path,
    scratch: &Path,
    index: u32,
    sandbox: &dyn Sandbox,
    variation: &Variation,
    progress: &dyn Progress,
) -> anyhow::Result<Result<(Rebuild, escrow::Unpacked), Escrow>> {
    let base = scratch.join(format!("rebuild-{}", index + 1));
    let tree = if variation.nested_build_dir {
        base.join("a/much/deeper/build/folder")
    } else {
        base.join("tree")
    };
    let parent = tree.parent().unwrap_or(&base);
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create `{}`", parent.display()))?;
    progress.stage(Stage::Unpacking(&format!(
        "unpacking the escrow for rebuild {}",
        index + 1
    )));
    let unpacked = match escrow::unpack(source, &recipe.spec.source.digest, &tree) {
        Ok(u) => u,
        Err(escrow::Error::SourceMismatch { .. }) => {
            return Ok(Err(escrow::digest(source)?));
        }
        Err(e) => return Err(e.into()),
    };
    let log = base.join("build.log");
    progress.stage(Stage::Building {
        what: &format!(
            "rebuild {}: {}",
            index + 1,
            recipe.spec.build.command.join(" ")
        ),
        log: &log,
    });
    let run = rebuild(recipe, &tree, &log, sandbox, variation)?;
    Ok(Ok((run, unpacked)))
}

/// Settle a verification that stopped before comparing: every artifact gets `verdict`.
fn finish(mut report: Report, recipe: &Recipe, shipped: &ShippedSet, verdict: Verdict) -> Report {
    report.artifacts = recipe
        .spec
        .artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let name = a.shipped_name();
            ArtifactReport {
                shipped: shipped.get(&name).cloned(),
                name,
                path: a.path.clone(),
                verdict,
                rebuilt: report
                    .rebuilds
                    .iter()
                    .map(|r| r.artifacts[i].hashes)
                    .collect(),
                difference: None,
                nondeterminism: None,
                absent: report
                    .rebuilds
                    .first()
                    .and_then(|r| r.artifacts[i].absent.clone()),
                similar: report
                    .rebuilds
                    .first()
                    .map(|r| r.artifacts[i].similar.clone())
                    .unwrap_or_default(),
                notes: Vec::new(),
                first_rebuild: None,
            }
        })
        .collect();
    report.verdict = verdict;
    settle_custody(&mut report);
    report.finished = OffsetDateTime::now_utc();
    report
}

/// Each artifact of the first rebuild against its shipped file: identical, equivalent (every
/// difference inside the recipe's allowances), different, or missing on either side.
fn judge_first(
    run: &Rebuild,
    shipped: &ShippedSet,
    compare_opts: &dyn Fn(&str, String) -> CompareOptions,
) -> anyhow::Result<Vec<ArtifactReport>> {
    run.artifacts
        .iter()
        .map(|a| {
            let shipped_file = shipped.get(&a.name).cloned();
            let mut report = ArtifactReport {
                name: a.name.clone(),
                path: a.path.clone(),
                verdict: Verdict::Missing,
                rebuilt: vec![a.hashes],
                shipped: shipped_file.clone(),
                difference: None,
                nondeterminism: None,
                absent: a.absent.clone(),
                similar: a.similar.clone(),
                notes: Vec::new(),
                first_rebuild: None,
            };
            let (Some(hashes), Some(shipped_file)) = (a.hashes, shipped_file) else {
                return Ok(report);
            };
            if hashes == shipped_file.hashes {
                report.verdict = Verdict::Identical;
                return Ok(report);
            }
            let opts = compare_opts(&a.name, shipped_file.origin.clone());
            let comparison = explain(&a.file, &shipped_file.file, &opts)?;
            report.verdict = match comparison.verdict {
                CompareVerdict::Identical => Verdict::Identical,
                CompareVerdict::Equivalent => Verdict::Equivalent,
                CompareVerdict::Different => Verdict::Different,
            };
            report.difference = Some(comparison);
            Ok(report)
        })
        .collect()
}

/// A later rebuild failed: the build does not stand up to what must not matter (or to being
/// run twice), so every artifact is `build-failed`, whatever the first rebuild found; that
/// finding is kept beside it (`first_rebuild`, and the comparison with the shipped file).
/// Nothing is compared with the failed rebuild's outputs.
fn settle_failed(artifacts: &mut [ArtifactReport], rebuilds: &[Rebuild]) {
    for (i, report) in artifacts.iter_mut().enumerate() {
        report.rebuilt = rebuilds.iter().map(|r| r.artifacts[i].hashes).collect();
        report.first_rebuild = Some(report.verdict);
        report.verdict = report.verdict.worst(Verdict::BuildFailed);
    }
}

/// Set the later rebuilds against the first. Where they disagree the build is not
/// reproducible: the artifact becomes `nondeterministic` (the shipped binary cannot be judged
/// by a build that does not hold still), whatever the first rebuild found — even when one
/// rebuild matched the shipped bytes, `identical` claims every rebuild did.
fn judge_agreement(
    artifacts: &mut [ArtifactReport],
    rebuilds: &[Rebuild],
    compare_opts: &dyn Fn(&str, String) -> CompareOptions,
) -> anyhow::Result<()> {
    for (i, report) in artifacts.iter_mut().enumerate() {
        report.rebuilt = rebuilds.iter().map(|r| r.artifacts[i].hashes).collect();
        let first = report.rebuilt[0];
        let Some(k) = report.rebuilt.iter().position(|h| *h != first) else {
            continue;
        };
        let (a, b) = (&rebuilds[0].artifacts[i], &rebuilds[k].artifacts[i]);
        if a.hashes.is_some() && b.hashes.is_some() {
            let opts = compare_opts(
                &report.name,
                format!("rebuild {}: {}", k + 1, a.path.display()),
            );
            report.nondeterminism = Some(explain(&a.file, &b.file, &opts)?);
        }
        report.verdict = report.verdict.worst(Verdict::Nondeterministic);
    }
    Ok(())
}

/// The `elf` file `rel` of a rebuild, opened beneath its build tree (never through a link
/// that leaves it): the path a comparison reads it by, or why there is none.
fn layout_file(run: &Rebuild, rel: &Path) -> Result<PathBuf, crate::beneath::Error> {
    let tree = crate::beneath::Tree::open(&run.tree, "build tree")?;
    let opened = tree.open_file(rel, crate::beneath::Links::Inside)?;
    Ok(opened
        .resolved
        .map_or_else(|| run.tree.join(rel), |r| run.tree.join(r)))
}

/// A note on each artifact whose `elf` the first rebuild did not produce: its differences
/// cannot be located by section, and the recipe should say so rather than the report be silent.
fn note_missing_layouts(judged: &mut [ArtifactReport], recipe: &Recipe, first: &Rebuild) {
    for (report, artifact) in judged.iter_mut().zip(&recipe.spec.artifacts) {
        let Some(elf) = &artifact.elf else { continue };
        let shown = elf.display();
        match layout_file(first, elf) {
            Ok(_) => {}
            Err(crate::beneath::Error::NotFound { .. }) => report.notes.push(format!(
                "`{shown}` named by `elf` was not produced by the rebuild: differences are not \
                 located by section"
            )),
            Err(why) => report.notes.push(format!(
                "`{shown}` named by `elf` cannot be read from the rebuild ({why}): differences \
                 are not located by section"
            )),
        }
    }
}

/// Where the parts of the recipe's composite images come from: the rebuild's tree, searched
/// by content (the artifacts themselves excluded), and each artifact's `[[artifact.part]]`,
/// opened beneath the tree.
fn image_parts(recipe: &Recipe, run: &Rebuild) -> ImageParts {
    let artifacts = &recipe.spec.artifacts;
    let images = artifacts
        .iter()
        .map(|a| Image {
            names: a
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .into_iter()
                .chain([a.shipped_name()])
                .collect(),
            declared: declared_parts(a, run),
        })
        .collect();
    ImageParts {
        tree: Some(run.tree.clone()),
        exclude: artifacts.iter().map(|a| a.path.clone()).collect(),
        images,
    }
}

/// The `[[artifact.part]]` entries of `artifact`, their files found beneath `run`'s tree.
fn declared_parts(artifact: &crate::recipe::Artifact, run: &Rebuild) -> Vec<DeclaredPart> {
    let open = |rel: &Path| {
        layout_file(run, rel).map_err(|e| match e {
            crate::beneath::Error::NotFound { .. } => "was not produced by the rebuild".to_owned(),
            e => format!("cannot be read from the rebuild: {e}"),
        })
    };
    artifact
        .parts
        .iter()
        .map(|p| DeclaredPart {
            name: p.path.display().to_string(),
            file: open(&p.path),
            offset: p.offset,
            elf: p.elf.as_ref().map(|e| (e.display().to_string(), open(e))),
        })
        .collect()
}

/// A note on each artifact that matched its shipped file (so was never mapped into parts) but
/// whose declared parts do not hold: a declaration is checked whatever the verdict.
fn note_declared_parts(judged: &mut [ArtifactReport], recipe: &Recipe, first: &Rebuild) {
    for ((report, artifact), rebuilt) in judged
        .iter_mut()
        .zip(&recipe.spec.artifacts)
        .zip(&first.artifacts)
    {
        if artifact.parts.is_empty() || report.difference.is_some() || rebuilt.hashes.is_none() {
            continue;
        }
        match check_declared(&rebuilt.file, &declared_parts(artifact, first)) {
            // The image is byte for byte the shipped one: what is wrong is the recipe's map.
            // (Nothing shipped, as in `rebuild`: the declaration is checked all the same.)
            Ok(errors) if report.shipped.is_some() => {
                report.notes.extend(errors.into_iter().map(|e| {
                    format!(
                        "{e} (the image itself is identical to the shipped file: correct the \
                         recipe's `[[artifact.part]]`)"
                    )
                }));
            }
            Ok(errors) => report.notes.extend(errors),
            Err(e) => report.notes.push(format!(
                "error: the declared parts could not be checked: {e}"
            )),
        }
    }
}

fn explain(left: &Path, right: &Path, opts: &CompareOptions) -> anyhow::Result<Comparison> {
    diff_paths(left, right, opts).with_context(|| {
        format!(
            "failed to compare `{}` with `{}`",
            left.display(),
            right.display()
        )
    })
}
