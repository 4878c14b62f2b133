//! Reading and writing `reprove.lock`: one line per pin, sorted, so diffs read well.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::{Error, Link, Pin, Tool};
use crate::hash::{hash_bytes, Hashes};

/// The lock format this build reads and writes.
pub(super) const VERSION: u32 = 2;

/// The resolved toolchain: tools and pinned files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    pub tools: BTreeMap<String, Tool>,
    /// Sorted by path, no duplicates.
    pub pins: Vec<Pin>,
    /// Sorted by path, no duplicates: the links the build finds on its way to pinned files.
    pub links: Vec<Link>,
    /// True when the pins come from tracing a real build (`reprove lock --trace`).
    pub traced: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    version: u32,
    traced: bool,
    #[serde(default)]
    tools: BTreeMap<String, Tool>,
    #[serde(default)]
    pin: Vec<Pin>,
    #[serde(default)]
    link: Vec<Link>,
}

impl Lock {
    /// Read the lock at `path`.
    pub(crate) fn load(path: &Path) -> Result<Lock, Error> {
        Lock::load_hashed(path).map(|(lock, _)| lock)
    }

    /// Read the lock at `path`, with the digests of its bytes (from the same read).
    pub(crate) fn load_hashed(path: &Path) -> Result<(Lock, Hashes), Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let hashes = hash_bytes(&bytes);
        let text = String::from_utf8(bytes)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let lock = Lock::parse(&text).map_err(|(line, message)| {
            if line == 0 {
                if let Some(found) = message
                    .strip_prefix("version ")
                    .and_then(|v| v.parse().ok())
                {
                    return Error::Version {
                        path: path.to_path_buf(),
                        found,
                    };
                }
            }
            Error::Syntax {
                path: path.to_path_buf(),
                line,
                message,
            }
        })?;
        Ok((lock, hashes))
    }

    /// Parse lock text; `Err((line, message))`, line 0 when there is none.
    fn parse(text: &str) -> Result<Lock, (usize, String)> {
        let file: LockFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| crate::recipe::line_column(text, s.start).0);
            (line, e.message().trim_end().to_owned())
        })?;
        if file.version != VERSION {
            return Err((0, format!("version {}", file.version)));
        }
        let mut pins = file.pin;
        pins.sort();
        pins.dedup();
        let mut links = file.link;
        links.sort();
        links.dedup();
        Ok(Lock {
            tools: file.tools,
            pins,
            links,
            traced: file.traced,
        })
    }

    /// The lock as text: stable, sorted, one pin a line.
    pub(crate) fn render(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::from(
            "# reprove.lock: written by `reprove lock`, checked by `reprove verify` before every\n\
             # build. Every file the build trusts, pinned by digest. Do not edit by hand.\n",
        );
        let _ = writeln!(
            out,
            "version = {VERSION}\ntraced = {}\n\n[tools]",
            self.traced
        );
        for (name, tool) in &self.tools {
            let _ = writeln!(
                out,
                "{} = {{ path = {}, resolved = {} }}",
                q(name),
                q(&tool.path.to_string_lossy()),
                q(&tool.resolved.to_string_lossy())
            );
        }
        out.push_str("\n[[pin]]\n");
        out.truncate(out.len() - "[[pin]]\n".len());
        for pin in &self.pins {
            let _ = writeln!(
                out,
                "[[pin]]\npath = {}\ndigest = {}{}",
                q(&pin.path.to_string_lossy()),
                q(&pin.digest.to_string()),
                if pin.executable {
                    "\nexecutable = true"
                } else {
                    ""
                }
            );
        }
        for link in &self.links {
            let _ = writeln!(
                out,
                "[[link]]\npath = {}\ntarget = {}",
                q(&link.path.to_string_lossy()),
                q(&link.target.to_string_lossy())
            );
        }
        out
    }

    /// Write the lock to `path` atomically.
    pub(crate) fn write(&self, path: &Path) -> Result<(), Error> {
        crate::atomic::write_atomic(
            path,
            self.render().as_bytes(),
            crate::atomic::REPORT_MODE,
            true,
        )
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Algorithm, Checksum};
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn sample(paths: &[&str]) -> Lock {
        let mut tools = BTreeMap::new();
        tools.insert(
            "cc".to_owned(),
            Tool {
                path: "/usr/bin/cc".into(),
                resolved: "/usr/bin/gcc-12".into(),
            },
        );
        let mut pins: Vec<Pin> = paths
            .iter()
            .map(|p| Pin {
                path: PathBuf::from(p),
                digest: Checksum::of(Algorithm::Sha256, p.as_bytes()),
                executable: p.len() % 2 == 0,
            })
            .collect();
        pins.sort();
        pins.dedup();
        let mut links: Vec<Link> = paths
            .iter()
            .map(|p| Link {
                path: PathBuf::from(format!("{p}.link")),
                target: PathBuf::from(p.rsplit('/').next().unwrap_or(p)),
            })
            .collect();
        links.sort();
        links.dedup();
        Lock {
            tools,
            pins,
            links,
            traced: false,
        }
    }

    #[test]
    fn renders_stably_and_reads_back() {
        let lock = sample(&["/usr/bin/gcc-12", "/lib/ld.so", "/weird \"name\""]);
        let text = lock.render();
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        assert_eq!(lock.render(), text);
        let pins = &text[text.find("[[pin]]").unwrap()..];
        assert!(pins.find("/lib/ld.so").unwrap() < pins.find("/usr/bin/gcc-12").unwrap());
    }

    #[test]
    fn unknown_keys_and_versions_are_refused() {
        let text = sample(&["/a"])
            .render()
            .replace("traced = false", "traced = false\nextra = 1");
        let (line, message) = Lock::parse(&text).unwrap_err();
        assert_eq!(line, 5);
        assert!(message.contains("unknown field `extra`"), "{message}");
        let text = sample(&["/a"])
            .render()
            .replace("version = 2", "version = 9");
        assert_eq!(Lock::parse(&text).unwrap_err(), (0, "version 9".to_owned()));
    }

    proptest! {
        #[test]
        fn roundtrip(paths in proptest::collection::vec("/[a-z\" \\\\é]{1,12}", 0..8)) {
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let lock = sample(&refs);
            prop_assert_eq!(Lock::parse(&lock.render()).unwrap(), lock);
        }

        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = Lock::parse(&text);
        }
    }
}
