//! The process's signal handling: SIGINT, SIGTERM and SIGHUP end a run cleanly, at any stage.
//!
//! One handler owns the three signals, installed once by the command line before any work
//! starts ([`install`]). It does only what is async-signal-safe — no allocation, no lock, no
//! I/O: it stores the signal's number in a static atomic and, while a build runs, kills the
//! build's process group (a build in a session of its own does not get the terminal's Ctrl-C,
//! so reprove passes the interrupt on).
//!
//! Everything else happens in ordinary code. Every loop that can run long calls [`check`] at a
//! safe point — per chunk when hashing, per entry and per chunk when unpacking (escrow, shipped
//! bundles, hermetic roots), per chunk and per member when comparing, before an atomic write
//! renames its file into place, while waiting for a build — and [`check`] fails with
//! [`Interrupted`] once a signal has arrived. That error travels up the normal `?` paths, so
//! every `TempDir` and `NamedTempFile` on the way is dropped and removes what it holds; the
//! command line then prints one line and exits 128 + the signal's number: 130 for SIGINT, 143
//! for SIGTERM, 129 for SIGHUP.
//!
//! Invariants:
//!
//! - **The flag is the truth.** Once a signal is recorded, [`received`] says so for the rest of
//!   the run, on every thread (rayon's workers read the same atomic). An [`Interrupted`] may lose
//!   its type on the way up (an archive reader reports any read error as a corrupt entry), so
//!   the command line asks [`received`] after every command, failed or not: an interrupted run
//!   never exits as anything but interrupted.
//! - **The first signal unwinds; a second one kills.** A signal that arrives while the first is
//!   being handled (removing a large tree takes a moment) ends the process at once by the
//!   signal's default action, and whatever was not yet removed stays.
//! - **No build outlives an interrupt.** The build's group is killed in the handler, and again
//!   by the waiting loop when it sees the flag (which covers a signal that arrived between
//!   spawning the build and recording its group). There are [`BUILD_SLOTS`] slots for groups,
//!   one per build running at once (`verify --jobs N` runs N); a build that finds them all
//!   taken is still killed by its waiting loop, within one poll.
//! - **Debug builds only: a pause for tests.** With `REPROVE_TEST_PAUSE=<stage>`, the named
//!   [`checkpoint`] waits (up to a minute) for a signal, so that a test can interrupt a step
//!   that is too short to hit by timing. Release builds compile it to a plain [`check`].

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal received (0 while none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many builds' process groups the handler kills at once.
const BUILD_SLOTS: usize = 64;
/// The process groups of the builds running now (0 in a free slot).
static BUILD_GROUPS: [AtomicI32; BUILD_SLOTS] = [const { AtomicI32::new(0) }; BUILD_SLOTS];

/// The signals that interrupt a run.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// A run stopped by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", self.name())]
pub struct Interrupted {
    signal: i32,
}

impl Interrupted {
    /// The signal's number.
    pub fn signal(self) -> i32 {
        self.signal
    }

    /// The signal's name (`SIGINT`, `SIGTERM`, `SIGHUP`).
    pub fn name(self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }

    /// The shell's code for a process ended by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(u8::MAX)
    }
}

/// An interrupt inside an I/O path. Not `ErrorKind::Interrupted`: read loops retry that one.
impl From<Interrupted> for io::Error {
    fn from(err: Interrupted) -> Self {
        io::Error::other(err)
    }
}

/// Take over SIGINT, SIGTERM and SIGHUP for the rest of the process. Call once, early.
pub(crate) fn install() {
    extern "C" fn on_signal(sig: libc::c_int) {
        // Only atomics, `kill`, `signal` and `raise` here: all async-signal-safe.
        if SIGNAL
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // SAFETY: restoring the default action and raising are async-signal-safe; the
            // signal is blocked while its handler runs, so it is delivered on return.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
            return;
        }
        for slot in &BUILD_GROUPS {
            let group = slot.load(Ordering::SeqCst);
            if group > 0 {
                // SAFETY: kill is async-signal-safe; the group is the build's own.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        }
    }
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid start; the handler only does
        // async-signal-safe work. SA_RESTART keeps system calls from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(sig, &raw const action, std::ptr::null_mut());
        }
    }
}

/// Fail once a signal has arrived. Cheap (one atomic load): call it per chunk, per entry.
#[inline]
pub(crate) fn check() -> Result<(), Interrupted> {
    match received() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The signal that interrupted this run, if one did.
pub(crate) fn received() -> Option<Interrupted> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(Interrupted { signal }),
    }
}

/// [`check`], at a named stage. In debug builds, `REPROVE_TEST_PAUSE=<stage>` makes it wait for
/// a signal first (at most a minute): a test-only hook for steps too short to hit by timing.
#[cfg(debug_assertions)]
pub(crate) fn checkpoint(stage: &str) -> Result<(), Interrupted> {
    if std::env::var_os("REPROVE_TEST_PAUSE").is_some_and(|v| v == stage) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            check()?;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    check()
}

/// [`check`], at a named stage (the test-only pause exists in debug builds alone).
#[cfg(not(debug_assertions))]
#[inline]
pub(crate) fn checkpoint(_stage: &str) -> Result<(), Interrupted> {
    check()
}

/// While this lives, a signal kills the process group `group` (a build's) at once.
pub(crate) struct BuildGroup(Option<usize>);

impl BuildGroup {
    pub(crate) fn watch(group: libc::pid_t) -> BuildGroup {
        let slot = BUILD_GROUPS.iter().position(|slot| {
            slot.compare_exchange(0, group, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        BuildGroup(slot)
    }
}

impl Drop for BuildGroup {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            BUILD_GROUPS[slot].store(0, Ordering::SeqCst);
        }
    }
}

/// A reader that fails with [`Interrupted`] (as an `io::Error`) once a signal has arrived:
/// for streams read by code that has no loop of ours to put a [`check`] in (a decompressor
/// copied out with `io::copy`).
pub(crate) struct Checked<R>(pub R);

impl<R: io::Read> io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        check()?;
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The flag itself is process-wide: raising a signal here would interrupt every test of the
    // binary. The signal paths are tested end to end in tests/cli/interrupt.rs.

    #[test]
    fn exit_codes_are_the_shells() {
        let code = |signal| Interrupted { signal }.exit_code();
        assert_eq!(code(libc::SIGINT), 130);
        assert_eq!(code(libc::SIGTERM), 143);
        assert_eq!(code(libc::SIGHUP), 129);
    }

    #[test]
    fn the_message_names_the_signal() {
        let err = Interrupted {
            signal: libc::SIGTERM,
        };
        assert_eq!(err.to_string(), "interrupted by SIGTERM");
        let io: io::Error = err.into();
        assert_ne!(
            io.kind(),
            io::ErrorKind::Interrupted,
            "read loops retry that"
        );
        assert_eq!(
            io.get_ref().and_then(|e| e.downcast_ref::<Interrupted>()),
            Some(&err)
        );
    }

    #[test]
    fn nothing_received_passes() {
        // No test of this binary raises a signal, so the flag stays clear.
        assert_eq!(received(), None);
        assert!(check().is_ok());
        assert!(checkpoint("nowhere").is_ok());
    }
}
