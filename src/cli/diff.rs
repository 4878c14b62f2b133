//! `reprove diff A B`: compare two files, directories, archives or images and explain.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::compare::{
    diff_paths, Allowance, DeclaredPart, Image, ImageParts, Options, Rule, Verdict,
};
use crate::exit::ExitStatus;
use crate::output::diff::{render_html, DiffJson};
use crate::output::Output;
use crate::progress::{Progress as _, Stage};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The left side: a file or a directory (the rebuilt one: allowances read B against A)
    left: PathBuf,
    /// The right side, of the same kind (the shipped one)
    right: PathBuf,
    /// Also write a self-contained HTML report to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Fail (exit 1) when the inputs are only equivalent
    #[arg(long)]
    strict: bool,
    /// Allow B to be A followed by exactly N more bytes (a signature trailer)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    allow_trailer: Vec<u64>,
    /// Allow LEN bytes from OFFSET to differ, inside both files (decimal, or hex with 0x)
    #[arg(long, value_name = "OFFSET:LEN", value_parser = parse_region)]
    allow_region: Vec<(u64, u64)>,
    /// Allow an ELF section to differ, in two ELF files of one size and layout, e.g.
    /// `.note.gnu.build-id`
    #[arg(long, value_name = "NAME")]
    allow_elf_section: Vec<String>,
    /// The rebuild's `SOURCE_DATE_EPOCH`, to recognise timestamps near it
    #[arg(long, value_name = "SECONDS")]
    source_date_epoch: Option<i64>,
    /// The ELF file the raw image A was made from (`objcopy -O binary`): locate differing
    /// bytes of the image by its sections and functions
    #[arg(long, value_name = "ELF")]
    layout: Option<PathBuf>,
    /// The tree A was built in: parts of the image A (the raw image objcopy made from an ELF
    /// file, archives, other files) are found in it by content, and each explained with its
    /// own structure
    #[arg(long, value_name = "DIR")]
    parts_from: Option<PathBuf>,
    /// A part of the image A: the file PATH, at OFFSET (decimal, or hex with 0x; found by
    /// content without one), made from the ELF file ELF (`objcopy -O binary`). Paths are
    /// relative to `--parts-from` when it is given
    #[arg(long, value_name = "PATH[@OFFSET][:ELF]", value_parser = parse_part)]
    part: Vec<PartArg>,
    /// Read B as a flash dump holding the release A (a file, or a folder of release files):
    /// find A inside B by content instead of comparing offset by offset. Implied by
    /// `--flash-layout`, and when B is a file of at least 1 MiB that is at least twice as large
    /// as the file A (or A is a folder), unless `--allow-trailer` or `--allow-region` is given
    #[arg(long)]
    dump: bool,
    /// The flash layout of the dump B: a TOML file with a `[flash]` table of
    /// `[[flash.region]]` entries (see `docs/dump.md`)
    #[arg(long, value_name = "FILE")]
    flash_layout: Option<PathBuf>,
}

/// A `--part` as typed.
#[derive(Debug, Clone)]
struct PartArg {
    path: PathBuf,
    offset: Option<u64>,
    elf: Option<PathBuf>,
}

fn parse_part(s: &str) -> Result<PartArg, String> {
    let bad = || format!("expected PATH[@OFFSET][:ELF], got `{s}`");
    let (path, offset, elf) = match s.rsplit_once('@') {
        Some((path, rest)) => match rest.split_once(':') {
            Some((offset, elf)) => (path, Some(parse_number(offset)?), Some(elf)),
            None => (path, Some(parse_number(rest)?), None),
        },
        None => match s.split_once(':') {
            Some((path, elf)) => (path, None, Some(elf)),
            None => (s, None, None),
        },
    };
    if path.is_empty() || elf.is_some_and(str::is_empty) {
        return Err(bad());
    }
    Ok(PartArg {
        path: PathBuf::from(path),
        offset,
        elf: elf.map(PathBuf::from),
    })
}

fn parse_number(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("not a number: `{s}`"))
}

fn parse_region(s: &str) -> Result<(u64, u64), String> {
    let (offset, len) = s
        .split_once(':')
        .ok_or_else(|| format!("expected OFFSET:LEN, got `{s}`"))?;
    let (offset, len) = (parse_number(offset)?, parse_number(len)?);
    if len == 0
        || offset
            .checked_add(len)
            .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(format!("the region `{s}` is empty or too long"));
    }
    Ok((offset, len))
}

/// B is taken for a dump of A without `--dump` only from this size on (a flash chip's smallest).
const AUTO_DUMP_MIN: u64 = 1 << 20;

impl DiffArgs {
    /// Whether B is read as a dump holding A (see `--dump`).
    fn is_dump(&self) -> anyhow::Result<bool> {
        if self.dump || self.flash_layout.is_some() {
            return Ok(true);
        }
        let stat = |p: &Path| {
            crate::beneath::stat_file_or_dir(p)
                .with_context(|| format!("failed to read `{}`", p.display()))
        };
        // A trailer or a region allowed on the command line says B is A's image, not a dump.
        if !self.allow_trailer.is_empty() || !self.allow_region.is_empty() {
            return Ok(false);
        }
        let (left, right) = (stat(&self.left)?, stat(&self.right)?);
        Ok(right.is_file()
            && right.len() >= AUTO_DUMP_MIN
            && (left.is_dir() || (left.len() > 0 && right.len() / 2 >= left.len())))
    }

    fn options(&self) -> Options {
        let given = |rule: Rule, flag: String| Allowance {
            artifact: None,
            rule,
            reason: format!("given on the command line: {flag}"),
        };
        let mut allowances = Vec::new();
        for &n in &self.allow_trailer {
            allowances.push(given(Rule::Trailer(n), format!("--allow-trailer {n}")));
        }
        for &(offset, length) in &self.allow_region {
            let flag = format!("--allow-region {offset}:{length}");
            allowances.push(given(Rule::Region { offset, length }, flag));
        }
        for name in &self.allow_elf_section {
            let flag = format!("--allow-elf-section {name}");
            allowances.push(given(Rule::ElfSection(name.clone()), flag));
        }
        Options {
            source_date_epoch: self.source_date_epoch,
            allowances,
            layout: self.layout.clone(),
            parts: self.image_parts(),
            ..Options::default()
        }
    }

    /// The image map of A: its tree and the parts declared, or `None` when neither is given.
    fn image_parts(&self) -> Option<ImageParts> {
        if self.parts_from.is_none() && self.part.is_empty() {
            return None;
        }
        let at = |p: &Path| match &self.parts_from {
            Some(dir) => dir.join(p),
            None => p.to_path_buf(),
        };
        let declared = self
            .part
            .iter()
            .map(|p| DeclaredPart {
                name: p.path.display().to_string(),
                file: Ok(at(&p.path)),
                offset: p.offset,
                elf: p.elf.as_ref().map(|e| (e.display().to_string(), Ok(at(e)))),
            })
            .collect();
        let name = self
            .left
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exclude = self
            .parts_from
            .as_ref()
            .and_then(|dir| self.left.strip_prefix(dir).ok())
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        Some(ImageParts {
            tree: self.parts_from.clone(),
            exclude,
            images: vec![Image {
                names: vec![name],
                declared,
            }],
        })
    }
}

pub(crate) fn run(args: &DiffArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    if args.is_dump()? {
        return super::dump::diff(
            &args.left,
            &args.right,
            args.flash_layout.as_deref(),
            args.html.as_deref(),
            args.strict,
            &args.options(),
            out,
        );
    }
    if let Some(elf) = &args.layout {
        // Asked for by name: a missing file is a mistake, not something to note and pass over.
        crate::beneath::open_regular(elf)
            .with_context(|| format!("failed to read `{}`", elf.display()))?;
    }
    // Named by the user: a missing part, ELF or tree is a mistake, not a note.
    if let Some(dir) = &args.parts_from {
        crate::beneath::Tree::open_named(dir, "tree")
            .with_context(|| format!("failed to read `{}`", dir.display()))?;
    }
    for part in &args.part {
        let at = |p: &Path| match &args.parts_from {
            Some(dir) => dir.join(p),
            None => p.to_path_buf(),
        };
        for p in std::iter::once(&part.path).chain(&part.elf) {
            crate::beneath::open_regular(&at(p))
                .with_context(|| format!("failed to read `{}`", at(p).display()))?;
        }
    }
    let progress = out.reporter();
    progress.stage(Stage::Comparing(&format!(
        "comparing `{}` with `{}`",
        args.left.display(),
        args.right.display()
    )));
    let comparison = diff_paths(&args.left, &args.right, &args.options())?;
    progress.finish();
    // A comparison a signal cut short may have taken an interrupted read for a corrupt member:
    // print nothing of it.
    crate::interrupt::check()?;
    if let Some(path) = &args.html {
        crate::atomic::write_atomic(
            path,
            render_html(&comparison).as_bytes(),
            crate::atomic::REPORT_MODE,
            true,
        )
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    if out.is_json() {
        out.json(&DiffJson::new(&comparison))?;
    } else {
        out.result(&out.diff_text(&comparison))?;
    }
    Ok(match comparison.verdict {
        Verdict::Identical => ExitStatus::Success,
        Verdict::Equivalent if !args.strict => ExitStatus::Success,
        Verdict::Equivalent | Verdict::Different => ExitStatus::Failure,
    })
}
