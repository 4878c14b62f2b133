//! How a run ends, mapped to the process exit code in one place (the `cmp`/`diff` convention).

use std::process::ExitCode;

use crate::interrupt::Interrupted;

/// The outcome of a command, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Verified: identical, equivalent, signature valid. Exit 0.
    Success,
    /// A definite negative: different, nondeterministic, missing, build failed, rejected. Exit 1.
    Failure,
    /// Could not decide: bad input, drifted toolchain, no sandbox, I/O trouble. Exit 2.
    Error,
    /// Stopped by a signal, after removing what the run had made: exit 128 + the signal's
    /// number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as the shell reports a process
    /// the signal killed.
    Interrupted(Interrupted),
}

impl ExitStatus {
    /// The worse of two outcomes: the one a run with both should end with.
    #[must_use]
    pub fn worst(self, other: ExitStatus) -> ExitStatus {
        fn rank(s: ExitStatus) -> u8 {
            match s {
                ExitStatus::Success => 0,
                ExitStatus::Failure => 1,
                ExitStatus::Error => 2,
                ExitStatus::Interrupted(_) => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
            ExitStatus::Interrupted(signal) => ExitCode::from(signal.exit_code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus::*;

    #[test]
    fn worst_wins() {
        assert_eq!(Success.worst(Failure), Failure);
        assert_eq!(Error.worst(Failure), Error);
        assert_eq!(Success.worst(Success), Success);
    }
}
