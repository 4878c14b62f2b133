//! `attest verify ATT --key PUB --dump DUMP` with no `--artifact`: the attested subjects found
//! in the dump by the locators the signed rebuild predicate carries, each confirmed by its
//! sha256 and blake3 ([`crate::dump::seek`]).
//!
//! The subjects looked for are the predicate's artifacts with a shipped file, named as the
//! statement's subjects name them (one per digest); they are vouched for by the rebuild
//! verdict only when the attestation is verified. An attestation written before locators
//! existed cannot be searched this way: one error line says so and what to pass (exit 2).

use std::path::Path;

use anyhow::Context as _;

use super::attest::{dump_options, vouched, AttestVerifyArgs};
use crate::attest::check::Report;
use crate::dump::seek::{check_dump_by_locators, check_locator, Sought};
use crate::dump::DumpReport;
use crate::output::Output;
use crate::progress::{Progress as _, Stage};

/// The subjects of `report` that can be sought, and the names of those that cannot (no
/// locator). `None` when no subject of the attestation has a locator.
fn sought(report: &Report) -> Option<(Vec<Sought>, Vec<String>)> {
    let predicate = report.rebuild.as_ref()?;
    let vouched = vouched(report);
    let (mut sought, mut without) = (Vec::<Sought>::new(), Vec::new());
    for a in &predicate.artifacts {
        let Some(shipped) = &a.shipped else { continue };
        let (sha256, blake3) = (shipped.digest.sha256.hex(), shipped.digest.blake3.hex());
        // The statement's subject of these bytes names them (the consistency check holds the
        // subjects to the shipped files).
        let name = report
            .subjects
            .iter()
            .find(|s| {
                s.digest.get("sha256") == Some(&sha256)
                    && s.digest.get("blake3").is_none_or(|b| *b == blake3)
            })
            .map_or_else(|| a.name.clone(), |s| s.name.clone());
        if sought.iter().any(|s| s.sha256 == shipped.digest.sha256.0) || without.contains(&name) {
            continue;
        }
        match &shipped.locator {
            Some(locator) => sought.push(Sought {
                name,
                size: shipped.size,
                sha256: shipped.digest.sha256.0,
                blake3: shipped.digest.blake3.0,
                locator: locator.clone(),
                vouched,
            }),
            None => without.push(name),
        }
    }
    (!sought.is_empty()).then_some((sought, without))
}

/// `--dump` without `--artifact`: see the module docs.
pub(super) fn check_dump(
    args: &AttestVerifyArgs,
    file: &Path,
    flash: &Path,
    report: &Report,
    out: &Output,
) -> anyhow::Result<DumpReport> {
    let Some((sought, without)) = sought(report) else {
        anyhow::bail!(
            "the attestation `{}` carries no subject locators (it was written before they \
             existed): its subjects cannot be found in the dump without their files; give the \
             shipped files with `--artifact FILE`",
            file.display()
        );
    };
    for s in &sought {
        check_locator(s).with_context(|| format!("in the attestation `{}`", file.display()))?;
    }
    let opts = dump_options(args)?;
    let progress = out.reporter();
    progress.stage(Stage::Comparing(&format!(
        "looking for the attested subjects in `{}`",
        flash.display()
    )));
    let mut dump = check_dump_by_locators(flash, &flash.to_string_lossy(), &sought, &opts)
        .with_context(|| format!("failed to check the dump `{}`", flash.display()))?;
    progress.finish();
    crate::interrupt::check()?;
    for name in without {
        dump.notes.push(format!(
            "the subject `{name}` carries no locator: it was not looked for (give it with `--artifact`)"
        ));
    }
    Ok(dump)
}
