//! `--redact`: a rebuild predicate that can be shared without the confidential source.
//!
//! Kept: every digest and size (escrow, recipe, lock, pins, log, shipped and rebuilt files),
//! every verdict, the toolchain (tools, pins and drift: the host's system files, which the
//! policy binds), the command, the environment's names and values (secret values are never
//! recorded at all, redacted or not: the build records `[secret]`), the isolation, the times,
//! and of each comparison what a checker needs: the verdicts, the differing byte ranges (offset
//! and length), each range's kind of cause, and the allowances' ranges and kinds.
//!
//! Dropped or cut to names: host paths become file names (recipe, lock, escrow, shipped files
//! and blobs, provenance files, a checked dump and its layout,
//! the invocation, the build folder, a kept log); paths inside the build tree and names of
//! members inside artifacts become `[redacted]` (an artifact keeps its own name, which the
//! statement's subjects carry anyway); everything quoted from inside the build is dropped (log
//! tails, similar files, notes, why an artifact is absent, strings, hex context, symbols,
//! sections, metadata values, allowance reasons and sections).
//!
//! Invariant: redaction never touches a digest, a verdict or a byte range, so a redacted
//! predicate passes the same `attest verify` checks (its `consistency` too), and the VSA's
//! policy digest still binds the exact recipe and lock.

use serde_json::{Map, Value};

use super::rebuild::{Comparison, RebuildPredicate};

/// What stands in for a value left out.
pub(crate) const REDACTED: &str = "[redacted]";

/// The last component of a path (`a/b/c.img` → `c.img`), or of each side of an archive
/// member path (`/srv/x.tar.gz//fw.img` → `x.tar.gz//fw.img`).
fn file_name(path: &str) -> String {
    path.split("//")
        .map(|part| {
            part.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("//")
}

/// Redact `p` in place (see the module docs for what stays).
pub(crate) fn redact(p: &mut RebuildPredicate) {
    p.redacted = true;
    p.invocation.recipe = file_name(&p.invocation.recipe);
    for s in &mut p.invocation.shipped {
        *s = file_name(s);
    }
    p.recipe.name = file_name(&p.recipe.name);
    p.lock.name = file_name(&p.lock.name);
    p.escrow.name = file_name(&p.escrow.name);
    for r in &mut p.rebuilds {
        r.build_path = file_name(&r.build_path);
        r.log.tail.clear();
        r.log.kept = r.log.kept.as_deref().map(file_name);
        for a in &mut r.artifacts {
            a.similar.clear();
            if a.absent.is_some() {
                a.absent = Some(REDACTED.to_owned());
            }
        }
    }
    for b in &mut p.blobs {
        b.shipped.name = file_name(&b.shipped.name);
    }
    for r in p.provenance.iter_mut().flat_map(|p| &mut p.records) {
        if let Some(f) = &mut r.file {
            f.name = file_name(&f.name);
        }
    }
    if let Some(d) = &mut p.dump {
        d.name = file_name(&d.name);
        d.layout = d.layout.as_deref().map(file_name);
        // A part located on its own is a member of its artifact: its name goes.
        for pl in &mut d.placements {
            for part in &mut pl.parts {
                part.part = format!("{}//{REDACTED}", pl.artifact);
            }
            for applied in &mut pl.allowances {
                redact_allowance(&mut applied.allowance);
            }
        }
        for span in &mut d.spans {
            if let Some(Value::String(name)) = span.get_mut("name") {
                if let Some((artifact, _)) = name.split_once("//") {
                    *name = format!("{artifact}//{REDACTED}");
                }
            }
        }
    }
    for a in &mut p.artifacts {
        REDACTED.clone_into(&mut a.path);
        if let Some(s) = &mut a.shipped {
            s.name = file_name(&s.name);
        }
        a.similar.clear();
        a.notes.clear();
        if a.absent.is_some() {
            a.absent = Some(REDACTED.to_owned());
        }
        for c in [&mut a.difference, &mut a.nondeterminism]
            .into_iter()
            .flatten()
        {
            redact_comparison(c, &a.name);
        }
    }
}

/// Keep only these keys of `map`, each as `keep` says.
fn keep_only(map: &mut Map<String, Value>, keys: &[&str]) {
    map.retain(|k, _| keys.contains(&k.as_str()));
}

/// A cause keeps its kind and its numbers (a shift's `by`, a padding's `fill`).
fn redact_cause(cause: &mut Value) {
    if let Value::Object(m) = cause {
        keep_only(m, &["kind", "by", "fill"]);
    }
}

fn redact_comparison(c: &mut Comparison, artifact: &str) {
    artifact.clone_into(&mut c.left);
    artifact.clone_into(&mut c.right);
    c.rest.clear();
    for leaf in &mut c.leaves {
        // The artifact itself keeps its name; a member inside it does not.
        if leaf.path != artifact {
            leaf.path = format!("{artifact}//{REDACTED}");
        }
        keep_only(&mut leaf.rest, &["change", "causes"]);
        if let Some(Value::Array(causes)) = leaf.rest.get_mut("causes") {
            causes.iter_mut().for_each(redact_cause);
        }
        if let Some(content) = &mut leaf.content {
            keep_only(
                &mut content.rest,
                &["left_size", "right_size", "range_count", "tally", "shifts"],
            );
            if let Some(Value::Array(shifts)) = content.rest.get_mut("shifts") {
                for shift in shifts {
                    if let Value::Object(m) = shift {
                        m.remove("string");
                        m.remove("context");
                        if let Some(cause) = m.get_mut("cause") {
                            redact_cause(cause);
                        }
                    }
                }
            }
            for range in &mut content.ranges {
                keep_only(&mut range.rest, &["shift", "cause"]);
                if let Some(cause) = range.rest.get_mut("cause") {
                    redact_cause(cause);
                }
            }
        }
        for applied in &mut leaf.allowances {
            redact_allowance(&mut applied.allowance);
        }
    }
}

/// An allowance keeps its rule's kind and numbers; its reason and section name go.
fn redact_allowance(a: &mut Map<String, Value>) {
    keep_only(
        a,
        &[
            "artifact",
            "trailer",
            "region",
            "archive-metadata",
            "elf-section",
        ],
    );
    if a.contains_key("elf-section") {
        a.insert("elf-section".to_owned(), Value::String(REDACTED.to_owned()));
    }
    a.insert("reason".to_owned(), Value::String(REDACTED.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_become_names() {
        assert_eq!(file_name("/srv/demo/operator/reprove.toml"), "reprove.toml");
        assert_eq!(
            file_name("/srv/demo/tampered/fw-1.0.tar.gz//firmware.img"),
            "fw-1.0.tar.gz//firmware.img"
        );
        assert_eq!(file_name("shipped/"), "shipped");
        assert_eq!(file_name("fw.img"), "fw.img");
    }

    #[test]
    fn a_redacted_fixture_keeps_digests_verdicts_and_ranges_and_drops_names() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../testdata/attest/rebuild-predicate.json"))
                .unwrap();
        let mut p = RebuildPredicate::parse(fixture).unwrap();
        let before = p.clone();
        redact(&mut p);
        let (text, was) = (
            serde_json::to_string(&p).unwrap(),
            serde_json::to_string(&before).unwrap(),
        );
        for secret in ["/srv/demo", "/tmp/reprove-", "out/firmware.img", "e82b0200"] {
            assert!(was.contains(secret), "the fixture holds {secret}");
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(p.redacted);
        assert_eq!(p.recipe.digest, before.recipe.digest);
        assert_eq!(p.escrow.digest, before.escrow.digest);
        assert_eq!(p.verdict, before.verdict);
        let (now, was) = (&p.artifacts[1], &before.artifacts[1]);
        assert_eq!(now.rebuilt, was.rebuilt);
        assert_eq!(
            now.shipped.as_ref().unwrap().digest,
            was.shipped.as_ref().unwrap().digest
        );
        let first_range = |a: &super::super::rebuild::Artifact| {
            let leaf = &a.difference.as_ref().unwrap().leaves[0];
            (
                leaf.path.clone(),
                leaf.content.as_ref().unwrap().ranges[0].clone(),
            )
        };
        let (path, range) = first_range(now);
        assert_eq!(path, "acme-router-fw-1.0.0.tar.gz//[redacted]");
        let (_, was_range) = first_range(was);
        assert_eq!((range.offset, range.len), (was_range.offset, was_range.len));
        assert_eq!(range.rest["cause"]["kind"], "unknown");
        // Still the predicate's own type: it reads back as written.
        assert_eq!(RebuildPredicate::parse(p.to_value()).unwrap(), p);
    }
}
