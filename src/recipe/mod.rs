//! `reprove.toml`: what a person writes to say how an artifact is built.
//!
//! Parsing is strict: an unknown key, a wrong type or a missing field is an error that names
//! the file, the key and the line. After parsing, [`Recipe::load`] validates what TOML cannot
//! say (relative artifact paths and `[build] dir` that stay in the tree, a non-empty command,
//! variables that do not override the fixed environment, unique shipped names) and names the
//! key at fault.
//! Relative paths in a recipe are relative to the recipe's folder.

pub(crate) mod blob;
mod duration;
pub(crate) mod flash;
mod vary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::hash::{hash_bytes, Checksum, Hashes};
use crate::sandbox::Isolation;

pub(crate) use vary::{Vary, VerifySpec};

/// The variables every build gets, which a recipe may not set.
pub(crate) const FIXED_ENV: [&str; 5] = ["PATH", "HOME", "TZ", "LC_ALL", "LANG"];

/// A parsed and validated recipe.
#[derive(Debug, Clone)]
pub(crate) struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// Its folder: relative paths in the recipe start here.
    pub dir: PathBuf,
    /// Digests of the file's bytes, as the attestation records them.
    pub hashes: Hashes,
    pub spec: RecipeSpec,
}

/// The recipe as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecipeSpec {
    pub package: Package,
    pub source: Source,
    pub toolchain: Toolchain,
    pub build: Build,
    /// What `verify` varies in its second rebuild (`[verify]`).
    #[serde(default, skip_serializing_if = "is_default_verify")]
    pub verify: VerifySpec,
    #[serde(rename = "artifact")]
    pub artifacts: Vec<Artifact>,
    /// Declared, auditable harmless differences (`[[allow]]`).
    #[serde(rename = "allow", default, skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<crate::compare::Allowance>,
    /// Parts that are pinned by digest rather than rebuilt (`[[blob]]`).
    #[serde(rename = "blob", default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<blob::Blob>,
    /// The flash a dump of the device is read from (`[flash]`, `[[flash.region]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash: Option<flash::FlashLayout>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// The escrowed source: a directory or an archive, pinned by digest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub digest: Checksum,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Toolchain {
    /// Programs the build runs, resolved on the fixed `PATH` and pinned by `reprove lock`.
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default = "default_isolation")]
    pub isolation: Isolation,
    /// A hermetic root file system, mounted read-only as `/`.
    pub root: Option<Root>,
}

fn is_default_verify(v: &VerifySpec) -> bool {
    *v == VerifySpec::default()
}

fn default_isolation() -> Isolation {
    Isolation::Sandbox
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Root {
    pub path: PathBuf,
    pub digest: Checksum,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Build {
    /// argv: a shell only if the recipe writes one.
    pub command: Vec<String>,
    /// Where the command starts, relative to the unpacked escrow (the build tree's root, which
    /// artifact paths stay relative to): a directory beneath it, reached without a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables the build gets from the verifier's own environment, whose values are never
    /// written anywhere (a licence token): outputs record `[secret]` in their place.
    #[serde(default, rename = "secret-env", skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    #[serde(default = "default_timeout", with = "duration::serde_text")]
    pub timeout: Duration,
    /// Processes (and threads) the build may run at once.
    #[serde(
        default = "default_max_processes",
        rename = "max-processes",
        skip_serializing_if = "is_default_max_processes"
    )]
    pub max_processes: u32,
    /// Bytes the build tree may take on disk: an integer, or a size such as `"64G"`.
    #[serde(
        default = "default_max_disk",
        rename = "max-disk",
        with = "size_text",
        skip_serializing_if = "is_default_max_disk"
    )]
    pub max_disk: u64,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_max_processes() -> u32 {
    crate::sandbox::limits::DEFAULT_PROCESSES
}

fn default_max_disk() -> u64 {
    crate::sandbox::limits::DEFAULT_DISK
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_max_processes(n: &u32) -> bool {
    *n == default_max_processes()
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_max_disk(n: &u64) -> bool {
    *n == default_max_disk()
}

/// A size in a recipe: an integer number of bytes, or text such as `"64G"` or `"512MiB"`.
mod size_text {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Size::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size such as `64G` or a number of bytes")
        })? {
            Size::Bytes(0) => Err(serde::de::Error::custom("must be at least 1 byte")),
            Size::Bytes(n) => Ok(n),
            Size::Text(t) => {
                crate::sandbox::limits::parse_size(&t).map_err(serde::de::Error::custom)
            }
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*n)
    }
}

/// A file the build produces, and its name in the shipped set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Artifact {
    /// Relative to the build tree.
    pub path: PathBuf,
    /// Name in the shipped set (default: the file name of `path`).
    pub shipped: Option<String>,
    /// For a raw image (`objcopy -O binary`): the ELF file in the build tree it was made
    /// from, to explain differences by section and function (see `docs/diff.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elf: Option<PathBuf>,
    /// Parts of a composite image, declared (`[[artifact.part]]`); others are found by
    /// content in the build tree all the same (see `docs/diff.md`).
    #[serde(rename = "part", default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ArtifactPart>,
}

/// A part of a composite image, as a recipe declares it: a file of the build tree that the
/// image holds, where, and the ELF file it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactPart {
    /// Relative to the build tree.
    pub path: PathBuf,
    /// Where the part starts in the image; left out, it is found by content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The ELF file the part was made from (`objcopy -O binary`), relative to the build tree:
    /// differences in the part are then named by section, function and object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elf: Option<PathBuf>,
}

impl Artifact {
    /// The name this artifact goes by in the shipped set.
    pub(crate) fn shipped_name(&self) -> String {
        self.shipped.clone().unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }
}

/// Why a recipe could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read recipe `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid recipe `{}`, line {line}, column {column}: {message}: `{text}`", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        /// The line at fault, trimmed: it names the key.
        text: String,
    },
    #[error("invalid recipe `{}`: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("invalid recipe `{}`, key `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl Recipe {
    /// Read, parse and validate the recipe at `path`.
    pub(crate) fn load(path: &Path) -> Result<Recipe, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| Error::Toml {
            path: path.to_path_buf(),
            message: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let spec = RecipeSpec::parse(&text).map_err(|e| e.at(path, &text))?;
        spec.validate().map_err(|(key, message)| Error::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        })?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Recipe {
            path: path.to_path_buf(),
            dir,
            hashes: hash_bytes(&bytes),
            spec,
        })
    }

    /// A path from the recipe, made relative to the recipe's folder. Printed as the user
    /// wrote it: a recipe in the current folder adds no `./` (never `./../escrow`).
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if self.dir == Path::new(".") {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    /// The lock file that belongs to this recipe: `reprove.lock` beside it.
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.resolve(Path::new("reprove.lock"))
    }
}

/// A TOML error before it is tied to a file.
#[derive(Debug)]
pub(crate) struct ParseError(toml::de::Error);

impl ParseError {
    fn at(self, path: &Path, text: &str) -> Error {
        let fault = TomlFault::of(&self.0, text);
        let path = path.to_path_buf();
        match fault.place {
            Some((line, column, text)) => Error::Syntax {
                path,
                line,
                column,
                message: fault.message,
                text,
            },
            None => Error::Toml {
                path,
                message: fault.message,
            },
        }
    }
}

/// Where a TOML file went wrong, for an error that names the line (the recipe, a flash
/// layout, a trust policy): every strict TOML reader of the crate reports it the same way.
#[derive(Debug)]
pub(crate) struct TomlFault {
    /// The 1-based line and column, and the line at fault (trimmed: it names the key);
    /// `None` when the parser gave no position.
    pub(crate) place: Option<(usize, usize, String)>,
    pub(crate) message: String,
}

impl TomlFault {
    pub(crate) fn of(e: &toml::de::Error, text: &str) -> TomlFault {
        let place = e.span().map(|span| {
            let (line, column) = line_column(text, span.start);
            let at = text.lines().nth(line - 1).unwrap_or_default().trim();
            (line, column, at.to_owned())
        });
        TomlFault {
            place,
            message: e.message().trim_end().to_owned(),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

impl RecipeSpec {
    /// Parse recipe text (no validation beyond types and keys).
    pub(crate) fn parse(text: &str) -> Result<RecipeSpec, ParseError> {
        toml::from_str(text).map_err(ParseError)
    }

    /// A flash layout's `artifact` and `blob` name an artifact and a `[[blob]]` of this recipe.
    pub(crate) fn validate_flash_names(
        &self,
        flash: &flash::FlashLayout,
    ) -> Result<(), (String, String)> {
        for (i, r) in flash.regions.iter().enumerate() {
            if let Some(a) = &r.artifact {
                if !self.artifacts.iter().any(|x| x.shipped_name() == *a) {
                    return Err((
                        format!("flash.region[{i}].artifact"),
                        format!("no artifact is shipped as `{a}`"),
                    ));
                }
            }
            if let Some(b) = &r.blob {
                if !self.blobs.iter().any(|x| x.name == *b) {
                    return Err((
                        format!("flash.region[{i}].blob"),
                        format!("no `[[blob]]` is named `{b}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Check what TOML types cannot: `Err((key, message))` for the first problem.
    fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, message: &str| Err((key.to_owned(), message.to_owned()));
        if self.package.name.trim().is_empty() {
            return err("package.name", "must not be empty");
        }
        if self.build.command.is_empty() || self.build.command[0].is_empty() {
            return err(
                "build.command",
                "must name a program: `command = [\"make\"]`",
            );
        }
        if let Some(dir) = &self.build.dir {
            use std::os::unix::ffi::OsStrExt as _;
            if !is_tree_relative(dir) || dir.as_os_str().as_bytes().contains(&0) {
                return err(
                    "build.dir",
                    "must be a relative path inside the unpacked escrow (no `..`, not absolute)",
                );
            }
        }
        if self.build.max_processes == 0 {
            return err("build.max-processes", "must be at least 1");
        }
        if self.build.timeout.is_zero() {
            return err("build.timeout", "must be longer than zero");
        }
        for (name, value) in &self.build.env {
            let key = format!("build.env.{name}");
            if name.is_empty() || name.contains(['=', '\0']) {
                return err(&key, "is not a valid variable name");
            }
            if value.contains('\0') {
                return err(&key, "holds a NUL byte");
            }
            if FIXED_ENV.contains(&name.as_str()) {
                return err(
                    &key,
                    "is fixed by reprove for every build and cannot be set",
                );
            }
        }
        for (i, name) in self.build.secret_env.iter().enumerate() {
            let key = format!("build.secret-env[{i}]");
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return err(&key, "is not a variable name (letters, digits and `_`)");
            }
            if self.build.env.contains_key(name) {
                return err(
                    &key,
                    "is also set in `build.env`: a secret's value comes from the verifier's \
                     environment, never from the recipe",
                );
            }
            if FIXED_ENV.contains(&name.as_str()) || name == "SOURCE_DATE_EPOCH" {
                return err(
                    &key,
                    "is fixed by reprove for every build and cannot be secret",
                );
            }
            if self.build.secret_env[..i].contains(name) {
                return err(&key, "is listed twice");
            }
        }
        if let Some(epoch) = self.build.env.get("SOURCE_DATE_EPOCH") {
            if epoch
                .parse::<u64>()
                .ok()
                .and_then(|e| i64::try_from(e).ok())
                .is_none()
            {
                return err(
                    "build.env.SOURCE_DATE_EPOCH",
                    "must be a whole number of seconds",
                );
            }
        }
        for (i, tool) in self.toolchain.tools.iter().enumerate() {
            if tool.is_empty() || tool.contains('/') {
                return err(
                    &format!("toolchain.tools[{i}]"),
                    "must be a program name found on `PATH`, not a path",
                );
            }
        }
        if self.toolchain.root.is_some() && self.toolchain.isolation == Isolation::None {
            return err(
                "toolchain.root",
                "a hermetic root needs `isolation = \"sandbox\"`",
            );
        }
        if let Some(vary) = &self.verify.vary {
            for (i, what) in vary.iter().enumerate() {
                if vary[..i].contains(what) {
                    return err(
                        &format!("verify.vary[{i}]"),
                        &format!("`{what}` is listed twice"),
                    );
                }
            }
            if self.toolchain.root.is_some() && self.verify.demands(Vary::Clock) {
                return err(
                    "verify.vary",
                    "`clock` needs libfaketime from the host, and a hermetic root shows none \
                     of the host: leave `clock` out",
                );
            }
        }
        if self.artifacts.is_empty() {
            return err("artifact", "at least one `[[artifact]]` is needed");
        }
        let mut names = BTreeSet::new();
        for a in &self.artifacts {
            names.insert(a.shipped_name());
        }
        for (i, allow) in self.allowances.iter().enumerate() {
            if let Some(name) = &allow.artifact {
                if !names.contains(name) {
                    return err(
                        &format!("allow[{i}].artifact"),
                        &format!("no artifact is shipped as `{name}`"),
                    );
                }
            }
            if allow.reason.trim().is_empty() {
                return err(
                    &format!("allow[{i}].reason"),
                    "say why the difference is harmless",
                );
            }
        }
        let shipped: Vec<String> = self.artifacts.iter().map(Artifact::shipped_name).collect();
        blob::validate(&self.blobs, &shipped)?;
        if let Some(flash) = &self.flash {
            flash.validate("flash")?;
            self.validate_flash_names(flash)?;
        }
        names.clear();
        for (i, a) in self.artifacts.iter().enumerate() {
            if !is_tree_relative(&a.path) {
                return err(
                    &format!("artifact[{i}].path"),
                    "must be a relative path inside the build tree (no `..`)",
                );
            }
            if a.elf.as_deref().is_some_and(|elf| !is_tree_relative(elf)) {
                return err(
                    &format!("artifact[{i}].elf"),
                    "must be a relative path inside the build tree (no `..`)",
                );
            }
            for (j, part) in a.parts.iter().enumerate() {
                let key = format!("artifact[{i}].part[{j}]");
                if !is_tree_relative(&part.path) {
                    return err(
                        &format!("{key}.path"),
                        "must be a relative path inside the build tree (no `..`)",
                    );
                }
                if part
                    .elf
                    .as_deref()
                    .is_some_and(|elf| !is_tree_relative(elf))
                {
                    return err(
                        &format!("{key}.elf"),
                        "must be a relative path inside the build tree (no `..`)",
                    );
                }
                if part.offset.is_some_and(|o| o > i64::MAX as u64) {
                    return err(&format!("{key}.offset"), "is past the largest file offset");
                }
                if a.parts[..j].iter().any(|p| p.path == part.path) {
                    return err(&format!("{key}.path"), "names the same part twice");
                }
            }
            let name = a.shipped_name();
            if name.is_empty() || name.contains('\0') {
                return err(&format!("artifact[{i}].shipped"), "must be a file name");
            }
            if !names.insert(name.clone()) {
                return err(
                    &format!("artifact[{i}].shipped"),
                    &format!("the shipped name `{name}` is used twice"),
                );
            }
        }
        Ok(())
    }

    /// The host tools the lock pins: none with a hermetic root, which is pinned whole by its
    /// digest.
    pub(crate) fn host_tools(&self) -> &[String] {
        if self.toolchain.root.is_some() {
            &[]
        } else {
            &self.toolchain.tools
        }
    }

    /// The allowances that apply to the artifact shipped as `name`.
    pub(crate) fn allowances_for(&self, name: &str) -> Vec<crate::compare::Allowance> {
        self.allowances
            .iter()
            .filter(|a| a.artifact.as_deref().is_none_or(|n| n == name))
            .cloned()
            .collect()
    }

    /// The fixed `SOURCE_DATE_EPOCH` (the recipe's, or 1980-01-01, the earliest a zip holds).
    pub(crate) fn source_date_epoch(&self) -> i64 {
        self.build
            .env
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse().ok())
            .unwrap_or(315_532_800)
    }
}

/// True for a non-empty relative path with no `..`, `.`-only or root components.
pub(crate) fn is_tree_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests;
