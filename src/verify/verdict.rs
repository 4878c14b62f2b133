//! The verdicts, from best to worst, and their exit codes.

use serde::{Deserialize, Serialize};

use crate::exit::ExitStatus;

/// What a verification concluded, per artifact and overall (the worst one wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Rebuilt and shipped are the same bytes.
    Identical,
    /// They differ only inside regions the recipe declares harmless.
    Equivalent,
    /// They differ where nothing declares it harmless.
    Different,
    /// Two rebuilds of the same inputs disagree: the build, not the vendor, is at fault.
    Nondeterministic,
    /// An artifact is absent from the rebuild or from the shipped set.
    Missing,
    /// The escrowed source does not build with the pinned toolchain.
    BuildFailed,
    /// A pinned tool or file does not match: nothing was built.
    ToolchainDrift,
    /// The escrow does not match its pinned digest: nothing was built.
    SourceMismatch,
}

impl Verdict {
    /// The worse of two verdicts.
    #[must_use]
    pub fn worst(self, other: Verdict) -> Verdict {
        self.max(other)
    }

    /// The word users see and scripts match.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Equivalent => "equivalent",
            Verdict::Different => "different",
            Verdict::Nondeterministic => "nondeterministic",
            Verdict::Missing => "missing",
            Verdict::BuildFailed => "build-failed",
            Verdict::ToolchainDrift => "toolchain-drift",
            Verdict::SourceMismatch => "source-mismatch",
        }
    }

    /// True when the shipped set is borne out (with `strict`, only `identical` is).
    pub fn passed(self, strict: bool) -> bool {
        match self {
            Verdict::Identical => true,
            Verdict::Equivalent => !strict,
            _ => false,
        }
    }

    /// 0 verified, 1 a definite negative, 2 could not decide (nothing was built).
    pub fn exit_status(self, strict: bool) -> ExitStatus {
        match self {
            _ if self.passed(strict) => ExitStatus::Success,
            Verdict::ToolchainDrift | Verdict::SourceMismatch => ExitStatus::Error,
            _ => ExitStatus::Failure,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;
    use crate::exit::ExitStatus;

    #[test]
    fn worst_wins_and_exit_codes_follow_cmp() {
        assert_eq!(Identical.worst(Different), Different);
        assert_eq!(Missing.worst(Different), Missing);
        assert_eq!(Equivalent.exit_status(false), ExitStatus::Success);
        assert_eq!(Equivalent.exit_status(true), ExitStatus::Failure);
        assert_eq!(Nondeterministic.exit_status(false), ExitStatus::Failure);
        assert_eq!(ToolchainDrift.exit_status(false), ExitStatus::Error);
        assert_eq!(
            serde_json::to_string(&BuildFailed).unwrap(),
            "\"build-failed\""
        );
    }
}
