use std::path::PathBuf;

use super::*;
use crate::hash::hash_bytes;

fn shipped(origin: &str, bytes: &[u8]) -> ShippedFile {
    ShippedFile {
        origin: origin.to_owned(),
        file: PathBuf::from(origin),
        hashes: hash_bytes(bytes),
        locator: None,
    }
}

fn artifact(name: &str, verdict: Verdict, file: &ShippedFile) -> ArtifactReport {
    ArtifactReport {
        name: name.to_owned(),
        path: PathBuf::from(format!("out/{name}")),
        verdict,
        rebuilt: vec![Some(file.hashes)],
        shipped: Some(file.clone()),
        difference: None,
        nondeterminism: None,
        absent: None,
        similar: Vec::new(),
        notes: Vec::new(),
        first_rebuild: None,
    }
}

fn blob(file: &ShippedFile, outcome: BlobOutcome) -> BlobReport {
    BlobReport {
        name: file.origin.clone(),
        reason: "vendor microcode".to_owned(),
        pinned: file.hashes.sha256,
        found: file.origin.clone(),
        hashes: file.hashes,
        outcome,
    }
}

#[test]
fn every_shipped_byte_is_counted_once_in_one_class() {
    let image = shipped("fw.img", &[1; 100]);
    let ucode = shipped("ucode.bin", &[2; 10]);
    let extra = shipped("notes.txt", &[3; 7]);
    let files = [image.clone(), ucode.clone(), extra.clone()];
    let identical = [artifact("fw.img", Verdict::Identical, &image)];
    let c = shipped_coverage(&files, &identical, &[blob(&ucode, BlobOutcome::Pinned)]);
    assert_eq!(
        c,
        Coverage {
            reproduced: 100,
            pinned: 10,
            unexplained: 7,
            ..Coverage::default()
        }
    );
    // A differing artifact vouches for none of its bytes, nor a blob that is not its pin.
    let different = [artifact("fw.img", Verdict::Different, &image)];
    let c = shipped_coverage(&files, &different, &[blob(&ucode, BlobOutcome::Different)]);
    assert_eq!(c.unexplained, 117);
    assert_eq!(c.total(), 117);
    // Two names for one file: the one that vouches least counts.
    let both = [
        artifact("fw.img", Verdict::Identical, &image),
        artifact("img", Verdict::Nondeterministic, &image),
    ];
    assert_eq!(shipped_coverage(&files[..1], &both, &[]).unexplained, 100);
}

#[test]
fn a_bundle_named_counts_whole_and_one_named_by_nothing_by_its_members() {
    let bundle = shipped("rel.tar.gz", &[0; 50]);
    let member = shipped("rel.tar.gz//fw.img", &[1; 80]);
    let other = shipped("rel.tar.gz//manifest.txt", &[2; 5]);
    let files = [bundle.clone(), member.clone(), other];
    let named = [
        artifact("fw.img", Verdict::Identical, &member),
        artifact("rel.tar.gz", Verdict::Identical, &bundle),
    ];
    let c = shipped_coverage(&files, &named, &[]);
    assert_eq!((c.reproduced, c.total()), (50, 50), "{c:?}");
    // Named by a blob, a bundle holding a differing artifact is not pinned.
    let pinned_bundle = [blob(&bundle, BlobOutcome::Pinned)];
    let differing = [artifact("fw.img", Verdict::Different, &member)];
    let c = shipped_coverage(&files, &differing, &pinned_bundle);
    assert_eq!((c.pinned, c.unexplained), (0, 50), "{c:?}");
    // Named by nothing: its members, not its framing.
    let c = shipped_coverage(&files, &named[..1], &[]);
    assert_eq!((c.reproduced, c.unexplained, c.total()), (80, 5, 85));
}

#[test]
fn an_equivalent_artifact_masks_the_bytes_its_allowances_cover() {
    let dir = tempfile::tempdir().unwrap();
    let (rebuilt, shipped_path) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&rebuilt, [7u8; 200]).unwrap();
    let mut signed = vec![7u8; 200];
    signed.extend_from_slice(&[9; 64]);
    std::fs::write(&shipped_path, &signed).unwrap();
    let allowance: crate::compare::Allowance =
        toml::from_str("trailer = 64\nreason = \"vendor signature\"").unwrap();
    let opts = crate::compare::Options {
        allowances: vec![allowance],
        ..crate::compare::Options::default()
    };
    let comparison = crate::compare::diff_paths(&rebuilt, &shipped_path, &opts).unwrap();
    assert_eq!(comparison.verdict, CompareVerdict::Equivalent);
    let file = shipped("fw.img", &signed);
    let mut a = artifact("fw.img", Verdict::Equivalent, &file);
    a.difference = Some(comparison);
    let c = shipped_coverage(&[file], &[a], &[]);
    assert_eq!(
        c,
        Coverage {
            reproduced: 200,
            masked: 64,
            ..Coverage::default()
        }
    );
}
