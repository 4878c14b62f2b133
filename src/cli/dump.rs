//! Dump checks on the command line: `reprove diff RELEASE DUMP`, `verify --dump`, `attest
//! verify --dump`. Each gathers the release files and the layout, calls
//! [`crate::dump::check_dump`], and hands the report to [`crate::output::dump`].

use std::path::Path;

use anyhow::Context as _;

use crate::dump::{check_dump, DumpReport, Options, Release};
use crate::exit::ExitStatus;
use crate::output::dump::{render_html, render_text, DumpJson};
use crate::output::Output;
use crate::progress::{Progress as _, Stage};
use crate::recipe::flash::LayoutFile;

/// Release files in a folder, at most this many (they are all indexed at once).
const MAX_RELEASE_FILES: usize = 1024;

/// The release files of `path`: the file itself, or the regular files directly in the folder,
/// by name.
fn release_files(path: &Path) -> anyhow::Result<Vec<Release>> {
    let meta = crate::beneath::stat_file_or_dir(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    if !meta.is_dir() {
        let name = path
            .file_name()
            .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
            .into_owned();
        return Ok(vec![Release {
            name,
            path: path.to_path_buf(),
            vouched: crate::verify::Verdict::Identical,
        }]);
    }
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("failed to read `{}`", path.display()))?
    {
        let entry = entry.with_context(|| format!("failed to read `{}`", path.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("failed to read `{}`", entry.path().display()))?;
        if !kind.is_file() {
            continue;
        }
        out.push(Release {
            name: entry.file_name().to_string_lossy().into_owned(),
            path: entry.path(),
            vouched: crate::verify::Verdict::Identical,
        });
        if out.len() > MAX_RELEASE_FILES {
            anyhow::bail!(
                "the release folder `{}` holds more than {MAX_RELEASE_FILES} files",
                path.display()
            );
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        anyhow::bail!("the release folder `{}` holds no file", path.display());
    }
    Ok(out)
}

/// Loads a layout file (`--flash-layout`).
pub(crate) fn load_layout(path: &Path) -> anyhow::Result<LayoutFile> {
    Ok(LayoutFile::load(path)?)
}

/// Checks `dump` against `releases` with `opts`, with progress on stderr. Without a declared
/// layout, the dump's own (its FMAP, flash descriptor, UEFI volumes, device trees:
/// [`crate::dump::own`]) is used, which names and places bytes but never masks them; with
/// one, the declared layout wins and where the dump's own disagrees is noted.
pub(crate) fn check(
    dump: &Path,
    releases: &[Release],
    opts: &Options,
    out: &Output,
) -> anyhow::Result<DumpReport> {
    let progress = out.reporter();
    progress.stage(Stage::Comparing(&format!(
        "looking for the release in `{}`",
        dump.display()
    )));
    let mut own = own_layout(dump, opts)?;
    let mut notes = Vec::new();
    let selected;
    let opts = if let Some(declared) = &opts.layout {
        notes = crate::dump::own::disagreements(declared, &own);
        opts
    } else {
        let mut with_own = opts.clone();
        with_own.layout = own.flash();
        with_own.layout_source = own.source();
        if with_own.layout.is_some() {
            for t in &mut own.tables {
                t.used = true;
            }
            notes.append(&mut own.notes);
        }
        selected = with_own;
        &selected
    };
    let mut report = check_dump(dump, &dump.to_string_lossy(), releases, opts)
        .with_context(|| format!("failed to check the dump `{}`", dump.display()))?;
    if own.tables.iter().any(|t| t.used) {
        notes.extend(crate::dump::own::placed_in(&report, &own));
    }
    report.notes.extend(notes);
    report.dump_tables = own.tables;
    progress.finish();
    crate::interrupt::check()?;
    Ok(report)
}

/// The layout `dump` describes itself, read as [`crate::dump::check_dump`] will read the
/// dump (beneath, a regular file).
fn own_layout(dump: &Path, opts: &Options) -> anyhow::Result<crate::dump::own::OwnLayout> {
    let context = || format!("failed to read the dump `{}`", dump.display());
    let file = crate::beneath::open_regular(dump).with_context(context)?;
    let size = file.metadata().with_context(context)?.len();
    let pinned: Vec<String> = opts.blobs.iter().map(|b| b.name.clone()).collect();
    crate::dump::own::read_layout(&file, size, &pinned).with_context(context)
}

/// Writes the HTML page of `report` to `path`, whole or not at all.
pub(crate) fn write_html(report: &DumpReport, path: &Path) -> anyhow::Result<()> {
    crate::atomic::write_atomic(
        path,
        render_html(report).as_bytes(),
        crate::atomic::REPORT_MODE,
        true,
    )
    .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Whether a differing copy's difference stays `unknown` (no ELF or map explained it).
fn unknown_cause(report: &DumpReport) -> bool {
    report.placements.iter().any(|p| {
        p.comparison.as_ref().is_some_and(|c| {
            c.leaves
                .iter()
                .any(|l| l.causes.contains(&crate::compare::Cause::Unknown))
        })
    })
}

/// The exit status a dump check ends with.
pub(crate) fn exit_status(report: &DumpReport, strict: bool) -> ExitStatus {
    report.verdict.exit_status(strict)
}

/// `reprove diff RELEASE DUMP`, when B is a dump.
pub(crate) fn diff(
    release: &Path,
    dump: &Path,
    layout: Option<&Path>,
    html: Option<&Path>,
    strict: bool,
    compare: &crate::compare::Options,
    out: &Output,
) -> anyhow::Result<ExitStatus> {
    let releases = release_files(release)?;
    let layout_source = layout.map(|p| format!("`{}`", p.display()));
    let file = layout.map(load_layout).transpose()?;
    let (layout, blobs) = match file {
        Some(f) => (Some(f.flash), f.blobs),
        None => (None, Vec::new()),
    };
    let opts = Options {
        layout,
        layout_source,
        blobs,
        compare: compare.clone(),
        digest: false,
    };
    let report = check(dump, &releases, &opts, out)?;
    if let Some(path) = html {
        write_html(&report, path)?;
    }
    if out.is_json() {
        out.json(&DumpJson::new(&report))?;
    } else {
        let mut text = render_text(&report, out);
        if compare.layout.is_none() && unknown_cause(&report) {
            text.push_str(
                "hint: pass --layout ELF to name the sections and functions a difference falls in\n",
            );
        }
        out.result(&text)?;
    }
    Ok(exit_status(&report, strict))
}

/// `verify --dump` with nothing but archives in `--shipped`: refused before anything is built.
/// A bundle's members are unpacked into the verification's work folder and gone when the dump
/// is checked, and a bundle itself is never flashed.
pub(crate) fn refuse_only_bundles(shipped: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let archive = |p: &std::path::PathBuf| {
        p.file_name()
            .is_some_and(|n| crate::dump::is_archive(&n.to_string_lossy()))
    };
    match shipped.first() {
        Some(bundle) if shipped.iter().all(archive) => anyhow::bail!(
            "`--dump` needs the flashed image as a file, and `--shipped` gives only archives: extract the flashed image from `{b}` (for example `tar -xzf {b} firmware.img`) and pass it with `--shipped`, beside the bundle (`--shipped firmware.img --shipped {b}`)",
            b = bundle.display()
        ),
        _ => Ok(()),
    }
}

/// `verify --dump`: the dump checked against the release as rebuilt. An artifact's shipped
/// file stands for its rebuilt bytes, vouched for by the artifact's verdict (a shipped file
/// that differs from the rebuild vouches for nothing). The layout is `--flash-layout`'s, else
/// the recipe's `[flash]`; the pins are the recipe's `[[blob]]` and the layout file's.
pub(crate) fn after_verify(
    dump: &Path,
    layout: Option<&Path>,
    report: &crate::verify::Report,
    recipe: &crate::recipe::Recipe,
    out: &Output,
) -> anyhow::Result<DumpReport> {
    let mut releases = Vec::new();
    for a in &report.artifacts {
        let Some(shipped) = &a.shipped else { continue };
        if crate::beneath::stat_file_or_dir(&shipped.file).is_err() {
            // A member of a bundle lived in the verification's work folder, gone by now.
            anyhow::bail!(
                "the shipped `{}` is no longer on disk to look for in the dump: extract it from its bundle and pass it with `--shipped`",
                shipped.origin
            );
        }
        releases.push(Release {
            name: a.name.clone(),
            path: shipped.file.clone(),
            vouched: a.verdict,
        });
    }
    let mut blobs = recipe.spec.blobs.clone();
    let (flash, layout_source) = match layout {
        Some(path) => {
            let file = load_layout(path)?;
            blobs.extend(file.blobs);
            (Some(file.flash), Some(format!("`{}`", path.display())))
        }
        None => (
            recipe.spec.flash.clone(),
            recipe
                .spec
                .flash
                .as_ref()
                .map(|_| format!("the recipe `{}`", recipe.path.display())),
        ),
    };
    let opts = Options {
        layout: flash,
        layout_source,
        blobs,
        compare: crate::compare::Options {
            source_date_epoch: recipe
                .spec
                .build
                .env
                .get("SOURCE_DATE_EPOCH")
                .and_then(|v| v.parse().ok()),
            // The recipe's `[[allow]]` judge a copy that differs, as they judge the shipped file.
            allowances: recipe.spec.allowances.clone(),
            ..crate::compare::Options::default()
        },
        digest: true,
    };
    check(dump, &releases, &opts, out)
}

/// The dump's text, after the verification's (human output only).
pub(crate) fn print(report: &DumpReport, out: &Output) -> anyhow::Result<()> {
    if !out.is_json() {
        out.result(&format!("\n{}", render_text(report, out)))?;
    }
    Ok(())
}
