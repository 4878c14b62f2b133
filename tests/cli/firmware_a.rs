//! `reprove diff` on U-Boot legacy images, FIT images and device-tree blobs made by the real
//! `mkimage` and `dtc` (`testdata/firmware/make.sh`), and on Debian's real x86 kernel (a
//! bzImage, downloaded once with `apt-get download` and kept in `target/` by version): each
//! part named, each difference attributed to its part, header fields explained as the
//! timestamps and checksums they are.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{run_ok, TestEnv};

/// Runs `testdata/firmware/make.sh` into `dir` of `env`, at `epoch`; files already in `dir`
/// (`kernel.bin`, `initrd.bin`, `board.dts`…) are used as they are.
fn make(env: &TestEnv, dir: &str, epoch: u64) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/firmware/make.sh");
    let out = env.path(dir);
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        Command::new(script)
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
    );
    out
}

/// `reprove diff --json A B`: exit code 1 and the JSON document.
fn diff(env: &TestEnv, a: &Path, b: &Path) -> Value {
    let out = env.cmd(["diff", "--json"]).arg(a).arg(b).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each leaf as (path after `//`, cause kinds without repeats, changed field names).
fn leaves(v: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let path = l["path"].as_str().unwrap();
            let part = path.split_once("//").map_or(path, |(_, p)| p).to_owned();
            let mut causes: Vec<String> = l["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["kind"].as_str().unwrap().to_owned())
                .collect();
            causes.dedup();
            let fields = l["metadata"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|f| f["field"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (part, causes, fields)
        })
        .collect()
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn two_uimages_a_second_apart_differ_in_their_header_time_and_crc() {
    let env = TestEnv::new();
    let (a, b) = (
        make(&env, "a", 1_700_000_000),
        make(&env, "b", 1_700_000_001),
    );
    let v = diff(&env, &a.join("kernel.uimg"), &b.join("kernel.uimg"));
    assert_eq!(
        leaves(&v),
        [(
            "header".into(),
            strs(&["checksum", "timestamp"]),
            strs(&["ih_hcrc", "ih_time"])
        )]
    );
    let text = env
        .cmd(["diff"])
        .arg(a.join("kernel.uimg"))
        .arg(b.join("kernel.uimg"))
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(
            "ih_time: 1700000000 (2023-11-14 22:13:20 UTC) → 1700000001 (2023-11-14 22:13:21 UTC)"
        ),
        "{text}"
    );
    assert!(!text.contains("unknown"), "{text}");
}

#[test]
fn a_changed_uimage_payload_is_its_data_and_the_crcs_follow() {
    let env = TestEnv::new();
    let a = make(&env, "a", 1_700_000_000);
    let kernel = std::fs::read(a.join("kernel.bin")).unwrap();
    let mut changed = kernel.clone();
    changed[100] ^= 0x20;
    env.write("b/kernel.bin", &changed);
    let b = make(&env, "b", 1_700_000_000);
    let v = diff(&env, &a.join("kernel.uimg"), &b.join("kernel.uimg"));
    let l = leaves(&v);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0].0, "header");
    assert_eq!(l[0].1, strs(&["checksum"]));
    // The compressed size may change too (another byte compresses differently).
    let crcs = l[0]
        .2
        .iter()
        .filter(|f| *f != "ih_size")
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(crcs, strs(&["ih_hcrc", "ih_dcrc"]));
    // The gzip payload is opened: the changed byte is found at its place in the kernel.
    assert_eq!(l[1].0, "data");
    let range = &v["leaves"][1]["content"]["ranges"][0];
    assert_eq!(
        (range["offset"].as_u64(), range["len"].as_u64()),
        (Some(100), Some(1))
    );

    // The multi-file image: the sub-image that changed, by its number.
    env.write("c/initrd.bin", b"initrd bytes xyZ");
    let other = make(&env, "c", 1_700_000_000);
    let v = diff(&env, &a.join("multi.uimg"), &other.join("multi.uimg"));
    let l = leaves(&v);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(
        l[0],
        (
            "header".into(),
            strs(&["checksum"]),
            strs(&["ih_hcrc", "ih_dcrc"])
        )
    );
    assert_eq!(l[1].0, "image-1");
}

#[test]
fn a_fit_whose_kernel_changed_names_the_image_and_its_hash() {
    let env = TestEnv::new();
    let a = make(&env, "a", 1_700_000_000);
    let mut kernel = std::fs::read(a.join("kernel.bin")).unwrap();
    kernel[7] ^= 0x01;
    env.write("b/kernel.bin", &kernel);
    let b = make(&env, "b", 1_700_000_000);
    for image in ["fit.itb", "fit-ext.itb"] {
        let v = diff(&env, &a.join(image), &b.join(image));
        let l = leaves(&v);
        let names: Vec<&str> = l.iter().map(|(p, _, _)| p.as_str()).collect();
        assert!(names.contains(&"images/kernel"), "{image}: {l:?}");
        let hash = l
            .iter()
            .find(|(p, _, _)| p == "images/kernel/hash-1/value")
            .unwrap_or_else(|| panic!("{image}: {l:?}"));
        assert_eq!(hash.1, strs(&["checksum"]));
        // Nothing but the kernel, its hash and the lengths that follow its compressed size:
        // the alignment after the kernel, zeros of another length, is no leaf.
        for leaf in v["leaves"].as_array().unwrap() {
            assert_eq!(leaf["change"], "changed", "{image}: {leaf}");
        }
        for (part, causes, _) in &l {
            assert!(!causes.is_empty(), "{image}: {part}");
            assert!(
                part == "images/kernel" || causes.iter().all(|c| c == "checksum"),
                "{image}: {part} {causes:?}"
            );
        }
    }
}

#[test]
fn two_fits_a_second_apart_differ_in_their_timestamp() {
    let env = TestEnv::new();
    let (a, b) = (
        make(&env, "a", 1_700_000_000),
        make(&env, "b", 1_700_000_001),
    );
    let v = diff(&env, &a.join("fit.itb"), &b.join("fit.itb"));
    assert_eq!(
        leaves(&v),
        [("timestamp".into(), strs(&["timestamp"]), strs(&["value"]))]
    );
}

#[test]
fn a_changed_device_tree_property_is_named_by_its_path() {
    let env = TestEnv::new();
    let a = make(&env, "a", 1_700_000_000);
    let dts = std::fs::read_to_string(a.join("board.dts")).unwrap();
    env.write("b/board.dts", dts.replace("ttyS0", "ttyS1"));
    let b = make(&env, "b", 1_700_000_000);
    let v = diff(&env, &a.join("board.dtb"), &b.join("board.dtb"));
    let l = leaves(&v);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "chosen/bootargs");
    assert_eq!(l[0].2, strs(&["value"]));
    let field = &v["leaves"][0]["metadata"][0];
    assert_eq!(
        field["left"],
        "\"console=ttyS0,115200 root=/dev/mmcblk0p2\""
    );
    assert_eq!(
        field["right"],
        "\"console=ttyS1,115200 root=/dev/mmcblk0p2\""
    );

    // The same tree inside a FIT: the image, then the property inside it.
    let v = diff(&env, &a.join("fit.itb"), &b.join("fit.itb"));
    let l = leaves(&v);
    assert!(
        l.iter()
            .any(|(p, _, _)| p == "images/fdt-1//chosen/bootargs"),
        "{l:?}"
    );
}

#[test]
fn a_damaged_uimage_is_compared_as_bytes_with_a_note() {
    let env = TestEnv::new();
    let a = make(&env, "a", 1_700_000_000);
    let mut bad = std::fs::read(a.join("kernel.uimg")).unwrap();
    bad[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    env.write("bad.uimg", &bad);
    let v = diff(&env, &a.join("kernel.uimg"), &env.path("bad.uimg"));
    let leaf = &v["leaves"][0];
    assert_eq!(leaf["path"], "kernel.uimg");
    let notes = leaf["notes"].to_string();
    assert!(notes.contains("could not read as uImage"), "{notes}");
    assert!(notes.contains("runs past the end"), "{notes}");
}

/// Debian's cloud kernel for amd64 (a real bzImage, 14 MB): downloaded once with `apt-get
/// download` (26 MB), its `vmlinuz` kept in `target/` under the package's name and version.
fn debian_kernel() -> PathBuf {
    static KERNEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KERNEL
        .get_or_init(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let deps = run_ok(Command::new("apt-cache").args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                "linux-image-cloud-amd64",
            ]));
            let package = deps
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Depends: "))
                .find(|p| p.starts_with("linux-image-"))
                .expect("linux-image-cloud-amd64 depends on a kernel package")
                .to_owned();
            let policy = run_ok(Command::new("apt-cache").args(["policy", &package]));
            let version = policy
                .lines()
                .find_map(|l| l.trim().strip_prefix("Candidate: "))
                .expect("a candidate version")
                .replace(':', "%3a");
            let dir = manifest.join(format!("target/debian-kernel-cache/{package}_{version}"));
            let kernel = dir.join("vmlinuz");
            if !kernel.exists() {
                std::fs::create_dir_all(&dir).unwrap();
                let work = tempfile::tempdir_in(&dir).unwrap();
                run_ok(
                    Command::new("apt-get")
                        .args(["download", "-qq", &package])
                        .current_dir(work.path()),
                );
                let deb = std::fs::read_dir(work.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.extension().is_some_and(|e| e == "deb"))
                    .expect("the downloaded package");
                run_ok(Command::new("sh").arg("-c").arg(format!(
                    "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/vmlinuz-*'",
                    deb.display(),
                    work.path().display()
                )));
                let found = std::fs::read_dir(work.path().join("boot"))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                let tmp = dir.join("vmlinuz.tmp");
                std::fs::copy(found, &tmp).unwrap();
                std::fs::rename(tmp, &kernel).unwrap();
            }
            kernel
        })
        .clone()
}

#[test]
fn debian_kernels_differ_in_their_payload_or_their_version_string() {
    let kernel = debian_kernel();
    let env = TestEnv::new();
    let image = std::fs::read(&kernel).unwrap();
    let setup = (usize::from(image[0x1f1]) + 1) * 512;
    let payload = setup + u32::from_le_bytes(image[0x248..0x24c].try_into().unwrap()) as usize;

    let mut flipped = image.clone();
    flipped[payload + 4_000_000] ^= 0x01;
    env.write("vmlinuz", &image);
    env.write("flipped/vmlinuz", &flipped);
    let v = diff(&env, &env.path("vmlinuz"), &env.path("flipped/vmlinuz"));
    let l = leaves(&v);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "payload");
    assert_eq!(v["leaves"][0]["content"]["ranges"][0]["offset"], 4_000_000);

    // Another build number in the version string the setup header points to.
    let mut renamed = image.clone();
    let at = 0x200 + usize::from(u16::from_le_bytes([image[0x20e], image[0x20f]]));
    let hash = at + image[at..].iter().position(|&b| b == b'#').unwrap();
    renamed[hash + 1] = b'7';
    env.write("renamed/vmlinuz", &renamed);
    let v = diff(&env, &env.path("vmlinuz"), &env.path("renamed/vmlinuz"));
    let l = leaves(&v);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "setup");
    assert_eq!(l[0].2, strs(&["kernel_version"]));
    let field = &v["leaves"][0]["metadata"][0];
    assert!(
        field["left"].as_str().unwrap().contains(" #1 SMP"),
        "{field}"
    );
    assert!(
        field["right"].as_str().unwrap().contains(" #7 SMP"),
        "{field}"
    );
}

#[test]
fn bytes_hidden_in_a_fit_images_alignment_are_a_leaf() {
    let env = TestEnv::new();
    let a = make(&env, "a", 1_700_000_000);
    let fit = std::fs::read(a.join("fit.itb")).unwrap();
    let gz = std::fs::read(a.join("kernel.gz")).unwrap();
    assert_ne!(
        gz.len() % 4,
        0,
        "the sample's kernel needs padding after it"
    );
    let at = fit
        .windows(gz.len())
        .position(|w| w == gz.as_slice())
        .unwrap()
        + gz.len();
    let mut hidden = fit.clone();
    hidden[at] = 0x41;
    env.write("hidden.itb", &hidden);
    let v = diff(&env, &a.join("fit.itb"), &env.path("hidden.itb"));
    let l = leaves(&v);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "images/kernel:pad");
    assert_eq!(l[0].1, strs(&["unknown"]));
}
