//! `reprove attest verify --policy POLICY ATTESTATION...`: decide over several attestations of
//! one release. The decision is [`crate::attest::policy`]'s; rendering is
//! [`crate::output::policy`]'s. Exit 0 accepted, 1 not accepted, 2 when the policy, one of its
//! keys or an artifact cannot be read (an attestation that cannot be read is listed, and
//! counts for nobody).

use anyhow::Context as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::attest::AttestVerifyArgs;
use crate::attest::policy::{decide, Policy};
use crate::exit::ExitStatus;
use crate::hash::hash_files;
use crate::output::Output;

/// `--now`: an RFC 3339 time.
pub(super) fn parse_now(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        format!("expected an RFC 3339 time such as `2026-12-01T12:00:00Z`, found: `{text}`")
    })
}

pub(super) fn run(args: &AttestVerifyArgs, out: &Output) -> anyhow::Result<ExitStatus> {
    let path = args.policy.as_deref().expect("called with `--policy`");
    // The error names the file, the line and the key: nothing to add.
    let policy = Policy::load(path)?;
    let mut artifacts = Vec::new();
    for (artifact, hashes) in args.artifacts.iter().zip(hash_files(&args.artifacts)) {
        let hashes = hashes.with_context(|| format!("failed to read `{}`", artifact.display()))?;
        artifacts.push((artifact.clone(), hashes));
    }
    let now = args.now.unwrap_or_else(|| {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    });
    let decision = decide(&policy, &args.files, &artifacts, now);
    crate::output::policy::emit(out, &policy, &decision)?;
    Ok(if decision.is_accepted() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
