//! Many releases in one run: `reprove verify A/reprove.toml B/reprove.toml --shipped …` or
//! `reprove verify --manifest FILE`, with `--jobs N`.
//!
//! A **manifest** lists releases, each a recipe, its shipped set and optionally the name of its
//! attestation; paths in it are relative to the manifest's folder. Two forms, told apart by the
//! file's name: JSON Lines (`.jsonl`, `.ndjson`: one object a line, blank lines and lines
//! starting with `#` skipped) and TOML (anything else: `[[release]]` tables). Parsing is strict:
//! an unknown key, a wrong type or a missing `recipe` or `shipped` is an error naming the file
//! and the line; a manifest larger than [`MANIFEST_MAX`] or naming no release is refused.
//!
//! Invariants:
//!
//! - **Planned before anything runs.** [`plan`] settles each release's attestation file
//!   (its `out`, or `NAME-VERSION.intoto.jsonl`, in the output folder) and refuses a batch in
//!   which two releases would write the same file, before any release is built. An `out` is a
//!   path beneath the output folder (relative, no `..`: refused with its line otherwise), and
//!   is compared in one spelling (`./a` is `a`); a package name or version with `/` names one
//!   file in the folder, never a path (see [`default_attestation_name`]).
//! - **One release never stops another.** Each release is one [`verify_attested`] call, on one
//!   of `jobs` worker threads; a bad recipe, a failed build or a mismatch is that release's
//!   [`Outcome`] only. Only an interrupt stops the batch: no release starts once a signal has
//!   arrived, and those running unwind as a single `verify` does ([`crate::interrupt`]).
//! - **Outcomes in completion order**, each handed to the caller as it ends (to stream JSON
//!   Lines), then all of them in the manifest's order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::attested::{default_attestation_name, verify_attested, Attested, Request};
use crate::attest::key::SigningKey;
use crate::exit::ExitStatus;
use crate::progress::{Jobs, Progress};

/// The largest manifest read.
pub(crate) const MANIFEST_MAX: u64 = 16 << 20;

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read the manifest `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the manifest `{}` is larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("invalid manifest `{}`: not UTF-8 (byte {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("invalid manifest `{}`, line {line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid manifest `{}`: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("invalid manifest `{}`, line {line}: `shipped` is empty: name the shipped binaries", path.display())]
    NoShipped { path: PathBuf, line: usize },
    #[error(
        "invalid manifest `{}`, line {line}: `out` must name a file inside the output folder          (relative, without `..`): `{}`",
        path.display(),
        out.display()
    )]
    OutLeaves {
        path: PathBuf,
        line: usize,
        out: PathBuf,
    },
    #[error("the manifest `{}` names no release: add a `[[release]]` (TOML) or a line (JSON Lines)", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{first} and {second} would both write the attestation `{}`: give one of them its own `out`",
        out.display()
    )]
    SameOut {
        out: PathBuf,
        first: String,
        second: String,
    },
}

/// One release to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Release {
    pub(crate) recipe: PathBuf,
    pub(crate) shipped: Vec<PathBuf>,
    /// The attestation's file, relative to the output folder.
    pub(crate) out: Option<PathBuf>,
    /// Where the release was named, for messages: `` `m.toml`, line 3 `` or `recipe 2`.
    pub(crate) origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseSpec {
    recipe: PathBuf,
    shipped: Vec<PathBuf>,
    #[serde(default)]
    out: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlManifest {
    #[serde(default)]
    release: Vec<toml::Spanned<ReleaseSpec>>,
}

/// Read the manifest at `path` (bounded) and parse it.
pub(crate) fn load_manifest(path: &Path) -> Result<Vec<Release>, Error> {
    use std::io::Read as _;
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MANIFEST_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MANIFEST_MAX {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MANIFEST_MAX,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    parse_manifest(path, &text)
}

/// Parse a manifest's `text` (JSON Lines or TOML, by `path`'s extension); paths in it become
/// relative to `path`'s folder.
pub(crate) fn parse_manifest(path: &Path, text: &str) -> Result<Vec<Release>, Error> {
    let json_lines = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let specs = if json_lines {
        parse_json_lines(path, text)?
    } else {
        parse_toml(path, text)?
    };
    if specs.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let resolve = |p: &Path| {
        if dir.as_os_str().is_empty() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    specs
        .into_iter()
        .map(|(line, spec)| {
            if spec.shipped.is_empty() {
                return Err(Error::NoShipped {
                    path: path.to_path_buf(),
                    line,
                });
            }
            let out = match spec.out {
                Some(out) => Some(inside(&out).ok_or_else(|| Error::OutLeaves {
                    path: path.to_path_buf(),
                    line,
                    out: out.clone(),
                })?),
                None => None,
            };
            Ok(Release {
                recipe: resolve(&spec.recipe),
                shipped: spec.shipped.iter().map(|p| resolve(p)).collect(),
                out,
                origin: format!("`{}`, line {line}", path.display()),
            })
        })
        .collect()
}

/// `out` spelled one way (`./a//b` → `a/b`), when it names a file beneath the output folder:
/// relative, no `..`, and something left once `.` is dropped.
fn inside(out: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut plain = PathBuf::new();
    for part in out.components() {
        match part {
            Component::Normal(name) => plain.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!plain.as_os_str().is_empty()).then_some(plain)
}

fn parse_json_lines(path: &Path, text: &str) -> Result<Vec<(usize, ReleaseSpec)>, Error> {
    let mut specs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let spec = serde_json::from_str(trimmed).map_err(|e| Error::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        specs.push((i + 1, spec));
    }
    Ok(specs)
}

fn parse_toml(path: &Path, text: &str) -> Result<Vec<(usize, ReleaseSpec)>, Error> {
    let manifest: TomlManifest = toml::from_str(text).map_err(|e| {
        // A file with no `[[release]]` table is no TOML manifest with a typo: the TOML
        // parser's complaint (`expected `.`, `=``) would not help whoever wrote it.
        let is_toml_manifest = text
            .lines()
            .any(|l| l.trim_start().starts_with("[[release]]"));
        let message = if is_toml_manifest {
            e.message().trim_end().to_owned()
        } else {
            format!(
                "a manifest is TOML (`[[release]]`) or JSON Lines (`.jsonl`, `.ndjson`); line {} \
                 is neither",
                e.span()
                    .map_or(1, |span| crate::recipe::line_column(text, span.start).0)
            )
        };
        match e.span() {
            Some(span) => Error::Syntax {
                path: path.to_path_buf(),
                line: crate::recipe::line_column(text, span.start).0,
                message,
            },
            None => Error::Toml {
                path: path.to_path_buf(),
                message,
            },
        }
    })?;
    Ok(manifest
        .release
        .into_iter()
        .map(|r| {
            let line = crate::recipe::line_column(text, r.span().start).0;
            (line, r.into_inner())
        })
        .collect())
}

/// Releases named on the command line: each recipe with the same shipped set (each release
/// picks its artifacts from it by name).
pub(crate) fn releases_from_args(recipes: &[PathBuf], shipped: &[PathBuf]) -> Vec<Release> {
    recipes
        .iter()
        .enumerate()
        .map(|(i, recipe)| Release {
            recipe: recipe.clone(),
            shipped: shipped.to_vec(),
            out: None,
            origin: format!("recipe {} (`{}`)", i + 1, recipe.display()),
        })
        .collect()
}

/// A release with its attestation's file settled.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) release: Release,
    /// Where its attestation goes; `None` when its recipe cannot be read (the release will
    /// fail with the recipe's own error, and writes nothing).
    pub(crate) attestation: Option<PathBuf>,
}

/// Settle each release's attestation in `out_dir`, refusing two releases that would write
/// the same file.
pub(crate) fn plan(releases: Vec<Release>, out_dir: &Path) -> Result<Vec<Planned>, Error> {
    let mut planned: Vec<Planned> = Vec::with_capacity(releases.len());
    for release in releases {
        let name = match &release.out {
            // One spelling of each file, so that two spellings of one are caught below.
            Some(out) => inside(out),
            None => crate::recipe::Recipe::load(&release.recipe)
                .ok()
                .map(|r| PathBuf::from(default_attestation_name(&r.spec.package))),
        };
        let attestation = name.map(|n| out_dir.join(n));
        if let Some(path) = &attestation {
            if let Some(other) = planned
                .iter()
                .find(|p| p.attestation.as_ref() == Some(path))
            {
                return Err(Error::SameOut {
                    out: path.clone(),
                    first: other.release.origin.clone(),
                    second: release.origin,
                });
            }
        }
        planned.push(Planned {
            release,
            attestation,
        });
    }
    Ok(planned)
}

/// What every release of a batch shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Who attests every release, and how.
    pub(crate) attesting: crate::attest::predicate::Attesting,
    /// The folder attestations go to.
    pub(crate) out_dir: PathBuf,
    pub(crate) rebuilds: Option<u32>,
    pub(crate) log_lines: usize,
    pub(crate) strict: bool,
}

/// How one release of a batch ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Its place in the batch (0-based).
    pub(crate) index: usize,
    pub(crate) release: Release,
    pub(crate) result: anyhow::Result<Attested>,
    pub(crate) elapsed: Duration,
    pub(crate) status: ExitStatus,
}

/// Verify every release of `planned`, `jobs` at a time, each attested with `key`; `done` is
/// called as each release ends (from its worker thread). The outcomes come back in the
/// batch's order; an interrupt is the only error.
pub(crate) fn verify_batch(
    planned: &[Planned],
    settings: &Settings,
    key: Option<&SigningKey>,
    jobs: usize,
    progress: &dyn Jobs,
    done: &(dyn Fn(&Outcome) + Sync),
) -> Result<Vec<Outcome>, crate::interrupt::Interrupted> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::with_capacity(planned.len()));
    let worker = || loop {
        if crate::interrupt::received().is_some() {
            return;
        }
        let index = next.fetch_add(1, Ordering::SeqCst);
        let Some(p) = planned.get(index) else { return };
        let job = progress.job(&p.release.origin);
        let outcome = verify_one(index, p, settings, key, job.as_ref());
        drop(job);
        // A release the signal stopped is not an outcome: the batch ends as interrupted.
        if crate::interrupt::received().is_some() {
            return;
        }
        done(&outcome);
        outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(outcome);
    };
    std::thread::scope(|scope| {
        for _ in 1..jobs.clamp(1, planned.len().max(1)) {
            scope.spawn(worker);
        }
        worker();
    });
    if let Some(signal) = crate::interrupt::received() {
        return Err(signal);
    }
    let mut outcomes = outcomes
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    outcomes.sort_by_key(|o| o.index);
    Ok(outcomes)
}

fn verify_one(
    index: usize,
    planned: &Planned,
    settings: &Settings,
    key: Option<&SigningKey>,
    progress: &dyn Progress,
) -> Outcome {
    let started = Instant::now();
    let release = &planned.release;
    let request = Request {
        attesting: settings.attesting.clone(),
        recipe: Some(release.recipe.clone()),
        shipped: release.shipped.clone(),
        out: planned.attestation.clone(),
        out_dir: Some(settings.out_dir.clone()),
        rebuilds: settings.rebuilds,
        log_lines: settings.log_lines,
        ..Request::default()
    };
    let result = verify_attested(&request, key, progress, &|_| Ok(None));
    let status = match &result {
        Ok(attested) => attested.exit_status(settings.strict),
        Err(_) => ExitStatus::Error,
    };
    Outcome {
        index,
        release: release.clone(),
        result,
        elapsed: started.elapsed(),
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_in_both_forms_relative_to_their_folder() {
        let toml = "[[release]]\nrecipe = \"a/reprove.toml\"\nshipped = [\"a/fw.img\"]\n\n\
                    [[release]]\nrecipe = \"b/reprove.toml\"\nshipped = [\"b/fw.img\", \"b/x\"]\nout = \"b.jsonl\"\n";
        let from_toml = parse_manifest(Path::new("m/batch.toml"), toml).unwrap();
        let jsonl = "# releases\n{\"recipe\": \"a/reprove.toml\", \"shipped\": [\"a/fw.img\"]}\n\n\
                     {\"recipe\": \"b/reprove.toml\", \"shipped\": [\"b/fw.img\", \"b/x\"], \"out\": \"b.jsonl\"}\n";
        let from_jsonl = parse_manifest(Path::new("m/batch.jsonl"), jsonl).unwrap();
        for releases in [&from_toml, &from_jsonl] {
            assert_eq!(releases.len(), 2);
            assert_eq!(releases[0].recipe, Path::new("m/a/reprove.toml"));
            assert_eq!(releases[1].shipped[1], Path::new("m/b/x"));
            assert_eq!(releases[1].out.as_deref(), Some(Path::new("b.jsonl")));
        }
        assert_eq!(from_toml[1].origin, "`m/batch.toml`, line 5");
        assert_eq!(from_jsonl[1].origin, "`m/batch.jsonl`, line 4");
    }

    #[test]
    fn bad_manifests_name_the_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "m.toml",
                "[[release]]\nrecipe = \"a\"\nshiped = []\n",
                "line 3",
            ),
            (
                "m.toml",
                "[[release]]\nrecipe = \"a\"\nshipped = []\n",
                "line 1: `shipped` is empty",
            ),
            ("m.toml", "[[release]]\nshipped = [\"x\"]\n", "line 1"),
            ("m.toml", "", "names no release"),
            ("m.toml", "[release]\nrecipe = 3\n", "line 1"),
            (
                "m.jsonl",
                "{\"recipe\": \"a\", \"shipped\": [\"x\"]}\n{\"recipe\": \"a\"}\n",
                "line 2",
            ),
            (
                "m.jsonl",
                "\n{\"recipe\": \"a\", \"shipped\": [\"x\"], \"extra\": 1}\n",
                "line 2",
            ),
            ("m.jsonl", "# nothing\n", "names no release"),
            // A plain list (examples/ci's `releases.txt`) is neither format, and says so.
            (
                "releases.txt",
                "# one recipe a line\n\n\n\nacme/reprove.toml fw.img\n",
                "a manifest is TOML (`[[release]]`) or JSON Lines (`.jsonl`, `.ndjson`); line 5 \
                 is neither",
            ),
        ];
        for (name, text, wanted) in cases {
            let err = parse_manifest(Path::new(name), text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{name} {text:?}: {err}");
            assert!(err.contains(&format!("`{name}`")), "{err}");
        }
    }

    /// `out` names a file inside the output folder: an absolute path or one that climbs out
    /// would write an attestation anywhere (over another batch's, or another release's file).
    #[test]
    fn an_out_that_leaves_the_output_folder_is_refused_with_its_line() {
        for out in [
            "../escaped.intoto.jsonl",
            "/tmp/abs.intoto.jsonl",
            "a/../../b",
            "",
            ".",
        ] {
            let toml = format!(
                "[[release]]\nrecipe = \"a/reprove.toml\"\nshipped = [\"a/fw.img\"]\n\n\
                 [[release]]\nrecipe = \"b/reprove.toml\"\nshipped = [\"b/fw.img\"]\nout = \"{out}\"\n"
            );
            let err = parse_manifest(Path::new("m.toml"), &toml)
                .map(|r| format!("{:?}", r[1].out))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("`m.toml`, line 5: `out` must name a file inside the output folder"),
                "{out}: {err}"
            );
        }
        let jsonl = "{\"recipe\": \"a\", \"shipped\": [\"x\"], \"out\": \"../x\"}\n";
        let err = parse_manifest(Path::new("m.jsonl"), jsonl)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1: `out` must name a file inside"),
            "{err}"
        );
    }

    /// A recipe's package names its attestation when nothing else does: a name or version
    /// with `/` must not climb out of the output folder, nor spell another release's file.
    #[test]
    fn a_package_name_with_a_slash_names_one_file_in_the_folder() {
        use std::path::Component;
        for (name, version) in [
            ("../../etc/x", "1"),
            ("fw", "../../1"),
            ("a/b", "c/d"),
            ("..", ".."),
        ] {
            let package = crate::recipe::Package {
                name: name.to_owned(),
                version: version.to_owned(),
            };
            let file = PathBuf::from(default_attestation_name(&package));
            let parts: Vec<Component> = file.components().collect();
            assert!(
                matches!(parts.as_slice(), [Component::Normal(_)]),
                "{name} {version}: {}",
                file.display()
            );
        }
        let release = |name: &str| crate::recipe::Package {
            name: name.to_owned(),
            version: "1.0".to_owned(),
        };
        // `sub/../fw` once wrote `fw`'s file, past the check that two releases write two files.
        assert_ne!(
            default_attestation_name(&release("sub/../fw")),
            default_attestation_name(&release("fw"))
        );
    }

    /// The same file, spelled two ways, is still one file.
    #[test]
    fn one_attestation_spelled_two_ways_is_refused() {
        let release = |out: &str, origin: &str| Release {
            recipe: PathBuf::from("missing/reprove.toml"),
            shipped: vec![PathBuf::from("x")],
            out: Some(PathBuf::from(out)),
            origin: origin.to_owned(),
        };
        for (a, b) in [
            ("a.jsonl", "./a.jsonl"),
            ("s/a.jsonl", "s/./a.jsonl"),
            ("s//a", "s/a"),
        ] {
            let err = plan(
                vec![release(a, "first"), release(b, "second")],
                Path::new("o"),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("first and second would both write"),
                "{a} {b}: {err}"
            );
        }
    }

    #[test]
    fn two_releases_writing_one_attestation_are_refused_before_anything_runs() {
        let release = |out: &str, origin: &str| Release {
            recipe: PathBuf::from("missing/reprove.toml"),
            shipped: vec![PathBuf::from("x")],
            out: Some(PathBuf::from(out)),
            origin: origin.to_owned(),
        };
        let err = plan(
            vec![
                release("a", "first"),
                release("b", "other"),
                release("a", "third"),
            ],
            Path::new("out"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("first and third would both write"), "{err}");
        let ok = plan(vec![release("a", "1"), release("b", "2")], Path::new("o")).unwrap();
        assert_eq!(ok[1].attestation.as_deref(), Some(Path::new("o/b")));
        // A recipe that cannot be read writes nothing: its error is its outcome.
        let mut unnamed = release("a", "1");
        unnamed.out = None;
        assert!(plan(vec![unnamed], Path::new("o")).unwrap()[0]
            .attestation
            .is_none());
    }
}
