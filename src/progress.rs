//! What long work tells whoever shows its progress, without printing anything itself.
//!
//! Two things cross this boundary, both cheap enough to leave on when nobody watches:
//!
//! - **Stages.** A command hands its work a [`Progress`] and the work names each stage as it
//!   begins ([`Stage`]): hashing, unpacking, a build (with the log file it writes), comparing.
//!   A stage is a call per step of the pipeline, never per byte or per entry.
//! - **Counters.** Hashing adds the bytes it read ([`add_hashed`], once per chunk of up to
//!   4 MiB) and unpacking the entries it read ([`add_entry`], once per archive entry) to two
//!   process-wide counters: one relaxed atomic add each, never a lock, a callback or a clock.
//!   A reporter samples them from its own thread ([`hashed`], [`entries`]) and shows what grew
//!   since its stage began (`src/output/progress.rs`, at most ten times a second).
//!
//! Invariants: nothing here prints, blocks or allocates; a counter only grows (it wraps after
//! 2^64, which a reporter reads as a difference); the counts are of the whole process, so two
//! commands in one process would share them (the CLI runs one).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static HASHED: AtomicU64 = AtomicU64::new(0);
static ENTRIES: AtomicU64 = AtomicU64::new(0);

/// Count `n` bytes read and hashed.
#[inline]
pub(crate) fn add_hashed(n: u64) {
    HASHED.fetch_add(n, Ordering::Relaxed);
}

/// Count one archive entry read.
#[inline]
pub(crate) fn add_entry() {
    ENTRIES.fetch_add(1, Ordering::Relaxed);
}

/// Bytes hashed by the process so far.
pub(crate) fn hashed() -> u64 {
    HASHED.load(Ordering::Relaxed)
}

/// Archive entries read by the process so far.
pub(crate) fn entries() -> u64 {
    ENTRIES.load(Ordering::Relaxed)
}

/// A stage of long work, named as it begins; it lasts until the next one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage<'a> {
    /// Reading and hashing files: shown with the bytes read and the rate.
    Hashing(&'a str),
    /// Checking and unpacking an archive or copying a tree: shown with the entries read.
    Unpacking(&'a str),
    /// A build running, writing its output to `log`: shown with the time it has taken and the
    /// log's last line.
    Building { what: &'a str, log: &'a Path },
    /// Comparing: shown with the time it has taken.
    Comparing(&'a str),
    /// Anything else, in words.
    Step(&'a str),
}

impl Stage<'_> {
    /// What the stage does, in words.
    pub(crate) fn what(&self) -> &str {
        match self {
            Stage::Hashing(w)
            | Stage::Unpacking(w)
            | Stage::Building { what: w, .. }
            | Stage::Comparing(w)
            | Stage::Step(w) => w,
        }
    }
}

/// Where long work reports its stages.
pub(crate) trait Progress: Sync {
    fn stage(&self, stage: Stage<'_>);
}

/// Progress that nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Silent;

impl Progress for Silent {
    fn stage(&self, _stage: Stage<'_>) {}
}

/// Where several jobs running at once (`verify --jobs N`) report: each job gets its own
/// [`Progress`] as it starts, and drops it when it ends. The counters above stay the
/// process's: a job's figures would include the others', so a job shows its stages and time.
pub(crate) trait Jobs: Sync {
    fn job(&self, name: &str) -> Box<dyn Progress + '_>;
}

impl Jobs for Silent {
    fn job(&self, _name: &str) -> Box<dyn Progress + '_> {
        Box::new(Silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_grow_with_the_work_counted() {
        let (bytes, entries) = (hashed(), entries());
        crate::hash::hash_bytes(b"not counted: no reader");
        crate::hash::hash_reader(&[7u8; 1000][..]).unwrap();
        add_entry();
        // Other tests hash and unpack in parallel: at least what this one did was counted.
        assert!(hashed() - bytes >= 1000);
        assert!(super::entries() > entries);
    }
}
