//! Real images made by the real tools (mksquashfs, cbfstool and fmaptool from Debian, Debian's
//! OVMF build), read as maps, then damaged on purpose: bytes flipped, cut short, lengths and
//! offsets set to huge values, near the structures the map found. Every parser must come back
//! with a map whose parts lie within the image, or an error: never a panic, a hang or an
//! unbounded allocation.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;

use super::{extract, identify, map, Format, Map, Source};

/// Bytes in memory as a [`Source`] (a `[u8]` is one, but unsized).
struct Mem<'a>(&'a [u8]);

impl Source for Mem<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.0.read_at(pos, len)
    }
}

/// Where the samples are made (once per test process).
fn samples() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A squashfs made by mksquashfs from a small tree (a file, a binary, a symlink, a folder).
pub(crate) fn squashfs_sample(comp: &str) -> PathBuf {
    let dir = samples().join(format!("sqfs-{comp}"));
    let img = dir.with_extension("img");
    if !img.exists() {
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(dir.join("big"), vec![7u8; 300_000]).unwrap();
        std::fs::copy("/bin/true", dir.join("true")).unwrap();
        std::os::unix::fs::symlink("etc/passwd", dir.join("link")).unwrap();
        run(Command::new("mksquashfs").arg(&dir).arg(&img).args([
            "-quiet",
            "-noappend",
            "-no-progress",
            "-comp",
            comp,
        ]));
    }
    img
}

/// A 1 MiB flash image with an FMAP and a CBFS in its `COREBOOT` area, by fmaptool and
/// cbfstool, holding two raw files.
pub(crate) fn coreboot_sample() -> PathBuf {
    let dir = samples().join("coreboot");
    let img = dir.join("coreboot.rom");
    if !img.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("layout.fmd"),
            "FLASH@0x0 0x100000 {\n BIOS@0x0 0x100000 {\n  RW_MRC_CACHE@0x0 0x10000\n  \
             FMAP@0x10000 0x1000\n  COREBOOT(CBFS)@0x11000 0xef000\n }\n}\n",
        )
        .unwrap();
        std::fs::write(dir.join("cfg"), "hello\n").unwrap();
        std::fs::write(dir.join("blob"), vec![0x5au8; 3000]).unwrap();
        run(Command::new("/usr/sbin/fmaptool")
            .current_dir(&dir)
            .args(["layout.fmd", "layout.fmap"]));
        run(Command::new("/usr/sbin/cbfstool").current_dir(&dir).args([
            "coreboot.rom",
            "create",
            "-M",
            "layout.fmap",
            "-r",
            "COREBOOT",
        ]));
        for (file, name) in [("blob", "blob"), ("cfg", "etc/config")] {
            run(Command::new("/usr/sbin/cbfstool").current_dir(&dir).args([
                "coreboot.rom",
                "add",
                "-r",
                "COREBOOT",
                "-f",
                file,
                "-n",
                name,
                "-t",
                "raw",
            ]));
        }
    }
    img
}

pub(crate) const OVMF: &str = "/usr/share/OVMF/OVMF_CODE.fd";

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("`{}`: {e}", path.display()))
}

/// Every part of `m` lies within `source`; span parts are in order and do not overlap.
fn check_map(m: &Map, source: &dyn Source) {
    let mut end = 0;
    for p in &m.parts {
        let e = p.offset.checked_add(p.len).expect("part end overflows");
        assert!(e <= source.len(), "`{}` runs past the image", p.name);
        if p.packed.is_none() {
            assert!(p.offset >= end, "`{}` overlaps the part before it", p.name);
            end = e;
        }
    }
}

/// Read `bytes` as whatever it is, mapping and unpacking every packed part (bounded).
fn exercise(bytes: &[u8], format: Format) {
    let bytes = &Mem(bytes);
    let _ = identify(bytes).unwrap();
    if let Ok(m) = map(format, bytes) {
        check_map(&m, bytes);
        for p in m.parts.iter().filter(|p| p.packed.is_some()).take(8) {
            let mut sink = std::io::sink();
            if let Err(super::Error::TooLarge { limit, .. }) =
                extract(format, bytes, p, &mut sink, 64 << 20)
            {
                assert_eq!(limit, 64 << 20);
            }
        }
    }
}

/// A damage to apply: at `at` (an offset near a structure), do `what`.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Huge(usize, usize),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), 1u8..).prop_map(|(a, b)| Damage::Flip(a, b)),
            (any::<usize>(), prop_oneof![Just(2usize), Just(4), Just(8)])
                .prop_map(|(a, n)| Damage::Huge(a, n)),
            any::<usize>().prop_map(Damage::Truncate),
        ],
        1..4,
    )
}

/// Apply `damage` to `bytes` at offsets near the starts of the parts in `anchors`.
fn apply(bytes: &[u8], anchors: &[u64], damage: &[Damage]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let near = |a: usize| {
        let base = super::to_usize(anchors[a % anchors.len()]);
        base + (a / anchors.len()) % 64
    };
    for d in damage {
        match *d {
            Damage::Flip(a, x) => {
                let i = near(a);
                if i < b.len() {
                    b[i] ^= x;
                }
            }
            Damage::Huge(a, n) => {
                let i = near(a);
                for j in i..(i + n).min(b.len()) {
                    b[j] = 0xff;
                }
            }
            Damage::Truncate(a) => {
                let i = near(a).min(b.len());
                b.truncate(i);
            }
        }
    }
    b
}

fn anchors(bytes: &[u8], format: Format) -> Vec<u64> {
    let m = map(format, &Mem(bytes)).expect("the real sample maps");
    let mut a: Vec<u64> = m.parts.iter().map(|p| p.offset).collect();
    a.push(0);
    a.sort_unstable();
    a.dedup();
    a
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn real_samples_are_identified_and_mapped() {
    let sq = read(&squashfs_sample("gzip"));
    assert_eq!(identify(&Mem(&sq)).unwrap(), Some(Format::Squashfs));
    let m = map(Format::Squashfs, &Mem(&sq)).unwrap();
    check_map(&m, &Mem(&sq));
    let names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
    for want in [
        "superblock",
        "filesystem",
        "etc",
        "etc/passwd",
        "big",
        "true",
        "link",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let passwd = m.parts.iter().find(|p| p.name == "etc/passwd").unwrap();
    let mut out = Vec::new();
    extract(Format::Squashfs, &Mem(&sq), passwd, &mut out, 1 << 20).unwrap();
    assert_eq!(out, b"root:x:0:0:root:/root:/bin/sh\n");
    let big = m.parts.iter().find(|p| p.name == "big").unwrap();
    let err = extract(Format::Squashfs, &Mem(&sq), big, &mut Vec::new(), 1000).unwrap_err();
    assert!(
        matches!(err, super::Error::TooLarge { limit: 1000, .. }),
        "{err}"
    );

    for comp in ["xz", "zstd", "lzma"] {
        let img = read(&squashfs_sample(comp));
        let m = map(Format::Squashfs, &Mem(&img)).unwrap_or_else(|e| panic!("{comp}: {e}"));
        let big = m.parts.iter().find(|p| p.name == "big").unwrap();
        let mut out = Vec::new();
        extract(Format::Squashfs, &Mem(&img), big, &mut out, 1 << 20).unwrap();
        assert_eq!(out, vec![7u8; 300_000], "{comp}");
    }
    // lzo is not linked: refused as a map, so the image is compared as bytes.
    let lzo = read(&squashfs_sample("lzo"));
    let err = map(Format::Squashfs, &Mem(&lzo)).unwrap_err();
    assert!(err.to_string().contains("squashfs"), "{err}");

    let rom = read(&coreboot_sample());
    assert_eq!(identify(&Mem(&rom)).unwrap(), Some(Format::Fmap));
    let m = map(Format::Fmap, &Mem(&rom)).unwrap();
    let names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["RW_MRC_CACHE", "FMAP", "FMAP/after", "COREBOOT"]);
    let cb = m.parts.iter().find(|p| p.name == "COREBOOT").unwrap();
    let cbfs = &rom[super::to_usize(cb.offset)..super::to_usize(cb.offset + cb.len)];
    assert_eq!(identify(&Mem(cbfs)).unwrap(), Some(Format::Cbfs));
    let m = map(Format::Cbfs, &Mem(cbfs)).unwrap();
    let names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"etc/config") && names.contains(&"blob"),
        "{names:?}"
    );

    let fd = read(Path::new(OVMF));
    assert_eq!(identify(&Mem(&fd)).unwrap(), Some(Format::UefiFv));
    let m = map(Format::UefiFv, &Mem(&fd)).unwrap();
    check_map(&m, &Mem(&fd));
    let lzma = m
        .parts
        .iter()
        .find(|p| p.name.ends_with("/guided/unpacked"))
        .expect("OVMF's LZMA section");
    let mut inner = Vec::new();
    extract(Format::UefiFv, &Mem(&fd), lzma, &mut inner, 64 << 20).unwrap();
    let sm = map(Format::UefiSections, &Mem(&inner)).unwrap();
    let fvs: Vec<_> = sm
        .parts
        .iter()
        .filter(|p| p.name.starts_with("fv"))
        .collect();
    assert!(fvs.len() >= 2, "{:?}", sm.parts);
    let dxe = fvs
        .iter()
        .filter(|p| !p.name.ends_with("/header"))
        .map(|p| &inner[super::to_usize(p.offset)..super::to_usize(p.offset + p.len)])
        .find_map(|fv| {
            let m = map(Format::UefiFv, &Mem(fv)).ok()?;
            m.parts
                .iter()
                .any(|p| p.name.ends_with("/DxeCore/pe32"))
                .then_some(())
        });
    assert!(dxe.is_some(), "no DxeCore in the inner volumes");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn damaged_squashfs_never_panics(d in damage()) {
        let img = read(&squashfs_sample("gzip"));
        let a = anchors(&img, Format::Squashfs);
        exercise(&apply(&img, &a, &d), Format::Squashfs);
    }

    #[test]
    fn damaged_uefi_volumes_never_panic(d in damage()) {
        static IMG: std::sync::OnceLock<(Vec<u8>, Vec<u64>)> = std::sync::OnceLock::new();
        let (img, a) = IMG.get_or_init(|| {
            let img = read(Path::new(OVMF));
            let a = anchors(&img, Format::UefiFv);
            (img, a)
        });
        exercise(&apply(img, a, &d), Format::UefiFv);
    }

    #[test]
    fn damaged_fmap_and_cbfs_never_panic(d in damage()) {
        let img = read(&coreboot_sample());
        let a = anchors(&img, Format::Fmap);
        let bad = apply(&img, &a, &d);
        exercise(&bad, Format::Fmap);
        if bad.len() > 0x11000 {
            exercise(&bad[0x11000..], Format::Cbfs);
        }
    }
}

/// The descriptor the CLI test hands to ifdtool, laid out by the datasheet's words (Debian has
/// no tool that makes one from nothing).
fn descriptor() -> Vec<u8> {
    let mut b = vec![0xffu8; 0x4000];
    b[0x10..0x14].copy_from_slice(&0x0FF0_A55Au32.to_le_bytes());
    b[0x14..0x18].copy_from_slice(&((0x04u32 << 16) | 0x03).to_le_bytes());
    b[0x18..0x20].fill(0);
    for (i, w) in [0u32, 0x0003_0001, 0x7fff, 0x7fff, 0x7fff]
        .iter()
        .enumerate()
    {
        b[0x40 + 4 * i..0x44 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    b
}

#[test]
fn a_descriptor_maps_its_regions() {
    let b = descriptor();
    assert_eq!(identify(&Mem(&b)).unwrap(), Some(Format::Ifd));
    let m = map(Format::Ifd, &Mem(&b)).unwrap();
    let got: Vec<(&str, u64, u64)> = m
        .parts
        .iter()
        .map(|p| (p.name.as_str(), p.offset, p.len))
        .collect();
    assert_eq!(got, [("descriptor", 0, 0x1000), ("bios", 0x1000, 0x3000)]);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn damaged_descriptors_never_panic(d in damage()) {
        let b = descriptor();
        exercise(&apply(&b, &[0x10, 0x14, 0x40, 0x44], &d), Format::Ifd);
    }
}
