//! Flash layouts (`[flash]` with `[[flash.region]]`): what each region of a device's flash
//! holds, for checking a dump read out of it.
//!
//! The same table is read inside a recipe and as a standalone layout file (`--flash-layout
//! FILE`: a `[flash]` table, and the `[[blob]]` pins its `blob` regions name, as a recipe
//! writes them). Parsing is strict (`deny_unknown_fields`); after it,
//! [`FlashLayout::validate`] checks what TOML cannot and names the key at fault: every region
//! has a unique non-empty name and a non-zero size, ends inside the flash (`size`, when given)
//! without overflowing, and overlaps no other region; a `device-data` region says why in
//! `reason`; `fill` belongs to `erased` regions only, `artifact` to `release` regions only and
//! `blob` to (and is required by) `blob` regions. Whether `artifact` and `blob` name something
//! the recipe has is the recipe's check ([`super::RecipeSpec`]) or the dump check's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[flash]`: the regions of one flash chip or eMMC image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlashLayout {
    /// The flash's size in bytes: a dump of another size is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "region", default)]
    pub regions: Vec<Region>,
}

/// What a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RegionKind {
    /// A release artifact, compared with the release.
    Release,
    /// Data written per device (MAC, serial, calibration): masked, listed with its reason.
    DeviceData,
    /// Erased flash: every byte must be the fill.
    Erased,
    /// A part pinned by digest (`[[blob]]`).
    Blob,
    /// A boot loader that is not part of the release.
    Bootloader,
    /// Configuration written on the device.
    Config,
    /// Anything else the vendor names.
    Other,
}

impl RegionKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RegionKind::Release => "release",
            RegionKind::DeviceData => "device-data",
            RegionKind::Erased => "erased",
            RegionKind::Blob => "blob",
            RegionKind::Bootloader => "bootloader",
            RegionKind::Config => "config",
            RegionKind::Other => "other",
        }
    }
}

/// One `[[flash.region]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Region {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub kind: RegionKind,
    /// Why the region differs per device (required for `device-data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The byte erased flash holds (`erased` only; default 0xff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<u8>,
    /// The release artifact the region holds, by its shipped name (`release` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The `[[blob]]` the region holds (`blob` only, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// `None` for a region a person declared (the recipe's `[flash]`, a `--flash-layout`
    /// file); for a region the dump describes itself (`crate::dump::own`), where the dump
    /// says so (`FMAP at 0x1000, area RW_VPD`). Never read from TOML: a dump's word is
    /// untrusted, and a self-described region never masks bytes.
    #[serde(skip)]
    pub described_by: Option<String>,
}

impl Region {
    /// One past the last byte (validated not to overflow).
    pub(crate) fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    /// The fill of an erased region.
    pub(crate) fn fill_byte(&self) -> u8 {
        self.fill.unwrap_or(0xff)
    }
}

/// Why a layout file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read layout `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid layout `{}`, line {line}, column {column}: {message}: `{text}`", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        text: String,
    },
    #[error("invalid layout `{}`: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("invalid layout `{}`, key `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A layout file: `[flash]`, and the `[[blob]]` pins its `blob` regions name (as in a recipe).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayoutFile {
    pub flash: FlashLayout,
    #[serde(rename = "blob", default)]
    pub blobs: Vec<super::blob::Blob>,
}

/// A layout file is a few regions: anything larger is not one.
const MAX_FILE: u64 = 1 << 20;

impl LayoutFile {
    /// Read, parse and validate the layout file at `path`.
    pub(crate) fn load(path: &Path) -> Result<LayoutFile, Error> {
        use std::io::Read as _;
        let read = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = crate::beneath::open_regular(path).map_err(|e| match e {
            crate::beneath::Error::Io { source, .. } => read(source),
            e => read(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e.to_string(),
            )),
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(Error::Toml {
                path: path.to_path_buf(),
                message: format!("larger than {MAX_FILE} bytes"),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| Error::Toml {
            path: path.to_path_buf(),
            message: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let file: LayoutFile = toml::from_str(&text).map_err(|e| {
            let fault = super::TomlFault::of(&e, &text);
            match fault.place {
                Some((line, column, text)) => Error::Syntax {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: fault.message,
                    text,
                },
                None => Error::Toml {
                    path: path.to_path_buf(),
                    message: fault.message,
                },
            }
        })?;
        let invalid = |(key, message)| Error::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        file.flash.validate("flash").map_err(invalid)?;
        super::blob::validate(&file.blobs, &[]).map_err(invalid)?;
        Ok(file)
    }
}

impl FlashLayout {
    /// Checks what TOML types cannot: `Err((key, message))` for the first problem, the key
    /// spelled from `table` (`flash`).
    pub(crate) fn validate(&self, table: &str) -> Result<(), (String, String)> {
        if self.size == Some(0) {
            return Err((format!("{table}.size"), "must not be 0".to_owned()));
        }
        for (i, r) in self.regions.iter().enumerate() {
            let key = |field: &str| format!("{table}.region[{i}].{field}");
            let err = |field: &str, message: &str| Err((key(field), message.to_owned()));
            if r.name.trim().is_empty() || r.name.chars().any(char::is_control) {
                return err("name", "must be a name");
            }
            if self.regions[..i].iter().any(|o| o.name == r.name) {
                return Err((key("name"), format!("two regions are named `{}`", r.name)));
            }
            if r.size == 0 {
                return err("size", "must not be 0");
            }
            let Some(end) = r.offset.checked_add(r.size) else {
                return err("size", "the region ends past 2^64");
            };
            if let Some(size) = self.size.filter(|&s| end > s) {
                return Err((
                    key("size"),
                    format!("the region ends at {end:#x}, past the flash's size {size:#x}"),
                ));
            }
            if let Some(o) = self.regions[..i]
                .iter()
                .find(|o| r.offset < o.end() && o.offset < end)
            {
                return Err((
                    key("offset"),
                    format!("the region overlaps the region `{}`", o.name),
                ));
            }
            let is = |kind| r.kind == kind;
            match &r.reason {
                None if is(RegionKind::DeviceData) => {
                    return err("reason", "say what the device data is and why it differs");
                }
                Some(reason) if reason.trim().is_empty() => {
                    return err("reason", "must not be empty");
                }
                _ => {}
            }
            if r.fill.is_some() && !is(RegionKind::Erased) {
                return err("fill", "only an `erased` region has a fill");
            }
            if r.artifact.is_some() && !is(RegionKind::Release) {
                return err("artifact", "only a `release` region holds an artifact");
            }
            if r.artifact.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return err("artifact", "must name an artifact");
            }
            match (&r.blob, is(RegionKind::Blob)) {
                (None, true) => return err("blob", "a `blob` region names its `[[blob]]`"),
                (Some(_), false) => return err("blob", "only a `blob` region names a blob"),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<FlashLayout, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout.toml");
        std::fs::write(&path, text).unwrap();
        LayoutFile::load(&path)
            .map(|f| f.flash)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_layout_and_what_it_refuses() {
        let good = "[flash]\nsize = 0x1000\n[[flash.region]]\nname = \"fw\"\noffset = 0\n\
                    size = 0x800\nkind = \"release\"\nartifact = \"fw.img\"\n\
                    [[flash.region]]\nname = \"mac\"\noffset = 0x800\nsize = 6\n\
                    kind = \"device-data\"\nreason = \"the MAC\"\n";
        let layout = check(good).unwrap();
        assert_eq!(layout.regions.len(), 2);
        assert_eq!(layout.regions[1].kind, RegionKind::DeviceData);
        for (bad, says) in [
            (
                good.replace("reason = \"the MAC\"\n", ""),
                "key `flash.region[1].reason`",
            ),
            (
                good.replace("offset = 0x800", "offset = 0x700"),
                "overlaps the region `fw`",
            ),
            (
                good.replace("size = 6", "size = 0x900"),
                "past the flash's size",
            ),
            (
                good.replace("\"mac\"", "\"fw\""),
                "two regions are named `fw`",
            ),
            (good.replace("artifact", "artefact"), "line 8"),
            (
                good.replace("size = 6", "size = 0"),
                "key `flash.region[1].size`",
            ),
            (good.replace("offset = 0x800", "offset = -1"), "line 11"),
            (
                good.replace("kind = \"device-data\"", "kind = \"blob\""),
                "`flash.region[1].blob`",
            ),
            (
                good.replace("kind = \"device-data\"", "kind = \"nvram\""),
                "line 13",
            ),
            (
                "[flash]\n[[flash.region]]\nname = \"x\"\n".to_owned(),
                "missing field",
            ),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(says), "{e} should say {says}");
        }
    }
}
