//! Bounds on what reading an archive may cost: bytes written, entries, nesting.
//!
//! Every archive reprove reads is hostile until proven otherwise, and a few megabytes of
//! gzip can stand for terabytes of zeros. So every extraction and every comparison carries a
//! [`Budget`] and charges it as it goes: each byte as it is written (never after the fact),
//! each entry as it is read, each container level as it is opened. Past a bound the work
//! stops with [`Exceeded`], which callers turn into one error naming the archive, the bound,
//! its value and the variable that raises it; what was written is then removed.
//!
//! The defaults are far beyond any real firmware release and far below what fills a disk:
//!
//! | bound | default | variable | why |
//! |---|---|---|---|
//! | bytes written | 64 GiB | `REPROVE_MAX_UNPACKED_BYTES` | a full Yocto or Android source escrow is 30–50 GiB; a firmware image is megabytes |
//! | entries | 4 000 000 | `REPROVE_MAX_ENTRIES` | a Linux kernel tree holds about 90 000 files, an AOSP checkout about 1.5 million |
//! | nesting depth | 16 | `REPROVE_MAX_DEPTH` | vendor bundles nest 3–5 levels (zip → tar.gz → cpio initramfs) |
//!
//! Bytes count what lands on disk: regular file data, and the decompressed stream `diff`
//! spools to compare. Entries count every member read (files, directories, links, skipped
//! device nodes) across the whole extraction or comparison. Nesting counts container levels
//! as `diff` descends (a tar inside a tar.gz is level 2); extraction itself never nests.
//!
//! A variable must be a whole decimal number of at least 1 (no sign, unit or spaces); any
//! other value is a [`BadValue`] error, not silently the default.

use std::ffi::OsString;
use std::fmt;

/// One kind of bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Bytes,
    Entries,
    Depth,
}

impl Bound {
    /// The environment variable that sets it.
    pub(crate) fn var(self) -> &'static str {
        match self {
            Bound::Bytes => "REPROVE_MAX_UNPACKED_BYTES",
            Bound::Entries => "REPROVE_MAX_ENTRIES",
            Bound::Depth => "REPROVE_MAX_DEPTH",
        }
    }
}

/// The bounds in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_field_names)] // `max_…`: each is a bound, and says so where it is read
pub(crate) struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
    pub max_depth: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 30,
            max_entries: 4_000_000,
            max_depth: 16,
        }
    }
}

/// A bound variable whose value is not a whole number of at least 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{var}` must be a whole number of at least 1, not `{value}`")]
pub(crate) struct BadValue {
    pub var: &'static str,
    pub value: String,
}

impl Limits {
    /// The defaults, each replaced by its environment variable when that is set.
    pub(crate) fn from_env() -> Result<Limits, BadValue> {
        Self::from_vars(|key| std::env::var_os(key))
    }

    fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Limits, BadValue> {
        let mut limits = Limits::default();
        for bound in [Bound::Bytes, Bound::Entries, Bound::Depth] {
            let Some(raw) = var(bound.var()) else {
                continue;
            };
            let bad = || BadValue {
                var: bound.var(),
                value: raw.to_string_lossy().into_owned(),
            };
            let text = raw.to_str().ok_or_else(bad)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let value: u64 = text.parse().map_err(|_| bad())?;
            if value == 0 {
                return Err(bad());
            }
            *limits.get_mut(bound) = value;
        }
        Ok(limits)
    }

    fn get_mut(&mut self, bound: Bound) -> &mut u64 {
        match bound {
            Bound::Bytes => &mut self.max_bytes,
            Bound::Entries => &mut self.max_entries,
            Bound::Depth => &mut self.max_depth,
        }
    }
}

/// A bound that was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub bound: Bound,
    pub limit: u64,
}

/// Reads after the archive's name: "archive `x` unpacks to more than 1048576 bytes: set
/// `REPROVE_MAX_UNPACKED_BYTES` to raise the bound".
impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.limit;
        match self.bound {
            Bound::Bytes => write!(f, "unpacks to more than {n} bytes")?,
            Bound::Entries => write!(f, "holds more than {n} entries")?,
            Bound::Depth => write!(f, "nests archives more than {n} levels deep")?,
        }
        write!(f, ": set `{}` to raise the bound", self.bound.var())
    }
}

/// What one extraction or comparison has used so far, against its [`Limits`].
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    limits: Limits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            bytes: 0,
            entries: 0,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Charge `n` bytes about to be written; refused (and not charged) when they would pass
    /// the bound.
    pub(crate) fn charge_bytes(&mut self, n: u64) -> Result<(), Exceeded> {
        self.bytes = self
            .bytes
            .checked_add(n)
            .filter(|&b| b <= self.limits.max_bytes)
            .ok_or(Exceeded {
                bound: Bound::Bytes,
                limit: self.limits.max_bytes,
            })?;
        Ok(())
    }

    /// Charge one entry read.
    pub(crate) fn charge_entry(&mut self) -> Result<(), Exceeded> {
        if self.entries >= self.limits.max_entries {
            return Err(Exceeded {
                bound: Bound::Entries,
                limit: self.limits.max_entries,
            });
        }
        self.entries += 1;
        Ok(())
    }

    /// Check that a container may be opened at nesting `depth` (the top-level input is 0).
    pub(crate) fn check_depth(&self, depth: u64) -> Result<(), Exceeded> {
        if depth >= self.limits.max_depth {
            return Err(Exceeded {
                bound: Bound::Depth,
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }
}

/// Why a bounded copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
    Exceeded(Exceeded),
    Interrupted(crate::interrupt::Interrupted),
}

/// Copy `reader` into `writer`, charging each chunk to `budget` before it is written: at most
/// the bound is ever written. Returns the bytes copied.
pub(crate) fn copy_bounded(
    reader: &mut dyn std::io::Read,
    writer: &mut dyn std::io::Write,
    budget: &mut Budget,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let mut copied = 0u64;
    loop {
        crate::interrupt::check().map_err(CopyError::Interrupted)?;
        let n = match reader.read(buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        budget.charge_bytes(n as u64).map_err(CopyError::Exceeded)?;
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        copied += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Limits, BadValue> {
        Limits::from_vars(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn defaults_hold_unless_a_variable_is_set() {
        assert_eq!(from(&[]).unwrap(), Limits::default());
        let set = from(&[
            ("REPROVE_MAX_UNPACKED_BYTES", "1048576"),
            ("REPROVE_MAX_ENTRIES", "10"),
            ("REPROVE_MAX_DEPTH", "3"),
        ])
        .unwrap();
        assert_eq!(
            set,
            Limits {
                max_bytes: 1 << 20,
                max_entries: 10,
                max_depth: 3
            }
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for value in [
            "",
            "0",
            "-1",
            "+5",
            " 5",
            "5 ",
            "64G",
            "1e9",
            "0x10",
            "99999999999999999999999",
        ] {
            let err = from(&[("REPROVE_MAX_ENTRIES", value)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "`REPROVE_MAX_ENTRIES` must be a whole number of at least 1, not `{value}`"
                )
            );
        }
    }

    #[test]
    fn the_budget_stops_at_the_bound_exactly() {
        let mut budget = Budget::new(Limits {
            max_bytes: 10,
            max_entries: 2,
            max_depth: 2,
        });
        assert!(budget.charge_bytes(10).is_ok());
        assert_eq!(
            budget.charge_bytes(1).unwrap_err().bound,
            Bound::Bytes,
            "one past"
        );
        assert_eq!(budget.bytes(), 10);
        assert!(budget.charge_entry().is_ok() && budget.charge_entry().is_ok());
        assert_eq!(budget.charge_entry().unwrap_err().bound, Bound::Entries);
        assert!(budget.check_depth(1).is_ok());
        assert_eq!(budget.check_depth(2).unwrap_err().bound, Bound::Depth);
        assert!(budget.charge_bytes(u64::MAX).is_err(), "no overflow");
    }

    #[test]
    fn a_bounded_copy_writes_no_more_than_the_bound() {
        let mut budget = Budget::new(Limits {
            max_bytes: 100,
            ..Limits::default()
        });
        let mut out = Vec::new();
        let mut buf = [0u8; 30];
        let err = copy_bounded(&mut &[7u8; 1000][..], &mut out, &mut budget, &mut buf);
        assert!(matches!(err, Err(CopyError::Exceeded(_))));
        assert!(out.len() <= 100, "{}", out.len());
    }
}
