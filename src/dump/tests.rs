//! The dump check on small dumps made here: every byte in one class, verdicts per case.

use super::*;
use crate::recipe::flash::FlashLayout;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (s >> 33).to_le_bytes()[0]
        })
        .collect()
}

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
