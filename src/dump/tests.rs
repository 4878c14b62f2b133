//! The dump check on small dumps made here: every byte in one class, verdicts per case.

use super::*;
use crate::recipe::flash::FlashLayout;

use crate::dump::noise;

fn run(dump: &[u8], release: &[u8], layout: Option<&str>, blobs: Vec<Blob>) -> DumpReport {
    let dir = tempfile::tempdir().unwrap();
    let (d, r) = (dir.path().join("dump.bin"), dir.path().join("fw.img"));
    std::fs::write(&d, dump).unwrap();
    std::fs::write(&r, release).unwrap();
    let layout = layout.map(|text| {
        let l: toml::Value = toml::from_str(text).unwrap();
        let flash: FlashLayout = l["flash"].clone().try_into().unwrap();
        flash.validate("flash").unwrap();
        flash
    });
    let opts = Options {
        layout,
        blobs,
        digest: true,
        ..Options::default()
    };
    let releases = [Release {
        name: "fw.img".into(),
        path: r,
        vouched: Verdict::Identical,
    }];
    let report = check_dump(&d, "dump.bin", &releases, &opts).unwrap();
    assert_eq!(
        report.coverage.total(),
        dump.len() as u64,
        "every byte once"
    );
    let spans: u64 = report.spans.iter().map(|s| s.length).sum();
    assert_eq!(spans, dump.len() as u64);
    report
}

const LAYOUT: &str = r#"
[flash]
size = 0x40000
[[flash.region]]
name = "boot"
offset = 0
size = 0x8000
kind = "blob"
blob = "loader"
[[flash.region]]
name = "mac"
offset = 0x8000
size = 0x10
kind = "device-data"
reason = "the MAC address, written at the factory"
[[flash.region]]
name = "spare"
offset = 0x30000
size = 0x10000
kind = "erased"
"#;

#[test]
fn a_dump_with_a_layout_case_by_case() {
    let release = noise(0x10000, 7);
    let loader = noise(0x8000, 8);
    let mut dump = vec![0xffu8; 0x40000];
    dump[..0x8000].copy_from_slice(&loader);
    dump[0x8000..0x8006].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    dump[0x10000..0x20000].copy_from_slice(&release);
    let pin = |bytes: &[u8]| Blob {
        name: "loader".into(),
        digest: crate::hash::Checksum::of(Algorithm::Sha256, bytes),
        reason: "the vendor's loader".into(),
    };
    let report = run(&dump, &release, Some(LAYOUT), vec![pin(&loader)]);
    assert_eq!(report.verdict, Verdict::Identical);
    assert_eq!(report.placements[0].offset, Some(0x10000));
    assert_eq!(report.coverage.reproduced, 0x10000);
    assert_eq!(report.coverage.pinned, 0x8000);
    assert_eq!(report.coverage.masked, 0x10);
    assert_eq!(report.coverage.unexplained, 0);
    assert_eq!(
        report.digest.unwrap().sha256,
        crate::hash::hash_bytes(&dump).sha256
    );

    // Another MAC: masked, still identical.
    let mut other = dump.clone();
    other[0x8005] = 9;
    assert_eq!(
        run(&other, &release, Some(LAYOUT), vec![pin(&loader)]).verdict,
        Verdict::Identical
    );

    // A byte changed in the release: different, at that offset.
    let mut changed = dump.clone();
    changed[0x10000 + 0x1234] ^= 0x80;
    let report = run(&changed, &release, Some(LAYOUT), vec![pin(&loader)]);
    assert_eq!(report.verdict, Verdict::Different);
    let p = &report.placements[0];
    assert_eq!((p.offset, p.differing), (Some(0x10000), 1));
    assert!(p.comparison.is_some());
    assert_eq!(report.coverage.unexplained, 1);

    // Code hidden in the erased region.
    let mut hidden = dump.clone();
    hidden[0x31000..0x31004].copy_from_slice(b"\x7fELF");
    let report = run(&hidden, &release, Some(LAYOUT), vec![pin(&loader)]);
    assert_eq!(report.verdict, Verdict::Different);
    let spare = report
        .spans
        .iter()
        .find(|s| s.name.as_deref() == Some("spare"))
        .unwrap();
    assert_eq!(
        spare.runs,
        vec![Run {
            offset: 0x31000,
            length: 4
        }]
    );
    assert!(spare
        .detail
        .as_deref()
        .unwrap()
        .contains("an ELF file at 0x31000"));

    // A blob whose digest does not match.
    let report = run(&dump, &release, Some(LAYOUT), vec![pin(b"another loader")]);
    assert_eq!(report.verdict, Verdict::Different);
    assert_eq!(report.coverage.pinned, 0);

    // No layout: the loader is unlisted data, the rest unlisted fill; the release is found.
    let report = run(&dump, &release, None, Vec::new());
    assert_eq!(report.verdict, Verdict::Identical);
    assert_eq!(report.coverage.reproduced, 0x10000);
    assert!(report.coverage.unexplained >= 0x8000);
}

#[test]
fn a_release_the_dump_does_not_hold() {
    let report = run(&vec![0xff; 4096], &noise(8192, 9), None, Vec::new());
    assert_eq!(report.verdict, Verdict::Missing);
    assert_eq!(report.coverage.erased, 4096);
    let release = noise(8192, 10);
    let report = run(&release[..5000], &release, None, Vec::new());
    assert_eq!(report.verdict, Verdict::Missing);
    assert_eq!(report.placements[0].missing, 8192 - 5000);
}

/// A multi-file uImage (`mkimage -T multi`) holding `images`, made by hand: the header, the
/// size table, each image padded to 4 bytes.
fn multi_uimage(images: &[&[u8]], time: u32) -> Vec<u8> {
    let mut data = Vec::new();
    for i in images {
        data.extend_from_slice(&u32::try_from(i.len()).unwrap().to_be_bytes());
    }
    data.extend_from_slice(&[0; 4]);
    for i in images {
        data.extend_from_slice(i);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&0x2705_1956u32.to_be_bytes());
    h[4..8].copy_from_slice(&time.wrapping_mul(2_654_435_761).to_be_bytes()); // "hcrc"
    h[8..12].copy_from_slice(&time.to_be_bytes());
    h[12..16].copy_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    h[28] = 5; // linux
    h[29] = 22; // arm64
    h[30] = 4; // multi
    h[32..44].copy_from_slice(b"acme-router\0");
    h.extend(data);
    h
}

fn run_with(
    dump: &[u8],
    release: &[u8],
    layout: Option<&str>,
    allowances: Vec<crate::compare::Allowance>,
) -> DumpReport {
    let dir = tempfile::tempdir().unwrap();
    let (d, r) = (dir.path().join("dump.bin"), dir.path().join("fw.img"));
    std::fs::write(&d, dump).unwrap();
    std::fs::write(&r, release).unwrap();
    let layout = layout.map(|text| {
        let l: toml::Value = toml::from_str(text).unwrap();
        let flash: FlashLayout = l["flash"].clone().try_into().unwrap();
        flash.validate("flash").unwrap();
        flash
    });
    let opts = Options {
        layout,
        compare: crate::compare::Options {
            allowances,
            ..crate::compare::Options::default()
        },
        ..Options::default()
    };
    let releases = [Release {
        name: "fw.img".into(),
        path: r,
        vouched: Verdict::Identical,
    }];
    let report = check_dump(&d, "dump.bin", &releases, &opts).unwrap();
    assert_eq!(
        report.coverage.total(),
        dump.len() as u64,
        "every byte once"
    );
    report
}

fn region(offset: u64, length: u64) -> crate::compare::Allowance {
    crate::compare::Allowance {
        artifact: Some("fw.img".into()),
        rule: crate::compare::Rule::Region { offset, length },
        reason: "the header's time and its checksum, set by the installer".into(),
    }
}

/// Issue 10: a release whose kernel and rootfs sit in separate partitions, its header nowhere.
/// Each part is found on its own and reproduced where it is; the artifact as a file is not in
/// the dump (`missing`), and its header and size table are what was not found.
#[test]
fn parts_found_apart_are_reproduced_but_the_artifact_is_missing() {
    let (kernel, rootfs) = (noise(0x1_0000, 21), noise(0xc000, 22));
    let release = multi_uimage(&[&kernel, &rootfs], 1_700_000_000);
    let mut dump = vec![0xffu8; 0x10_0000];
    dump[0x2_0000..0x3_0000].copy_from_slice(&kernel);
    dump[0x8_0000..0x8_c000].copy_from_slice(&rootfs);
    let report = run_with(&dump, &release, None, Vec::new());
    assert_eq!(report.verdict, Verdict::Missing);
    let p = &report.placements[0];
    assert_eq!((p.offset, p.verdict), (None, Verdict::Missing));
    let got: Vec<(&str, Option<i64>, Verdict, bool)> = p
        .parts
        .iter()
        .map(|q| (q.part.as_str(), q.offset, q.verdict, q.in_copy))
        .collect();
    assert_eq!(
        got,
        [
            ("fw.img//image-0", Some(0x2_0000), Verdict::Identical, false),
            ("fw.img//image-1", Some(0x8_0000), Verdict::Identical, false),
        ]
    );
    // What the parts hold is reproduced, nothing more: the header (64 bytes) and the size
    // table (12) are in no copy.
    assert_eq!(report.coverage.reproduced, 0x1_c000);
    assert_eq!(p.unlocated, 64 + 12);
    let spans: Vec<(u64, u64, &str)> = report
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Artifact)
        .map(|s| (s.offset, s.length, s.name.as_deref().unwrap()))
        .collect();
    assert_eq!(
        spans,
        [
            (0x2_0000, 0x1_0000, "fw.img//image-0"),
            (0x8_0000, 0xc000, "fw.img//image-1"),
        ]
    );

    // One byte changed in the rootfs found apart: that part is different, its span failed,
    // the byte unexplained.
    let mut changed = dump.clone();
    changed[0x8_0000 + 0x777] ^= 0x04;
    let report = run_with(&changed, &release, None, Vec::new());
    let q = &report.placements[0].parts[1];
    assert_eq!(
        (q.offset, q.differing, q.verdict),
        (Some(0x8_0000), 1, Verdict::Different)
    );
    assert_eq!(report.coverage.reproduced, 0x1_c000 - 1);
    assert_eq!(report.coverage.unexplained, 1);
    assert_eq!(report.placements[0].unlocated, 64 + 12 + 0xc000);
}

/// A whole copy with one byte changed in a part: the artifact is found where it is,
/// `different`; its parts say which one differs, both where the copy puts them.
#[test]
fn a_part_changed_by_one_byte_in_a_whole_copy() {
    let (kernel, rootfs) = (noise(0x1_0000, 23), noise(0xc000, 24));
    let release = multi_uimage(&[&kernel, &rootfs], 1_700_000_000);
    let mut dump = vec![0xffu8; 0x10_0000];
    dump[0x4_0000..0x4_0000 + release.len()].copy_from_slice(&release);
    let at = 0x4_0000 + 64 + 12 + 0x1_0000 + 0x100;
    dump[at] ^= 0x01;
    let report = run_with(&dump, &release, None, Vec::new());
    let p = &report.placements[0];
    assert_eq!(
        (p.offset, p.differing, p.verdict),
        (Some(0x4_0000), 1, Verdict::Different)
    );
    let got: Vec<(Verdict, u64, bool)> = p
        .parts
        .iter()
        .map(|q| (q.verdict, q.differing, q.in_copy))
        .collect();
    assert_eq!(
        got,
        [(Verdict::Identical, 0, true), (Verdict::Different, 1, true)]
    );
    assert_eq!(p.unlocated, 1);
    // The whole copy keeps its bytes: no span of its own for a part inside it.
    assert_eq!(
        report
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Artifact)
            .count(),
        1
    );
    // Found whole and identical: no part is looked at.
    let mut intact = dump.clone();
    intact[at] ^= 0x01;
    assert!(run_with(&intact, &release, None, Vec::new()).placements[0]
        .parts
        .is_empty());
}

/// Issue 10: an allowance applies to a copy in a dump as in `reprove diff`, and is listed.
#[test]
fn an_allowed_header_time_makes_the_copy_equivalent() {
    let (kernel, rootfs) = (noise(0x1_0000, 25), noise(0xc000, 26));
    let release = multi_uimage(&[&kernel, &rootfs], 1_700_000_000);
    let installed = multi_uimage(&[&kernel, &rootfs], 1_765_000_000);
    assert_ne!(release[4..12], installed[4..12]);
    let mut dump = vec![0xffu8; 0x10_0000];
    dump[0x4_0000..0x4_0000 + installed.len()].copy_from_slice(&installed);
    let report = run_with(&dump, &release, None, Vec::new());
    assert_eq!(report.verdict, Verdict::Different);
    let report = run_with(&dump, &release, None, vec![region(4, 8)]);
    assert_eq!(report.verdict, Verdict::Equivalent);
    let p = &report.placements[0];
    assert_eq!((p.offset, p.verdict), (Some(0x4_0000), Verdict::Equivalent));
    assert_eq!(p.allowances.len(), 1);
    // The allowed bytes are masked, as a verification's coverage counts them; none unexplained.
    assert!(p.differing > 0);
    assert_eq!(report.coverage.masked, p.differing);
    assert_eq!(report.coverage.unexplained, 0);
    let span = report
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Artifact)
        .unwrap();
    assert_eq!(span.status, Status::Ok);
    assert_eq!(
        p.allowances[0].allowance.rule,
        crate::compare::Rule::Region {
            offset: 4,
            length: 8
        }
    );
    // An allowance about another artifact does not apply.
    let mut other = region(4, 8);
    other.artifact = Some("u-boot.bin".into());
    assert_eq!(
        run_with(&dump, &release, None, vec![other]).verdict,
        Verdict::Different
    );
}

const RELEASE_REGION: &str = r#"
[flash]
[[flash.region]]
name = "firmware"
offset = 0x40000
size = 0x40000
kind = "release"
"#;

/// The attack: code inserted in a copy where an allowance sits (its header's time). Judged
/// offset by offset from where the copy begins, everything after the insertion differs. The
/// locator, though, aligns on the bulk of the copy: with the inserted bytes ending in a forged
/// magic, the window it finds differs only inside the allowance, and the inserted code lies
/// before it. It must not pass: the layout's release region holds bytes that are neither the
/// artifact nor fill (failed), and a copy the layout places at the region is `different`.
#[test]
fn code_inserted_under_an_allowance_is_not_equivalent() {
    let (kernel, rootfs) = (noise(0x1_0000, 27), noise(0xc000, 28));
    let release = multi_uimage(&[&kernel, &rootfs], 1_700_000_000);
    let mut inserted = b"\x1f\x20\x03\xd5\x00\x00\x00\x14".to_vec(); // nop; b .
    inserted.extend_from_slice(&release[..4]);
    inserted.extend_from_slice(b"\xde\xad\xbe\xef");
    let mut copy = release[..8].to_vec();
    copy.extend_from_slice(&inserted);
    copy.extend_from_slice(&release[8..]);
    let mut dump = vec![0xffu8; 0x10_0000];
    dump[0x4_0000..0x4_0000 + copy.len()].copy_from_slice(&copy);
    let allow = || vec![region(4, 8)];

    let report = run_with(&dump, &release, Some(RELEASE_REGION), allow());
    assert_ne!(report.verdict, Verdict::Equivalent, "{report:#?}");
    assert_eq!(report.verdict, Verdict::Different);
    let firmware = report
        .spans
        .iter()
        .find(|s| s.name.as_deref() == Some("firmware"))
        .unwrap();
    assert_eq!(firmware.status, Status::Failed);
    assert_eq!(firmware.offset, 0x4_0000);

    // The layout names the artifact: compared where the region begins, offset by offset.
    let named = format!("{RELEASE_REGION}artifact = \"fw.img\"\n");
    let report = run_with(&dump, &release, Some(&named), allow());
    assert_eq!(report.placements[0].verdict, Verdict::Different);
    assert_eq!(report.verdict, Verdict::Different);

    // The same copy without the insertion, its time changed: equivalent.
    let installed = multi_uimage(&[&kernel, &rootfs], 1_765_000_000);
    let mut honest = vec![0xffu8; 0x10_0000];
    honest[0x4_0000..0x4_0000 + installed.len()].copy_from_slice(&installed);
    let report = run_with(&honest, &release, Some(RELEASE_REGION), allow());
    assert_eq!(report.verdict, Verdict::Equivalent, "{report:#?}");
}

/// The gaps and regions judged from the blocks the locating pass kept are judged as a second
/// read would judge them, whatever the spans' alignment.
#[test]
fn blocks_kept_in_the_pass_judge_as_a_read_would() {
    use proptest::prelude::*;
    use std::io::Write as _;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    let shape = proptest::collection::vec((0u8..4, 1usize..1500), 1..24);
    runner
        .run(&(shape, 0u64..6000, 0u64..6000), |(pieces, a, b)| {
            let mut dump = Vec::new();
            for (i, (kind, len)) in pieces.iter().enumerate() {
                let byte = match kind {
                    0 => 0xff,
                    1 => 0x00,
                    2 => 0x5a,
                    _ => u8::try_from(i % 251).unwrap(),
                };
                dump.extend(std::iter::repeat_n(byte, *len));
                if *kind == 3 {
                    let at = dump.len() - 1;
                    dump[at] ^= 0x81;
                }
            }
            let size = dump.len() as u64;
            let (start, end) = (a.min(b).min(size), a.max(b).min(size));
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&dump).unwrap();
            let found = locate::locate(&f, size, &[], &mut |_| {}).unwrap();
            let none = Blocks::default();
            let path = Path::new("dump");
            let kept = gap_runs(&f, path, &found.blocks, start, end).unwrap();
            let read = gap_runs(&f, path, &none, start, end).unwrap();
            prop_assert_eq!(
                (kept.data, kept.data_runs, &kept.listed),
                (read.data, read.data_runs, &read.listed)
            );
            for fill in [0xff, 0x00] {
                let kept = foreign_runs(&f, path, &found.blocks, (start, end), fill).unwrap();
                let read = foreign_runs(&f, path, &none, (start, end), fill).unwrap();
                prop_assert_eq!(kept, read);
            }
            Ok(())
        })
        .unwrap();
}
